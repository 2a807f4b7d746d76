"""Compare one new item (image and/or title) against the catalog, and optionally add it.

A query is a batch of one: the item becomes the catalog's last posting, each candidate source
offers its nearest catalog postings, and the pipeline's own `Pipeline.score` decides, exactly as
the batch run would once the item is added (`core.engine`). Catalogs of `INDEXED_QUERY_FROM`
postings or more answer from a persisted `QueryIndex` instead (frozen TF-IDF vocabulary,
hashes, FAISS image indexes), scored by the same `Pipeline.score`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from core.best_queries import item_scores
from core.embedders.base import ImageEmbedder
from core.errors import ImageError, ModelNotTrainedError, SameSameError
from core.images import is_valid_phash, open_image, phash_hex
from core.ocr import item_photo_text, title_with_photo_text
from core.pipelines import MatchInputs, MatchRequest, Pipeline, get_pipeline
from core.pipelines.best.query_state import Item
from core.pipelines.inputs import PairSide, load_inputs_with_item, pair_columns
from core.query_index import INDEXED_QUERY_FROM, RATIO_CANDIDATES, open_query_index
from core.settings import MatchSettings
from core.store import Store
from core.text import normalize_title, stored_title
from core.translate import translate_titles

if TYPE_CHECKING:
    from core.pipelines.best.model import BestMatcher
    from core.query_index import QueryIndex


@dataclass
class NewItem:
    """An uploaded posting: a title, the bytes of an image, or both."""

    title: str = ""
    image: bytes | None = None
    name: str = "upload"
    #: The picture's perceptual hash when the picture itself is not at hand (16 hex digits).
    phash: str | None = None

    def validate(self) -> None:
        if self.image is not None and not self.image:
            # An empty upload is a broken picture, not "no picture": say so.
            raise ImageError(f"{self.name}: the file is empty (0 bytes); choose the photo again")
        if not normalize_title(self.title) and not self.image and not self.phash:
            raise SameSameError(
                f"{self.name}: give an image or a title with at least one letter or digit"
            )
        if self.phash is not None and not is_valid_phash(self.phash):
            raise SameSameError(f"{self.name}: phash {self.phash!r} is not 16 hex digits")
        if self.image is not None:
            open_image(self.image)  # raises ImageError naming the problem

    def image_hash(self) -> int | None:
        """The item's perceptual hash: computed from the picture, else the one given."""
        if self.image:
            return int(phash_hex(self.image), 16)
        if self.phash:
            return int(self.phash, 16)
        return None


def query_title(
    store: Store,
    item: NewItem,
    pipeline: Pipeline,
    settings: MatchSettings,
    translate: Callable | None = None,
) -> tuple[str, str | None]:
    """The item's title as the pipeline compares it: normalised and, when the pipeline
    translates titles, translated through the same cache as the catalog's; and a notice."""
    title = normalize_title(item.title)
    if title and pipeline.translates and settings.translate_titles:
        titles, notice = translate_titles(store, [title], translator=translate)
        return titles[0], notice
    return title, None


def _translated(store: Store, titles: list[str], translate: Callable | None) -> list[str]:
    return translate_titles(store, titles, translator=translate)[0]


def query_item(
    store: Store,
    item: NewItem,
    pipeline: str,
    settings: MatchSettings,
    *,
    image_embedder: ImageEmbedder | None = None,
    image_model: tuple[str, str | None] | None = None,
    best_matcher: BestMatcher | None = None,
    top_n: int = 10,
    index: QueryIndex | None = None,
    translate: Callable | None = None,
    notices: list[str] | None = None,
) -> pd.DataFrame:
    """The catalog postings most like ``item`` under one pipeline, matches first.

    Args:
        image_embedder: the pipeline's image model, to embed the item's picture; without it
            (or without stored vectors) the perceptual hash is the image evidence.
        image_model: (name, version) of the stored vectors to compare with.
        best_matcher: the trained model, needed by a pipeline that has one (``best``). Its
            features are catalog-wide (ranks, densities, rarities): a large catalog is scored
            once, on its first query, as a batch run does, and later queries take
            milliseconds; a small one is run whole with the item appended
            (`core.best_queries`).
        index: a `QueryIndex` to answer rule pipelines from; without one, a catalog of
            INDEXED_QUERY_FROM postings or more opens (or builds) its own.
        notices: fallbacks (e.g. a failed translation) are appended here.

    Returns:
        Columns posting_id, title, image_path, matched, rule, the pipeline's scores, similarity.
    """
    item.validate()
    pipe = get_pipeline(pipeline)
    settings, note = pipe.settings_for(store, settings)
    title, notice = query_title(store, item, pipe, settings, translate)
    _note(notices, note, notice)
    item_hash = item.image_hash()  # decodes the picture: once per query
    vector = None
    if item.image and image_embedder is not None and image_model is not None:
        vector = image_embedder.embed([item.image])[0]
    if pipe.needs_model:
        if best_matcher is None:
            raise ModelNotTrainedError(
                f"The {pipeline} pipeline needs a trained model: train it on a labelled catalog "
                "first."
            )
        if best_matcher.reads_photo_text:
            text, said = item_photo_text(item.image)
            title = title_with_photo_text(title, text)
            _note(notices, said)
        return _model_query(store, best_matcher, Item(title, item_hash, vector), image_model, top_n)
    item_evidence = (title, item_hash, vector, image_model)
    frame, ids = _rule_candidates(store, pipe, settings, item_evidence, index, translate)
    scored = pipe.score(frame, settings)
    return _ranked(store, ids, scored, pipe.score_columns, top_n)


