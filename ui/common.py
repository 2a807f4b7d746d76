"""What every page shares: the current database, opening it per rerun, error display, progress."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import streamlit as st

from core.embedders import backbones
from core.errors import SameSameError
from core.pipelines import PIPELINES, get_pipeline
from core.settings import MatchSettings, data_dir
from core.store import Store
from core.workspace import default_db_path, demo_db_path
from ui import navigation
from ui.progress import ProgressBar as ProgressBar  # re-exported: pages use common's
from ui.progress import format_seconds as format_seconds

logger = logging.getLogger(__name__)

DB_KEY = "db_path"
APP_STATE_FILE = "app_state.json"
CATALOGS_FOLDER = "catalogs"
_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


# -- which database ------------------------------------------------------------------------
def app_state_path() -> Path:
    return data_dir() / APP_STATE_FILE


def remembered_db() -> Path | None:
    """The database used last time, if that file still exists (a restart reopens it)."""
    try:
        stored = json.loads(app_state_path().read_text(encoding="utf-8")).get("last_db")
    except (OSError, ValueError, AttributeError):
        return None
    if stored and Path(stored).is_file():
        return Path(stored)
    return None


def remember_db(path: Path) -> None:
    target = app_state_path()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".tmp")
        tmp.write_text(json.dumps({"last_db": str(path)}), encoding="utf-8")
        tmp.replace(target)  # atomic, so two sessions never leave half a file
    except OSError as exc:
        # Remembering is a convenience; the app works without it.
        logger.warning("could not remember the last database in %s: %s", target, exc)


def current_db() -> Path:
    """This session's database: chosen earlier, else the one used last time, else the demo."""
    if DB_KEY not in st.session_state:
        st.session_state[DB_KEY] = str(remembered_db() or demo_db_path())
    return Path(st.session_state[DB_KEY])


def set_current_db(path: Path) -> None:
    st.session_state[DB_KEY] = str(path)
    remember_db(path)


def is_demo(path: Path) -> bool:
    return Path(path) == demo_db_path()


def catalog_label(path: Path) -> str:
    return "Demo catalog" if is_demo(path) else Path(path).stem


def known_databases() -> list[Path]:
    """Databases the catalog switcher offers: the demo, the CLI's default, imported catalogs."""
    found = [demo_db_path()]
    if default_db_path().is_file():
        found.append(default_db_path())
    found += sorted((data_dir() / CATALOGS_FOLDER).glob("*.db"))
    current = current_db()
    if current not in found:
        found.append(current)
    return found


def _catalog_file(name: str) -> Path:
    return data_dir() / CATALOGS_FOLDER / f"{name}.db"


def new_catalog_path(name: str) -> Path:
    """Where a new database called ``name`` lives.

    Raises:
        SameSameError: the name is not a plain file name, or that catalog exists already.
    """
    name = name.strip()
    if not _NAME_PATTERN.match(name):
        raise SameSameError(
            f"Catalog name {name!r} is not usable: use 1–64 letters, digits, '-' or '_', "
            "starting with a letter or digit."
        )
    path = _catalog_file(name)
    if path.exists():
        raise SameSameError(
            f"A catalog called {name!r} exists already. Pick another name, or switch to it in "
            "the sidebar and import into the current database."
        )
    return path


def default_catalog_name(source_label: str) -> str:
    """A free catalog name from the imported file's name ("shopee train.csv" → "shopee-train",
    then "shopee-train-2" when that one exists)."""
    stem = re.sub(r"[^A-Za-z0-9_-]+", "-", Path(source_label).stem).strip("-_")[:56] or "catalog"
    candidate, number = stem, 2
    while _catalog_file(candidate).exists():
        candidate, number = f"{stem}-{number}", number + 1
    return candidate


@contextmanager
def open_store() -> Iterator[Store]:
    """The current database for this rerun only: sqlite connections must not cross threads,
    so nothing keeps it (opening is a few milliseconds)."""
    store = Store(current_db())
    try:
        yield store
    finally:
        store.close()


