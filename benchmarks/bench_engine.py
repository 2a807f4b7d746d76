"""Shopee 27k per pipeline, through the CLI as a user runs it: F1, precision, recall, wall time,
peak RSS, and (new engine) how many postings hit the match cap; plus per-posting F1 of
cluster-based matches next to plain matches. ``--grocery``: the same on the grocery photos.

    python benchmarks/bench_engine.py                        # this checkout
    python benchmarks/bench_engine.py --before /tmp/old      # and an older checkout, same run
    python benchmarks/bench_engine.py --grocery --before /tmp/old   # the grocery photos

``--before`` runs the same commands from another checkout of SameSame (for example
``git worktree add /tmp/old <commit>``), one after the other on the same machine, so the two
columns are comparable. Baseline and ensemble match the whole labelled catalog (titles +
hashes: the photos are not in the data set). ``best`` is trained on four fifths of the label
groups and evaluated on the fifth it never saw (GroupKFold(5), fold 0), so its figure is
held-out, not in-sample.

``--grocery`` (image only, no titles): the photos are imported with ``--images`` and embedded
by the ``embed`` command with the default photo model, MobileNet, at the width whose ImageNet
weights are here offline (alpha 0.25 from ``../shared/weights``; alpha 1.0 would need a
download); every command gets the same photo flags. The baseline matches the whole catalog
after ``embed``. The ensemble needs a trained Siamese network and ``best`` a trained model: each
is trained (``train --pipeline ensemble|best``, the settings' defaults otherwise: the Siamese
``auto`` backbone) on fold 0's four fifths of the products and evaluated on the fifth it never
saw, like ``best`` on Shopee; `best`'s photos are embedded by ``embed`` before it trains and
before it is evaluated, so both checkouts' `best` learn from the same vectors. The CLI's
flags for import, embed, train and evaluate are the same in ``3e132f3^`` and today's code.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

try:
    from benchmarks.common import ROOT, SHARED, load_line, machine_lines, markdown_table
except ImportError:  # run as a file: benchmarks/ itself is first on sys.path
    from common import ROOT, SHARED, load_line, machine_lines, markdown_table

#: The photo model's flags on every command that embeds (grocery): MobileNet, the default
#: backbone, at the width whose ImageNet weights are on this machine (no download).
PHOTO_FLAGS = ("--alpha", "0.25", "--weights-dir", SHARED / "weights")


def run_cli(root: Path, *args: object) -> tuple[float, float, str, str]:
    """(seconds, peak RSS GiB, stdout, stderr) of ``python -m core ARGS`` run from ``root``."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, "-m", "core", *map(str, args)],
            cwd=root,
            stdout=out,
            stderr=err,
            env=env,
        )
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"{root}: python -m core {' '.join(map(str, args))}\n{stderr[-3000:]}")
        return seconds, usage.ru_maxrss / 2**20, stdout, stderr


def fold_files(csv: Path, folder: Path) -> tuple[Path, Path]:
    """GroupKFold(5) fold 0 of the catalog: (train CSV, held-out CSV)."""
    import pandas as pd
    from sklearn.model_selection import GroupKFold

    frame = pd.read_csv(csv, dtype=str, keep_default_na=False)
    train_idx, test_idx = next(GroupKFold(n_splits=5).split(frame, groups=frame["label_group"]))
    train, test = folder / "fold0_train.csv", folder / "fold0_test.csv"
    frame.iloc[train_idx].to_csv(train, index=False)
    frame.iloc[test_idx].to_csv(test, index=False)
    return train, test


