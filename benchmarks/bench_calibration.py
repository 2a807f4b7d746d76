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
|mean predicted − observed share same|. Beside it, "chance": the mean ECE a perfectly
calibrated model would read on the same probabilities (outcomes drawn, 200 times): on a few
hundred pairs ECE is well above 0 by chance alone.

``--grocery``: the same on photos (Shopee has none): the 549 grocery photos of 61 products,
image only (no titles), split as every grocery benchmark does (`common.split_held_back`: the
last 13 products by label held back from every fit). Baseline: MobileNet alpha 0.25 ImageNet
vectors (``../shared/weights``), cosine ≥ 0.85. Ensemble: a Siamese head on the same frozen
backbone (the cheap path on a CPU; the settings' own backbone may be VGG16 or
EfficientNet-Lite), trained on the training products and measured on products it never saw: the
held-back ones by a model trained on all 48, each of the 4 training folds by a model trained on
the other three. The shipped curves are measured on the held-back products; ``--write-photos``
fits the photo-only curves of the backbone (`rule_calibration.Calibration.photos`: pairs whose
only evidence is photo vectors) on the 4 training folds (isotonic, each step shrunk toward
Platt by `PHOTO_PRIOR` pairs; first every candidate's ECE on each fold fitted on the others),
writes them beside the Shopee curves and the other backbones' and measures them. ``--backbone
efficientnet-lite2`` (or ``-lite0``) embeds with that backbone instead of MobileNet 0.25 (the
baseline at its own photo cosine, and under the Siamese); with no photo curve of its own, the
other backbones' are measured on it.

    python benchmarks/bench_calibration.py                    # measure the shipped curves
    python benchmarks/bench_calibration.py --write            # refit them (selection part)
    python benchmarks/bench_calibration.py --pipelines best --best-model /tmp/best-selection
    python benchmarks/bench_calibration.py --grocery --pipelines baseline,ensemble
    python benchmarks/bench_calibration.py --grocery --write-photos
    python benchmarks/bench_calibration.py --grocery --write-photos --backbone efficientnet-lite2
"""

from __future__ import annotations

import argparse
import dataclasses
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
from benchmarks.common import SHARED, split_held_back  # noqa: E402
from core import rule_calibration as rc  # noqa: E402
from core.settings import MatchSettings  # noqa: E402
from core.verdict_words import default_probability  # noqa: E402

SELECTION_FOLDS = 4
GROCERY = SHARED / "data" / "grocery"
WEIGHTS = SHARED / "weights"
#: The grocery benchmarks' split: the last 13 of 61 products by label, held back.
GROCERY_HOLD_BACK = 13
#: What writes the shipped file (``about`` in it).
ABOUT = (
    "benchmarks/bench_calibration.py: --write (the Shopee curves), "
    "--grocery --write-photos (the photo-only curves)"
)
#: The photo curves: isotonic, each step shrunk toward Platt by this many pairs
#: (`rule_calibration.fit`'s ``prior``), so a top step seen without one different pair does
#: not read 1.0. Chosen on the training folds only (the held-back products never seen), for
#: every backbone and pipeline together: the lowest mean over baseline MobileNet, Lite0,
#: Lite2 and ensemble MobileNet of (all-pairs ECE + matched-pairs ECE) / 2, each fold fitted
#: on the other three (docs/benchmarks/calibration.md).
PHOTO_PRIOR = 5.0
#: The candidates ``--write-photos`` prints beside it: Platt, and isotonic with these priors.
PHOTO_PRIORS = (0.0, 5.0, 10.0, 20.0, 50.0)
#: The backbones the grocery photos can be embedded with (``--backbone``): alpha, input pixels.
PHOTO_INPUTS = {
    "mobilenet": (0.25, 224),
    "efficientnet-lite0": (1.0, 224),
    "efficientnet-lite2": (1.0, 260),
}


def rule_pairs(
    name: str,
    catalog: pd.DataFrame,
    vectors: np.ndarray | None = None,
    settings: MatchSettings | None = None,
) -> pd.DataFrame:
    """Every relaxed candidate pair of ``catalog`` scored by rule pipeline ``name`` (with
    ``vectors``, one per row, as its photo vectors), with ``same`` from the labels, whether
    both postings have a title, and ``z`` (the default number at the reference thresholds)."""
    from core.engine import scored_candidates
    from core.pipelines import MatchInputs, get_pipeline

    by_id = None if vectors is None else dict(zip(catalog["posting_id"], vectors, strict=True))
    inputs = MatchInputs.from_frame(catalog, by_id, None if by_id is None else "bench")
    settings = settings or MatchSettings()
    pairs = scored_candidates(get_pipeline(name), inputs, settings, relaxed=True)
    labels = catalog["label_group"].to_numpy()
    pairs["same"] = labels[pairs["left"]] == labels[pairs["right"]]
    titled = catalog["title_norm"].fillna("").to_numpy(object) != ""
    pairs["has_titles"] = titled[pairs["left"]] & titled[pairs["right"]]
    reference = settings.replace(**rc.reference_thresholds())
    pairs["z"] = default_probability(pairs, reference, pairs["has_titles"].to_numpy())
    return pairs


SHOPEE_FITTED_ON = (
    f"Shopee train.csv selection part (label groups not held back), "
    f"{SELECTION_FOLDS} group folds matched as catalogs of their own, relaxed candidates"
)


def choose_and_fit(
    name: str, folds: list[pd.DataFrame], fitted_on: str = SHOPEE_FITTED_ON
) -> tuple[rc.Calibration, dict]:
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
        fitted_on=fitted_on,
    )
    return curve, scores


def best_pairs(
    selection: pd.DataFrame, held: pd.DataFrame, model_dir: Path | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``best`` trained on the selection part (or loaded from ``model_dir``): its
    probability, whether same, whether matched, for every candidate of the held fifth."""
    from core.pipelines import MatchInputs
    from core.pipelines.best import BestMatcher
    from core.pipelines.best.thresholds import select_pairs

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


def chance_floor(p: np.ndarray, draws: int = 200, seed: int = 0) -> float:
    """The mean ECE a perfectly calibrated model would read on probabilities ``p`` (each
    pair's outcome drawn with its own probability): with few pairs a bin, ECE is above 0 by
    chance alone."""
    p = np.asarray(p, dtype=np.float64)
    p = p[~np.isnan(p)]
    rng = np.random.default_rng(seed)
    return float(
        np.mean(
            [rc.expected_calibration_error(p, rng.uniform(size=len(p)) < p) for _ in range(draws)]
        )
    )


def report(name: str, p: np.ndarray, same: np.ndarray, matched: np.ndarray) -> dict:
    """Print the reliability tables (all pairs, matched pairs); return the figures."""
    row = {"pipeline": name}
    for what, mask in (("pairs", np.ones(len(p), bool)), ("matched", matched)):
        table = rc.reliability_table(p[mask], same[mask])
        ece = rc.expected_calibration_error(p[mask], same[mask])
        row[f"ece_{what}"], row[f"n_{what}"] = ece, int(mask.sum())
        row[f"same_{what}"] = int(same[mask].sum())
        row[f"floor_{what}"] = floor = chance_floor(p[mask])
        print(
            f"\n{name}, {what}: {mask.sum():,} pairs, {same[mask].sum():,} same, ECE {ece:.4f} "
            f"(a perfectly calibrated model: {floor:.4f} by chance)"
        )
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
    print_choice(name, curve, scores)
    return curve


def print_choice(name: str, curve: rc.Calibration, scores: dict) -> None:
    for method, values in scores.items():
        print(
            f"{name} {method}: ECE on each selection fold fitted on the others "
            + ", ".join(f"{v:.4f}" for v in values)
            + f" (mean {np.mean(values):.4f})"
        )
    print(f"{name}: chose {curve.method}")


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


def grocery_catalog(folder: Path = GROCERY) -> tuple[pd.DataFrame, list[Path]]:
    """The grocery catalog (titles empty) and each row's photo file."""
    from core.text import normalize_title

    catalog = pd.read_csv(folder / "catalog.csv", dtype=str, keep_default_na=False)
    catalog["title_norm"] = [normalize_title(t) for t in catalog["title"]]
    return catalog, [folder / "images" / name for name in catalog["image"]]


def photo_settings(backbone: str) -> MatchSettings:
    """The default settings with ``backbone``'s own photo cosine for the baseline."""
    from core.settings.match import own_image_cosine

    return MatchSettings(baseline_image_cosine=own_image_cosine(backbone))


def imagenet_vectors(paths: list[Path], backbone: str = "mobilenet") -> np.ndarray:
    """The baseline's photo vectors: ``backbone`` with its ImageNet weights."""
    from core.embedders.mobilenet import PretrainedEmbedder

    alpha, size = PHOTO_INPUTS[backbone]
    return PretrainedEmbedder(backbone, alpha, size, WEIGHTS).embed(paths)


def siamese_vectors(
    train: pd.DataFrame, part: pd.DataFrame, paths: list[Path], backbone: str = "mobilenet"
) -> np.ndarray:
    """The ensemble's photo vectors of ``part``: a Siamese network with the default settings
    (on the frozen ``backbone``) trained on ``train``'s products only."""
    from core.embedders.siamese import SiameseConfig
    from core.embedders.siamese_training import train_siamese

    settings = MatchSettings()
    alpha, size = PHOTO_INPUTS[backbone]
    config = SiameseConfig.from_settings(settings, backbone, size, alpha=alpha)
    started = time.perf_counter()
    model = train_siamese(
        [paths[i] for i in train.index],
        train["label_group"].tolist(),
        config,
        weights_dir=WEIGHTS,
        batch_size=settings.batch_size,
    )
    print(
        f"  Siamese trained on {train['label_group'].nunique()} products "
        f"({len(train)} photos) in {time.perf_counter() - started:.0f}s",
        flush=True,
    )
    return model.embed([paths[i] for i in part.index])


def photo_pairs(
    name: str, part: pd.DataFrame, vectors: np.ndarray, settings: MatchSettings
) -> pd.DataFrame:
    """``part``'s relaxed candidate pairs, matched as a catalog of its own, whose only
    evidence is photo vectors (on the grocery photos: all that have vectors)."""
    pairs = rule_pairs(name, part.reset_index(drop=True), vectors, settings)
    only = rc.photo_vector_only(pairs, settings, pairs["has_titles"].to_numpy())
    return pairs[only].reset_index(drop=True)


def fold_eces(
    name: str, method: str, folds: list[pd.DataFrame], prior: float = 0.0
) -> tuple[list[float], list[float]]:
    """ECE of ``method`` on each fold fitted on the others: all pairs, matched pairs."""
    every, matched = [], []
    for i, fold in enumerate(folds):
        rest = pd.concat([f for j, f in enumerate(folds) if j != i], ignore_index=True)
        curve = rc.fit(name, rest["z"].to_numpy(), rest["same"].to_numpy(), method, prior=prior)
        p, same, m = curve.probability(fold["z"].to_numpy()), fold["same"], fold["matched"]
        every.append(rc.expected_calibration_error(p, same))
        matched.append(rc.expected_calibration_error(p[m.to_numpy(bool)], same[m]))
    return every, matched


def fit_photos(name: str, folds: list[pd.DataFrame], fitted_on: str) -> rc.Calibration:
    """The photo curve (isotonic with `PHOTO_PRIOR`) on every training fold; first each
    candidate's ECE on each fold fitted on the others (all pairs / matched pairs)."""
    candidates = [("platt", 0.0)] + [("isotonic", prior) for prior in PHOTO_PRIORS]
    for method, prior in candidates:
        every, matched = fold_eces(name, method, folds, prior)
        label = method if method == "platt" else f"isotonic, prior {prior:g}"
        print(
            f"{name} {label}: ECE on each training fold fitted on the others "
            + ", ".join(f"{a:.4f}/{m:.4f}" for a, m in zip(every, matched, strict=True))
            + f" (all/matched; mean {np.mean(every):.4f}/{np.mean(matched):.4f})"
        )
    everything = pd.concat(folds, ignore_index=True)
    return rc.fit(
        name,
        everything["z"].to_numpy(),
        everything["same"].to_numpy(),
        "isotonic",
        fitted_on=f"{fitted_on}; isotonic, each step shrunk toward Platt by {PHOTO_PRIOR:g} pairs",
        prior=PHOTO_PRIOR,
    )


def print_folds(
    name: str, method: str, folds: list[pd.DataFrame], shopee: rc.Calibration, prior: float = 0.0
) -> None:
    """ECE of ``method`` on each fold fitted on the others: all pairs and matched pairs (how
    much the figure moves from one set of products to another); and the Shopee curve's."""
    before = [
        rc.expected_calibration_error(shopee.probability(f["z"].to_numpy()), f["same"])
        for f in folds
    ]
    every, matched = fold_eces(name, method, folds, prior)
    print(
        f"{name} {method}, each training fold fitted on the others: ECE "
        + ", ".join(f"{v:.4f}" for v in every)
        + " (all pairs); "
        + ", ".join(f"{v:.4f}" for v in matched)
        + f" (matched: {', '.join(str(int(f['matched'].sum())) for f in folds)} pairs); "
        + "the Shopee curve "
        + ", ".join(f"{v:.4f}" for v in before)
        + " (all pairs)"
    )


def grocery_main(args: argparse.Namespace, wanted: list[str]) -> int:
    """Measure (and with ``--write-photos`` fit) the rule curves on image-only photo pairs."""
    catalog, paths = grocery_catalog(args.grocery_dir)
    train, held = split_held_back(catalog, args.hold_back)
    folds = [train.iloc[idx] for _, idx in group_kfold(train, SELECTION_FOLDS)]
    print(
        f"grocery: {train['label_group'].nunique()} training products ({len(train)} photos, "
        f"{SELECTION_FOLDS} folds of {', '.join(str(f['label_group'].nunique()) for f in folds)}"
        f" products); {held['label_group'].nunique()} held back ({len(held)} photos), matched "
        "as one catalog; image only"
    )
    backbone, settings = args.backbone, photo_settings(args.backbone)
    started = time.perf_counter()
    imagenet = imagenet_vectors(paths, backbone) if "baseline" in wanted else None
    print(
        f"{backbone} {PHOTO_INPUTS[backbone]} vectors of {len(paths)} photos in "
        f"{time.perf_counter() - started:.0f}s; baseline cosine ≥ "
        f"{settings.baseline_image_cosine}"
    )
    shipped = rc.default_calibrations()
    rows, written = [], {}
    for name in wanted:
        if name not in rc.RULE_PIPELINES:
            print(f"{name}: not a rule pipeline, skipped on the grocery photos")
            continue

        def vectors(part: pd.DataFrame, fitted_on: pd.DataFrame, name: str = name) -> np.ndarray:
            if name == "baseline":
                return imagenet[part.index]
            return siamese_vectors(fitted_on, part, paths, backbone)

        held_pairs = photo_pairs(name, held, vectors(held, train), settings)
        z, same = held_pairs["z"].to_numpy(), held_pairs["same"].to_numpy()
        matched = held_pairs["matched"].to_numpy(bool)
        curve = shipped[name]
        row = report(f"{name}, the Shopee curve", curve.probability(z), same, matched)
        raw = default_probability(held_pairs, settings, held_pairs["has_titles"])
        row["raw_pairs"] = rc.expected_calibration_error(raw, same)
        row["raw_matched"] = rc.expected_calibration_error(raw[matched], same[matched])
        print(
            f"{name}, the uncalibrated default on the same pairs: ECE {row['raw_pairs']:.4f} "
            f"(all), {row['raw_matched']:.4f} (matched)"
        )
        rows.append(row)
        photos = curve.photos.get(backbone)
        if args.write_photos:
            fold_pairs = [
                photo_pairs(name, fold, vectors(fold, train.drop(index=fold.index)), settings)
                for fold in folds
            ]
            photos = fit_photos(
                name,
                fold_pairs,
                fitted_on=(
                    f"grocery photos, image only, {backbone} {PHOTO_INPUTS[backbone]}: the "
                    f"{train['label_group'].nunique()} products "
                    f"not held back, {SELECTION_FOLDS} product folds matched as catalogs of their "
                    "own (photo vectors from models that never saw the fold), relaxed candidates"
                ),
            )
            print_folds(name, photos.method, fold_pairs, curve, PHOTO_PRIOR)
            written[name] = dataclasses.replace(curve, photos={**curve.photos, backbone: photos})
        if photos is not None:
            p = photos.probability(z)
            what = f"{name}, the {backbone} photo curve ({photos.method})"
            rows.append(report(what, p, same, matched))
        elif curve.photos:
            for other, photos in curve.photos.items():  # how another backbone's carries over
                p = photos.probability(z)
                what = f"{name}, the {other} photo curve ({photos.method})"
                rows.append(report(what, p, same, matched))
    if written:
        rc.write_default({**shipped, **written}, about=ABOUT)
        print(f"\nwrote {rc.DEFAULT_FILE}")
    summary(rows)
    return 0


def summary(rows: list[dict]) -> None:
    print(
        "\n| pipeline | ECE, scored pairs (chance) | pairs (same) | ECE, matched (chance) "
        "| matched (same) |"
    )
    print("|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['pipeline']} | {r['ece_pairs']:.4f} ({r['floor_pairs']:.4f}) "
            f"| {r['n_pairs']:,} ({r['same_pairs']:,}) "
            f"| {r['ece_matched']:.4f} ({r['floor_matched']:.4f}) "
            f"| {r['n_matched']:,} ({r['same_matched']:,}) |"
        )


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
    parser.add_argument(
        "--grocery", action="store_true", help="measure on the grocery photos (image only)"
    )
    parser.add_argument("--grocery-dir", type=Path, default=GROCERY)
    parser.add_argument(
        "--backbone",
        default="mobilenet",
        choices=tuple(PHOTO_INPUTS),
        help="with --grocery: the ImageNet backbone of the photo vectors and of the Siamese",
    )
    parser.add_argument(
        "--hold-back", type=int, default=GROCERY_HOLD_BACK, help="grocery products held back"
    )
    parser.add_argument(
        "--write-photos",
        action="store_true",
        help="with --grocery: fit the photo-only curves on the training products and write them",
    )
    args = parser.parse_args(argv)
    wanted = [p.strip() for p in args.pipelines.split(",") if p.strip()]
    if args.grocery:
        return grocery_main(args, wanted)

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
        shipped = rc.default_calibrations()
        kept = {  # the photo-only curves (`--grocery --write-photos`) stay
            name: dataclasses.replace(curve, photos=getattr(shipped.get(name), "photos", {}))
            for name, curve in curves.items()
        }
        rc.write_default({**shipped, **kept}, about=ABOUT)
        print(f"\nwrote {rc.DEFAULT_FILE}")
    summary(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
