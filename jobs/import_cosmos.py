"""`cliplake import-cosmos`: a Cosmos-Curate split output folder read into a lake's tables.

``processed_videos/`` becomes ``videos``, ``metas/{version}/`` becomes ``clips`` and that
version's ``captions``, ``*_embd_parquet/`` becomes ``clip_embeddings``; Cosmos-Curate's ids are
kept and clip rows point at the folder's mp4s (``--copy-media`` copies them into the lake). The
files are read and parsed by Spark tasks; every table is written with MERGE on its keys, so an
import run again changes nothing. A file that is not a Cosmos-Curate record becomes a clip (or
video) row with an error naming it.

    cliplake import-cosmos --input-clip-path COSMOS_OUT --output-path LAKE [--copy-media]
"""

import argparse
import uuid
from datetime import datetime, timezone

from pyspark.errors import AnalysisException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from curate_udfs import cosmos_layout, objectstore, split_stage, storage
from curate_udfs.objectstore import S3Access
from jobs import runs, s3a, storage_options, tables
from jobs.lake import Lake, listed_path, normalize_location
from jobs.report import print_table

PIPELINE = "import-cosmos"
VIDEO_SCHEMA = tables.struct_of(split_stage.VIDEO_COLUMNS)
CLIP_SCHEMA = T.StructType([f for f in tables.CLIPS.fields if f.name != "run_id"])
CAPTION_SCHEMA = T.StructType([f for f in tables.CAPTIONS.fields if f.name not in ("run_id", "created_at")])


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input-clip-path", required=True,
                        help="Cosmos-Curate's split output folder or s3:// prefix (clips/, metas/, *_embd_parquet/ ...)")
    parser.add_argument("--input-s3-profile-name", default=None, help="AWS profile for an s3:// --input-clip-path")
    parser.add_argument("--output-path", required=True, help="the lake to import into (folder or s3://bucket/prefix)")
    storage_options.add_lake_arguments(parser)
    parser.add_argument("--copy-media", action="store_true",
                        help="copy the clip mp4s into the lake (media/clips/) instead of pointing at the folder's")


def _whole_files(spark: SparkSession, pattern: str, recursive: bool = False) -> DataFrame | None:
    """``(path, text)`` of each file matching ``pattern``; None when nothing matches."""
    reader = spark.read.option("recursiveFileLookup", "true") if recursive else spark.read
    try:
        return reader.text(pattern, wholetext=True).select(F.col("_metadata.file_path").alias("path"), F.col("value").alias("text"))
    except AnalysisException:  # PATH_NOT_FOUND: the folder has none of these
        return None


_CASTS = {T.LongType: int, T.DoubleType: float, T.StringType: str}


def _typed(record: dict, schema: T.StructType) -> tuple:
    """``record`` as a row of ``schema`` (JSON's 30 for a double column becomes 30.0; missing keys null)."""
    values = []
    for field in schema.fields:
        value, cast = record.get(field.name), _CASTS.get(type(field.dataType))
        values.append(cast(value) if value is not None and cast else value)
    return tuple(values)


def _metas_rows(root: str, part: str, schema: T.StructType):
    """Turns one metas file ``(path, text)`` into ``clips`` rows (``part="clip"``) or ``captions`` rows."""
    names = schema.fieldNames()

    def rows(file):
        try:
            clip, captions = cosmos_layout.read_metas(listed_path(file.path), file.text, root)
        except ValueError as e:  # one unreadable file is one error row, never a failed import
            clip, captions = {"clip_id": file.path.rsplit("/", 1)[-1].removesuffix(".json"), "error": str(e)}, []
        return [_typed(record, schema) for record in ([clip] if part == "clip" else captions)]
    return rows


def _video_row(file) -> tuple:
    try:
        record = cosmos_layout.read_processed_video(listed_path(file.path), file.text)
    except ValueError as e:
        record = {"video_id": str(uuid.uuid5(uuid.NAMESPACE_URL, file.path)), "source_path": listed_path(file.path),
                  "status": "error", "error": str(e)}
    return _typed(record, VIDEO_SCHEMA)


def _parsed(spark: SparkSession, files: DataFrame, rows, schema: T.StructType) -> DataFrame:
    """Records parsed from whole files by Spark tasks (Python objects with nulls anywhere: plain rows, not Arrow)."""
    return spark.createDataFrame(files.rdd.flatMap(rows), schema)


