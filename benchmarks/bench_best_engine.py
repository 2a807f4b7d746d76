"""``best`` through the engine's steps against the code before: the same pairs and scores, and
the time one whole match takes (issue 38, item 1).

Trains a model once on 1,500 Shopee label groups, then matches 3,000 other groups (9,504
postings) with it from this checkout and from ``--before`` (a checkout whose
``BestMatcher.match`` ran before the engine took ``best``), alternated ABBA ``--rounds`` times,
and says whether the pairs (ids, scores, rules, listing) are the same::

    git worktree add /tmp/best-before 87101d1
    python benchmarks/bench_best_engine.py --before /tmp/best-before --rounds 2
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd

try:
    from benchmarks.common import ROOT, SHARED, load_line, machine_lines
except ImportError:  # run as a file: benchmarks/ itself is first on sys.path
    from common import ROOT, SHARED, load_line, machine_lines

SHOPEE = SHARED / "data" / "shopee" / "train.csv"

#: Run in a fresh interpreter with one checkout's ``core`` first on the path.
_MATCH = """
import sys, time
import pandas as pd
from core.pipelines import MatchInputs
from core.pipelines.best import BestMatcher
from core.settings import MatchSettings
from core.text import normalize_title

shopee, model, out = sys.argv[1:4]
frame = pd.read_csv(shopee)
frame["title_norm"] = frame["title"].map(normalize_title)
groups = sorted(frame["label_group"].unique())
if model.endswith("!train"):
    train = frame[frame["label_group"].isin(groups[:1500])]
    labels = train["label_group"].astype(str).tolist()
    BestMatcher.fit(MatchInputs.from_frame(train), labels).save(model[:-6])
    sys.exit(0)
inputs = MatchInputs.from_frame(frame[frame["label_group"].isin(groups[1500:4500])])
matcher = BestMatcher.load(model)
started = time.perf_counter()
if hasattr(matcher, "match"):  # before the engine took best
    result = matcher.match(inputs, MatchSettings())
else:
    from core.engine import match_catalog
    from core.pipelines.best import BEST
    result = match_catalog(BEST, inputs, MatchSettings(), model=matcher)
print(time.perf_counter() - started, inputs.size)
pairs = result.pairs
pairs["rule"] = pairs["rule"].astype(str)
pairs.to_pickle(out)
"""


def _run(code: Path, model: str, out: Path) -> tuple[float, int]:
    env = {**os.environ, "PYTHONPATH": str(code)}
    args = [sys.executable, "-c", _MATCH, str(SHOPEE), model, str(out)]
    done = subprocess.run(args, env=env, cwd=code, capture_output=True, text=True, check=True)
    if not done.stdout.strip():
        return 0.0, 0
    seconds, postings = done.stdout.split()
    return float(seconds), int(postings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, required=True, help="the checkout to compare")
    parser.add_argument("--rounds", type=int, default=1, help="ABBA rounds")
    args = parser.parse_args()
    print("\n".join(machine_lines()))
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        _run(ROOT, str(folder / "model") + "!train", folder / "unused")
        seconds: dict[str, list[float]] = {"before": [], "after": []}
        for _ in range(args.rounds):
            for side in ("before", "after", "after", "before"):
                code = args.before if side == "before" else ROOT
                took, postings = _run(code, str(folder / "model"), folder / f"{side}.pkl")
                seconds[side].append(took)
                load = load_line().lstrip("- ")
                print(f"{side}: {postings:,} postings matched in {took:.2f} s ({load})")
        before, after = (pd.read_pickle(folder / f"{s}.pkl") for s in ("before", "after"))
    order = ["left", "right"]
    before = before.sort_values(order).reset_index(drop=True)
    after = after.sort_values(order).reset_index(drop=True)
    pd.testing.assert_frame_equal(before, after)
    print(f"pairs identical: {len(after):,}, rules {after['rule'].value_counts().to_dict()}")
    for side, values in seconds.items():
        print(f"{side}: median {statistics.median(values):.2f} s of {len(values)} runs")


if __name__ == "__main__":
    main()
