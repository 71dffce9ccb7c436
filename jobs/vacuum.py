"""`cliplake vacuum`: remove media files no table row references, and old Delta file versions, after a retention.

    cliplake vacuum --output-path LAKE [--retain-hours 168] [--dry-run]

Safe beside running jobs: a job writes its media files before the rows that reference them, so a
file younger than the retention may be one whose rows are still to come; only older ones go.
Delta's own VACUUM (same retention) removes table files that no version within it needs.
"""

import argparse
import time
import uuid
from datetime import datetime, timezone

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from curate_udfs.storage import list_files, remove_quietly
from jobs import runs, storage_options, tables
from jobs.lake import Lake
from jobs.report import print_table

PIPELINE = "vacuum"
DELTA_DEFAULT_RETENTION_HOURS = 168  # Delta refuses a shorter VACUUM retention unless its check is turned off


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output-path", required=True, help="lake root (folder or s3://bucket/prefix)")
    storage_options.add_lake_arguments(parser)
    parser.add_argument("--retain-hours", type=float, default=DELTA_DEFAULT_RETENTION_HOURS,
                        help="keep anything younger: unreferenced media files, and table versions for time travel")
    parser.add_argument("--dry-run", action="store_true", help="list what would be removed, remove nothing")


def referenced_media(spark: SparkSession, lake: Lake) -> DataFrame:
    """Locations the tables point at: clip files, and the previews of caption windows of clips that exist."""
    clips = tables.read_table(spark, lake, "clips")
    locations = clips.select(F.col("location").alias("path"))
    if tables.exists(spark, lake, "captions"):
        windows = tables.read_table(spark, lake, "captions").join(clips.select("clip_id"), "clip_id", "left_semi")
        previews = windows.select(F.concat_ws("", F.lit(lake.media("previews") + "/"), "clip_id", F.lit("/"), "start_frame",
                                              F.lit("_"), "end_frame", F.lit(".webp")).alias("path"))
        locations = locations.unionByName(previews)
    return locations.distinct()


def _vacuum_tables(spark: SparkSession, lake: Lake, hours: float, dry_run: bool) -> dict[str, int]:
    """Delta VACUUM of every table of the lake; files removed (or that would be) per table."""
    from concurrent.futures import ThreadPoolExecutor

    if hours < DELTA_DEFAULT_RETENTION_HOURS:
        spark.conf.set("spark.databricks.delta.retentionDurationCheck.enabled", "false")
    # Delta lists a table's files in this many tasks (Spark's default, 10,000, makes VACUUM of a small table 20 s).
    spark.conf.set("spark.sql.sources.parallelPartitionDiscovery.parallelism", str(4 * spark.sparkContext.defaultParallelism))

    def vacuum(item) -> tuple[str, int]:
        name, ref = item
        target = ref.name or f"delta.`{ref.path}`"
        result = spark.sql(f"VACUUM {target} RETAIN {hours} HOURS{' DRY RUN' if dry_run else ''}")
        return name, result.count() if dry_run else 0

    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(pool.map(vacuum, tables.delta_tables_under(spark, lake).items()))


def run(spark: SparkSession, args: argparse.Namespace) -> dict:
    started = datetime.now(timezone.utc)
    if args.retain_hours < 0:
        raise ValueError(f"--retain-hours must be >= 0, got {args.retain_hours}")
    lake = Lake.from_args(args).open(spark, for_writing=not args.dry_run)
    if not tables.exists(spark, lake, "clips"):
        raise ValueError(f"{lake} holds no clips table: not a cliplake lake (or nothing was split into it yet)")
    cutoff = time.time() - args.retain_hours * 3600
    files = spark.createDataFrame(list(list_files(lake.media(), lake.access)), "path string, num_bytes long, modified double")
    orphans = files.join(referenced_media(spark, lake), "path", "left_anti")
    old = orphans.where(F.col("modified") < cutoff).collect()
    young = orphans.where(F.col("modified") >= cutoff).count()
    if not args.dry_run:
        for row in old:
            remove_quietly(row.path, lake.access)
    table_files = _vacuum_tables(spark, lake, args.retain_hours, args.dry_run)
    summary = {"num_orphan_files": len(old), "num_orphan_bytes": sum(r.num_bytes for r in old),
               "num_young_orphan_files": young, "dry_run": args.dry_run, "orphans": sorted(r.path for r in old),
               "table_files": table_files}
    if not args.dry_run:
        runs.record(spark, lake, str(uuid.uuid4()), PIPELINE, args, started, num_orphan_files_removed=len(old))
    _report(summary, args)
    return summary


def _report(summary: dict, args: argparse.Namespace) -> None:
    verb = "would remove" if args.dry_run else "removed"
    print_table(["unreferenced media files " + verb, "MB", f"younger than {args.retain_hours:g} h (kept)"],
                [[summary["num_orphan_files"], f"{summary['num_orphan_bytes'] / 1e6:.1f}", summary["num_young_orphan_files"]]])
    for path in summary["orphans"][:20]:
        print(f"  {verb}  {path}")
    if args.dry_run:
        print(f"table files Delta's VACUUM would remove: {sum(summary['table_files'].values())}")
    else:
        print(f"Delta VACUUM (retain {args.retain_hours:g} h) ran on {len(summary['table_files'])} tables")


if __name__ == "__main__":  # spark-submit jobs/vacuum.py --output-path LAKE ...
    import sys

    from jobs.cli import main

    sys.exit(main([PIPELINE, *sys.argv[1:]]))
