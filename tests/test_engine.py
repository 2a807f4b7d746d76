"""The batch engine: one scoring path for batch and single-item queries, at most max_matches per
posting (best first), and memory that does not grow with how many postings look alike."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.catalog import import_catalog
from core.engine import match_catalog
from core.pair_listing import LISTED_BOTH
from core.pipelines import MatchInputs, MatchRequest, get_pipeline
from core.pipelines.inputs import load_inputs_with_item
from core.query import _exact_frame
from core.settings import MatchSettings
from core.store import Store
from core.text import normalize_title

SETTINGS = MatchSettings()


def catalog(titles: list[str], hashes: list[str | None] | None = None) -> MatchInputs:
    frame = pd.DataFrame(
        {
            "posting_id": [f"p{i:04d}" for i in range(len(titles))],
            "title_norm": [normalize_title(t) for t in titles],
            "image_phash": hashes or [None] * len(titles),
        }
    )
    return MatchInputs.from_frame(frame)


def dense_catalog(products: int, copies: int, seed: int = 0) -> MatchInputs:
    """``products`` variants of one base title (a size or colour word each), ``copies`` sellers
    per variant: every title shares most words with every other, as a popular item does."""
    rng = np.random.default_rng(seed)
    base = "kaos polos cotton combed premium unisex lengan pendek"
    titles = [
        f"{base} varian {v} ukuran {rng.integers(1, 4)}" + (" promo" if c % 2 else "")
        for v in range(products)
        for c in range(copies)
    ]
    return catalog(titles)


# -- the cap --------------------------------------------------------------------------------------
def test_a_posting_with_200_identical_neighbours_keeps_50_best_first() -> None:
    titles = ["sabun cair lifebuoy 450 ml"] * 201 + ["sabun cair lifebuoy 450 ml refill"] * 3
    titles += ["sepatu anak"] * 2
    inputs = catalog(titles)

    result = match_catalog(get_pipeline("baseline"), inputs, SETTINGS)

    sets = result.match_sets()
    sizes = np.array([len(sets[pid]) - 1 for pid in inputs.posting_ids])
    assert sizes.max() == 50
    assert (sizes[:201] == 50).all()  # every identical posting keeps a full list
    assert result.capped >= 201
    assert sets["p0205"] == {"p0204", "p0205"}  # untouched by the crowd
    # Best-scored first: identical titles (cosine 1) before the refill variant.
    listed = result.matches_of("p0000")
    assert (listed["similarity"].diff().dropna() <= 1e-6).all()
    assert listed["tfidf_cosine"].min() == pytest.approx(1.0, abs=1e-5)
    refill = result.matches_of("p0201")
    assert set(refill["posting_id"].head(2)) == {"p0202", "p0203"}


def test_uncapped_pairs_are_listed_by_both_sides() -> None:
    inputs = catalog(["kaos polos hitam", "kaos polos hitam", "sepatu anak", "sepatu anak"])
    result = match_catalog(get_pipeline("baseline"), inputs, SETTINGS)
    assert (result.pairs["listed"] == LISTED_BOTH).all()
    assert result.capped == 0


def test_memory_stays_flat_when_duplicate_density_grows() -> None:
    """The pairs held at once (one chunk's candidates plus the matches kept) stay under a
    bound set by the catalog's size, while the pairs that pass a rule grow quadratically."""
    from core.candidates import fit_tfidf

    settings = SETTINGS.replace(top_k=10, max_matches=10)
    for copies in (4, 20, 100):
        inputs = dense_catalog(products=2_000 // copies, copies=copies)
        result = match_catalog(get_pipeline("baseline"), inputs, settings)

        sources = 2  # text and hash (no vectors)
        bound = inputs.size * settings.top_k * sources + inputs.size * settings.max_matches
        assert result.stats.peak_pairs <= bound
        assert max(len(s) for s in result.match_sets().values()) <= settings.max_matches + 1
        matrix = fit_tfidf(inputs.titles).matrix
        passing = (((matrix @ matrix.T).toarray() >= 0.5).sum() - inputs.size) // 2
        if copies == 100:
            assert passing > 5 * bound  # the rule passes 0.5 million pairs, 9x what is held


@pytest.mark.parametrize("pipeline", ["baseline", "ensemble"])
def test_chunking_does_not_change_the_matches(pipeline: str, demo_catalog: Path, tmp_path) -> None:
    from core.pipelines import load_inputs

    with Store(tmp_path / "c.db") as store:
        import_catalog(store, demo_catalog, demo_catalog.parent / "images")
        inputs = load_inputs(store, None)
    pipe = get_pipeline(pipeline)
    whole = match_catalog(pipe, inputs, SETTINGS)
    chunked = match_catalog(pipe, inputs, SETTINGS, pairs_per_chunk=997)

    assert chunked.stats.chunks > whole.stats.chunks
    pd.testing.assert_frame_equal(whole.pairs, chunked.pairs)


# -- one scoring path -----------------------------------------------------------------------------
@pytest.mark.parametrize("pipeline", ["baseline", "ensemble"])
def test_a_query_scores_its_pairs_as_the_batch_run_does(
    pipeline: str, demo_catalog: Path, tmp_path: Path
) -> None:
    """The single-item query and the batch engine call the same `score` on the same columns:
    an upload's pairs get the very scores, rules and similarity the batch run gives them once
    the upload is the catalog's last posting."""
    pipe = get_pipeline(pipeline)
    with Store(tmp_path / "q.db") as store:
        import_catalog(store, demo_catalog, demo_catalog.parent / "images")
        rows = store.postings().iloc[::150]
        queried = [
            load_inputs_with_item(store, normalize_title(t), int(h, 16), None, None)
            for t, h in zip(rows["title"], rows["image_phash"], strict=True)
        ]
    matched = 0
    for inputs in queried:
        matched += _check_query_parity(pipe, inputs)
    assert matched >= 8


def _check_query_parity(pipe, inputs: MatchInputs) -> int:
    frame, others = _exact_frame(pipe, inputs, SETTINGS)
    single = pipe.score(frame, SETTINGS)

    item_position = inputs.size - 1
    prepared = pipe.prepare(MatchRequest(inputs, SETTINGS))
    batch_frame = pipe.pair_frame(prepared, others, np.full(len(others), item_position))
    batch = pipe.score(batch_frame, SETTINGS)

    for column in (*pipe.score_columns, "rule", "matched", "similarity"):
        np.testing.assert_array_equal(single[column].to_numpy(), batch[column].to_numpy())
    result = match_catalog(pipe, inputs, SETTINGS)
    matched_here = {inputs.posting_ids[i] for i in others[single["matched"].to_numpy()]}
    assert (
        result.match_sets()[inputs.posting_ids[item_position]] - {inputs.posting_ids[item_position]}
        == matched_here
    )
    return len(matched_here)


@pytest.mark.slow
def test_shopee_f1_of_the_engine(shopee_csv: Path, tmp_path: Path) -> None:
    """The 27k real catalog (titles + hashes): the original thresholds with candidates from
    top-k search and the 50-match cap score as the all-pairs rules did (baseline 0.7071,
    ensemble 0.5989 before the engine; BENCHMARKS.md), and clusters score higher."""
    from core.evaluation import evaluate_result
    from core.matching import run_pipeline

    with Store(tmp_path / "shopee.db") as store:
        import_catalog(store, shopee_csv)
        for pipeline, before in (("baseline", 0.7071), ("ensemble", 0.5989)):
            result = run_pipeline(store, pipeline, SETTINGS, save=False)
            plain = evaluate_result(store, result)["f1"]
            clustered = evaluate_result(store, result, clusters=True)["f1"]
            assert abs(plain - before) <= 0.003, (pipeline, plain)
            assert clustered > plain
            assert result.clusters().summary["size"].max() <= SETTINGS.max_cluster_size
