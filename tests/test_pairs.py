"""Training `best` from labelled pairs (a file or the reviewer's verdicts) on a catalog without
labels, and the pairs file's errors, each naming its row. Real Shopee titles and hashes."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core import matching, models
from core.catalog import import_catalog
from core.catalog.pairs import read_pairs, read_pairs_report, sort_out_pairs
from core.cli import main as cli
from core.errors import CatalogError
from core.evaluation import evaluate_result
from core.pipelines.best import catalog_training
from core.store import Store
from tests.conftest import SHARED, require

IDS = ["a", "b", "c"]
PRODUCTS_EN = SHARED / "data" / "products-en"
WDC_SHOES = PRODUCTS_EN / "wdc-shoes"


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pairs.csv"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("left_id,right_id,same\na,b,1\na,zz,0\n", "row 3: right_id 'zz' is not in the catalog"),
        ("left_id,right_id,same\na,b,yes\n", "row 2: same is 'yes'; give 1 (same) or 0"),
        ("left_id,right_id,same\na,b,1\nzz,zz,1\n", "row 3: left_id 'zz' is not in the catalog"),
        ("left_id,right_id,same\na,b,1\nc,c,2\n", "row 3: same is '2'; give 1 (same) or 0"),
        ("left_id,right,same\na,b,1\n", "lacks right_id"),
        ("left_id,right_id,same\n", "no pairs in the file"),
        ("", "the file is empty"),
    ],
)
def test_bad_pairs_files_name_the_row(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(CatalogError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_pairs(_write(tmp_path, text), IDS)


def test_a_missing_pairs_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="no such pairs file"):
        read_pairs(tmp_path / "nope.csv", IDS)


def test_strict_refuses_a_pair_given_twice_either_way_round(tmp_path: Path) -> None:
    path = _write(tmp_path, "left_id,right_id,same\na,b,1\nb,c,0\nb,a,1\n")
    with pytest.raises(CatalogError, match=r"rows 2 and 4 give the same pair \('a', 'b'\)"):
        read_pairs(path, IDS, strict=True)


def test_strict_refuses_a_posting_paired_with_itself(tmp_path: Path) -> None:
    path = _write(tmp_path, "left_id,right_id,same\na,b,1\nc,c,0\n")
    with pytest.raises(CatalogError, match="row 3: 'c' is paired with itself"):
        read_pairs(path, IDS, strict=True)


def test_a_posting_paired_with_itself_is_set_aside_whatever_its_label(tmp_path: Path) -> None:
    text = "left_id,right_id,same\nc,c,0\na,b,1\nc,c,1\nb,b,1\n"
    pairs, report = read_pairs_report(_write(tmp_path, text), IDS)
    assert pairs.values.tolist() == [["a", "b", 1, 3]]
    assert (report.repeats, report.conflicts, report.self_pairs) == (0, 0, 2)
    assert report.set_aside.values.tolist() == [
        ["c", "c", 0, 2, "a posting paired with itself"],
        ["c", "c", 1, 4, "a posting paired with itself"],
        ["b", "b", 1, 5, "a posting paired with itself"],
    ]
    assert report.summary("p.csv") == "p.csv: 2 postings paired with themselves set aside"


def test_the_summary_names_each_kind_set_aside(tmp_path: Path) -> None:
    text = "left_id,right_id,same\na,b,1\nb,a,0\nc,c,0\nb,c,1\nc,b,1\n"
    pairs, report = read_pairs_report(_write(tmp_path, text), IDS)
    assert pairs.values.tolist() == [["b", "c", 1, 5]]
    assert report.set_aside["reason"].tolist() == [
        "labelled both same and different",
        "labelled both same and different",
        "a posting paired with itself",
    ]
    assert report.summary("p.csv", Path("/d/p-conflicts.csv")) == (
        "p.csv: 1 repeated pair counted once; 1 pair labelled both same and different and "
        "1 posting paired with itself set aside (written to /d/p-conflicts.csv)"
    )


def test_a_pair_repeated_in_reversed_order_counts_once(tmp_path: Path) -> None:
    path = _write(tmp_path, "left_id,right_id,same\na,b,1\nb,c,0\nb,a,1\n")
    pairs, report = read_pairs_report(path, IDS)
    assert pairs.values.tolist() == [["a", "b", 1, 2], ["b", "c", 0, 3]]
    assert (report.repeats, report.conflicts) == (1, 0) and report.set_aside.empty
    assert report.summary("pairs.csv") == "pairs.csv: 1 repeated pair counted once"


def test_a_pair_labelled_both_ways_is_set_aside_with_all_its_rows(tmp_path: Path) -> None:
    text = "left_id,right_id,same\na,b,1\nb,c,0\nb,a,0\nc,b,0\na,b,1\n"
    pairs, report = read_pairs_report(_write(tmp_path, text), IDS)
    assert pairs.values.tolist() == [["b", "c", 0, 3]]
    assert (report.repeats, report.conflicts) == (1, 1)
    assert report.set_aside.values.tolist() == [
        ["a", "b", 1, 2, "labelled both same and different"],
        ["b", "a", 0, 4, "labelled both same and different"],
        ["a", "b", 1, 6, "labelled both same and different"],
    ]
    assert report.summary("p.csv", Path("/d/p-conflicts.csv")) == (
        "p.csv: 1 repeated pair counted once; 1 pair labelled both same and different set "
        "aside (written to /d/p-conflicts.csv)"
    )


def test_a_file_without_repeats_reports_nothing(tmp_path: Path) -> None:
    _, report = read_pairs_report(_write(tmp_path, "left_id,right_id,same\na,b,1\n"), IDS)
    assert (report.repeats, report.conflicts, report.self_pairs) == (0, 0, 0)
    assert report.set_aside.empty and report.summary("x.csv") == ""


def test_strict_without_pairs_is_refused(tmp_path: Path, capsys) -> None:
    assert cli(["train", "--strict", "--model", str(tmp_path / "m")]) == 2
    assert "--strict and --conflicts go with --pairs" in capsys.readouterr().err


def test_a_good_pairs_file_reads_with_its_rows(tmp_path: Path) -> None:
    pairs = read_pairs(_write(tmp_path, "left_id,right_id,same\n a ,b,1\nb,c,0\n"), IDS)
    assert pairs.values.tolist() == [["a", "b", 1, 2], ["b", "c", 0, 3]]


@pytest.fixture(scope="module")
def shopee_parts(shopee_csv: Path, tmp_path_factory) -> dict[str, Path]:
    """Two slices of the dev split with no group in common: pairs are made on the first (its
    labels dropped), the model is judged on the second."""
    frame = pd.read_csv(shopee_csv, dtype=str)
    groups = frame["label_group"].unique()
    held = set(np.random.default_rng(3).permutation(groups)[: len(groups) // 8])
    train = frame[~frame["label_group"].isin(held)].head(4_000)
    test = frame[frame["label_group"].isin(held)].head(3_000)
    folder = tmp_path_factory.mktemp("pairs")
    paths = {"labelled": folder / "train.csv", "test": folder / "test.csv"}
    train.to_csv(paths["labelled"], index=False)
    train.drop(columns=["label_group"]).to_csv(folder / "unlabelled.csv", index=False)
    test.to_csv(paths["test"], index=False)
    paths["unlabelled"] = folder / "unlabelled.csv"
    # Labelled pairs as a reviewer of the ensemble's matches would give them.
    with Store(folder / "labelled.db") as store:
        import_catalog(store, paths["labelled"], None)
        result = matching.run_pipeline(store, "ensemble", save=False)
    labels = dict(zip(train["posting_id"], train["label_group"], strict=True))
    same = np.array(
        [
            labels[a] == labels[b]
            for a, b in zip(result.pairs["left"], result.pairs["right"], strict=True)
        ]
    )
    chosen = pd.concat(
        [
            result.pairs[same].sample(200, random_state=0),
            result.pairs[~same].sample(200, random_state=0),
        ]
    )
    pd.DataFrame(
        {
            "left_id": chosen["left"],
            "right_id": chosen["right"],
            "same": [
                int(labels[a] == labels[b])
                for a, b in zip(chosen["left"], chosen["right"], strict=True)
            ],
        }
    ).to_csv(folder / "pairs.csv", index=False)
    paths["pairs"] = folder / "pairs.csv"
    return paths


def test_best_trained_from_pairs_only_matches_unseen_products(shopee_parts, tmp_path, capsys):
    model = tmp_path / "model"
    code = cli(
        [
            "train",
            "--catalog",
            str(shopee_parts["unlabelled"]),
            "--pairs",
            str(shopee_parts["pairs"]),
            "--model",
            str(model),
        ]
    )
    assert code == 0, capsys.readouterr().err
    assert re.search(r"trained from 3\d\d of 400 labelled pairs", capsys.readouterr().out)
    info = models.best_model_info(model)
    assert info["trained_from"] == "pairs" and info["same_pairs"] > 150
    with Store(tmp_path / "test.db") as store:
        import_catalog(store, shopee_parts["test"], None)
        best = evaluate_result(store, matching.run_pipeline(store, "best", model_dir=model))
        baseline = evaluate_result(store, matching.run_pipeline(store, "baseline"))
    # 400 pairs of other products make a usable matcher for unseen ones; it does not reach
    # the written-up rules there (BENCHMARKS.md: matching from pairs).
    assert best["f1"] > 0.65 and best["precision"] > 0.8, (best, baseline)
    assert baseline["f1"] > 0.75


def test_verdicts_in_the_database_count_and_win_over_the_file(shopee_parts, tmp_path):
    db = tmp_path / "unlabelled.db"
    with Store(db) as store:
        import_catalog(store, shopee_parts["unlabelled"], None)

    def train(name: str) -> dict:
        args = ["--db", str(db), "train", "--pairs", str(shopee_parts["pairs"])]
        assert cli([*args, "--model", str(tmp_path / name)]) == 0
        return models.best_model_info(tmp_path / name)

    before = train("before")
    pairs = pd.read_csv(shopee_parts["pairs"], dtype=str)
    first = pairs[pairs["same"] == "1"].iloc[0]
    with Store(db) as store:
        store.save_review(first["left_id"], first["right_id"], "different")
    after = train("after")
    assert after["pairs_given"] == before["pairs_given"] == len(pairs)
    assert after["same_pairs"] == before["same_pairs"] - 1
    assert after["different_pairs"] == before["different_pairs"] + 1


def test_too_few_pairs_among_the_candidates_is_explained(shopee_parts, tmp_path, capsys):
    pairs = pd.read_csv(shopee_parts["pairs"], dtype=str).head(6)
    small = tmp_path / "few.csv"
    pairs.to_csv(small, index=False)
    code = cli(
        [
            "train",
            "--catalog",
            str(shopee_parts["unlabelled"]),
            "--pairs",
            str(small),
            "--model",
            str(tmp_path / "m"),
        ]
    )
    assert code == 2
    assert "needs at least 5 'same' and 5 'different' pairs" in capsys.readouterr().err


def test_verdicts_export_as_a_pairs_file_that_reads_back(tmp_path: Path, capsys) -> None:
    db = tmp_path / "v.db"
    with Store(db) as store:
        store.upsert_postings(
            [
                {
                    "posting_id": p,
                    "title": p,
                    "title_norm": p,
                    "image_status": "none",
                    "source": "catalog",
                }
                for p in IDS
            ]
        )
        store.save_review("b", "a", "same")
        store.save_review("b", "c", "different")
    out = tmp_path / "verdicts.csv"
    assert cli(["--db", str(db), "verdicts", "--out", str(out)]) == 0
    assert "wrote 2 verdict(s)" in capsys.readouterr().out
    back = read_pairs(out, IDS)
    assert back[["left_id", "right_id", "same"]].values.tolist() == [["a", "b", 1], ["b", "c", 0]]


@pytest.fixture(scope="module")
def products_en() -> Path:
    require(PRODUCTS_EN.is_dir(), f"real data not present: {PRODUCTS_EN}")
    return PRODUCTS_EN


def _file_rows(path: Path) -> pd.DataFrame:
    """A pairs file as published, each row with its line number; no checks."""
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    return frame.assign(same=frame["same"].astype(int), row=range(2, len(frame) + 2))


def _by_pair(frame: pd.DataFrame) -> dict[frozenset, list[tuple[int, int]]]:
    """(row, same) of every row, by unordered pair: the test's own count of repeats."""
    found: dict[frozenset, list[tuple[int, int]]] = {}
    for left, right, same, row in frame[["left_id", "right_id", "same", "row"]].values:
        found.setdefault(frozenset((left, right)), []).append((int(row), int(same)))
    return found


