"""The caption pipeline: caption a lake's clips again as a new annotation version.

    cliplake caption --output-path LAKE --annotation-version v1 [captioning options]

Clips already captioned under that version are skipped, so an interrupted pass resumes; earlier
versions stay as they were. Captions are committed in waves of source videos
(``--commit-every-videos``/``--commit-every-seconds``), so a killed pass loses at most one wave.
"""

import argparse
import uuid
from datetime import datetime, timezone

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs import annotate, listing, runs, storage_options, tables, work_plan
from jobs.lake import Lake

PIPELINE = "caption"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output-path", "--input-clip-path", dest="output_path", required=True,
                        help="lake root written by `cliplake split` (folder or s3://bucket/prefix)")
    storage_options.add_lake_arguments(parser)
    parser.add_argument("--retry-errors", action="store_true", help="caption again clips that failed before")
    work_plan.add_wave_arguments(parser)
    annotate.add_caption_arguments(parser, switch=False)


def _pending_sources(spark: SparkSession, lake: Lake, version: str, retry_errors: bool) -> tuple[DataFrame, int, int]:
    """Source videos with clips in play that have no captions of ``version`` yet, in path order, with those
    clips' bytes (cached: stream it with :func:`listing.waves_of`); how many, and their bytes."""
    clips = tables.read_table(spark, lake, "clips").where("filtered_by IS NULL")
    if not retry_errors:
        clips = clips.where("error IS NULL")
    if tables.exists(spark, lake, "captions"):  # (a dry run over a lake without one: nothing is captioned yet)
        done = tables.read_table(spark, lake, "captions").where(F.col("annotation_version") == version).select("clip_id")
        clips = clips.join(done, "clip_id", "left_anti")
    sources = (clips.groupBy("source_path").agg(F.coalesce(F.sum("num_bytes"), F.lit(0)).alias("num_bytes"))
               .orderBy("source_path"))
    return listing.cached_with_totals(sources)


def run(spark: SparkSession, args: argparse.Namespace) -> dict:
    """Caption every clip in play that has no captions of ``--annotation-version``; returns the ``runs`` row."""
    started = datetime.now(timezone.utc)
    lake = Lake.from_args(args).open(spark, for_writing=not args.dry_run)
    if not tables.exists(spark, lake, "clips"):
        raise ValueError(f"{lake} holds no clips table: run `cliplake split {lake.cli_options()}` first")
    config = annotate.AnnotateConfig(captioning=annotate.caption_config_from(args, lake.root), retry_errors=args.retry_errors,
                                     gpus=(("captioning", args.captioning_gpus_per_worker),))
    run_id = str(uuid.uuid4())
    if not args.dry_run:  # a dry run writes nothing, not even an empty table
        tables.ensure_table(spark, lake, "captions")
    pending, num_sources, num_bytes = _pending_sources(spark, lake, args.annotation_version, args.retry_errors)
    sizer = work_plan.WaveSizer(args.commit_every_videos, args.commit_every_seconds, spark.sparkContext.defaultParallelism)
    try:
        if args.dry_run:
            first, _ = next(listing.waves_of(pending, sizer), ([], []))
            print(f"{num_sources} videos have clips without {args.annotation_version} captions "
                  f"({num_bytes / 1e9:.1f} GB of clips); the first wave takes {len(first)}")
            return {"num_pending_videos": num_sources}
        annotator = annotate.Annotator(spark, lake, config, run_id)
        done = 0
        for wave, sizes in listing.waves_of(pending, sizer):
            sizer.start()
            annotator.run(wave)
            sizer.done(sum(sizes))
            done += len(wave)
            if done < num_sources:  # progress to watch; the last wave's comes with the final row
                runs.record(spark, lake, run_id, PIPELINE, args, started, status="running", **annotator.counts())
    finally:
        pending.unpersist()
    stats = annotator.counts()
    summary = runs.record(spark, lake, run_id, PIPELINE, args, started, **stats)
    annotate.report(summary)
    print(f"captions {args.annotation_version}: {stats['num_captioned_clips']} clips, {stats['num_caption_windows']} windows "
          f"in {summary['pipeline_run_time_s']:.1f} s")
    return summary


if __name__ == "__main__":  # spark-submit jobs/caption.py --output-path LAKE --annotation-version v1 ...
    import sys

    from jobs.cli import main

    sys.exit(main([PIPELINE, *sys.argv[1:]]))
