"""The dedup pipeline: SemDeDup over the `clip_embeddings` table, as Cosmos-Curate does it.

Run it as ``cliplake dedup ...`` or ``spark-submit jobs/dedup.py ...`` (same options).

For one embedding model: L2-normalise, k-means (cuML via spark-rapids-ml on GPUs, Spark MLlib
otherwise), assign every clip to its nearest centroid, then within each cluster (one
``applyInPandas`` group) order the clips and find, for each, the most similar earlier clip.
A clip is a duplicate at eps when that similarity is >= 1 - eps. A run replaces the model's rows
of ``semantic_dedup`` and ``dedup_centroids`` wholesale, so clips that vanished or moved cluster
leave nothing stale; ``dedup_summary`` and ``runs`` gain this run's rows.
"""

import argparse
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from curate_udfs import objectstore
from curate_udfs.cpu_share import machine_cores
from curate_udfs.dedup import semdedup
from curate_udfs.dedup.config import SemDedupConfig
from curate_udfs.objectstore import S3Access
from jobs import dedup_driver, dedup_export, dedup_kmeans, runs, s3a, session, storage_options, tables
from jobs.lake import Lake
from jobs.report import print_table

PIPELINE = "dedup"
PRUNED_SCHEMA = T.StructType([f for f in tables.SEMANTIC_DEDUP.fields if f.name in semdedup.OUTPUT_COLUMNS])


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The dedup options, named as Cosmos-Curate names them."""
    io = parser.add_argument_group("input and output")
    io.add_argument("--output-path", required=True,
                    help="lake root (folder or s3://bucket/prefix): semantic_dedup, dedup_summary and dedup_centroids go here")
    io.add_argument("--input-embeddings-path", default=None,
                    help="lake (folder or s3://bucket/prefix) whose clip_embeddings table is read (default: the output lake)")
    io.add_argument("--input-s3-profile-name", default=None,
                    help="AWS profile for an s3:// --input-embeddings-path (default: the usual AWS credential chain)")
    io.add_argument("--embedding-model", default=None, help="which model's embeddings (default: the one with most rows)")
    io.add_argument("--export-cosmos-layout", default=None, metavar="DIR",
                    help="also write Cosmos-Curate's clustering_results/ and extraction/ files under DIR (folder or s3://)")
    storage_options.add_lake_arguments(io)
    io.add_argument("--dry-run", action="store_true",
                    help="print the plan (model, embeddings, clusters, training rows, eps, rows replaced) and stop: "
                         "no k-means, nothing written")

    d, s = dedup_kmeans.KMeansConfig(), SemDedupConfig()
    km = parser.add_argument_group("clustering")
    km.add_argument("--n-clusters", type=int, default=d.n_clusters, help="number of k-means clusters")
    km.add_argument("--max-iter", type=int, default=d.max_iter, help="maximum k-means iterations")
    km.add_argument("--random-state", type=int, default=d.random_state, help="seed for k-means and --which-to-keep random")
    km.add_argument("--kmeans-backend", choices=["auto", "driver", "rapids", "spark"], default=d.backend,
                    help="driver: scikit-learn k-means and the search in the driver process; "
                         "rapids: cuML via spark-rapids-ml on GPUs; spark: MLlib on CPUs; auto: driver when the "
                         "embeddings fit in --kmeans-driver-max-mb, else rapids when installed and GPUs are present, else spark")
    km.add_argument("--kmeans-driver-max-mb", type=float, default=None,
                    help="with --kmeans-backend auto: embeddings up to this many MiB (rows x dim x 4 bytes) run in the "
                         "driver (default: an eighth of the machine's memory under a local master, else 256)")
    km.add_argument("--kmeans-max-points-per-centroid", type=int, default=d.max_points_per_centroid,
                    help="train k-means on a seeded sample of about N rows per cluster (0: every row, as Cosmos-Curate); all rows are assigned")

    sd = parser.add_argument_group("semantic dedup")
    sd.add_argument("--sim-metric", choices=["cosine", "l2"], default=s.sim_metric,
                    help="distance to the centroid that orders a cluster")
    sd.add_argument("--which-to-keep", choices=["hard", "easy", "random"], default=s.which_to_keep,
                    help="hard: keep the clip farthest from the centroid of each duplicate group; easy: the closest; random")
    sd.add_argument("--eps-to-extract", type=float, nargs="+", default=list(s.eps_to_extract), metavar="EPS",
                    help="one or more eps: a clip is a duplicate when its cosine_sim_score >= 1 - eps")
    sd.add_argument("--semdedup-tile-size", type=int, default=s.tile_size,
                    help="rows per similarity tile: memory holds tile x tile floats, whatever the cluster size")


def build_configs(args: argparse.Namespace) -> tuple[dedup_kmeans.KMeansConfig, SemDedupConfig]:
    """The typed configs, checked here on the driver before any task runs."""
    kmeans = dedup_kmeans.KMeansConfig(
        n_clusters=args.n_clusters, max_iter=args.max_iter, random_state=args.random_state,
        backend=args.kmeans_backend, max_points_per_centroid=args.kmeans_max_points_per_centroid,
        driver_max_mb=(dedup_kmeans.default_driver_max_mb(session.planned_master(args.spark_profile))
                       if args.kmeans_driver_max_mb is None else args.kmeans_driver_max_mb),
    )
    prune = SemDedupConfig(
        sim_metric=args.sim_metric, which_to_keep=args.which_to_keep, random_state=args.random_state,
        tile_size=args.semdedup_tile_size, eps_to_extract=tuple(args.eps_to_extract),
    )
    return kmeans, prune


def sql_string(value: str) -> str:
    """``value`` as a Spark SQL string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def embedding_stats(spark: SparkSession, source: "Lake | str") -> dict:
    """Per model, in one query: its rows, its non-null embeddings (``n``) and their shortest and longest length."""
    if not tables.exists(spark, source, "clip_embeddings"):
        raise ValueError(f"no clip_embeddings table under {source}: run the annotate stages (or give --input-embeddings-path)")
    vector = F.col("embedding")
    length = F.when(vector.isNotNull(), F.size(vector))  # (Spark 3.5's size(null) is -1)
    stats = (tables.read_table(spark, source, "clip_embeddings").groupBy("model")
             .agg(F.count("*").alias("rows"), F.count(vector).alias("n"), F.min(length).alias("lo"), F.max(length).alias("hi")))
    return {r.model: r for r in stats.collect()}


