"""Evaluate page: F1 / precision / recall against the catalog's label_group, threshold tuning,
an F1-vs-threshold curve, the worst postings, and the submission CSV."""

from __future__ import annotations

import functools
import json

import pandas as pd
import streamlit as st

from core import service
from core.errors import SameSameError
from core.matches import MatchResult
from core.settings import MatchSettings
from core.store import Store
from pages import common, resources

TRIAL_KEY = "evaluate_trial"
#: Pipelines whose thresholds are settings (best learns its own).
THRESHOLD_PIPELINES = ("baseline", "ensemble")

#: Thresholds the curve can sweep: (label, pipeline it belongs to, values tried).
CURVES: dict[str, tuple[str, str, tuple[float, ...]]] = {
    "baseline_text_cosine": (
        "Baseline TF-IDF title cosine",
        "baseline",
        (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9),
    ),
    "ensemble_text_ratio": (
        "Ensemble title ratio",
        "ensemble",
        (0.35, 0.45, 0.55, 0.65, 0.75, 0.85),
    ),
    "hash_max_distance": ("Perceptual-hash bits (baseline)", "baseline", (0, 4, 8, 12, 16, 20)),
}


def _metric_row(metrics: dict[str, float], reference: dict[str, float] | None = None) -> None:
    columns = st.columns(3)
    for column, name in zip(columns, ("f1", "precision", "recall"), strict=True):
        delta = None
        if reference is not None:
            delta = f"{metrics[name] - reference[name]:+.3f}"
        column.metric(
            name.upper() if name == "f1" else name.capitalize(), f"{metrics[name]:.3f}", delta=delta
        )


def _stored(store: Store) -> dict[str, dict[str, float] | None]:
    st.subheader("Stored matches")
    found: dict[str, dict[str, float] | None] = {}
    has_best = service.best_model_info(service.best_dir(store)) is not None
    for column, pipeline in zip(st.columns(len(common.PIPELINES)), common.PIPELINES, strict=True):
        with column:
            st.markdown(f"**{common.PIPELINE_TITLES[pipeline]}**")
            metrics = resources.stored_metrics(store, pipeline)
            found[pipeline] = metrics
            if metrics is None:
                untrained = pipeline == service.BEST and not has_best
                st.caption("Train it on the Embed page first." if untrained else "Not run yet.")
                if st.button(
                    f"Run {pipeline} now", key=f"evaluate_run_{pipeline}", disabled=untrained
                ):
                    with st.spinner(f"Matching with the {pipeline} pipeline…"):
                        service.run_pipeline(store, pipeline, common.load_settings(store))
                    st.rerun()
                continue
            _metric_row(metrics)
            run = store.match_run(pipeline)
            st.caption(
                f"{store.match_counts().get(pipeline, 0):,} pairs · computed in "
                f"{run['seconds']:.1f} s over {int(metrics['postings']):,} labelled postings"
            )
            if pipeline == service.BEST and has_best:
                st.caption(
                    "In-sample when the model was trained on this catalog's labels; "
                    "BENCHMARKS.md has held-out figures."
                )
            note = common.stale_note(store, pipeline)
            if note:
                st.warning(note)
    return found


def _threshold_form(settings: MatchSettings) -> MatchSettings | None:
    token = common.settings_token(settings)
    with st.form("thresholds"):
        base, ens = st.columns(2)
        with base:
            st.markdown("**Baseline**")
            image_cos = st.slider(
                "Image cosine ≥",
                0.0,
                1.0,
                settings.baseline_image_cosine,
                0.01,
                key=f"t_img_{token}",
            )
            text_cos = st.slider(
                "TF-IDF title cosine ≥",
                0.0,
                1.0,
                settings.baseline_text_cosine,
                0.01,
                key=f"t_txt_{token}",
            )
            hash_bits = st.slider(
                "Perceptual-hash distance ≤ (bits, both pipelines)",
                0,
                32,
                settings.hash_max_distance,
                1,
                key=f"t_hash_{token}",
            )
        with ens:
            st.markdown("**Ensemble**")
            distance = st.slider(
                "Siamese distance <",
                0.0,
                2.0,
                settings.ensemble_image_distance,
                0.01,
                key=f"t_dist_{token}",
            )
            ratio = st.slider(
                "Title ratio >",
                0.0,
                1.0,
                settings.ensemble_text_ratio,
                0.01,
                key=f"t_ratio_{token}",
            )
            combined = st.slider(
                "Distance + (1 − ratio) <",
                0.0,
                3.0,
                settings.ensemble_combined,
                0.01,
                key=f"t_comb_{token}",
            )
        if not st.form_submit_button("Recompute", type="primary", icon=":material/refresh:"):
            return None
    return settings.replace(
        baseline_image_cosine=image_cos,
        baseline_text_cosine=text_cos,
        hash_max_distance=int(hash_bits),
        ensemble_image_distance=distance,
        ensemble_text_ratio=ratio,
        ensemble_combined=combined,
    )


