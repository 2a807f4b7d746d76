"""Embed page: resumable MobileNet embedding, weights errors, Siamese history, matching now."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from core import evaluation, matching, models
from core.pipelines.best import catalog_training
from core.store import Store
from tests.app.helpers import MOBILENET_025, WEIGHTS, button, card_ids, open_page, open_tab, texts
from tests.conftest import require

MODEL_025 = "mobilenet-a0.25-224"


def _use_mobilenet_025(db) -> None:
    with Store(db) as store:
        store.save_settings(
            store.load_settings().replace(image_alpha=0.25, weights_dir=str(WEIGHTS))
        )


def _progress_texts(at) -> list[str]:
    return [p.proto.text for p in at.get("progress")]


def test_page_shows_how_much_is_already_embedded(app, demo_db):
    _use_mobilenet_025(demo_db)
    with Store(demo_db) as store:
        ids = store.postings()["posting_id"].tolist()[:100]
        vectors = np.eye(100, 16, dtype=np.float32)[:, :16]
        store.save_embeddings(MODEL_025, "imagenet", ids, vectors)
        total = store.info()["images"]["ok"]
    open_page(app, "embed")

    assert f"100 of {total:,} images already embedded" in _progress_texts(app)
    assert [b.label for b in app.button if b.key == "embed_mobilenet"] == ["Continue embedding"]
    assert any(MODEL_025 in m.value for m in app.markdown)


def test_match_now_stores_pairs_and_reports_f1(app, demo_db):
    open_page(app, "embed")
    button(app, "Match now: ensemble").click().run()

    assert not app.exception
    with Store(demo_db) as store:
        pairs = store.match_counts()["ensemble"]
        f1 = evaluation.evaluate_result(store, matching.stored_result(store, "ensemble"))["f1"]
    [message] = texts(app.success)
    assert message.startswith(f"ensemble: {pairs:,} pairs in ")
    assert message.endswith(f"F1 {f1:.3f}")
    # A newcomer reads that an untrained rule's low F1 on the demo is expected, and what to do.
    assert any(
        i.startswith(f"F1 {f1:.2f} (ensemble) is expected on the demo: this untrained rule's")
        and "Train the best matcher on the Embed page" in i
        for i in texts(app.info)
    )
    # The fresh demo has no Siamese vectors: the notice says hashes stood in.
    assert any("perceptual hashes" in i for i in texts(app.info))
    # The answer sits next to the button that asked, below the match section's heading.
    order = _in_page_order(app.main)
    assert order.index(("subheader", "Match the whole catalog")) < order.index(("success", message))


def _in_page_order(node) -> list[tuple[str, str]]:
    """(element type, text) of every element under ``node``, top to bottom."""
    found = []
    for child in getattr(node, "children", {}).values():
        if hasattr(child, "value") and isinstance(child.value, str):
            found.append((child.type, child.value))
        found.extend(_in_page_order(child))
    return found


def test_siamese_loss_curve_is_drawn_from_the_saved_history(app, demo_db):
    with Store(demo_db) as store:
        model_dir = models.siamese_dir(store)
    model_dir.mkdir(parents=True)
    history = [{"epoch": 1, "loss": 0.31}, {"epoch": 2, "loss": 0.22}, {"epoch": 3, "loss": 0.17}]
    (model_dir / "siamese.json").write_text(json.dumps({"version": "abc123", "history": history}))
    open_page(app, "embed")

    assert not app.exception
    assert "Training loss per epoch" in texts(app.caption)
    assert any("abc123" in c for c in texts(app.caption))
    assert app.get("vega_lite_chart")


@pytest.mark.slow
@pytest.mark.tf
def test_missing_weights_show_an_error_not_a_traceback(app):
    # Default settings: MobileNet alpha 1.0, whose weights are not on this offline machine.
    open_page(app, "embed")
    button(app, "Embed images").click().run(timeout=120)

    assert not app.exception
    [error] = texts(app.error)
    assert "mobilenet_1_0_224_tf_no_top.h5" in error


@pytest.mark.slow
@pytest.mark.tf
def test_embedding_the_demo_with_real_mobilenet_025(app, demo_db):
    require(MOBILENET_025.is_file(), f"real weights not present: {MOBILENET_025}")
    _use_mobilenet_025(demo_db)
    with Store(demo_db) as store:
        total = store.info()["images"]["ok"]
    open_page(app, "embed")
    assert f"0 of {total:,} images already embedded" in _progress_texts(app)
    button(app, "Embed images").click().run(timeout=300)

    assert not app.exception
    assert not app.error, texts(app.error)
    assert texts(app.success)[0].startswith(f"Embedded {total:,} new images with {MODEL_025}")
    assert f"{total:,} of {total:,} images already embedded" in _progress_texts(app)
    with Store(demo_db) as store:
        ids, vectors = store.load_embeddings(MODEL_025, "imagenet")
    assert len(ids) == total
    assert vectors.shape == (total, 256)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-4)
    # A real model puts a posting's own group closer than strangers, on average.
    with Store(demo_db) as store:
        labels = store.postings().set_index("posting_id").loc[ids, "label_group"].to_numpy()
    cosine = vectors @ vectors.T
    same = labels[:, None] == labels[None, :]
    np.fill_diagonal(same, False)
    assert cosine[same].mean() > cosine[~same].mean() + 0.05

    # Compare now embeds an upload with the (cached) model instead of falling back to hashes.
    with Store(demo_db) as store:
        row = store.postings().iloc[3]
    open_page(app, "compare")
    photo = Path(row["image_path"]).read_bytes()
    app.file_uploader(key="compare_files").set_value(("again.jpg", photo, "image/jpeg"))
    button(app, "Find matches").click().run(timeout=120)
    assert not app.exception
    assert card_ids(app)[0] == row["posting_id"]
    open_tab(app, "compare_tab_0", "Compare pipelines")
    table = next(d.value for d in app.dataframe if "baseline" in d.value.columns)
    # The baseline compared the upload's MobileNet vector: the very photo is the same product.
    assert table.set_index("posting_id").at[row["posting_id"], "baseline"] == "✔ Same"
    notes = [c for c in texts(app.caption) if "perceptual hash is the image evidence" in c]
    assert notes and all("Siamese" in n for n in notes)  # only the ensemble lacks vectors

    # Evaluate: the image-cosine curve from the stored vectors; at the current setting it is
    # the stored matches' F1.
    with Store(demo_db) as store:
        matching.run_pipeline(store, "baseline")
        stored = evaluation.evaluate_result(store, matching.stored_result(store, "baseline"))
    open_page(app, "evaluate")
    assert not [w for w in texts(app.warning) if "no image vectors" in w]
    app.selectbox(key="curve_threshold").set_value("baseline_image_cosine").run()
    button(app, "Draw the curve").click().run(timeout=300)
    assert not app.exception
    [caption] = [c for c in texts(app.caption) if c.startswith("Best F1")]
    assert f"At the current setting (0.85) F1 is {stored['f1']:.3f}" in caption
    assert caption.endswith("the same as the stored matches.")
    with Store(demo_db) as store:
        strict = matching.run_pipeline(
            store, "baseline", store.load_settings().replace(baseline_image_cosine=0.99), save=False
        )
        strict_f1 = evaluation.evaluate_result(store, strict)["f1"]
    assert abs(strict_f1 - stored["f1"]) > 0.005  # the threshold matters once vectors exist


@pytest.mark.slow
@pytest.mark.tf
def test_training_then_embedding_the_siamese_model(app, demo_db):
    require(MOBILENET_025.is_file(), f"real weights not present: {MOBILENET_025}")
    with Store(demo_db) as store:
        # The smallest real configuration: MobileNet 0.25 (weights offline), one epoch, 96 px.
        store.save_settings(
            store.load_settings().replace(
                siamese_backbone="mobilenet",
                siamese_alpha=0.25,
                siamese_image_size=96,
                siamese_epochs=1,
                siamese_members=2,
                weights_dir=str(WEIGHTS),
            )
        )
        total = store.info()["images"]["ok"]
    open_page(app, "embed")
    assert any("2 networks side by side, 2 × 128-d" in m for m in texts(app.markdown))
    button(app, "Train Siamese model").click().run(timeout=300)

    assert not app.exception
    assert not app.error, texts(app.error)
    assert texts(app.success)[0].startswith(f"Trained on {total:,} images in ")
    assert "Training loss per epoch" in texts(app.caption)
    assert any("2 networks side by side" in c for c in texts(app.caption))
    assert f"0 of {total:,} images already embedded" in _progress_texts(app)

    button(app, "Embed with the Siamese model").click().run(timeout=300)
    assert not app.exception
    assert texts(app.success)[0].startswith(f"Embedded {total:,} new images with the Siamese")
    with Store(demo_db) as store:
        version = models.siamese_version(models.siamese_dir(store))
        assert len(store.embedded_ids(models.SIAMESE, version)) == total
        trained = json.loads((models.siamese_dir(store) / "siamese.json").read_text())
        _, vectors = store.load_embeddings(models.SIAMESE, version)
        result = matching.run_pipeline(store, "ensemble", save=False)
    assert trained["members"] == 2
    assert vectors.shape == (total, 256)  # two unit vectors side by side, at unit length
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # the ensemble matches on the wide vectors: its image rule scores pairs by their distance
    assert result.pairs["siamese_distance"].notna().any()


def test_without_labels_best_trains_from_the_verdicts(app, demo_db, samesame_home):
    """An unlabelled copy of the demo with 60 verdicts on its ensemble matches: the best
    matcher trains from them and says so."""
    from core import matching, models
    from core.catalog import import_catalog
    from tests.app.helpers import demo_rows, write_catalog

    rows = demo_rows(samesame_home, 300)
    labels = {row["posting_id"]: row.pop("label_group") for row in rows}
    csv = write_catalog(samesame_home / "unlabelled.csv", rows)
    bare = samesame_home / "catalogs" / "unlabelled.db"
    with Store(bare) as store:
        import_catalog(store, csv, samesame_home / "demo" / "images")
        pairs = matching.run_pipeline(store, "ensemble").pairs.head(60)
        for a, b in zip(pairs["left"], pairs["right"], strict=True):
            store.save_review(a, b, "same" if labels[a] == labels[b] else "different")
    app.run()
    app.sidebar.selectbox(key="sidebar_catalog").set_value(str(bare)).run()
    open_page(app, "embed")
    assert any("learns from your verdicts" in c for c in texts(app.caption))
    button(app, "Train from my verdicts").click().run(timeout=300)

    assert not app.exception
    assert not app.error, texts(app.error)
    assert any("Trained the best matcher from" in s for s in texts(app.success))
    with Store(bare) as store:
        info = models.best_model_info(models.best_dir(store))
    assert info["trained_from"] == "pairs" and info["pairs_given"] == 60


def test_an_unlabelled_catalog_adopts_the_matcher_of_a_labelled_one(app, demo_db, samesame_home):
    """The labelled demo's trained matcher is offered to an unlabelled catalog, copied into
    its own model folder, and matches there (figures not in-sample)."""
    from core.catalog import import_catalog
    from core.settings import MatchSettings
    from tests.app.helpers import demo_rows, write_catalog

    with Store(demo_db) as store:
        catalog_training.train_best_model(store, MatchSettings(), models.best_dir(store))
    rows = demo_rows(samesame_home, 200)
    for row in rows:
        row.pop("label_group")
    bare = samesame_home / "catalogs" / "shop.db"
    with Store(bare) as store:
        import_catalog(store, write_catalog(samesame_home / "shop.csv", rows), None)
    app.run()
    app.sidebar.selectbox(key="sidebar_catalog").set_value(str(bare)).run()
    open_page(app, "embed")
    choice = app.selectbox(key="adopt_best_from")
    assert choice.options and choice.options[0].startswith(demo_db.stem)
    button(app, "Use this matcher").click().run(timeout=120)

    assert not app.exception and not app.error, texts(app.error)
    assert any(f"trained on {demo_db.stem}" in s for s in texts(app.success))
    assert any(f"of the catalog **{demo_db.stem}**" in c for c in texts(app.caption))
    with Store(bare) as store:
        info = models.best_model_info(models.best_dir(store))
        assert info["adopted_from"] == demo_db.stem
        result = matching.run_pipeline(store, "best")
        assert result.pairs.shape[0] > 50
        assert not models.in_sample(store, models.best_dir(store), models.BEST)


def test_the_siamese_section_names_the_backbone_auto_chose_and_its_weights(app, demo_db):
    """No VGG16 weights on this computer: auto trains on EfficientNet-Lite2, whose weights
    came with the app; the page says so in words, with the file it will read."""
    with Store(demo_db) as store:
        store.save_settings(store.load_settings().replace(weights_dir=str(WEIGHTS)))
    open_page(app, "embed")

    assert not app.exception
    said = " ".join(m.value for m in app.markdown)
    assert (
        "on **efficientnet-lite2** (260px, 3 networks side by side, 3 × 128-d; chosen for you, "
        "as VGG16's weights are not "
        "on this computer), 6 epochs" in said
    )
    notes = " ".join(c.value for c in app.caption)
    assert "Weights: `" in notes and "efficientnet-lite2-9656183e.pth" in notes
