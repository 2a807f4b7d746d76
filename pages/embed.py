"""Embed page: image embeddings (MobileNet), Siamese training + embedding (their sections in
`ui.embedding_view`), training the best matcher, and matching now.

TensorFlow is imported only when one of the model buttons is pressed.
"""

from __future__ import annotations

import time
from datetime import datetime

import streamlit as st

from core import models
from core.errors import SameSameError, WeightsUnavailableError
from core.evaluation import evaluate_result, labels_of
from core.matching import ensure_ready, run_pipeline
from core.pipelines import Pipeline
from core.pipelines.best import catalog_training
from core.settings import MatchSettings
from core.store import Store
from ui import common, embedding_view, pipeline_bar, resources


def _device(settings: MatchSettings) -> None:
    probe = resources.device_probe()
    if not probe.done:
        st.caption("Compute device: detecting (TensorFlow is loading in the background)…")
        return
    if probe.error:
        st.caption(f"Compute device: **{probe.error}**")
        return
    from core.embedders.inference import resolve_backend

    try:
        engine = {
            "openvino": "OpenVINO",
            "openvino-bf16": "OpenVINO in bfloat16",
            "tensorflow": "TensorFlow",
        }[resolve_backend(settings.inference_backend)]
    except SameSameError as exc:
        engine = f"TensorFlow ({exc})"
    st.caption(
        f"Compute device: **{probe.result}**; image networks run on **{engine}** (Settings: "
        "Inference engine)."
    )


def _best(store: Store, pipe: Pipeline, settings: MatchSettings) -> None:
    st.subheader(pipe.title)
    common.show_flashes(place="best")
    st.markdown(
        "Finds candidates by word and character TF-IDF, perceptual hash and (when embedded) "
        "image vectors, then scores each pair with two LightGBM classifiers trained on this "
        "catalog's labelled groups. With embedded photos, training also learns a Siamese "
        "head on their vectors, which tells apart products the ImageNet network confuses. It "
        "works on catalogs of unseen products; its thresholds are tuned by group-aware "
        "cross-validation during training."
    )
    model_dir = models.best_dir(store)
    info = models.best_model_info(model_dir)
    if info is None:
        st.caption("No trained model yet.")
    else:
        adopted = info.get("adopted_from")
        current = adopted or models.best_is_current(store, model_dir)
        st.caption(
            f"Trained {info.get('trained_at', '?')} on {info.get('postings', 0):,} postings "
            f"({info.get('label_groups', 0):,} groups)"
            + (f" of the catalog **{adopted}**" if adopted else "")
            + f" in {common.format_seconds(info.get('training_seconds', 0))}; out-of-fold F1 "
            f"{info.get('oof_f1', float('nan')):.3f}; image evidence: "
            f"{info.get('image_model') or 'perceptual hash'}."
            + ("" if current else " The catalog changed since: retrain to learn from it.")
        )
    common.in_sample_note(store, pipe)
    labelled = store.info()["label_groups"] > 0
    if not labelled:
        _adopt_section(store, settings)
        _best_from_verdicts(store, settings, model_dir)
        return
    label = "Retrain best matcher" if info else "Train best matcher"
    if st.button(label, key="train_best"):
        started = time.perf_counter()
        report = pipe.train(
            store, settings, model_dir, progress=common.ProgressBar("Training stages")
        )
        common.flash(
            "success",
            f"Trained the best matcher on {report['postings']:,} postings in "
            f"{common.format_seconds(time.perf_counter() - started)}; out-of-fold F1 "
            f"{report['oof_f1']:.3f}.",
            place="best",
        )
        st.rerun()


def _adopt_section(store: Store, settings: MatchSettings) -> None:
    """An unlabelled catalog can use a matcher trained on another, labelled one."""
    others = models.other_best_models(store)
    if not others:
        st.caption(
            "Tip: a matcher trained on a labelled catalog of similar products (import it, "
            "train it here, switch back) usually beats one learnt from a few hundred verdicts."
        )
        return
    st.markdown(
        "**Use a matcher trained on another catalog.** One trained on the labels of similar "
        "products usually beats one learnt from a few hundred verdicts (on Shopee products "
        "it never saw: F1 0.86–0.88 against 0.81–0.85 from 200 verdicts, BENCHMARKS.md); your "
        "verdicts still correct its matches."
    )

    def label(i: int) -> str:
        name, _, info = others[i]
        return (
            f"{name}: {info.get('postings', 0):,} postings, {info.get('label_groups', 0):,} "
            f"groups, trained {str(info.get('trained_at', '?'))[:10]}"
        )

    chosen = st.selectbox("Matcher", range(len(others)), format_func=label, key="adopt_best_from")
    if not st.button("Use this matcher", key="adopt_best", icon=":material/download:"):
        return
    try:
        models.adopt_best_model(store, settings, others[chosen][1])
    except SameSameError as exc:
        st.error(str(exc))
        return
    common.flash(
        "success",
        f"This catalog now uses the matcher trained on {others[chosen][0]}: **Match now: "
        "best** below finds its matches.",
        place="best",
    )
    st.rerun()


