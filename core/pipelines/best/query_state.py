"""A catalog made ready for ``best``'s single-item queries: scored once, then each new item is
scored against it in milliseconds.

A batch run of ``best`` works out, for the whole catalog, every posting's neighbour lists,
every candidate pair's stage 1 probability and the graph those probabilities make. A query used
to redo all of it with the item appended (a whole catalog run per query). `QueryCatalog` keeps
what a batch run found; `QueryCatalog.score_item` then computes the item's candidate pairs, their
features and probabilities as the batch would with the item appended:

- the item's similarity to every posting per modality, its own top-k, and where it would enter
  each posting's list (`ItemNeighbourhood`), so ranks and neighbourhood features count it;
- its title's words counted in the catalog's rarities (`with_title`: exact) and its TF-IDF
  rows on the catalog's vocabulary and IDF (`TfidfModel.row_for`: terms only it has count
  toward its length);
- stage 2's graph features (`core.pipelines.best.query_graph`) from the catalog's stage 1 graph
  plus the item's pairs, where the rows of the item's candidates are scored again with the item
  in their neighbour lists (each list it enters moves down by one and loses its last) and in
  the title rarities (`QueryCatalog._catalog_rows`): on a small catalog the item enters most
  lists, and leaving this out moved final probabilities by up to 0.3.

What it leaves out: IDF moves by one title in n + 1 for pairs it does not score again, the
catalog's typical nearest-neighbour similarity for those pairs, and ties fall as the
catalog's own order says (a batch's index breaks ties its own way). Agreement with a whole run
with the item appended is measured in ``tests/test_best_query.py`` (Shopee titles) and
``tests/test_image_head.py`` (grocery photos) and by ``benchmarks/bench_best_query.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse import csr_matrix

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
    pair_similarities,
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
    """One modality with the item appended: its own top-k list, its rank in every posting's
    list, and every posting's nearest, 5th and last similarity once it is in (the item's own
    last, at position n)."""

    own: np.ndarray
    rank_in: np.ndarray
    top1: np.ndarray
    kth: np.ndarray
    last: np.ndarray
    typical: float

    @classmethod
    def of(cls, nb: Neighbours, sim: np.ndarray) -> ItemNeighbourhood:
        """``sim``: the item's similarity to every posting as the lists rank it (NaN where
        the index could not list the pair)."""
        valid = np.isfinite(sim)
        order = np.flatnonzero(valid)
        order = order[np.argsort(-sim[order], kind="stable")][: nb.k]
        with np.errstate(invalid="ignore"):
            # The item is the catalog's last posting: it comes after every posting it ties with.
            rank = np.sum(nb.score >= sim[:, None], axis=1)
        rank = np.where(valid & (rank < nb.k), rank, ABSENT_RANK)
        k = nb.k
        own = np.full(k, np.nan, np.float32)
        own[: len(order)] = sim[order]
        ends = [own[a] for a in (0, min(MARGIN_RANK, k) - 1, k - 1)] if k else [np.nan] * 3
        columns = [_inserted(nb.score, sim, rank, j) for j in (1, MARGIN_RANK, max(k, 1))]
        top1, kth, last = (np.append(c, e) for c, e in zip(columns, ends, strict=True))
        return cls(order, rank, top1, kth, last, median_nearest(top1))

    def candidates(self) -> np.ndarray:
        """Postings the item lists or that would list it."""
        return np.union1d(self.own, np.flatnonzero(self.rank_in < ABSENT_RANK))

    def hood(self, others: np.ndarray) -> Neighbourhood:
        """Pairs (other, item): the other's side first, as the batch orders them (i < j)."""
        item = len(self.rank_in)
        where = {int(p): r for r, p in enumerate(self.own.tolist())}
        own_rank = np.array([where.get(int(p), ABSENT_RANK) for p in others.tolist()], np.float32)
        return self._hood(self.rank_in[others].astype(np.float32), own_rank, others, item)

    def _hood(self, rank_a, rank_b, a, b) -> Neighbourhood:
        return Neighbourhood(
            rank_a,
            rank_b,
            self.top1[a],
            np.broadcast_to(self.top1[b], np.shape(rank_a)),
            self.kth[a],
            np.broadcast_to(self.kth[b], np.shape(rank_a)),
            self.last[a],
            np.broadcast_to(self.last[b], np.shape(rank_a)),
            self.typical,
        )

    def catalog_hood(
        self, nb: Neighbours, left: np.ndarray, right: np.ndarray
    ) -> tuple[Neighbourhood, np.ndarray]:
        """Pairs of catalog postings once the item is in their lists (each list it enters
        moves down by one and loses its last), and whether either still lists the other."""
        rank_a, rank_b = nb.ranks(left, right)
        rank_a = self._moved(rank_a, left, nb.k)
        rank_b = self._moved(rank_b, right, nb.k)
        listed = (rank_a < ABSENT_RANK) | (rank_b < ABSENT_RANK)
        return self._hood(rank_a, rank_b, left, right), listed

    def _moved(self, rank: np.ndarray, owner: np.ndarray, k: int) -> np.ndarray:
        moved = np.where(rank >= self.rank_in[owner], rank + 1, rank)
        return np.where(moved < k, moved, ABSENT_RANK).astype(np.float32)


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
        self.found = found
        self.inputs: MatchInputs = inputs
        self.titles = list(inputs.titles)
        self.lists = {nb.name: nb for nb in found.lists}
        self.dense = found.dense
        self.tfidf: tuple[TfidfModel, TfidfModel] = found.tfidf
        self.context: TitleContext = found.context
        n = inputs.size
        self.graph = CatalogGraph(
            pair_probability_matrix(n, found.left, found.right, prob1), found.word, found.char
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
        # The probabilities are in the order of the candidates' pairs.
        _, prob1, prob = score_candidates(matcher, inputs, stages, seen=kept.append)
        return cls(matcher, kept[0], prob1, prob)

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
        for name, model, row in zip(("word", "char"), self.tfidf, (word, char), strict=True):
            sim = np.asarray((model.matrix @ row.T).todense())
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
            columns.update(
                modality_features(name, sims[name][0][others], h.hood(others), name != "hash")
            )
        shown = {
            "tfidf_cosine": columns.get("word_sim"),
            "hash_distance": columns.get("hash_sim"),
            "image_cosine": columns.get("image_sim", np.full(len(others), np.nan, np.float32)),
        }
        titles = [*self.titles, item.title]
        context = with_title(self.context, item.title)
        item_at = np.full(len(others), n, np.int64)
        features, prob = self._stage1(columns, others, item_at, titles, context)
        if matcher.stage2 is not None:
            rows = self._catalog_rows(hoods, others, titles, context)
            graph = item_graph_features(
                self.graph, others, prob, rows, (word, char), matcher.config
            )
            prob = predict(matcher.stage2, features, graph)
        if matcher.rescorer is not None:
            prob = matcher.rescorer.rescore(titles, others, item_at, prob, matcher.config, n)
        rule = self._decide(others, prob)
        return ItemScores(others, prob, {k: v for k, v in shown.items() if v is not None}, rule)

    def _stage1(
        self,
        columns: dict[str, np.ndarray],
        left: np.ndarray,
        right: np.ndarray,
        titles: list[str],
        context: TitleContext,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Stage 1's features and probabilities of pairs from their modality ``columns``."""
        matcher = self.matcher
        features, names = feature_matrix(
            columns, set(self.dense), titles, left, right, context, matcher.config
        )
        if names != matcher.names1:
            raise SameSameError(
                "This catalog's features differ from the trained model's; retrain the best model"
            )
        return features, predict(matcher.stage1, features)

    def _catalog_rows(
        self,
        hoods: dict[str, ItemNeighbourhood],
        others: np.ndarray,
        titles: list[str],
        context: TitleContext,
    ) -> csr_matrix:
        """The others' rows of the stage 1 graph with the item appended: their catalog pairs
        scored again with the item in the neighbour lists and the title rarities (a pair no
        list holds any more is gone), as the graph features of the item's pairs read them."""
        rows = self.graph.prob[others]
        mine = np.repeat(others, np.diff(rows.indptr))
        theirs = rows.indices.astype(np.int64)
        if len(mine) == 0:
            return rows
        left, right = np.minimum(mine, theirs), np.maximum(mine, theirs)
        columns: dict[str, np.ndarray] = {}
        listed = np.zeros(len(left), bool)
        for name, h in hoods.items():
            hood, still = h.catalog_hood(self.lists[name], left, right)
            listed |= still
            sim = pair_similarities(self.found, name, left, right)
            columns.update(modality_features(name, sim, hood, name != "hash"))
        prob = self._stage1(columns, left, right, titles, context)[1]
        refreshed = csr_matrix(
            (np.where(listed, prob, 0.0).astype(np.float32), rows.indices, rows.indptr),
            shape=rows.shape,
        )
        refreshed.eliminate_zeros()
        return refreshed

    def _decide(self, others: np.ndarray, prob: np.ndarray) -> np.ndarray:
        """ "model" at the threshold; "nearest" where the item is a lonely side's most probable
        partner at ``threshold_low`` (`BestPipeline.refine`'s rule, for the item's pairs)."""
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
