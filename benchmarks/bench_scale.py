"""Scale benchmark: import and whole-catalog matching (titles + hashes) of a large generated
catalog, through the CLI as a user runs it, with wall time and peak RSS of each step.

    python benchmarks/bench_scale.py --postings 100000 --recall
    python benchmarks/bench_scale.py --catalog /tmp/scale/1m.csv --recall
    python benchmarks/bench_scale.py --catalog /tmp/scale/dense200k.csv --pipelines best \
        --model /tmp/best-model --queries 0

The catalog comes from ``make_scale_catalog.py`` (built into a temporary folder unless
``--catalog`` names one). Each step is its own process (``python -m core`` for import and
matching, this script's ``--query-worker`` for uploads), so its peak RSS is its own.

- each pipeline: ``evaluate`` (matching, storing the pairs, their clusters and figures, then
  F1) after the import, and the two steps' total (import + match + store); ``--from-csv``
  also runs ``match --catalog`` (import, match and store in one process, as a user would);
- upload queries: build (or load) the persisted query index, then time ``query_item`` for
  ``--queries`` new items (a posting's title rewritten by a seller, its hash 2 bits away),
  baseline and ensemble, model forward pass excluded (title + hash);
- ``--recall``: candidate recall of the large-catalog methods against exact ones: TF-IDF
  blocked on rare words vs X·Xᵀ, the ensemble's SequenceMatcher candidates vs all pairs (on a
  sample of rows), multi-index hashing vs a full Hamming scan, and HNSW recall@k vs exact FAISS
  on the ``.vectors.npy`` written by ``make_scale_catalog.py --vectors``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

try:
    from benchmarks.common import (
        SHARED,
        child_usage,
        load_line,
        machine_lines,
        markdown_table,
    )
    from benchmarks.make_scale_catalog import generate
except ImportError:  # run as a file: benchmarks/ itself is first on sys.path
    from common import SHARED, child_usage, load_line, machine_lines, markdown_table
    from make_scale_catalog import generate


def run_step(*args: object) -> tuple[float, float, str]:
    """(seconds, peak RSS in GiB, stdout) of one ``python -m core`` process."""
    command = [sys.executable, "-m", "core", *map(str, args)]
    return child_usage(command, f"step {' '.join(map(str, args))}")


def query_worker(db: Path, catalog: Path, queries: int) -> None:
    """Child process: index build/load time and per-query latency, as JSON on stdout."""
    import numpy as np
    import pandas as pd

    from core.query import NewItem, query_item
    from core.query_index import open_query_index
    from core.settings import MatchSettings
    from core.store import Store

    try:
        from benchmarks.make_scale_catalog import flip_bits, perturb
    except ImportError:
        from make_scale_catalog import flip_bits, perturb

    store = Store(db)
    started = time.perf_counter()
    index = open_query_index(store)
    built = time.perf_counter() - started
    started = time.perf_counter()
    index = open_query_index(store)
    loaded = time.perf_counter() - started
    rng = np.random.default_rng(1)
    sample = pd.read_csv(catalog, dtype=str, keep_default_na=False).sample(queries, random_state=1)
    settings = MatchSettings()
    figures = {"index_build_s": built, "index_load_s": loaded}
    for pipeline in ("baseline", "ensemble"):
        latencies, found = [], 0
        for row in sample.itertuples():
            # A hash stands in for the picture: the model forward pass is not what is timed.
            query_hash = flip_bits(int(row.image_phash, 16), 2, rng)
            item = NewItem(title=perturb(row.title, rng), phash=f"{query_hash:016x}")
            started = time.perf_counter()
            result = query_item(store, item, pipeline, settings, index=index)
            latencies.append(time.perf_counter() - started)
            found += bool((result["matched"] & (result["posting_id"] == row.posting_id)).any())
        figures[pipeline] = {
            "p50_ms": float(np.percentile(latencies, 50) * 1000),
            "p95_ms": float(np.percentile(latencies, 95) * 1000),
            "source_found": found / len(sample),
        }
    print(json.dumps(figures))


def recall_report(catalog: Path, sample_rows: int = 2_000) -> list[list[str]]:
    """Rows of (what, methods, exact, found by the engine's candidates, recall), on a seeded
    sample of postings searched against the whole catalog."""
    import numpy as np
    import pandas as pd
    from rapidfuzz import fuzz, process

    from core.candidates import DenseIndex, HashIndex, SparseIndex, fit_tfidf
    from core.images import hamming, phash_to_uint64
    from core.pipelines.ensemble import RATIO_CANDIDATE_COSINE
    from core.settings import MatchSettings
    from core.text import normalize_title

    settings = MatchSettings()
    k = settings.top_k
    frame = pd.read_csv(catalog, dtype=str, keep_default_na=False)
    titles = [normalize_title(t) for t in frame["title"]]
    n = len(titles)
    matrix = fit_tfidf(titles).matrix
    rng = np.random.default_rng(0)
    sample = np.sort(rng.choice(n, size=min(sample_rows, n), replace=False))
    rows = []

    def listed(nb) -> set[int]:
        found = set()
        for q, row in zip(nb.rows.tolist(), nb.index.tolist(), strict=True):
            found.update(q * n + j for j in row if j >= 0)
        return found

    started = time.perf_counter()
    used = SparseIndex("text", matrix)
    found = listed(used.search_rows(sample, k, settings.baseline_text_cosine))
    used_s = time.perf_counter() - started
    started = time.perf_counter()
    exact = listed(
        SparseIndex("text", matrix, cost_budget=float("inf")).search_rows(
            sample, k, settings.baseline_text_cosine
        )
    )
    exact_s = time.perf_counter() - started
    how = "exact" if not used.pruned_words else f"{used.pruned_words:,} frequent words left out"
    rows.append(
        [
            f"TF-IDF top-{k} >= {settings.baseline_text_cosine}, {len(sample):,} postings",
            f"engine ({how}) {used_s:.1f} s vs exact {exact_s:.1f} s",
            f"{len(exact):,}",
            f"{len(exact & found):,}",
            f"{len(exact & found) / max(1, len(exact)):.4f}",
        ]
    )

    # Ensemble text rule: each sampled posting's best k partners above the cutoff by exact
    # ratio (all pairs, rapidfuzz bound then difflib), against the word TF-IDF candidates the
    # engine scores past 50k titles (a posting keeps k matches at most, so its best k count).
    from core.candidates.ratio import sequence_ratio

    started = time.perf_counter()
    cutoff = settings.ensemble_text_ratio
    scores = process.cdist(
        [titles[i] for i in sample],
        titles,
        scorer=fuzz.ratio,
        score_cutoff=cutoff * 100 - 1e-3,
        workers=-1,
    )
    truth = set()
    for r in range(len(sample)):
        a = int(sample[r])
        found_ratios = []
        for c in np.flatnonzero(scores[r]).tolist():
            if c != a and titles[a] and titles[c]:
                first, second = (a, c) if a < c else (c, a)
                ratio = sequence_ratio(titles[first], titles[second])
                if ratio > cutoff:
                    found_ratios.append((-ratio, c))
        truth.update(a * n + c for _, c in sorted(found_ratios)[:k])
    exact_s = time.perf_counter() - started
    candidates = listed(used.search_rows(sample, k, RATIO_CANDIDATE_COSINE))
    rows.append(
        [
            f"SequenceMatcher > {cutoff}: each of {len(sample):,} postings' best {k}",
            f"all pairs {exact_s:.0f} s vs TF-IDF top-{k} >= {RATIO_CANDIDATE_COSINE}",
            f"{len(truth):,}",
            f"{len(truth & candidates):,}",
            f"{len(truth & candidates) / max(1, len(truth)):.4f}",
        ]
    )

    hashes, present = phash_to_uint64(frame["image_phash"].tolist())
    started = time.perf_counter()
    index = HashIndex("hash", hashes, present, settings.hash_max_distance)
    found = listed(index.search_rows(sample, k))
    hash_s = time.perf_counter() - started
    truth = set()
    for q in sample.tolist():
        if present[q]:
            close = np.flatnonzero(present & (hamming(hashes, hashes[q]) <= 8))
            truth.update(q * n + int(j) for j in close if j != q)
    # A posting with more than k close hashes lists k of them: recall counts up to k each.
    capped = sum(min(k, sum(1 for key in truth if key // n == q)) for q in sample.tolist())
    rows.append(
        [
            f"pHash <= {settings.hash_max_distance} bits, top-{k}, {len(sample):,} postings",
            f"{type(index._index).__name__} {hash_s:.1f} s vs full Hamming scan",
            f"{capped:,}",
            f"{len(truth & found):,}",
            f"{len(truth & found) / max(1, capped):.4f}",
        ]
    )

    vectors_path = catalog.with_suffix(catalog.suffix + ".vectors.npy")
    if vectors_path.exists():
        vectors = np.ascontiguousarray(np.load(vectors_path, mmap_mode="r"), dtype=np.float32)
        top = 10
        started = time.perf_counter()
        exact = DenseIndex("image", vectors, backend="faiss").search_rows(sample, top)
        flat_s = time.perf_counter() - started
        started = time.perf_counter()
        approx = DenseIndex("image", vectors, backend="hnsw").search_rows(sample, top)
        hnsw_s = time.perf_counter() - started
        hits = len(listed(exact) & listed(approx))
        rows.append(
            [
                f"image vectors ({vectors.shape[1]}-d) top-{top}, {len(sample):,} queries",
                f"exact FAISS {flat_s:.1f} s vs HNSW build+search {hnsw_s:.1f} s",
                f"{len(sample) * top:,}",
                f"{hits:,}",
                f"{hits / (len(sample) * top):.4f} (recall@{top})",
            ]
        )
    return rows


def pipeline_rows(
    pipeline: str, db: Path, imported: tuple[float, float] | None, model: Path | None
) -> list[list[str]]:
    """The pipeline's match + store + score step (``evaluate``: matching, storing the pairs,
    clusters and figures, then F1) and, after an import, the two steps' total."""
    model_args = ["--model", model] if pipeline == "best" and model else []
    seconds, rss, out = run_step(
        "evaluate", "--db", db, "--pipeline", pipeline, "--hash-only", "--json", *model_args
    )
    figures = json.loads(out)[pipeline]
    stages = ", ".join(f"{k} {v:.0f} s" for k, v in figures.get("stages", {}).items())
    rows = [
        [
            f"{pipeline} match + store + score",
            f"{seconds:.1f}",
            f"{rss:.2f}",
            f"matching {figures['seconds']:.1f} s ({stages}); F1 {figures['f1']:.4f}, "
            f"precision {figures['precision']:.4f}, recall {figures['recall']:.4f}; "
            f"as clusters F1 {figures['cluster_f1']:.4f}; {figures['capped']:,} "
            "postings at the 50-match cap",
        ]
    ]
    if imported is not None:
        rows.append(
            [
                f"total: import + {pipeline} match + store + score",
                f"{imported[0] + seconds:.1f}",
                f"{max(imported[1], rss):.2f}",
                "the two steps above: time summed, the larger peak",
            ]
        )
    return rows


