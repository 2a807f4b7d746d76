"""Evaluate page: F1 / precision / recall against the catalog's label_group (of each
posting's matches and of its cluster), threshold tuning, an F1-vs-threshold curve for every
threshold, the worst postings, and the submission CSV."""

from __future__ import annotations

import functools
import json

import numpy as np
import pandas as pd
import streamlit as st

from core.errors import SameSameError
from core.evaluation import evaluate_result
from core.matching import run_pipeline, stored_result
from core.pipeline_choice import run_state
from core.pipelines import Pipeline, get_pipeline
from core.review_estimates import review_estimates
from core.settings import MatchSettings, SettingSpec, spec_of
from core.store import Store
from ui import common, pipeline_bar, resources

TRIAL_KEY = "evaluate_trial"
CURVE_POINTS = 9


def _tuned_pipelines() -> list[Pipeline]:
    """Pipelines whose rules read thresholds from the settings (best learns its own)."""
    return [pipe for pipe in common.pipelines() if pipe.threshold_fields]


def _metric_row(metrics: dict[str, float], reference: dict[str, float] | None = None) -> None:
    """F1, precision and recall; against ``reference``, each one's change (a gain green, a
    loss red, none a grey "no change": a green "+0.000" read as a gain)."""
    columns = st.columns(3)
    for column, name in zip(columns, ("f1", "precision", "recall"), strict=True):
        delta, colour, arrow = None, "normal", "auto"
        if reference is not None:
            change = round(metrics[name] - reference[name], 3)
            delta = f"{change:+.3f}" if change else "no change"
            colour, arrow = ("normal", "auto") if change else ("off", "off")
        column.metric(
            name.upper() if name == "f1" else name.capitalize(),
            f"{metrics[name]:.3f}",
            delta=delta,
            delta_color=colour,
            delta_arrow=arrow,
        )


def _run_now(store: Store, pipe: Pipeline) -> None:
    readiness = pipe.readiness(store, common.load_settings(store))
    if not readiness.ready:
        st.caption(f"{readiness.reason} {readiness.action or ''}".strip())
        return
    st.caption("Not run yet.")
    if st.button(f"Run {pipe.name} now", key=f"evaluate_run_{pipe.name}"):
        with st.spinner(f"Matching with the {pipe.name} pipeline…"):
            run_pipeline(store, pipe.name, common.load_settings(store))
        st.rerun()


def _stored(store: Store) -> dict[str, dict[str, float] | None]:
    st.subheader("Stored matches")
    found: dict[str, dict[str, float] | None] = {}
    pipes = common.pipelines()
    for column, pipe in zip(st.columns(len(pipes)), pipes, strict=True):
        with column:
            st.markdown(f"**{pipe.title}**")
            metrics = resources.stored_metrics(store, pipe.name)
            found[pipe.name] = metrics
            if metrics is None:
                _run_now(store, pipe)
                continue
            _metric_row(metrics)
            run = store.match_run(pipe.name)
            st.caption(
                f"{store.match_counts().get(pipe.name, 0):,} pairs · computed in "
                f"{run['seconds']:.1f} s over {int(metrics['postings']):,} labelled postings · "
                f"as clusters: F1 {metrics['cluster_f1']:.3f}"
            )
            common.in_sample_note(store, pipe)
            common.show_run_notices(store, pipe.name)
            state = run_state(store, pipe.name)
            if not state.current:
                st.warning(f"**{state.headline}**  \n{state.details}")
    note = common.untrained_rule_note({k: v["f1"] for k, v in found.items() if v is not None})
    if note:
        st.info(note, icon=":material/school:")
    return found


def _slider(spec: SettingSpec, value, token: str, label: str | None = None):
    kind = spec.kind
    return st.slider(
        label or spec.label,
        kind(spec.minimum),
        kind(spec.maximum),
        kind(value),
        kind(spec.step),
        key=f"t_{spec.name}_{token}",
        help=spec.help,
    )


def _threshold_form(settings: MatchSettings) -> MatchSettings | None:
    token = common.settings_token(settings)
    pipes = _tuned_pipelines()
    values: dict = {}
    shown_by: dict[str, str] = {}
    with st.form("thresholds"):
        for column, pipe in zip(st.columns(len(pipes)), pipes, strict=True):
            with column:
                st.markdown(f"**{pipe.title}**")
                for name in pipe.threshold_fields:
                    if name in shown_by:
                        st.caption(f"{spec_of(name).label}: set under {shown_by[name]}")
                        continue
                    shown_by[name] = pipe.name
                    values[name] = _slider(spec_of(name), getattr(settings, name), token)
        if not st.form_submit_button("Recompute", type="primary", icon=":material/refresh:"):
            return None
    return settings.replace(**values)


