"""Results a shop can take away, from one pipeline's stored run: its matches (both postings'
ids, titles and image files, the probability, the verdict word, whether a person checked
it), its clusters (members and strength), the reviewer's verdicts, and the competition's
``posting_id,matches`` layout; as CSV or Excel.

Files are written to a temporary name beside the target and moved into place, so a reader
never sees half a file. Matches are read and written a chunk of pairs at a time
(`Store.iter_match_pairs`): what is held is the catalog's titles and one chunk, not every
pair's row as Python objects.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from core.errors import SameSameError
from core.matching import stored_result, summarised_run
from core.pipelines import PIPELINES
from core.rule_calibration import calibration_for
from core.settings import MatchSettings
from core.store import Store
from core.verdict_words import CHECKED, DIFFERENT, SAME, evidence_lines, pair_probability
from core.verdict_words import verdict_words as words_of
from core.verdicts import REVIEWED, pair_key

WHATS = ("matches", "clusters", "verdicts", "kaggle")
FORMATS = ("csv", "xlsx")
#: Columns of each export (kaggle: the competition's).
COLUMNS = {
    "matches": (
        "left_id",
        "left_title",
        "left_image",
        "right_id",
        "right_title",
        "right_image",
        "probability",
        "verdict",
        "reviewed_by_person",
        "evidence",
        "probability_from",
        "rule",
    ),
    "clusters": ("cluster_id", "size", "strength", "density", "members", "titles"),
    "verdicts": ("left_id", "left_title", "right_id", "right_title", "verdict", "reviewed_at"),
    "kaggle": ("posting_id", "matches"),
}
#: Data rows an Excel sheet holds (1,048,576 rows, one of them the header).
EXCEL_MAX_ROWS = 1_048_575
#: Stored pairs read and written at a time.
CHUNK_ROWS = 100_000
_MIME = {
    "csv": "text/csv",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


def mime_type(fmt: str) -> str:
    return _MIME[fmt]


def check_request(store: Store, what: str, fmt: str, pipeline: str | None) -> None:
    """Refuse what cannot be exported, in words: an unknown kind or format, an unknown
    pipeline, or a pipeline with no stored matches yet."""
    if what not in WHATS:
        raise SameSameError(f"unknown export {what!r}; choose one of {', '.join(WHATS)}")
    if fmt not in FORMATS:
        raise SameSameError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if what == "verdicts":
        return  # the reviewer's, whatever pipeline
    if pipeline not in PIPELINES:
        raise SameSameError(f"unknown pipeline {pipeline!r}; choose one of {', '.join(PIPELINES)}")
    if store.match_run(pipeline) is None:
        raise SameSameError(
            f"No stored {pipeline} matches in this database; run "
            f"python -m core match --pipeline {pipeline} first."
        )
    if what == "matches" and fmt == "xlsx":
        rows = store.match_counts().get(pipeline, 0) + len(store.reviews())
        if rows > EXCEL_MAX_ROWS:
            raise SameSameError(
                f"{pipeline} has about {rows:,} matched pairs and an Excel sheet holds "
                f"{EXCEL_MAX_ROWS:,} rows: export them as csv."
            )


def export_chunks(
    store: Store, what: str, pipeline: str | None, clusters: bool = False
) -> Iterator[pd.DataFrame]:
    """The export's rows, a frame at a time (at least one frame, maybe empty)."""
    if what == "matches":
        yield from match_chunks(store, pipeline)
    elif what == "clusters":
        yield cluster_frame(store, pipeline)
    elif what == "verdicts":
        yield verdict_frame(store)
    else:
        yield stored_result(store, pipeline).submission(clusters=clusters)


def export(
    store: Store,
    what: str,
    fmt: str,
    pipeline: str | None,
    out: Path,
    clusters: bool = False,
) -> int:
    """Write one export to ``out`` (atomically); returns the rows written.

    Raises:
        SameSameError: a request `check_request` refuses, or ``out`` cannot be written.
    """
    check_request(store, what, fmt, pipeline)
    chunks = export_chunks(store, what, pipeline, clusters)
    return write_chunks(chunks, COLUMNS[what], Path(out), fmt, sheet=what)