def choose_model(spark: SparkSession, source: "Lake | str", model: str | None, stats: dict | None = None) -> str:
    """``model`` when it has embeddings in ``source``, else the model with most rows (ties: by name).

    ``stats``: :func:`embedding_stats` when the caller has them already.
    """
    counts = {m: s.rows for m, s in (embedding_stats(spark, source) if stats is None else stats).items()}
    if model is None:
        if not counts:
            raise ValueError(f"the clip_embeddings table under {source} is empty")
        return dedup_driver.most_rows(counts)
    if model not in counts:
        raise ValueError(f"no embeddings for model {model!r} under {source} (have: {', '.join(sorted(counts)) or 'none'})")
    return model


def model_embeddings(spark: SparkSession, source: "Lake | str", model: str, stats: dict) -> tuple[DataFrame, int, int]:
    """(clip_id, embedding) of ``model`` as stored, how many there are and their length (from ``stats``).

    Raises ValueError when the vectors do not all have one length.
    """
    s = stats[model]
    if s.lo != s.hi:
        raise ValueError(f"embeddings of model {model!r} have different lengths ({s.lo} to {s.hi})")
    return _points(spark, source, model), s.n, s.hi or 0


def _points(spark: SparkSession, source: "Lake | str", model: str) -> DataFrame:
    return (tables.read_table(spark, source, "clip_embeddings")
            .where(F.col("model") == model).where(F.col("embedding").isNotNull())
            .select("clip_id", "embedding"))


