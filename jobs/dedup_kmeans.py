"""K-means for the dedup job: cuML through spark-rapids-ml on GPUs, Spark MLlib on CPUs, or
scikit-learn in the driver for inputs that fit there (jobs/dedup_driver.py).

Every backend only produces centroids; every row is then assigned to its nearest centroid by the
same numpy code (curate_udfs.dedup.semdedup.nearest_centroids), so the two differ in speed, not
in how assignment works.
"""

import importlib.util
import os
from dataclasses import dataclass
from typing import Literal

import numpy as np
from pyspark.sql import DataFrame, SparkSession

from curate_udfs.errors import EnvironmentProblem

Backend = Literal["auto", "driver", "rapids", "spark"]
# Where executors are other machines: 512-d float32, about 130k clips (bench/dedup.py). On one
# machine (a local master) Spark's tasks run on the driver's own cores, so the driver path is
# never slower there; its limit is memory: an eighth of the machine's (its peak is ~3x the vectors).
CLUSTER_DRIVER_MAX_MB = 256
LOCAL_MEMORY_SHARE = 8
RAPIDS_MISSING = (
    "--kmeans-backend rapids needs spark-rapids-ml (cuML k-means on NVIDIA GPUs): "
    "pip install spark-rapids-ml on the driver and executors, with CUDA 12 and GPUs assigned to executors "
    "(spark.executor.resource.gpu.amount); or use --kmeans-backend spark"
)


@dataclass(frozen=True)
class KMeansConfig:
    """Cosmos-Curate's k-means options, plus the backend and an optional training sample.

    Example::

        KMeansConfig(n_clusters=100, max_iter=100, random_state=42, backend="auto")

    ``max_points_per_centroid`` > 0 trains on a seeded sample of about that many rows per
    cluster (as faiss does by default with 256) instead of every row; all rows are still
    assigned to the nearest centroid. 0 (the default) trains on every row, as Cosmos-Curate does.
    ``auto`` runs in the driver when the embeddings are at most ``driver_max_mb`` MiB
    (:func:`default_driver_max_mb` where not given).
    """

    n_clusters: int = 4
    max_iter: int = 100
    random_state: int = 42
    backend: Backend = "auto"
    max_points_per_centroid: int = 0
    driver_max_mb: float = CLUSTER_DRIVER_MAX_MB

    def __post_init__(self):
        if self.n_clusters < 1:
            raise ValueError(f"--n-clusters must be >= 1, got {self.n_clusters}")
        if self.max_iter < 1:
            raise ValueError(f"--max-iter must be >= 1, got {self.max_iter}")
        if self.backend not in ("auto", "driver", "rapids", "spark"):
            raise ValueError(f"--kmeans-backend must be auto, driver, rapids or spark, got {self.backend!r}")
        if self.driver_max_mb < 0:
            raise ValueError(f"--kmeans-driver-max-mb must be >= 0, got {self.driver_max_mb}")
        if self.max_points_per_centroid < 0:
            raise ValueError(f"--kmeans-max-points-per-centroid must be >= 0, got {self.max_points_per_centroid}")


def rapids_installed() -> bool:
    return importlib.util.find_spec("spark_rapids_ml") is not None


def gpus_present(spark: SparkSession) -> bool:
    """Executors are given GPUs (cluster managers), or a local-mode driver sees a CUDA device."""
    conf = spark.sparkContext.getConf()
    if float(conf.get("spark.executor.resource.gpu.amount", "0")) > 0:
        return True
    if spark.sparkContext.master.startswith("local"):
        import torch  # only asked in local mode, where the driver is the executor

        return torch.cuda.is_available()
    return False


def default_driver_max_mb(master: str | None) -> float:
    """``--kmeans-driver-max-mb`` when not given: an eighth of this machine's memory under a local
    ``master`` (the job runs on this machine alone), else (a cluster, or not known yet) 256."""
    if master is None or not master.startswith("local"):
        return CLUSTER_DRIVER_MAX_MB
    return max(CLUSTER_DRIVER_MAX_MB, machine_memory() / 2**20 / LOCAL_MEMORY_SHARE)