def _set_aside_by_the_test(given: pd.DataFrame) -> dict[int, str]:
    """The test's own reading of what must be set aside: row -> reason."""
    aside = {}
    for key, rows in _by_pair(given).items():
        if len(key) == 1:
            aside.update({row: "a posting paired with itself" for row, _ in rows})
        elif len({same for _, same in rows}) > 1:
            aside.update({row: "labelled both same and different" for row, _ in rows})
    return aside


def _assert_one_row_a_pair_and_nothing_set_aside(pairs: pd.DataFrame, given: pd.DataFrame) -> None:
    aside = _set_aside_by_the_test(given)
    by_pair = _by_pair(given)
    aside_keys = {k for k, rows in by_pair.items() if any(row in aside for row, _ in rows)}
    keys = [frozenset(p) for p in zip(pairs["left_id"], pairs["right_id"], strict=True)]
    assert len(keys) == len(set(keys)), "a pair is given twice"
    assert not aside_keys & set(keys), "a pair set aside is in the training data"
    assert not (pairs["left_id"] == pairs["right_id"]).any(), "a self pair is in the training data"


def test_walmart_amazon_published_pairs_count_four_repeats_once(products_en: Path) -> None:
    path = products_en / "walmart-amazon" / "train_pairs.csv"
    ids = pd.read_csv(products_en / "walmart-amazon" / "train_catalog.csv", dtype=str)
    pairs, report = read_pairs_report(path, ids["posting_id"])
    given = _file_rows(path)
    assert len(given) == 8_193 and len(pairs) == 8_189
    assert (report.repeats, report.conflicts, report.self_pairs) == (4, 0, 0)
    assert report.set_aside.empty
    _assert_one_row_a_pair_and_nothing_set_aside(pairs, given)
    assert set(pairs["row"]) == {min(v)[0] for v in _by_pair(given).values()}
    with pytest.raises(CatalogError) as refused:
        read_pairs(path, ids["posting_id"], strict=True)
    named = re.findall(r"rows (\d+) and (\d+) give the same pair", str(refused.value))
    assert named == [("1125", "5072"), ("5062", "5825"), ("6789", "7196"), ("7010", "8008")]


