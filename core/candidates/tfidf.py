"""One TF-IDF builder for every path that vectorises titles (baseline, ensemble candidates,
``best``'s word and character features, the persisted query index).

Titles arrive normalised (`core.text.normalize_title`: lower case, punctuation removed, single
spaces), so a word token is exactly a space-separated piece; the Spark job computes the same
weights with the same formula (sklearn's smoothed IDF).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy.sparse import csr_matrix

from core.threads import map_in_threads

#: sklearn's token pattern that keeps single-character words ("2 pcs", "x").
WORD_TOKENS = r"(?u)\b\w+\b"


@dataclass(frozen=True)
class TfidfSpec:
    """How titles become TF-IDF rows (always L2-normalised)."""

    analyzer: Literal["word", "char_wb"] = "word"
    ngram_min: int = 1
    ngram_max: int = 1
    sublinear: bool = False


#: The baseline's and the query index's vectors (the original write-up's TF-IDF).
WORDS = TfidfSpec()


@dataclass
class TfidfModel:
    """Fitted vocabulary and IDF, and the catalog's rows."""

    spec: TfidfSpec
    matrix: csr_matrix
    vocabulary: dict[str, int]
    idf: np.ndarray

    def transform(self, titles: Sequence[str]) -> csr_matrix:
        """Rows for new titles with the frozen vocabulary (words nobody in the catalog used are
        dropped: no posting can share them)."""
        if self.spec.analyzer != "word" or self.spec.ngram_max != 1:
            raise ValueError("transform with a frozen vocabulary is for word unigrams")
        indptr, indices, values = [0], [], []
        for title in titles:
            counts: dict[int, int] = {}
            for word in title.split():
                column = self.vocabulary.get(word)
                if column is not None:
                    counts[column] = counts.get(column, 0) + 1
            columns = np.fromiter(counts, dtype=np.int64, count=len(counts))
            tf = np.fromiter(counts.values(), dtype=np.float32, count=len(counts))
            if self.spec.sublinear:
                tf = 1.0 + np.log(tf)
            weights = tf * self.idf[columns]
            norm = float(np.linalg.norm(weights))
            if norm > 0:
                weights = weights / norm
            indices.extend(columns.tolist())
            values.extend(weights.astype(np.float32).tolist())
            indptr.append(len(indices))
        return csr_matrix(
            (np.asarray(values, np.float32), np.asarray(indices, np.int64), indptr),
            shape=(len(titles), len(self.idf)),
            dtype=np.float32,
        )

    def row_for(self, title: str) -> csr_matrix:
        """The row a title from outside the catalog would have had in it (a single-item
        query): the catalog's vocabulary and IDF, any spec; terms no catalog title has count
        toward the row's length with the IDF of a term one title in n + 1 has (they cannot be
        shared, but they make the title less like every other, as in a catalog run)."""
        counts: dict[str, int] = {}
        for term in _vectorizer(self.spec).build_analyzer()(title):
            counts[term] = counts.get(term, 0) + 1
        known = [(self.vocabulary[t], c) for t, c in counts.items() if t in self.vocabulary]
        columns = np.array([col for col, _ in known], np.int64)
        tf = np.array([c for _, c in known], np.float64)
        unseen_tf = np.array([c for t, c in counts.items() if t not in self.vocabulary], float)
        if self.spec.sublinear:
            tf, unseen_tf = 1.0 + np.log(tf), 1.0 + np.log(unseen_tf)
        weights = tf * self.idf[columns]
        n = self.matrix.shape[0]
        unseen = unseen_tf * (np.log((2.0 + n) / 2.0) + 1.0)
        norm = float(np.sqrt(np.sum(weights**2) + np.sum(unseen**2)))
        if norm > 0:
            weights = weights / norm
        order = np.argsort(columns)
        return csr_matrix(
            (weights[order].astype(np.float32), columns[order], [0, len(columns)]),
            shape=(1, self.matrix.shape[1]),
            dtype=np.float32,
        )


def _vectorizer(spec: TfidfSpec):
    """An unfitted sklearn vectorizer for ``spec``: the one place its options are set."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    options: dict = {"sublinear_tf": spec.sublinear, "dtype": np.float32}
    if spec.analyzer == "word":
        options["token_pattern"] = WORD_TOKENS
    else:
        options |= {"analyzer": spec.analyzer, "ngram_range": (spec.ngram_min, spec.ngram_max)}
    return TfidfVectorizer(**options)


def fit_tfidf(titles: Sequence[str], spec: TfidfSpec = WORDS) -> TfidfModel:
    """Fit on a catalog's titles. A catalog with no usable text gives all-zero rows."""
    vectorizer = _vectorizer(spec)
    try:
        matrix = vectorizer.fit_transform(list(titles)).tocsr()
    except ValueError:  # empty vocabulary: every title empty
        return TfidfModel(spec, csr_matrix((len(titles), 1), dtype=np.float32), {}, np.ones(1))
    vocabulary = {word: int(i) for word, i in vectorizer.vocabulary_.items()}
    return TfidfModel(spec, matrix, vocabulary, vectorizer.idf_.astype(np.float32))


def tfidf_rows(titles: Sequence[str], spec: TfidfSpec = WORDS) -> csr_matrix:
    """Just the catalog's rows."""
    return fit_tfidf(titles, spec).matrix


def row_cosine(
    matrix, left: np.ndarray, right: np.ndarray, chunk: int = 100_000, other=None
) -> np.ndarray:
    """Cosine of each (left, right) row pair of an L2-normalised matrix (sparse or dense):
    row ``left[i]`` of ``matrix`` with row ``right[i]`` of ``other`` (default ``matrix``).
    Chunks of pairs run on every core; the sums are the same as one chunk at a time."""
    other = matrix if other is None else other

    def cosines(start: int) -> np.ndarray:
        a, b = left[start : start + chunk], right[start : start + chunk]
        if isinstance(matrix, np.ndarray):
            return np.einsum("ij,ij->i", matrix[a], other[b])
        return np.asarray(matrix[a].multiply(other[b]).sum(axis=1)).ravel()

    out = np.zeros(len(left), np.float32)
    starts = range(0, len(left), chunk)
    for start, values in zip(starts, map_in_threads(cosines, starts), strict=True):
        out[start : start + len(values)] = values
    return np.minimum(out, 1.0)
