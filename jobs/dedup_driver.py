"""Dedup of a small input in the driver process: scikit-learn k-means and the SemDeDup search in numpy.

On a few hundred thousand vectors, Spark's fixed costs (an MLlib job per k-means iteration, a
shuffle into ``applyInPandas`` groups) cost more than the work itself, so when the embeddings fit
comfortably in the driver (``--kmeans-driver-max-mb``, see dedup_kmeans.choose_backend) they are
fetched once as Arrow and the whole computation runs here. In a folder lake delta-rs reads them
(:func:`find_local_input`) and, where it can write the results too (jobs/lake_rs.py), no JVM starts
at all; else Spark reads (:func:`fetch`) or writes. The results contract is the
Spark path's: the same centroid assignment code (semdedup.nearest_centroids), the same per-cluster
search (semdedup.prune_cluster), the same seed and sampling rule, the same output rows.
"""

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T

from curate_udfs.dedup import semdedup
from curate_udfs.dedup.config import SemDedupConfig
from jobs.dedup_kmeans import KMeansConfig


@contextmanager
def _arrow(spark: SparkSession):
    """Arrow for toPandas/createDataFrame: otherwise a column of vectors goes row by row through pickle."""
    key = "spark.sql.execution.arrow.pyspark.enabled"
    before = spark.conf.get(key, "false")
    spark.conf.set(key, "true")
    try:
        yield
    finally:
        spark.conf.set(key, before)


def fetch(points: DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(clip ids, unit vectors) of ``points``, sorted by clip id so the result does not depend on file order."""
    with _arrow(points.sparkSession):
        frame = points.select("clip_id", "embedding").toPandas()
    ids = frame["clip_id"].to_numpy()
    return _sorted_unit(ids, semdedup.stack_embeddings(frame["embedding"]), np.argsort(ids, kind="stable"))


def _sorted_unit(ids: np.ndarray, vectors: np.ndarray, order: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``ids`` and their vectors, unit-normalised, in ``order`` (the ids' sorted order)."""
    return ids[order], semdedup.normalize_rows(vectors[order])


@dataclass(frozen=True)
class LocalInput:
    """One model's embeddings in a local ``clip_embeddings`` folder, found by :func:`find_local_input`."""

    dataset: "pyarrow.dataset.Dataset"
    model: str


def find_local_input(table: str, model: str | None, fits: Callable[[int, int], bool]) -> LocalInput | None:
    """A first look with delta-rs at a local ``clip_embeddings`` folder (its model and dim columns).

    The model is ``model`` or the one with most rows (:func:`most_rows`), as dedup.choose_model
    picks it. Returns None when Spark should read instead: delta-rs missing or unable to read the table
    (a feature it lacks), the model absent, or vectors that do not ``fits(rows, dim)``.
    """
    try:
        from deltalake import DeltaTable

        dataset = DeltaTable(table).to_pyarrow_dataset()
        # rows and the vectors' length per model, from the small columns (``dim``: what the embedding stage wrote)
        counts = dataset.to_table(columns=["model", "dim"]).group_by("model").aggregate(
            [([], "count_all"), ("dim", "max")]).to_pylist()
    except Exception:
        return None
    counts = {c["model"]: (c["count_all"], c["dim_max"]) for c in counts}
    if model is None and counts:
        model = most_rows({m: n for m, (n, _) in counts.items()})
    if model not in counts:
        return None
    rows, dim = counts[model]
    if dim is None:  # (the dim column is not filled in: one vector says)
        first = dataset.head(1, columns=["embedding"], filter=_vectors_of(model)).column("embedding")
        dim = len(first[0]) if len(first) else None
    if dim is None or not fits(rows, dim):
        return None
    return LocalInput(dataset, model)


def most_rows(counts: dict[str, int]) -> str:
    """The model with most rows in ``counts`` (ties: the first by name), as dedup picks it by default."""
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]


def _vectors_of(model: str):
    import pyarrow.compute as pc

    return (pc.field("model") == model) & pc.field("embedding").is_valid()


def read_local_input(found: LocalInput) -> tuple[np.ndarray, np.ndarray] | None:
    """(clip ids, unit vectors) of ``found``, as :func:`fetch` gives them; None when the vectors'
    lengths differ or hold nulls (Spark's path then says what is wrong)."""
    import pyarrow.compute as pc

    rows = found.dataset.to_table(columns=["clip_id", "embedding"], filter=_vectors_of(found.model))
    vectors = rows.column("embedding").combine_chunks()
    lengths, values = pc.list_value_length(vectors), vectors.flatten()
    if pc.min(lengths).as_py() != pc.max(lengths).as_py() or values.null_count:
        return None
    x = values.to_numpy().astype(np.float32, copy=False).reshape(len(rows), -1)
    order = pc.sort_indices(rows.column("clip_id")).to_numpy()  # (Arrow's sort: 4x numpy's on strings)
    return _sorted_unit(rows.column("clip_id").to_numpy(zero_copy_only=False), x, order)


def fit_centroids(x: np.ndarray, config: KMeansConfig) -> np.ndarray:
    """scikit-learn k-means on every row, or a seeded sample of ``max_points_per_centroid`` rows per cluster."""
    from sklearn.cluster import KMeans

    if config.n_clusters == 1:  # as the Spark path: k-means with one cluster is the mean
        return x.mean(axis=0, keepdims=True).astype(np.float32)
    wanted = config.max_points_per_centroid * config.n_clusters
    if wanted and wanted < len(x):
        x = x[np.random.default_rng(config.random_state).choice(len(x), wanted, replace=False)]
    kmeans = KMeans(n_clusters=config.n_clusters, max_iter=config.max_iter, random_state=config.random_state, n_init=1)
    return kmeans.fit(x).cluster_centers_.astype(np.float32)


def prune(ids: np.ndarray, x: np.ndarray, centroids: np.ndarray, config: SemDedupConfig) -> pd.DataFrame:
    """Every clip assigned to its nearest centroid, then SemDeDup per cluster: ``semdedup.OUTPUT_COLUMNS`` rows."""
    labels = np.concatenate([semdedup.nearest_centroids(x[i:i + 65536], centroids) for i in range(0, len(x), 65536)])
    parts = []
    for cluster in np.unique(labels):
        members = np.flatnonzero(labels == cluster)  # (ids are sorted, so each cluster's are too)
        parts.append(semdedup.prune_sorted(ids[members], x[members], int(cluster), centroids[cluster], config))
    return pd.concat(parts, ignore_index=True)


def summary(pruned: pd.DataFrame, eps_values: tuple[float, ...]) -> list[dict]:
    """What dedup.summarize counts in Spark, from :func:`prune`'s rows: kept, removed, total per eps."""
    scores, total = pruned["cosine_sim_score"].to_numpy(), len(pruned)
    removed = [int(semdedup.is_duplicate(scores, eps).sum()) for eps in eps_values]
    return [{"eps": eps, "kept": total - r, "removed": r, "total": total} for eps, r in zip(eps_values, removed)]


def to_spark(spark: SparkSession, pruned: pd.DataFrame, schema: T.StructType) -> DataFrame:
    with _arrow(spark):
        return spark.createDataFrame(pruned, schema)
