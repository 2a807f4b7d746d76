"""One catalog row to what the store keeps: decoded and normalised title (and the raw one when
decoding changed it), checked image path, validated or computed perceptual hash, and the row's
problems."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import pandas as pd

from core.catalog.reader import Progress
from core.errors import CatalogError, ImageError
from core.images import is_valid_phash, open_image, phash_hex, resolve_image_path
from core.text import normalize_title, stored_title


def _image_folder(image_root: Path | None) -> Path | None:
    root = Path(image_root) if image_root is not None else None
    if root is not None and not root.is_dir():
        raise CatalogError(f"image folder {root} does not exist or is not a folder")
    return root


#: Reports a row problem: (field, kind, text).
Problem = Callable[[str, str, str], None]


def _checked_hash(given: str, problem: Problem) -> str:
    """The given perceptual hash, lower case; '' when it is missing or not 16 hex digits."""
    given_hash = given.strip().lower()
    if given_hash and not is_valid_phash(given_hash):
        problem("image_phash", "bad_hash", f"{given!r} is not 16 hex digits; ignored")
        return ""
    return given_hash


def _checked_image(
    root: Path | None, image_name: str, phash: str | None, problem: Problem
) -> tuple[str | None, str, str | None]:
    """(image path, status, hash) of a row's image: opened under ``root`` (its hash computed
    unless one was given), or the reason it was refused, missing or unreadable."""
    if root is None or not image_name:
        return None, "none", phash
    try:
        resolved = resolve_image_path(root, image_name)
    except ImageError as exc:
        problem("image", "image_refused", str(exc))
        return None, "refused", phash
    try:
        picture = open_image(resolved)
    except ImageError as exc:
        status = "missing" if not resolved.exists() else "corrupt"
        kind = "image_missing" if status == "missing" else "image_unreadable"
        problem("image", kind, str(exc).replace(str(resolved), image_name))
        return None, status, phash
    return str(resolved), "ok", phash or phash_hex(picture)


def _prepare_row(rec: dict, root: Path | None, problems: list[dict]) -> dict:
    """One row's posting; its problems are appended to ``problems`` (title, hash, image, then
    a row with nothing to match by)."""
    row, pid = rec["row"], rec["posting_id"]

    def problem(field_name: str, kind: str, text: str) -> None:
        problems.append(
            {"row": row, "posting_id": pid, "field": field_name, "kind": kind, "problem": text}
        )

    title, raw_title = stored_title(rec["title"])
    title_norm = normalize_title(title)
    if not title_norm:
        problem("title", "no_title", "empty title: this posting is matched by its image only")
    given_hash = _checked_hash(rec["image_phash"], problem)
    image_name = rec["image"].strip()
    image_path, status, phash = _checked_image(root, image_name, given_hash or None, problem)
    if status != "ok" and not title_norm and not phash:
        text = "no usable title, image or hash: this posting can only match itself"
        problem("row", "nothing_to_match", text)
    return {
        "posting_id": pid,
        "title": title,
        "raw_title": raw_title,
        "title_norm": title_norm,
        "image": image_name or None,
        "image_path": image_path,
        "image_status": status,
        "image_phash": phash,
        "label_group": rec["label_group"].strip() or None,
        "source": "catalog",
    }


def prepare_postings(
    records: pd.DataFrame | Iterable[dict],
    image_root: Path | None,
    progress: Progress | None = None,
) -> tuple[list[dict], list[dict]]:
    """Check each row's image, hash and title; returns (posting rows, row problems)."""
    postings: list[dict] = []
    problems: list[dict] = []
    root = _image_folder(image_root)
    if isinstance(records, pd.DataFrame):
        records = records.to_dict("records")
    records = list(records)
    total = len(records)
    for done, rec in enumerate(records, start=1):
        postings.append(_prepare_row(rec, root, problems))
        if progress is not None and (done % 200 == 0 or done == total):
            progress(done, total)
    return postings, problems


# -- import ----------------------------------------------------------------------------------
