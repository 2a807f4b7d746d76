"""The Spark job (`core.spark`) against the single-machine pipelines, in local[2] mode.

Pairs get the same scores and decisions on Spark as on one machine (the pipeline's own `score`
runs in ``mapInPandas``). With ``exact`` candidates (every pair) Spark must give the very
matches of the single machine where no posting reaches the match cap; so must the scalable
``blocked`` candidates on titles and hashes (prefix-filtered word joins, SequenceMatcher blocks
and hash bands lose no pair); image vectors' LSH may miss pairs but never add one. One
SparkSession serves every test.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.catalog import prepare_postings, read_catalog_csv
from core.engine import match_catalog
from core.errors import CatalogError, SameSameError
from core.matches import read_submission
from core.pipelines import MatchInputs, MatchRequest, get_pipeline
from core.pipelines.best import BEST, catalog_training
from core.settings import MatchSettings
from tests.conftest import require

PROJECT = Path(__file__).resolve().parents[1]


def _spark_cli(
    *args: object, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess:
    """``python -m core spark-match ARGS`` as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "core", "spark-match", *map(str, args)],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


@pytest.fixture(scope="session")
def spark():
    require(importlib.util.find_spec("pyspark") is not None, "pyspark is not installed")
    from core.spark import SparkOptions, spark_session

    try:
        session = spark_session(
            SparkOptions(
                master="local[2]",
                shuffle_partitions=4,
                conf=(("spark.sql.adaptive.enabled", "false"),),  # small data: AQE only costs
            ),
            app_name="samesame-tests",
        )
    except SameSameError as exc:  # no Java on this machine
        require(False, str(exc))
    yield session
    session.stop()


def pair_set(submission: pd.DataFrame) -> set[tuple[str, str]]:
    return {(a, b) for a, found in read_submission(submission).items() for b in found if a < b}


def read_pairs(path: Path) -> tuple[list[str], set[tuple[str, str]]]:
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    assert frame.columns.tolist() == ["posting_id", "matches"]
    for pid, found in zip(frame["posting_id"], frame["matches"], strict=True):
        assert found.split(" ")[0] == pid
    return frame["posting_id"].tolist(), pair_set(frame)


def single_machine(
    csv_path: Path, pipeline: str, settings: MatchSettings | None = None
) -> tuple[list[str], set[tuple[str, str]]]:
    """What ``python -m core match --catalog CSV`` (no images) finds: same import, pipeline."""
    postings, _ = prepare_postings(read_catalog_csv(csv_path), None)
    inputs = MatchInputs.from_frame(pd.DataFrame(postings))
    result = match_catalog(get_pipeline(pipeline), inputs, settings or MatchSettings())
    return inputs.posting_ids, pair_set(result.submission())


def run_spark(spark, csv_path, out: Path, pipeline: str, candidates: str, **kwargs):
    from core.spark import SparkOptions, spark_match

    options = SparkOptions(candidates=candidates, hash_only=kwargs.pop("hash_only", False))
    return spark_match(csv_path, out, pipeline, options=options, spark=spark, **kwargs)


@pytest.fixture(scope="module")
def shopee_sample(shopee_csv: Path, tmp_path_factory) -> Path:
    """About 1,500 real postings: whole label groups in a seeded random order."""
    frame = pd.read_csv(shopee_csv, dtype=str, keep_default_na=False)
    groups = frame["label_group"].drop_duplicates().to_numpy()
    np.random.default_rng(0).shuffle(groups)
    sizes = frame.groupby("label_group").size()[groups].to_numpy()
    keep = set(groups[: int(np.searchsorted(np.cumsum(sizes), 1500, side="right"))])
    path = tmp_path_factory.mktemp("shopee") / "sample.csv"
    frame[frame["label_group"].isin(keep)].to_csv(path, index=False)
    return path


def test_import_core_leaves_pyspark_out() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import core, core.cli, core.spark, sys; print('pyspark' in sys.modules)",
        ],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_missing_pyspark_is_a_clear_error(monkeypatch) -> None:
    from core.spark import require_spark

    monkeypatch.setitem(sys.modules, "pyspark", None)  # import pyspark → ImportError
    with pytest.raises(SameSameError, match="needs pyspark: pip install -r requirements-spark"):
        require_spark()


