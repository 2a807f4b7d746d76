"""How well each pipeline's probability matches how often its pairs are the same product.

Fits the rule pipelines' calibration (`core.rule_calibration`) on the Shopee selection part
only (the four fifths of label groups not held back, `bench_best.held_back_groups`), and
measures every pipeline on the held-back fifth, matched as a catalog of its own:

- **pairs**: every candidate pair the pipeline scores there, matched or not. For baseline and
  ensemble: each posting's top-k (50) neighbours by every candidate source of the pipeline
  with no rule floors (title TF-IDF, title ratio for the ensemble, photo hash at any
  distance), the near-miss search a query uses (`core.engine.scored_candidates`, relaxed: a
  superset of the pairs a match run scores). For ``best``: its own kNN candidates, every one
  it gives a probability (`BestMatcher.probabilities`), trained on the selection part.
- **matched**: those of the pairs the pipeline calls a match (what pages show with a word).

Expected calibration error: 10 equal-width probability bins, Σ (bin's pairs / pairs) ×
|mean predicted − observed share same|.

    python benchmarks/bench_calibration.py                    # measure the shipped curves
    python benchmarks/bench_calibration.py --write            # refit them (selection part)
    python benchmarks/bench_calibration.py --pipelines best --best-model /tmp/best-selection
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_best import (  # noqa: E402
    DEFAULT_CSV,
    group_kfold,
    held_back_groups,
    load_catalog,
)
from core import rule_calibration as rc  # noqa: E402
from core.settings import MatchSettings  # noqa: E402
from core.verdict_words import default_probability  # noqa: E402

SELECTION_FOLDS = 4


def rule_pairs(name: str, catalog: pd.DataFrame) -> pd.DataFrame:
    """Every relaxed candidate pair of ``catalog`` scored by rule pipeline ``name``, with
    ``same`` from the labels and ``z`` (the default number at the reference thresholds)."""
    from core.engine import scored_candidates
    from core.pipelines import MatchInputs, get_pipeline

    inputs = MatchInputs.from_frame(catalog)
    pairs = scored_candidates(get_pipeline(name), inputs, MatchSettings(), relaxed=True)
    labels = catalog["label_group"].to_numpy()
    pairs["same"] = labels[pairs["left"]] == labels[pairs["right"]]
    reference = MatchSettings().replace(**rc.reference_thresholds())
    pairs["z"] = default_probability(pairs, reference)
    return pairs


def choose_and_fit(name: str, folds: list[pd.DataFrame]) -> tuple[rc.Calibration, dict]:
    """Each method's ECE on every selection fold when fitted on the others; the better
    method refitted on all of them."""
    arrays = [(f["z"].to_numpy(), f["same"].to_numpy()) for f in folds]
    scores = {m: rc.cross_validated_ece(name, arrays, m) for m in rc.METHODS}
    method = min(scores, key=lambda m: np.mean(scores[m]))
    everything = pd.concat(folds, ignore_index=True)
    curve = rc.fit(
        name,
        everything["z"].to_numpy(),
        everything["same"].to_numpy(),
        method,
        fitted_on=(
            f"Shopee train.csv selection part (label groups not held back), "
            f"{SELECTION_FOLDS} group folds matched as catalogs of their own, relaxed candidates"
        ),
    )
    return curve, scores


def best_pairs(
    selection: pd.DataFrame, held: pd.DataFrame, model_dir: Path | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``best`` trained on the selection part (or loaded from ``model_dir``): its
    probability, whether same, whether matched, for every candidate of the held fifth."""
    from core.pipelines import MatchInputs
    from core.pipelines.best import BestMatcher
    from core.pipelines.best.training import select_pairs

    if model_dir is not None and (model_dir / "best.json").is_file():
        matcher = BestMatcher.load(model_dir)
    else:
        started = time.perf_counter()
        matcher = BestMatcher.fit(
            MatchInputs.from_frame(selection), selection["label_group"].tolist()
        )
        print(f"best trained on the selection part in {time.perf_counter() - started:.0f}s")
        if model_dir is not None:
            matcher.save(model_dir)
    inputs = MatchInputs.from_frame(held)
    table, _, prob = matcher.probabilities(inputs)
    labels = held["label_group"].to_numpy()
    same = labels[table.left] == labels[table.right]
    config = matcher.config
    low = min(config.threshold, config.threshold_low)
    matched = select_pairs(
        inputs.size, table.left, table.right, prob, config.threshold, low, config.min_one
    )
    return np.asarray(prob, np.float64), same, matched