def load_settings(store: Store) -> MatchSettings:
    """This database's settings; stored values that no longer validate fall back to defaults."""
    try:
        return store.load_settings()
    except SameSameError as exc:
        st.warning(f"Stored settings are invalid ({exc}); using the defaults until you save.")
        return MatchSettings()


# -- errors and progress ---------------------------------------------------------------------
def run_page(body: Callable[[], None]) -> None:
    """Run a page body (in a run app.py started: ``ui.navigation.hand_over_to_app``); a problem
    the user can fix is shown as an error box, not a traceback."""
    if navigation.hand_over_to_app():
        return
    try:
        body()
    except SameSameError as exc:
        st.error(str(exc))
    except OSError as exc:
        # Paths typed by the user: permissions, a full disk, a folder that vanished.
        st.error(f"File problem: {exc}")


# -- small renderers --------------------------------------------------------------------------
def posting_label(posting_id: str, title, width: int = 90) -> str:
    """ "id · title" for lists and captions, cut at ``width`` characters; "id (no title)" when
    the posting has none (never an id and a dot with nothing after it)."""
    text = title.strip() if isinstance(title, str) else ""
    if not text:
        return f"{posting_id} (no title)"
    return f"{posting_id} · {text[:width]}{'…' if len(text) > width else ''}"


#: A table row with a photo: the photo is about this many pixels (50 were too small to tell
#: two products apart), and a long title wraps onto more lines instead of being cut off.
THUMB_ROW_HEIGHT = 128


def table_height(rows: int, max_rows: int = 12, row_height: int = THUMB_ROW_HEIGHT) -> int:
    """Pixel height showing every row up to ``max_rows`` (plus the header), no inner scroll."""
    return min(rows, max_rows) * row_height + 40


def score_columns(frame: pd.DataFrame) -> dict[str, st.column_config.Column]:
    """Readable headers and number formats for the per-pair score columns."""
    number = st.column_config.NumberColumn
    config = {
        "image_cosine": number(
            "image cos",
            format="%.3f",
            help="How alike the two photos look to the image model: 1 = the same picture, "
            "about 0.85 and up is usually the same product (the baseline's threshold).",
        ),
        "hash_distance": number(
            "hash bits",
            format="%d",
            help="How many of the 64 bits of the photos' perceptual hashes differ: 0 = the same "
            "picture, up to about 8 = the same picture resized, cropped a little or recompressed.",
        ),
        "tfidf_cosine": number(
            "TF-IDF cos",
            format="%.3f",
            help="How many words, rare ones weighing more, the two titles share: 1 = the same "
            "words; 0.5 and up counts as a match for the baseline.",
        ),
        "text_ratio": number(
            "title ratio",
            format="%.3f",
            help="How much of the two titles' text lines up letter by letter (difflib's "
            "ratio): 1 = identical; the ensemble calls above 0.55 a match.",
        ),
        "siamese_distance": number(
            "Siamese dist",
            format="%.3f",
            help="Distance between the photos as the trained Siamese network sees them: 0 = "
            "the same; the ensemble calls below 0.95 a match. Smaller is more alike.",
        ),
        "probability": number(
            "match prob.",
            format="%.3f",
            help="The learned best matcher's estimate that the two postings are the same "
            "product, from all the evidence together.",
        ),
        "similarity": st.column_config.ProgressColumn(
            "similarity",
            min_value=0.0,
            max_value=1.0,
            format="%.2f",
            width="small",
            help="The pipeline's overall score for the pair, 0 to 1: what the matches are "
            "ranked by.",
        ),
        "rule": st.column_config.TextColumn(
            "rule",
            help="Which rule made the match: image, hash or text, several joined by '+'; "
            "for the best matcher 'model' (its probability passed the threshold) or 'nearest' "
            "(nothing passed, so the closest posting is kept).",
        ),
        "thumbnail": st.column_config.ImageColumn("photo", width=THUMB_ROW_HEIGHT),
        "title": st.column_config.TextColumn("title", width="large"),
    }
    return {k: v for k, v in config.items() if k in frame.columns}