def test_missing_java_exits_2_with_a_message(tmp_path: Path, demo_catalog: Path) -> None:
    pytest.importorskip("pyspark")
    env = {"PATH": str(tmp_path), "HOME": str(tmp_path), "SAMESAME_HOME": str(tmp_path)}
    done = _spark_cli("--catalog", demo_catalog, "--out", tmp_path / "m.csv", env=env)
    assert done.returncode == 2
    assert done.stderr.strip().startswith("error: spark-match needs Java")
    assert len(done.stderr.strip().splitlines()) == 1


def test_bad_catalog_exits_2_with_one_message(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("id,picture\n1,a.jpg\n")
    done = _spark_cli("--catalog", bad, "--out", tmp_path / "m.csv")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"error: {bad}: missing required column(s) posting_id, image, title; found id, picture. "
        "Expected the layout posting_id,image,image_phash,title,label_group (image_phash, "
        "label_group optional)."
    ]
    assert not (tmp_path / "m.csv").exists()


@pytest.mark.slow
def test_hash_blocks_find_every_pair_within_the_distance(spark) -> None:
    """The blocked hash search (one machine's index, broadcast hashes) is exact: the same
    pairs as the brute-force Hamming search while no posting has more than k close ones."""
    from core.images import hamming
    from core.spark.candidates import hash_pairs

    rng = np.random.default_rng(1)
    base = rng.integers(0, 2**63, size=60, dtype=np.uint64) * np.uint64(2)
    flips = [
        np.bitwise_or.reduce(np.uint64(1) << rng.choice(64, k, replace=False).astype(np.uint64))
        for k in rng.integers(0, 12, size=240)
    ]
    hashes = np.concatenate([base, np.repeat(base, 4) ^ np.array(flips, dtype=np.uint64)])
    frame = spark.createDataFrame(
        pd.DataFrame({"idx": np.arange(len(hashes)), "phash": hashes.view(np.int64)})
    )
    for distance in (8, 4):
        close = hamming(hashes[:, None], hashes[None, :]) <= distance
        left, right = np.nonzero(np.triu(close, k=1))
        want = set(zip(left.tolist(), right.tolist(), strict=True))
        for exact in (False, True):
            found = hash_pairs(frame, distance, 50, exact, 4).collect()
            assert {(r["l"], r["r"]) for r in found} == want and len(want) >= 50
        # k = 1: each posting's nearest only, never a pair past the distance.
        nearest = {(r["l"], r["r"]) for r in hash_pairs(frame, distance, 1, False, 4).collect()}
        assert nearest < want and len(nearest) >= len(hashes) // 5


def _sample_titles(shopee_sample: Path) -> list[str]:
    postings, _ = prepare_postings(read_catalog_csv(shopee_sample), None)
    return [p["title_norm"] for p in postings]


@pytest.mark.slow
def test_shared_rarer_words_find_every_pair_over_the_cosine(spark, shopee_sample: Path) -> None:
    """Prefix filtering is exact: every pair at or over the cosine of the full TF-IDF product,
    from a join far smaller than every pair."""
    from core.candidates import fit_tfidf
    from core.spark.candidates import shared_token_pairs, token_weights, tokeniser

    titles = _sample_titles(shopee_sample)
    tokenise = tokeniser()
    frame = spark.createDataFrame(
        pd.DataFrame({"idx": np.arange(len(titles)), "tokens": [tokenise(t) for t in titles]}),
        "idx long, tokens array<string>",
    )
    weights = token_weights(frame, len(titles)).persist()
    matrix = fit_tfidf(titles).matrix
    cosine = (matrix @ matrix.T).toarray()
    for threshold in (0.5, 0.2):
        left, right = np.nonzero(np.triu(cosine >= threshold - 1e-6, k=1))
        want = set(zip(left.tolist(), right.tolist(), strict=True))
        got = {(r["l"], r["r"]) for r in shared_token_pairs(weights, threshold).collect()}
        assert len(want) > 1000 and want <= got, f"missed {len(want - got)} at {threshold}"
        assert len(got) < 0.05 * len(titles) ** 2 / 2  # blocked, not every pair
    weights.unpersist()


