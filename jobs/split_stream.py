"""`cliplake split --stream`: videos split as they land under --input-video-path (Structured Streaming).

Spark's file source lists the folder or ``s3://`` prefix and remembers, in the checkpoint, which
files it has handed out; each micro-batch's new videos go through the same waves as a batch run
(split, commit, annotate). A micro-batch replayed after a crash finds its committed videos done
in ``videos`` and skips them, so every video is split once.
"""

import argparse
import hashlib
import os

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from curate_udfs import objectstore, storage
from jobs import listing, s3a
from jobs.annotate import AnnotateConfig
from jobs.lake import listed_path
from jobs.split_annotate import SplitRun

AVAILABLE_NOW = "available-now"
BINARY_FILE_SCHEMA = "path string, modificationTime timestamp, length long, content binary"  # the format's own
_VIDEO_PATH = r"(?i)\.(" + "|".join(ext.lstrip(".") for ext in listing.VIDEO_EXTENSIONS) + r")$"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("streaming (split --stream)")
    g.add_argument("--stream", action="store_true",
                   help="watch --input-video-path (a folder or s3:// prefix) and split new videos as they land")
    g.add_argument("--trigger", default="60 seconds",
                   help=f"how often to look for new videos ('30 seconds', '5 minutes'), or {AVAILABLE_NOW}: process "
                        "what is new and stop (a nightly job)")
    g.add_argument("--checkpoint-location", default=None,
                   help="the stream's checkpoint (which files it has seen); default: "
                        "{output path}/_checkpoints/split/{hash of the input path}")
    g.add_argument("--max-files-per-trigger", type=int, default=None,
                   help="new videos taken into one micro-batch at most (default: --commit-every-videos)")


def checkpoint_location(args: argparse.Namespace, lake_root: str) -> str:
    """Where the stream keeps its progress: one checkpoint per watched input, under the lake."""
    if args.checkpoint_location:
        return args.checkpoint_location
    digest = hashlib.sha256(args.input_video_path.encode()).hexdigest()[:16]
    return storage.join(lake_root, "_checkpoints", "split", digest)


def new_videos(spark: SparkSession, input_path: str, max_files: int) -> DataFrame:
    """The stream of video paths under ``input_path`` (the files' bytes are never read here).

    ``s3://`` is read through S3A, as the lake's tables are (fs.s3.impl in the profiles; native on EMR
    and Databricks).
    """
    files = (spark.readStream.format("binaryFile").schema(BINARY_FILE_SCHEMA).option("recursiveFileLookup", "true")
             .option("maxFilesPerTrigger", max_files).load(input_path))
    return files.select("path", "length").where(F.col("path").rlike(_VIDEO_PATH))


def check_options(args: argparse.Namespace) -> None:
    """Refuse what a stream cannot do, in one sentence."""
    if not args.input_video_path or args.input_video_list_json_path:
        raise ValueError("--stream watches --input-video-path (a folder or s3:// prefix), not a JSON list")
    if args.dry_run or args.limit:
        raise ValueError("--stream takes neither --dry-run nor --limit")


def run(spark: SparkSession, args: argparse.Namespace, annotate_config: AnnotateConfig | None = None) -> dict:
    """Split new videos micro-batch by micro-batch until stopped (or, with available-now, until none are new)."""
    check_options(args)
    trigger = {"availableNow": True} if args.trigger == AVAILABLE_NOW else {"processingTime": args.trigger}
    job = SplitRun(spark, args, annotate_config)
    s3 = objectstore.is_s3(args.input_video_path)
    input_path = objectstore.normalize(args.input_video_path) if s3 else os.path.abspath(args.input_video_path)
    if s3:
        s3a.configure(spark, input_path, job.config.input_access)
    job.open_lake()

    def split_batch(batch: DataFrame, _batch_id: int) -> None:
        # One micro-batch (at most --max-files-per-trigger files), as a listing: paths in listed form, sizes.
        rows = [(listed_path(r.path), r.length, 0) for r in batch.collect()]
        if rows:
            job.split(spark.createDataFrame(rows, listing.LISTED_SCHEMA))
            job.record("running")

    videos = new_videos(spark, input_path, args.max_files_per_trigger or args.commit_every_videos)
    query = (videos.writeStream.foreachBatch(split_batch).queryName("cliplake-split")
             .option("checkpointLocation", checkpoint_location(args, job.lake.root)).trigger(**trigger).start())
    print(f"watching {input_path} ({args.trigger}); checkpoint {checkpoint_location(args, job.lake.root)}")
    try:
        query.awaitTermination()
    except KeyboardInterrupt:
        query.stop()
    return job.finish()
