"""Compare one new item (image and/or title) against the catalog, and optionally add it."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from core.embedders.base import ImageEmbedder
from core.errors import ModelNotTrainedError, SameSameError
from core.images import hamming, is_valid_phash, open_image, phash_hex, phash_to_uint64
from core.pipelines.baseline import baseline_rules
from core.pipelines.ensemble import ensemble_rules
from core.settings import MatchSettings
from core.store import Store
from core.text import normalize_title

if TYPE_CHECKING:
    from core.pipelines.best import BestMatcher
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
        if not normalize_title(self.title) and not self.image and not self.phash:
            raise SameSameError(
                f"{self.name}: give an image or a title with at least one letter or digit"
            )
        if self.phash is not None and not is_valid_phash(self.phash):
            raise SameSameError(f"{self.name}: phash {self.phash!r} is not 16 hex digits")
        if self.image is not None:
            # An empty upload is a broken picture, not "no picture": say so.
            open_image(self.image)  # raises ImageError naming the problem

    def image_hash(self) -> int | None:
        """The item's perceptual hash: computed from the picture, else the one given."""
        if self.image:
            return int(phash_hex(self.image), 16)
        if self.phash:
            return int(self.phash, 16)
        return None


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
) -> pd.DataFrame:
    """The catalog postings most like ``item`` under one pipeline, matches first.

    Args:
        image_embedder: the pipeline's image model, to embed the item's picture; without it
            (or without stored vectors) the perceptual hash is the image evidence.
        image_model: (name, version) of the stored vectors to compare with.
        best_matcher: the trained model, needed for ``pipeline="best"``. Its features are
            computed over the whole catalog plus the item (ranks and densities are catalog-wide),
            so a query costs about as much as matching the catalog once.
        index: a `QueryIndex` to answer baseline and ensemble queries from; without one, a
            catalog of INDEXED_QUERY_FROM postings or more opens (or builds) its own. Small
            catalogs are scored exactly, the same way the batch pipeline will once the item is
            added.

    Returns:
        Columns posting_id, title, image_path, matched, rule, the pipeline's scores, similarity.
    """
    item.validate()
    if pipeline in ("baseline", "ensemble"):
        from core.query_index import INDEXED_QUERY_FROM, open_query_index

        if index is None and store.count_postings() >= INDEXED_QUERY_FROM:
            index = open_query_index(store, [image_model] if image_model else [])
        if index is not None:
            return query_with_index(
                store, index, item, pipeline, settings, image_embedder, image_model, top_n
            )
    postings = store.postings()
    if postings.empty:
        raise SameSameError("The catalog is empty: import a catalog first.")
    n = len(postings)
    query_title = normalize_title(item.title)
    titles = postings["title_norm"].fillna("").tolist()

    hashes, has_hash = phash_to_uint64(postings["image_phash"].tolist())
    hash_distance = np.full(n, np.nan, dtype=np.float32)
    query_vector = None
    item_hash = item.image_hash()  # decodes the picture: once per query
    if item_hash is not None:
        hash_distance[has_hash] = hamming(hashes[has_hash], np.uint64(item_hash))
    if item.image:
        if image_embedder is not None and image_model is not None:
            query_vector = image_embedder.embed([item.image])[0]

    cosine = np.full(n, np.nan, dtype=np.float32)
    by_vector = np.zeros(n, dtype=bool)
    if query_vector is not None and image_model is not None:
        ids, matrix = store.load_embeddings(image_model[0], image_model[1])
        if ids:
            position = pd.Index(postings["posting_id"]).get_indexer(ids)
            cosine[position] = matrix @ query_vector
            by_vector[position] = True

    has_text = np.array([bool(query_title) and bool(t) for t in titles])
    frame = postings[["posting_id", "title", "image_path"]].copy()
    frame["hash_distance"] = hash_distance
    hash_similarity = 1.0 - hash_distance / 32.0
    if pipeline == "baseline":
        text_cosine = _tfidf_against(titles, query_title)
        fired = baseline_rules(cosine, hash_distance, by_vector, text_cosine, settings)
        frame["image_cosine"] = cosine
        frame["tfidf_cosine"] = text_cosine
        similarity = np.nanmax(np.vstack([cosine, text_cosine, hash_similarity]), axis=0)
    elif pipeline == "ensemble":
        from core.similarity import sequence_ratio

        # difflib's ratio is not symmetric; the batch pipeline scores (earlier, later) posting,
        # and an added item comes last, so score (catalog title, item title) the same way.
        ratio = np.array([sequence_ratio(t, query_title) for t in titles], dtype=np.float32)
        distance = np.sqrt(np.maximum(0.0, 2.0 - 2.0 * cosine)).astype(np.float32)
        fired = ensemble_rules(distance, hash_distance, by_vector, ratio, has_text, settings)
        frame["siamese_distance"] = distance
        frame["text_ratio"] = ratio
        similarity = np.nanmax(np.vstack([1.0 - distance / 2.0, ratio, hash_similarity]), axis=0)
    elif pipeline == "best":
        if best_matcher is None:
            raise ModelNotTrainedError(
                "The best pipeline needs a trained model: train it on a labelled catalog first."
            )
        vectors = None
        if query_vector is not None and image_model is not None:
            ids, matrix = store.load_embeddings(image_model[0], image_model[1])
            vectors = (ids, matrix, query_vector)
        probability, rule = _best_against(best_matcher, postings, query_title, item, vectors)
        fired = {"model": rule == "model", "nearest": rule == "nearest"}
        frame["probability"] = probability
        frame["image_cosine"] = cosine
        similarity = probability
    else:
        raise SameSameError(f"Unknown pipeline {pipeline!r}")
    matched = np.logical_or.reduce(list(fired.values()))
    frame["matched"] = matched
    frame["rule"] = ["+".join(name for name, mask in fired.items() if mask[i]) for i in range(n)]
    frame["similarity"] = np.nan_to_num(similarity, nan=0.0)
    frame = frame.sort_values(["matched", "similarity"], ascending=[False, False], kind="stable")
    return frame.head(max(top_n, int(matched.sum()))).reset_index(drop=True)