@pytest.mark.slow
def test_ratio_blocks_find_what_one_machine_finds(spark, shopee_sample: Path) -> None:
    """The Spark blocks of the SequenceMatcher comparison: one machine's pairs exactly."""
    from core.candidates.ratio import RatioIndex
    from core.spark.neighbours import ratio_pairs

    titles = _sample_titles(shopee_sample)
    # Non-contiguous ids, as monotonically_increasing_id gives across partitions.
    ids = np.arange(len(titles)) * 3 + 7
    frame = spark.createDataFrame(pd.DataFrame({"idx": ids, "title": titles}))
    index = RatioIndex("text", titles, len(titles), 0.55)
    rows, slots = np.nonzero(index.index >= 0)
    others = index.index[rows, slots]
    want = {(int(ids[a]), int(ids[b])) for a, b in zip(rows, others, strict=True) if a < b}
    got = {(r["l"], r["r"]) for r in ratio_pairs(frame, 0.55, 8).collect()}
    assert len(want) > 1000 and got == want


@pytest.mark.slow
def test_demo_catalog_exact_equals_single_machine(spark, demo_catalog: Path, tmp_path) -> None:
    """Titles + hashes of the demo catalog (no --images), every pair (the baseline's exact run
    is on the Shopee sample)."""
    for pipeline in ("ensemble",):
        out = tmp_path / f"{pipeline}.csv"
        report = run_spark(spark, demo_catalog, out, pipeline, "exact")
        ids, pairs = read_pairs(out)
        want_ids, want = single_machine(demo_catalog, pipeline)
        assert ids == want_ids
        assert pairs == want and len(want) > 500
        assert report.pairs == len(want) and report.vectors == 0


@pytest.fixture(scope="module")
def demo_subset(demo_catalog: Path, tmp_path_factory) -> Path:
    """The first 12 demo products (48 postings) with their image folder."""
    frame = pd.read_csv(demo_catalog, dtype=str, keep_default_na=False)
    groups = frame["label_group"].drop_duplicates().head(12)
    folder = tmp_path_factory.mktemp("demo_subset")
    subset = frame[frame["label_group"].isin(groups)]
    subset.to_csv(folder / "catalog.csv", index=False)
    (folder / "images").mkdir()
    for name in subset["image"]:
        if (demo_catalog.parent / "images" / name).is_file():
            shutil.copy(demo_catalog.parent / "images" / name, folder / "images" / name)
    return folder / "catalog.csv"


@pytest.mark.slow
@pytest.mark.tf
def test_demo_images_exact_equals_single_machine(
    spark, demo_subset: Path, weights_dir: Path, tmp_path, store
) -> None:
    """MobileNet 0.25 vectors embedded by the executors (real weights), image rule with top-k."""
    from core import matching, models
    from core.catalog import import_catalog

    settings = MatchSettings(image_alpha=0.25, weights_dir=str(weights_dir))
    images = demo_subset.parent / "images"
    import_catalog(store, demo_subset, images)
    models.embed_images(store, settings)
    want = pair_set(matching.run_pipeline(store, "baseline", settings, save=False).submission())

    out = tmp_path / "exact.csv"
    report = run_spark(
        spark, demo_subset, out, "baseline", "exact", images=images, settings=settings
    )
    assert report.vectors >= 40
    assert read_pairs(out)[1] == want

    out = tmp_path / "blocked.csv"
    run_spark(spark, demo_subset, out, "baseline", "blocked", images=images, settings=settings)
    got = read_pairs(out)[1]
    assert got <= want and len(got) >= 0.95 * len(want)


@pytest.mark.slow
def test_shopee_sample_exact_and_blocked(spark, shopee_sample: Path, tmp_path) -> None:
    """Real titles + hashes: exact and blocked candidates both give the single machine's
    matches — with a few empty titles too, which count in the IDF on both."""
    frame = pd.read_csv(shopee_sample, dtype=str, keep_default_na=False)
    frame.loc[frame.index[::50], "title"] = ""
    catalog = tmp_path / "with_empty_titles.csv"
    frame.to_csv(catalog, index=False)
    ids, want = single_machine(catalog, "baseline")
    out = tmp_path / "exact.csv"
    run_spark(spark, catalog, out, "baseline", "exact")
    got_ids, got = read_pairs(out)
    assert got_ids == ids and got == want

    for pipeline in ("baseline", "ensemble"):
        _, want = single_machine(catalog, pipeline) if pipeline != "baseline" else (ids, want)
        out = tmp_path / f"{pipeline}_blocked.csv"
        run_spark(spark, catalog, out, pipeline, "blocked")
        got = read_pairs(out)[1]
        assert len(want) > 1000
        assert got == want, f"{pipeline}: missed {len(want - got)}, added {len(got - want)}"