def pipelines():
    """The registered pipelines, in the registry's order."""
    return list(PIPELINES.values())


def show_run_notices(store: Store, pipeline: str) -> None:
    """What the pipeline's stored run reported (fallbacks, postings at the cap)."""
    run = store.match_run(pipeline)
    for notice in (run or {}).get("notices", []):
        st.caption(f":material/info: {notice}")


IN_SAMPLE = (
    ":material/warning: In-sample: this pipeline's model learnt from this catalog's own labels, "
    "so its scores here overstate what it does on products it never saw (BENCHMARKS.md has "
    "held-out figures)."
)


def in_sample_note(store: Store, pipe) -> None:
    """Say so wherever a score comes from a model trained on this very catalog."""
    if pipe.in_sample(store):
        st.caption(IN_SAMPLE)


#: Below this F1 an untrained rule on a labelled catalog gets a word on what to do.
LOW_F1 = 0.5


def untrained_rule_note(figures: dict[str, float]) -> str | None:
    """For a newcomer: the untrained rule pipelines' low F1 (``figures``: pipeline name -> F1;
    pipelines with a trained model are left out) on the demo, or below `LOW_F1` on another
    labelled catalog, is expected, and training the best matcher is what to do."""
    rules = {name: f1 for name, f1 in figures.items() if not get_pipeline(name).needs_model}
    if not rules:
        return None
    scores = " and ".join(f"{f1:.2f} ({name})" for name, f1 in rules.items())
    if is_demo(current_db()):
        many = len(rules) > 1
        return (
            f"F1 {scores} {'are' if many else 'is'} expected on the demo: "
            + (
                "the untrained rules' thresholds were"
                if many
                else "this untrained rule's thresholds were"
            )
            + " set on real Shopee photos and titles, and the demo's drawn photos and made-up "
            f"titles fool {'them' if many else 'it'}. Train the best matcher on the Embed "
            "page: it learns from the demo's labels (out-of-fold F1 about 0.88 here)."
        )
    low = {name: f1 for name, f1 in rules.items() if f1 < LOW_F1}
    if not low:
        return None
    scores = " and ".join(f"{f1:.2f} ({name})" for name, f1 in low.items())
    return (
        f"A low F1 ({scores}) is expected of an untrained rule on another kind of catalog than "
        "Shopee's, where its thresholds were set. This catalog has labels: train the best "
        "matcher on the Embed page to learn from them."
    )


# -- messages that survive the rerun after an action -----------------------------------------
_FLASH_KEY = "flash_messages"


def flash(kind: str, text: str, place: str = "top") -> None:
    """Queue a message for the next run: actions rerun the page so every count is fresh.
    ``place`` names where it is shown, so the answer appears next to the button that asked."""
    st.session_state.setdefault(_FLASH_KEY, []).append((kind, text, place))


def show_flashes(place: str = "top") -> None:
    """Show (once) the queued messages meant for ``place``."""
    queued = st.session_state.get(_FLASH_KEY, [])
    st.session_state[_FLASH_KEY] = [m for m in queued if m[2] != place]
    for kind, text, _ in (m for m in queued if m[2] == place):
        {"success": st.success, "info": st.info, "warning": st.warning, "error": st.error}[kind](
            text
        )


def weights_note(backbone: str, alpha: float, image_size: int, settings: MatchSettings) -> str:
    """Whether the ImageNet weights for a backbone are on this machine (no TensorFlow)."""
    return backbones.weights_note(backbone, alpha, image_size, settings.resolved_weights_dir())


def settings_token(settings: MatchSettings) -> str:
    """A short tag for widget keys: widgets showing settings start over when the database or
    its stored settings change, instead of keeping values typed for another catalog."""
    import hashlib

    text = json.dumps([str(current_db()), settings.to_dict()], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:10]
