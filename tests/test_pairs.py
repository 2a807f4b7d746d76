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
from core.catalog.pairs import read_pairs, read_pairs_report, sort_out_repeats
from core.cli import main as cli
from core.errors import CatalogError
from core.evaluation import evaluate_result
from core.store import Store
from tests.conftest import SHARED, require

IDS = ["a", "b", "c"]
PRODUCTS_EN = SHARED / "data" / "products-en"
#: wdc-shoes/train_pairs.csv pairs r4644395ce5be with itself on this row (two offers with the
#: same text get the same id); a self pair is refused, so tests that read the file through
#: `read_pairs` leave that one row out.
WDC_SELF_PAIR_ROW = 4270


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pairs.csv"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("left_id,right_id,same\na,b,1\na,zz,0\n", "row 3: right_id 'zz' is not in the catalog"),
        ("left_id,right_id,same\na,b,yes\n", "row 2: same is 'yes'; give 1 (same) or 0"),
        ("left_id,right_id,same\na,b,1\nc,c,0\n", "row 3: 'c' is paired with itself"),
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


def test_a_pair_repeated_in_reversed_order_counts_once(tmp_path: Path) -> None:
    path = _write(tmp_path, "left_id,right_id,same\na,b,1\nb,c,0\nb,a,1\n")
    pairs, report = read_pairs_report(path, IDS)
    assert pairs.values.tolist() == [["a", "b", 1, 2], ["b", "c", 0, 3]]
    assert (report.repeats, report.conflicts) == (1, 0) and report.conflict_rows.empty
    assert report.summary("pairs.csv") == "pairs.csv: 1 repeated pair counted once"


def test_a_pair_labelled_both_ways_is_set_aside_with_all_its_rows(tmp_path: Path) -> None:
    text = "left_id,right_id,same\na,b,1\nb,c,0\nb,a,0\nc,b,0\na,b,1\n"
    pairs, report = read_pairs_report(_write(tmp_path, text), IDS)
    assert pairs.values.tolist() == [["b", "c", 0, 3]]
    assert (report.repeats, report.conflicts) == (1, 1)
    assert report.conflict_rows.values.tolist() == [
        ["a", "b", 1, 2],
        ["b", "a", 0, 4],
        ["a", "b", 1, 6],
    ]
    assert report.summary("p.csv", Path("/d/p-conflicts.csv")) == (
        "p.csv: 1 repeated pair counted once; 1 pair labelled both same and different set "
        "aside (written to /d/p-conflicts.csv)"
    )


def test_a_file_without_repeats_reports_nothing(tmp_path: Path) -> None:
    _, report = read_pairs_report(_write(tmp_path, "left_id,right_id,same\na,b,1\n"), IDS)
    assert (report.repeats, report.conflicts, report.summary("x.csv")) == (0, 0, "")


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


def _assert_one_row_a_pair_and_no_conflict(pairs: pd.DataFrame, given: pd.DataFrame) -> None:
    both = {k for k, v in _by_pair(given).items() if len({same for _, same in v}) > 1}
    keys = [frozenset(p) for p in zip(pairs["left_id"], pairs["right_id"], strict=True)]
    assert len(keys) == len(set(keys)), "a pair is given twice"
    assert not both & set(keys), "a pair labelled both ways is in the training data"


def wdc_without_self_pair(products_en: Path, folder: Path) -> Path:
    """WDC shoes' published train_pairs.csv without its one self pair (row 4270): rows after it
    move up by one."""
    frame = pd.read_csv(products_en / "wdc-shoes" / "train_pairs.csv", dtype=str)
    out = folder / "pairs.csv"
    frame.drop(index=WDC_SELF_PAIR_ROW - 2).to_csv(out, index=False)
    return out


def test_walmart_amazon_published_pairs_count_four_repeats_once(products_en: Path) -> None:
    path = products_en / "walmart-amazon" / "train_pairs.csv"
    ids = pd.read_csv(products_en / "walmart-amazon" / "train_catalog.csv", dtype=str)
    pairs, report = read_pairs_report(path, ids["posting_id"])
    given = _file_rows(path)
    assert len(given) == 8_193 and len(pairs) == 8_189
    assert (report.repeats, report.conflicts) == (4, 0) and report.conflict_rows.empty
    _assert_one_row_a_pair_and_no_conflict(pairs, given)
    assert set(pairs["row"]) == {min(v)[0] for v in _by_pair(given).values()}
    with pytest.raises(CatalogError) as refused:
        read_pairs(path, ids["posting_id"], strict=True)
    named = re.findall(r"rows (\d+) and (\d+) give the same pair", str(refused.value))
    assert named == [("1125", "5072"), ("5062", "5825"), ("6789", "7196"), ("7010", "8008")]


def test_wdc_shoes_published_pairs_set_aside_the_two_labelled_both_ways(
    products_en: Path,
) -> None:
    given = _file_rows(products_en / "wdc-shoes" / "train_pairs.csv")
    pairs, report = sort_out_repeats(given)
    assert len(given) == 5_686 and len(pairs) == 5_680
    assert (report.repeats, report.conflicts) == (2, 2)
    assert report.conflict_rows.columns.tolist() == ["left_id", "right_id", "same", "row"]
    assert report.conflict_rows["row"].tolist() == [1116, 3728, 2956, 4694]
    both = [v for v in _by_pair(given).values() if len({same for _, same in v}) > 1]
    assert sorted(report.conflict_rows["row"]) == sorted(row for v in both for row, _ in v)
    _assert_one_row_a_pair_and_no_conflict(pairs, given)


def test_wdc_shoes_published_pairs_name_their_self_pair(products_en: Path) -> None:
    with pytest.raises(CatalogError, match=r"row 4270: 'r4644395ce5be' is paired with itself"):
        read_pairs(products_en / "wdc-shoes" / "train_pairs.csv", None)


@pytest.mark.slow
def test_train_pairs_trains_on_one_row_a_pair_and_writes_the_conflicts(
    products_en: Path, tmp_path: Path, samesame_home: Path, monkeypatch, capsys
) -> None:
    given = wdc_without_self_pair(products_en, tmp_path)
    trained: list[pd.DataFrame] = []
    train = models.train_best_from_pairs

    def spy(store, settings, model_dir, pairs):
        trained.append(pairs)
        return train(store, settings, model_dir, pairs)

    monkeypatch.setattr(models, "train_best_from_pairs", spy)
    catalog = str(products_en / "wdc-shoes" / "train_catalog.csv")
    args = ["train", "--catalog", catalog, "--pairs", str(given), "--model", str(tmp_path / "m")]
    assert cli(args) == 0, capsys.readouterr().err
    written = samesame_home / "pairs-conflicts.csv"
    said = capsys.readouterr().out.splitlines()
    assert said[0] == (
        "pairs.csv: 2 repeated pairs counted once; 2 pairs labelled both same and different "
        f"set aside (written to {written})"
    )
    assert "of 5,679 labelled pairs" in said[1]
    conflicts = pd.read_csv(written, dtype=str)
    assert conflicts.values.tolist() == [
        ["r903b92035feb", "rb503deb4bbb7", "0", "1116"],
        ["r903b92035feb", "rb503deb4bbb7", "1", "3728"],
        ["rd100b7595f80", "r1cd6c7099b62", "0", "2956"],
        ["r1cd6c7099b62", "rd100b7595f80", "1", "4693"],
    ]
    (pairs,) = trained
    assert len(pairs) == 5_685 - 2 - 4
    _assert_one_row_a_pair_and_no_conflict(pairs, _file_rows(given))