@pytest.mark.slow
def test_parquet_in_and_out(spark, shopee_sample: Path, tmp_path) -> None:
    """A Parquet catalog (checked by Spark) gives the same matches, written as Parquet."""
    frame = pd.read_csv(shopee_sample, dtype=str, keep_default_na=False).head(200)
    frame.to_parquet(tmp_path / "catalog.parquet", index=False)
    frame.to_csv(tmp_path / "catalog.csv", index=False)
    run_spark(spark, tmp_path / "catalog.parquet", tmp_path / "out.parquet", "baseline", "blocked")
    got = pd.read_parquet(tmp_path / "out.parquet")
    _, want = single_machine(tmp_path / "catalog.csv", "baseline")
    assert sorted(got["posting_id"]) == sorted(frame["posting_id"])
    assert pair_set(got) <= want and len(pair_set(got)) >= 0.95 * len(want)

    frame.drop(columns="title").to_parquet(tmp_path / "no_title.parquet", index=False)
    with pytest.raises(CatalogError, match=r"missing required column\(s\) title"):
        run_spark(spark, tmp_path / "no_title.parquet", tmp_path / "x.csv", "baseline", "blocked")
    frame.iloc[[0, 1, 0]].to_parquet(tmp_path / "dupes.parquet", index=False)
    with pytest.raises(CatalogError, match="duplicate posting_id"):
        run_spark(spark, tmp_path / "dupes.parquet", tmp_path / "x.csv", "baseline", "blocked")


@pytest.mark.slow
@pytest.mark.parametrize("pipeline", ["baseline", "ensemble"])
def test_spark_scores_and_decides_every_pair_as_one_machine_does(
    spark, shopee_sample: Path, pipeline: str
) -> None:
    """The same candidate pairs get the same per-modality scores, rules and similarity from
    the Spark job (mapInPandas over pair batches) as from the batch engine's scoring."""
    from core.spark import SparkOptions, match_pairs
    from core.spark.io import local_catalog, prepare_frame, read_catalog

    pipe = get_pipeline(pipeline)
    frame = read_catalog(spark, str(shopee_sample), local_catalog(str(shopee_sample)))
    postings = prepare_frame(frame, None)
    settings = MatchSettings()
    found = match_pairs(postings, None, pipe, settings, SparkOptions(candidates="exact"))
    on_spark = found.toPandas().sort_values(["l", "r"]).reset_index(drop=True)
    assert len(on_spark) > 500

    rows, _ = prepare_postings(read_catalog_csv(shopee_sample), None)
    inputs = MatchInputs.from_frame(pd.DataFrame(rows))
    prepared = pipe.prepare(MatchRequest(inputs, settings))
    # Spark numbers postings by their CSV row; the single machine by catalog position.
    ids = postings.select("idx", "posting_id").toPandas().set_index("idx")["posting_id"]
    position = pd.Series(np.arange(inputs.size), index=inputs.posting_ids)
    left = position[ids[on_spark["l"]].to_numpy()].to_numpy()
    right = position[ids[on_spark["r"]].to_numpy()].to_numpy()
    assert (left < right).all()
    here = pipe.score(pipe.pair_frame(prepared, left, right), settings)

    assert here["matched"].all()
    assert (here["rule"].to_numpy() == on_spark["rule"].to_numpy()).all()
    for column in pipe.score_columns:
        # TF-IDF weights are computed by Spark's own group-by (float64): 1e-6 apart at most.
        tolerance = 1e-6 if column == "tfidf_cosine" else 0.0
        np.testing.assert_allclose(
            on_spark[column].to_numpy(np.float32),
            here[column].to_numpy(np.float32),
            atol=tolerance,
            rtol=0,
        )
    np.testing.assert_allclose(
        on_spark["similarity"].to_numpy(), here["similarity"].to_numpy(), atol=1e-6, rtol=0
    )


