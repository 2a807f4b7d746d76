"""The HTTP API (`core.service`) on a real uvicorn server on a free localhost port: every route
answers what `core.query` answers for the same item, bad input gets a 4xx naming the field,
the API key is enforced, a concurrent burst has no errors, and catalog changes are seen without
a restart."""

from __future__ import annotations

import csv
import http.client
import io
import json
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import pytest
import requests
from PIL import Image

from core import matching
from core.catalog import import_catalog
from core.pair_answers import pair_answers
from core.query import NewItem, add_to_catalog, query_item
from core.query_index import INDEXED_QUERY_FROM
from core.settings import MatchSettings
from core.store import Store
from core.verdict_words import VERDICT_WORDS
from tests.e2e.app_server import free_port

KEY = "k" * 24


class Server:
    """uvicorn serving `create_app` in a thread of the test process."""

    def __init__(self, db: Path, **options) -> None:
        import uvicorn

        from core.service.app import create_app

        self.port = free_port()
        config = uvicorn.Config(
            create_app(db, **options), host="127.0.0.1", port=self.port, log_level="warning"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.05)
        self.url = f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(30)


def shopee_subset(shopee_csv: Path, folder: Path, rows: int) -> Path:
    with shopee_csv.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        kept = [row for _, row in zip(range(rows), reader, strict=False)]
    path = folder / f"shopee-{rows}.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(kept[0]))
        writer.writeheader()
        writer.writerows(kept)
    return path


@pytest.fixture(scope="module")
def shopee_db(shopee_csv: Path, tmp_path_factory) -> Path:
    """6,000 real Shopee postings (titles + hashes): large enough for the query index."""
    folder = tmp_path_factory.mktemp("api")
    db = folder / "shopee.db"
    with Store(db) as store:
        import_catalog(store, shopee_subset(shopee_csv, folder, 6_000))
        assert store.count_postings() >= INDEXED_QUERY_FROM
        matching.run_pipeline(store, "baseline", MatchSettings())
    return db


@pytest.fixture(scope="module")
def shopee_api(shopee_db: Path):
    server = Server(shopee_db)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def queries(shopee_csv: Path) -> pd.DataFrame:
    """Real postings of the served catalog, re-posted with a reworded title."""
    frame = pd.read_csv(shopee_csv, dtype=str, keep_default_na=False).head(6_000)
    frame = frame.sample(12, random_state=5)
    frame["query_title"] = [" ".join(t.split()[::-1]) for t in frame["title"]]
    return frame


def expected(db: Path, item: NewItem, pipeline: str, limit: int = 10) -> list[tuple[str, bool]]:
    from core.query_index import open_query_index

    with Store(db) as store:
        index = open_query_index(store)
        frame = query_item(store, item, pipeline, store.load_settings(), index=index, top_n=limit)
    return list(zip(frame["posting_id"].head(limit), frame["matched"].head(limit), strict=True))


def answered(body: dict) -> list[tuple[str, bool]]:
    return [(r["posting_id"], r["matched"]) for r in body["results"]]


@pytest.mark.parametrize("pipeline", ["baseline", "ensemble"])
def test_title_and_hash_answers_equal_core_query(shopee_api, shopee_db, queries, pipeline):
    for row in queries.itertuples():
        reply = requests.post(
            f"{shopee_api.url}/v1/match",
            data={"title": row.query_title, "phash": row.image_phash, "pipeline": pipeline},
            timeout=60,
        )
        assert reply.status_code == 200, reply.text
        body = reply.json()
        assert body["pipeline"] == pipeline
        item = NewItem(title=row.query_title, phash=row.image_phash)
        assert answered(body) == expected(shopee_db, item, pipeline)
        # The re-posted listing finds its original.
        assert (row.posting_id, True) in answered(body)
        first = body["results"][0]
        assert set(first) == {
            *("posting_id", "title", "matched", "rule", "similarity", "scores"),
            *("verdict", "probability", "evidence"),
        }
        # Next to the scores, the answer in words: the same as every page and export gives.
        with Store(shopee_db) as store:
            from core.query_index import open_query_index

            settings = store.load_settings()
            index = open_query_index(store)
            frame = query_item(store, item, pipeline, settings, index=index, top_n=10).head(10)
            said = pair_answers(frame, pipeline, settings, store)
        assert [r["verdict"] for r in body["results"]] == said["answer"].tolist()
        assert [r["probability"] for r in body["results"]] == pytest.approx(
            said["probability"].tolist(), abs=1e-5
        )
        original = next(r for r in body["results"] if r["posting_id"] == row.posting_id)
        assert original["verdict"] in VERDICT_WORDS and "titles" in original["evidence"]