def _trial(store: Store, settings: MatchSettings, stored: dict) -> None:
    st.subheader("Try other thresholds")
    st.caption(
        "Recompute the baseline and ensemble matches with these thresholds without saving them "
        "(the best matcher's thresholds are learned in training)."
    )
    trial = _threshold_form(settings)
    if trial is not None:
        metrics: dict[str, dict[str, float]] = {}
        with st.spinner("Matching with the new thresholds…"):
            for pipeline in THRESHOLD_PIPELINES:
                result = service.run_pipeline(store, pipeline, trial, save=False)
                metrics[pipeline] = service.evaluate_result(store, result)
        st.session_state[TRIAL_KEY] = {
            "db": str(store.path),
            "revision": store.catalog_revision,
            "settings": trial.to_dict(),
            "metrics": metrics,
        }
    saved = st.session_state.get(TRIAL_KEY)
    if not saved or saved["db"] != str(store.path) or saved["revision"] != store.catalog_revision:
        return
    for column, pipeline in zip(st.columns(2), THRESHOLD_PIPELINES, strict=True):
        with column:
            st.markdown(f"**{pipeline} with the new thresholds**")
            _metric_row(saved["metrics"][pipeline], stored.get(pipeline))
    if st.button("Save these thresholds as this catalog's settings", key="t_save"):
        store.save_settings(MatchSettings.from_dict(saved["settings"]))
        common.flash("success", "Thresholds saved; run the pipelines again to store new matches.")
        st.rerun()


def _curve(store: Store, settings: MatchSettings) -> None:
    st.subheader("F1 against one threshold")
    threshold = st.selectbox(
        "Threshold", list(CURVES), format_func=lambda k: CURVES[k][0], key="curve_threshold"
    )
    label, pipeline, values = CURVES[threshold]
    st.caption(
        f"Runs the {pipeline} pipeline {len(values)} times, with perceptual hashes as the only "
        "image evidence (fast, nothing saved)."
    )
    wanted = st.session_state.setdefault("curves_drawn", set())
    if st.button("Draw the curve", key="curve_draw"):
        wanted.add(threshold)
    if threshold not in wanted:
        return
    with st.spinner(f"Sweeping {label}…"):
        curve = resources.f1_curve(
            str(store.path),
            store.catalog_revision,
            json.dumps(settings.to_dict()),
            pipeline,
            threshold,
            values,
        )
    best = curve.loc[curve["f1"].idxmax()]
    st.line_chart(
        curve.set_index(threshold)[["f1", "precision", "recall"]],
        x_label=label,
        y_label="score",
        height=260,
    )
    st.caption(f"Best F1 {best['f1']:.3f} at {threshold} = {best[threshold]:g}")


def _worst(store: Store, results: dict[str, MatchResult | None]) -> None:
    st.subheader("Worst postings")
    available = [p for p, r in results.items() if r is not None]
    if not available:
        st.caption("Run a pipeline to see which postings it gets most wrong.")
        return
    pipeline = st.segmented_control(
        "Pipeline", available, default=available[0], key="worst_pipeline", required=True
    )
    worst = resources.worst_postings(store, pipeline)
    postings = resources.postings_of(store).set_index("posting_id")
    worst.insert(1, "title", postings.loc[worst["posting_id"], "title"].to_numpy())
    worst.insert(0, "image_path", postings.loc[worst["posting_id"], "image_path"].to_numpy())
    shown = resources.with_thumbnails(worst).drop(columns=["image_path"])
    st.dataframe(
        shown,
        hide_index=True,
        width="stretch",
        row_height=common.THUMB_ROW_HEIGHT,
        height=common.table_height(len(shown)),
        column_config={
            **common.score_columns(shown),
            "f1": st.column_config.NumberColumn("F1", format="%.3f"),
            "precision": st.column_config.NumberColumn(format="%.3f"),
            "recall": st.column_config.NumberColumn(format="%.3f"),
            "predicted": st.column_config.NumberColumn("predicted set"),
            "true": st.column_config.NumberColumn("true set"),
        },
    )


def _submission_csv(result: MatchResult) -> str:
    return result.submission().to_csv(index=False)


def _downloads(store: Store, results: dict[str, MatchResult | None]) -> None:
    st.subheader("Submission file")
    st.caption("posting_id,matches (space-separated ids), the competition's layout.")
    columns = st.columns(len(common.PIPELINES))
    for column, pipeline in zip(columns, common.PIPELINES, strict=True):
        result = results[pipeline]
        if result is None:
            continue
        stem = store.path.stem if store.path is not None else "catalog"
        column.download_button(
            f"Download {pipeline} submission.csv",
            # Built on click only: for a large catalog the CSV is megabytes.
            data=functools.partial(_submission_csv, result),
            file_name=f"{stem}-{pipeline}-submission.csv",
            mime="text/csv",
            key=f"download_{pipeline}",
            on_click="ignore",
            icon=":material/download:",
        )


def main() -> None:
    st.title("Evaluate")
    common.show_flashes()
    with common.open_store() as store:
        results = {p: resources.stored_result(store, p) for p in common.PIPELINES}
        labels = service.labels_of(store)
        if labels is None:
            st.info(
                "This catalog has no label_group column, so there is nothing to score against. "
                "Import a labelled catalog (or use the demo) to evaluate."
            )
            _downloads(store, results)
            return
        groups = pd.Series(labels).nunique()
        st.caption(f"{len(labels):,} labelled postings in {groups:,} label groups.")
        settings = common.load_settings(store)
        stored = _stored(store)
        st.divider()
        try:
            _trial(store, settings, stored)
        except SameSameError as exc:
            st.error(str(exc))
        st.divider()
        _curve(store, settings)
        st.divider()
        _worst(store, results)
        st.divider()
        _downloads(store, results)


common.run_page(main)