def from_csv_row(pipeline: str, catalog: Path, model: Path | None) -> list[str]:
    """``match --catalog``: import, match and store in one process, as a user runs it."""
    model_args = ["--model", model] if pipeline == "best" and model else []
    seconds, rss, out = run_step(
        "match", "--catalog", catalog, "--pipeline", pipeline, "--hash-only", *model_args
    )
    said = [line for line in out.splitlines() if line.startswith(f"{pipeline}:")]
    return [
        f"{pipeline} from the CSV, one process (match --catalog)",
        f"{seconds:.1f}",
        f"{rss:.2f}",
        said[-1] if said else out.strip()[-200:],
    ]


def query_row(db: Path, catalog: Path, queries: int, home: Path) -> list[str]:
    """The upload queries' step: index build and load, each pipeline's latency."""
    seconds, rss, out = run_script("--query-worker", db, catalog, queries, env_home=home)
    figures = json.loads(out)
    build, load = figures["index_build_s"], figures["index_load_s"]
    notes = [f"index build {build:.1f} s, load {load:.1f} s"]
    for pipeline in ("baseline", "ensemble"):
        q = figures[pipeline]
        notes.append(
            f"{pipeline} p50 {q['p50_ms']:.1f} ms, p95 {q['p95_ms']:.1f} ms, source "
            f"posting matched {q['source_found']:.0%}"
        )
    return [f"{queries} upload queries", f"{seconds:.1f}", f"{rss:.2f}", "; ".join(notes)]