# L2 normalisation happens in numpy inside each Python step, never as a Spark SQL higher-order
# function: the optimizer inlines a per-row norm into a per-element lambda, which is evaluated
# interpreted, d times per row (it made 10k x 512 rows take minutes).
@F.pandas_udf(T.ArrayType(T.FloatType()))
def unit_vectors(embedding: pd.Series) -> pd.Series:
    """Each vector scaled to unit L2 length (all-zero vectors stay zero)."""
    return pd.Series(list(semdedup.normalize_rows(semdedup.stack_embeddings(embedding))), index=embedding.index)


def assign_and_prune(points: DataFrame, centroids: np.ndarray, config: SemDedupConfig) -> DataFrame:
    """Nearest centroid per clip (a pandas UDF: only the id comes back), then SemDeDup per cluster."""

    @F.pandas_udf(T.LongType())
    def nearest(embedding: pd.Series) -> pd.Series:
        unit = semdedup.normalize_rows(semdedup.stack_embeddings(embedding))
        return pd.Series(semdedup.nearest_centroids(unit, centroids), index=embedding.index)

    def prune(frame: pd.DataFrame) -> pd.DataFrame:
        return semdedup.prune_cluster(frame, centroids[int(frame["cluster_id"].iloc[0])], config)

    assigned = points.withColumn("cluster_id", nearest("embedding"))
    return assigned.groupBy("cluster_id").applyInPandas(prune, PRUNED_SCHEMA)


def summarize(results: DataFrame, eps_values: tuple[float, ...]) -> list[dict]:
    """Cosmos-Curate's dedup summary per eps: kept, removed (score >= 1 - eps), total."""
    removed = [F.count(F.when(F.col("cosine_sim_score") >= 1.0 - eps, 1)).alias(f"removed_{i}")
               for i, eps in enumerate(eps_values)]
    row = results.agg(F.count("*").alias("total"), *removed).first()
    return [{"eps": eps, "kept": row.total - row[f"removed_{i}"], "removed": row[f"removed_{i}"], "total": row.total}
            for i, eps in enumerate(eps_values)]


def _of_model(model: str) -> str:
    return f"model = {sql_string(model)}"


def _write(spark: SparkSession, lake: "Lake | str", model: str, run_id: str, pruned: DataFrame, centroids: np.ndarray,
           eps_values: tuple[float, ...], counted: tuple[dict, list[dict]] | None = None) -> list[dict]:
    """Replace the model's dedup rows and centroids and add its summary rows; returns the summary.

    ``counted``: (rows per cluster, summary) when the caller has them (the driver path); the three
    tables are then written side by side. Otherwise they are counted from the written rows first.
    """
    where = _of_model(model)
    stamp = [F.lit(model).alias("model"), F.lit(run_id).alias("run_id")]

    def write_results() -> None:
        tables.replace_rows(spark, lake, "semantic_dedup", pruned.select("*", *stamp), where)

    writes = [write_results]
    if counted is None:  # (the Spark path counts what it wrote)
        write_results()
        writes = []
        results = tables.read_table(spark, lake, "semantic_dedup").where(where)
        counted = dict(results.groupBy("cluster_id").count().collect()), summarize(results, eps_values)
    sizes, summary = counted
    centroid_rows = spark.createDataFrame(_centroid_rows(model, run_id, centroids, sizes), tables.DEDUP_CENTROIDS)
    writes.append(lambda: tables.replace_rows(spark, lake, "dedup_centroids", centroid_rows, where))
    summary_rows = spark.createDataFrame(_summary_rows(model, run_id, summary), tables.DEDUP_SUMMARY)
    writes.append(lambda: tables.merge_rows(spark, lake, "dedup_summary", summary_rows))
    tables.side_by_side(*writes)
    return summary


def _centroid_rows(model: str, run_id: str, centroids: np.ndarray, sizes: dict) -> list[dict]:
    return [{"model": model, "cluster_id": c, "centroid": centroid.tolist(), "size": sizes.get(c, 0), "run_id": run_id}
            for c, centroid in enumerate(centroids)]


def _summary_rows(model: str, run_id: str, summary: list[dict]) -> list[dict]:
    return [{**s, "run_id": run_id, "model": model} for s in summary]


