"""The lake's Delta tables: where they live, their schemas, and idempotent writes (MERGE on keys).

``lake`` arguments are a :class:`jobs.lake.Lake` (a folder, an ``s3://`` prefix, or a
catalog.schema) or a plain path, which means ``Lake.at(path)``.
"""

import inspect
import random
import re
import time
from typing import Callable, TypeVar

from delta.exceptions import DeltaConcurrentModificationException
from delta.tables import DeltaTable
from pyspark import StorageLevel
from pyspark.errors import AnalysisException, ParseException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from curate_udfs import split_stage
from curate_udfs.errors import EnvironmentProblem, LakeConflict
from jobs.lake import Lake, TableRef

# Python types stages declare for their columns; ``list[float]`` is a float32 vector (embeddings).
_SPARK_TYPES = {str: T.StringType(), int: T.LongType(), float: T.DoubleType(), bytes: T.BinaryType(),
                list[float]: T.ArrayType(T.FloatType()), list[str]: T.ArrayType(T.StringType()),
                list[int]: T.ArrayType(T.LongType())}


def struct_of(columns: dict[str, type]) -> T.StructType:
    """A Spark schema from a stage's declared ``{column: python type}``."""
    return T.StructType([T.StructField(name, _SPARK_TYPES[kind]) for name, kind in columns.items()])


def with_fields(schema: T.StructType, *fields: T.StructField) -> T.StructType:
    """``schema`` with ``fields`` appended."""
    return T.StructType(list(schema.fields) + list(fields))


RUN_ID = T.StructField("run_id", T.StringType())

VIDEOS = with_fields(struct_of(split_stage.VIDEO_COLUMNS), RUN_ID, T.StructField("processed_at", T.TimestampType()))

# Columns later stages fill (motion, aesthetics, filtering) exist from the start, null until then.
CLIPS = with_fields(
    struct_of(split_stage.CLIP_COLUMNS),
    T.StructField("motion_global_mean", T.DoubleType()),
    T.StructField("motion_per_patch_min_256", T.DoubleType()),
    T.StructField("aesthetic_score", T.DoubleType()),
    T.StructField("artificial_text_score", T.DoubleType()),
    T.StructField("artificial_text", T.StringType()),  # the distinct lines OCR read, newline-separated
    T.StructField("filtered_by", T.StringType()),
    T.StructField("error", T.StringType()),
    RUN_ID,
    # --vlm-filter and --video-classifier (added after lake format 1's first tables: older lakes gain them at the
    # next MERGE into clips). *_answer: per caption window, the parsed verdicts or the raw unparsed answer (JSON).
    T.StructField("vlm_filter_score", T.DoubleType()),
    T.StructField("vlm_filter_answer", T.StringType()),
    T.StructField("video_type", T.StringType()),  # comma-separated types of Cosmos-Curate's taxonomy
    T.StructField("video_classifier_answer", T.StringType()),
)

# One vector per clip and embedding model (a clip can carry several models' vectors).
CLIP_EMBEDDINGS = T.StructType([
    T.StructField("clip_id", T.StringType()),
    T.StructField("model", T.StringType()),
    T.StructField("embedding", T.ArrayType(T.FloatType())),
    T.StructField("dim", T.LongType()),
    RUN_ID,
])

# One caption per clip window and annotation version; earlier versions stay as they were.
CAPTIONS = T.StructType([
    T.StructField("clip_id", T.StringType()),
    T.StructField("window_index", T.LongType()),
    T.StructField("annotation_version", T.StringType()),
    T.StructField("start_frame", T.LongType()),
    T.StructField("end_frame", T.LongType()),
    T.StructField("caption", T.StringType()),
    T.StructField("model", T.StringType()),
    T.StructField("prompt", T.StringType()),
    T.StructField("prompt_tokens", T.LongType()),
    T.StructField("output_tokens", T.LongType()),
    RUN_ID,
    T.StructField("created_at", T.TimestampType()),
    # --enhance-captions (null without it; lakes written before these existed gain them at their next MERGE)
    T.StructField("enhanced_caption", T.StringType()),
    T.StructField("enhance_model", T.StringType()),
])