def _note(notices: list[str] | None, *said: str | None) -> None:
    """Append what was said (fallbacks, notes) to ``notices``, when the caller collects them."""
    for text in said:
        if text and notices is not None:
            notices.append(text)


def _rule_candidates(
    store: Store,
    pipe: Pipeline,
    settings: MatchSettings,
    item_evidence: tuple[str, int | None, np.ndarray | None, tuple[str, str | None] | None],
    index: QueryIndex | None,
    translate: Callable | None,
) -> tuple[pd.DataFrame, list[str]]:
    """The item's candidate pairs as the frame `Pipeline.score` reads, and each candidate's
    posting id: from a `QueryIndex` on large catalogs, else from the catalog with the item
    appended (``item_evidence``: its title, hash, vector and the vectors' model)."""
    title, item_hash, vector, image_model = item_evidence
    if index is None and store.count_postings() >= INDEXED_QUERY_FROM:
        index = open_query_index(store, [image_model] if image_model else [])
    translating = pipe.translates and settings.translate_titles
    if index is not None:
        frame, positions = _index_frame(index, title, item_hash, vector, image_model, settings)
        if translating:
            # Candidates come from the index's (untranslated) words; the ratio compares the
            # catalog's translations, from the same cache the batch run fills.
            frame["left_title"] = _translated(store, list(frame["left_title"]), translate)
            frame["has_text"] = frame["left_title"].astype(bool) & bool(title)
        return frame, [index.posting_ids[p] for p in positions.tolist()]
    inputs = load_inputs_with_item(store, title, item_hash, vector, image_model)
    if translating:
        catalog = _translated(store, inputs.titles[:-1], translate)
        inputs = inputs.with_titles([*catalog, title])
    frame, positions = _exact_frame(pipe, inputs, settings)
    return frame, [inputs.posting_ids[p] for p in positions.tolist()]


def _exact_frame(
    pipe: Pipeline, inputs: MatchInputs, settings: MatchSettings
) -> tuple[pd.DataFrame, np.ndarray]:
    """Candidates of the item (the last posting) from every source, as the pipeline's frame."""
    item = inputs.size - 1
    rows = np.array([item])
    # Relaxed sources: the nearest postings are shown even when none passes a rule.
    prepared = pipe.prepare(MatchRequest(inputs, settings, rows=rows, relaxed=True))
    _, others = prepared.candidates(rows)
    others = others[others != item]
    # The item comes last, as it will once added: pairs are (catalog posting, item).
    frame = pipe.pair_frame(prepared, others, np.full(len(others), item, np.int64))
    return frame, others


