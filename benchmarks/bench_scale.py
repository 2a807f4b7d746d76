"""Scale benchmark: import and whole-catalog matching (titles + hashes) of a large generated
catalog, through the CLI as a user runs it, with wall time and peak RSS of each step.

    python benchmarks/bench_scale.py --postings 100000 --recall
    python benchmarks/bench_scale.py --catalog /tmp/scale/1m.csv --recall

The catalog comes from ``make_scale_catalog.py`` (built into a temporary folder unless
``--catalog`` names one). Each step is its own process (``python -m core`` for import and
matching, this script's ``--query-worker`` for uploads), so its peak RSS is its own.

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


def query_worker(db: Path, catalog: Path, queries: int) -> None:
    """Child process: index build/load time and per-query latency, as JSON on stdout."""
    import numpy as np
    import pandas as pd

    from core.query import NewItem, query_with_index
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
            result = query_with_index(store, index, item, pipeline, settings)
            latencies.append(time.perf_counter() - started)
            found += bool((result["matched"] & (result["posting_id"] == row.posting_id)).any())
        figures[pipeline] = {
            "p50_ms": float(np.percentile(latencies, 50) * 1000),
            "p95_ms": float(np.percentile(latencies, 95) * 1000),
            "source_found": found / len(sample),
        }
    print(json.dumps(figures))


def recall_report(catalog: Path, sample_rows: int = 2_000) -> list[list[str]]:
    """Rows of (what, method, exact, candidates kept, recall, seconds)."""
    import numpy as np
    import pandas as pd
    from core.neighbours import search
    from core.similarity import (
        RATIO_CANDIDATE_COSINE,
        hash_pairs_within,
        tfidf_pairs_above,
        tfidf_pairs_blocked,
    )
    from rapidfuzz import fuzz, process

    from core.images import phash_to_uint64
    from core.text import normalize_title, tfidf_vectors

    frame = pd.read_csv(catalog, dtype=str, keep_default_na=False)
    titles = [normalize_title(t) for t in frame["title"]]
    n = len(titles)
    matrix = tfidf_vectors(titles)
    rows = []

    def keyed(left, right):
        return set((left.astype(np.int64) * n + right).tolist())

    started = time.perf_counter()
    left, right, _ = tfidf_pairs_blocked(matrix, 0.5)
    blocked_s = time.perf_counter() - started
    blocked = keyed(left, right)
    if n <= 200_000:
        started = time.perf_counter()
        el, er, _ = tfidf_pairs_above(matrix, 0.5, method="exact")
        exact_s = time.perf_counter() - started
        exact = keyed(el, er)
        rows.append(
            [
                "TF-IDF cosine >= 0.5 pairs",
                f"exact X·Xᵀ {exact_s:.1f} s vs blocked {blocked_s:.1f} s",
                f"{len(exact):,}",
                f"{len(blocked):,}",
                f"{len(exact & blocked) / max(1, len(exact)):.4f}",
            ]
        )
    else:
        rows.append(
            [
                "TF-IDF cosine >= 0.5 pairs",
                f"blocked {blocked_s:.1f} s",
                "-",
                f"{len(blocked):,}",
                "-",
            ]
        )

    # Ensemble text rule: exact pairs of a row sample against every title, vs the candidates.
    rng = np.random.default_rng(0)
    sample = np.sort(rng.choice(n, size=min(sample_rows, n), replace=False))
    started = time.perf_counter()
    scores = process.cdist(
        [titles[i] for i in sample], titles, scorer=fuzz.ratio, score_cutoff=54.999, workers=-1
    )
    import difflib

    truth = set()
    for r, c in zip(*np.nonzero(scores), strict=True):
        a, b = int(sample[r]), int(c)
        if a != b and titles[a] and titles[b]:
            first, second = (a, b) if a < b else (b, a)
            if difflib.SequenceMatcher(None, titles[first], titles[second]).ratio() > 0.55:
                truth.add(first * n + second)
    exact_s = time.perf_counter() - started
    cl, cr, _ = tfidf_pairs_blocked(matrix, RATIO_CANDIDATE_COSINE)
    candidates = keyed(cl, cr)
    rows.append(
        [
            f"SequenceMatcher > 0.55 pairs of {len(sample):,} sampled rows",
            f"all pairs {exact_s:.0f} s vs TF-IDF >= {RATIO_CANDIDATE_COSINE} candidates",
            f"{len(truth):,}",
            f"{len(truth & candidates):,}",
            f"{len(truth & candidates) / max(1, len(truth)):.4f}",
        ]
    )

    hashes, present = phash_to_uint64(frame["image_phash"].tolist())
    started = time.perf_counter()
    ml, mr, _ = hash_pairs_within(hashes, present, 8, backend="multihash")
    multi_s = time.perf_counter() - started
    if n <= 200_000:
        started = time.perf_counter()
        fl, fr, _ = hash_pairs_within(hashes, present, 8, backend="faiss")
        flat_s = time.perf_counter() - started
        flat, multi = keyed(fl, fr), keyed(ml, mr)
        rows.append(
            [
                "pHash <= 8 bits pairs",
                f"full scan {flat_s:.1f} s vs multi-index hashing {multi_s:.1f} s",
                f"{len(flat):,}",
                f"{len(multi):,}",
                f"{len(flat & multi) / max(1, len(flat)):.4f}",
            ]
        )
    else:
        rows.append(
            [
                "pHash <= 8 bits pairs",
                f"multi-index hashing {multi_s:.1f} s",
                "-",
                f"{len(ml):,}",
                "-",
            ]
        )

    vectors_path = catalog.with_suffix(catalog.suffix + ".vectors.npy")
    if vectors_path.exists():
        vectors = np.load(vectors_path, mmap_mode="r")
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        queries = vectors[sample]
        k = 10
        started = time.perf_counter()
        _, exact_idx = search(vectors, queries, k, backend="faiss")
        flat_s = time.perf_counter() - started
        started = time.perf_counter()
        _, approx_idx = search(vectors, queries, k, backend="hnsw")
        hnsw_s = time.perf_counter() - started
        hits = sum(
            len(set(a.tolist()) & set(b.tolist()))
            for a, b in zip(exact_idx, approx_idx, strict=True)
        )
        rows.append(
            [
                f"image vectors ({vectors.shape[1]}-d) top-{k}, {len(sample):,} queries",
                f"exact FAISS {flat_s:.1f} s vs HNSW build+search {hnsw_s:.1f} s",
                f"{len(sample) * k:,}",
                f"{hits:,}",
                f"{hits / (len(sample) * k):.4f} (recall@{k})",
            ]
        )
    return rows


def run_script(*args: object, env_home: Path) -> tuple[float, float, str]:
    """(seconds, peak RSS in GiB, stdout) of this script run as a child process."""
    env = {**os.environ, "SAMESAME_HOME": str(env_home)}
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, __file__, *map(str, args)], cwd=ROOT, stdout=out, stderr=err, env=env
        )
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"query worker failed:\n{err.read()[-2000:]}")
        return seconds, usage.ru_maxrss / 2**20, out.read()


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--query-worker":
        query_worker(Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4]))
        return
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
        db = args.db or Path(tmp) / "scale.db"
        rows = []
        if args.db is None or not args.db.exists():
            seconds, rss, out = run_step("import", catalog, "--db", db)
            rows.append(["import", f"{seconds:.1f}", f"{rss:.2f}", out.strip().splitlines()[0]])
        for pipeline in filter(None, args.pipelines.split(",")):
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
        if args.queries:
            # Query indexes live in the data folder; keep one beside a reused database.
            home = args.db.with_suffix(".home") if args.db else Path(tmp) / "home"
            seconds, rss, out = run_script(
                "--query-worker", db, catalog, args.queries, env_home=home
            )
            figures = json.loads(out)
            build, load = figures["index_build_s"], figures["index_load_s"]
            notes = [f"index build {build:.1f} s, load {load:.1f} s"]
            for pipeline in ("baseline", "ensemble"):
                q = figures[pipeline]
                notes.append(
                    f"{pipeline} p50 {q['p50_ms']:.1f} ms, p95 {q['p95_ms']:.1f} ms, source "
                    f"posting matched {q['source_found']:.0%}"
                )
            rows.append(
                [f"{args.queries} upload queries", f"{seconds:.1f}", f"{rss:.2f}", "; ".join(notes)]
            )
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
