"""`--export-cosmos-layout`: the dedup results as Cosmos-Curate's files, for its downstream tools."""

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from curate_udfs.dedup import cosmos_layout
from curate_udfs.objectstore import S3Access


def export_cosmos_layout(spark: SparkSession, root: str, centroids: np.ndarray, results: DataFrame,
                         points: DataFrame, summary: list[dict], access: S3Access | None = None) -> None:
    """Write centroids, embeddings by nearest centre, per-cluster pruning tables, summaries and kept ids under ``root``.

    Example::

        export_cosmos_layout(spark, "/data/semdedup", centroids, results, points, summary)

    ``results`` are one model's ``semantic_dedup`` rows, ``points`` its (clip_id, unit embedding).
    Earlier files under ``clustering_results/`` and ``extraction/`` are removed first, so the folder
    holds exactly this run; an ``s3://`` root is written with ``access``. Pruning tables list a cluster's clips farthest from the centroid first.
    """
    cosmos_layout.clear_layout(root, access)
    cosmos_layout.write_centroids(root, centroids, access)

    def write_cluster(frame: pd.DataFrame) -> pd.DataFrame:
        cluster_id = int(frame["cluster_id"].iloc[0])
        frame = frame.sort_values(["cosine_dist_to_cent", "clip_id"], ascending=[False, True])
        cosmos_layout.write_pruning_table(root, cluster_id, frame, access)
        cosmos_layout.write_by_center(root, cluster_id, frame, access)
        return pd.DataFrame({"cluster_id": [cluster_id], "rows": [len(frame)]})

    (results.select("clip_id", "cluster_id", "cosine_dist_to_cent", "max_id", "cosine_sim_score")
     .join(points, "clip_id").groupBy("cluster_id").applyInPandas(write_cluster, "cluster_id long, rows long").collect())
    for s in summary:
        cosmos_layout.write_summary(root, s["eps"], s["kept"], s["removed"], s["total"], access)
        kept = results.where(F.col("cosine_sim_score") < 1.0 - s["eps"]).select(F.col("clip_id").alias("id"))
        kept.coalesce(1).write.mode("overwrite").parquet(cosmos_layout.uri(root, cosmos_layout.unique_ids_name(s["eps"])))
