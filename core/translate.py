"""Optional translation of titles to English through deep-translator's GoogleTranslator,
batched and cached in the database; any failure falls back to the untranslated titles."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence

from core.errors import TranslationError, first_line
from core.store import Store
from core.text import normalize_title

logger = logging.getLogger(__name__)

Translator = Callable[[list[str]], list[str]]
BATCH = 50
#: Seconds one batch may take before the service counts as unreachable (deep-translator's
#: requests carry no timeout of their own, so a silent network would otherwise hang matching).
BATCH_TIMEOUT = 20.0


def google_translator(target: str = "en") -> Translator:
    """A batch translator backed by Google Translate (needs the internet)."""
    from deep_translator import GoogleTranslator

    client = GoogleTranslator(source="auto", target=target)

    def translate(texts: list[str]) -> list[str]:
        return [t or src for t, src in zip(client.translate_batch(texts), texts, strict=True)]

    return translate


def translate_titles(
    store: Store,
    titles: Sequence[str],
    *,
    target: str = "en",
    translator: Translator | None = None,
    retries: int = 2,
    timeout: float | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[list[str], str | None]:
    """English versions of ``titles``, cached, normalised like every other title
    (`core.text.normalize_title`); returns (titles, notice).

    The notice is None when everything was translated; otherwise it says why some titles stay
    untranslated (matching goes on with those).
    """
    cached = store.translations(titles, target)
    todo = [t for t in dict.fromkeys(titles) if t and t not in cached]
    notice = None
    if todo:
        try:
            translate = translator or google_translator(target)
        except Exception:  # deep-translator missing or broken
            logger.warning("translator unavailable", exc_info=True)
            translate, notice = (
                None,
                (
                    "Translation is unavailable (the deep-translator package is missing or could "
                    "not start); titles used as written."
                ),
            )
        for start in range(0, len(todo), BATCH if translate else len(todo)):
            if translate is None:
                break
            batch = todo[start : start + BATCH]
            try:
                result = _with_retries(
                    translate, batch, retries, BATCH_TIMEOUT if timeout is None else timeout
                )
            except TranslationError as exc:
                notice = (
                    f"Translation failed ({exc}); {len(todo) - start} titles used untranslated."
                )
                break
            fresh = dict(zip(batch, result, strict=True))
            store.save_translations(fresh, target)
            cached.update(fresh)
            if progress is not None:
                progress(min(start + BATCH, len(todo)), len(todo))
    return [normalize_title(cached.get(t, t)) for t in titles], notice


def _with_deadline(translate: Translator, batch: list[str], timeout: float) -> list[str]:
    """``translate(batch)`` in a daemon thread; TranslationError if it takes over ``timeout``
    (the thread is abandoned: a hung request must not keep matching, or the process, waiting)."""
    answers: queue.Queue = queue.Queue(maxsize=1)

    def call() -> None:
        try:
            answers.put((True, translate(batch)))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            answers.put((False, exc))

    threading.Thread(target=call, name="samesame-translate", daemon=True).start()
    try:
        ok, value = answers.get(timeout=timeout)
    except queue.Empty:
        raise TranslationError(f"the translation service did not answer in {timeout:g} s") from None
    if not ok:
        raise value
    return value


def _with_retries(
    translate: Translator, batch: list[str], retries: int, timeout: float = BATCH_TIMEOUT
) -> list[str]:
    last: Exception | None = None
    for attempt in range(retries + 1):
        try:
            result = _with_deadline(translate, batch, timeout)
            if len(result) != len(batch):
                raise TranslationError("the service returned a different number of titles")
            return [str(r) for r in result]
        except TranslationError:
            raise
        except Exception as exc:  # network errors come as many types from requests/deep-translator
            last = exc
            if attempt < retries:  # no point waiting after the last attempt
                time.sleep(0.5 * (attempt + 1))
    detail = first_line(last, limit=160)
    kind = "no connection" if isinstance(last, (ConnectionError, TimeoutError)) else "an error"
    raise TranslationError(f"{kind} reaching the translation service ({detail})")
