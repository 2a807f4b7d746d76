"""Cached loaders: models as shared resources, DataFrames and thumbnails as cached data.

Cache keys are plain hashable values (paths as strings, revisions, versions): never a `Store`,
whose sqlite connection must not be shared across Streamlit's threads.
"""

from __future__ import annotations

import base64
import gc
import io
import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import streamlit as st

from core import models
from core import review_queue as queue
from core.clusters import describe_cluster
from core.device import tensorflow_device
from core.embedders.siamese import SiameseEmbedder
from core.errors import ImageError
from core.evaluation import evaluate_result
from core.images import check_stored_path, open_image
from core.matching import run_pipeline, summarised_run
from core.pipelines.best.model import CONFIG_FILE, BestMatcher
from core.query_index.cache import QueryIndexCache
from core.settings import MatchSettings
from core.store import Store
from core.text import display_titles

if TYPE_CHECKING:
    from core.embedders.base import ImageEmbedder

logger = logging.getLogger(__name__)

#: Thumbnails are drawn at this size for a table cell of `ui.common.THUMB_ROW_HEIGHT` pixels
#: (sharp on a high-density screen too).
THUMBNAIL_PIXELS = 160


# -- device ---------------------------------------------------------------------------------
class DeviceProbe:
    """Finds TensorFlow's device in a background thread: importing TensorFlow takes seconds,
    which must not hold up the first paint of the app."""

    def __init__(self) -> None:
        self.result: str | None = None
        self.error: str | None = None
        # Not a daemon: a process exiting in the middle of TensorFlow's import can crash.
        self._thread = threading.Thread(target=self._run, name="samesame-device-probe")
        self._thread.start()

    def _run(self) -> None:
        try:
            self.result = tensorflow_device()
        except Exception as exc:  # a broken TensorFlow install must not break the app
            logger.warning("TensorFlow device detection failed: %s", exc)
            self.error = "TensorFlow did not load: image embedding is unavailable"
        # After every run Streamlit calls keras' clear_session and gc.collect(): with
        # TensorFlow's millions of objects in the heap each costs ~0.3 s of held GIL, on every
        # click and every progress poll. What was imported lives as long as the process, so
        # the collector can stop scanning it.
        gc.freeze()

    @property
    def done(self) -> bool:
        return not self._thread.is_alive()

    def wait(self, timeout: float | None = None) -> DeviceProbe:
        self._thread.join(timeout)
        return self


@st.cache_resource(show_spinner=False)
def device_probe() -> DeviceProbe:
    return DeviceProbe()


def tensorflow_ready() -> None:
    """Wait for the background probe's TensorFlow import before using TensorFlow here.

    Two threads importing TensorFlow at once can see each other's half-initialised modules
    (``module 'tensorflow...dataset_ops' has no attribute 'DatasetV2'``); after the probe's
    import has finished, importing it again is a dictionary lookup.
    """
    with st.spinner("Loading TensorFlow…"):
        device_probe().wait()


# -- models (TensorFlow is imported only when one of these is called) ------------------------
@st.cache_resource(show_spinner="Loading the image model…", max_entries=4)
def image_embedder(identity: tuple) -> ImageEmbedder:
    """The baseline's pretrained embedder, once per process for each configuration
    (`models.pretrained_identity`).

    Raises:
        WeightsUnavailableError: the weights file is neither local nor downloadable.
    """
    tensorflow_ready()
    settings = MatchSettings(**dict(zip(models.PRETRAINED_FIELDS, identity, strict=True)))
    return models.load_image_embedder(settings)


def image_embedder_for(settings: MatchSettings) -> ImageEmbedder:
    return image_embedder(models.pretrained_identity(settings))


@st.cache_resource(show_spinner="Loading the Siamese model…", max_entries=2)
def siamese_embedder(
    model_dir: str, version: str, batch_size: int, backend: str = "auto"
) -> ImageEmbedder:
    """A trained Siamese model; ``version`` (the file digest) makes a retrained model reload."""
    del version  # part of the cache key only
    tensorflow_ready()
    return SiameseEmbedder.load(Path(model_dir), batch_size).serve_with(backend)