# What Cosmos-Curate writes to summary.json, one row per run.
RUNS = T.StructType([
    RUN_ID,
    T.StructField("pipeline", T.StringType()),
    T.StructField("status", T.StringType()),  # running (rewritten after each commit wave) | done
    T.StructField("arguments", T.StringType()),
    T.StructField("started_at", T.TimestampType()),
    T.StructField("ended_at", T.TimestampType()),
    T.StructField("spark_master", T.StringType()),
    T.StructField("num_input_videos", T.LongType()),
    T.StructField("num_skipped_videos", T.LongType()),
    T.StructField("num_processed_videos", T.LongType()),
    T.StructField("num_error_videos", T.LongType()),
    T.StructField("num_clips", T.LongType()),
    T.StructField("total_video_duration_s", T.DoubleType()),
    T.StructField("total_clip_duration_s", T.DoubleType()),
    T.StructField("max_clip_duration_s", T.DoubleType()),
    T.StructField("pipeline_run_time_s", T.DoubleType()),
    # annotation counts (split and caption pipelines)
    T.StructField("num_filtered_motion", T.LongType()),
    T.StructField("num_filtered_aesthetic", T.LongType()),
    T.StructField("num_filtered_artificial_text", T.LongType()),
    T.StructField("num_filtered_vlm", T.LongType()),
    T.StructField("num_filtered_video_classifier", T.LongType()),
    T.StructField("num_embedded_clips", T.LongType()),
    T.StructField("num_captioned_clips", T.LongType()),
    T.StructField("num_caption_windows", T.LongType()),
    T.StructField("num_caption_output_tokens", T.LongType()),
    T.StructField("num_annotation_errors", T.LongType()),
    T.StructField("stage_resources", T.StringType()),  # JSON: GPU share per model stage, tasks given a GPU
    T.StructField("num_commit_retries", T.LongType()),  # commits tried again after a conflict with another job
    T.StructField("num_orphan_files_removed", T.LongType()),  # vacuum
    # shard pipeline
    T.StructField("input_table_versions", T.StringType()),  # JSON: the Delta version of each table read
    T.StructField("num_filtered_clips", T.LongType()),
    T.StructField("num_deduplicated_clips", T.LongType()),
    T.StructField("num_clips_without_captions", T.LongType()),
    T.StructField("num_clips_too_short", T.LongType()),  # under 5 s: no duration bin
    T.StructField("num_clips_in_dropped_shards", T.LongType()),  # --drop-small-shards
    T.StructField("num_shard_samples", T.LongType()),
    T.StructField("num_shard_errors", T.LongType()),
    T.StructField("num_tars_written", T.LongType()),
    T.StructField("num_tars_skipped", T.LongType()),
    T.StructField("num_tars_removed", T.LongType()),
])

# Every tar of a shard dataset, written after the tar is renamed into place: its size and
# sha256 are how a later run knows the tar is complete, inputs_sha256 that it is still current.
# crc32 (S3 files only; null in rows written before it existed): the full-object checksum the
# upload carried, so an s3:// file is checked by one HeadObject instead of a download.
SHARDS = T.StructType([
    T.StructField("dataset_path", T.StringType()),
    T.StructField("tar_path", T.StringType()),  # relative to dataset_path
    T.StructField("kind", T.StringType()),  # video | metas | t5_xxl
    T.StructField("annotation_version", T.StringType()),
    T.StructField("bin_dir", T.StringType()),
    T.StructField("part", T.LongType()),
    T.StructField("tar", T.LongType()),
    T.StructField("num_samples", T.LongType()),
    T.StructField("num_bytes", T.LongType()),
    T.StructField("sha256", T.StringType()),
    T.StructField("crc32", T.StringType()),  # base64 of the big-endian CRC32, as S3's x-amz-checksum-crc32
    T.StructField("inputs_sha256", T.StringType()),
    T.StructField("keys", T.ArrayType(T.StringType())),
    T.StructField("clip_ids", T.ArrayType(T.StringType())),
    T.StructField("errors", T.ArrayType(T.StringType())),
    RUN_ID,
    T.StructField("created_at", T.TimestampType()),
])

# SemDeDup per clip and embedding model: a dedup run replaces its model's rows wholesale.
SEMANTIC_DEDUP = T.StructType([
    T.StructField("clip_id", T.StringType()),
    T.StructField("model", T.StringType()),
    T.StructField("cluster_id", T.LongType()),
    T.StructField("cosine_dist_to_cent", T.DoubleType()),
    T.StructField("max_id", T.StringType()),
    T.StructField("cosine_sim_score", T.DoubleType()),
    RUN_ID,
])

