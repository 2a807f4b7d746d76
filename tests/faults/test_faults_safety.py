"""What SameSame loads and runs: SQL always parameterised, models only in formats that cannot
execute code (damaged or code-carrying files are refused with a message), the app on localhost
with an upload size limit."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from core.errors import ModelNotTrainedError, SameSameError
from core.store import Store
from tests.faults.helpers import PROJECT, run_cli, table

SQL_CALLS = {"execute", "executemany", "executescript", "read_sql_query", "read_sql"}


def _sql_arguments() -> list[tuple[str, int, ast.expr]]:
    """Every SQL text handed to sqlite or pandas; a name is followed to what it was assigned
    (module constants and local variables alike), so building the text elsewhere hides
    nothing."""
    found = []
    for path in [
        *(PROJECT / "core").rglob("*.py"),
        *(PROJECT / "pages").rglob("*.py"),
        *(PROJECT / "ui").rglob("*.py"),
    ]:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        assigned: dict[str, list[ast.expr]] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        assigned.setdefault(target.id, []).append(node.value)
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in SQL_CALLS
                and node.args
            ):
                argument = node.args[0]
                texts = (
                    assigned.get(argument.id, [argument])
                    if isinstance(argument, ast.Name)
                    else [argument]
                )
                found.extend((path.name, node.lineno, text) for text in texts)
    return found


def test_sql_text_never_carries_values() -> None:
    """Values go in as parameters: SQL strings are never f-strings, %-formatted or .format()ed."""
    calls = _sql_arguments()
    assert len(calls) > 20  # the scan does see the store's queries
    offenders = []
    for name, line, argument in calls:
        for node in ast.walk(argument):
            formatted = isinstance(node, ast.JoinedStr) and any(
                isinstance(v, ast.FormattedValue) for v in node.values
            )
            percent = isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod)
            dot_format = (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "format"
            )
            if formatted or percent or dot_format:
                offenders.append(f"{name}:{line}")
    assert offenders == []


def test_hostile_text_is_stored_verbatim(tmp_path: Path) -> None:
    hostile = ["x'); DROP TABLE postings; --", 'a" OR "1"="1', "p%s%d{0}", "\u202eevil\u0000"]
    lines = ["posting_id,image,title"]
    lines += [f'h{i},,"{t.replace(chr(34), chr(34) * 2)}"' for i, t in enumerate(hostile[:3])]
    csv_path = tmp_path / "hostile.csv"
    csv_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    db = tmp_path / "cat.db"

    done = run_cli("import", csv_path, "--db", db)

    assert done.returncode == 0, done.stderr
    assert [t for (t,) in table(db, "SELECT title FROM postings ORDER BY posting_id")] == hostile[
        :3
    ]
    with Store(db) as store:
        store.set_setting(hostile[0], hostile[3])
        assert store.get_setting(hostile[0]) == hostile[3]
        assert store.count_postings() == 3


def test_app_binds_to_localhost_with_an_upload_limit() -> None:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    config = tomllib.loads((PROJECT / ".streamlit" / "config.toml").read_text(encoding="utf-8"))
    assert config["server"]["address"] == "localhost"
    assert 0 < config["server"]["maxUploadSize"] <= 200


@pytest.mark.slow
@pytest.mark.tf
def test_a_keras_model_carrying_code_is_refused(tmp_path: Path) -> None:
    import keras

    from core.embedders.siamese import CONFIG_FILE, MODEL_FILE, SiameseConfig, SiameseEmbedder

    inputs = keras.Input((4,))
    # A Lambda layer stores Python bytecode: loading it would run code from the file.
    outputs = keras.layers.Lambda(lambda x: x * 2)(inputs)
    keras.Model(inputs, outputs).save(tmp_path / MODEL_FILE)
    config = {**SiameseConfig().__dict__, "version": "x"}
    (tmp_path / CONFIG_FILE).write_text(json.dumps(config, default=str))

    with pytest.raises(ModelNotTrainedError, match="cannot be loaded safely"):
        SiameseEmbedder.load(tmp_path)


def test_damaged_best_model_files_are_refused_with_a_message(tmp_path: Path) -> None:
    from core.pipelines.best.model import CONFIG_FILE, STAGE1_FILE, BestMatcher

    (tmp_path / STAGE1_FILE).write_text("tree\nnot really a model\n")
    (tmp_path / CONFIG_FILE).write_text("{ truncated")
    with pytest.raises(ModelNotTrainedError, match="is damaged"):
        BestMatcher.load(tmp_path)

    (tmp_path / CONFIG_FILE).write_text(
        json.dumps(
            {"format_version": 1, "config": {}, "features_stage1": [], "features_stage2": []}
        )
    )
    with pytest.raises(SameSameError, match="is damaged"):
        BestMatcher.load(tmp_path)


def test_saved_models_hold_no_pickles(tmp_path: Path, shopee_csv: Path) -> None:
    import pandas as pd

    frame = pd.read_csv(shopee_csv, dtype=str, keep_default_na=False)
    groups = frame["label_group"].drop_duplicates().head(120)
    frame[frame["label_group"].isin(set(groups))].to_csv(tmp_path / "train.csv", index=False)

    done = run_cli("train", "--catalog", tmp_path / "train.csv", "--model", tmp_path / "model")

    assert done.returncode == 0, done.stderr
    files = sorted(p.name for p in (tmp_path / "model").iterdir())
    assert files == ["best.json", "best.training.json", "stage1.lgb.txt", "stage2.lgb.txt"]
    for path in (tmp_path / "model").iterdir():
        head = path.read_bytes()[:2]
        assert head != b"\x80\x04" and head != b"\x80\x05"  # pickle protocol 4/5 magic