def test_wdc_shoes_published_pairs_read_as_published(products_en: Path) -> None:
    """Two pairs repeated with one label, two labelled both ways, and row 4270 pairing
    r4644395ce5be with itself (two listings with the same text got one id)."""
    path = WDC_SHOES / "train_pairs.csv"
    ids = pd.read_csv(WDC_SHOES / "train_catalog.csv", dtype=str)["posting_id"]
    given = _file_rows(path)
    pairs, report = read_pairs_report(path, ids)
    assert len(given) == 5_686 and len(pairs) == 5_679
    assert (report.repeats, report.conflicts, report.self_pairs) == (2, 2, 1)
    aside = report.set_aside
    assert aside.columns.tolist() == ["left_id", "right_id", "same", "row", "reason"]
    assert aside["row"].tolist() == [1116, 3728, 2956, 4694, 4270]
    assert dict(zip(aside["row"], aside["reason"], strict=True)) == _set_aside_by_the_test(given)
    assert aside.iloc[-1].tolist() == [
        "r4644395ce5be",
        "r4644395ce5be",
        0,
        4270,
        "a posting paired with itself",
    ]
    _assert_one_row_a_pair_and_nothing_set_aside(pairs, given)
    assert report.summary("train_pairs.csv") == (
        "train_pairs.csv: 2 repeated pairs counted once; 2 pairs labelled both same and "
        "different and 1 posting paired with itself set aside"
    )


