"""``query`` prints each listed posting's answer in words; ``calibrate`` fits the rule
pipelines' probabilities on the catalog's own labels (real Shopee titles and hashes)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from core import matching
from core.catalog import import_catalog
from core.cli import main
from core.rule_calibration import calibration_for, default_calibrations
from core.store import Store
from core.verdict_words import VERDICT_WORDS

ROWS = 1_500


@pytest.fixture(scope="module")
def shopee_db(shopee_csv: Path, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("cli_answers")
    pd.read_csv(shopee_csv, dtype=str).head(ROWS).to_csv(folder / "catalog.csv", index=False)
    db = folder / "slice.db"
    with Store(db) as store:
        import_catalog(store, folder / "catalog.csv", None)
        matching.run_pipeline(store, "baseline")
    return db


def test_query_lists_each_posting_with_its_answer_in_words(shopee_db: Path, capsys) -> None:
    with Store(shopee_db) as store:
        row = store.postings().iloc[10]
    args = ["--db", str(shopee_db), "query", "--title", row["title"], "--pipeline", "baseline"]
    assert main([*args, "--limit", "5"]) == 0
    lines = capsys.readouterr().out.splitlines()

    assert re.fullmatch(r"baseline: \d+ of 5 listed postings are matches", lines[0])
    # Rank, the word, the id and title; under it how likely and why, in words.
    first, why = lines[1], lines[2]
    assert first.startswith("  1. Same ") and row["posting_id"] in first
    # No photo given: the title is the only evidence.
    assert re.match(r" {5}\d+% likely the same product · titles nearly the same · a match", why)
    assert why.endswith("· a match")
    words = [re.match(r" *\d+\. (.+?) {2,}", line).group(1) for line in lines[1::2]]
    assert len(words) == 5 and set(words) <= set(VERDICT_WORDS)
    assert not any(re.search(r"\d\.\d", line) for line in lines[2::2])  # no raw scores

    assert main([*args, "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["results"][0]["verdict"] == "Same"
    assert answer["results"][0]["posting_id"] == row["posting_id"]


def test_query_refuses_what_it_cannot_answer(shopee_db: Path, capsys) -> None:
    assert main(["--db", str(shopee_db), "query", "--title", "x", "--pipeline", "nope"]) == 2
    assert "unknown pipeline 'nope'" in capsys.readouterr().err
    assert main(["--db", str(shopee_db), "query"]) == 2
    assert "give an image file or a title" in capsys.readouterr().err


def test_calibrate_fits_the_catalogs_own_curve(shopee_db: Path, capsys, tmp_path) -> None:
    copy = tmp_path / "copy.db"
    with Store(shopee_db) as source:
        source.conn.execute("VACUUM INTO ?", (str(copy),))
    assert main(["--db", str(copy), "calibrate", "--pipeline", "baseline"]) == 0
    said = capsys.readouterr().out
    assert re.match(r"baseline: isotonic curve fitted on [\d,]+ candidate pairs", said)
    with Store(copy) as store:
        assert "this catalog's labels" in calibration_for(store, "baseline").fitted_on
        assert calibration_for(store, "ensemble") == default_calibrations()["ensemble"]