def _counted(result: "_InDriver", eps_values: tuple[float, ...]) -> tuple[dict, list[dict]]:
    """(rows per cluster, summary) of the driver path's results."""
    sizes = {int(c): int(n) for c, n in result.pruned["cluster_id"].value_counts().items()}
    return sizes, dedup_driver.summary(result.pruned, eps_values)


@dataclass(frozen=True)
class _Inputs:
    """What a run reads, checked before any work: the lakes, the configs, the model and its embeddings."""

    lake: Lake
    source: Lake
    kmeans: dedup_kmeans.KMeansConfig
    prune: SemDedupConfig
    backend: str
    model: str
    points: DataFrame | None  # (None when read before Spark was up: Spark reads them only if needed)
    total: int


@dataclass(frozen=True)
class _InDriver:
    """The driver path's results before anything is written: centroids and ``semdedup.OUTPUT_COLUMNS`` rows."""

    centroids: np.ndarray
    pruned: pd.DataFrame
    kmeans_s: float


@dataclass(frozen=True)
class Early:
    """What :func:`early_work` did before Spark was up."""

    started: datetime
    model: str
    total: int
    result: _InDriver


def early_work(args: argparse.Namespace) -> Callable[[], Early | None] | None:
    """The run's work that needs no Spark, to do while the JVM starts (cliplake does; ``run`` takes the result).

    On a local lake (a folder, no catalog) whose embeddings fit in the driver, found by a first
    look with delta-rs: read them, then k-means and SemDeDup as the driver path does. None
    otherwise; the work gives None for anything unusual (mixed lengths, fewer rows than clusters):
    :func:`run` then reads through Spark and says what is wrong.
    """
    started, t0 = datetime.now(timezone.utc), time.perf_counter()
    kmeans_config, prune_config = build_configs(args)
    source = Lake.at(args.input_embeddings_path) if args.input_embeddings_path else Lake.from_args(args)
    if args.dry_run or source.in_catalog or source.on_s3 or kmeans_config.backend not in ("auto", "driver"):
        return None

    def fits(total: int, dim: int) -> bool:
        return kmeans_config.backend == "driver" or dedup_kmeans.fits_in_driver(kmeans_config, total, dim)

    found = dedup_driver.find_local_input(tables.table_path(source, "clip_embeddings"), args.embedding_model, fits)
    if found is None:
        return None

    def work() -> Early | None:
        read = dedup_driver.read_local_input(found)
        if read is None or len(read[0]) < kmeans_config.n_clusters:
            return None
        ids, unit = read
        return Early(started, found.model, len(ids), _in_driver(ids, unit, kmeans_config, prune_config, t0))
    return work


def _in_driver(ids: np.ndarray, unit: np.ndarray, kmeans: dedup_kmeans.KMeansConfig, prune: SemDedupConfig,
               t0: float) -> _InDriver:
    from threadpoolctl import threadpool_limits

    # BLAS and OpenMP size their pools by the host's cores; in a container with a CPU quota that
    # would run many spinning threads on a few cores' time.
    with threadpool_limits(machine_cores()):
        centroids = dedup_driver.fit_centroids(unit, kmeans)
        kmeans_s = time.perf_counter() - t0
        return _InDriver(centroids, dedup_driver.prune(ids, unit, centroids, prune), kmeans_s)


def _inputs(spark: SparkSession, args: argparse.Namespace, *, for_writing: bool, early: Early | None = None) -> _Inputs:
    lake = Lake.from_args(args).open(spark, for_writing=for_writing)
    source = lake
    if args.input_embeddings_path:  # another lake's folder
        source = Lake.at(args.input_embeddings_path, access=S3Access(profile_name=args.input_s3_profile_name))
        source = source.open(spark, for_writing=False)
    kmeans_config, prune_config = build_configs(args)
    if early is not None:  # read and computed before Spark was up
        return _Inputs(lake, source, kmeans_config, prune_config, "driver", early.model, None, early.total)
    if kmeans_config.backend == "rapids":  # a missing spark-rapids-ml is said before the embeddings are read
        dedup_kmeans.choose_backend(spark, kmeans_config, 0, 0)
    stats = embedding_stats(spark, source)
    model = choose_model(spark, source, args.embedding_model, stats)
    points, total, dim = model_embeddings(spark, source, model, stats)
    backend = dedup_kmeans.choose_backend(spark, kmeans_config, total, dim)
    if total < kmeans_config.n_clusters:
        raise ValueError(f"--n-clusters {kmeans_config.n_clusters} is more than the {total} embeddings of {model!r}")
    return _Inputs(lake, source, kmeans_config, prune_config, backend, model, points, total)