def test_batch_answers_equal_single_ones(shopee_api, queries):
    items = [
        {"title": t, "phash": h}
        for t, h in zip(queries["query_title"], queries["image_phash"], strict=True)
    ]
    reply = requests.post(
        f"{shopee_api.url}/v1/match/batch",
        json={"items": items, "pipeline": "baseline", "limit": 5},
        timeout=120,
    )
    assert reply.status_code == 200, reply.text
    batch = reply.json()["results"]
    assert len(batch) == len(items)
    for item, answer in zip(items, batch, strict=True):
        single = requests.post(
            f"{shopee_api.url}/v1/match",
            data={**item, "pipeline": "baseline", "limit": 5},
            timeout=60,
        ).json()
        assert answered(answer) == answered(single)
        assert len(answer["results"]) == 5


def test_health_and_postings(shopee_api, shopee_db, queries):
    health = requests.get(f"{shopee_api.url}/v1/health", timeout=30).json()
    with Store(shopee_db) as store:
        revision = store.catalog_revision
        posting_id = queries["posting_id"].iloc[0]
        stored = set(store.matches_of("baseline", posting_id)["posting_id"])
    assert health["catalog"] == {"postings": 6_000, "revision": revision}
    assert health["pipelines"]["baseline"]["ready"] is True
    assert health["pipelines"]["best"]["ready"] is False  # nothing trained here
    assert health["default_pipeline"] in {"baseline", "ensemble"}

    reply = requests.get(f"{shopee_api.url}/v1/postings/{posting_id}", timeout=30)
    assert reply.status_code == 200
    body = reply.json()
    assert body["title"] == queries["title"].iloc[0]
    assert set(body["matches"]["baseline"]) == stored
    answers = body["answers"]["baseline"]
    assert [a["posting_id"] for a in answers] == body["matches"]["baseline"]
    assert all(a["verdict"] in VERDICT_WORDS and 0 <= a["probability"] <= 1 for a in answers)
    assert all(a["evidence"].startswith("photos ") for a in answers)
    missing = requests.get(f"{shopee_api.url}/v1/postings/no-such-id", timeout=30)
    assert missing.status_code == 404
    assert missing.json()["error"]["field"] == "posting_id"
    assert requests.get(f"{shopee_api.url}/openapi.json", timeout=30).json()["paths"]


def png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("L", (width, height)).save(out, "PNG")
    return out.getvalue()


@pytest.mark.parametrize(
    ("files", "data", "status", "field", "words"),
    [
        ({}, {}, 400, "image", "image file or a title"),
        ({}, {"title": "  !! "}, 400, "title", "letter or digit"),
        ({"image": ("a.jpg", b"")}, {}, 400, "image", "empty"),
        ({"image": ("a.jpg", b"this is not a picture")}, {}, 400, "image", "not"),
        ({"image": ("a.png", png(40, 40)[:45])}, {}, 400, "image", "truncated"),
        ({"image": ("bomb.png", png(6_400, 6_400))}, {}, 400, "image", "over the limit"),
        ({}, {"title": "sabun", "pipeline": "nope"}, 400, "pipeline", "baseline, ensemble"),
        ({}, {"title": "sabun", "pipeline": "best"}, 409, "pipeline", "not ready"),
        ({}, {"title": "sabun", "limit": "0"}, 422, "limit", ""),
        ({}, {"title": "sabun", "phash": "xyz"}, 400, "phash", "16 hex"),
    ],
)
def test_bad_input_gets_a_4xx_naming_the_field(shopee_api, files, data, status, field, words):
    reply = requests.post(f"{shopee_api.url}/v1/match", files=files or None, data=data, timeout=60)
    assert reply.status_code == status, reply.text
    error = reply.json()["error"]
    assert error["field"] == field
    assert words.lower() in error["message"].lower()
    assert "Traceback" not in reply.text