def query_with_index(
    store: Store,
    index: QueryIndex,
    item: NewItem,
    pipeline: str,
    settings: MatchSettings,
    image_embedder: ImageEmbedder | None = None,
    image_model: tuple[str, str | None] | None = None,
    top_n: int = 10,
) -> pd.DataFrame:
    """`query_item` for large catalogs: only postings that share a title word, sit within the
    hash threshold or among the image index's top-k are scored, with the same rules.

    Differences from the exact path, by design: TF-IDF uses the vocabulary and IDF frozen when
    the index was built, and the ensemble's SequenceMatcher runs on the RATIO_CANDIDATES postings
    with the best TF-IDF cosine (the batch pipeline's candidate rule at this size); a ratio that
    rapidfuzz's bound shows cannot pass the rule is reported as 0.
    """
    from core.query_index import RATIO_CANDIDATES
    from core.similarity import RATIO_CANDIDATE_COSINE, sequence_ratio

    item.validate()
    if pipeline not in ("baseline", "ensemble"):
        raise SameSameError(f"Unknown pipeline {pipeline!r} for an indexed query")
    query_title = normalize_title(item.title)
    hash_distance = None
    query_vector = None
    item_hash = item.image_hash()  # decodes the picture: once per query
    if item_hash is not None:
        hash_distance = index.hash_distances(item_hash)
    if item.image:
        if image_embedder is not None and image_model is not None:
            query_vector = image_embedder.embed([item.image])[0]

    positions, text_cosine = index.title_cosines(query_title)
    # Postings sharing only a common word with the item are many (a tenth of the catalog for
    # "promo") and cannot pass a text rule: keep those that can, and the best few for ranking.
    floor = min(settings.baseline_text_cosine, RATIO_CANDIDATE_COSINE)
    keep = text_cosine >= floor - 1e-6
    if len(text_cosine) > top_n:
        keep[np.argpartition(-text_cosine, top_n)[:top_n]] = True
    else:
        keep[:] = True
    positions, text_cosine = positions[keep], text_cosine[keep]

    n = len(index.posting_ids)
    is_candidate = np.zeros(n, dtype=bool)
    is_candidate[positions] = True
    if hash_distance is not None:
        is_candidate |= hash_distance <= settings.hash_max_distance
    image_hits = None
    if query_vector is not None and image_model is not None and image_model[0] in index.images:
        image_hits = index.images[image_model[0]].search(query_vector, settings.top_k)
        is_candidate[image_hits[1]] = True
    candidates = np.flatnonzero(is_candidate)

    m = len(candidates)
    cosine = np.full(m, np.nan, dtype=np.float32)
    by_vector = np.zeros(m, dtype=bool)
    if image_hits is not None:
        where = np.searchsorted(candidates, image_hits[1])
        cosine[where], by_vector[where] = image_hits[0], True
    text = np.zeros(m, dtype=np.float32)
    text[np.searchsorted(candidates, positions)] = text_cosine
    distance_h = (
        hash_distance[candidates] if hash_distance is not None else np.full(m, np.nan, np.float32)
    )
    has_text = index.has_title[candidates] & bool(query_title)
    hash_similarity = 1.0 - distance_h / 32.0
    scores: dict[str, np.ndarray] = {"hash_distance": distance_h}
    if pipeline == "baseline":
        fired = baseline_rules(cosine, distance_h, by_vector, text, settings)
        scores |= {"image_cosine": cosine, "tfidf_cosine": text}
        similarity = np.fmax(np.fmax(cosine, text), hash_similarity)
    else:
        ratio = np.zeros(m, dtype=np.float32)
        scored = np.flatnonzero(text >= RATIO_CANDIDATE_COSINE)
        scored = scored[np.argsort(-text[scored], kind="stable")[:RATIO_CANDIDATES]]
        # rapidfuzz's bound first (exact, see core.similarity): difflib only where it can pass.
        from rapidfuzz import fuzz, process

        bound = process.cdist(
            [query_title],
            [index.titles[candidates[i]] for i in scored],
            scorer=fuzz.ratio,
            score_cutoff=max(0.0, settings.ensemble_text_ratio * 100 - 1e-3),
            dtype=np.float32,
        )[0]
        ratio[scored[bound > 0]] = [
            sequence_ratio(index.titles[candidates[i]], query_title) for i in scored[bound > 0]
        ]
        distance = np.sqrt(np.maximum(0.0, 2.0 - 2.0 * cosine)).astype(np.float32)
        fired = ensemble_rules(distance, distance_h, by_vector, ratio, has_text, settings)
        scores |= {"siamese_distance": distance, "text_ratio": ratio}
        similarity = np.fmax(np.fmax(1.0 - distance / 2.0, ratio), hash_similarity)
    similarity = np.nan_to_num(similarity, nan=0.0)
    matched = np.logical_or.reduce(list(fired.values())) if m else np.zeros(0, dtype=bool)
    # Matches first, then by similarity; only the rows shown get strings and a DataFrame.
    order = np.lexsort((-similarity, ~matched))[: max(top_n, int(matched.sum()))]
    ids = [index.posting_ids[candidates[i]] for i in order]
    details = _postings_by_id(store, ids)
    frame = pd.DataFrame(
        {
            "posting_id": ids,
            "title": [details.get(pid, ("", None))[0] for pid in ids],
            "image_path": [details.get(pid, ("", None))[1] for pid in ids],
        }
    )
    for name, values in scores.items():
        frame[name] = values[order]
    frame["matched"] = matched[order]
    frame["rule"] = [
        "+".join(name for name, mask in fired.items() if mask[i]) for i in order.tolist()
    ]
    frame["similarity"] = similarity[order]
    return frame