def run(spark: SparkSession, args: argparse.Namespace, early: Early | None = None) -> dict:
    """Run the dedup pipeline; returns the ``runs`` row it wrote plus model, backend and summary.

    ``early``: what :func:`early_work` computed for these ``args``. With ``--dry-run``: prints and
    returns the plan (:func:`_print_plan`), writing nothing.
    """
    started, t0 = (early.started if early else datetime.now(timezone.utc)), time.perf_counter()
    run_id = str(uuid.uuid4())
    inputs = _inputs(spark, args, for_writing=not args.dry_run, early=early)
    if args.dry_run:
        return _print_plan(spark, inputs, args.export_cosmos_layout)
    lake, model, points, total = inputs.lake, inputs.model, inputs.points, inputs.total
    kmeans_config, prune_config, backend = inputs.kmeans, inputs.prune, inputs.backend
    if args.export_cosmos_layout and objectstore.is_s3(args.export_cosmos_layout):
        s3a.configure(spark, args.export_cosmos_layout, lake.access)  # Spark writes the embeddings parquet there

    if backend == "driver":
        result = early.result if early else _in_driver(*dedup_driver.fetch(points), kmeans_config, prune_config, t0)
        centroids, kmeans_s = result.centroids, result.kmeans_s
        counted = _counted(result, prune_config.eps_to_extract)
        pruned = dedup_driver.to_spark(spark, result.pruned, PRUNED_SCHEMA)
    else:
        training = dedup_kmeans.training_rows(points, total, kmeans_config)
        training = training.select(unit_vectors("embedding").alias("embedding"))
        centroids = dedup_kmeans.fit_centroids(training, "embedding", backend, kmeans_config)
        kmeans_s = time.perf_counter() - t0
        pruned, counted = assign_and_prune(points, centroids, prune_config), None
    summary = _write(spark, lake, model, run_id, pruned, centroids, prune_config.eps_to_extract, counted)
    if args.export_cosmos_layout:
        results = tables.read_table(spark, lake, "semantic_dedup").where(_of_model(model))
        points = _points(spark, inputs.source, model) if points is None else points
        unit = points.select("clip_id", unit_vectors("embedding").alias("embedding"))
        dedup_export.export_cosmos_layout(spark, args.export_cosmos_layout, centroids, results, unit, summary, lake.access)

    row = runs.record(spark, lake, run_id, PIPELINE, args, started, num_clips=total)
    return _outcome(row, lake, model, backend, centroids, kmeans_s, summary, "delta-rs" if early else "spark", "spark")


def _outcome(row: dict, lake: Lake, model: str, backend: str, centroids: np.ndarray, kmeans_s: float,
             summary: list[dict], read_by: str, written_by: str) -> dict:
    outcome = {**row, "model": model, "kmeans_backend": backend, "n_clusters": len(centroids), "kmeans_s": kmeans_s,
               "summary": summary, "read_by": read_by, "written_by": written_by}
    _report(outcome, lake)
    return outcome


# What a run writes; a folder lake where delta-rs can write them all needs no Spark for a small input.
WRITTEN = ["semantic_dedup", "dedup_centroids", "dedup_summary", "runs"]