def test_batch_errors_name_the_item(shopee_api):
    url = f"{shopee_api.url}/v1/match/batch"
    reply = requests.post(url, json={"items": [{"title": "sabun"}, {"phash": "no"}]}, timeout=30)
    assert reply.status_code == 400
    assert reply.json()["error"]["field"] == "items[1].phash"
    too_many = requests.post(url, json={"items": [{"title": "a"}] * 101}, timeout=30)
    assert too_many.status_code == 422
    assert too_many.json()["error"]["field"] == "items"
    wrong_type = requests.post(url, json={"items": [{"title": "a"}, {"title": 5}]}, timeout=30)
    assert wrong_type.status_code == 422
    assert wrong_type.json()["error"]["field"] == "items[1].title"
    empty_hash = requests.post(url, json={"items": [{"title": "sabun", "phash": ""}]}, timeout=30)
    assert empty_hash.status_code == 200
    not_json = requests.post(
        url, data=b"{", headers={"content-type": "application/json"}, timeout=30
    )
    assert not_json.status_code == 422


def test_oversize_upload_is_refused_before_its_body_is_read(shopee_db):
    server = Server(shopee_db, max_upload_bytes=100_000, warm=False)
    try:
        # Only the headers go out: the answer comes without waiting for the 50 MB body.
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        connection.putrequest("POST", "/v1/match")
        connection.putheader("Content-Type", "multipart/form-data; boundary=x")
        connection.putheader("Content-Length", str(50 * 2**20))
        connection.endheaders()
        reply = connection.getresponse()
        assert reply.status == 413
        assert json.loads(reply.read())["error"]["field"] == "image"
        connection.close()

        # A chunked body (no length given) is cut off once it passes the limit.
        def chunks():
            for _ in range(100):
                yield b"x" * 10_000

        chunked = requests.post(
            f"{server.url}/v1/match",
            data=chunks(),
            headers={"Content-Type": "multipart/form-data; boundary=x"},
            timeout=30,
        )
        assert chunked.status_code == 413
        small = requests.post(f"{server.url}/v1/match", data={"title": "sabun"}, timeout=60)
        assert small.status_code == 200
    finally:
        server.stop()


def test_api_key_is_required_when_set(shopee_db):
    server = Server(shopee_db, api_key=KEY, max_upload_bytes=100, warm=False)
    try:
        url = f"{server.url}/v1/health"
        assert requests.get(url, timeout=30).status_code == 401
        wrong = requests.get(url, headers={"X-API-Key": "k" * 23 + "j"}, timeout=30)
        assert wrong.status_code == 401
        assert wrong.json()["error"]["field"] == "X-API-Key"
        assert requests.get(url, headers={"X-API-Key": KEY}, timeout=30).status_code == 200
        bearer = requests.get(url, headers={"Authorization": f"Bearer {KEY}"}, timeout=30)
        assert bearer.status_code == 200
        # Without the key even an oversize upload gets 401, not 413: nothing is read.
        big = requests.post(f"{server.url}/v1/match", data=b"x" * 200, timeout=30)
        assert big.status_code == 401
        keyed = {"X-API-Key": KEY}
        too_big = requests.post(f"{server.url}/v1/match", data=b"x" * 200, headers=keyed)
        assert too_big.status_code == 413
        assert requests.get(f"{server.url}/docs", timeout=30).status_code == 200
    finally:
        server.stop()


def test_a_concurrent_burst_has_no_errors_and_the_same_answers(shopee_api, shopee_db, queries):
    rows = list(queries.itertuples())
    want = {
        row.posting_id: expected(
            shopee_db, NewItem(title=row.query_title, phash=row.image_phash), "baseline"
        )
        for row in rows
    }

    def ask(i: int):
        row = rows[i % len(rows)]
        reply = requests.post(
            f"{shopee_api.url}/v1/match",
            data={"title": row.query_title, "phash": row.image_phash, "pipeline": "baseline"},
            timeout=60,
        )
        return row.posting_id, reply.status_code, reply.json()

    with ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(ask, range(48)))
    assert [status for _, status, _ in replies] == [200] * 48
    for posting_id, _, body in replies:
        assert answered(body) == want[posting_id]