def _index_frame(
    index: QueryIndex,
    title: str,
    item_hash: int | None,
    vector: np.ndarray | None,
    image_model: tuple[str, str | None] | None,
    settings: MatchSettings,
) -> tuple[pd.DataFrame, np.ndarray]:
    """Candidates from the persisted index, with every column a rule pipeline reads."""
    n = len(index.posting_ids)
    candidate = np.zeros(n, dtype=bool)
    positions, text_cosine = index.title_cosines(title)
    # Postings sharing only a common word with the item are many (a tenth of the catalog for
    # "promo"): keep the RATIO_CANDIDATES most alike.
    if len(positions) > RATIO_CANDIDATES:
        best = np.argpartition(-text_cosine, RATIO_CANDIDATES)[:RATIO_CANDIDATES]
        positions, text_cosine = positions[best], text_cosine[best]
    candidate[positions] = True
    distance_all = None
    if item_hash is not None:
        distance_all = index.hash_distances(item_hash)
        candidate |= distance_all <= settings.hash_max_distance
    image = None
    if vector is not None and image_model is not None and image_model[0] in index.images:
        image = index.images[image_model[0]]
        sims, hits = image.search(vector, settings.top_k)
        candidate[hits] = True
    others = np.flatnonzero(candidate)
    m = len(others)
    stored = image.vectors_of(others) if image is not None else np.zeros((m, 1), np.float32)
    catalog_side = PairSide(
        index.has_hash[others],
        index.hashes[others],
        ~np.isnan(stored[:, 0]) if image is not None and m else np.zeros(m, bool),
        lambda mask: stored[mask],
        np.asarray([index.titles[p] for p in others.tolist()], dtype=object),
    )
    item_side = PairSide(
        np.full(m, item_hash is not None),
        np.full(m, item_hash or 0, np.uint64),
        np.full(m, image is not None),
        lambda mask: np.tile(vector, (int(mask.sum()), 1)),
        np.full(m, title, dtype=object),
    )
    tfidf = np.zeros(m, np.float32)
    tfidf[np.searchsorted(others, positions)] = text_cosine
    frame = pd.DataFrame({**pair_columns(catalog_side, item_side), "tfidf_cosine": tfidf})
    return frame, others


def _ranked(
    store: Store,
    ids: list[str],
    scored: pd.DataFrame,
    score_columns: tuple[str, ...],
    top_n: int,
) -> pd.DataFrame:
    """Matches first, then by similarity; strings and titles only for the rows shown."""
    matched = scored["matched"].to_numpy(bool)
    similarity = scored["similarity"].to_numpy(np.float32)
    order = np.lexsort((-similarity, ~matched))[: max(top_n, int(matched.sum()))]
    shown = [ids[i] for i in order.tolist()]
    details = store.titles_and_images(shown)  # by primary key, not the whole catalog
    frame = pd.DataFrame(
        {
            "posting_id": shown,
            "title": [details.get(pid, ("", None))[0] for pid in shown],
            "image_path": [details.get(pid, ("", None))[1] for pid in shown],
        }
    )
    for name in score_columns:
        if name in scored:
            frame[name] = scored[name].to_numpy()[order]
    frame["matched"] = matched[order]
    frame["rule"] = scored["rule"].to_numpy(object)[order]
    frame["similarity"] = similarity[order]
    return frame


def _model_query(
    store: Store,
    matcher: BestMatcher,
    item: Item,
    image_model: tuple[str, str | None] | None,
    top_n: int,
) -> pd.DataFrame:
    """A trained matcher's answer, as the batch run would give it with the item appended."""
    scored, ids = item_scores(store, matcher, item, image_model)
    columns = ("probability", "image_cosine", "hash_distance", "tfidf_cosine")
    return _ranked(store, ids, scored, columns, top_n)


def add_to_catalog(store: Store, item: NewItem, uploads_dir: Path) -> str:
    """Store an uploaded item as a new posting; its image goes under ``uploads_dir`` (inside the
    data folder) named by content hash, never by the uploader's file name."""
    item.validate()
    digest = hashlib.sha256((item.title or "").encode() + (item.image or b"")).hexdigest()
    posting_id = f"upload_{digest[:12]}"
    image_path, phash, status = None, item.phash.lower() if item.phash else None, "none"
    title, raw_title = stored_title(item.title)  # as a catalog import keeps it
    if item.image:
        picture = open_image(item.image)
        uploads_dir.mkdir(parents=True, exist_ok=True)
        target = uploads_dir / f"{digest[:24]}.png"
        tmp = target.with_suffix(".tmp")
        picture.save(tmp, format="PNG")
        tmp.replace(target)
        image_path, phash, status = str(target.resolve()), phash_hex(picture), "ok"
    store.upsert_postings(
        [
            {
                "posting_id": posting_id,
                "title": title,
                "raw_title": raw_title,
                "title_norm": normalize_title(title),
                "image": Path(image_path).name if image_path else None,
                "image_path": image_path,
                "image_status": status,
                "image_phash": phash,
                "label_group": None,
                "source": "upload",
            }
        ]
    )
    return posting_id