def _trial(store: Store, settings: MatchSettings, stored: dict) -> None:
    st.subheader("Try other thresholds")
    st.caption(
        "Recompute the matches with these thresholds without saving them (a learned "
        "pipeline's thresholds are tuned in training)."
    )
    trial = _threshold_form(settings)
    pipes = _tuned_pipelines()
    if trial is not None:
        metrics: dict[str, dict[str, float]] = {}
        with st.spinner("Matching with the new thresholds…"):
            for pipe in pipes:
                result = run_pipeline(store, pipe.name, trial, save=False)
                metrics[pipe.name] = evaluate_result(store, result)
        st.session_state[TRIAL_KEY] = {
            "db": str(store.path),
            "revision": store.catalog_revision,
            "settings": trial.to_dict(),
            "metrics": metrics,
        }
    saved = st.session_state.get(TRIAL_KEY)
    if not saved or saved["db"] != str(store.path) or saved["revision"] != store.catalog_revision:
        return
    for column, pipe in zip(st.columns(len(pipes)), pipes, strict=True):
        with column:
            st.markdown(f"**{pipe.name} with the new thresholds**")
            _metric_row(saved["metrics"][pipe.name], stored.get(pipe.name))
    if st.button("Save these thresholds as this catalog's settings", key="t_save"):
        store.save_settings(MatchSettings.from_dict(saved["settings"]))
        common.flash("success", "Thresholds saved; run the pipelines again to store new matches.")
        st.rerun()


def curve_values(spec: SettingSpec, current) -> tuple:
    """Evenly spread values over the threshold's range, the current one included."""
    values = np.linspace(spec.minimum, spec.maximum, CURVE_POINTS)
    if spec.kind is int:
        values = np.unique(np.round(values).astype(int))
    merged = sorted({*(spec.kind(v) for v in values.tolist()), spec.kind(current)})
    return tuple(merged)


def _curve(store: Store, settings: MatchSettings) -> None:
    st.subheader("F1 against one threshold")
    owners = {}
    for pipe in _tuned_pipelines():
        for name in pipe.threshold_fields:
            owners.setdefault(name, pipe.name)
    threshold = st.selectbox(
        "Threshold",
        list(owners),
        format_func=lambda k: f"{spec_of(k).label} ({owners[k]})",
        key="curve_threshold",
    )
    spec, pipeline = spec_of(threshold), owners[threshold]
    pipe = get_pipeline(pipeline)
    current = getattr(settings, threshold)
    values = curve_values(spec, current)
    st.caption(
        f"Runs the {pipeline} pipeline {len(values)} times with the catalog's stored vectors "
        "(nothing is saved)."
    )
    if threshold in pipe.image_threshold_fields and not pipe.vector_count(store, settings):
        st.warning(
            f"This catalog has no image vectors for the {pipeline} pipeline, so "
            f"{spec.label.lower()} decides nothing here (perceptual hashes stand in for the "
            "photos) and the curve is flat. Compute embeddings on the Embed page first.",
            icon=":material/image_not_supported:",
        )
    wanted = st.session_state.setdefault("curves_drawn", set())
    if st.button("Draw the curve", key="curve_draw"):
        wanted.add(threshold)
    if threshold not in wanted:
        return
    with st.spinner(f"Sweeping {spec.label}…"):
        curve = resources.f1_curve(
            str(store.path),
            store.catalog_revision,
            json.dumps(settings.to_dict()),
            pipeline,
            threshold,
            values,
        )
    best = curve.loc[curve["f1"].idxmax()]
    here = curve.loc[curve[threshold] == current].iloc[0]
    st.line_chart(
        curve.set_index(threshold)[["f1", "precision", "recall"]].rename(
            columns={"f1": "F1", "precision": "precision", "recall": "recall"}
        ),
        x_label=spec.label,
        y_label="score (1 = perfect)",
        height=260,
    )
    st.caption(
        f"Best F1 {best['f1']:.3f} at {spec.label} {best[threshold]:g}. At the current "
        f"setting ({current:g}) F1 is {here['f1']:.3f}" + _agreement(store, pipeline, here)
    )


def _agreement(store: Store, pipeline: str, here: pd.Series) -> str:
    """Whether the curve's point at the current settings is the stored matches' F1."""
    stored = resources.stored_metrics(store, pipeline)
    if stored is None:
        return "."
    if abs(stored["f1"] - here["f1"]) < 5e-4:
        return ", the same as the stored matches."
    return (
        f"; the stored matches score {stored['f1']:.3f} (they were computed with other "
        "settings or an older catalog: run the pipeline again)."
    )


