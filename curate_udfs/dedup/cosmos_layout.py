"""Cosmos-Curate's dedup output files, so its downstream tools read cliplake's results unchanged.

    {root}/clustering_results/kmeans_centroids.npy
    {root}/clustering_results/embs_by_nearest_center/nearest_cent_{c}/actor_0.parquet  (id, embedding, cosine_dist_to_cent)
    {root}/extraction/semdedup_pruning_tables/cluster_{c}.parquet                 (id, max_id, cosine_sim_score)
    {root}/extraction/dedup_summary_{eps:.6g}.csv                                 (eps,kept,removed,total)
    {root}/extraction/unique_ids_{eps:.6g}.parquet                                (id: the clips kept at eps; Spark's folder)

``root`` is a local path, an ``s3://`` URI (written with boto3 through ``access``, one PUT per
file) or another URI pyarrow opens (``gs://``, ``hdfs://``). Each file is written to a temporary
name and renamed where the filesystem allows, so a retried task replaces its file.
"""

import io
import os
import uuid

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pyarrow import fs

from curate_udfs import objectstore, storage
from curate_udfs.objectstore import S3Access

CENTROIDS = "clustering_results/kmeans_centroids.npy"
EMBEDDINGS_BY_CENTER = "clustering_results/embs_by_nearest_center"
PRUNING_TABLES = "extraction/semdedup_pruning_tables"
PRUNING_COLUMNS = ("id", "max_id", "cosine_sim_score")
SUMMARY_COLUMNS = ("eps", "kept", "removed", "total")


def _filesystem(root: str) -> tuple[fs.FileSystem, str]:
    if "://" not in root:
        root = os.path.abspath(root)
    return fs.FileSystem.from_uri(root)


def uri(root: str, relative: str) -> str:
    """``root/relative`` as a path or URI Spark and pyarrow both accept."""
    root = root if "://" in root else os.path.abspath(root)
    return f"{root.rstrip('/')}/{relative}"


def clear_layout(root: str, access: S3Access | None = None) -> None:
    """Remove earlier ``clustering_results/`` and ``extraction/`` under ``root`` (nothing else)."""
    if objectstore.is_s3(root):
        for folder in ("clustering_results", "extraction"):
            for key, _ in list(objectstore.list_objects(storage.join(root, folder), access or S3Access())):
                objectstore.delete(key, access or S3Access())
        return
    filesystem, base = _filesystem(root)
    for folder in ("clustering_results", "extraction"):
        path = f"{base.rstrip('/')}/{folder}"
        if filesystem.get_file_info(path).type != fs.FileType.NotFound:
            filesystem.delete_dir(path)


def _write_atomic(root: str, relative: str, data: bytes, access: S3Access | None = None) -> str:
    if objectstore.is_s3(root):  # pyarrow's S3 would not know the lake's profile or endpoint
        path = storage.join(objectstore.normalize(root), relative)
        storage.write_bytes_atomic(path, data, access)
        return path
    filesystem, base = _filesystem(root)
    path = f"{base.rstrip('/')}/{relative}"
    folder = path.rsplit("/", 1)[0]
    filesystem.create_dir(folder, recursive=True)
    tmp = f"{folder}/.{path.rsplit('/', 1)[1]}.tmp-{uuid.uuid4().hex}"
    with filesystem.open_output_stream(tmp) as out:
        out.write(data)
    filesystem.move(tmp, path)
    return path


def pruning_table_name(cluster_id: int) -> str:
    return f"{PRUNING_TABLES}/cluster_{cluster_id}.parquet"


def summary_name(eps: float) -> str:
    """``dedup_summary_0.01.csv`` for eps 0.01 (``{eps:.6g}``, as Cosmos-Curate's code names it)."""
    return f"extraction/dedup_summary_{eps:.6g}.csv"


def unique_ids_name(eps: float) -> str:
    """``unique_ids_0.01.parquet``: the ids kept at eps, which Cosmos-Curate's shard step reads first."""
    return f"extraction/unique_ids_{eps:.6g}.parquet"


def by_center_name(cluster_id: int) -> str:
    return f"{EMBEDDINGS_BY_CENTER}/nearest_cent_{cluster_id}/actor_0.parquet"


def write_centroids(root: str, centroids: np.ndarray, access: S3Access | None = None) -> str:
    """``kmeans_centroids.npy``: the (k, dim) float32 centroids, row c for cluster c."""
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(centroids, dtype=np.float32))
    return _write_atomic(root, CENTROIDS, buffer.getvalue(), access)


def write_pruning_table(root: str, cluster_id: int, frame: pd.DataFrame, access: S3Access | None = None) -> str:
    """``cluster_{c}.parquet`` from a frame of clip_id, max_id, cosine_sim_score (kept in its row order)."""
    table = pa.table({
        "id": pa.array(frame["clip_id"].astype(str).tolist(), pa.string()),
        "max_id": pa.array(frame["max_id"].astype(str).tolist(), pa.string()),
        "cosine_sim_score": pa.array(frame["cosine_sim_score"].to_numpy(np.float64), pa.float64()),
    })
    buffer = pa.BufferOutputStream()
    pq.write_table(table, buffer)
    return _write_atomic(root, pruning_table_name(cluster_id), buffer.getvalue().to_pybytes(), access)


def write_by_center(root: str, cluster_id: int, frame: pd.DataFrame, access: S3Access | None = None) -> str:
    """``nearest_cent_{c}/actor_0.parquet`` from a frame of clip_id, embedding (unit), cosine_dist_to_cent."""
    table = pa.table({
        "id": pa.array(frame["clip_id"].astype(str).tolist(), pa.string()),
        "embedding": pa.array([np.asarray(v, dtype=np.float32) for v in frame["embedding"]], pa.list_(pa.float32())),
        "cosine_dist_to_cent": pa.array(frame["cosine_dist_to_cent"].to_numpy(np.float64), pa.float64()),
    })
    buffer = pa.BufferOutputStream()
    pq.write_table(table, buffer)
    return _write_atomic(root, by_center_name(cluster_id), buffer.getvalue().to_pybytes(), access)


def write_summary(root: str, eps: float, kept: int, removed: int, total: int, access: S3Access | None = None) -> str:
    """``dedup_summary_{eps}.csv``: one header line and one row."""
    text = pd.DataFrame([[eps, kept, removed, total]], columns=list(SUMMARY_COLUMNS)).to_csv(index=False)
    return _write_atomic(root, summary_name(eps), text.encode(), access)