def machine_memory(cgroup_root: str = "/sys/fs/cgroup") -> int:
    """Bytes of memory this process's machine has, capped by a container's limit (cgroup v2 or v1)."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    for name in ("memory.max", "memory/memory.limit_in_bytes"):
        try:
            with open(os.path.join(cgroup_root, name)) as f:
                limit = f.read().strip()
        except OSError:
            continue
        if limit.isdigit():  # ("max": no limit)
            total = min(total, int(limit))
        break
    return total


def fits_in_driver(config: KMeansConfig, total: int, dim: int) -> bool:
    """Whether ``total`` vectors of ``dim`` float32 are within ``--kmeans-driver-max-mb``."""
    return total * dim * 4 <= config.driver_max_mb * 2**20


def choose_backend(spark: SparkSession, config: KMeansConfig, total: int, dim: int) -> str:
    """``driver``, ``rapids`` or ``spark``: forced by the config; else the driver when ``total``
    vectors of ``dim`` floats fit in ``driver_max_mb``, rapids when installed and GPUs are present,
    Spark MLlib otherwise.

    A forced ``rapids`` without spark-rapids-ml fails here, on the driver, before any task.
    """
    if config.backend in ("spark", "driver"):
        return config.backend
    if config.backend == "rapids":
        if not rapids_installed():
            raise EnvironmentProblem(RAPIDS_MISSING)
        return "rapids"
    if fits_in_driver(config, total, dim):
        return "driver"
    return "rapids" if rapids_installed() and gpus_present(spark) else "spark"


def training_rows(points: DataFrame, total: int, config: KMeansConfig) -> DataFrame:
    """All of ``points``, or a seeded sample of about ``max_points_per_centroid`` rows per cluster."""
    wanted = config.max_points_per_centroid * config.n_clusters
    if not wanted or wanted >= total:
        return points
    return points.sample(fraction=wanted / total, seed=config.random_state)


def fit_centroids(points: DataFrame, features: str, backend: str, config: KMeansConfig) -> np.ndarray:
    """Run k-means over the array<float> column ``features``; the (k, dim) float32 centroids.

    Fewer than ``n_clusters`` rows come back when the data has fewer distinct points.
    """
    if config.n_clusters == 1:  # MLlib refuses k=1; its k-means answer is the mean
        return _mean(points, features)
    if backend == "rapids":
        return _fit_rapids(points, features, config)
    return _fit_spark(points, features, config)


def _mean(points: DataFrame, features: str) -> np.ndarray:
    from pyspark.ml.functions import array_to_vector
    from pyspark.ml.stat import Summarizer

    row = points.select(Summarizer.mean(array_to_vector(features)).alias("mean")).first()
    return np.asarray([row["mean"].toArray()], dtype=np.float32)


def _fit_spark(points: DataFrame, features: str, config: KMeansConfig) -> np.ndarray:
    from pyspark.ml.clustering import KMeans
    from pyspark.ml.functions import array_to_vector

    vectors = points.select(array_to_vector(features).alias("features"))
    # Dense embeddings: the block solver stacks rows so distances become one matrix product
    # (1.7x faster than the row solver at 100k x 512, k=100, measured on 2 cores); it caches
    # its blocks itself, so the input is not cached here.
    kmeans = KMeans(k=config.n_clusters, maxIter=config.max_iter, seed=config.random_state,
                    initMode="k-means||", solver="block")
    model = kmeans.fit(vectors)
    return np.asarray(model.clusterCenters(), dtype=np.float32)  # a list of numpy arrays


def _fit_rapids(points: DataFrame, features: str, config: KMeansConfig) -> np.ndarray:
    try:
        from spark_rapids_ml.clustering import KMeans
    except ImportError as e:
        raise EnvironmentProblem(f"{RAPIDS_MISSING} ({e})") from None
    # spark-rapids-ml takes an array<float> column as is; cuML runs on each executor's GPU.
    kmeans = KMeans(k=config.n_clusters, maxIter=config.max_iter, seed=config.random_state,
                    initMode="k-means||", featuresCol=features)
    model = kmeans.fit(points.select(features))
    return np.asarray(model.clusterCenters(), dtype=np.float32)