def test_wdc_shoes_published_pairs_strict_names_the_self_pair_first(products_en: Path) -> None:
    ids = pd.read_csv(WDC_SHOES / "train_catalog.csv", dtype=str)["posting_id"]
    with pytest.raises(CatalogError) as refused:
        read_pairs(WDC_SHOES / "train_pairs.csv", ids, strict=True)
    assert str(refused.value) == (
        f"{WDC_SHOES / 'train_pairs.csv'}: row 4270: 'r4644395ce5be' is paired with itself; "
        "rows 1116 and 3728 give the same pair ('r903b92035feb', 'rb503deb4bbb7'); "
        "rows 3128 and 4139 give the same pair ('r62e5895b98ac', 'rb503deb4bbb7'); "
        "rows 1483 and 4554 give the same pair ('r55cce57e06fd', 'rd32bea593f81'); "
        "rows 2956 and 4694 give the same pair ('r1cd6c7099b62', 'rd100b7595f80')"
    )


def test_sort_out_pairs_sets_a_self_pair_aside_without_a_catalog(products_en: Path) -> None:
    pairs, report = sort_out_pairs(_file_rows(WDC_SHOES / "train_pairs.csv"))
    assert len(pairs) == 5_679 and report.self_pairs == 1


@pytest.mark.slow
def test_train_pairs_trains_on_the_published_file_and_writes_what_it_set_aside(
    products_en: Path, tmp_path: Path, samesame_home: Path, monkeypatch, capsys
) -> None:
    given = WDC_SHOES / "train_pairs.csv"
    trained: list[pd.DataFrame] = []
    train = catalog_training.train_best_from_pairs

    def spy(store, settings, model_dir, pairs):
        trained.append(pairs)
        return train(store, settings, model_dir, pairs)

    monkeypatch.setattr(catalog_training, "train_best_from_pairs", spy)
    catalog = str(WDC_SHOES / "train_catalog.csv")
    args = ["train", "--catalog", catalog, "--pairs", str(given), "--model", str(tmp_path / "m")]
    assert cli(args) == 0, capsys.readouterr().err
    written = samesame_home / "train_pairs-conflicts.csv"
    said = capsys.readouterr().out.splitlines()
    assert said[0] == (
        "train_pairs.csv: 2 repeated pairs counted once; 2 pairs labelled both same and "
        f"different and 1 posting paired with itself set aside (written to {written})"
    )
    assert "of 5,679 labelled pairs" in said[1]
    assert pd.read_csv(written, dtype=str).values.tolist() == [
        ["r903b92035feb", "rb503deb4bbb7", "0", "1116", "labelled both same and different"],
        ["r903b92035feb", "rb503deb4bbb7", "1", "3728", "labelled both same and different"],
        ["rd100b7595f80", "r1cd6c7099b62", "0", "2956", "labelled both same and different"],
        ["r1cd6c7099b62", "rd100b7595f80", "1", "4694", "labelled both same and different"],
        ["r4644395ce5be", "r4644395ce5be", "0", "4270", "a posting paired with itself"],
    ]
    (pairs,) = trained
    assert len(pairs) == 5_686 - 2 - 5
    _assert_one_row_a_pair_and_nothing_set_aside(pairs, _file_rows(given))
