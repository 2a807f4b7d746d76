"""Settings that belong to this computer, not to a catalog: the image models, how many photos
go through them at once and where their weights are. Set once, they apply to every catalog;
they live in the data folder, the thresholds in each catalog's database."""

from __future__ import annotations

import json
import logging
from typing import Any

from core.settings.match import SETTING_SPECS, MatchSettings
from core.settings.paths import data_dir

logger = logging.getLogger(__name__)

MACHINE_FILE = "machine_settings.json"
MACHINE_NAMES = frozenset(spec.name for spec in SETTING_SPECS if spec.scope == "machine")


def load_machine_values() -> dict[str, Any]:
    """This computer's saved machine settings (none when never saved or unreadable)."""
    path = data_dir() / MACHINE_FILE
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        logger.warning("ignoring unreadable %s: %s", path, exc)
        return {}
    if not isinstance(stored, dict):
        return {}
    return {k: v for k, v in stored.items() if k in MACHINE_NAMES}


def save_machine_values(settings: MatchSettings) -> None:
    """Write the machine settings atomically, so two app sessions never leave half a file."""
    values = {k: v for k, v in settings.to_dict().items() if k in MACHINE_NAMES}
    path = data_dir() / MACHINE_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(values, indent=2), encoding="utf-8")
    tmp.replace(path)