# Cosmos-Curate's dedup_summary_{eps}.csv, one row per eps and dedup run.
DEDUP_SUMMARY = T.StructType([
    T.StructField("eps", T.DoubleType()),
    RUN_ID,
    T.StructField("model", T.StringType()),
    T.StructField("kept", T.LongType()),
    T.StructField("removed", T.LongType()),
    T.StructField("total", T.LongType()),
])

# The k-means centroids a dedup run found for a model (kmeans_centroids.npy, as rows).
DEDUP_CENTROIDS = T.StructType([
    T.StructField("model", T.StringType()),
    T.StructField("cluster_id", T.LongType()),
    T.StructField("centroid", T.ArrayType(T.FloatType())),
    T.StructField("size", T.LongType()),
    RUN_ID,
])

TABLES = {
    "videos": (VIDEOS, ["video_id"]),
    "clips": (CLIPS, ["clip_id"]),
    "clip_embeddings": (CLIP_EMBEDDINGS, ["clip_id", "model"]),
    "captions": (CAPTIONS, ["clip_id", "window_index", "annotation_version"]),
    "semantic_dedup": (SEMANTIC_DEDUP, ["clip_id", "model"]),
    "dedup_summary": (DEDUP_SUMMARY, ["eps", "run_id"]),
    "shards": (SHARDS, ["dataset_path", "tar_path"]),
    "dedup_centroids": (DEDUP_CENTROIDS, ["model", "cluster_id"]),
    "runs": (RUNS, ["run_id"]),
}


def _as_lake(lake: "Lake | str") -> Lake:
    return lake if isinstance(lake, Lake) else Lake.at(lake)


def _ref(lake: "Lake | str", name: str) -> TableRef:
    return _as_lake(lake).table(name)


def table_path(lake: "Lake | str", name: str) -> str:
    """The location of table ``name`` in a path lake (a catalog lake's tables have names instead)."""
    ref = _ref(lake, name)
    if ref.path is None:
        raise ValueError(f"table {ref.name} is a catalog table; use its name")
    return ref.path


SESSION_CATALOG = "`spark_catalog`."  # as Lake.table quotes it


def _by_name(spark: SparkSession, name: str) -> DeltaTable:
    """``DeltaTable.forName``. Open-source Delta before 4.0 (Spark 3.5) parses schema.table only
    there, so a table of Spark's own catalog is named without the catalog for it."""
    try:
        return DeltaTable.forName(spark, name)
    except ParseException:
        if not name.startswith(SESSION_CATALOG):
            raise
        return DeltaTable.forName(spark, name.removeprefix(SESSION_CATALOG))


# Many jobs share a lake: a commit that conflicts with another job's is tried again, up to this many
# times, waiting a random time up to a doubling bound between tries (the results are already computed).
COMMIT_TRIES = 12
FIRST_BACKOFF_S, MAX_BACKOFF_S = 0.5, 20.0
T_ = TypeVar("T_")


_retried = 0  # commits of this process tried again after a conflict


def commit_retries() -> int:
    """How many commits this process has tried again after a conflict with another job."""
    return _retried


_CONFLICT = re.compile(r"(Concurrent\w*|MetadataChanged|ProtocolChanged)Exception$")


def _conflict_name(error: BaseException) -> str | None:
    """The Delta conflict ``error`` is (``ConcurrentAppendException``...), else None.

    Delta's Python classes cover some calls; others (a MERGE builder's ``execute``) surface as a
    Py4J error around the JVM's ``io.delta.exceptions`` class, so the Java cause chain is read too.
    delta-rs (jobs/lake_rs.py) raises ``deltalake.exceptions.CommitFailedError``.
    """
    if isinstance(error, DeltaConcurrentModificationException) or _is_delta_rs_conflict(error):
        return type(error).__name__
    java = getattr(error, "java_exception", None)
    while java is not None:
        name = java.getClass().getSimpleName()
        if _CONFLICT.search(name):
            return name
        java = java.getCause()
    return None


def _is_delta_rs_conflict(error: BaseException) -> bool:
    try:
        from deltalake.exceptions import CommitFailedError
    except ImportError:
        return False
    return isinstance(error, CommitFailedError)