def run_without_spark(args: argparse.Namespace) -> dict | None:
    """The whole run with no JVM where a small input allows it; None otherwise (cliplake then starts Spark).

    That is: a folder lake (input and output) whose embeddings fit in the driver (early_work's
    first look), whose written tables are absent or this cliplake's (``lake_rs.writable``), and no
    ``--export-cosmos-layout`` or ``--dry-run``. delta-rs reads the embeddings, the driver
    computes as the driver path does, and delta-rs commits the four tables: the same rows Spark
    would write, with the same keyed, retried commits; ``runs.spark_master`` is null.
    """
    from jobs import lake_rs

    lake = Lake.from_args(args)
    if args.export_cosmos_layout or not lake_rs.writable(lake, WRITTEN):
        return None
    work = early_work(args)
    early = work() if work else None
    if early is None:
        return None
    run_id, result, model = str(uuid.uuid4()), early.result, early.model
    (sizes, summary), where = _counted(result, build_configs(args)[1].eps_to_extract), _of_model(model)
    lake_rs.replace_rows(lake, "semantic_dedup", result.pruned.assign(model=model, run_id=run_id), where)
    lake_rs.replace_rows(lake, "dedup_centroids", pd.DataFrame(_centroid_rows(model, run_id, result.centroids, sizes)),
                         where)
    lake_rs.merge_rows(lake, "dedup_summary", pd.DataFrame(_summary_rows(model, run_id, summary)))
    row = runs.row(run_id, PIPELINE, args, early.started, None, num_clips=early.total)
    lake_rs.merge_rows(lake, "runs", pd.DataFrame([row]))
    return _outcome(row, lake, model, "driver", result.centroids, result.kmeans_s, summary, "delta-rs", "delta-rs")


def _print_plan(spark: SparkSession, inputs: _Inputs, export_layout: str | None) -> dict:
    """--dry-run: what a run would read, compute and replace, from counts alone (no k-means, no writes)."""
    k, p = inputs.kmeans, inputs.prune
    wanted = k.max_points_per_centroid * k.n_clusters
    training = inputs.total if not wanted or wanted >= inputs.total else wanted  # (about: a seeded sample)
    replaced = 0
    if tables.exists(spark, inputs.lake, "semantic_dedup"):
        replaced = tables.read_table(spark, inputs.lake, "semantic_dedup").where(F.col("model") == inputs.model).count()
    plan = {"model": inputs.model, "num_embeddings": inputs.total, "n_clusters": k.n_clusters, "kmeans_backend": inputs.backend,
            "num_training_rows": training, "eps_to_extract": list(p.eps_to_extract), "num_rows_replaced": replaced}
    print(f"model {inputs.model}: {inputs.total} embeddings in {inputs.source}")
    print(f"k-means: {k.n_clusters} clusters on {inputs.backend}, trained on {'about ' if training < inputs.total else ''}"
          f"{training} rows, at most {k.max_iter} iterations, seed {k.random_state}")
    print(f"semdedup: order by {p.sim_metric}, keep {p.which_to_keep}, tiles of {p.tile_size} rows")
    print_table(["eps", "duplicate when cosine_sim_score >="], [[eps, f"{1 - eps:g}"] for eps in p.eps_to_extract])
    print(f"would replace {replaced} semantic_dedup rows of this model (and its dedup_centroids) in {inputs.lake}, "
          f"add {len(p.eps_to_extract)} dedup_summary rows and a runs row"
          + (f"; and write Cosmos-Curate's layout under {export_layout}" if export_layout else ""))
    print("dry run: nothing written")
    return plan


def _report(outcome: dict, lake: Lake) -> None:
    print(f"model {outcome['model']}: {outcome['num_clips']} clips read by {outcome['read_by']} "
          f"and written by {outcome['written_by']}, "
          f"{outcome['n_clusters']} clusters (k-means on {outcome['kmeans_backend']}, {outcome['kmeans_s']:.1f} s); "
          f"{outcome['pipeline_run_time_s']:.1f} s in all")
    print_table(["eps", "kept", "removed", "total"],
                [[s["eps"], s["kept"], s["removed"], s["total"]] for s in outcome["summary"]])
    eps = outcome["summary"][0]["eps"]
    print(f"duplicates: cliplake sql {lake.cli_options()} "
          f"\"SELECT * FROM semantic_dedup WHERE cosine_sim_score >= 1 - {eps}\"")


if __name__ == "__main__":  # spark-submit jobs/dedup.py --output-path ...
    import sys

    from jobs.cli import main

    sys.exit(main([PIPELINE, *sys.argv[1:]]))
