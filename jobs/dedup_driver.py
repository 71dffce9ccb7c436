"""Dedup of a small input in the driver process: scikit-learn k-means and the SemDeDup search in numpy.

On a few hundred thousand vectors, Spark's fixed costs (an MLlib job per k-means iteration, a
shuffle into ``applyInPandas`` groups) cost more than the work itself, so when the embeddings fit
comfortably in the driver (``--kmeans-driver-max-mb``, see dedup_kmeans.choose_backend) they are
fetched once as Arrow and the whole computation runs here; only the writes go through Spark. The results contract is the
Spark path's: the same centroid assignment code (semdedup.nearest_centroids), the same per-cluster
search (semdedup.prune_cluster), the same seed and sampling rule, the same output rows.
"""

from contextlib import contextmanager

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
    frame = frame.sort_values("clip_id", kind="stable")
    return frame["clip_id"].to_numpy(), semdedup.normalize_rows(semdedup.stack_embeddings(frame["embedding"]))


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


def prune(spark: SparkSession, ids: np.ndarray, x: np.ndarray, centroids: np.ndarray, config: SemDedupConfig,
          schema: T.StructType) -> DataFrame:
    """Every clip assigned to its nearest centroid, then SemDeDup per cluster: ``semdedup.OUTPUT_COLUMNS`` rows."""
    labels = np.concatenate([semdedup.nearest_centroids(x[i:i + 65536], centroids) for i in range(0, len(x), 65536)])
    parts = []
    for cluster in np.unique(labels):
        members = np.flatnonzero(labels == cluster)
        frame = pd.DataFrame({"clip_id": ids[members], "embedding": list(x[members]), "cluster_id": int(cluster)})
        parts.append(semdedup.prune_cluster(frame, centroids[cluster], config))
    with _arrow(spark):
        return spark.createDataFrame(pd.concat(parts, ignore_index=True), schema)
