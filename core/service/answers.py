"""The service's answers, apart from HTTP: a new item's matches through the same query path as
the Compare page (`core.query.query_item`, the persisted query index on large catalogs), a
stored posting with its matches under the reviewer's verdicts, and the service's health.

Bad input raises `RequestError` naming the field, with the HTTP status it deserves.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core import exports
from core import models as model_files
from core.errors import ImageError, SameSameError
from core.images import is_valid_phash
from core.pair_answers import pair_answers
from core.pipeline_choice import chosen_pipeline
from core.pipelines import PIPELINES, Pipeline, get_pipeline, most_accurate_first
from core.query import NewItem, query_item
from core.query_models import image_evidence
from core.service.models import ServiceModels
from core.settings import MatchSettings
from core.store import Store
from core.text import normalize_title
from core.verdicts import posting_matches_with_verdicts, verdicts_of

#: Most matches one answer lists, and most items one batch request holds.
MAX_LIMIT = 100
MAX_BATCH = 100


class RequestError(SameSameError):
    """Input the service refuses: ``status`` (4xx), the ``field`` at fault, a message."""

    def __init__(self, status: int, field: str | None, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.field = field


@dataclass
class ItemRequest:
    """One item to match: a title, a picture's bytes, or its 16-hex-digit perceptual hash."""

    title: str | None = None
    image: bytes | None = None
    phash: str | None = None
    #: Where the item sits in the request, for error messages ("items[3]."); "" for one item.
    where: str = ""

    def new_item(self) -> NewItem:
        if self.phash is not None and not self.phash.strip():
            self.phash = None  # an empty form field is no hash
        if self.image is not None and not self.image:
            raise RequestError(400, f"{self.where}image", "the uploaded image file is empty")
        if self.phash is not None and not is_valid_phash(self.phash.strip()):
            raise RequestError(400, f"{self.where}phash", "phash must be 16 hex digits")
        has_title = bool(normalize_title(self.title or ""))
        if not has_title and self.image is None and not self.phash:
            field = f"{self.where}title" if self.title else f"{self.where}image"
            raise RequestError(
                400, field, "give an image file or a title with at least one letter or digit"
            )
        item = NewItem(
            self.title or "",
            self.image,
            name="upload",
            phash=self.phash.strip().lower() if self.phash else None,
        )
        try:
            item.validate()
        except ImageError as exc:
            raise RequestError(400, f"{self.where}image", str(exc).replace("upload: ", "")) from exc
        return item


def choose_pipeline(store: Store, settings: MatchSettings, name: str | None) -> Pipeline:
    """The named pipeline, or by default the most accurate ready one that answers from the
    query index (a pipeline with a trained model recomputes its features over the whole catalog
    for each item: ask for it by name)."""
    if name:
        if name not in PIPELINES:
            raise RequestError(
                400, "pipeline", f"unknown pipeline {name!r}; choose one of {', '.join(PIPELINES)}"
            )
        pipe = get_pipeline(name)
        readiness = pipe.readiness(store, settings)
        if not readiness.ready:
            action = f" {readiness.action}" if readiness.action else ""
            raise RequestError(409, "pipeline", f"{name} is not ready: {readiness.reason}{action}")
        return pipe
    for pipe in most_accurate_first():
        if not pipe.needs_model and pipe.readiness(store, settings).ready:
            return pipe
    raise RequestError(409, "pipeline", "no pipeline is ready for this catalog")


def _number(value: Any) -> float | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    number = float(value)
    return None if math.isnan(number) else round(number, 6)


def match_item(
    models: ServiceModels, request: ItemRequest, pipeline: str | None, limit: int
) -> dict[str, Any]:
    """The catalog postings most like the item, matches first, as the service answers."""
    if not 1 <= limit <= MAX_LIMIT:
        raise RequestError(422, "limit", f"limit must be between 1 and {MAX_LIMIT}")
    store = models.store()
    if store.count_postings() == 0:
        raise RequestError(409, None, "the catalog is empty: import a catalog first")
    item = request.new_item()
    settings = store.load_settings()
    pipe = choose_pipeline(store, settings, pipeline)
    evidence = image_evidence(
        store, settings, pipe, item.image is not None, models.pretrained, models.siamese
    )
    notices = [evidence.note] if evidence.note else []
    frame = query_item(
        store,
        item,
        pipe.name,
        settings,
        image_embedder=evidence.embedder,
        image_model=evidence.model,
        best_matcher=models.best_matcher(store) if pipe.needs_model else None,
        top_n=limit,
        index=None if pipe.needs_model else models.indexes.get(store, evidence.model),
        notices=notices,
    )
    return {
        "pipeline": pipe.name,
        "catalog_revision": store.catalog_revision,
        "matched": int(frame["matched"].sum()),
        "results": _results(frame.head(limit), pipe, settings, store, item.title),
        "notices": notices,
    }


