"""The neighbour cap, written once: which of a posting's matches are its best ``cap``.

One machine's engine (`core.engine`: each posting's own choices, then what each posting lists
among the pairs it is offered) and the Spark job (`core.spark.cap`, the same function over
grouped pandas frames) both call `best_per_posting`, so they keep the same matches wherever
the cap binds.
"""

from __future__ import annotations

import numpy as np

#: Similarities closer than this are one tie, broken by the far posting's position. Scores
#: computed by different engines agree to 1e-6 (Spark sums TF-IDF weights in float64 in its
#: own order, one machine multiplies float32 sparse matrices: two identical titles give 1.0
#: on one and 1 ± 1e-9 on the other), so ranking by the raw floats would let float noise pick
#: which of two equally alike postings is kept.
SIMILARITY_TOLERANCE = 1e-6


def similarity_key(similarity: np.ndarray) -> np.ndarray:
    """int64 ranks of ``similarity`` on a grid of `SIMILARITY_TOLERANCE` (higher = more
    alike); float32 first, so a float64 score and its float32 copy get the same key."""
    as_float = np.asarray(similarity, dtype=np.float32).astype(np.float64)
    return np.rint(as_float / SIMILARITY_TOLERANCE).astype(np.int64)


def best_per_posting(
    end: np.ndarray, far: np.ndarray, similarity: np.ndarray, cap: int
) -> np.ndarray:
    """Which rows are among their posting's ``cap`` best.

    Each row is one match seen from one of its postings (``end``) towards the other
    (``far``). A posting's matches rank by similarity (to `SIMILARITY_TOLERANCE`, most alike
    first), then by the far posting's position (earlier first); the first ``cap`` are kept.

    Args:
        end: (n,) integer positions of the posting each row belongs to (any order).
        far: (n,) integer positions of the matched posting.
        similarity: (n,) the pair's similarity (float32 or float64).
        cap: matches a posting keeps (>= 0).

    Returns:
        (n,) bool, in the rows' order: True for the rows kept.
    """
    end = np.asarray(end)
    keep = np.zeros(len(end), bool)
    if len(end) == 0:
        return keep
    order = np.lexsort((far, -similarity_key(similarity), end))
    ends = end[order]
    rank = np.arange(len(ends)) - np.searchsorted(ends, ends, side="left")
    keep[order] = rank < cap
    return keep