def test_verdicts_overrule_the_spark_job_as_they_do_one_machine(
    spark, shopee_sample: Path, tmp_path
) -> None:
    """A matched pair said different and an unmatched same-label pair said same: the exact
    Spark run with --verdicts equals the single machine's matches under the same verdicts; a
    verdict naming a posting the catalog lacks is refused with its row."""
    from core.verdicts import apply_verdicts

    postings, _ = prepare_postings(read_catalog_csv(shopee_sample), None)
    inputs = MatchInputs.from_frame(pd.DataFrame(postings))
    result = match_catalog(get_pipeline("baseline"), inputs, MatchSettings())
    frame = pd.read_csv(shopee_sample, dtype=str, keep_default_na=False)
    label = dict(zip(frame["posting_id"], frame["label_group"], strict=True))
    matched = result.pairs.iloc[0]
    sets = result.match_sets()
    missed = next(
        (a, b)
        for a, b in zip(frame["posting_id"], frame["posting_id"].iloc[1:], strict=False)
        if label[a] == label[b] and b not in sets[a]
    )
    verdicts = tmp_path / "verdicts.csv"
    pd.DataFrame(
        {
            "left_id": [matched["left"], missed[0]],
            "right_id": [matched["right"], missed[1]],
            "same": [0, 1],
        }
    ).to_csv(verdicts, index=False)
    reviews = pd.DataFrame(
        {
            "left_id": sorted((matched["left"], matched["right"]))[:1] + [min(missed)],
            "right_id": sorted((matched["left"], matched["right"]))[1:] + [max(missed)],
            "verdict": ["different", "same"],
        }
    )
    result.pairs = apply_verdicts(result.pairs, result.posting_ids, reviews)
    result.positions = None
    want = pair_set(result.submission())

    out = tmp_path / "verdicts_out.csv"
    run_spark(spark, shopee_sample, out, "baseline", "exact", verdicts=verdicts)
    got = read_pairs(out)[1]
    assert got == want
    assert tuple(sorted(missed)) in got
    assert tuple(sorted((matched["left"], matched["right"]))) not in got

    bad = tmp_path / "bad.csv"
    bad.write_text(f"left_id,right_id,same\n{missed[0]},nobody,1\n", encoding="utf-8")
    with pytest.raises(CatalogError, match=r"row 2 \('nobody'\)"):
        run_spark(spark, shopee_sample, tmp_path / "x.csv", "baseline", "exact", verdicts=bad)


def _said(pairs: list[tuple[str, str]], verdicts: list[str]) -> pd.DataFrame:
    """`Store.reviews` rows (ids sorted) for ``pairs``."""
    return pd.DataFrame(
        {
            "left_id": [min(pair) for pair in pairs],
            "right_id": [max(pair) for pair in pairs],
            "verdict": verdicts,
        }
    )


