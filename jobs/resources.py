"""Per-stage GPU requests (``--<stage>-gpus-per-worker``) as Spark resource profiles.

Cluster managers that schedule task resources (standalone, YARN, Kubernetes, with dynamic
allocation off) get a task resource profile asking for that share of a GPU, so a 0.25 request
packs four model workers per GPU. Local mode has no resource scheduling: the request is
dropped there and models take whatever device torch sees.
"""

import inspect
from typing import Callable, Iterator

import pandas as pd
from pyspark import TaskContext
from pyspark.resource import ResourceProfile, ResourceProfileBuilder, TaskResourceRequests
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.types import StructType

GPU = "gpu"


def supports_resource_profiles(spark: SparkSession) -> bool:
    master = spark.sparkContext.master
    return not (master.startswith("local") and not master.startswith("local-cluster"))


def executor_gpus(spark: SparkSession) -> float:
    """GPUs each executor was started with (``spark.executor.resource.gpu.amount``), 0 if none."""
    return float(spark.conf.get("spark.executor.resource.gpu.amount", "0") or 0)


def stage_profile(spark: SparkSession, option: str, gpus_per_worker: float | None) -> ResourceProfile | None:
    """The resource profile for a model stage, or None to run it in the default profile.

    ``gpus_per_worker`` None means: one GPU per task when executors have GPUs, none otherwise.
    An explicit amount on a cluster whose executors have no GPUs raises ValueError before any
    task starts (the tasks would wait forever for a GPU that never comes).
    """
    if not supports_resource_profiles(spark):
        return None
    available = executor_gpus(spark)
    if gpus_per_worker is None:
        gpus_per_worker = 1.0 if available > 0 else 0.0
    if gpus_per_worker <= 0:
        return None
    if available <= 0:
        raise ValueError(
            f"{option} {gpus_per_worker:g}: the executors have no GPUs. Start them with "
            "spark.executor.resource.gpu.amount and a discovery script (jobs/profiles/rapids-gpu.conf), or pass 0"
        )
    if gpus_per_worker > available:
        raise ValueError(f"{option} {gpus_per_worker:g}: more than the {available:g} GPUs an executor has")
    if gpus_per_worker > 1 and gpus_per_worker != int(gpus_per_worker):
        raise ValueError(f"{option} {gpus_per_worker:g}: above 1 a GPU amount must be a whole number")
    cpus = int(spark.conf.get("spark.task.cpus", "1"))
    return ResourceProfileBuilder().require(TaskResourceRequests().cpus(cpus).resource(GPU, gpus_per_worker)).build


def task_gpu_addresses() -> list[str]:
    """Addresses of the GPUs Spark assigned to the running task (empty outside a GPU profile)."""
    context = TaskContext.get()
    if context is None or GPU not in context.resources():
        return []
    return list(context.resources()[GPU].addresses)


def task_cpus() -> int:
    context = TaskContext.get()
    return context.cpus() if context else 1


# pyspark 4.0 added mapInPandas(..., profile=); pyspark 3.5 (EMR 7, Databricks 14.3/15.4 LTS) lacks it.
MAP_IN_PANDAS_TAKES_PROFILE = "profile" in inspect.signature(DataFrame.mapInPandas).parameters


def map_in_pandas(frame: DataFrame, function: Callable[[Iterator[pd.DataFrame]], Iterator[pd.DataFrame]],
                  schema: StructType, profile: ResourceProfile | None) -> DataFrame:
    """``frame.mapInPandas(function, schema)`` with its tasks in ``profile`` (None: the default profile).

    Without the ``profile`` argument (pyspark 3.5) the profile goes on the RDD the mapped rows are
    read back through: the map is narrow, so it runs in that RDD's stage, which Spark schedules in
    the profile. The cost is one more Python pass over the stage's output rows (pickled Rows instead
    of Arrow batches straight to the JVM), only for stages that have a profile.
    """
    if MAP_IN_PANDAS_TAKES_PROFILE:
        return frame.mapInPandas(function, schema, profile=profile)
    mapped = frame.mapInPandas(function, schema)
    if profile is None:
        return mapped
    return frame.sparkSession.createDataFrame(mapped.rdd.withResources(profile), schema)
