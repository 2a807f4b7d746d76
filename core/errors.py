"""The project's own error types: every failure a user can cause ends in one of these."""

from __future__ import annotations


class SameSameError(Exception):
    """Base class: a problem the user can fix, with a message that says how."""


class CatalogError(SameSameError, ValueError):
    """The catalog file as a whole cannot be imported (nothing was written)."""


class ImageError(SameSameError, ValueError):
    """One image cannot be used (missing, corrupt, refused, too large)."""


class WeightsUnavailableError(SameSameError, RuntimeError):
    """Pretrained weights could not be found locally nor downloaded."""


class ModelNotTrainedError(SameSameError, RuntimeError):
    """A pipeline needs a trained model that does not exist yet."""


class TranslationError(SameSameError, RuntimeError):
    """The translation service could not be reached or failed."""


def first_line(exc: BaseException, limit: int = 200, empty: str = "no details") -> str:
    """What went wrong in one line of an exception's text (no stack traces, no class name);
    ``empty`` when it has no text."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0][:limit] if lines else empty