def committed(what: str, commit: Callable[[], T_], tries: int = COMMIT_TRIES) -> T_:
    """Run ``commit`` (one Delta commit), again after a conflict with a concurrent job's commit.

    Example::

        committed("MERGE into clips", lambda: target.merge(...).execute())

    Safe only for keyed, idempotent writes (MERGE on keys, replaceWhere of a slice): trying one
    again leaves the table as one success would. After ``tries`` conflicts it raises
    :class:`LakeConflict`, a one-line message.
    """
    bound = FIRST_BACKOFF_S
    for attempt in range(1, tries + 1):
        try:
            return commit()
        except Exception as e:
            conflict = _conflict_name(e)
            if conflict is None:
                raise
            global _retried
            _retried += 1
            if attempt == tries:
                raise LakeConflict(f"{what} still conflicted with other jobs' commits after {tries} tries "
                                   f"({conflict}); run the job again: what it committed is kept") from None
        time.sleep(random.uniform(bound / 2, bound))
        bound = min(bound * 2, MAX_BACKOFF_S)
    raise AssertionError("unreachable")


# The layout of a lake's tables this cliplake writes, kept as a property of each table it creates: a
# later cliplake that changes the layout raises it, and this one then refuses to write that lake.
LAKE_FORMAT = 1
LAKE_FORMAT_PROPERTY = "cliplake.lakeFormat"


def check_lake_format(spark: SparkSession, lake: "Lake | str") -> None:
    """Raise :class:`EnvironmentProblem` (one sentence) when ``lake`` was written by a newer cliplake."""
    if not exists(spark, lake, "runs"):
        return
    found = int(delta_table(spark, lake, "runs").detail().first().properties.get(LAKE_FORMAT_PROPERTY, LAKE_FORMAT))
    if found > LAKE_FORMAT:
        raise EnvironmentProblem(
            f"{lake} was written by a newer cliplake (lake format {found}; this cliplake writes format {LAKE_FORMAT}): "
            "upgrade cliplake (pip install -U 'cliplake[spark]') or write to another --output-path")


def ensure_table(spark: SparkSession, lake: "Lake | str", name: str) -> DeltaTable:
    """The Delta table ``name`` of ``lake``, created empty with its schema if it does not exist.

    Another job creating it at the same moment is not an error: its table is used.
    """
    schema, _ = TABLES[name]
    ref = _ref(lake, name)

    def create() -> DeltaTable:
        if ref.name:
            # Delta's table builder parses two-part names only; saveAsTable takes catalog.schema.table.
            if not spark.catalog.tableExists(ref.name):
                spark.createDataFrame([], schema).write.format("delta").mode("ignore").saveAsTable(ref.name)
                spark.sql(f"ALTER TABLE {ref.name} SET TBLPROPERTIES ('{LAKE_FORMAT_PROPERTY}' = '{LAKE_FORMAT}')")
            return _by_name(spark, ref.name)
        return (DeltaTable.createIfNotExists(spark).location(ref.path).addColumns(schema)
                .property(LAKE_FORMAT_PROPERTY, str(LAKE_FORMAT)).execute())

    for attempt in range(COMMIT_TRIES):
        try:
            return committed(f"creating table {name}", create)
        except AnalysisException:
            # Lost a creation race (DELTA_CREATE_TABLE_WITH_NON_EMPTY_LOCATION: the other job's first commit is
            # under way; TABLE_OR_VIEW_ALREADY_EXISTS): the table is there, or will be in a moment.
            if exists(spark, lake, name):
                return delta_table(spark, lake, name)
            if attempt == COMMIT_TRIES - 1:
                raise
            time.sleep(random.uniform(FIRST_BACKOFF_S / 2, FIRST_BACKOFF_S))
    raise AssertionError("unreachable")


def ensure_tables(spark: SparkSession, lake: "Lake | str", names=None) -> None:
    """:func:`ensure_table` for each of ``names`` (default: every table), created side by side; by
    delta-rs where it can (a folder lake: milliseconds a table, where Spark takes seconds)."""
    from jobs import lake_rs  # (it builds on this module)

    names, folder = names or list(TABLES), _as_lake(lake)
    if lake_rs.writable(folder, names):
        for name in names:
            lake_rs.ensure_table(folder, name)
        return
    side_by_side(*[lambda name=name: ensure_table(spark, lake, name) for name in names])


