"""A catalog made ready for ``best``'s single-item queries: scored once, then each new item is
scored against it in milliseconds.

A batch run of ``best`` works out, for the whole catalog, every posting's neighbour lists,
every candidate pair's stage 1 probability and the graph those probabilities make. A query used
to redo all of it with the item appended (a whole catalog run per query). `QueryCatalog` keeps
what a batch run found; `QueryCatalog.score_item` then computes the item's candidate pairs, their
features and probabilities as the batch would with the item appended, the catalog's own lists,
pairs and vocabularies held as they are:

- the item's similarity to every posting per modality, its own top-k, and where it would enter
  each posting's list (`ItemNeighbourhood`), so ranks and neighbourhood features count it;
- its title's words counted in the catalog's rarities (`with_title`: exact) and its TF-IDF
  rows on the catalog's vocabulary and IDF (`TfidfModel.row_for`: terms only it has count
  toward its length);
- stage 2's graph features (`core.pipelines.best.query_graph`) from the catalog's stage 1
  probabilities plus the item's.

What it leaves out: the item's effect on pairs between two catalog postings (a catalog posting
whose list the item enters loses its last neighbour; IDF moves by one title in n). Agreement
with a full run with the item appended is measured in ``tests/test_best_query.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.candidates import Neighbours, TfidfModel
from core.candidates.base import ABSENT_RANK
from core.errors import SameSameError
from core.pipelines.best.features import (
    MARGIN_RANK,
    Candidates,
    Neighbourhood,
    Stages,
    feature_matrix,
    median_nearest,
    modality_features,
)
from core.pipelines.best.graph import pair_probability_matrix
from core.pipelines.best.query_graph import CatalogGraph, item_graph_features
from core.pipelines.best.scoring import predict, score_candidates
from core.pipelines.best.text_features import TitleContext, with_title
from core.pipelines.inputs import MatchInputs, hash_distances

#: Hash similarity is 64 − distance in the neighbour lists ("higher is closer" everywhere).
HASH_BITS = 64.0


@dataclass(frozen=True)
class Item:
    """A new posting's evidence: its title (normalised, with any photo text), perceptual hash
    and photo vector (of the model's backbone), each possibly missing."""

    title: str
    hash: int | None = None
    vector: np.ndarray | None = None


@dataclass(frozen=True)
class ItemScores:
    """The item's candidate pairs: catalog positions, features the answer shows, probabilities
    and the decision (``rule``: "model", "nearest" or "")."""

    others: np.ndarray
    probability: np.ndarray
    columns: dict[str, np.ndarray]
    rule: np.ndarray


def _inserted(scores: np.ndarray, s: np.ndarray, rank: np.ndarray, j: int) -> np.ndarray:
    """Each row's ``j``-th (1-based) similarity once ``s`` is inserted at ``rank`` (a row the
    item does not enter, rank >= k, keeps its own)."""
    k = scores.shape[1]
    if k == 0:
        return np.full(len(scores), np.nan, np.float32)
    at = min(j, k) - 1
    before = scores[:, at]
    shifted = scores[:, at - 1] if at >= 1 else s
    return np.where(rank < at, shifted, np.where(rank == at, s, before)).astype(np.float32)


@dataclass
class ItemNeighbourhood:
    """One modality with the item appended: its similarity to every catalog posting (NaN where
    it could not be listed), its own top-k list and its rank in every posting's list."""

    sim: np.ndarray
    own: np.ndarray
    own_score: np.ndarray
    rank_in: np.ndarray

    @classmethod
    def of(cls, nb: Neighbours, sim: np.ndarray) -> ItemNeighbourhood:
        valid = np.isfinite(sim)
        order = np.flatnonzero(valid)
        order = order[np.argsort(-sim[order], kind="stable")][: nb.k]
        with np.errstate(invalid="ignore"):
            # The item is the catalog's last posting: it comes after every posting it ties with.
            rank = np.sum(nb.score >= sim[:, None], axis=1)
        rank = np.where(valid & (rank < nb.k), rank, ABSENT_RANK)
        return cls(sim, order, sim[order].astype(np.float32), rank)

    def candidates(self) -> np.ndarray:
        """Postings the item lists or that would list it."""
        return np.union1d(self.own, np.flatnonzero(self.rank_in < ABSENT_RANK))

    def hood(self, nb: Neighbours, others: np.ndarray) -> Neighbourhood:
        """Pairs (other, item): the other's side first, as the batch orders them (i < j)."""
        k = nb.k
        own = np.full(k, np.nan, np.float32)
        own[: len(self.own_score)] = self.own_score
        top1 = _inserted(nb.score, self.sim, self.rank_in, 1)
        own_rank = np.full(len(others), ABSENT_RANK, np.float32)
        where = {int(p): r for r, p in enumerate(self.own.tolist())}
        for i, p in enumerate(others.tolist()):
            own_rank[i] = where.get(int(p), ABSENT_RANK)
        s, rank = self.sim[others], self.rank_in[others]
        scores = nb.score[others]
        return Neighbourhood(
            rank.astype(np.float32),
            own_rank,
            top1[others],
            np.full(len(others), own[0] if k else np.nan, np.float32),
            _inserted(scores, s, rank, MARGIN_RANK),
            np.full(len(others), own[min(MARGIN_RANK, k) - 1] if k else np.nan, np.float32),
            _inserted(scores, s, rank, k),
            np.full(len(others), own[k - 1] if k else np.nan, np.float32),
            median_nearest(np.append(top1, own[0] if k else np.nan)),
        )


class QueryCatalog:
    """What single-item queries of ``best`` need of one catalog (see the module docstring).

    Build with `QueryCatalog.build`; it holds each posting's neighbour lists and the candidate
    pairs' probabilities (what a batch run holds), not the pairs' features.
    """

    def __init__(self, matcher, found: Candidates, prob1: np.ndarray, prob: np.ndarray) -> None:
        inputs = found.inputs
        if found.tfidf is None:
            raise SameSameError("best's query catalog needs the TF-IDF models of its run")
        self.matcher = matcher
        self.inputs: MatchInputs = inputs
        self.titles = list(inputs.titles)
        self.lists = {nb.name: nb for nb in found.lists}
        self.dense = found.dense
        self.tfidf: tuple[TfidfModel, TfidfModel] = found.tfidf
        self.context: TitleContext = found.context
        n = inputs.size
        self.graph = CatalogGraph.of(
            pair_probability_matrix(n, found.left, found.right, prob1),
            found.word,
            found.char,
        )
        # Each posting's most probable partner's final probability: a posting with none at
        # the threshold gets the item as its "nearest" match when the item beats it.
        self.final_best = np.full(n, -np.inf, np.float32)
        np.maximum.at(self.final_best, found.left, prob)
        np.maximum.at(self.final_best, found.right, prob)

    @classmethod
    def build(cls, matcher, inputs: MatchInputs, stages: Stages | None = None) -> QueryCatalog:
        """Score the catalog once as a batch run does, keeping what queries need."""
        if inputs.size == 0:
            raise SameSameError("The catalog is empty: import a catalog first.")
        kept: list[Candidates] = []
        table, prob1, prob = score_candidates(matcher, inputs, stages, seen=kept.append)
        found = kept[0]
        # The batch's pairs (the table's) are the candidates' pairs, in the same order.
        return cls(matcher, found, prob1, prob)

    @property
    def size(self) -> int:
        return self.inputs.size

    # -- one item ------------------------------------------------------------------------------
    def _similarities(self, item: Item, word, char) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Per modality, the item's similarity to every posting as pair features read it (the
        Hamming distance for "hash"; NaN where a side has no hash or vector), and as the
        neighbour lists rank it ("higher is closer"; NaN where the index could not list it)."""
        inputs, matcher = self.inputs, self.matcher
        out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for name, row in (("word", word), ("char", char)):
            sim = np.asarray((self.tfidf[0 if name == "word" else 1].matrix @ row.T).todense())
            sim = np.minimum(sim.ravel().astype(np.float32), 1.0)
            out[name] = (sim, np.where(sim > 0, sim, np.nan).astype(np.float32))
        distance = np.full(self.size, np.nan, np.float32)
        if item.hash is not None:
            has = inputs.has_hash
            distance[has] = hash_distances(
                inputs.hashes[has], np.full(int(has.sum()), item.hash, np.uint64)
            )
        with np.errstate(invalid="ignore"):
            near = distance <= matcher.config.hash_max_distance
        out["hash"] = (distance, np.where(near, HASH_BITS - distance, np.nan).astype(np.float32))
        for name, (vectors, present) in self.dense.items():
            vector = self._item_vector(name, item)
            sim = np.full(self.size, np.nan, np.float32)
            if vector is not None:
                sim[present] = vectors[present] @ vector
            out[name] = (sim, sim)
        return out

    def _item_vector(self, name: str, item: Item) -> np.ndarray | None:
        matcher = self.matcher
        if name == "title_model":
            return matcher.title_encoder.encode([item.title])[0] if item.title else None
        if item.vector is None:
            return None
        vector = np.asarray(item.vector, np.float32)
        if name == "image_head":
            return matcher.image_head.embed(vector[None, :], np.array([True]))[0]
        return vector

    def score_item(self, item: Item) -> ItemScores:
        """The item's candidate pairs, scored and decided as the batch would with the item as
        the catalog's last posting."""
        matcher, n = self.matcher, self.size
        word, char = (model.row_for(item.title) for model in self.tfidf)
        sims = self._similarities(item, word, char)
        hoods = {name: ItemNeighbourhood.of(self.lists[name], sims[name][1]) for name in self.lists}
        others = np.unique(np.concatenate([h.candidates() for h in hoods.values()]))
        others = others.astype(np.int64)
        if len(others) == 0:
            return ItemScores(others, np.zeros(0, np.float32), {}, np.zeros(0, object))
        columns = {}
        for name, h in hoods.items():
            sim = sims[name][0][others]
            hood = h.hood(self.lists[name], others)
            columns.update(modality_features(name, sim, hood, name != "hash"))
        shown = {
            "tfidf_cosine": columns.get("word_sim"),
            "hash_distance": columns.get("hash_sim"),
            "image_cosine": columns.get("image_sim", np.full(len(others), np.nan, np.float32)),
        }
        item_at = np.full(len(others), n, np.int64)
        features, names = feature_matrix(
            columns,
            set(self.dense),
            [*self.titles, item.title],
            others,
            item_at,
            with_title(self.context, item.title),
            matcher.config,
        )
        if names != matcher.names1:
            raise SameSameError(
                "This catalog's features differ from the trained model's; retrain the best model"
            )
        prob = predict(matcher.stage1, features)
        if matcher.stage2 is not None:
            graph = item_graph_features(self.graph, others, prob, word, char, matcher.config)
            prob = predict(matcher.stage2, features, graph)
        if matcher.rescorer is not None:
            titles = [*self.titles, item.title]
            prob = matcher.rescorer.rescore(titles, others, item_at, prob, matcher.config, n)
        rule = self._decide(others, prob)
        return ItemScores(others, prob, {k: v for k, v in shown.items() if v is not None}, rule)

    def _decide(self, others: np.ndarray, prob: np.ndarray) -> np.ndarray:
        """ "model" at the threshold; "nearest" where the item is a lonely side's most probable
        partner at ``threshold_low`` (`BestMatcher.decide`'s rule, for the item's pairs)."""
        config = self.matcher.config
        t = config.threshold
        low = min(t, config.threshold_low)
        rule = np.where(prob >= t, "model", "").astype(object)
        if not config.min_one:
            return rule
        if not (prob >= t).any():
            partner = int(np.argmax(prob))
            if prob[partner] >= low:
                rule[partner] = "nearest"
        lonely = (self.final_best[others] < t) & (prob > self.final_best[others]) & (prob >= low)
        rule[lonely & (rule == "")] = "nearest"
        return rule
