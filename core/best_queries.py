"""``best``'s single-item queries: the catalog as they read it, made once per catalog and model
and shared by every query (the Compare page, the HTTP API, the CLI's ``query``).

The first query of a catalog scores it once, as a batch run does (seconds to minutes: the
answer says so), and keeps what queries need (`QueryCatalog`); later queries take
milliseconds. A catalog that changes (an import, an added posting, new photo vectors) or a
retrained model gets a new one.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from core.engine import posting_pairs
from core.ocr import photo_text_for_model
from core.pipelines.base import MatchRequest
from core.pipelines.best.pipeline import BEST
from core.pipelines.best.query_state import Item, QueryCatalog
from core.pipelines.inputs import load_inputs, load_inputs_with_item
from core.settings import MatchSettings
from core.workspace import catalog_stamp

if TYPE_CHECKING:
    from core.pipelines.best.model import BestMatcher
    from core.store import Store

#: Catalogs kept at once (each holds its neighbour lists and candidate pairs' probabilities).
KEPT = 2

_lock = threading.Lock()
_building: dict[tuple, threading.Lock] = {}
_kept: dict[tuple, QueryCatalog] = {}


def _key(store: Store, matcher: BestMatcher, image_model: tuple[str, str | None] | None):
    vectors = store.count_embeddings(*image_model) if image_model else 0
    return (catalog_stamp(store), id(matcher), image_model, vectors)


def query_catalog(
    store: Store, matcher: BestMatcher, image_model: tuple[str, str | None] | None
) -> QueryCatalog:
    """The catalog made ready for ``matcher``'s queries (built on first use; one build at a
    time per catalog, a second caller waits for it)."""
    key = _key(store, matcher, image_model)
    with _lock:
        if key in _kept:
            return _kept[key]
        building = _building.setdefault(key, threading.Lock())
    with building:
        with _lock:
            if key in _kept:
                return _kept[key]
        inputs, _ = photo_text_for_model(store, load_inputs(store, image_model), matcher)
        ready = QueryCatalog.build(matcher, inputs)
        with _lock:
            while len(_kept) >= KEPT:
                _kept.pop(next(iter(_kept)))
            _kept[key] = ready
            _building.pop(key, None)
        return ready


def forget() -> None:
    """Let every kept catalog go (tests; a process that wants its memory back)."""
    with _lock:
        _kept.clear()


#: Below this many postings a ``best`` query runs the whole catalog with the item appended:
#: about a second there, and exact to the last digit (a catalog scored once agrees to a few
#: hundredths of a probability: `core.pipelines.best.query_state`).
EXACT_BEST_QUERY_BELOW = 1_000


def item_scores(
    store: Store,
    matcher: BestMatcher,
    item: Item,
    image_model: tuple[str, str | None] | None,
) -> tuple[pd.DataFrame, list[str]]:
    """A trained matcher's answer: the item's candidate pairs scored and decided as the batch
    run would with the item appended (on large catalogs, against the catalog as scored once
    for queries), and the other posting of each pair."""
    model = _vectors_read(matcher, image_model)
    if store.count_postings() < EXACT_BEST_QUERY_BELOW:
        scored, ids = full_run_scores(store, matcher, item, model)
    else:
        ready = query_catalog(store, matcher, model)
        found = ready.score_item(item)
        scored = pd.DataFrame(
            {
                "probability": found.probability,
                **found.columns,
                "rule": found.rule,
                "matched": found.rule != "",
                "similarity": found.probability,
            }
        )
        ids = [ready.inputs.posting_ids[o] for o in found.others.tolist()]
    return scored, ids


def _vectors_read(
    matcher: BestMatcher, image_model: tuple[str, str | None] | None
) -> tuple[str, str | None] | None:
    """The stored photo vectors the model compares: its own backbone's, at the given version."""
    name = matcher.info.get("image_model")
    return (name, image_model[1] if image_model else None) if name else None


def slow_first_query(
    store: Store, matcher: BestMatcher | None, image_model: tuple[str, str | None] | None
) -> bool:
    """Whether the next query must first score the catalog (a page says so while it waits)."""
    if matcher is None or store.count_postings() < EXACT_BEST_QUERY_BELOW:
        return False
    with _lock:
        return _key(store, matcher, _vectors_read(matcher, image_model)) not in _kept


def full_run_scores(
    store: Store,
    matcher: BestMatcher,
    item: Item,
    image_model: tuple[str, str | None] | None,
) -> tuple[pd.DataFrame, list[str]]:
    """The item's pairs scored and decided by a whole run over the catalog plus the item,
    through the engine's steps as the batch run takes them; and the other posting of each."""
    inputs = load_inputs_with_item(store, item.title, item.hash, item.vector, image_model)
    # The catalog's side; the item's photo text is in its title already.
    inputs, _ = photo_text_for_model(store, inputs, matcher)
    last = inputs.size - 1  # the item: every pair is (a catalog posting, the item)
    request = MatchRequest(inputs, MatchSettings(), rows=np.array([last]), model=matcher)
    scored = posting_pairs(BEST, BEST.prepare(request), last, matcher)
    others = scored["left"].to_numpy(np.int64)
    scored = scored.drop(columns=["left", "right"])
    scored["rule"] = scored["rule"].astype(str)
    return scored, [inputs.posting_ids[o] for o in others.tolist()]