def side_by_side(*writes: Callable[[], T_]) -> list[T_]:
    """Run ``writes`` at once and return their results; raises the first one's error after all have ended.

    For commits to different tables, which cannot conflict: a small commit mostly waits (planning,
    reading the log, the object store), so two cores carry several at a time.
    """
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = [pool.submit(write) for write in writes]
    return [f.result() for f in futures]


def exists(spark: SparkSession, lake: "Lake | str", name: str) -> bool:
    ref = _ref(lake, name)
    return spark.catalog.tableExists(ref.name) if ref.name else DeltaTable.isDeltaTable(spark, ref.path)


def read_table(spark: SparkSession, lake: "Lake | str", name: str, version: int | None = None) -> DataFrame:
    """Table ``name`` of ``lake``, as of Delta ``version`` when given (time travel, paths and names alike)."""
    ref = _ref(lake, name)
    if ref.name:
        if version is None:
            return spark.read.table(ref.name)
        return spark.sql(f"SELECT * FROM {ref.name} VERSION AS OF {int(version)}")
    reader = spark.read.format("delta")
    if version is not None:
        reader = reader.option("versionAsOf", int(version))
    return reader.load(ref.path)


def delta_table(spark: SparkSession, lake: "Lake | str", name: str) -> DeltaTable:
    """The existing Delta table ``name`` of ``lake`` (for its history and version)."""
    ref = _ref(lake, name)
    return _by_name(spark, ref.name) if ref.name else DeltaTable.forPath(spark, ref.path)


def latest_version(spark: SparkSession, lake: "Lake | str", name: str) -> int:
    """The Delta version of table ``name``'s latest commit."""
    return delta_table(spark, lake, name).history(1).first().version


def _conform(rows: DataFrame, schema: T.StructType) -> DataFrame:
    """``rows`` with exactly the table's columns, in order and type (missing ones null)."""
    return rows.select([
        (rows[f.name] if f.name in rows.columns else F.lit(None)).cast(f.dataType).alias(f.name) for f in schema.fields
    ])


def replace_rows(spark: SparkSession, lake: "Lake | str", name: str, rows: DataFrame, where: str) -> None:
    """Atomically replace every row of table ``name`` matching ``where`` by ``rows``.

    Example::

        replace_rows(spark, lake, "semantic_dedup", results, "model = 'internvideo2'")

    Unlike :func:`merge_rows`, keys absent from ``rows`` do not survive: use it when a job
    recomputes a whole slice (one model's dedup), so rows for clips that vanished or moved leave
    nothing stale. Every row of ``rows`` must satisfy ``where`` (Delta checks it and fails).
    """
    schema, _ = TABLES[name]
    ensure_table(spark, lake, name)
    ref = _ref(lake, name)
    writer = computed(_conform(rows, schema)).write.format("delta").mode("overwrite").option("replaceWhere", where)
    committed(f"replacing rows of {name}", lambda: writer.saveAsTable(ref.name) if ref.name else writer.save(ref.path))


def computed(rows: DataFrame) -> DataFrame:
    """``rows`` computed once, so a commit tried again never computes them again (a checkpoint, not a
    cache: a cached plan that reads the target table would be recomputed when the commit refreshes it).

    On a cluster the checkpoint's blocks are kept on two executors where Spark allows it (Spark 4),
    so losing one executor right after the checkpoint does not fail the job (a local checkpoint
    cannot be recomputed); local mode (one block manager) and Spark 3.5 keep one copy.
    """
    master = rows.sparkSession.sparkContext.master
    on_cluster = not (master == "local" or master.startswith("local["))
    if on_cluster and "storageLevel" in inspect.signature(DataFrame.localCheckpoint).parameters:
        return rows.localCheckpoint(eager=True, storageLevel=StorageLevel.MEMORY_AND_DISK_2)
    return rows.localCheckpoint(eager=True)


def _by_delta_rs(lake: "Lake | str", name: str, num_rows: int | None) -> bool:
    """Whether ``num_rows`` rows (None: not counted) are committed into table ``name`` by delta-rs in the driver."""
    from jobs import lake_rs  # (it builds on this module)

    return num_rows is not None and lake_rs.takes(_as_lake(lake), [name], num_rows)