@st.cache_resource(show_spinner="Loading the best matcher…", max_entries=2)
def best_matcher(model_dir: str, stamp: str):
    """A trained best matcher; ``stamp`` (its file's mtime) makes a retrained model reload."""
    del stamp  # part of the cache key only
    return BestMatcher.load(Path(model_dir))


def best_matcher_of(store: Store):
    """This database's best matcher, or None when it has none yet."""
    folder = models.best_dir(store)
    config = folder / CONFIG_FILE
    if not config.is_file():
        return None
    return best_matcher(str(folder), str(config.stat().st_mtime_ns))


# -- data -----------------------------------------------------------------------------------
class CatalogView:
    """A database's postings as pages read them, built once per catalog revision and shared
    by every session (read-only: never modify its frames). At a million postings a copy per
    rerun (what ``st.cache_data`` hands out) or an index built per rerun costs seconds.

    Attributes:
        frame: every posting in catalog order (the columns pages show), titles decoded.
        by_id: the same, indexed by posting id (no posting_id column).
    """

    COLUMNS = (
        "posting_id",
        "title",
        "image",
        "image_path",
        "image_status",
        "image_phash",
        "label_group",
    )

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame
        self.by_id = frame.set_index("posting_id")
        self._titles = self.by_id["title"]
        self._haystack = (frame["title"].fillna("") + " " + frame["posting_id"]).str.lower()

    def titles_of(self, posting_ids: list[str]) -> dict[str, str]:
        """Posting id -> title for these postings (one vectorised lookup)."""
        return dict(zip(posting_ids, self._titles.loc[posting_ids].astype(str), strict=True))

    def __len__(self) -> int:
        return len(self.frame)

    def search(self, query: str) -> pd.DataFrame:
        """Postings whose title or id contains ``query`` (any case); all when it is blank."""
        needle = query.strip().lower()
        if not needle:
            return self.frame
        found = self._haystack.str.contains(needle, regex=False)
        return self.frame[found.fillna(False).to_numpy(dtype=bool)]


@st.cache_resource(show_spinner="Reading the catalog…", max_entries=4)
def _catalog_view(db_path: str, revision: int) -> CatalogView:
    del revision  # part of the cache key only: an import makes a new view
    with Store(db_path) as store:
        frame = store.postings(CatalogView.COLUMNS)
    frame["title"] = display_titles(frame["title"])
    return CatalogView(frame)


def catalog_view(store: Store) -> CatalogView:
    """The database's postings for pages (see `CatalogView`), cached per catalog revision."""
    return _catalog_view(str(store.path), store.catalog_revision)


def cluster_of(store: Store, pipeline: str, posting_id: str) -> tuple[list[str], str] | None:
    """The posting's cluster under the pipeline's stored matches, and how it formed in words
    (None while the pipeline has no stored matches)."""
    if summarised_run(store, pipeline) is None:
        return None
    members, summary = store.cluster_of(pipeline, posting_id)
    return members, describe_cluster(summary)


