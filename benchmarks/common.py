"""Helpers shared by the benchmark scripts: where things are, what machine ran them, tables."""

from __future__ import annotations

import datetime
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `python benchmarks/<name>.py` must find the `core` package
    sys.path.insert(0, str(ROOT))
#: Real data lives next to the project, never inside it.
SHARED = ROOT.parent / "shared"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _ram_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return float("nan")


def _gpu() -> str:
    if Path("/dev/nvidia0").exists() or Path("/proc/driver/nvidia/gpus").exists():
        return "NVIDIA GPU present (not used: TensorFlow-CPU)"
    return "no GPU"


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def machine_lines() -> list[str]:
    """A Markdown bullet list describing this machine and the moment of the run."""
    load = os.getloadavg()
    return [
        f"- date: {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"- nproc: {cores()}; CPU: {_cpu_model()}; RAM: {_ram_gib():.1f} GiB; {_gpu()}",
        f"- Python {platform.python_version()} on {platform.system()} {platform.release()}",
        f"- load average at start (1/5/15 min): {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f}",
    ]


def load_line() -> str:
    load = os.getloadavg()
    return f"- load average at end (1/5/15 min): {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f}"


def timed(fn: Callable[[], object], repeats: int = 1) -> tuple[float, list[float], object]:
    """(median seconds, all timings, last result) of calling ``fn`` ``repeats`` times."""
    timings = []
    result = None
    for _ in range(max(1, repeats)):
        started = time.perf_counter()
        result = fn()
        timings.append(time.perf_counter() - started)
    return statistics.median(timings), timings, result


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
    ]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def child_usage(
    command: Sequence[str], name: str, env: dict[str, str] | None = None
) -> tuple[float, float, str]:
    """(seconds, peak RSS in GiB, stdout) of one child process run from the project folder;
    exits naming ``name`` with the end of its stderr when it fails."""
    import subprocess
    import tempfile

    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        process = subprocess.Popen(list(command), cwd=ROOT, stdout=out, stderr=err, env=env)
        # wait4 instead of wait: the child's own resource usage, peak RSS included.
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"{name} failed:\n{err.read()[-2000:]}")
        return seconds, usage.ru_maxrss / 2**20, out.read()


def split_held_back(catalog, count: int):
    """(training part, held-back part) of a labelled catalog: the last ``count`` products by
    label are held back from every choice (the grocery benchmarks' split)."""
    products = sorted(catalog["label_group"].unique())
    held_back = catalog["label_group"].isin(set(products[-count:]))
    return catalog[~held_back], catalog[held_back]