def _postings_by_id(store: Store, posting_ids: list[str]) -> dict[str, tuple[str, str | None]]:
    """(title, image_path) of a few postings, read by primary key (not the whole catalog)."""
    found = {}
    for posting_id in posting_ids:
        row = store.posting(posting_id)
        if row is not None:
            found[posting_id] = (row.get("title") or "", row.get("image_path"))
    return found


def _best_against(
    matcher: BestMatcher,
    postings: pd.DataFrame,
    query_title: str,
    item: NewItem,
    vectors: tuple[list[str], np.ndarray, np.ndarray] | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Per catalog posting: the model's match probability with the item (0 where the item was
    not a candidate) and the rule that matched it ("model", "nearest" or "")."""
    from core.pipelines.base import MatchInputs
    from core.pipelines.best import select_pairs

    n = len(postings)
    item_hash = item.image_hash()
    query_id = "\x00query"  # cannot collide with an imported posting id (no control chars)
    extended = pd.concat(
        [
            postings[["posting_id", "title_norm", "image_phash"]],
            pd.DataFrame(
                {
                    "posting_id": [query_id],
                    "title_norm": [query_title],
                    "image_phash": [None if item_hash is None else f"{item_hash:016x}"],
                }
            ),
        ],
        ignore_index=True,
    )
    by_id = None
    if vectors is not None:
        ids, matrix, query_vector = vectors
        by_id = dict(zip(ids, matrix, strict=True))
        by_id[query_id] = query_vector
    inputs = MatchInputs.from_frame(extended, by_id, matcher.info.get("image_model"))
    table, _, prob = matcher.probabilities(inputs)
    config = matcher.config
    keep = select_pairs(
        n + 1,
        table.left,
        table.right,
        prob,
        config.threshold,
        min(config.threshold, config.threshold_low),
        config.min_one,
    )
    involves = (table.left == n) | (table.right == n)
    other = np.where(table.left == n, table.right, table.left)[involves]
    probability = np.zeros(n, dtype=np.float32)
    probability[other] = prob[involves]
    rule = np.full(n, "", dtype=object)
    kept = keep[involves]
    rule[other[kept]] = np.where(prob[involves][kept] >= config.threshold, "model", "nearest")
    return probability, rule


def _tfidf_against(titles: list[str], query_title: str) -> np.ndarray:
    from core.text import tfidf_vectors

    if not query_title:
        return np.zeros(len(titles), dtype=np.float32)
    matrix = tfidf_vectors([*titles, query_title])
    return np.asarray((matrix[:-1] @ matrix[-1].T).todense()).ravel().astype(np.float32)


def add_to_catalog(store: Store, item: NewItem, uploads_dir: Path) -> str:
    """Store an uploaded item as a new posting; its image goes under ``uploads_dir`` (inside the
    data folder) named by content hash, never by the uploader's file name."""
    item.validate()
    digest = hashlib.sha256((item.title or "").encode() + (item.image or b"")).hexdigest()
    posting_id = f"upload_{digest[:12]}"
    image_path, phash, status = None, item.phash.lower() if item.phash else None, "none"
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
                "title": item.title or "",
                "title_norm": normalize_title(item.title),
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