def _embeddings(spark: SparkSession, root: str) -> DataFrame | None:
    """``(clip_id, model, embedding, dim)`` from every ``*_embd_parquet/`` folder, the model named by the folder."""
    try:
        found = spark.read.parquet(storage.join(root, "*_embd_parquet", "*.parquet"))
    except AnalysisException:
        return None
    folder = F.regexp_extract(F.col("_metadata.file_path"), r"/([^/]+_embd)_parquet/[^/]+$", 1)
    model = F.udf(cosmos_layout.embedding_model)(folder)
    vector = F.col("embedding").cast("array<float>")
    return found.select(F.col("id").alias("clip_id"), model.alias("model"), vector.alias("embedding"),
                        F.size(vector).cast("long").alias("dim"))


def _copy_media(spark: SparkSession, clips: DataFrame, lake: Lake, access: S3Access) -> DataFrame:
    """The clips' mp4s copied into the lake's media folder (an existing copy of the same size is kept)."""
    target, names = lake.media("clips"), clips.columns

    def copy(clip):
        record = clip.asDict()
        size = storage.size(record["location"], access) if record["location"] else None
        if size is not None:
            path = storage.join(target, f"{record['clip_id']}.mp4")
            if storage.size(path, lake.access) != size:
                storage.copy_file(record["location"], path, access, lake.access)
            record["location"] = path
        return tuple(record[n] for n in names)

    return spark.createDataFrame(clips.rdd.map(copy), clips.schema)


def run(spark: SparkSession, args: argparse.Namespace) -> dict:
    started = datetime.now(timezone.utc)
    root, access = normalize_location(args.input_clip_path), S3Access(profile_name=args.input_s3_profile_name)
    if objectstore.is_s3(root):
        s3a.configure(spark, root, access)
    lake = Lake.from_args(args).open(spark, for_writing=True)
    metas = _whole_files(spark, storage.join(root, "metas", "*", "*.json"))
    if metas is None:
        raise ValueError(f"{root} holds no metas/{{version}}/*.json: not a Cosmos-Curate split output")
    tables.ensure_tables(spark, lake)
    run_id = str(uuid.uuid4())
    stamp = F.lit(run_id).alias("run_id")

    # One clips row per clip (each version's file repeats it), computed once.
    clips = _parsed(spark, metas, _metas_rows(root, "clip", CLIP_SCHEMA), CLIP_SCHEMA).dropDuplicates(["clip_id"])
    if args.copy_media:
        clips = _copy_media(spark, clips, lake, access)
    clips = clips.localCheckpoint()
    videos_files = _whole_files(spark, storage.join(root, "processed_videos"), recursive=True)
    counts = {"num_clips": clips.count(), "num_annotation_errors": clips.where("error IS NOT NULL").count()}
    if videos_files is not None:
        videos = _parsed(spark, videos_files, lambda file: [_video_row(file)], VIDEO_SCHEMA).localCheckpoint()
        tables.merge_rows(spark, lake, "videos", videos.select("*", stamp, F.current_timestamp().alias("processed_at")),
                          cached=True)
        counts["num_processed_videos"] = videos.where("status = 'ok'").count()
    tables.merge_rows(spark, lake, "clips", clips.select("*", stamp), cached=True)
    captions = _parsed(spark, metas, _metas_rows(root, "captions", CAPTION_SCHEMA), CAPTION_SCHEMA).localCheckpoint()
    tables.merge_rows(spark, lake, "captions", captions.select("*", stamp, F.current_timestamp().alias("created_at")),
                      cached=True)
    counts["num_caption_windows"] = captions.count()
    embeddings = _embeddings(spark, root)
    if embeddings is not None:
        embeddings = embeddings.localCheckpoint()
        tables.merge_rows(spark, lake, "clip_embeddings", embeddings.select("*", stamp), cached=True)
        counts["num_embedded_clips"] = embeddings.count()
    summary = runs.record(spark, lake, run_id, PIPELINE, args, started, **counts)
    errors = clips.where("error IS NOT NULL AND source_path IS NULL").select("clip_id", "error").collect()
    print_table(["clips", "caption windows", "embeddings", "videos", "unreadable files"],
                [[counts["num_clips"], counts["num_caption_windows"], counts.get("num_embedded_clips", 0),
                  counts.get("num_processed_videos", 0), len(errors)]])
    for row in errors[:20]:
        print(f"  error  {row.error}")
    print(f"imported {root} into {lake}")
    return summary


if __name__ == "__main__":  # spark-submit jobs/import_cosmos.py --input-clip-path DIR --output-path LAKE
    import sys

    from jobs.cli import main

    sys.exit(main([PIPELINE, *sys.argv[1:]]))