@pytest.mark.slow
@pytest.mark.parametrize("max_matches", [2, 3])
@pytest.mark.parametrize("pipeline", ["baseline", "ensemble", "best"])
def test_spark_caps_and_applies_verdicts_as_one_machine(
    spark, shopee_sample: Path, tmp_path, monkeypatch, pipeline: str, max_matches: int, request
) -> None:
    """Where the cap binds, exact Spark candidates keep one machine's pairs (the same cap
    function, ties to 1e-6 broken by position; each row lists what its posting lists) with
    the same scores, and a reviewer's verdicts act after the cap on both: a pair of the most
    crowded posting said different is dropped, an unmatched same-label pair said same is
    added and listed by both. ``best`` (a trained model) too."""
    import core.spark.job as job
    from core.pipelines.best import BestMatcher
    from core.spark.io import local_catalog
    from core.verdicts import with_verdicts

    model_dir = request.getfixturevalue("best_model") if pipeline == "best" else None
    model = BestMatcher.load(model_dir) if model_dir else None
    postings, _ = prepare_postings(read_catalog_csv(shopee_sample), None)
    inputs = MatchInputs.from_frame(pd.DataFrame(postings))
    settings = MatchSettings(max_matches=max_matches)
    result = match_catalog(get_pipeline(pipeline), inputs, settings, model=model)
    assert result.capped > 50
    frame = pd.read_csv(shopee_sample, dtype=str, keep_default_na=False)
    label = dict(zip(frame["posting_id"], frame["label_group"], strict=True))
    sets = result.match_sets()
    crowded = max(sets, key=lambda p: (len(sets[p]), p))
    different = (crowded, min(sets[crowded] - {crowded}))
    same = next(
        (a, b)
        for a, b in zip(frame["posting_id"], frame["posting_id"].iloc[1:], strict=False)
        if label[a] == label[b] and b not in sets[a] and a not in sets[b]
    )
    verdicts = tmp_path / "verdicts.csv"
    pd.DataFrame(
        {"left_id": [different[0], same[0]], "right_id": [different[1], same[1]], "same": [0, 1]}
    ).to_csv(verdicts, index=False)
    result = with_verdicts(result, _said([different, same], ["different", "same"]))
    want = result.pairs
    want_pairs = {
        tuple(sorted((a, b))): (similarity, listed)
        for a, b, similarity, listed in want[["left", "right", "similarity", "listed"]].itertuples(
            index=False
        )
    }

    written: list[pd.DataFrame] = []
    final_pairs = job.final_pairs

    def keep_written(*args, **kwargs):
        kept, over = final_pairs(*args, **kwargs)
        written.append(kept.toPandas())
        return kept, over

    monkeypatch.setattr(job, "final_pairs", keep_written)
    out = tmp_path / "capped.csv"
    report = run_spark(
        spark,
        shopee_sample,
        out,
        pipeline,
        "exact",
        settings=settings,
        verdicts=verdicts,
        model_dir=model_dir,
    )
    rows = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert rows["posting_id"].tolist() == inputs.posting_ids
    got, expected = read_submission(rows), read_submission(result.submission())
    differ = sorted(p for p in expected if got[p] != expected[p])
    assert not differ, (
        f"{len(differ)} rows differ, e.g. {differ[0]}: {got[differ[0]]} vs {expected[differ[0]]}"
    )
    assert same[1] in got[same[0]] and same[0] in got[same[1]]
    assert different[1] not in got[different[0]] and different[0] not in got[different[1]]
    assert report.pairs == len(want) and report.capped > 0

    name = local_catalog(str(shopee_sample)).set_index("idx")["posting_id"]
    (kept,) = written
    on_spark = {
        tuple(sorted((name[a], name[b]))): (similarity, listed)
        for a, b, similarity, listed in kept[["l", "r", "similarity", "listed"]].itertuples(
            index=False
        )
    }
    assert on_spark.keys() == want_pairs.keys()
    pairs = sorted(on_spark)
    assert [on_spark[p][1] for p in pairs] == [want_pairs[p][1] for p in pairs]
    np.testing.assert_allclose(
        [on_spark[p][0] for p in pairs], [want_pairs[p][0] for p in pairs], atol=1e-6, rtol=0
    )


@pytest.fixture(scope="module")
def best_model(shopee_csv: Path, shopee_sample: Path, tmp_path_factory) -> Path:
    """A best model trained on ~1,500 real postings of other label groups than the sample's."""
    from core.pipelines.best import BestConfig, BestMatcher
    from core.text import normalize_title

    frame = pd.read_csv(shopee_csv, dtype={"label_group": str, "image_phash": str})
    seen = set(pd.read_csv(shopee_sample, dtype=str)["label_group"])
    groups = frame.loc[~frame["label_group"].isin(seen), "label_group"].drop_duplicates()
    train = frame[frame["label_group"].isin(set(groups.sample(n=500, random_state=3)))]
    train = train.reset_index(drop=True)
    train["title_norm"] = [normalize_title(t) for t in train["title"]]
    matcher = BestMatcher.fit(
        MatchInputs.from_frame(train),
        train["label_group"].tolist(),
        config=BestConfig(n_estimators=60, num_leaves=31),
    )
    folder = tmp_path_factory.mktemp("best_model")
    matcher.save(folder)
    return folder


@pytest.mark.slow
def test_best_on_spark_decides_one_machines_matches(
    spark, shopee_sample: Path, best_model: Path, tmp_path, monkeypatch
) -> None:
    """The trained best model on Spark (searches in blocks, pair features and both stages'
    scores in tasks over chunks of pairs) writes exactly the single machine's matches, with
    a few empty titles and missing hashes too."""
    import core.spark.best as spark_best
    from core.pipelines.best import BestMatcher

    frame = pd.read_csv(shopee_sample, dtype=str, keep_default_na=False)
    frame.loc[frame.index[::40], "title"] = ""
    frame.loc[frame.index[7::60], "image_phash"] = ""
    catalog = tmp_path / "catalog.csv"
    frame.to_csv(catalog, index=False)
    postings, _ = prepare_postings(read_catalog_csv(catalog), None)
    inputs = MatchInputs.from_frame(pd.DataFrame(postings))
    result = match_catalog(BEST, inputs, MatchSettings(), model=BestMatcher.load(best_model))
    want = pair_set(result.submission())
    assert len(want) > 1000 and result.capped == 0

    # Several search blocks and many chunks of pairs, so the pieces must be put back in order.
    monkeypatch.setattr(spark_best, "SEARCH_BLOCK", 500)
    monkeypatch.setattr(spark_best, "SPARK_MIN_CHUNK", 3000)
    out = tmp_path / "best.csv"
    report = run_spark(spark, catalog, out, "best", "blocked", model_dir=best_model)
    got_ids, got = read_pairs(out)
    assert got_ids == inputs.posting_ids
    assert got == want, f"missed {len(want - got)}, added {len(got - want)}"
    assert report.pipeline == "best" and report.pairs == len(result.pairs)