def _held_out(
    root: Path, work: Path, pipeline: str, train: Path, test: Path, photos: Path | None
) -> tuple[dict, float, float, float | None]:
    """Train ``pipeline`` on ``train``, import ``test`` and evaluate it there: (figures of the
    evaluation with its wall time, peak and import time, train seconds, train peak, embed
    seconds of ``test``).

    Shopee: ``train --catalog``. With ``photos`` (grocery) each database is imported with its
    photos, and `best`'s are embedded by the ``embed`` command before it trains and before it is
    evaluated: the code before issue 38 (``3e132f3^``) did not embed photos in ``train`` (issue
    39 added that), so letting ``train`` do it would compare a `best` without photo vectors
    against one with them."""
    db, model = work / "catalog.db", work / "model"
    flags = PHOTO_FLAGS if photos else ()
    embed = photos is not None and pipeline == "best"
    if photos:
        run_cli(root, "--db", work / "train.db", "import", train, "--images", photos)
        if embed:
            run_cli(root, "--db", work / "train.db", "embed", *flags)
        source = ()
    else:
        source = ("--catalog", train)
    fit_s, fit_gb, _, _ = run_cli(
        root,
        "--db",
        work / "train.db",
        "train",
        *source,
        "--pipeline",
        pipeline,
        "--model",
        model,
        *flags,
    )
    import_s, _, _, _ = run_cli(
        root, "--db", db, "import", test, *(("--images", photos) if photos else ())
    )
    embed_s = run_cli(root, "--db", db, "embed", *flags)[0] if embed else None
    seconds, peak, out, err = run_cli(
        root, "--db", db, "evaluate", "--pipeline", pipeline, "--model", model, "--json", *flags
    )
    return _figures(out, err, pipeline, seconds, peak, import_s), fit_s, fit_gb, embed_s


def _figures(out: str, err: str, pipeline: str, seconds: float, peak: float, import_s) -> dict:
    return {
        **json.loads(out)[pipeline],
        "wall_s": round(seconds, 1),
        "peak_gib": round(peak, 2),
        "import_s": round(import_s, 1),
        "notes": [line for line in err.splitlines() if line.startswith("note:")],
    }


def measure(
    root: Path,
    csv: Path,
    train: Path,
    test: Path,
    pipelines: list[str],
    images: Path | None = None,
) -> dict:
    """Every pipeline's figures from the checkout ``root``. With ``images`` (the grocery
    photos) the photos are imported and embedded, and the ensemble is trained too."""
    figures = {}
    for pipeline in pipelines:
        with tempfile.TemporaryDirectory(prefix="bench-engine-") as folder:
            work = Path(folder)
            os.environ["SAMESAME_HOME"] = str(work / "home")
            if pipeline == "best" or (images and pipeline == "ensemble"):
                result, fit_s, fit_gb, embed_s = _held_out(
                    root, work, pipeline, train, test, images
                )
                catalog = f"fold 0 held out ({test.name})"
            else:
                fit_s = fit_gb = 0.0
                embed_s = None
                db = work / "catalog.db"
                photos = ("--images", images) if images else ()
                flags = PHOTO_FLAGS if images else ()
                import_s, _, _, _ = run_cli(root, "--db", db, "import", csv, *photos)
                if images:
                    embed_s, _, _, _ = run_cli(root, "--db", db, "embed", *flags)
                seconds, peak, out, err = run_cli(
                    root, "--db", db, "evaluate", "--pipeline", pipeline, "--json", *flags
                )
                result = _figures(out, err, pipeline, seconds, peak, import_s)
                catalog = "whole catalog"
            figures[pipeline] = {
                **result,
                "embed_s": None if embed_s is None else round(embed_s, 1),
                "train_s": round(fit_s, 1),
                "train_peak_gib": round(fit_gb, 2),
                "catalog": catalog,
            }
            print(f"{root.name}: {pipeline}: {figures[pipeline]}", flush=True)
    return figures


#: Timings a round measures; with several rounds the table shows each one's median.
TIMINGS = ("import_s", "embed_s", "seconds", "wall_s", "train_s", "peak_gib", "train_peak_gib")


def merged(rounds: list[dict]) -> dict:
    """One side's figures over its rounds: the first round's, with each timing's median and
    every round's value (``<name>_rounds``), and every round's F1 (``f1_rounds``)."""
    figures = {}
    for pipeline, first in rounds[0].items():
        merged_one = {**first, "f1_rounds": [r[pipeline]["f1"] for r in rounds]}
        for key in TIMINGS:
            values = [r[pipeline][key] for r in rounds if r[pipeline].get(key) is not None]
            if values:
                merged_one[key] = round(statistics.median(values), 2)
                merged_one[f"{key}_rounds"] = values
        figures[pipeline] = merged_one
    return figures