def export_bytes(store: Store, what: str, fmt: str, pipeline: str | None) -> bytes:
    """One export as the bytes of its file (for a download button or the HTTP API)."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="samesame-export-") as folder:
        path = Path(folder) / f"export.{fmt}"
        export(store, what, fmt, pipeline, path)
        return path.read_bytes()


# -- matches ---------------------------------------------------------------------------------


def _reviews_by_pair(store: Store) -> dict[tuple[str, str], str]:
    reviews = store.reviews()
    return dict(
        zip(
            zip(reviews["left_id"], reviews["right_id"], strict=True),
            reviews["verdict"],
            strict=True,
        )
    )


def _reviewed_rows(
    pairs: pd.DataFrame, verdicts: dict[tuple[str, str], str], reviewed: pd.Index
) -> tuple[np.ndarray, list[tuple[str, str]]]:
    """Each pair's review ("same", "different" or "") and the keys of those reviewed; only
    pairs between two reviewed postings are looked up."""
    review = np.full(len(pairs), "", dtype=object)
    both = (reviewed.get_indexer(pairs["left"]) >= 0) & (reviewed.get_indexer(pairs["right"]) >= 0)
    keys = []
    for row in np.flatnonzero(both).tolist():
        key = pair_key(pairs["left"].iat[row], pairs["right"].iat[row])
        if key in verdicts:
            review[row] = verdicts[key]
            keys.append(key)
    return review, keys


def match_chunks(
    store: Store, pipeline: str, chunk_rows: int = CHUNK_ROWS
) -> Iterator[pd.DataFrame]:
    """The pipeline's stored matches under the reviewer's verdicts (`core.verdicts`): pairs
    said to be different left out, pairs said to be the same marked, and those the pipeline
    missed added at the end; pairs of postings no longer in the catalog left out."""
    settings = MatchSettings.from_dict(store.match_run(pipeline)["settings"])
    calibration = calibration_for(store, pipeline)
    postings = store.postings(["posting_id", "title", "image"])
    catalog = pd.Index(postings["posting_id"])
    verdicts = _reviews_by_pair(store)
    reviewed = pd.Index(pd.unique(np.asarray([p for key in verdicts for p in key], dtype=object)))
    seen: set[tuple[str, str]] = set()
    yielded = False
    for pairs in store.iter_match_pairs(pipeline, chunk_rows):
        at = (catalog.get_indexer(pairs["left"]), catalog.get_indexer(pairs["right"]))
        present = (at[0] >= 0) & (at[1] >= 0)
        pairs = pairs[present].reset_index(drop=True)
        review, keys = _reviewed_rows(pairs, verdicts, reviewed)
        seen.update(keys)
        keep = review != "different"
        frame = _match_frame(pairs[keep], review[keep], postings, catalog, settings, calibration)
        yielded = True
        yield frame
    missed = [k for k, v in verdicts.items() if v == "same" and k not in seen]
    missed = [k for k in missed if catalog.get_indexer(list(k)).min() >= 0]
    if missed or not yielded:
        added = pd.DataFrame(
            {
                "left": [a for a, _ in missed],
                "right": [b for _, b in missed],
                "rule": REVIEWED,
                "similarity": np.float32(1.0),
            }
        )
        review = np.full(len(added), "same", dtype=object)
        yield _match_frame(added, review, postings, catalog, settings, calibration)


def _match_frame(
    pairs: pd.DataFrame,
    review: np.ndarray,
    postings: pd.DataFrame,
    catalog: pd.Index,
    settings: MatchSettings,
    calibration=None,
) -> pd.DataFrame:
    left = catalog.get_indexer(pairs["left"])
    right = catalog.get_indexer(pairs["right"])
    titles = postings["title"].fillna("").to_numpy(object)
    images = postings["image"].fillna("").to_numpy(object)
    has_titles = (titles[left] != "") & (titles[right] != "")
    probability, source = pair_probability(pairs, settings, has_titles, calibration)
    words = words_of(probability)
    evidence = evidence_lines(pairs, settings, has_titles)
    checked = review != ""
    words = np.where(review == "same", SAME, np.where(review == "different", DIFFERENT, words))
    evidence = np.where(
        pairs["rule"].astype(str).to_numpy(object) == REVIEWED,
        f"no scores: {CHECKED} (said same)",
        evidence,
    )
    return pd.DataFrame(
        {
            "left_id": pairs["left"].to_numpy(object),
            "left_title": titles[left],
            "left_image": images[left],
            "right_id": pairs["right"].to_numpy(object),
            "right_title": titles[right],
            "right_image": images[right],
            "probability": np.round(probability, 4),
            "verdict": words,
            "reviewed_by_person": checked,
            "evidence": evidence,
            "probability_from": np.where(checked, CHECKED, source),
            "rule": pairs["rule"].astype(str).to_numpy(object),
        },
        columns=list(COLUMNS["matches"]),
    )


# -- clusters and verdicts -------------------------------------------------------------------


def cluster_frame(store: Store, pipeline: str) -> pd.DataFrame:
    """The run's clusters of two or more postings (`core.clusters`): members in catalog
    order, space-separated, their titles " | "-separated, and the strength (the weakest link
    the cluster formed at, 0..1) and density (the share of its pairs that are matches)."""
    summarised_run(store, pipeline)  # a run stored by an older SameSame gets its clusters
    members = pd.read_sql_query(
        "SELECT c.cluster, c.posting_id, p.title FROM clusters c "
        "JOIN postings p USING (posting_id) WHERE c.pipeline=? ORDER BY c.cluster, p.rowid",
        store.conn,
        params=(pipeline,),
    )
    summary = pd.read_sql_query(
        "SELECT cluster, size, weakest_link, density FROM cluster_summaries WHERE pipeline=? "
        "ORDER BY cluster",
        store.conn,
        params=(pipeline,),
    )
    members["title"] = members["title"].fillna("")
    grouped = members.groupby("cluster", sort=True).agg(
        members=("posting_id", " ".join), titles=("title", " | ".join)
    )
    frame = summary.join(grouped, on="cluster", how="inner")
    return pd.DataFrame(
        {
            "cluster_id": frame["cluster"].astype(int),
            "size": frame["size"].astype(int),
            "strength": frame["weakest_link"].astype(float).round(4),
            "density": frame["density"].astype(float).round(4),
            "members": frame["members"],
            "titles": frame["titles"],
        },
        columns=list(COLUMNS["clusters"]),
    )


def verdict_frame(store: Store) -> pd.DataFrame:
    """Every verdict a person gave, oldest first, with both postings' titles ("" for a
    posting no longer in the catalog) and when (UTC)."""
    reviews = store.reviews()
    titles = store.titles_and_images(
        pd.unique(reviews[["left_id", "right_id"]].to_numpy().ravel()).tolist()
    )
    stamp = [
        time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t)) for t in reviews["reviewed_at"].tolist()
    ]
    return pd.DataFrame(
        {
            "left_id": reviews["left_id"],
            "left_title": [titles.get(p, ("", None))[0] for p in reviews["left_id"]],
            "right_id": reviews["right_id"],
            "right_title": [titles.get(p, ("", None))[0] for p in reviews["right_id"]],
            "verdict": reviews["verdict"].map({"same": SAME, "different": DIFFERENT}),
            "reviewed_at": stamp,
        },
        columns=list(COLUMNS["verdicts"]),
    )


# -- writing ---------------------------------------------------------------------------------


def write_chunks(
    chunks: Iterable[pd.DataFrame], columns: tuple[str, ...], out: Path, fmt: str, sheet: str
) -> int:
    """Write the frames one after another as one table, to a temporary file moved onto
    ``out`` once whole; returns the data rows written."""
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        if fmt == "csv":
            rows = _write_csv(chunks, columns, tmp)
        else:
            rows = _write_xlsx(chunks, columns, tmp, sheet)
        os.replace(tmp, out)
    except OSError as exc:
        raise SameSameError(f"cannot write {out}: {exc.strerror or exc}") from exc
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
    return rows


def _write_csv(chunks: Iterable[pd.DataFrame], columns: tuple[str, ...], path: Path) -> int:
    rows = 0
    with path.open("w", encoding="utf-8", newline="") as handle:
        pd.DataFrame(columns=list(columns)).to_csv(handle, index=False)
        for chunk in chunks:
            chunk.to_csv(handle, index=False, header=False)
            rows += len(chunk)
    return rows


def _write_xlsx(
    chunks: Iterable[pd.DataFrame], columns: tuple[str, ...], path: Path, sheet: str
) -> int:
    """A streamed (write-only) workbook: rows go to disk as they come. Text is always text
    (a title starting with "=" is no formula) and characters Excel refuses are dropped."""
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    ws = book.create_sheet(sheet)
    try:
        rows = _append_rows(ws, chunks, columns)
    except BaseException:
        with contextlib.suppress(Exception):
            ws.close()  # finishes openpyxl's own temporary sheet file
        raise
    book.save(path)
    return rows


def _append_rows(ws, chunks: Iterable[pd.DataFrame], columns: tuple[str, ...]) -> int:
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    ws.append(list(columns))
    rows = 0
    for chunk in chunks:
        rows += len(chunk)
        if rows > EXCEL_MAX_ROWS:
            raise SameSameError(
                f"more than {EXCEL_MAX_ROWS:,} rows: an Excel sheet holds no more; use csv"
            )
        values = chunk.astype(object).where(chunk.notna(), None)
        for name in values.columns:
            if pd.api.types.is_string_dtype(chunk[name]):
                values[name] = values[name].str.replace(ILLEGAL_CHARACTERS_RE, "", regex=True)
        for record in values.itertuples(index=False, name=None):
            ws.append([_text_cell(ws, v, WriteOnlyCell) for v in record])
    return rows


def _text_cell(ws, value, cell_type):
    """A value as openpyxl writes it, except that text starting with "=" stays text."""
    if isinstance(value, str) and value.startswith("="):
        cell = cell_type(ws, value)
        cell.data_type = "s"
        return cell
    return value
