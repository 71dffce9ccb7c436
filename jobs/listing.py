"""Which videos a job should read: a folder walked recursively, or a JSON list; local or on S3.

The listing is a DataFrame, not a Python list: a JSON list is read by Spark, and a folder or
prefix is listed by the executors, one task per first-level folder (cameras, days...), so the
driver holds nothing per video however long the list is. Waves then stream it back in order.
"""

import os

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from curate_udfs import objectstore
from curate_udfs.objectstore import S3Access
from jobs import s3a, work_plan

VIDEO_EXTENSIONS = (".mp4", ".mov", ".mkv", ".webm", ".avi")
# A video's bytes (null when unknown: an s3:// path from a JSON list; 0 when missing) and its place in the list.
LISTED_SCHEMA = "source_path string, num_bytes long, position long"
FOLDER_TASKS_PER_CORE = 8  # listing waits on storage more than on a core


def listed_videos(spark: SparkSession, input_video_path: str | None = None, input_video_list_json_path: str | None = None,
                  limit: int | None = None, input_access: S3Access | None = None,
                  list_access: S3Access | None = None) -> DataFrame:
    """Video paths to process (:data:`LISTED_SCHEMA`); ``source_path`` in the tables is each path exactly as listed.

    A folder is walked recursively for files ending in one of :data:`VIDEO_EXTENSIONS` (any case)
    and its paths are made absolute, so ids do not depend on the working directory; they come in
    path order. A JSON list is used as written, in its order, repeats dropped. ``limit`` keeps the
    first N.

    ``s3://bucket/prefix`` works for both: every object under the prefix with a video extension
    (read with ``input_access``), or a JSON list stored in S3 (read through S3A with ``list_access``).
    A missing bucket or denied access raises :class:`~curate_udfs.errors.StorageError`.
    """
    if bool(input_video_path) == bool(input_video_list_json_path):
        raise ValueError("give exactly one of --input-video-path and --input-video-list-json-path")
    input_access = input_access or S3Access()
    if input_video_list_json_path:
        listed = _json_list(spark, input_video_list_json_path, list_access or S3Access())
    elif objectstore.is_s3(input_video_path):
        listed = _s3_prefix(spark, input_video_path, input_access)
    elif os.path.isfile(input_video_path):
        path = os.path.abspath(input_video_path)
        listed = spark.createDataFrame([(path, os.path.getsize(path), 0)], LISTED_SCHEMA)
    elif os.path.isdir(input_video_path):
        listed = _local_folder(spark, os.path.abspath(input_video_path))
    else:
        raise ValueError(f"--input-video-path {input_video_path} does not exist")
    return listed.orderBy("position", "source_path").limit(limit) if limit else listed


def _json_list(spark: SparkSession, path: str, access: S3Access) -> DataFrame:
    """The list's paths with their positions; the file is parsed by Spark (one task), never by Python."""
    if objectstore.is_s3(path):
        path = objectstore.normalize(path)
        if objectstore.object_size(path, access) is None:  # (also: a missing bucket or denied access, in one sentence)
            raise ValueError(f"{path}: no such object")
        s3a.configure(spark, path, access)
    elif not os.path.isfile(path):
        raise ValueError(f"--input-video-list-json-path {path} does not exist")
    else:
        path = os.path.abspath(path)
    parsed = spark.read.text(path, wholetext=True).select(F.from_json("value", "array<string>").alias("paths"))
    if parsed.where(F.col("paths").isNull()).limit(1).count():  # (not a JSON list of strings)
        raise ValueError(f"{path} must hold a JSON list of path strings")
    entries = parsed.select(F.posexplode("paths").alias("position", "source_path")).where(F.col("source_path").isNotNull())
    first = entries.groupBy("source_path").agg(F.min("position").alias("position"))  # repeats dropped, first kept
    return first.select("source_path", _local_size("source_path").alias("num_bytes"), "position")