def _results(
    frame: pd.DataFrame, pipe: Pipeline, settings: MatchSettings, store: Store, own_title: str
) -> list[dict[str, Any]]:
    """Each listed posting: what it is, whether it matched, its answer (``verdict``: Same /
    Probably same / Unsure / Different; ``probability``; ``evidence`` in words) and scores."""
    scores = [c for c in pipe.score_columns if c in frame]
    frame = frame.reset_index(drop=True)
    titled = bool(normalize_title(own_title or ""))
    theirs = (
        frame["title"].fillna("").astype(str).str.strip().to_numpy() != "" if len(frame) else []
    )
    answers = pair_answers(frame, pipe.name, settings, store, np.asarray(theirs, bool) & titled)
    return [
        {
            "posting_id": row["posting_id"],
            "title": row["title"],
            "matched": bool(row["matched"]),
            "rule": str(row["rule"]) if row["rule"] is not None else "",
            "similarity": _number(row["similarity"]),
            "scores": {name: _number(row[name]) for name in scores},
            "verdict": answer["answer"],
            "probability": _number(answer["probability"]),
            "evidence": answer["evidence"],
        }
        for row, answer in zip(frame.to_dict("records"), answers.to_dict("records"), strict=True)
    ]


def posting_answer(models: ServiceModels, posting_id: str) -> dict[str, Any]:
    """A stored posting and, per pipeline with a stored run, its matches under the verdicts."""
    store = models.store()
    row = store.posting(posting_id)
    if row is None:
        raise RequestError(404, "posting_id", f"no posting {posting_id!r} in this catalog")
    verdicts = verdicts_of(store.reviews(), posting_id)
    matches, answers = {}, {}
    for name in PIPELINES:
        run = store.match_run(name)
        if run is None:
            continue
        found = posting_matches_with_verdicts(store.matches_of(name, posting_id), verdicts)
        found = found[found["matched"]].reset_index(drop=True)
        matches[name] = found["posting_id"].tolist()
        answers[name] = _stored_answers(store, name, run, found, row.get("title"), verdicts)
    return {
        "posting_id": posting_id,
        "title": row.get("title"),
        "image_status": row.get("image_status"),
        "image_phash": row.get("image_phash"),
        "label_group": row.get("label_group"),
        "matches": matches,
        "answers": answers,
        "verdicts": verdicts,
    }


def _stored_answers(
    store: Store,
    pipeline: str,
    run: dict[str, Any],
    found: pd.DataFrame,
    own_title: str | None,
    verdicts: dict[str, str],
) -> list[dict[str, Any]]:
    """Each stored match's answer: posting id, verdict word (a person's verdict wins),
    probability and the evidence in words."""
    if found.empty:
        return []
    titles = store.titles_and_images(found["posting_id"].tolist())
    titled = np.array(
        [bool((titles.get(p, ("", None))[0] or "").strip()) for p in found["posting_id"]]
    )
    settings = MatchSettings.from_dict(run["settings"])
    reviews = np.array([verdicts.get(p, "") for p in found["posting_id"]], dtype=object)
    has_titles = titled & bool((own_title or "").strip())
    said = pair_answers(found, pipeline, settings, store, has_titles, reviews)
    return [
        {
            "posting_id": pid,
            "verdict": answer["answer"],
            "probability": _number(answer["probability"]),
            "evidence": answer["evidence"],
        }
        for pid, answer in zip(found["posting_id"], said.to_dict("records"), strict=True)
    ]


def health(models: ServiceModels) -> dict[str, Any]:
    """What a monitor needs: the catalog's size and revision, which pipelines can answer."""
    store = models.store()
    settings = store.load_settings()
    pipelines = {}
    for pipe in most_accurate_first():
        readiness = pipe.readiness(store, settings)
        image = pipe.image_model(store, settings)
        pipelines[pipe.name] = {
            "ready": readiness.ready,
            "reason": readiness.reason,
            "image_model": {"name": image[0], "version": image[1]} if image else None,
        }
    best = model_files.best_model_info(model_files.best_dir(store))
    if best is not None and "best" in pipelines:
        pipelines["best"]["trained_at"] = best.get("trained_at")
    return {
        "status": "ok",
        "catalog": {
            "postings": store.count_postings(),
            "revision": store.catalog_revision,
        },
        "default_pipeline": _default_name(store, settings),
        "pipelines": pipelines,
    }


def _default_name(store: Store, settings: MatchSettings) -> str | None:
    try:
        return choose_pipeline(store, settings, None).name
    except RequestError:
        return None


def export_file(models: ServiceModels, what: str, fmt: str, pipeline: str | None) -> Path:
    """One export (`core.exports`) written to a new temporary folder, for the caller to send
    and remove; ``pipeline`` by default: the catalog's chosen one (`core.pipeline_choice`: the
    most accurate one with stored matches unless one was chosen in the app)."""
    import shutil
    import tempfile

    store = models.store()
    if pipeline is None and what != "verdicts":
        ran = [p.name for p in most_accurate_first() if store.match_run(p.name) is not None]
        if not ran:
            raise RequestError(409, "pipeline", "no pipeline has stored matches yet")
        pipeline = chosen_pipeline(store).name  # the one the app's pages answer with
    try:
        exports.check_request(store, what, fmt, pipeline)
    except SameSameError as exc:
        text = str(exc)
        for word, name in (("export", "what"), ("format", "format"), ("pipeline", "pipeline")):
            if text.startswith(f"unknown {word}"):
                raise RequestError(400, name, text) from exc
        raise RequestError(409, "pipeline" if "No stored" in text else None, text) from exc
    folder = Path(tempfile.mkdtemp(prefix="samesame-export-"))
    name = what if what == "verdicts" else f"{pipeline}-{what}"
    path = folder / f"{name}.{fmt}"
    try:
        exports.export(store, what, fmt, pipeline, path)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return path