def test_best_on_spark_without_a_model_says_what_to_give(tmp_path: Path, demo_catalog) -> None:
    done = _spark_cli(
        "--catalog", demo_catalog, "--pipeline", "best", "--out", tmp_path / "out.csv"
    )
    assert done.returncode == 2, done.stderr
    assert "needs --model" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.slow
@pytest.mark.tf
def test_best_trained_with_image_vectors_embeds_on_spark_as_on_one_machine(
    spark, demo_catalog: Path, weights_dir: Path, tmp_path, store
) -> None:
    """A best model trained with MobileNet 0.25 vectors (real weights) gets them on Spark too.
    Given one machine's vectors, Spark decides exactly one machine's matches; end to end, the
    executors embed the photos to the same vectors (to float rounding: batches differ) and
    the matches agree but for pairs that rounding tips. Without --images the job says what the
    model needs instead of matching without them; settings naming another image model still
    embed by the model's own."""
    from core import matching, models
    from core.catalog import import_catalog
    from core.spark.best import best_pairs, load_model
    from core.spark.io import prepare_frame, read_catalog

    settings = MatchSettings(image_alpha=0.25, weights_dir=str(weights_dir))
    images = demo_catalog.parent / "images"
    import_catalog(store, demo_catalog, images)
    models.embed_images(store, settings)
    folder = tmp_path / "best"
    info = catalog_training.train_best_model(store, settings, folder)
    assert info["image_model"] == models.image_model_name(settings)
    result = matching.run_pipeline(store, "best", settings, model_dir=folder, save=False)
    assert result.pairs["image_cosine"].notna().mean() > 0.9
    want = pair_set(result.submission())

    postings = prepare_frame(read_catalog(spark, str(demo_catalog)), images.resolve())
    ids = postings.select("idx", "posting_id").toPandas()
    embedded, matrix = store.load_embeddings(models.image_model_name(settings), models.IMAGENET)
    row = dict(zip(embedded, range(len(embedded)), strict=True))
    known = ids[ids["posting_id"].isin(row)]
    vectors = spark.createDataFrame(
        pd.DataFrame(
            {
                "idx": known["idx"].to_numpy(np.int64),
                "vec": [matrix[row[p]].tolist() for p in known["posting_id"]],
            }
        ),
        "idx long, vec array<float>",
    )
    found = best_pairs(postings, load_model(folder), 4, vectors).toPandas()
    name = dict(zip(ids["idx"], ids["posting_id"], strict=True))
    same_vectors = {
        tuple(sorted((name[a], name[b]))) for a, b in zip(found["l"], found["r"], strict=True)
    }
    assert same_vectors == want

    out = tmp_path / "best.csv"
    report = run_spark(
        spark,
        demo_catalog,
        out,
        "best",
        "blocked",
        images=images,
        settings=settings,
        model_dir=folder,
    )
    assert report.vectors == len(embedded) > 0.9 * store.info()["postings"]
    got = read_pairs(out)[1]
    assert len(got ^ want) <= 0.02 * len(want), f"missed {len(want - got)}, added {len(got - want)}"

    with pytest.raises(SameSameError, match=r"trained with mobilenet.*give --images DIR"):
        run_spark(spark, demo_catalog, tmp_path / "x.csv", "best", "blocked", model_dir=folder)
    # Settings that name another backbone width: the executors still embed as the model
    # learnt (MobileNet 0.25), not as the settings say.
    from core.spark.best import image_spec

    other = MatchSettings(image_alpha=1.0, weights_dir=str(weights_dir))
    spec = image_spec(load_model(folder), other, True)
    assert spec[:4] == ("pretrained", "mobilenet", 0.25, 224)