def merge_rows(spark: SparkSession, lake: "Lake | str", name: str, rows: DataFrame, cached: bool = False,
               num_rows: int | None = None) -> None:
    """Upsert ``rows`` into table ``name`` on its keys: new keys inserted, existing ones replaced.

    ``rows`` is conformed to the table's columns (missing ones null), so running the same write
    twice leaves the table as one write did. Keys must be unique within ``rows``. ``cached``: the
    rows are a cheap query over a cached result that does not read this table (no checkpoint needed).
    ``num_rows``, when the caller has counted them: a small commit into a folder lake is made by
    delta-rs in the driver (:func:`jobs.lake_rs.takes`), milliseconds where Spark's MERGE takes seconds.
    """
    from jobs import lake_rs

    if _by_delta_rs(lake, name, num_rows):
        lake_rs.merge_rows(_as_lake(lake), name, lake_rs.collected(rows))
        return
    schema, keys = TABLES[name]
    conformed = _conform(rows, schema) if cached else computed(_conform(rows, schema))
    target = ensure_table(spark, lake, name)
    # Schema evolution: a lake written by an older cliplake gains the columns added since.
    committed(f"MERGE into {name}", lambda: target.alias("t").merge(conformed.alias("s"), on_keys(keys))
              .withSchemaEvolution().whenMatchedUpdateAll().whenNotMatchedInsertAll().execute())


def update_columns(spark: SparkSession, lake: "Lake | str", name: str, rows: DataFrame,
                   num_rows: int | None = None) -> None:
    """Set ``rows``' non-key columns on the existing rows of table ``name`` with the same keys.

    Other columns keep their values and keys absent from the table are ignored: this is how
    annotation stages fill in their columns of ``clips``. Keys must be unique within ``rows``.
    ``num_rows``: as :func:`merge_rows`'s.
    """
    from jobs import lake_rs

    if _by_delta_rs(lake, name, num_rows):
        lake_rs.update_columns(_as_lake(lake), name, lake_rs.collected(rows))
        return
    schema, keys = TABLES[name]
    types = {f.name: f.dataType for f in schema.fields}
    values = [c for c in rows.columns if c not in keys]
    conformed = computed(rows.select(*keys, *[rows[c].cast(types[c]).alias(c) for c in values]))
    target = ensure_table(spark, lake, name)
    committed(f"MERGE into {name}", lambda: target.alias("t").merge(conformed.alias("s"), on_keys(keys))
              .withSchemaEvolution().whenMatchedUpdate(set={c: f"s.{c}" for c in values}).execute())


def delete_rows(spark: SparkSession, lake: "Lake | str", name: str, keys: DataFrame) -> None:
    """Delete the rows of table ``name`` whose keys are in ``keys`` (a frame of the key columns)."""
    _, key_columns = TABLES[name]
    target = ensure_table(spark, lake, name)
    committed(f"deleting from {name}", lambda: target.alias("t").merge(computed(keys).alias("s"), on_keys(key_columns))
              .whenMatchedDelete().execute())


def on_keys(keys: list[str]) -> str:
    """A MERGE condition matching target ``t`` and source ``s`` on ``keys`` (Delta Spark and delta-rs alike)."""
    return " AND ".join(f"t.{k} = s.{k}" for k in keys)


def delta_tables_under(spark: SparkSession, lake: "Lake | str") -> dict[str, TableRef]:
    """Every Delta table of ``lake`` by name: folders holding a ``_delta_log`` under a path lake
    (listed with Spark's own Hadoop filesystem, so s3a and the platforms' stores work), the
    tables of a catalog lake's schema."""
    lake = _as_lake(lake)
    if lake.in_catalog:
        if not spark.catalog.databaseExists(f"`{lake.catalog}`.`{lake.schema}`"):
            return {}
        found = spark.sql(f"SHOW TABLES IN `{lake.catalog}`.`{lake.schema}`").collect()
        return {r.tableName: lake.table(r.tableName) for r in sorted(found, key=lambda r: r.tableName) if not r.isTemporary}
    jvm = spark.sparkContext._jvm
    root = jvm.org.apache.hadoop.fs.Path(lake.root)
    fs = root.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    if not fs.exists(root):
        return {}
    found = {}
    for status in fs.listStatus(root):
        name = status.getPath().getName()
        if status.isDirectory() and fs.exists(jvm.org.apache.hadoop.fs.Path(status.getPath(), "_delta_log")):
            found[name] = lake.table(name)
    return dict(sorted(found.items()))
