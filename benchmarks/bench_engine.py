"""Shopee 27k per pipeline, through the CLI as a user runs it: F1, precision, recall, wall time,
peak RSS, and (new engine) how many postings hit the match cap; plus per-posting F1 of
cluster-based matches next to plain matches.

    python benchmarks/bench_engine.py                        # this checkout
    python benchmarks/bench_engine.py --before /tmp/old      # and an older checkout, same run

``--before`` runs the same commands from another checkout of SameSame (for example
``git worktree add /tmp/old <commit>``), one after the other on the same machine, so the two
columns are comparable. Baseline and ensemble match the whole labelled catalog (titles +
hashes: the photos are not in the data set). ``best`` is trained on four fifths of the label
groups and evaluated on the fifth it never saw (GroupKFold(5), fold 0), so its figure is
held-out, not in-sample.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

try:
    from benchmarks.common import ROOT, SHARED, load_line, machine_lines, markdown_table
except ImportError:  # run as a file: benchmarks/ itself is first on sys.path
    from common import ROOT, SHARED, load_line, machine_lines, markdown_table


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


def measure(root: Path, csv: Path, train: Path, test: Path, pipelines: list[str]) -> dict:
    figures = {}
    for pipeline in pipelines:
        with tempfile.TemporaryDirectory(prefix="bench-engine-") as work:
            env_home = Path(work) / "home"
            os.environ["SAMESAME_HOME"] = str(env_home)
            db = Path(work) / "catalog.db"
            if pipeline == "best":
                fit_s, fit_gb, _, _ = run_cli(
                    root,
                    "--db",
                    Path(work) / "train.db",
                    "train",
                    "--catalog",
                    train,
                    "--pipeline",
                    "best",
                    "--model",
                    Path(work) / "model",
                )
                run_cli(root, "--db", db, "import", test)
                seconds, peak, out, err = run_cli(
                    root,
                    "--db",
                    db,
                    "evaluate",
                    "--pipeline",
                    "best",
                    "--model",
                    Path(work) / "model",
                    "--json",
                )
                catalog = f"fold 0 held out ({test.name})"
            else:
                fit_s = fit_gb = 0.0
                run_cli(root, "--db", db, "import", csv)
                seconds, peak, out, err = run_cli(
                    root, "--db", db, "evaluate", "--pipeline", pipeline, "--json"
                )
                catalog = "whole catalog"
            result = json.loads(out)[pipeline]
            figures[pipeline] = {
                **result,
                "wall_s": round(seconds, 1),
                "peak_gib": round(peak, 2),
                "train_s": round(fit_s, 1),
                "train_peak_gib": round(fit_gb, 2),
                "catalog": catalog,
                "notes": [line for line in err.splitlines() if line.startswith("note:")],
            }
            print(f"{root.name}: {pipeline}: {figures[pipeline]}", flush=True)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, default=SHARED / "data" / "shopee" / "train.csv")
    parser.add_argument("--before", type=Path, help="an older checkout to run the same way")
    parser.add_argument("--pipelines", default="baseline,ensemble,best")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    pipelines = [p for p in args.pipelines.split(",") if p]
    started = time.perf_counter()
    print("\n".join(machine_lines()))
    with tempfile.TemporaryDirectory(prefix="bench-engine-folds-") as folder:
        train, test = fold_files(args.csv, Path(folder))
        runs = {}
        if args.before:
            runs["before"] = measure(args.before.resolve(), args.csv, train, test, pipelines)
        runs["after"] = measure(ROOT, args.csv, train, test, pipelines)
    rows = []
    for label, figures in runs.items():
        for pipeline, f in figures.items():
            rows.append(
                [
                    label,
                    pipeline,
                    f["catalog"],
                    f"{f['f1']:.4f}",
                    f"{f['precision']:.4f}",
                    f"{f['recall']:.4f}",
                    f.get("cluster_f1", "–")
                    if isinstance(f.get("cluster_f1"), str)
                    else f"{f['cluster_f1']:.4f}"
                    if "cluster_f1" in f
                    else "–",
                    f.get("capped", "–"),
                    f["wall_s"],
                    f["peak_gib"],
                    f["train_s"] or "–",
                ]
            )
    print()
    print(
        markdown_table(
            [
                "code",
                "pipeline",
                "catalog",
                "F1",
                "precision",
                "recall",
                "cluster F1",
                "postings at the cap",
                "evaluate wall s",
                "peak GiB",
                "train s",
            ],
            rows,
        )
    )
    if "before" in runs:
        print()
        for pipeline in pipelines:
            delta = runs["after"][pipeline]["f1"] - runs["before"][pipeline]["f1"]
            print(f"- {pipeline}: F1 change {delta:+.4f} (target within ±0.003)")
    print(load_line())
    print(f"- benchmark wall time: {time.perf_counter() - started:.0f} s")
    if args.json:
        args.json.write_text(json.dumps(runs, indent=2))


if __name__ == "__main__":
    main()