def report(name: str, p: np.ndarray, same: np.ndarray, matched: np.ndarray) -> dict:
    """Print the reliability tables (all pairs, matched pairs); return the figures."""
    row = {"pipeline": name}
    for what, mask in (("pairs", np.ones(len(p), bool)), ("matched", matched)):
        table = rc.reliability_table(p[mask], same[mask])
        ece = rc.expected_calibration_error(p[mask], same[mask])
        row[f"ece_{what}"], row[f"n_{what}"] = ece, int(mask.sum())
        row[f"same_{what}"] = int(same[mask].sum())
        print(f"\n{name}, {what}: {mask.sum():,} pairs, {same[mask].sum():,} same, ECE {ece:.4f}")
        print("| bin | pairs | mean predicted | observed share same |")
        print("|---|---|---|---|")
        for r in table.itertuples(index=False):
            if r.pairs:
                print(f"| {r.bin} | {r.pairs:,} | {r.mean_predicted:.3f} | {r.observed_same:.3f} |")
            else:
                print(f"| {r.bin} | 0 | – | – |")
    return row


def fit_on_selection(name: str, selection: pd.DataFrame) -> rc.Calibration:
    """The curve of rule pipeline ``name``, method chosen and fitted on the selection part."""
    folds = [
        rule_pairs(name, selection.iloc[idx].reset_index(drop=True))
        for _, idx in group_kfold(selection, SELECTION_FOLDS)
    ]
    curve, scores = choose_and_fit(name, folds)
    for method, values in scores.items():
        print(
            f"{name} {method}: ECE on each selection fold fitted on the others "
            + ", ".join(f"{v:.4f}" for v in values)
            + f" (mean {np.mean(values):.4f})"
        )
    print(f"{name}: chose {curve.method}")
    return curve


def measure_rule(name: str, held: pd.DataFrame, curve: rc.Calibration) -> dict:
    """Reliability of ``curve`` on the held-back fifth, and the uncalibrated default's ECE."""
    pairs = rule_pairs(name, held)
    p = curve.probability(pairs["z"].to_numpy())
    same, matched = pairs["same"].to_numpy(), pairs["matched"].to_numpy(bool)
    row = report(f"{name} ({curve.method})", p, same, matched)
    raw = default_probability(pairs, MatchSettings())
    row["raw_pairs"] = rc.expected_calibration_error(raw, same)
    row["raw_matched"] = rc.expected_calibration_error(raw[matched], same[matched])
    print(
        f"{name}, the uncalibrated default on the same pairs: ECE {row['raw_pairs']:.4f} "
        f"(all), {row['raw_matched']:.4f} (matched)"
    )
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, default=DEFAULT_CSV)
    parser.add_argument("--pipelines", default="baseline,ensemble,best")
    parser.add_argument(
        "--write", action="store_true", help="refit the rule curves and write the shipped file"
    )
    parser.add_argument(
        "--best-model", type=Path, default=None, help="load best from here, else train and save"
    )
    args = parser.parse_args(argv)
    wanted = [p.strip() for p in args.pipelines.split(",") if p.strip()]

    frame = load_catalog(args.csv, None, 0)
    held_back = held_back_groups(frame["label_group"])
    selection = frame[~held_back].reset_index(drop=True)
    held = frame[held_back].reset_index(drop=True)
    print(
        f"selection part {len(selection):,} postings ({selection['label_group'].nunique():,} "
        f"groups); held-back fifth {len(held):,} postings ({held['label_group'].nunique():,} "
        "groups), matched as one catalog"
    )
    rows, curves = [], {}
    for name in wanted:
        if name == "best":
            p, same, matched = best_pairs(selection, held, args.best_model)
            rows.append(report(name, p, same, matched))
            continue
        if args.write:
            curves[name] = fit_on_selection(name, selection)
        rows.append(measure_rule(name, held, curves.get(name) or rc.default_calibrations()[name]))
    if args.write and curves:
        rc.write_default(curves, about="benchmarks/bench_calibration.py --write")
        print(f"\nwrote {rc.DEFAULT_FILE}")
    print("\n| pipeline | ECE, scored pairs | pairs (same) | ECE, matched | matched (same) |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['pipeline']} | {r['ece_pairs']:.4f} | {r['n_pairs']:,} ({r['same_pairs']:,}) "
            f"| {r['ece_matched']:.4f} | {r['n_matched']:,} ({r['same_matched']:,}) |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