def run_script(*args: object, env_home: Path) -> tuple[float, float, str]:
    """(seconds, peak RSS in GiB, stdout) of this script run as a child process."""
    env = {**os.environ, "SAMESAME_HOME": str(env_home)}
    return child_usage([sys.executable, __file__, *map(str, args)], "query worker", env)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postings", type=int, default=100_000)
    parser.add_argument("--catalog", type=Path, help="an existing generated catalog CSV")
    parser.add_argument("--pipelines", default="baseline,ensemble")
    parser.add_argument("--source", type=Path, default=SHARED / "data" / "shopee" / "train.csv")
    parser.add_argument("--queries", type=int, default=200, help="upload queries to time")
    parser.add_argument(
        "--db", type=Path, help="keep the database here (and reuse it when it exists: no import)"
    )
    parser.add_argument("--recall", action="store_true", help="measure candidate recall")
    parser.add_argument("--model", type=Path, help="a trained best model folder (--pipelines best)")
    parser.add_argument("--shape", choices=["dev", "dense"], default="dev", help="see generator")
    parser.add_argument(
        "--from-csv",
        action="store_true",
        help="also time each pipeline from the CSV in one process (match --catalog: import, "
        "match and store the pairs in a temporary database)",
    )
    return parser.parse_args()


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--query-worker":
        query_worker(Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4]))
        return
    args = parse_args()

    print("## Scale: import and whole-catalog matching (titles + hashes)\n")
    print("\n".join(machine_lines()))
    started_all = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        catalog = args.catalog
        if catalog is None:
            catalog = Path(tmp) / "catalog.csv"
            started = time.perf_counter()
            written, products = generate(
                args.source, args.postings, catalog, seed=0, shape=args.shape
            )
            print(
                f"- catalog: {written:,} generated postings of {products:,} products "
                f"(make_scale_catalog.py --shape {args.shape}, seed 0) in "
                f"{time.perf_counter() - started:.0f} s"
            )
        else:
            print(f"- catalog: {catalog}")
        db = args.db or Path(tmp) / "scale.db"
        rows = []
        imported = None
        if args.db is None or not args.db.exists():
            seconds, rss, out = run_step("import", catalog, "--db", db)
            rows.append(["import", f"{seconds:.1f}", f"{rss:.2f}", out.strip().splitlines()[0]])
            imported = (seconds, rss)
        for pipeline in filter(None, args.pipelines.split(",")):
            added = pipeline_rows(pipeline, db, imported, args.model)
            if args.from_csv:
                added.append(from_csv_row(pipeline, catalog, args.model))
            for row in added:
                print(f"  {row}", flush=True)
            rows += added
        if args.queries:
            # Query indexes live in the data folder; keep one beside a reused database.
            home = args.db.with_suffix(".home") if args.db else Path(tmp) / "home"
            rows.append(query_row(db, catalog, args.queries, home))
            print(f"  {rows[-1]}", flush=True)
    print()
    print(markdown_table(["step (one process each)", "wall s", "peak RSS GiB", "notes"], rows))
    if args.recall:
        print()
        print("Candidate recall of the large-catalog methods against exact search:\n")
        print(
            markdown_table(
                ["pairs", "methods", "exact", "found by candidates", "recall"],
                recall_report(catalog),
            )
        )
    print()
    print(load_line())
    print(f"- benchmark wall time: {time.perf_counter() - started_all:.0f} s")


if __name__ == "__main__":
    main()
