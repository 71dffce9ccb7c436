"""SemDeDup within one k-means cluster, vectorised with numpy and tiled.

For the rows of a cluster, taken in a chosen order, each row gets the largest cosine similarity
to any *earlier* row (``cosine_sim_score``) and that row's id (``max_id``). A row whose score is
>= 1 - eps duplicates an earlier one and is removed; the first row of each group stays. This is
Cosmos-Curate's (and NeMo Curator's) column max over the strict upper triangle of the cluster's
similarity matrix, computed here tile by tile so memory never holds the N x N matrix.
"""

import numpy as np
import pandas as pd

from curate_udfs.dedup.config import SemDedupConfig

# What prune_cluster reads and what it adds (jobs/dedup.py builds the Spark schema from these).
INPUT_COLUMNS = {"clip_id": str, "embedding": list[float], "cluster_id": int}
OUTPUT_COLUMNS = {"clip_id": str, "cluster_id": int, "cosine_dist_to_cent": float, "max_id": str,
                  "cosine_sim_score": float}


def stack_embeddings(column: pd.Series) -> np.ndarray:
    """A (rows, dim) float32 matrix from a column holding one vector per row."""
    if len(column) == 0:
        return np.zeros((0, 0), dtype=np.float32)
    return np.stack(column.to_numpy()).astype(np.float32, copy=False)


def normalize_rows(x: np.ndarray) -> np.ndarray:
    """Each row scaled to unit L2 norm; an all-zero row stays zero (similar to nothing)."""
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)


def nearest_centroids(x: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Index of the Euclidean-nearest centroid of each row (the first one on a tie), as k-means assigns.

    ``|x - c|^2 = |x|^2 - 2 x.c + |c|^2``, so the nearest centroid maximises ``2 x.c - |c|^2``:
    one matrix product instead of a (rows, k, dim) difference.
    """
    scores = 2.0 * (x @ centroids.T) - (centroids * centroids).sum(axis=1)
    return scores.argmax(axis=1).astype(np.int64)


def cosine_distance_to(x: np.ndarray, centroid: np.ndarray) -> np.ndarray:
    """``1 - cos(x, centroid)`` per row of unit-norm ``x``."""
    c = centroid / max(float(np.linalg.norm(centroid)), 1e-12)
    return (1.0 - x @ c).astype(np.float64)


def processing_order(x: np.ndarray, centroid: np.ndarray, cosine_dist: np.ndarray, config: SemDedupConfig,
                     cluster_id: int) -> np.ndarray:
    """The order rows are visited in; the first of each near-duplicate group is kept.

    Ties keep the incoming order (callers sort by clip id first), so the result is reproducible.
    """
    if config.which_to_keep == "random":
        return np.random.default_rng([config.random_state, cluster_id]).permutation(len(x))
    distance = cosine_dist if config.sim_metric == "cosine" else np.linalg.norm(x - centroid, axis=1)
    key = -distance if config.which_to_keep == "hard" else distance  # hard: farthest first
    return np.argsort(key, kind="stable")


def max_similarity_to_earlier(x: np.ndarray, tile_size: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """For each row j of unit-norm ``x``: the largest ``x[i] . x[j]`` over earlier rows i < j, and that i.

    Example::

        scores, earlier = max_similarity_to_earlier(np.eye(3, dtype=np.float32))
        # scores = [0, 0, 0]; earlier = [0, 1, 2]

    As in Cosmos-Curate, the maximum runs over the strict upper triangle with zeros elsewhere, so
    a score is never below 0, and a row with no positive match (row 0 always) points at itself.
    On equal similarities the earliest row wins. Memory: one ``tile_size`` x ``tile_size`` block.
    Scores are recomputed pair by pair at the end, so they do not depend on the tile size (a
    matrix product's rounding depends on its shape).
    """
    n = len(x)
    best_all = np.zeros(n, dtype=np.float32)
    earlier = np.arange(n, dtype=np.int64)
    for j0 in range(0, n, tile_size):
        j1 = min(n, j0 + tile_size)
        rows = x[j0:j1]
        best, best_at = best_all[j0:j1], earlier[j0:j1]  # views: updated in place
        for i0 in range(0, j1, tile_size):  # only blocks holding some earlier row
            i1 = min(j1, i0 + tile_size)
            sims = rows @ x[i0:i1].T
            if i1 > j0:  # the block crosses the diagonal: hide i >= j
                sims[np.arange(i0, i1)[None, :] >= np.arange(j0, j1)[:, None]] = -np.inf
            at = sims.argmax(axis=1)
            value = sims[np.arange(len(at)), at]
            better = value > best  # strict: an earlier block (earlier rows) keeps a tie
            best[better] = value[better]
            best_at[better] = at[better] + i0
    matched = earlier != np.arange(n)
    exact = np.einsum("ij,ij->i", x[matched].astype(np.float64), x[earlier[matched]].astype(np.float64))
    scores = np.zeros(n, dtype=np.float64)
    scores[matched] = np.maximum(exact, 0.0)
    return scores, earlier


def prune_cluster(frame: pd.DataFrame, centroid: np.ndarray, config: SemDedupConfig) -> pd.DataFrame:
    """SemDeDup of one cluster: a frame of ``INPUT_COLUMNS`` in, ``OUTPUT_COLUMNS`` out (in visiting order).

    Example::

        out = prune_cluster(frame, centroids[0], SemDedupConfig())
        duplicates = out[out.cosine_sim_score >= 1 - 0.01]

    ``frame.embedding`` holds the vectors (normalised here). Rows are first sorted by clip id, so
    the same clips give the same result whatever order the shuffle delivered them in.
    """
    if frame.empty:
        return pd.DataFrame({c: pd.Series(dtype=object if t is str else t) for c, t in OUTPUT_COLUMNS.items()})
    frame = frame.sort_values("clip_id", kind="stable")
    return prune_sorted(frame["clip_id"].to_numpy(), stack_embeddings(frame["embedding"]),
                        int(frame["cluster_id"].iloc[0]), centroid, config)


def prune_sorted(ids: np.ndarray, vectors: np.ndarray, cluster_id: int, centroid: np.ndarray,
                 config: SemDedupConfig) -> pd.DataFrame:
    """:func:`prune_cluster` of a cluster already sorted by clip id, as arrays: ``ids`` and their (rows, dim) ``vectors``."""
    x = normalize_rows(vectors)
    centroid = np.asarray(centroid, dtype=np.float32)
    cosine_dist = cosine_distance_to(x, centroid)
    order = processing_order(x, centroid, cosine_dist, config, cluster_id)
    scores, earlier = max_similarity_to_earlier(x[order], config.tile_size)
    ordered_ids = ids[order]
    return pd.DataFrame({
        "clip_id": ordered_ids,
        "cluster_id": np.full(len(order), cluster_id, dtype=np.int64),
        "cosine_dist_to_cent": cosine_dist[order],
        "max_id": ordered_ids[earlier],
        "cosine_sim_score": scores,
    })


def is_duplicate(scores: np.ndarray, eps: float) -> np.ndarray:
    """Cosmos-Curate's rule: a row duplicates an earlier one when its score is >= 1 - eps."""
    return scores >= 1.0 - eps