@F.pandas_udf(T.LongType())
def _local_size(paths):
    """Bytes of each local file (0 when missing: it costs nothing to plan), null for s3:// (unknown), on the executors."""
    def size(path: str):
        if objectstore.is_s3(path):
            return None
        try:
            return os.path.getsize(path)
        except OSError:
            return 0

    return paths.map(size).astype("Int64")


def _s3_prefix(spark: SparkSession, uri: str, access: S3Access) -> DataFrame:
    """One object (when ``uri`` names a video object) or the videos under the prefix ``uri``, listed by the executors."""
    if _is_video(uri):
        size = objectstore.object_size(uri, access)
        if size is not None:
            return spark.createDataFrame([(objectstore.normalize(uri), size, 0)], LISTED_SCHEMA)
    top, folders = objectstore.list_first_level(uri, access)

    def below(folder):
        return _video_rows((location, size) for location, size, _ in objectstore.list_below(folder, access))

    listed = _listed_by_tasks(spark, _video_rows((location, size) for location, size, _ in top), folders, below)
    if not listed.limit(1).count():
        raise ValueError(f"--input-video-path {uri} holds no videos ({', '.join(VIDEO_EXTENSIONS)})")
    return listed


def _local_folder(spark: SparkSession, root: str) -> DataFrame:
    """The videos under ``root``: its first level listed here, each subfolder walked by a task."""
    entries = sorted(os.scandir(root), key=lambda e: e.name)
    folders = [entry.path for entry in entries if entry.is_dir()]
    top = _video_rows((entry.path, entry.stat().st_size) for entry in entries if not entry.is_dir())

    def below(folder):
        paths = (os.path.join(d, name) for d, _, names in os.walk(folder) for name in names)
        return _video_rows((path, os.path.getsize(path)) for path in paths if _is_video(path))

    return _listed_by_tasks(spark, top, folders, below)


def _is_video(path: str) -> bool:
    return path.lower().endswith(VIDEO_EXTENSIONS)


def _video_rows(entries) -> list[tuple[str, int, int]]:
    """:data:`LISTED_SCHEMA` rows (position 0: folders sort by path) of the (path, bytes) entries that are videos."""
    return [(path, size, 0) for path, size in entries if _is_video(path)]


def _listed_by_tasks(spark: SparkSession, top: list[tuple], folders: list[str], below) -> DataFrame:
    """``top`` rows plus ``below(folder)``'s rows for every folder, one Spark task per folder."""
    listed = spark.createDataFrame(top, LISTED_SCHEMA)
    if folders:
        tasks = min(len(folders), FOLDER_TASKS_PER_CORE * spark.sparkContext.defaultParallelism)
        rows = spark.sparkContext.parallelize(folders, tasks).flatMap(below)
        listed = listed.unionByName(spark.createDataFrame(rows, LISTED_SCHEMA))
    return listed


def cached_with_totals(pending: DataFrame, unknown_bytes: int = 0) -> tuple[DataFrame, int, int]:
    """``pending`` (``source_path``, ``num_bytes``) cached, to stream with :func:`waves_of`; its rows
    and their bytes (a null ``num_bytes`` counts as ``unknown_bytes``), in one Spark job."""
    pending = pending.persist(StorageLevel.MEMORY_AND_DISK)
    size = F.coalesce("num_bytes", F.lit(unknown_bytes))
    row = pending.agg(F.count("*").alias("n"), F.sum(size).alias("bytes")).first()
    return pending, row.n, int(row.bytes or 0)


def waves_of(pending: DataFrame, sizer: work_plan.WaveSizer):
    """``pending``'s ``source_path``s in waves (:func:`work_plan.waves`), streamed to the driver a partition
    at a time: the driver never holds the whole list. Cache ``pending`` first, or each partition recomputes it."""
    rows = ((r.source_path, work_plan.work_bytes(r.num_bytes)) for r in pending.toLocalIterator())
    return work_plan.waves(rows, sizer)