def _best_from_verdicts(store: Store, settings: MatchSettings, model_dir) -> None:
    """Without labels the best matcher learns from the Review page's verdicts."""
    from core.catalog.pairs import verdict_pairs
    from core.pipelines.best.pair_training import MIN_EACH

    pairs = verdict_pairs(store.reviews())
    same, different = int(pairs["same"].sum()), int((pairs["same"] == 0).sum())
    st.caption(
        f"No labels here: the matcher learns from your verdicts ({same} same, {different} "
        f"different so far; it needs at least {MIN_EACH} of each among its candidates)."
    )
    st.page_link("pages/review.py", label="Review pairs", icon=":material/rule:")
    enough = same >= MIN_EACH and different >= MIN_EACH
    if not st.button("Train from my verdicts", key="train_best_pairs", disabled=not enough):
        return
    try:
        with st.spinner("Training the best matcher from your verdicts…"):
            report = catalog_training.train_best_from_pairs(store, settings, model_dir, pairs)
    except SameSameError as exc:
        st.error(str(exc))
        return
    common.flash(
        "success",
        f"Trained the best matcher from {report['pairs_used']:,} of your verdicts; "
        f"out-of-fold F1 {report['oof_f1']:.3f}.",
        place="best",
    )
    st.rerun()


class _PageHooks:
    """`core.matching.Hooks` for a page: a progress bar per stage, notes as info boxes."""

    def progress(self, stage: str):
        return common.ProgressBar(stage)

    def note(self, text: str) -> None:
        st.info(text)


def _run_now(store: Store, pipe: Pipeline, settings: MatchSettings, embed_first: bool) -> None:
    """Match the catalog with one pipeline, then say how it went (F1 on a labelled catalog,
    with a word for a newcomer when an untrained rule scores low)."""
    try:
        ensure_ready(
            store, pipe.name, settings, hash_only=not embed_first, hooks=_PageHooks(), train=False
        )
    except WeightsUnavailableError as exc:
        st.error(str(exc))
        return
    with st.spinner(f"Matching with the {pipe.name} pipeline…"):
        result = run_pipeline(store, pipe.name, settings, stages=_PageHooks().progress)
    text = f"{pipe.name}: {len(result.pairs):,} pairs in {result.seconds:.1f} s"
    note = None
    if labels_of(store) is not None:
        metrics = evaluate_result(store, result)
        text += f" · F1 {metrics['f1']:.3f}"
        if pipe.in_sample(store):
            text += " (in-sample: its model learnt from these labels)"
        note = common.untrained_rule_note({pipe.name: metrics["f1"]})
    common.flash("success", text, place="match")
    if note:
        common.flash("info", note, place="match")
    for notice in result.notices:
        common.flash("info", f"{pipe.name}: {notice}", place="match")
    st.rerun()


def _match_now(store: Store, settings: MatchSettings) -> None:
    st.subheader("Match the whole catalog")
    st.caption(
        "Postings without an image vector are compared by perceptual hash. "
        f"Each posting keeps at most {settings.max_matches} matches, best first."
    )
    embed_first = st.toggle(
        "Embed images that have no vector yet before matching",
        value=False,
        key="match_embed_first",
        help="Loads the pipeline's image model (TensorFlow) and embeds what is missing; "
        "models are trained only with the buttons above.",
    )
    pipes = common.pipelines()
    for column, pipe in zip(st.columns(len(pipes)), pipes, strict=True):
        with column:
            run = store.match_run(pipe.name)
            if run is None:
                st.caption(f"{pipe.title}: never run")
            else:
                pairs = store.match_counts().get(pipe.name, 0)
                when = datetime.fromtimestamp(run["computed_at"]).strftime("%Y-%m-%d %H:%M")
                st.caption(
                    f"{pipe.title}: {pairs:,} pairs, computed {when}"
                    + (" (catalog changed since)" if run["stale"] else "")
                )
            readiness = pipe.readiness(store, settings)
            st.caption(readiness.reason)
            if st.button(
                f"Match now: {pipe.name}", key=f"match_{pipe.name}", disabled=not readiness.ready
            ):
                _run_now(store, pipe, settings, embed_first)
    common.show_flashes(place="match")


def main() -> None:
    st.title("Embed and match")
    common.show_flashes()
    with common.open_store() as store:
        settings = common.load_settings(store)
        pipeline_bar.header(store, settings)
        _device(settings)
        images = int(store.info()["images"]["ok"])
        embedding_view.mobilenet_section(store, settings, images)
        st.divider()
        for pipe in common.pipelines():
            if not pipe.trainable:
                continue
            if pipe.trains_on_images:
                embedding_view.siamese_section(store, pipe, settings, images)
            else:
                _best(store, pipe, settings)
            st.divider()
        _match_now(store, settings)
    st.page_link(
        "pages/settings.py",
        label="Models, thresholds and the weights folder are chosen in Settings",
        icon=":material/tune:",
    )


common.run_page(main)
