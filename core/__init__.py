"""SameSame's engine: catalog import, store, embedders, pipelines, metrics.

Importing ``core`` loads neither TensorFlow nor FAISS nor Streamlit; those are imported where
they are used.
"""

from __future__ import annotations

from core.errors import CatalogError, ImageError, SameSameError, WeightsUnavailableError
from core.matches import MatchResult
from core.settings import MatchSettings
from core.store import Store

__all__ = [
    "CatalogError",
    "ImageError",
    "MatchResult",
    "MatchSettings",
    "SameSameError",
    "Store",
    "WeightsUnavailableError",
]
