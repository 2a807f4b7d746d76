"""The HTTP routes (FastAPI): thin, as the app's pages are; the answers are `core.service.answers`.

Answers are computed in worker threads, in two lanes (`QUICK_THREADS`, `SLOW_THREADS`), so a
slow request (a photo to embed, the best matcher's features) does not hold up quick ones and
the event loop keeps accepting requests.
"""

from __future__ import annotations

import logging
import os
import shutil
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

# FastAPI reads the routes' annotations from this module's names: its imports stay up here
# (this module is imported only to serve).
import anyio
import anyio.to_thread
from fastapi import FastAPI, File, Form, Query, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel, Field
from starlette.background import BackgroundTask

from core.errors import SameSameError
from core.exports import mime_type
from core.pipelines import PIPELINES, get_pipeline, most_accurate_first
from core.query_models import image_evidence
from core.service.answers import (
    MAX_BATCH,
    MAX_LIMIT,
    ItemRequest,
    RequestError,
    export_file,
    health,
    match_item,
    posting_answer,
)
from core.service.limits import ApiKey, BodyLimit, error_body, read_api_key
from core.service.models import ServiceModels

logger = logging.getLogger("core.service")


class BatchItem(BaseModel):
    title: str | None = Field(None, description="the listing's title")
    phash: str | None = Field(None, description="its photo's perceptual hash, 16 hex digits")


class BatchRequest(BaseModel):
    items: list[BatchItem] = Field(..., max_length=MAX_BATCH)
    pipeline: str | None = None
    limit: int = Field(10, ge=1, le=MAX_LIMIT)


#: Threads answering quick requests (titles and hashes under rule pipelines, postings,
#: health) and slow ones (photos to embed, a trained model's catalog-wide features). Python runs
#: one thread at a time: measured on 2 cores, 8 concurrent title requests took p95 66 ms with
#: one quick thread, 96 ms with two, 124 ms with four and 180 ms with 40 (BENCHMARKS.md). Slow
#: requests have their own lane, so they never hold up the quick ones.
QUICK_THREADS = 1
SLOW_THREADS = 2
#: Batches of more items than this take the slow lane.
QUICK_BATCH = 10

#: Largest request body accepted (an image upload), unless `create_app` is told otherwise.
DEFAULT_MAX_UPLOAD_BYTES = 10 * 2**20


class _Lanes:
    """The worker-thread lanes answers run in (`QUICK_THREADS`, `SLOW_THREADS`, and one for
    health checks); opened at start-up, inside the event loop that uses them."""

    def __init__(self) -> None:
        self.limiters: dict[str, anyio.CapacityLimiter] = {}

    def open(self) -> None:
        self.limiters["quick"] = anyio.CapacityLimiter(QUICK_THREADS)
        self.limiters["slow"] = anyio.CapacityLimiter(SLOW_THREADS)
        self.limiters["health"] = anyio.CapacityLimiter(1)

    async def run(self, lane: str, work, *args):
        """``work(*args)`` in a thread of ``lane``."""
        return await anyio.to_thread.run_sync(work, *args, limiter=self.limiters[lane])


def _lifespan(models: ServiceModels, lanes: _Lanes, warm: bool):
    """Start-up: the lanes, then (with ``warm``) what the first requests would wait for."""

    @asynccontextmanager
    async def lifespan(_app):
        lanes.open()
        if warm:  # before the port opens: a health check never meets a cold service
            try:
                warm_up(models)
            except Exception:  # a cold first request is better than no service
                logger.exception("warming up failed")
        yield

    return lifespan


def _error_field(location: tuple) -> str | None:
    """The request field a validation error's location names (``items[0].title``), without
    the part of the request it came in (body, query)."""
    field = ""
    for part in location:
        if part in ("body", "query"):
            continue
        field += f"[{part}]" if isinstance(part, int) else f".{part}" if field else str(part)
    return field or None


