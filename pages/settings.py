"""Settings page: every `MatchSettings` field of the current database, generated from the
settings' own descriptions (label, range, step, help), validated and saved."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import streamlit as st

from core import models
from core.errors import SameSameError
from core.settings import SETTING_SPECS, MatchSettings, SettingSpec, default_weights_dir, spec_of
from ui import common, pipeline_bar

MACHINE_NOTE = " This computer's setting: it applies to every catalog."


def _widget(spec: SettingSpec, value, key: str):
    """The input for one setting, from its spec."""
    if spec.scope == "machine":
        spec = dataclasses.replace(spec, help=spec.help + MACHINE_NOTE)
    if spec.kind is bool:
        return st.toggle(spec.label, value, key=key, help=spec.help)
    if spec.choices is not None:
        options = list(spec.choices)
        return st.selectbox(spec.label, options, options.index(value), key=key, help=spec.help)
    if spec.kind is str:
        placeholder = str(default_weights_dir()) if spec.name == "weights_dir" else None
        return st.text_input(spec.label, value, key=key, help=spec.help, placeholder=placeholder)
    return st.number_input(
        spec.label,
        spec.kind(spec.minimum),
        spec.kind(spec.maximum),
        spec.kind(value),
        spec.kind(spec.step),
        key=key,
        help=spec.help,
    )


def _groups(advanced: bool) -> dict[str, list[SettingSpec]]:
    grouped: dict[str, list[SettingSpec]] = {}
    for spec in SETTING_SPECS:
        if spec.advanced == advanced:
            grouped.setdefault(spec.group, []).append(spec)
    return grouped


def _inputs(groups: dict[str, list[SettingSpec]], current: MatchSettings, token: str) -> dict:
    values = {}
    for group, specs in groups.items():
        st.markdown(f"**{group}**")
        columns = st.columns(min(3, len(specs)))
        for i, spec in enumerate(specs):
            with columns[i % len(columns)]:
                values[spec.name] = _widget(
                    spec, getattr(current, spec.name), f"s_{spec.name}_{token}"
                )
    return values


def _form(current: MatchSettings) -> dict | None:
    token = common.settings_token(current)
    # Enter in a field (the weights folder's path, a threshold) must not save half-typed
    # settings: only the button saves.
    with st.form("settings_form", enter_to_submit=False):
        values = _inputs(_groups(advanced=False), current, token)
        with st.expander("Advanced: neighbour search, Siamese details, best matcher training"):
            values |= _inputs(_groups(advanced=True), current, token)
        if not st.form_submit_button("Save settings", type="primary", icon=":material/save:"):
            return None
    return values


def main() -> None:
    st.title("Settings")
    db = common.current_db()
    st.caption(
        f"Thresholds and matching options are saved with {common.catalog_label(db)} (`{db}`). "
        "The image models, the batch size, the inference engine and the weights folder belong "
        "to this computer: set once, they apply to every catalog."
    )
    common.show_flashes()
    with common.open_store() as store:
        current = common.load_settings(store)
        pipeline_bar.header(store, current)
        st.caption(models.calibration_summary(models.siamese_dir(store)))
        values = _form(current)
        if values is not None:
            weights = str(values["weights_dir"]).strip()
            if weights and not Path(weights).expanduser().is_dir():
                st.error(f"Weights folder {weights} does not exist; give an existing folder.")
                return
            try:
                chosen = current.with_values(values)
            except SameSameError as exc:
                st.error(str(exc))
                return
            store.save_settings(chosen)
            changed = [
                spec_of(k).label for k, v in chosen.to_dict().items() if current.to_dict()[k] != v
            ]
            common.flash(
                "success",
                "Settings saved" + (f" (changed: {', '.join(changed)})." if changed else "."),
            )
            st.rerun()
        if st.button("Reset to defaults", key="settings_reset"):
            # The form's widget keys follow the stored settings, so they show the defaults next.
            store.save_settings(MatchSettings())
            common.flash("success", "Settings reset to the defaults.")
            st.rerun()


common.run_page(main)
