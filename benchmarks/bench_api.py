"""The HTTP API under load (issue: matching as a service): `python -m core serve` in its own
process, N concurrent clients each sending M requests, latency percentiles and errors.

    python benchmarks/bench_api.py [--clients 8] [--requests 50] [--db PATH] [--images]

Without --db the 27k Shopee dev catalog is imported into a scratch database. Requests are real
postings re-posted by a new seller: the title's words reversed, the photo's hash two bits
away (title + hash, as a shop's system that already hashed the photo would send). With
--images, photo uploads against the grocery catalog (549 real photos, MobileNet 0.25 vectors).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from common import ROOT, SHARED, machine_lines, markdown_table

from tests.e2e.app_server import free_port


def start_server(db: Path, home: Path, workers: int) -> tuple[subprocess.Popen, str]:
    import requests

    port = free_port()
    env = {**os.environ, "SAMESAME_HOME": str(home)}
    process = subprocess.Popen(
        [
            sys.executable,
            *("-m", "core", "--db", str(db), "serve", "--port", str(port)),
            *("--workers", str(workers)),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    started = time.perf_counter()
    while True:
        try:
            requests.get(f"{url}/v1/health", timeout=5)
            break
        except requests.ConnectionError:
            if process.poll() is not None:
                raise SystemExit("the server did not start") from None
            time.sleep(0.2)
    print(f"server ready in {time.perf_counter() - started:.1f} s (index loaded)", flush=True)
    return process, url


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its worker processes so far (Linux)."""
    total = 0.0
    for task in [pid, *_children(pid)]:
        try:
            fields = Path(f"/proc/{task}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    try:
        found = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    return [int(c) for c in found] + [g for c in found for g in _children(int(c))]


def load(url: str, make_request, clients: int, per_client: int, pid: int) -> dict:
    """Every client sends its requests one after another; all clients at once."""
    import requests

    def client(c: int) -> list[tuple[float, int]]:
        session = requests.Session()
        out = []
        for r in range(per_client):
            kwargs = make_request(c * per_client + r)
            started = time.perf_counter()
            try:
                status = session.post(url, timeout=60, **kwargs).status_code
            except requests.RequestException:
                status = -1
            out.append((time.perf_counter() - started, status))
        return out

    started, cpu = time.perf_counter(), cpu_seconds(pid)
    with ThreadPoolExecutor(clients) as pool:
        timings = [t for part in pool.map(client, range(clients)) for t in part]
    wall = time.perf_counter() - started
    seconds = sorted(t for t, _ in timings)
    return {
        "requests": len(timings),
        "p50_ms": 1000 * statistics.median(seconds),
        "p95_ms": 1000 * seconds[int(0.95 * (len(seconds) - 1))],
        "max_ms": 1000 * seconds[-1],
        "per_s": len(timings) / wall,
        "errors": sum(status != 200 for _, status in timings),
        "server_cpu_ms": 1000 * (cpu_seconds(pid) - cpu) / len(timings),
    }


def title_hash_requests(db: Path, count: int, seed: int):
    import numpy as np

    from core.store import Store

    with Store(db) as store:
        frame = store.postings(columns=["posting_id", "title", "image_phash"])
    frame = frame[frame["image_phash"].notna()].sample(count, random_state=seed)
    rng = np.random.default_rng(seed)
    items = [
        {
            "title": " ".join(str(title).split()[::-1]),
            "phash": f"{int(h, 16) ^ (1 << int(rng.integers(64))) ^ (2 << int(rng.integers(63))):016x}",  # noqa: E501
        }
        for title, h in zip(frame["title"], frame["image_phash"], strict=True)
    ]
    return items


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, help="a prepared database (default: import Shopee)")
    parser.add_argument("--catalog", type=Path, default=SHARED / "data" / "shopee" / "train.csv")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=50, help="per client")
    parser.add_argument("--pipelines", default="baseline,ensemble")
    parser.add_argument("--images", action="store_true", help="also photo uploads (grocery)")
    parser.add_argument("--workers", type=int, default=1, help="server processes")
    parser.add_argument(
        "--home", type=Path, help="data folder (keeps the query index between runs)"
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from core.catalog import import_catalog
    from core.store import Store

    rows = []
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        home = args.home or work / "home"
        db = args.db
        if db is None:
            db = work / "catalog.db"
            with Store(db) as store:
                import_catalog(store, args.catalog)
        with Store(db) as store:
            postings = store.count_postings()
        items = title_hash_requests(db, args.clients * args.requests, args.seed)
        process, url = start_server(db, home, args.workers)
        try:
            for pipeline in args.pipelines.split(","):
                figures = load(
                    f"{url}/v1/match",
                    lambda i, p=pipeline: {"data": {**items[i], "pipeline": p}},
                    args.clients,
                    args.requests,
                    process.pid,
                )
                rows.append([f"title + hash, {pipeline}", f"{postings:,}", *_cells(figures)])
                print(rows[-1], flush=True)
        finally:
            process.terminate()
            process.wait(30)
        if args.images:
            rows.append(_image_row(work, args))
    print("\n".join(machine_lines()))
    print(
        f"{args.clients} concurrent clients x {args.requests} requests each, "
        f"{args.workers} server process(es)\n"
    )
    print(
        markdown_table(
            [
                "requests",
                "catalog",
                "p50 ms",
                "p95 ms",
                "max ms",
                "requests/s",
                "errors",
                "server CPU ms/request",
            ],
            rows,
        )
    )


def _cells(figures: dict) -> list[str]:
    return [
        f"{figures['p50_ms']:.0f}",
        f"{figures['p95_ms']:.0f}",
        f"{figures['max_ms']:.0f}",
        f"{figures['per_s']:.1f}",
        f"{figures['errors']}/{figures['requests']}",
        f"{figures['server_cpu_ms']:.1f}",
    ]


def _image_row(work: Path, args) -> list[str]:
    """Photo uploads against the grocery catalog, embedded with MobileNet 0.25."""
    import pandas as pd

    from core import models
    from core.catalog import import_catalog
    from core.settings import MatchSettings
    from core.store import Store

    grocery = SHARED / "data" / "grocery"
    home = work / "home-images"
    os.environ["SAMESAME_HOME"] = str(home)  # the machine settings below go there
    settings = MatchSettings(image_alpha=0.25, weights_dir=str(SHARED / "weights"))
    db = work / "grocery.db"
    with Store(db) as store:
        import_catalog(store, grocery / "catalog.csv", grocery / "images")
        store.save_settings(settings)
        models.embed_images(store, settings)
        paths = store.postings()["image_path"].dropna().tolist()
    photos = [Path(p).read_bytes() for p in pd.Series(paths).sample(50, random_state=0)]
    process, url = start_server(db, home, args.workers)
    try:
        figures = load(
            f"{url}/v1/match",
            lambda i: {
                "files": {"image": ("photo.jpg", photos[i % len(photos)])},
                "data": {"pipeline": "baseline"},
            },
            args.clients,
            max(1, args.requests // 5),
            process.pid,
        )
    finally:
        process.terminate()
        process.wait(30)
    return ["photo upload, baseline (MobileNet 0.25)", f"{len(paths):,}", *_cells(figures)]


if __name__ == "__main__":
    main()