def _add_error_handlers(app: FastAPI) -> None:
    """Every refusal and failure as the service's one error body, with its status."""

    @app.exception_handler(RequestError)
    async def _refused(_request, exc: RequestError) -> JSONResponse:
        return JSONResponse(error_body(exc.field, str(exc)), status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        field = _error_field(first.get("loc", ()))
        return JSONResponse(error_body(field, first.get("msg", "invalid request")), 422)

    @app.exception_handler(SameSameError)
    async def _cannot(_request, exc: SameSameError) -> JSONResponse:
        # A problem the user can act on (a model to train, weights to put in place).
        return JSONResponse(error_body(None, str(exc)), status_code=409)

    @app.exception_handler(Exception)
    async def _failed(_request, exc: Exception) -> JSONResponse:
        # The traceback goes to the server's log (Starlette logs it), never to the client.
        return JSONResponse(
            error_body(None, "internal error: the server's log has the details"), 500
        )


def _needs_model(pipeline: str | None) -> bool:
    """Whether the named pipeline answers from a trained model (its features are slow)."""
    return pipeline in PIPELINES and get_pipeline(pipeline).needs_model


def _add_match_routes(app: FastAPI, models: ServiceModels, lanes: _Lanes) -> None:
    """Matching one new listing, or a batch of them."""

    @app.post("/v1/match", summary="Match one new listing (photo and/or title)")
    async def match(
        image: Annotated[UploadFile | None, File(description="the listing's photo")] = None,
        title: Annotated[str | None, Form(description="the listing's title")] = None,
        phash: Annotated[str | None, Form(description="or its photo's perceptual hash")] = None,
        pipeline: Annotated[
            str | None, Form(description="default: the most accurate ready")
        ] = None,
        limit: Annotated[int, Form(ge=1, le=MAX_LIMIT, description="most postings listed")] = 10,
    ) -> dict[str, Any]:
        data = await image.read() if image is not None else None
        slow = data is not None or _needs_model(pipeline)
        request = ItemRequest(title, data, phash)
        lane = "slow" if slow else "quick"
        return await lanes.run(lane, match_item, models, request, pipeline, limit)

    @app.post("/v1/match/batch", summary="Match many listings given by title and/or hash")
    async def match_batch(body: BatchRequest) -> dict[str, Any]:
        requests = [
            ItemRequest(item.title, None, item.phash, where=f"items[{i}].")
            for i, item in enumerate(body.items)
        ]
        for request in requests:  # refuse the whole batch before any work
            request.new_item()

        def answers() -> list[dict[str, Any]]:
            return [match_item(models, r, body.pipeline, body.limit) for r in requests]

        slow = len(requests) > QUICK_BATCH or _needs_model(body.pipeline)
        return {"results": await lanes.run("slow" if slow else "quick", answers)}


def _add_catalog_routes(app: FastAPI, models: ServiceModels, lanes: _Lanes) -> None:
    """What the catalog holds: a posting, the exports, the service's health."""

    @app.get("/v1/postings/{posting_id}", summary="A catalog posting and its stored matches")
    async def posting(posting_id: str) -> dict[str, Any]:
        return await lanes.run("quick", posting_answer, models, posting_id)

    @app.get("/v1/exports/{what}", summary="Matches, clusters, verdicts or kaggle as a file")
    async def exported(
        what: str,
        pipeline: str | None = None,
        fmt: Annotated[str, Query(alias="format", description="csv or xlsx")] = "csv",
    ) -> FileResponse:
        path = await lanes.run("slow", export_file, models, what, fmt, pipeline)
        return FileResponse(
            path,
            media_type=mime_type(fmt),
            filename=path.name,
            background=BackgroundTask(shutil.rmtree, path.parent, True),
        )

    @app.get("/v1/health", summary="Catalog revision and which pipelines are ready")
    async def healthy() -> dict[str, Any]:
        # Its own lane: a monitor's probe never waits behind a long batch or an index build.
        return await lanes.run("health", health, models)


def create_app(
    db_path: Path,
    *,
    api_key: str | None = None,
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
    warm: bool = True,
):
    """The ASGI application serving one database (FastAPI inside the body-size and API-key
    guards). ``warm`` loads the default pipeline's query index at start-up, so the first
    request does not wait for it."""
    models = ServiceModels(Path(db_path))
    lanes = _Lanes()
    app = FastAPI(
        lifespan=_lifespan(models, lanes, warm),
        title="SameSame",
        summary="Which catalog postings are the same product as a new listing.",
        version="1",
    )
    _add_error_handlers(app)
    _add_match_routes(app, models, lanes)
    _add_catalog_routes(app, models, lanes)
    guarded = BodyLimit(app, max_upload_bytes)
    return ApiKey(guarded, api_key) if api_key else guarded


#: How `serve` tells its worker processes what to serve (they import `app_from_environment`).
WORKER_CONFIG_ENV = "SAMESAME_SERVICE_CONFIG"


def app_from_environment():
    """The application a worker process serves, as `serve` described it (uvicorn factory)."""
    import json

    options = json.loads(os.environ[WORKER_CONFIG_ENV])
    key_file = options.get("api_key_file")
    return create_app(
        Path(options["db"]),
        api_key=read_api_key(key_file) if key_file else None,
        max_upload_bytes=int(options["max_upload_bytes"]),
    )


def warm_up(models: ServiceModels) -> None:
    """Load what the first requests would wait for: each rule pipeline's image model (when the
    catalog has its vectors) and the query index with those vectors."""
    store = models.store()
    if not store.count_postings():
        return
    settings = store.load_settings()
    for pipe in most_accurate_first():
        if pipe.needs_model or not pipe.readiness(store, settings).ready:
            continue
        evidence = image_evidence(store, settings, pipe, True, models.pretrained, models.siamese)
        models.indexes.get(store, evidence.model)


def serve(
    db_path: Path,
    host: str = "127.0.0.1",
    port: int = 8600,
    api_key_file: Path | None = None,
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
    workers: int = 1,
) -> None:
    """Run the service until interrupted. One process serves requests from its threads, but
    Python runs one of them at a time: ``workers`` processes (each with its own copy of the
    models and index) use more cores."""
    import json

    import uvicorn

    os.environ[WORKER_CONFIG_ENV] = json.dumps(
        {
            "db": str(db_path),
            # The key file's path, not the key: the environment is readable by other tools.
            "api_key_file": str(api_key_file) if api_key_file else None,
            "max_upload_bytes": max_upload_bytes,
        }
    )
    uvicorn.run(
        "core.service.app:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
    )
