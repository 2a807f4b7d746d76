"""Linking one catalog to another: every A posting once, matches only from B (possibly none),
ids that exist in both catalogs kept apart, the CLI and its errors. Real Shopee titles and
hashes, the labels as the truth."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.catalog import import_catalog
from core.cli import main as cli
from core.link import link_catalogs, score_links
from core.settings import MatchSettings
from core.store import Store

SLICE = 2_000


@pytest.fixture(scope="module")
def halves(shopee_csv: Path, tmp_path_factory) -> tuple[Path, Path]:
    frame = pd.read_csv(shopee_csv, dtype=str).head(SLICE)
    in_a = np.random.default_rng(1).random(len(frame)) < 0.5
    folder = tmp_path_factory.mktemp("link")
    a, b = folder / "a.csv", folder / "b.csv"
    frame[in_a].to_csv(a, index=False)
    # B also holds a copy of A's first posting under the same id: ids are per catalog.
    pd.concat([frame[~in_a], frame[in_a].head(1)]).to_csv(b, index=False)
    return a, b


def _labels(csv: Path) -> dict[str, str]:
    frame = pd.read_csv(csv, dtype=str)
    return dict(zip(frame["posting_id"], frame["label_group"], strict=True))


@pytest.mark.parametrize("pipeline", ["baseline", "ensemble"])
def test_every_posting_of_a_is_linked_to_b_only(halves, tmp_path: Path, pipeline: str) -> None:
    a_csv, b_csv = halves
    with Store(tmp_path / "a.db") as a, Store(tmp_path / "b.db") as b:
        import_catalog(a, a_csv, None)
        import_catalog(b, b_csv, None)
        (tmp_path / "work").mkdir()
        links = link_catalogs(a, b, pipeline, MatchSettings(), tmp_path / "work", hash_only=True)

    a_ids = pd.read_csv(a_csv, dtype=str)["posting_id"].tolist()
    b_ids = set(pd.read_csv(b_csv, dtype=str)["posting_id"])
    assert links["posting_id"].tolist() == a_ids
    linked = [set(m.split()) for m in links["matches"]]
    assert all(found <= b_ids for found in linked)
    assert any(not found for found in linked) and sum(map(bool, linked)) > 100
    # The posting whose copy is in B under the same id finds it.
    assert a_ids[0] in linked[0]
    scores = score_links(links, _labels(a_csv), _labels(b_csv))
    assert scores["precision"] > 0.6 and scores["f1_linked"] > 0.45, scores


def test_the_cli_writes_posting_id_matches(halves, tmp_path: Path, capsys) -> None:
    a_csv, b_csv = halves
    out = tmp_path / "links.csv"
    code = cli(["link", "--catalog", str(a_csv), "--against", str(b_csv), "--out", str(out)])
    assert code == 0
    written = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert list(written.columns) == ["posting_id", "matches"]
    assert len(written) == len(pd.read_csv(a_csv))
    assert "postings of" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--pipeline", "all"], "link takes one pipeline"),
        (["--pipeline", "best"], "no trained best matcher"),
    ],
)
def test_the_cli_refuses_what_it_cannot_do(halves, tmp_path: Path, capsys, extra, message):
    a_csv, b_csv = halves
    out = tmp_path / "links.csv"
    code = cli(
        ["link", "--catalog", str(a_csv), "--against", str(b_csv), "--out", str(out), *extra]
    )
    assert code == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_a_missing_catalog_is_named(tmp_path: Path, capsys) -> None:
    code = cli(
        [
            "link",
            "--catalog",
            str(tmp_path / "nope.csv"),
            "--against",
            str(tmp_path / "nope.csv"),
            "--out",
            str(tmp_path / "x.csv"),
        ]
    )
    assert code == 2
    assert "nope.csv" in capsys.readouterr().err
