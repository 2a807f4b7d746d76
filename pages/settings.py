"""Settings page: every `MatchSettings` field of the current database, validated and saved."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from core.errors import SameSameError
from core.settings import MatchSettings, default_weights_dir
from pages import common

BACKBONES = ["mobilenet", "mobilenetv2", "vgg16"]
ALPHAS = [0.25, 0.5, 0.75, 1.0]
BACKENDS = ["auto", "sklearn", "faiss", "hnsw"]


def _form(current: MatchSettings) -> dict | None:
    token = common.settings_token(current)
    with st.form("settings_form"):
        st.markdown("**Baseline thresholds**")
        a, b, c = st.columns(3)
        values = {
            "baseline_image_cosine": a.number_input(
                "Image cosine ≥",
                0.0,
                1.0,
                current.baseline_image_cosine,
                0.01,
                key=f"s_img_{token}",
            ),
            "baseline_text_cosine": b.number_input(
                "TF-IDF title cosine ≥",
                0.0,
                1.0,
                current.baseline_text_cosine,
                0.01,
                key=f"s_txt_{token}",
            ),
            "hash_max_distance": c.number_input(
                "Perceptual-hash bits ≤", 0, 64, current.hash_max_distance, 1, key=f"s_hash_{token}"
            ),
        }
        st.markdown("**Ensemble thresholds**")
        a, b, c = st.columns(3)
        values |= {
            "ensemble_image_distance": a.number_input(
                "Siamese distance <",
                0.0,
                2.0,
                current.ensemble_image_distance,
                0.01,
                key=f"s_dist_{token}",
            ),
            "ensemble_text_ratio": b.number_input(
                "Title ratio >", 0.0, 1.0, current.ensemble_text_ratio, 0.01, key=f"s_ratio_{token}"
            ),
            "ensemble_combined": c.number_input(
                "Distance + (1 − ratio) <",
                0.0,
                3.0,
                current.ensemble_combined,
                0.01,
                key=f"s_comb_{token}",
            ),
        }
        st.markdown("**Baseline image model**")
        a, b, c = st.columns(3)
        values |= {
            "image_backbone": a.selectbox(
                "Backbone",
                BACKBONES,
                BACKBONES.index(current.image_backbone),
                key=f"s_backbone_{token}",
            ),
            "image_alpha": b.selectbox(
                "MobileNet alpha (width)",
                ALPHAS,
                ALPHAS.index(current.image_alpha),
                key=f"s_alpha_{token}",
                help="1.0 is the original; 0.25 is the one whose weights ship offline here.",
            ),
            "image_size": c.number_input(
                "Input pixels", 32, 1024, current.image_size, 16, key=f"s_size_{token}"
            ),
        }
        st.markdown("**Siamese model (ensemble)**")
        a, b, c, d = st.columns(4)
        values |= {
            "siamese_backbone": a.selectbox(
                "Backbone",
                BACKBONES,
                BACKBONES.index(current.siamese_backbone),
                key=f"s_sbackbone_{token}",
            ),
            "siamese_alpha": b.selectbox(
                "MobileNet alpha",
                ALPHAS,
                ALPHAS.index(current.siamese_alpha),
                key=f"s_salpha_{token}",
            ),
            "siamese_image_size": c.number_input(
                "Input pixels", 32, 1024, current.siamese_image_size, 8, key=f"s_ssize_{token}"
            ),
            "siamese_epochs": d.number_input(
                "Epochs", 1, 500, current.siamese_epochs, 1, key=f"s_epochs_{token}"
            ),
        }
        st.markdown("**Runtime**")
        a, b, c = st.columns(3)
        values |= {
            "batch_size": a.number_input(
                "Batch size", 1, 4096, current.batch_size, 8, key=f"s_bs_{token}"
            ),
            "top_k": b.number_input(
                "Neighbours per posting", 1, 1000, current.top_k, 5, key=f"s_k_{token}"
            ),
            "neighbour_backend": c.selectbox(
                "Neighbour search",
                BACKENDS,
                BACKENDS.index(current.neighbour_backend),
                key=f"s_backend_{token}",
            ),
        }
        values["weights_dir"] = st.text_input(
            "Weights folder",
            current.weights_dir,
            key=f"s_weights_{token}",
            placeholder=str(default_weights_dir()),
            help="Folder holding Keras ImageNet .h5 files, for machines without internet.",
        )
        values["translate_titles"] = st.toggle(
            "Translate titles to English before the ensemble (needs internet)",
            current.translate_titles,
            key=f"s_translate_{token}",
        )
        if not st.form_submit_button("Save settings", type="primary", icon=":material/save:"):
            return None
    return values


def main() -> None:
    st.title("Settings")
    db = common.current_db()
    st.caption(f"Saved per database: these apply to {common.catalog_label(db)} (`{db}`).")
    common.show_flashes()
    with common.open_store() as store:
        current = common.load_settings(store)
        values = _form(current)
        if values is not None:
            weights = values["weights_dir"].strip()
            if weights and not Path(weights).expanduser().is_dir():
                st.error(f"Weights folder {weights} does not exist; give an existing folder.")
                return
            try:
                chosen = MatchSettings.from_dict({**current.to_dict(), **values})
            except SameSameError as exc:
                st.error(str(exc))
                return
            store.save_settings(chosen)
            changed = [k for k, v in chosen.to_dict().items() if current.to_dict()[k] != v]
            common.flash(
                "success",
                "Settings saved" + (f" ({', '.join(changed)} changed)." if changed else "."),
            )
            st.rerun()
        if st.button("Reset to defaults", key="settings_reset"):
            # The form's widget keys follow the stored settings, so they show the defaults next.
            store.save_settings(MatchSettings())
            common.flash("success", "Settings reset to the defaults.")
            st.rerun()


common.run_page(main)
