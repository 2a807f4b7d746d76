"""``python -m core`` as a user runs it: real subprocesses, a per-test SAMESAME_HOME."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from core.cli import command_names
from tests.test_pairs import products_en  # noqa: F401

PROJECT = Path(__file__).resolve().parents[1]


def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "core", *map(str, args)],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def shopee_sample(shopee_csv: Path) -> list[dict[str, str]]:
    """Real rows of the first 60 label groups (about 190 postings)."""
    with shopee_csv.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    groups = set(sorted({r["label_group"] for r in rows})[:60])
    return [r for r in rows if r["label_group"] in groups]


def write_catalog(path: Path, rows: list[dict[str, str]], columns: list[str]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.fixture
def labelled_csv(tmp_path: Path, shopee_sample) -> Path:
    columns = ["posting_id", "image", "image_phash", "title", "label_group"]
    return write_catalog(tmp_path / "labelled.csv", shopee_sample, columns)


@pytest.fixture
def unlabelled_csv(tmp_path: Path, shopee_sample) -> Path:
    columns = ["posting_id", "image", "image_phash", "title"]
    return write_catalog(tmp_path / "unlabelled.csv", shopee_sample, columns)


def assert_submission(path: Path, ids: list[str]) -> pd.DataFrame:
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    assert frame.columns.tolist() == ["posting_id", "matches"]
    assert frame["posting_id"].tolist() == ids
    for pid, matches in zip(frame["posting_id"], frame["matches"], strict=True):
        parts = matches.split(" ")
        assert parts[0] == pid and len(set(parts)) == len(parts) and "" not in parts
    assert (frame["matches"].str.count(" ") > 0).sum() > len(ids) // 3
    return frame


@pytest.mark.parametrize("command", [None, *command_names()])
def test_help_of_every_command(command: str | None) -> None:
    done = run_cli(*([command] if command else []), "--help")

    assert done.returncode == 0, done.stderr
    usage = "usage: python -m core" + (f" {command}" if command else "")
    assert done.stdout.startswith(usage)
    assert done.stderr == ""


def test_import_then_info_json(tmp_path: Path, labelled_csv: Path, shopee_sample) -> None:
    db = tmp_path / "cat.db"

    imported = run_cli("--db", db, "import", labelled_csv)
    info = run_cli("--db", db, "info", "--json")

    assert imported.returncode == 0, imported.stderr
    assert f"imported {len(shopee_sample)} postings ({len(shopee_sample)} new or changed)" in (
        imported.stdout
    )
    assert info.returncode == 0, info.stderr
    figures = json.loads(info.stdout)
    assert figures["postings"] == figures["labelled_postings"] == figures["hashes"]
    assert figures["postings"] == len(shopee_sample)
    assert figures["label_groups"] == 60
    assert figures["images"]["none"] == len(shopee_sample)
    assert figures["database"] == str(db)


def test_default_database_lives_in_samesame_home(labelled_csv: Path, samesame_home: Path):
    assert run_cli("import", labelled_csv).returncode == 0
    assert (samesame_home / "samesame.db").is_file()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"id,image,name\na,1.jpg,x\n", "missing required column(s) posting_id, title"),
        (b"posting_id,image,title\na,,x\na,,y\n", "duplicate posting_id: 'a' in rows 2, 3"),
        (b"posting_id,image,title\n" + b"\xff\xfe\x00\x01" * 4, "binary file"),
        (None, "file not found"),
    ],
    ids=["missing_columns", "duplicate_ids", "binary", "no_file"],
)
def test_bad_csv_exits_2_with_one_error_line(tmp_path: Path, content, message) -> None:
    path = tmp_path / "bad.csv"
    if content is not None:
        path.write_bytes(content)
    db = tmp_path / "cat.db"

    done = run_cli("--db", db, "import", path)

    assert done.returncode == 2
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {path}: ")
    assert message in lines[0]
    assert "Traceback" not in done.stderr and done.stdout == ""


@pytest.mark.parametrize("pipeline", ["baseline", "ensemble"])
def test_one_shot_match_writes_a_submission(
    tmp_path: Path, unlabelled_csv: Path, shopee_sample, samesame_home: Path, pipeline: str
) -> None:
    out = tmp_path / "out" / "m.csv"

    done = run_cli("match", "--catalog", unlabelled_csv, "--pipeline", pipeline, "--out", out)

    assert done.returncode == 0, done.stderr
    assert f"{pipeline}: " in done.stdout and "matched pairs" in done.stdout
    assert "Traceback" not in done.stderr
    assert_submission(out, [r["posting_id"] for r in shopee_sample])
    assert not (samesame_home / "samesame.db").exists()  # one-shot touches no database


@pytest.mark.slow
def test_evaluate_prints_both_pipelines_as_the_engine_scores_them(labelled_csv: Path) -> None:
    from core import evaluation, matching
    from core.catalog import import_catalog
    from core.settings import MatchSettings
    from core.store import Store

    table = run_cli("evaluate", "--catalog", labelled_csv)
    as_json = run_cli("evaluate", "--catalog", labelled_csv, "--json")

    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split() == [
        "pipeline",
        "F1",
        "precision",
        "recall",
        "cluster-F1",
        "seconds",
    ]
    # With labels and no model, "all" also trains best on them (in-sample, and it says so).
    assert [line.split()[0] for line in lines[1:]] == ["baseline", "ensemble", "best"]
    assert "in-sample" in table.stderr
    assert as_json.returncode == 0, as_json.stderr
    figures = json.loads(as_json.stdout)
    with Store(":memory:") as store:
        import_catalog(store, labelled_csv)
        for pipeline in ("baseline", "ensemble"):
            result = matching.run_pipeline(store, pipeline, MatchSettings(), save=False)
            expected = evaluation.evaluate_result(store, result)
            clustered = evaluation.evaluate_result(store, result, clusters=True)
            for key in ("f1", "precision", "recall"):
                assert figures[pipeline][key] == pytest.approx(expected[key], abs=1e-9)
            assert figures[pipeline]["cluster_f1"] == pytest.approx(clustered["f1"], abs=1e-9)
            row = next(line.split() for line in lines if line.startswith(pipeline))
            assert float(row[1]) == pytest.approx(expected["f1"], abs=1e-4)
            assert float(row[4]) == pytest.approx(clustered["f1"], abs=1e-4)
    assert 0.5 < figures["baseline"]["f1"] < 1.0


@pytest.mark.slow
def test_export_writes_what_match_stored(tmp_path: Path, labelled_csv: Path, shopee_sample):
    db = tmp_path / "cat.db"
    assert run_cli("--db", db, "import", labelled_csv).returncode == 0

    early = run_cli("--db", db, "export", "--pipeline", "ensemble", "--out", tmp_path / "e.csv")
    matched = run_cli("--db", db, "match", "--pipeline", "baseline", "--out", tmp_path / "m.csv")
    exported = run_cli("--db", db, "export", "--out", tmp_path / "x.csv")

    assert early.returncode == 2
    assert "No stored ensemble matches" in early.stderr and "Traceback" not in early.stderr
    assert matched.returncode == 0, matched.stderr
    assert exported.returncode == 0, exported.stderr
    assert f"wrote {len(shopee_sample)} postings" in exported.stdout
    ids = [r["posting_id"] for r in shopee_sample]
    written = assert_submission(tmp_path / "m.csv", ids)
    assert assert_submission(tmp_path / "x.csv", ids).equals(written)


def test_invalid_setting_is_a_clean_error(tmp_path: Path, labelled_csv: Path) -> None:
    done = run_cli("evaluate", "--catalog", labelled_csv, "--text-threshold", "1.5")

    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].startswith("error: Invalid settings: ")
    assert "baseline_text_cosine must be between 0 and 1" in done.stderr
    assert "Traceback" not in done.stderr


# --- The learned best pipeline ----------------------------------------------------------------


@pytest.fixture(scope="module")
def shopee_train_and_unseen(shopee_csv: Path, tmp_path_factory) -> tuple[Path, Path, Path]:
    """Real postings of 600 label groups: a labelled training CSV of 450 groups, and the other
    150 groups as a catalog without label_group (plus their labels, kept apart for scoring)."""
    frame = pd.read_csv(shopee_csv, dtype=str, keep_default_na=False)
    groups = frame["label_group"].drop_duplicates().sample(n=600, random_state=3)
    unseen = set(groups.iloc[:150])
    folder = tmp_path_factory.mktemp("best_cli")
    chosen = frame[frame["label_group"].isin(set(groups))]
    train = chosen[~chosen["label_group"].isin(unseen)]
    held = chosen[chosen["label_group"].isin(unseen)]
    train.to_csv(folder / "train.csv", index=False)
    held.drop(columns=["label_group"]).to_csv(folder / "unseen.csv", index=False)
    held[["posting_id", "label_group"]].to_csv(folder / "unseen_labels.csv", index=False)
    return folder / "train.csv", folder / "unseen.csv", folder / "unseen_labels.csv"


def _submission_f1(path: Path, labels_csv: Path) -> float:
    from core.metrics import evaluate, true_match_sets

    labels = pd.read_csv(labels_csv, dtype=str)
    truth = true_match_sets(dict(zip(labels["posting_id"], labels["label_group"], strict=True)))
    frame = pd.read_csv(path, dtype=str)
    predicted = {row.posting_id: set(row.matches.split()) for row in frame.itertuples()}
    return evaluate(predicted, truth)["f1"]


@pytest.mark.slow
def test_best_trains_once_and_matches_unseen_products_without_labels(
    tmp_path: Path, shopee_train_and_unseen, samesame_home: Path
) -> None:
    train_csv, unseen_csv, unseen_labels = shopee_train_and_unseen
    model = tmp_path / "model"

    trained = run_cli("train", "--catalog", train_csv, "--model", model, timeout=600)
    best = run_cli(
        "match", "--catalog", unseen_csv, "--pipeline", "best", "--model", model,
        "--out", tmp_path / "best.csv",
    )  # fmt: skip
    baseline = run_cli(
        "match", "--catalog", unseen_csv, "--pipeline", "baseline", "--out", tmp_path / "base.csv"
    )

    assert trained.returncode == 0, trained.stderr
    assert "best matcher: trained on" in trained.stdout
    assert "siamese" not in trained.stdout  # no image files: nothing for the Siamese network
    saved = json.loads((model / "best.json").read_text())
    assert saved["info"]["image_model"] is None and saved["info"]["oof_f1"] > 0.7
    assert not any(p.suffix in {".pkl", ".pickle", ".joblib"} for p in model.rglob("*"))
    assert best.returncode == 0, best.stderr
    assert baseline.returncode == 0, baseline.stderr
    ids = pd.read_csv(unseen_csv, dtype=str)["posting_id"].tolist()
    assert_submission(tmp_path / "best.csv", ids)
    best_f1 = _submission_f1(tmp_path / "best.csv", unseen_labels)
    baseline_f1 = _submission_f1(tmp_path / "base.csv", unseen_labels)
    assert best_f1 > baseline_f1 + 0.02, (best_f1, baseline_f1)


def test_best_without_a_model_or_labels_says_what_to_do(
    tmp_path: Path, unlabelled_csv: Path
) -> None:
    no_model = run_cli("match", "--catalog", unlabelled_csv, "--pipeline", "best")
    empty_dir = run_cli(
        "match", "--catalog", unlabelled_csv, "--pipeline", "best", "--model", tmp_path / "none"
    )
    no_labels = run_cli("train", "--catalog", unlabelled_csv, "--model", tmp_path / "m")

    for done in (no_model, empty_dir, no_labels):
        assert done.returncode == 2
        assert "Traceback" not in done.stderr
    assert "needs a trained model" in no_model.stderr and "--model DIR" in no_model.stderr
    assert "holds no trained best matcher" in empty_dir.stderr
    assert "needs a labelled catalog" in no_labels.stderr
    assert not (tmp_path / "m").exists()


@pytest.mark.slow
def test_best_model_of_a_database_is_reused_until_the_catalog_changes(
    tmp_path: Path, labelled_csv: Path, shopee_sample, samesame_home: Path
) -> None:
    db = tmp_path / "cat.db"
    assert run_cli("--db", db, "import", labelled_csv).returncode == 0

    first = run_cli("--db", db, "match", "--pipeline", "best")
    again = run_cli("--db", db, "match", "--pipeline", "best")
    columns = ["posting_id", "image", "image_phash", "title", "label_group"]
    extra = dict(shopee_sample[0], posting_id="extra_copy")
    write_catalog(tmp_path / "more.csv", [*shopee_sample, extra], columns)
    assert run_cli("--db", db, "import", tmp_path / "more.csv").returncode == 0
    changed = run_cli("--db", db, "match", "--pipeline", "best")

    for done in (first, again, changed):
        assert done.returncode == 0, done.stderr
        assert "best: " in done.stdout
    assert "training the best matcher" in first.stderr
    assert "training the best matcher" not in again.stderr
    assert "training the best matcher" in changed.stderr
    assert (samesame_home / "models" / "cat" / "best" / "best.json").is_file()


def test_a_submission_file_is_scored_exactly_as_written(tmp_path: Path, labelled_csv: Path):
    out = tmp_path / "m.csv"
    db = tmp_path / "cat.db"
    assert run_cli("--db", db, "import", labelled_csv).returncode == 0
    assert run_cli("--db", db, "match", "--pipeline", "baseline", "--out", out).returncode == 0
    pipeline = json.loads(
        run_cli("--db", db, "evaluate", "--pipeline", "baseline", "--json").stdout
    )

    done = run_cli("--db", db, "evaluate", "--submission", out, "--json")

    assert done.returncode == 0, done.stderr
    scored = json.loads(done.stdout)["submission"]
    assert scored["f1"] == pytest.approx(pipeline["baseline"]["f1"], abs=1e-9)
    # The same file with every posting's own id removed scores lower: nothing is added back.
    frame = pd.read_csv(out, dtype=str)
    frame["matches"] = [" ".join(m.split()[1:]) for m in frame["matches"]]
    without_self = tmp_path / "without_self.csv"
    frame.to_csv(without_self, index=False)
    lower = json.loads(
        run_cli("--db", db, "evaluate", "--submission", without_self, "--json").stdout
    )["submission"]
    assert lower["f1"] < scored["f1"] - 0.1

    frame.loc[0, "matches"] = "not_in_this_catalog"
    frame.to_csv(without_self, index=False)
    refused = run_cli("--db", db, "evaluate", "--submission", without_self)
    assert refused.returncode == 2
    assert "does not have, e.g. ['not_in_this_catalog']" in refused.stderr


@pytest.mark.slow
def test_train_pairs_on_a_published_file_says_what_it_set_aside(
    products_en: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    """WDC shoes' published training pairs as published: two pairs repeated with one label,
    two with both, and one posting paired with itself (row 4270)."""
    pairs = products_en / "wdc-shoes" / "train_pairs.csv"
    catalog = products_en / "wdc-shoes" / "train_catalog.csv"
    chosen = tmp_path / "out" / "set-aside.csv"
    train = ["train", "--catalog", catalog, "--pairs", pairs]

    done = run_cli(*train, "--model", tmp_path / "m", "--conflicts", chosen)
    strict = run_cli(*train, "--model", tmp_path / "strict", "--strict")

    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(
        "train_pairs.csv: 2 repeated pairs counted once; 2 pairs labelled both same and "
        f"different and 1 posting paired with itself set aside (written to {chosen})\n"
        "best matcher: trained from "
    )
    assert " of 5,679 labelled pairs " in done.stdout
    aside = pd.read_csv(chosen)
    assert aside["row"].tolist() == [1116, 3728, 2956, 4694, 4270]
    assert aside["reason"].tolist() == ["labelled both same and different"] * 4 + [
        "a posting paired with itself"
    ]
    assert strict.returncode == 2 and "Traceback" not in strict.stderr
    assert "row 4270: 'r4644395ce5be' is paired with itself; rows 1116 and 3728" in strict.stderr
    assert "rows 1116 and 3728 give the same pair ('r903b92035feb', 'rb503deb4bbb7')" in (
        strict.stderr
    )
    assert "rows 3128 and 4139 give the same pair" in strict.stderr
    assert not (tmp_path / "strict").exists()