@st.cache_data(show_spinner=False, max_entries=20_000)
def _thumbnail(image_path: str, mtime: float, pixels: int) -> str | None:
    from PIL import Image

    del mtime
    try:
        picture = open_image(check_stored_path(image_path), draft_size=pixels)
    except ImageError:
        return None
    picture.thumbnail((pixels, pixels), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


@st.cache_data(show_spinner=False, max_entries=8)
def placeholder(pixels: int = THUMBNAIL_PIXELS) -> str:
    """A grey "no photo" tile (PNG data URI) for postings without a usable image."""
    from PIL import Image, ImageDraw

    tile = Image.new("RGB", (pixels, pixels), (238, 238, 238))
    draw = ImageDraw.Draw(tile)
    inset = pixels // 8
    draw.rectangle((inset, inset, pixels - inset, pixels - inset), outline=(190, 190, 190), width=2)
    draw.line((inset, pixels - inset, pixels - inset, inset), fill=(190, 190, 190), width=2)
    draw.text((pixels / 2, pixels / 2), "no photo", fill=(120, 120, 120), anchor="mm")
    buffer = io.BytesIO()
    tile.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def thumbnail(image_path: str | None, pixels: int = THUMBNAIL_PIXELS) -> str:
    """A small JPEG data URI of a catalog image (for st.dataframe's ImageColumn); the "no
    photo" tile when the posting has no image or its file cannot be read."""
    if not image_path or not isinstance(image_path, str):
        return placeholder(pixels)
    try:
        mtime = Path(image_path).stat().st_mtime
    except OSError:
        return placeholder(pixels)
    return _thumbnail(image_path, mtime, pixels) or placeholder(pixels)


def with_thumbnails(frame: pd.DataFrame, path_column: str = "image_path") -> pd.DataFrame:
    """``frame`` with a ``thumbnail`` column first; call on the visible rows only."""
    out = frame.copy()
    out.insert(0, "thumbnail", [thumbnail(p) for p in out[path_column]])
    return out


def stored_metrics(store: Store, pipeline: str) -> dict[str, float] | None:
    """F1/precision/recall of the pipeline's stored matches, plain and as clusters (kept with
    the run; None when it never ran or the catalog has no labels)."""
    run = summarised_run(store, pipeline)
    return None if run is None else run["details"].get("metrics")


def worst_postings(store: Store, pipeline: str) -> pd.DataFrame:
    """The postings with the lowest F1 under the pipeline's stored matches (kept with the run)."""
    run = summarised_run(store, pipeline)
    return pd.DataFrame(run["details"].get("worst", []) if run else [])


@st.cache_data(show_spinner=False, max_entries=32)
def f1_curve(
    db_path: str,
    revision: int,
    settings_json: str,
    pipeline: str,
    threshold: str,
    values: tuple[float, ...],
) -> pd.DataFrame:
    """F1, precision and recall of ``pipeline`` for each value of one threshold, with the
    catalog's stored vectors (untranslated: a sweep must not call a web service 9 times);
    nothing is saved."""
    import json

    del revision
    base = MatchSettings.from_dict(json.loads(settings_json)).replace(translate_titles=False)
    rows = []
    with Store(db_path) as store:
        for value in values:
            result = run_pipeline(store, pipeline, base.replace(**{threshold: value}), save=False)
            rows.append({threshold: value, **evaluate_result(store, result)})
    return pd.DataFrame(rows)


# -- query index (large catalogs) -----------------------------------------------------------
@st.cache_resource(show_spinner=False)
def _query_indexes():
    """One `QueryIndexCache` per process, shared by sessions: plain arrays, no connection."""
    return QueryIndexCache()


def query_index_for(store: Store, image_model: tuple[str, str | None] | None):
    """The catalog's query index when it is large enough to need one (else None), kept in
    memory across reruns and sessions; loaded or rebuilt only when the catalog changed."""
    indexes = _query_indexes()
    if indexes.needs_building(store, image_model):
        with st.spinner("Indexing the catalog for uploads (once per catalog change)…"):
            return indexes.get(store, image_model)
    return indexes.get(store, image_model)


def grow_query_index(store: Store, posting_id: str) -> None:
    """An upload added to the catalog joins the in-memory index too (no rebuild)."""
    _query_indexes().grow(store, posting_id)


# -- review -----------------------------------------------------------------------------------
@st.cache_data(show_spinner=False, max_entries=4)
def _match_sample(db_path: str, pipeline: str, computed_at: float) -> pd.DataFrame:
    del computed_at
    with Store(db_path) as store:
        return queue.match_sample(store, pipeline)


def match_sample(store: Store, pipeline: str) -> pd.DataFrame:
    """The pipeline's stored matches in a random order (none while it has no stored run)."""
    run = store.match_run(pipeline)
    if run is not None:
        return _match_sample(str(store.path), pipeline, run["computed_at"])
    return pd.DataFrame(columns=["left", "right", "priority", "reason", "similarity"])
