"""``best``'s single-item query on the Shopee dev split: latency once the catalog is scored for
queries, the one-off cost of scoring it, and agreement with a whole run with the item appended.

    python benchmarks/bench_best_query.py                 # ~24k catalog, 200 queries
    python benchmarks/bench_best_query.py --check 5       # and 5 full runs to compare with

The model is trained on a slice of label groups (``--train-groups``) that the catalog and the
queries never contain; the queries are one posting of each of ``--queries`` other groups of two
or more, taken out of the catalog (so each has a true match in it). Queries go through
`core.query.query_item`, as the Compare page and the HTTP API call it (title and perceptual
hash: the data set has no photos).
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

try:
    from benchmarks.common import SHARED, load_line, machine_lines, markdown_table
except ImportError:  # run as a file: benchmarks/ itself is first on sys.path
    from common import SHARED, load_line, machine_lines, markdown_table

from core import best_queries
from core.catalog import import_catalog
from core.pipelines import MatchInputs
from core.pipelines.best.model import BestMatcher
from core.pipelines.best.query_state import Item
from core.query import NewItem, query_item
from core.settings import MatchSettings
from core.store import Store
from core.text import normalize_title


def split(frame: pd.DataFrame, train_groups: int, queries: int, seed: int):
    """(training postings, catalog postings, query postings), disjoint as described above."""
    groups = frame["label_group"].drop_duplicates().sample(frac=1.0, random_state=seed)
    trained = set(groups.iloc[:train_groups])
    train = frame[frame["label_group"].isin(trained)].reset_index(drop=True)
    rest = frame[~frame["label_group"].isin(trained)]
    sizes = rest["label_group"].map(rest["label_group"].value_counts())
    asked = rest[sizes >= 2].groupby("label_group").head(1).sample(queries, random_state=seed)
    return train, rest.drop(index=asked.index), asked


def full_run(store: Store, matcher: BestMatcher, row) -> dict[str, tuple[float, bool]]:
    """The item's pairs as a whole run over the catalog plus the item scores them."""
    item = Item(normalize_title(row.title), int(row.image_phash, 16))
    scored, ids = best_queries.full_run_scores(store, matcher, item, None)
    return dict(zip(ids, zip(scored["probability"], scored["matched"], strict=True), strict=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--catalog", type=Path, default=SHARED / "data" / "shopee" / "train.csv")
    parser.add_argument("--train-groups", type=int, default=1000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--check", type=int, default=0, help="full runs to compare with")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    machine = machine_lines()  # the load average as the run starts
    frame = pd.read_csv(args.catalog, dtype={"label_group": str, "image_phash": str})
    train, catalog, asked = split(frame, args.train_groups, args.queries, args.seed)
    started = time.perf_counter()
    train = train.assign(title_norm=[normalize_title(t) for t in train["title"]])
    matcher = BestMatcher.fit(MatchInputs.from_frame(train), train["label_group"].tolist())
    trained = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as folder:
        catalog.to_csv(Path(folder) / "catalog.csv", index=False)
        store = Store(Path(folder) / "catalog.db")
        import_catalog(store, Path(folder) / "catalog.csv", None)
        settings = MatchSettings()
        items = [NewItem(title=r.title, phash=r.image_phash) for r in asked.itertuples()]
        best_queries.forget()
        started = time.perf_counter()
        first = query_item(store, items[0], "best", settings, best_matcher=matcher)
        cold = time.perf_counter() - started
        seconds, answers = [], []
        for item in items:
            started = time.perf_counter()
            answers.append(query_item(store, item, "best", settings, best_matcher=matcher))
            seconds.append(time.perf_counter() - started)
        group = dict(zip(catalog["posting_id"], catalog["label_group"], strict=True))
        f1 = [
            item_f1(set(a.loc[a["matched"], "posting_id"]), r.label_group, group)
            for a, r in zip(answers, asked.itertuples(), strict=True)
        ]
        right_first = sum(
            group.get(a["posting_id"].iloc[0]) == r.label_group
            for a, r in zip(answers, asked.itertuples(), strict=True)
            if len(a)
        )
        checks = (
            compare(store, matcher, asked.head(args.check), answers, group) if args.check else ""
        )
        store.close()
    ms = np.asarray(seconds) * 1000
    print(*machine, load_line(), sep="\n")
    print(
        markdown_table(
            [
                "catalog",
                "trained on",
                "training s",
                "first query s",
                "queries",
                "p50 ms",
                "p95 ms",
                "max ms",
                "true match first",
                "mean F1",
                "peak RSS GiB",
            ],
            [
                [
                    f"{len(catalog):,}",
                    f"{len(train):,}",
                    f"{trained:.0f}",
                    f"{cold:.1f}",
                    len(ms),
                    f"{np.median(ms):.1f}",
                    f"{np.percentile(ms, 95):.1f}",
                    f"{ms.max():.1f}",
                    f"{right_first}/{len(ms)}",
                    f"{np.mean(f1):.4f}",
                    f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f}",
                ]
            ],
        )
    )
    assert len(first)
    if checks:
        print(checks)


def item_f1(matched: set[str], label: str, group: dict[str, str]) -> float:
    """Shopee's per-posting F1 of one query's matches (the item counts as its own match)."""
    truth = {pid for pid, g in group.items() if g == label}
    hits = len(matched & truth) + 1
    return 2 * hits / (len(matched) + 1 + len(truth) + 1)


def compare(store: Store, matcher: BestMatcher, rows: pd.DataFrame, answers, group) -> str:
    """Each checked query's matches, probabilities and F1 against a whole run's."""
    lines, f1s = [], []
    for row, answer in zip(rows.itertuples(), answers, strict=False):
        started = time.perf_counter()
        reference = full_run(store, matcher, row)
        took = time.perf_counter() - started
        said = dict(zip(answer["posting_id"], answer["probability"], strict=True))
        gaps = [abs(said[k] - reference[k][0]) for k in set(said) & set(reference)]
        mine = set(answer.loc[answer["matched"], "posting_id"])
        theirs = {k for k, (_, matched) in reference.items() if matched}
        f1s.append((item_f1(mine, row.label_group, group), item_f1(theirs, row.label_group, group)))
        lines.append(
            [
                row.title[:40],
                len(mine),
                len(theirs),
                mine == theirs,
                f"{max(gaps) if gaps else 0:.4f}",
                f"{f1s[-1][0]:.3f}",
                f"{f1s[-1][1]:.3f}",
                f"{took:.1f}",
            ]
        )
    mean = np.mean(f1s, axis=0)
    lines.append(["mean", "", "", "", "", f"{mean[0]:.4f}", f"{mean[1]:.4f}", ""])
    return markdown_table(
        [
            "query title",
            "matches (query)",
            "matches (full run)",
            "same",
            "largest gap",
            "F1 (query)",
            "F1 (full run)",
            "full run s",
        ],
        lines,
    )


if __name__ == "__main__":
    main()
