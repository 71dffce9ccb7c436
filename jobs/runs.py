"""The ``runs`` table's rows: one per pipeline run, what Cosmos-Curate's summary.json holds."""

import argparse
from datetime import datetime, timezone

import pandas as pd
from pyspark.sql import SparkSession

from jobs import lake_rs, storage_options, tables
from jobs.lake import Lake


def record(spark: SparkSession, lake: Lake, run_id: str, pipeline: str, args: argparse.Namespace, started: datetime,
           **counts) -> dict:
    """MERGE the run's row into ``lake``'s ``runs`` table and return it.

    The row carries the options (presigned URLs redacted), start and end times, the master, the
    wall time since ``started`` and ``counts`` (any other ``runs`` columns; absent ones stay null).
    A long job records ``status="running"`` after each commit wave (its counts so far), then ``done``.
    """
    run = row(run_id, pipeline, args, started, spark.sparkContext.master, **counts)
    if lake_rs.takes(lake, ["runs"], 1):
        lake_rs.merge_rows(lake, "runs", pd.DataFrame([run]))
    else:
        tables.merge_rows(spark, lake, "runs", spark.createDataFrame([run], tables.RUNS))
    return run


def row(run_id: str, pipeline: str, args: argparse.Namespace, started: datetime, spark_master: str | None,
        **counts) -> dict:
    """The ``runs`` row :func:`record` writes; ``spark_master`` is None for a run that used no Spark."""
    ended = datetime.now(timezone.utc)
    return {
        "run_id": run_id, "pipeline": pipeline, "status": counts.pop("status", "done"),
        "arguments": storage_options.arguments_json(args),
        "started_at": started, "ended_at": ended, "spark_master": spark_master,
        **counts, "pipeline_run_time_s": (ended - started).total_seconds(), "num_commit_retries": tables.commit_retries(),
    }