def test_catalog_changes_are_seen_without_a_restart(shopee_db, tmp_path):
    server = Server(shopee_db)
    added = None
    try:
        before = requests.get(f"{server.url}/v1/health", timeout=30).json()["catalog"]
        # "Add to catalog" from the app (or an import) writes through another connection.
        with Store(shopee_db) as store:
            added = add_to_catalog(
                store,
                NewItem(title="Zyxwv Quokka Teapot Deluxe 750ml", phash="a1b2c3d4e5f60718"),
                tmp_path / "uploads",
            )
        after = requests.get(f"{server.url}/v1/health", timeout=30).json()["catalog"]
        assert after["postings"] == before["postings"] + 1
        assert after["revision"] > before["revision"]
        reply = requests.post(
            f"{server.url}/v1/match",
            data={"title": "quokka teapot deluxe 750ml", "pipeline": "baseline"},
            timeout=60,
        ).json()
        assert reply["results"][0]["posting_id"] == added
        assert reply["results"][0]["matched"] is True
    finally:
        server.stop()
        if added is not None:
            with Store(shopee_db) as store:
                store.delete_postings([added])


def image_settings(weights_dir: Path) -> MatchSettings:
    return MatchSettings(image_alpha=0.25, weights_dir=str(weights_dir), batch_size=64)


@pytest.fixture(scope="module")
def demo_images_db(demo_catalog: Path, weights_dir: Path, tmp_path_factory) -> Path:
    """The demo catalog with real MobileNet 0.25 vectors, for photo uploads."""
    from core import models

    db = tmp_path_factory.mktemp("api_images") / "demo.db"
    settings = image_settings(weights_dir)
    with Store(db) as store:
        import_catalog(store, demo_catalog, demo_catalog.parent / "images")
        store.save_settings(settings)
        models.embed_images(store, settings)
    return db


def test_photo_uploads_are_embedded_like_the_compare_page(demo_images_db: Path, weights_dir):
    from core import models

    server = Server(demo_images_db, warm=False)
    try:
        with Store(demo_images_db) as store:
            # The image model is a machine setting: this test's data folder needs it too.
            store.save_settings(image_settings(weights_dir))
            settings = store.load_settings()
            embedder = models.load_image_embedder(settings)
            model = (models.image_model_name(settings), "imagenet")
            rows = list(store.postings().iloc[::90].itertuples())
            for row in rows:
                photo = Path(row.image_path).read_bytes()
                reply = requests.post(
                    f"{server.url}/v1/match",
                    files={"image": ("photo.jpg", photo)},
                    data={"pipeline": "baseline"},
                    timeout=120,
                )
                assert reply.status_code == 200, reply.text
                item = NewItem(image=photo)
                frame = query_item(
                    store, item, "baseline", settings, image_embedder=embedder, image_model=model
                )
                body = reply.json()
                assert answered(body) == list(
                    zip(frame["posting_id"].head(10), frame["matched"].head(10), strict=True)
                )
                assert body["matched"] == int(frame["matched"].sum())
                first = body["results"][0]
                assert first["posting_id"] == row.posting_id or first[
                    "similarity"
                ] == pytest.approx(1.0)
                assert first["scores"]["image_cosine"] == pytest.approx(1.0, abs=1e-4)
    finally:
        server.stop()


def serve_command(db: Path, *args: object) -> list[str]:
    """``python -m core --db DB serve ARGS`` as a user types it."""
    return [sys.executable, "-m", "core", "--db", str(db), "serve", *map(str, args)]


def test_serve_command_checks_its_key_file_and_serves(shopee_db, tmp_path):
    short = tmp_path / "short.key"
    short.write_text("abc")
    refused = subprocess.run(
        serve_command(shopee_db, "--api-key-file", short),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert refused.returncode == 2
    assert "shorter than 16" in refused.stderr
    key = tmp_path / "api.key"
    key.write_text(KEY + "\n")
    port = free_port()
    process = subprocess.Popen(
        serve_command(shopee_db, "--port", port, "--api-key-file", key),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                reply = requests.get(
                    f"http://127.0.0.1:{port}/v1/health", headers={"X-API-Key": KEY}, timeout=5
                )
                break
            except requests.ConnectionError:
                assert process.poll() is None, process.stdout.read()
                assert time.monotonic() < deadline
                time.sleep(0.25)
        assert reply.status_code == 200
        assert reply.json()["catalog"]["postings"] == 6_000
    finally:
        process.terminate()
        process.wait(30)