def _cell(value: object, digits: int = 4) -> object:
    if value is None or value == "":
        return "–"
    return f"{value:.{digits}f}" if isinstance(value, float) else value


def table(runs: dict) -> str:
    rows = [
        [
            label,
            pipeline,
            f["catalog"],
            _cell(f["f1"]),
            _cell(f["precision"]),
            _cell(f["recall"]),
            _cell(f.get("cluster_f1")),
            f.get("capped", "–"),
            _cell(f.get("import_s"), 1),
            _cell(f.get("embed_s"), 1),
            f["seconds"],
            f["wall_s"],
            f["peak_gib"],
            f["train_s"] or "–",
        ]
        for label, figures in runs.items()
        for pipeline, f in figures.items()
    ]
    header = ["code", "pipeline", "catalog", "F1", "precision", "recall", "cluster F1"]
    header += [
        "postings at the cap",
        "import s",
        "embed s",
        "matching s",
        "evaluate wall s",
        "peak GiB",
    ]
    return markdown_table([*header, "train s"], rows)


def changes(runs: dict, pipelines: list[str]) -> list[str]:
    """One line a pipeline: the F1 change (issue 38's target: within ±0.001) and the
    seconds after against before (every round's, when there were several)."""
    lines = []
    for pipeline in pipelines:
        before, after = runs["before"][pipeline], runs["after"][pipeline]
        delta = after["f1"] - before["f1"]
        spread = max(abs(a - b) for a in after["f1_rounds"] for b in before["f1_rounds"])
        timings = []
        for key, what in (
            ("seconds", "matching"),
            ("wall_s", "evaluate"),
            ("embed_s", "embed"),
            ("train_s", "train"),
        ):
            if before.get(key) or after.get(key):
                was = before.get(f"{key}_rounds", [before[key]])
                now = after.get(f"{key}_rounds", [after[key]])
                timings.append(f"{what} s {was} -> {now}")
        lines.append(
            f"- {pipeline}: F1 change {delta:+.4f}, largest over rounds {spread:.4f} (target "
            f"within ±0.001: {'met' if spread <= 0.001 else 'NOT met'}); {'; '.join(timings)}"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, help="the catalog (default: Shopee's train.csv)")
    parser.add_argument(
        "--grocery",
        action="store_true",
        help="the grocery photos (image only) instead of Shopee: imported, embedded, matched",
    )
    parser.add_argument("--before", type=Path, help="an older checkout to run the same way")
    parser.add_argument("--pipelines", default="baseline,ensemble,best")
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="measure each checkout this many times, alternating (before, after, after, "
        "before, ...); the table shows each timing's median",
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    pipelines = [p for p in args.pipelines.split(",") if p]
    data = SHARED / "data" / ("grocery" if args.grocery else "shopee")
    csv = args.csv or data / ("catalog.csv" if args.grocery else "train.csv")
    images = data / "images" if args.grocery else None
    started = time.perf_counter()
    print("\n".join(machine_lines()))
    with tempfile.TemporaryDirectory(prefix="bench-engine-folds-") as folder:
        train, test = fold_files(csv, Path(folder))
        sides = {"after": ROOT}
        if args.before:
            sides = {"before": args.before.resolve(), **sides}
        rounds = {label: [] for label in sides}
        for round_ in range(max(1, args.rounds)):
            # ABBA: an even round runs the sides in order, an odd one in reverse.
            for label in list(sides)[:: -1 if round_ % 2 else 1]:
                rounds[label].append(measure(sides[label], csv, train, test, pipelines, images))
        runs = {label: merged(rounds[label]) for label in sides}
    print()
    print(table(runs))
    if "before" in runs:
        print()
        print("\n".join(changes(runs, pipelines)))
    print(load_line())
    print(f"- benchmark wall time: {time.perf_counter() - started:.0f} s")
    if args.json:
        args.json.write_text(json.dumps(runs, indent=2))


if __name__ == "__main__":
    main()
