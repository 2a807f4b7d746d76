"""Scale benchmark: import and whole-catalog matching (titles + hashes) of a large generated
catalog, through the CLI as a user runs it, with wall time and peak RSS of each step.

    python benchmarks/bench_scale.py --postings 100000
    python benchmarks/bench_scale.py --catalog /tmp/scale/1m.csv --pipelines baseline

The catalog comes from ``make_scale_catalog.py`` (built into a temporary folder unless
``--catalog`` names one). Each step is its own ``python -m core`` process, so its peak RSS is
its own.
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
    from benchmarks.make_scale_catalog import generate
except ImportError:  # run as a file: benchmarks/ itself is first on sys.path
    from common import ROOT, SHARED, load_line, machine_lines, markdown_table
    from make_scale_catalog import generate


def run_step(*args: object) -> tuple[float, float, str]:
    """(seconds, peak RSS in GiB, stdout) of one ``python -m core`` process."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, "-m", "core", *map(str, args)], cwd=ROOT, stdout=out, stderr=err
        )
        # wait4 instead of wait: the child's own resource usage, peak RSS included.
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        if process.returncode != 0:
            raise SystemExit(f"step {' '.join(map(str, args))} failed:\n{err.read()[-2000:]}")
        return seconds, usage.ru_maxrss / 2**20, out.read()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postings", type=int, default=100_000)
    parser.add_argument("--catalog", type=Path, help="an existing generated catalog CSV")
    parser.add_argument("--pipelines", default="baseline,ensemble")
    parser.add_argument("--source", type=Path, default=SHARED / "data" / "shopee" / "train.csv")
    args = parser.parse_args()

    print("## Scale: import and whole-catalog matching (titles + hashes)\n")
    print("\n".join(machine_lines()))
    started_all = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        catalog = args.catalog
        if catalog is None:
            catalog = Path(tmp) / "catalog.csv"
            started = time.perf_counter()
            written, products = generate(args.source, args.postings, catalog, seed=0)
            print(
                f"- catalog: {written:,} generated postings of {products:,} products "
                f"(make_scale_catalog.py, seed 0) in {time.perf_counter() - started:.0f} s"
            )
        else:
            print(f"- catalog: {catalog}")
        db = Path(tmp) / "scale.db"
        rows = []
        seconds, rss, out = run_step("import", catalog, "--db", db)
        rows.append(["import", f"{seconds:.1f}", f"{rss:.2f}", out.strip().splitlines()[0]])
        for pipeline in args.pipelines.split(","):
            seconds, rss, out = run_step(
                "evaluate", "--db", db, "--pipeline", pipeline, "--hash-only", "--json"
            )
            figures = json.loads(out)[pipeline]
            rows.append(
                [
                    f"{pipeline} match + score",
                    f"{seconds:.1f}",
                    f"{rss:.2f}",
                    f"matching {figures['seconds']:.1f} s; F1 {figures['f1']:.4f}, precision "
                    f"{figures['precision']:.4f}, recall {figures['recall']:.4f}",
                ]
            )
            print(f"  {rows[-1]}", flush=True)
    print()
    print(markdown_table(["step (one process each)", "wall s", "peak RSS GiB", "notes"], rows))
    print()
    print(load_line())
    print(f"- benchmark wall time: {time.perf_counter() - started_all:.0f} s")


if __name__ == "__main__":
    main()