def _worst(store: Store, chosen: Pipeline) -> None:
    st.subheader("Worst postings")
    available = [p.name for p in common.pipelines() if store.match_run(p.name) is not None]
    if not available:
        st.caption("Run a pipeline to see which postings it gets most wrong.")
        return
    default = chosen.name if chosen.name in available else available[0]
    pipeline = st.segmented_control(
        "Pipeline", available, default=default, key="worst_pipeline", required=True
    )
    worst = resources.worst_postings(store, pipeline)
    if worst.empty:
        return
    # Postings removed since the run have no title or photo any more.
    known = resources.catalog_view(store).by_id.reindex(worst["posting_id"])
    worst["title"] = known["title"].fillna("(removed from the catalog)").to_numpy()  # last
    worst.insert(0, "image_path", known["image_path"].to_numpy())
    shown = resources.with_thumbnails(worst).drop(columns=["image_path"])
    number = st.column_config.NumberColumn
    st.dataframe(
        shown,
        hide_index=True,
        width="stretch",
        row_height=common.THUMB_ROW_HEIGHT,
        height=common.table_height(len(shown)),
        # Narrow fixed widths: at 1400 px every column fits without sideways scrolling.
        column_config={
            **common.score_columns(shown),
            "posting_id": st.column_config.TextColumn("posting", width=110),
            "f1": number("F1", format="%.3f", width=60),
            "precision": number("precision", format="%.3f", width=75),
            "recall": number("recall", format="%.3f", width=60),
            "predicted": number(
                "found", width=60, help="How many postings it matched (itself included)."
            ),
            "true": number("true", width=55, help="How many postings share its label."),
            "unlabelled_matches": number(
                "no label", width=70, help="Matches with postings that have no label."
            ),
            "title": st.column_config.TextColumn("title", width=320),
        },
    )


def _from_reviews(store: Store) -> None:
    st.subheader("Estimated from your verdicts")
    st.page_link("pages/review.py", label="Review pairs", icon=":material/rule:")
    pipes = [p for p in common.pipelines() if store.match_run(p.name) is not None]
    if not pipes:
        st.caption("Run a pipeline first (Browse or Embed page).")
        return
    rows = []
    for pipe in pipes:
        found = review_estimates(store, pipe.name)
        for measure in ("precision", "recall"):
            estimate = found[measure] if found else None
            if estimate is None or not estimate.reviewed:
                rows.append({"pipeline": pipe.name, "measure": measure, "estimate": "—"})
                continue
            rows.append(
                {
                    "pipeline": pipe.name,
                    "measure": measure,
                    "estimate": f"{estimate.value:.0%}",
                    "95 % interval": f"{estimate.low:.0%}–{estimate.high:.0%}",
                    "from": f"{estimate.reviewed} pair(s)",
                    "for ±5 points": (
                        f"{estimate.more_needed} more" if estimate.more_needed else "—"
                    ),
                    "note": "" if estimate.unbiased else "hard pairs only: pessimistic",
                }
            )
    st.dataframe(pd.DataFrame(rows).fillna(""), hide_index=True, width="stretch")
    st.caption(
        "Precision: the share of a pipeline's matches you said are the same product (review "
        "a random sample of matches for an unbiased figure). Recall: of the pairs you said "
        "are the same, the share the pipeline found by itself."
    )


def _submission_csv(db_path: str, pipeline: str) -> str:
    with Store(db_path) as store:
        result = stored_result(store, pipeline)
    return "" if result is None else result.submission().to_csv(index=False)


def _downloads(store: Store) -> None:
    st.subheader("Submission file")
    st.caption("posting_id,matches (space-separated ids), the competition's layout.")
    pipes = [pipe.name for pipe in common.pipelines()]
    for column, pipeline in zip(st.columns(len(pipes)), pipes, strict=True):
        if store.match_run(pipeline) is None:
            continue
        stem = store.path.stem if store.path is not None else "catalog"
        column.download_button(
            f"Download {pipeline} submission.csv",
            # Built on click only: for a large catalog the CSV is megabytes.
            data=functools.partial(_submission_csv, str(store.path), pipeline),
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
        chosen = pipeline_bar.header(store)
        info = store.info()
        if not info["label_groups"]:
            st.info(
                "This catalog has no label_group column, so there is nothing to score against "
                "exactly: the figures below are estimated from your verdicts on the Review "
                "page."
            )
            _from_reviews(store)
            st.divider()
            _downloads(store)
            return
        st.caption(
            f"{info['labelled_postings']:,} labelled postings in {info['label_groups']:,} "
            "label groups."
        )
        settings = common.load_settings(store)
        for pipe in _tuned_pipelines():
            # What the sliders and the curve vary is the number each rule applies here.
            settings, _ = pipe.settings_for(store, settings, pin=True)
        stored = _stored(store)
        st.divider()
        try:
            _trial(store, settings, stored)
        except SameSameError as exc:
            st.error(str(exc))
        st.divider()
        _curve(store, settings)
        st.divider()
        _worst(store, chosen)
        st.divider()
        _downloads(store)


common.run_page(main)
