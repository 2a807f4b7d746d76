"""The learned ``best`` pipeline: pair features, post-processing, training on real Shopee groups,
generalising to unseen groups, and safe save/load."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.candidates import ABSENT_RANK, Neighbours, SparseIndex, all_rows, union_directed
from core.engine import match_catalog
from core.errors import ModelNotTrainedError, SameSameError
from core.metrics import evaluate, true_match_sets
from core.pipelines import MatchInputs, MatchRequest, get_pipeline
from core.pipelines.best import (
    BEST,
    BestConfig,
    BestMatcher,
    catalog_training,
    select_pairs,
    tune_thresholds,
)
from core.pipelines.best.features import title_matrices
from core.pipelines.best.text_features import text_pair_features
from core.pipelines.best.thresholds import pair_f1
from core.pipelines.best.title_facts import model_codes, title_facts
from core.settings import MatchSettings
from core.text import normalize_title


def match_baseline(inputs: MatchInputs):
    return match_catalog(get_pipeline("baseline"), inputs, MatchSettings())


def match_best(inputs: MatchInputs, matcher: BestMatcher):
    return match_catalog(get_pipeline("best"), inputs, MatchSettings(), model=matcher)


# Small enough for CI, large enough that the classifier has a few thousand positive pairs.
FAST = {"n_estimators": 60, "num_leaves": 31}


# --- Fast unit tests ---------------------------------------------------------------------------


def test_quantities_normalise_units_and_lost_decimal_points():
    facts = title_facts(normalize_title("Aqua 0.5L botol"))
    assert ("ml", 500.0) in facts.quantities
    assert ("ml", 500.0) in title_facts(normalize_title("aqua 500 ML")).quantities
    assert ("g", 1000.0) in title_facts("gula 1kg").quantities
    assert ("pcs", 2.0) in title_facts("masker 2 pcs").quantities


def test_mismatched_amounts_are_a_conflict_and_shared_ones_are_not():
    titles = ["nivea cream 100ml", "nivea cream 200ml", "nivea cream 100 ml", "nivea cream"]
    left, right = np.array([0, 0, 0]), np.array([1, 2, 3])
    feats = text_pair_features(titles, left, right)
    assert feats["quantity_conflict"].tolist() == [1, 0, 0]
    assert feats["quantity_shared"].tolist() == [0, 1, 0]
    # The strings alone look alike, which is why the amounts need a feature of their own.
    assert feats["fuzz_ratio"][0] > 90


def test_model_numbers_glue_short_prefixes_but_not_words_or_amounts():
    assert model_codes(normalize_title("Samsung Galaxy SM-G950F 64GB black").split()) == {
        "g950f",
        "smg950f",
    }
    assert model_codes("vga rx 580 8gb".split()) == {"rx580"}
    # Amounts are quantities, not models; plain words never glue.
    assert model_codes("nivea cream 100ml twin pack".split()) == set()


def test_a_different_model_number_and_a_rare_unshared_word_are_features():
    titles = [
        normalize_title(t)
        for t in (
            "Elite Screens R85WH1 fixed frame screen",
            "Elite Screens R100WH1 fixed frame screen",
            "elite screens r85wh1 fixed frame",
            "fixed frame screen",
            "elite screens fixed frame screen",
        )
    ]
    left, right = np.array([0, 0, 3]), np.array([1, 2, 4])
    feats = text_pair_features(titles, left, right)
    assert feats["codes_conflict"][0] == 1 and feats["codes_conflict"][1] == 0
    assert np.isnan(feats["codes_conflict"][2])  # neither side names a model: no evidence
    assert feats["codes_shared"].tolist() == [0, 1, 0]
    # Within these titles "r100wh1" is rarer than "screen", which pair 1 lacks on one side.
    assert feats["rarity_only_one_max"][0] > feats["rarity_only_one_max"][1]
    assert feats["rarity_containment"][1] == pytest.approx(1.0)
    assert feats["first_token_same"].tolist() == [1, 1, 0]


def _per_pair_title_features(titles: list[str]):
    """The set arithmetic of the title features spelled out pair by pair (the definition
    the catalog-wide sparse products must reproduce): (a, b) → features."""
    from collections import Counter

    facts = [title_facts(t) for t in titles]
    counts = Counter(token for fact in facts for token in fact.tokens)
    rarity = {t: float(np.log((1 + len(titles)) / (1 + c)) + 1.0) for t, c in counts.items()}
    return lambda a, b: _pair_set_arithmetic(facts[a], facts[b], rarity)


def _pair_set_arithmetic(fa, fb, rarity: dict[str, float]) -> dict[str, float]:
    shared = fa.tokens & fb.tokens
    weight_a, weight_b = (sum(rarity[t] for t in f.tokens) for f in (fa, fb))
    shared_weight = sum(rarity[t] for t in shared)
    only = [
        max((rarity[t] for t in x.tokens - y.tokens), default=0.0) for x, y in ((fa, fb), (fb, fa))
    ]
    units = fa.units & fb.units
    conflict = sum(
        1
        for u in units
        if not {q for q in fa.quantities if q[0] == u} & {q for q in fb.quantities if q[0] == u}
    )
    numbers_union = len(fa.numbers | fb.numbers)
    return {
        "tokens_shared": len(shared),
        "token_jaccard": len(shared) / len(fa.tokens | fb.tokens) if fa.tokens | fb.tokens else 0,
        "numbers_only_one": numbers_union - len(fa.numbers & fb.numbers),
        "numbers_jaccard": len(fa.numbers & fb.numbers) / numbers_union
        if numbers_union
        else np.nan,
        "quantity_shared": len(fa.quantities & fb.quantities),
        "quantity_conflict": conflict,
        "rarity_jaccard": shared_weight / (weight_a + weight_b - shared_weight),
        "rarity_containment": shared_weight / min(weight_a, weight_b),
        "rarity_only_one_max": max(only),
        "rarity_only_one_min": min(only),
        "codes_shared": len(fa.codes & fb.codes),
        "codes_conflict": float(not fa.codes & fb.codes) if fa.codes and fb.codes else np.nan,
        "first_token_rarity": rarity[fa.first] if fa.first and fa.first == fb.first else 0.0,
    }


def test_title_features_of_a_whole_chunk_are_each_pairs_set_arithmetic(shopee_csv, monkeypatch):
    """On real Shopee titles and their real candidate pairs, the features computed for a
    chunk at once by sparse products (blocks spread over threads) are, pair by pair, what
    the sets of tokens, numbers, amounts and model numbers give; threads change nothing."""
    from core.pipelines.best import text_features

    titles = pd.read_csv(shopee_csv, nrows=3000)["title"].map(normalize_title).tolist()
    word, _ = title_matrices(titles, BestConfig())
    left, right = union_directed([all_rows(SparseIndex("word", word), len(titles), 10)])
    monkeypatch.setattr(text_features, "REPORT_EVERY", 997)  # several blocks, a short last one
    threaded = text_pair_features(titles, left, right)
    monkeypatch.setattr(text_features, "map_in_threads", lambda fn, items: map(fn, items))
    serial = text_pair_features(titles, left, right)
    for name in text_features.TEXT_FEATURES:
        np.testing.assert_array_equal(threaded[name], serial[name], err_msg=name)
    rng = np.random.default_rng(0)
    sample = rng.choice(len(left), 300, replace=False)
    hard = {"quantity_conflict": 0, "codes_conflict": 0, "rarity_only_one_max": 0}
    reference = _per_pair_title_features(titles)
    for p in sample:
        expected = reference(int(left[p]), int(right[p]))
        for name, value in expected.items():
            assert threaded[name][p] == pytest.approx(value, rel=1e-6, nan_ok=True), (name, p)
        hard["quantity_conflict"] += expected["quantity_conflict"] > 0
        hard["codes_conflict"] += expected["codes_conflict"] == 1
        hard["rarity_only_one_max"] += expected["rarity_only_one_max"] > 0
    # The sample holds the cases that tell products apart, not only identical titles.
    assert min(hard.values()) >= 5, hard
    assert len(left) > 2 * 997


def test_title_features_of_empty_titles_are_no_evidence():
    """Titles with no tokens (a catalog of them has no vocabulary at all) share nothing."""
    for titles in (["", "", ""], ["", "", "red shoe 40"]):
        feats = text_pair_features(titles, np.array([0, 0]), np.array([1, 2]))
        assert feats["tokens_shared"].tolist() == [0, 0]
        assert feats["first_token_same"].tolist() == [0, 0]
        assert feats["first_token_rarity"].tolist() == [0, 0]
        assert np.isnan(feats["codes_conflict"]).all() and np.isnan(feats["numbers_jaccard"][0])
    assert text_pair_features(["a b"], np.zeros(0, int), np.zeros(0, int))["fuzz_ratio"].size == 0


def test_dropped_feature_families_leave_both_stages_but_reported_similarities_stay(shopee_csv):
    """An ablation's `drop_features` takes a family out of stage 1 and the graph stage alike;
    the four similarities a match reports are never dropped."""
    from core.pipelines.best.features import find_candidates, pair_features
    from core.pipelines.best.graph import GRAPH_FEATURES, graph_features
    from core.pipelines.best.scoring import REPORTED_FEATURES

    frame = pd.read_csv(shopee_csv, nrows=800)
    frame["title_norm"] = frame["title"].map(normalize_title)
    inputs = MatchInputs.from_frame(frame)
    full_config = BestConfig()
    config = BestConfig(drop_features=["quantity_", "word_", "g_word_blend"])
    found = find_candidates(inputs, full_config)
    full, full_names = pair_features(found, full_config)
    kept, names = pair_features(found, config)
    assert not [n for n in names if n.startswith(("quantity_", "word_")) and n != "word_sim"]
    assert set(REPORTED_FEATURES) <= set(names)
    assert {"quantity_conflict", "word_rank_min"} <= set(full_names) - set(names)
    np.testing.assert_array_equal(kept, full[:, [full_names.index(n) for n in names]])
    table = build_table_like(found, full, full_names)
    prob = np.linspace(0, 1, len(found.left), dtype=np.float32)
    graph, graph_names = graph_features(table, prob, inputs.size, config)
    whole, _ = graph_features(table, prob, inputs.size)
    assert graph_names == [n for n in GRAPH_FEATURES if n != "g_word_blend"]
    np.testing.assert_array_equal(graph, whole[:, [GRAPH_FEATURES.index(n) for n in graph_names]])


def build_table_like(found, features, names):
    from core.pipelines.best.features import PairTable

    return PairTable(found.left, found.right, features, names, found.word, found.char)


def test_sparse_neighbours_exclude_self_and_empty_titles():
    titles = ["red shoe", "red shoe size 40", "blue hat", ""]
    word, _ = title_matrices(titles, BestConfig())
    nb = all_rows(SparseIndex("word", word), len(titles), 2)
    assert 0 not in nb.index[0] and nb.index[0, 0] == 1
    assert (nb.index[3] == -1).all()
    assert 3 not in nb.index[:3]
    left, right = union_directed([nb])
    assert (left < right).all()
    rank_a, rank_b = nb.ranks(np.array([0, 2]), np.array([1, 3]))
    assert rank_a[0] == 0 and rank_b[0] == 0
    assert rank_a[1] == ABSENT_RANK


def test_shared_neighbour_sums_are_the_same_in_chunks():
    """The graph stage's pair dot products, computed a chunk of pairs at a time (bounded
    memory), equal the product of the whole matrix."""
    from scipy.sparse import random as sparse_random

    from core.pipelines.best.graph import _row_dot

    p = sparse_random(300, 300, density=0.05, format="csr", random_state=1, dtype=np.float32)
    rng = np.random.default_rng(2)
    left, right = rng.integers(0, 300, 5000), rng.integers(0, 300, 5000)
    whole = (p @ p.T).toarray()[left, right]
    assert np.count_nonzero(whole) > 500
    np.testing.assert_allclose(_row_dot(p, left, right, chunk=777), whole, rtol=1e-5)


def test_blended_rows_in_blocks_equal_the_whole_product(shopee_csv):
    """Query expansion a block of rows at a time (bounding the product's temporaries) gives
    the very rows of the whole product: real titles' character TF-IDF, neighbours weighted by
    made-up probabilities."""
    from scipy.sparse import random as sparse_random
    from sklearn.preprocessing import normalize

    from core.pipelines.best.graph import _blend

    titles = pd.read_csv(shopee_csv, nrows=600)["title"].map(normalize_title).tolist()
    char = title_matrices(titles, BestConfig())[1]
    weights = sparse_random(600, 600, density=0.02, format="csr", random_state=3, dtype=np.float32)
    whole = normalize(char + weights @ char).astype(np.float32).tocsr()
    blocked = _blend(char, weights, block=97)
    assert blocked.shape == whole.shape and whole.nnz > char.nnz
    assert (blocked != whole).nnz == 0


def test_neighbour_ranks_are_positions_in_each_list():
    nb = Neighbours("x", np.array([[1, 2], [2, 0], [0, -1]]), np.ones((3, 2), np.float32))
    a, b = nb.ranks(np.array([0, 1]), np.array([2, 2]))
    assert a.tolist() == [1, 0]
    assert b.tolist() == [0, ABSENT_RANK]


def test_select_pairs_gives_lonely_postings_their_best_partner():
    left, right = np.array([0, 0, 2]), np.array([1, 2, 3])
    prob = np.array([0.9, 0.2, 0.3], np.float32)
    strict = select_pairs(4, left, right, prob, 0.5, 0.5, min_one=True)
    assert strict.tolist() == [True, False, False]
    lenient = select_pairs(4, left, right, prob, 0.5, 0.25, min_one=True)
    assert lenient.tolist() == [True, False, True]  # 2 and 3 had no match; 0.3 >= 0.25
    assert select_pairs(4, left, right, prob, 0.5, 0.1, min_one=False).tolist() == strict.tolist()


def test_pair_f1_is_the_competition_metric():
    ids = ["a", "b", "c", "d", "e"]
    labels = np.array(["1", "1", "1", "2", "2"], dtype=object)
    left, right = np.array([0, 1, 2]), np.array([1, 3, 4])
    predicted = {pid: {pid} for pid in ids}
    for a, b in zip(left, right, strict=True):
        predicted[ids[a]].add(ids[b])
        predicted[ids[b]].add(ids[a])
    truth = true_match_sets(dict(zip(ids, labels, strict=True)))
    assert pair_f1(5, labels, left, right) == pytest.approx(evaluate(predicted, truth)["f1"])


def test_load_of_missing_model_says_train_first(tmp_path):
    with pytest.raises(ModelNotTrainedError, match="Train one first"):
        BestMatcher.load(tmp_path)


def test_fit_rejects_labels_that_do_not_line_up():
    frame = pd.DataFrame(
        {
            "posting_id": ["a", "b", "c", "d"],
            "title_norm": ["x", "y", "z", "w"],
            "image_phash": ["0" * 16] * 4,
        }
    )
    inputs = MatchInputs.from_frame(frame)
    with pytest.raises(SameSameError, match="labels for 4 postings"):
        BestMatcher.fit(inputs, ["1", "1"])
    with pytest.raises(SameSameError, match="no two postings share a label"):
        BestMatcher.fit(inputs, ["1", "2", "3", "4"])


# --- Real data: train on some groups, match groups never seen ---------------------------------


@pytest.fixture(scope="module")
def shopee_split(shopee_csv: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """~3,000 real postings of 1,000 label groups, split 2:1 by group."""
    frame = pd.read_csv(shopee_csv, dtype={"label_group": str, "image_phash": str})
    groups = frame["label_group"].drop_duplicates().sample(n=1000, random_state=7)
    frame = frame[frame["label_group"].isin(set(groups))].reset_index(drop=True)
    frame["title_norm"] = [normalize_title(t) for t in frame["title"]]
    held_groups = set(groups.iloc[::3])
    held = frame[frame["label_group"].isin(held_groups)].reset_index(drop=True)
    train = frame[~frame["label_group"].isin(held_groups)].reset_index(drop=True)
    return train, held


@pytest.fixture(scope="module")
def trained(shopee_split) -> BestMatcher:
    train, _ = shopee_split
    steps: list[tuple[int, int]] = []
    matcher = BestMatcher.fit(
        MatchInputs.from_frame(train),
        train["label_group"].tolist(),
        config=BestConfig(**FAST),
        progress=lambda done, total: steps.append((done, total)),
    )
    assert steps and steps[-1][0] == steps[-1][1]
    return matcher


def _f1(result, frame: pd.DataFrame) -> float:
    truth = true_match_sets(dict(zip(frame["posting_id"], frame["label_group"], strict=True)))
    return evaluate(result.match_sets(), truth)["f1"]


@pytest.mark.slow
def test_training_beats_tfidf_baseline_on_unseen_groups(shopee_split, trained):
    _, held = shopee_split
    inputs = MatchInputs.from_frame(held)
    best = _f1(match_best(inputs, trained), held)
    baseline = _f1(match_baseline(inputs), held)
    assert best >= baseline + 0.02, (best, baseline)
    assert trained.info["postings"] > 1500


def test_thresholds_are_tuned_where_out_of_fold_f1_peaks():
    """Pairs of the same group score 0.8, others 0.6: the tuned cut must separate them."""
    labels = np.array(["a", "a", "b", "b", "c", "c"], dtype=object)
    left = np.array([0, 2, 4, 0, 1, 3])
    right = np.array([1, 3, 5, 2, 4, 5])
    prob = np.array([0.8, 0.8, 0.8, 0.6, 0.6, 0.6], np.float32)
    threshold, low, f1 = tune_thresholds(6, labels, left, right, prob, min_one=False)
    assert 0.6 < threshold <= 0.8 and f1 == pytest.approx(1.0)


@pytest.mark.slow
def test_match_needs_no_labels_and_reports_scores(shopee_split, trained):
    _, held = shopee_split
    unlabelled = held.drop(columns=["label_group"]).head(400)
    result = match_catalog(BEST, MatchInputs.from_frame(unlabelled), MatchSettings(), model=trained)
    assert result.pipeline == "best"
    assert len(result.pairs) > 0
    for column in ("left", "right", "rule", "probability", "tfidf_cosine", "hash_distance"):
        assert column in result.pairs.columns
    assert set(result.pairs["rule"]) <= {"model", "nearest"}
    assert result.pairs["probability"].between(0, 1).all()
    position = {pid: i for i, pid in enumerate(result.posting_ids)}
    assert (result.pairs["left"].map(position) < result.pairs["right"].map(position)).all()


@pytest.mark.slow
def test_pairs_scored_in_chunks_get_the_probabilities_of_one_pass(
    shopee_split, trained, monkeypatch
):
    """Features computed and scored a chunk of pairs at a time (stage 1 features spilled to
    disk for stage 2) give exactly the probabilities and matches of one pass."""
    import core.pipelines.best.scoring as scoring

    _, held = shopee_split
    inputs = MatchInputs.from_frame(held.head(800))
    table, prob1, prob = trained.probabilities(inputs)
    whole = match_catalog(BEST, inputs, MatchSettings(), model=trained)
    assert len(table.left) > 3 * 997  # several chunks
    chunked_table, chunked1, chunked = trained.probabilities(
        inputs, runner=scoring.LocalRunner(chunk=997)
    )
    np.testing.assert_array_equal(chunked_table.left, table.left)
    np.testing.assert_array_equal(chunked1, prob1)
    np.testing.assert_array_equal(chunked, prob)
    np.testing.assert_array_equal(chunked_table.features, table.features)
    monkeypatch.setattr(scoring, "FEATURE_CHUNK", 997)
    pd.testing.assert_frame_equal(
        match_catalog(BEST, inputs, MatchSettings(), model=trained).pairs, whole.pairs
    )
    # The engine reading the scored pairs back a few postings at a time: the same matches,
    # and no chunk over its pairs but for a posting that alone has more.
    chunked_run = match_catalog(BEST, inputs, MatchSettings(), model=trained, pairs_per_chunk=97)
    pd.testing.assert_frame_equal(chunked_run.pairs, whole.pairs)
    assert chunked_run.stats.chunks > 3 * whole.stats.chunks
    prepared = BEST.prepare(MatchRequest(inputs, MatchSettings(), model=trained))
    chunks = list(prepared.row_chunks(97))
    np.testing.assert_array_equal(np.concatenate(chunks), np.arange(inputs.size))
    for rows in chunks:
        pairs = len(prepared.candidates(rows)[0])
        assert pairs <= 97 or len(rows) == 1, (pairs, len(rows))


@pytest.mark.slow
def test_match_reports_each_stage_until_it_is_done(shopee_split, trained):
    """A progress bar per stage (candidates, pair features, scoring), each reaching its total,
    in that order, through the registry's match as the CLI and the Match page call it; and
    the stage seconds in the result's stats."""
    _, held = shopee_split
    inputs = MatchInputs.from_frame(held.head(600))
    heard: dict[str, list[tuple[int, int]]] = {}

    def stages(name: str):
        heard[name] = []
        return lambda done, total: heard[name].append((done, total))

    result = match_catalog(
        get_pipeline("best"), inputs, MatchSettings(), model=trained, stages=stages
    )
    names = list(heard)
    assert [n.split(" (")[0] for n in names] == [
        "best: finding candidates",
        "best: pair features",
        "best: scoring",
    ]
    for name in names:
        done = [d for d, _ in heard[name]]
        assert done == sorted(done) and heard[name][-1][0] == heard[name][-1][1] > 0, name
    # Three modalities without image vectors: every posting searched in each.
    assert heard[names[0]][-1][1] == 3 * inputs.size
    # The engine reads each candidate pair from both of its postings.
    assert 2 * heard[names[1]][-1][1] == result.stats.candidates
    assert {"candidates_index", "neighbours", "scoring"} <= set(result.stats.seconds)
    assert all(v >= 0 for v in result.stats.seconds.values())


def _group_vectors(frame: pd.DataFrame, seed: int) -> dict[str, np.ndarray]:
    """Photo-like vectors: each label group a direction, each posting a noisy copy of it."""
    rng = np.random.default_rng(seed)
    groups = {g: rng.normal(size=16) for g in frame["label_group"].unique()}
    out = {}
    for pid, group in zip(frame["posting_id"], frame["label_group"], strict=True):
        v = groups[group] + 0.5 * rng.normal(size=16)
        out[pid] = (v / np.linalg.norm(v)).astype(np.float32)
    return out


@pytest.mark.slow
def test_a_model_trained_with_image_vectors_uses_them_on_unseen_groups(shopee_split):
    train, held = shopee_split
    matcher = BestMatcher.fit(
        MatchInputs.from_frame(train, _group_vectors(train, 1), "test"),
        train["label_group"].tolist(),
        config=BestConfig(**FAST),
    )
    importance = dict(
        zip(matcher.stage1.feature_name(), matcher.stage1.feature_importance(), strict=True)
    )
    assert importance["image_sim"] > 0
    with_vectors = match_best(
        MatchInputs.from_frame(held, _group_vectors(held, 2), "test"), matcher
    )
    without = match_best(MatchInputs.from_frame(held), matcher)
    assert with_vectors.pairs["image_cosine"].notna().all()
    assert _f1(with_vectors, held) > _f1(without, held) + 0.02


@pytest.mark.slow
def test_saved_model_reloads_to_identical_matches_without_pickles(tmp_path, shopee_split, trained):
    _, held = shopee_split
    trained.save(tmp_path / "model")
    files = sorted(p.name for p in (tmp_path / "model").rglob("*") if p.is_file())
    assert not [f for f in files if f.endswith((".pkl", ".pickle", ".joblib", ".npy"))]
    for path in (tmp_path / "model").rglob("*"):
        if path.is_file() and path.suffix in (".json", ".txt"):
            assert not path.read_bytes().startswith(b"\x80")  # pickle protocol header
    payload = json.loads((tmp_path / "model" / "best.json").read_text())
    assert payload["info"]["training_seconds"] > 0
    assert payload["info"]["oof_f1"] > 0.5

    reloaded = BestMatcher.load(tmp_path / "model")
    inputs = MatchInputs.from_frame(held)
    before = match_catalog(BEST, inputs, MatchSettings(), model=trained).pairs
    after = match_catalog(BEST, inputs, MatchSettings(), model=reloaded).pairs
    pd.testing.assert_frame_equal(before, after)
    assert reloaded.config == trained.config


@pytest.mark.slow
@pytest.mark.tf
def test_optional_title_encoder_trains_and_reloads_in_safe_mode(tmp_path, shopee_split):
    train, held = shopee_split
    config = BestConfig(**FAST, title_model=True, title_model_epochs=1, graph_stage=False)
    matcher = BestMatcher.fit(
        MatchInputs.from_frame(train), train["label_group"].tolist(), config=config
    )
    assert any(name.startswith("title_model_") for name in matcher.names1)
    matcher.save(tmp_path / "model")
    assert list((tmp_path / "model").rglob("*.keras"))
    reloaded = BestMatcher.load(tmp_path / "model")
    inputs = MatchInputs.from_frame(held.head(300))
    pd.testing.assert_frame_equal(
        match_catalog(BEST, inputs, MatchSettings(), model=matcher).pairs,
        match_catalog(BEST, inputs, MatchSettings(), model=reloaded).pairs,
    )


def _spy_boosters(monkeypatch):
    """Replace LightGBM by boosters that remember which folds they were trained on (feature 0
    of each pair holds its fold) and predict the index of the model that scored a pair."""
    from core.pipelines.best import training

    seen: list[set[int]] = []

    class Spy:
        def __init__(self, number: int) -> None:
            self.number = number

        def predict(self, x: np.ndarray) -> np.ndarray:
            return np.full(len(x), self.number, np.float32)

    def train(x, y, names, config):
        seen.append(set(x[:, 0].astype(int).tolist()))
        return Spy(len(seen) - 1)

    monkeypatch.setattr(training, "_train_booster", train)
    return seen


def test_out_of_fold_pairs_are_scored_by_models_that_never_saw_their_fold(monkeypatch):
    from core.pipelines.best.training import _nested_stage1, _out_of_fold

    seen = _spy_boosters(monkeypatch)
    fold = np.repeat(np.arange(4), 6)
    x = np.column_stack([fold, np.arange(len(fold))]).astype(np.float32)
    y = np.tile([1, 0], len(fold) // 2).astype(np.float32)

    scored_by = _out_of_fold(x, y, ["fold", "n"], fold, BestConfig()).astype(int)
    for pair, model in enumerate(scored_by):
        assert fold[pair] not in seen[model]
    nested = _nested_stage1(x, y, ["fold", "n"], fold, BestConfig())
    assert len(nested) == 4 * 3  # every held-out fold × every other fold
    for (held_out, scored), models in nested.items():
        for model in models.astype(int):
            assert held_out not in seen[model] and scored not in seen[model]


def test_too_few_groups_to_hold_folds_out_is_an_error_not_an_in_sample_fallback():
    from core.pipelines.best.training import _out_of_fold

    fold = np.array([0, 0, 1, 1, 2, 2])
    y = np.array([1, 1, 0, 0, 0, 0], np.float32)  # only fold 0 has a match
    with pytest.raises(SameSameError, match="Too few labelled groups"):
        _out_of_fold(np.zeros((6, 2), np.float32), y, ["a", "b"], fold, BestConfig())


def test_adopting_another_catalogs_matcher_checks_its_image_evidence(demo_catalog, tmp_path):
    """A labelled catalog's matcher is offered to the others and copied on adoption; one that
    compares photos differently from the catalog is refused with the reason."""
    from core import models
    from core.catalog import import_catalog
    from core.store import Store

    images = demo_catalog.parent / "images"
    with Store(tmp_path / "labelled.db") as labelled:
        import_catalog(labelled, demo_catalog, None)
        catalog_training.train_best_model(labelled, MatchSettings(), models.best_dir(labelled))
        source = models.best_dir(labelled)
    frame = pd.read_csv(demo_catalog, dtype=str).drop(columns=["label_group"])
    frame.to_csv(tmp_path / "shop.csv", index=False)
    from core.pipelines.best.model import CONFIG_FILE

    with Store(tmp_path / "broken.db") as other:
        broken = models.best_dir(other)
    broken.mkdir(parents=True)
    (broken / CONFIG_FILE).write_text("{not json")  # a damaged model elsewhere is skipped
    with Store(tmp_path / "shop.db") as shop:
        import_catalog(shop, tmp_path / "shop.csv", None)
        offered = models.other_best_models(shop)
        assert [(name, folder) for name, folder, _ in offered] == [("labelled", source)]
        info = models.adopt_best_model(shop, MatchSettings(), source)
        assert info["adopted_from"] == "labelled"
        assert models.best_dir(shop).is_dir() and source.is_dir()  # a copy
        # Its own model is not offered back to it.
        assert models.other_best_models(shop) == offered
    with Store(tmp_path / "photos.db") as photos:
        import_catalog(photos, tmp_path / "shop.csv", images)
        ids = photos.postings()["posting_id"].tolist()
        vectors = np.eye(len(ids), 8, dtype=np.float32) + 0.01
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        name = models.image_model_name(MatchSettings())
        photos.save_embeddings(name, models.IMAGENET, ids, vectors)
        with pytest.raises(SameSameError, match=f"perceptual hash, this catalog by {name}"):
            models.adopt_best_model(photos, MatchSettings(), source)
        assert not models.best_dir(photos).exists()
