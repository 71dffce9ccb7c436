"""The shard-dataset pipeline: a lake's captioned clips -> webdataset tars for training (Cosmos-Curate's `shard`).

    cliplake shard --input-clip-path LAKE --output-dataset-path OUT [--input-semantic-dedup-path LAKE] ...

One query picks the samples (one per caption window of a clip in play, deduplicated clips
left out), bins them (resolution, aspect ratio, frame window) and numbers their tars. Tar
groups already complete in the ``shards`` manifest (same inputs, same size and sha256 on
disk) are skipped; the rest are written in waves, each wave's manifest rows committed when
its tars are in place, so a killed run loses at most one wave.
"""

import argparse
import json
import math
import os
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone

import pandas as pd
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from curate_udfs.media.transcode import EncoderSettings
from curate_udfs.sharding import bins
from curate_udfs.sharding.stage import (EMBEDDED_COLUMNS, KINDS, MANIFEST_COLUMNS, SAMPLE_COLUMNS, ShardWriteConfig,
                                        embed_caption_batches, write_shard_batches)
from curate_udfs.sharding.tars import is_complete
from curate_udfs.sharding.text_encoder import DEFAULT_MODEL, TextEncoderConfig, check_text_encoder
from curate_udfs.sharding.wdinfo import write_wdinfo
from curate_udfs import objectstore
from curate_udfs.objectstore import S3Access
from curate_udfs.storage import join, remove_quietly, write_bytes_atomic
from jobs import resources, runs, tables
from jobs.lake import Lake, normalize_location
from jobs.report import print_table

PIPELINE = "shard"
GPU_OPTION = "--text-encoder-gpus-per-worker"
FORMAT_VERSION = "cliplake-shard-1"  # part of every tar's inputs digest: bump when tar contents change


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The shard options, named as Cosmos-Curate names them."""
    io = parser.add_argument_group("input and output")
    io.add_argument("--input-clip-path", required=True,
                    help="lake written by `cliplake split` (clips and captions; folder or s3://bucket/prefix); the "
                         "shards manifest and the runs row are written there too")
    io.add_argument("--catalog", default=None,
                    help="with --schema: the lake's tables are managed tables CATALOG.SCHEMA.<table> (as written by "
                         "`cliplake split --catalog --schema`); --input-clip-path is then where its media files are")
    io.add_argument("--schema", default=None, help="schema (database) of the lake's tables, with --catalog")
    io.add_argument("--input-s3-profile-name", default=None,
                    help="AWS profile for an s3:// --input-clip-path (its tables and clip files) and "
                         "--input-semantic-dedup-path (default: the usual AWS credential chain)")
    io.add_argument("--output-dataset-path", required=True,
                    help="dataset root (folder or s3://bucket/prefix): tars go to "
                         "{annotation_version}/resolution_*/aspect_ratio_*/frames_*/ (need not be empty)")
    io.add_argument("--output-s3-profile-name", default=None,
                    help="AWS profile for an s3:// --output-dataset-path (default: the usual AWS credential chain)")
    io.add_argument("--input-semantic-dedup-path", default=None,
                    help="lake holding `cliplake dedup` results (semantic_dedup, dedup_summary); duplicates are left out. "
                         "The same path as --input-clip-path means that lake, --catalog/--schema included")
    io.add_argument("--semantic-dedup-epsilon", type=float, default=None,
                    help="a clip is a duplicate when cosine_sim_score >= 1 - eps (default: the smallest eps in dedup_summary)")
    io.add_argument("--semantic-dedup-model", default=None,
                    help="which embedding model's dedup results to use (needed only when there are several)")

    cap = parser.add_argument_group("captions (annotation versions)")
    cap.add_argument("--annotation-version", default="v0", help="captions of this version; also the dataset's top folder")
    asof = cap.add_mutually_exclusive_group()
    asof.add_argument("--captions-as-of-version", type=int, default=None,
                      help="read the captions table as it was at this Delta version (rebuild an old dataset exactly)")
    asof.add_argument("--captions-as-of-timestamp", default=None,
                      help="read the captions table as it was at this time, e.g. '2025-06-01 12:00:00'")

    enc = parser.add_argument_group("text embedding (t5_xxl)")
    d = TextEncoderConfig()
    enc.add_argument("--text-encoder-model", default=DEFAULT_MODEL, help="folder or hub id of a T5 (or other transformers) text encoder")
    enc.add_argument("--text-encoder-batch-size", type=int, default=d.batch_size, help="captions per model call")
    enc.add_argument("--text-encoder-gpus-per-worker", type=float, default=None,
                     help="GPU share per text-embedding task on clusters with GPU executors (default 1 there; ignored in local mode)")

    tar = parser.add_argument_group("tars")
    tar.add_argument("--target-tar-size-mb", type=float, default=500, help="video tar size to aim for, MB")
    tar.add_argument("--max-tars-per-part", type=int, default=100, help="tars per part_NNNNNN folder")
    tar.add_argument("--tars-per-wave", type=int, default=0,
                     help="tar groups written between manifest commits (0: 4 per core of the cluster)")
    tar.add_argument("--transcode-encoder", choices=["libx264", "h264_nvenc"], default="libx264", help="window mp4 encoder")
    tar.add_argument("--transcode-encoder-preset", default=None, help="encoder preset (default: veryfast for libx264, p4 for nvenc)")
    tar.add_argument("--transcode-crf", type=int, default=23, help="constant quality of the window mp4s")


@dataclass(frozen=True)
class ShardJobConfig:
    """The job's choices, checked on the driver before any query runs."""

    lake: Lake
    dataset_root: str
    annotation_version: str
    text_encoder: TextEncoderConfig
    writer: ShardWriteConfig
    target_tar_bytes: int
    max_tars_per_part: int
    tars_per_wave: int
    access: S3Access = S3Access()  # the dataset's side
    dedup_lake: Lake | None = None
    dedup_eps: float | None = None
    dedup_model: str | None = None
    captions_as_of_version: int | None = None
    captions_as_of_timestamp: str | None = None
    gpus: float | None = None

    def __post_init__(self):
        if not self.annotation_version or "/" in self.annotation_version:
            raise ValueError(f"--annotation-version must be a plain name like v0, got {self.annotation_version!r}")
        if self.target_tar_bytes < 1:
            raise ValueError("--target-tar-size-mb must be > 0")
        if self.max_tars_per_part < 1:
            raise ValueError(f"--max-tars-per-part must be >= 1, got {self.max_tars_per_part}")
        if self.tars_per_wave < 0:
            raise ValueError(f"--tars-per-wave must be >= 0, got {self.tars_per_wave}")
        if self.dedup_eps is not None and not 0 < self.dedup_eps < 1:
            raise ValueError(f"--semantic-dedup-epsilon must be within (0, 1), got {self.dedup_eps}")
        if self.captions_as_of_version is not None and self.captions_as_of_version < 0:
            raise ValueError(f"--captions-as-of-version must be >= 0, got {self.captions_as_of_version}")
        if normalize_location(self.dataset_root) == self.lake.root:
            raise ValueError("--output-dataset-path must not be the lake itself")

    @property
    def inputs_salt(self) -> str:
        """What besides the samples decides a tar's bytes (digested with them)."""
        e = self.writer.encoder
        return json.dumps([FORMAT_VERSION, self.text_encoder.model, self.text_encoder.max_length, self.text_encoder.batch_size,
                           e.encoder, e.preset, e.crf, e.threads])


def build_config(args: argparse.Namespace) -> ShardJobConfig:
    lake_access = S3Access(profile_name=args.input_s3_profile_name)
    lake = Lake.at(args.input_clip_path, args.catalog, args.schema, lake_access)
    dedup_lake = None
    if args.input_semantic_dedup_path:
        dedup_lake = Lake.at(args.input_semantic_dedup_path, access=lake_access)
        dedup_lake = lake if dedup_lake.root == lake.root else dedup_lake
    root, access = normalize_location(args.output_dataset_path), S3Access(profile_name=args.output_s3_profile_name)
    encoder = EncoderSettings(encoder=args.transcode_encoder, preset=args.transcode_encoder_preset, crf=args.transcode_crf,
                              threads=1)
    text = TextEncoderConfig(model=args.text_encoder_model, batch_size=args.text_encoder_batch_size)
    return ShardJobConfig(
        lake=lake, dataset_root=root, annotation_version=args.annotation_version, text_encoder=text,
        writer=ShardWriteConfig(root, args.text_encoder_model, encoder, access, clip_access=lake_access), access=access,
        target_tar_bytes=math.ceil(args.target_tar_size_mb * 1024 * 1024) if args.target_tar_size_mb > 0 else 0,
        max_tars_per_part=args.max_tars_per_part, tars_per_wave=args.tars_per_wave,
        dedup_lake=dedup_lake,
        dedup_eps=args.semantic_dedup_epsilon, dedup_model=args.semantic_dedup_model,
        captions_as_of_version=args.captions_as_of_version, captions_as_of_timestamp=args.captions_as_of_timestamp,
        gpus=args.text_encoder_gpus_per_worker,
    )


def check_environment(spark: SparkSession, config: ShardJobConfig) -> None:
    """Tables present, weights found, encoder available, GPU request possible, dataset writable: before any work."""
    # s3a for s3:// lakes (the manifest is written to the clip lake); the dataset bucket must take writes.
    config.lake.open(spark, for_writing=True)
    if config.dedup_lake:
        config.dedup_lake.open(spark, for_writing=False)
    if objectstore.is_s3(config.dataset_root):
        objectstore.check_writable(config.dataset_root, config.access)
    for name in ("clips", "captions"):
        if not tables.exists(spark, config.lake, name):
            raise ValueError(f"{config.lake} holds no {name} table: run `cliplake split {config.lake.cli_options()}` first")
    if config.dedup_lake:
        for name in ("semantic_dedup", "dedup_summary"):
            if not tables.exists(spark, config.dedup_lake, name):
                raise ValueError(f"--input-semantic-dedup-path {config.dedup_lake} holds no {name} table: "
                                 f"run `cliplake dedup {config.dedup_lake.cli_options()}` first")
    check_text_encoder(config.text_encoder)
    config.writer.encoder.check_available()
    resources.stage_profile(spark, GPU_OPTION, config.gpus)


# ---------------------------------------------------------------------------------------------- the query


def _read_captions(spark: SparkSession, config: ShardJobConfig) -> tuple[DataFrame, int]:
    """The captions table, as of a version or time when asked (Delta time travel), and the version read.

    A time is resolved to the last version committed by then, so the run records which version it read.
    """
    latest = tables.latest_version(spark, config.lake, "captions")
    version = latest
    if config.captions_as_of_version is not None:
        version = config.captions_as_of_version
        if version > latest:
            raise ValueError(f"--captions-as-of-version {version}: captions has versions 0..{latest}")
    elif config.captions_as_of_timestamp is not None:
        history = tables.delta_table(spark, config.lake, "captions").history()
        found = history.where(F.col("timestamp") <= F.lit(config.captions_as_of_timestamp)).agg(F.max("version")).first()[0]
        if found is None:
            raise ValueError(f"--captions-as-of-timestamp {config.captions_as_of_timestamp}: the captions table did not exist yet")
        version = int(found)
    return tables.read_table(spark, config.lake, "captions", version), version


def _duplicates(spark: SparkSession, config: ShardJobConfig, versions: dict) -> tuple[DataFrame | None, dict]:
    """Clip ids that dedup marks as duplicates at eps, and the eps/model used."""
    if not config.dedup_lake:
        return None, {}
    dedup = tables.read_table(spark, config.dedup_lake, "semantic_dedup")
    summary = tables.read_table(spark, config.dedup_lake, "dedup_summary")
    for name in ("semantic_dedup", "dedup_summary"):
        versions[name] = tables.latest_version(spark, config.dedup_lake, name)
    models = sorted(r.model for r in dedup.select("model").distinct().collect())
    model = config.dedup_model
    if model is None:
        if len(models) > 1:
            raise ValueError(f"semantic_dedup holds results of several models ({', '.join(models)}): pick one with --semantic-dedup-model")
        model = models[0] if models else None
    elif model not in models:
        raise ValueError(f"--semantic-dedup-model {model}: semantic_dedup has results for {', '.join(models) or 'no model'}")
    eps = config.dedup_eps
    if eps is None:
        eps = summary.where(F.col("model") == model).agg(F.min("eps")).first()[0] if model else None
        if eps is None:
            raise ValueError("dedup_summary has no eps for this model: pass --semantic-dedup-epsilon")
    duplicates = dedup.where((F.col("model") == model) & (F.col("cosine_sim_score") >= 1 - eps)).select("clip_id")
    return duplicates, {"model": model, "eps": eps}


def _bin_columns() -> list:
    """The bins of ``curate_udfs.sharding.bins`` as Spark expressions (same constants)."""
    short = F.least("width", "height")
    resolution = F.lit(bins.RESOLUTION_BELOW)
    for least, name in reversed(bins.RESOLUTION_BINS):
        resolution = F.when(short >= least, F.lit(name)).otherwise(resolution)
    ratio = F.col("width").cast("double") / F.col("height")
    aspect = F.lit(None).cast("string")
    for low, high, name in reversed(bins.ASPECT_RATIO_BINS):
        aspect = F.when((ratio > low) & (ratio <= high), F.lit(name)).otherwise(aspect)
    low = F.floor(F.col("window_start") / bins.FRAMES_BIN_SIZE) * bins.FRAMES_BIN_SIZE
    frames = F.concat(low.cast("string"), F.lit("_"), (low + bins.FRAMES_BIN_SIZE - 1).cast("string"))
    return [resolution.alias("resolution"), aspect.alias("aspect_ratio"), frames.alias("frames_bin")]


def select_samples(spark: SparkSession, config: ShardJobConfig) -> tuple[DataFrame, dict, dict]:
    """One row per caption window of each clip in play: the samples, counts of what was left out, versions read."""
    versions = {"clips": tables.latest_version(spark, config.lake, "clips")}
    clips = tables.read_table(spark, config.lake, "clips")
    captions, versions["captions"] = _read_captions(spark, config)
    captions = captions.where(F.col("annotation_version") == config.annotation_version)
    in_play = clips.where("filtered_by IS NULL AND error IS NULL")
    counts = {"num_clips": clips.count(), "num_filtered_clips": clips.where("filtered_by IS NOT NULL").count()}
    duplicates, dedup = _duplicates(spark, config, versions)
    if duplicates is not None:
        before = in_play.count()
        in_play = in_play.join(duplicates, "clip_id", "left_anti")
        counts["num_deduplicated_clips"] = before - in_play.count()
    captioned = captions.select("clip_id").distinct()
    counts["num_clips_without_captions"] = in_play.join(captioned, "clip_id", "left_anti").count()
    windows = captions.select(
        "clip_id", "window_index", F.col("start_frame").alias("window_start"), F.col("end_frame").alias("window_end"),
        "caption", "annotation_version", F.col("model").alias("caption_model"))
    joined = in_play.drop("run_id").join(windows, "clip_id")
    samples = joined.select(
        "*", *_bin_columns(),
        F.concat_ws("_", "clip_id", "window_start", "window_end").alias("sample_key"),
        # The video tar's share of the clip's bytes: what tar sizes are planned with.
        F.ceil(F.col("num_bytes") * (F.col("window_end") - F.col("window_start")) / F.greatest(F.col("num_frames"), F.lit(1)))
        .cast("long").alias("estimated_bytes"),
    ).withColumn("bin_dir", F.concat_ws("/", F.lit(config.annotation_version), F.concat(F.lit("resolution_"), "resolution"),
                                        F.concat(F.lit("aspect_ratio_"), "aspect_ratio"), F.concat(F.lit("frames_"), "frames_bin")))
    counts["num_samples_without_bin"] = samples.where("aspect_ratio IS NULL").count()
    samples = samples.where("aspect_ratio IS NOT NULL")
    return samples, counts, {"versions": versions, "dedup": dedup}


def assign_tars(samples: DataFrame, config: ShardJobConfig) -> DataFrame:
    """``part`` and ``tar`` per sample: within a bin, in key order, a new tar each ``target_tar_bytes``.

    A sample starting at byte offset o of its bin goes to tar floor(o / target), renumbered densely,
    so the numbering depends only on the bin's samples (and a rebuilt bin gets the same tars).
    """
    by_key = Window.partitionBy("bin_dir").orderBy("sample_key")
    offset = F.sum("estimated_bytes").over(by_key.rowsBetween(Window.unboundedPreceding, Window.currentRow)) - F.col("estimated_bytes")
    raw = samples.withColumn("raw_tar", F.floor(offset / config.target_tar_bytes))
    index = F.dense_rank().over(Window.partitionBy("bin_dir").orderBy("raw_tar")) - 1
    # Everything a sample's three members are made of (the clip file by path and size).
    described = sorted(set(SAMPLE_COLUMNS) - {"tar_seq", "part", "tar"} | {"num_bytes"})
    fingerprint = F.sha2(F.to_json(F.struct(*described)), 256)
    return (raw.withColumn("tar_index", index)
            .withColumn("part", (F.col("tar_index") / config.max_tars_per_part).cast("long"))
            .withColumn("tar", F.col("tar_index") % config.max_tars_per_part)
            .withColumn("fingerprint", fingerprint))


def plan_groups(planned: DataFrame, config: ShardJobConfig) -> list[dict]:
    """One dict per tar group (bin_dir, part, tar): sample count and the digest of everything it is made of."""
    digest = F.sha2(F.concat(F.lit(config.inputs_salt), F.concat_ws(",", F.sort_array(F.collect_list("fingerprint")))), 256)
    rows = planned.groupBy("bin_dir", "part", "tar").agg(F.count("*").alias("num_samples"), digest.alias("inputs_sha256"))
    return sorted((r.asDict() for r in rows.collect()), key=lambda g: (g["bin_dir"], g["part"], g["tar"]))


# ---------------------------------------------------------------------------------------------- completion


def _verify(spark: SparkSession, root: str, candidates: list[dict], access: S3Access) -> set[str]:
    """The tar paths among ``candidates`` (manifest rows) whose files hold exactly the recorded bytes, hashed on executors."""
    if not candidates:
        return set()
    frame = spark.createDataFrame(pd.DataFrame([{k: c[k] for k in ("tar_path", "num_bytes", "sha256")} for c in candidates]))
    frame = frame.repartition(max(1, min(len(candidates), spark.sparkContext.defaultParallelism * 2)))

    def check(batches):
        for batch in batches:
            ok = [is_complete(join(root, p), int(n), s, access) for p, n, s in zip(batch.tar_path, batch.num_bytes, batch.sha256)]
            yield pd.DataFrame({"tar_path": batch.tar_path, "ok": ok})

    return {r.tar_path for r in frame.mapInPandas(check, "tar_path string, ok boolean").where("ok").collect()}


def _dataset_manifest(spark: SparkSession, config: ShardJobConfig, this_version: bool = True) -> DataFrame | None:
    """The ``shards`` rows of this dataset, of this annotation version only unless told; None before any tar."""
    if not tables.exists(spark, config.lake, "shards"):
        return None
    rows = tables.read_table(spark, config.lake, "shards").where(F.col("dataset_path") == config.dataset_root)
    return rows.where(F.col("annotation_version") == config.annotation_version) if this_version else rows


def complete_groups(spark: SparkSession, config: ShardJobConfig, groups: list[dict]) -> set[tuple]:
    """Groups whose three tars the manifest records with the same inputs and whose files check out."""
    rows = _dataset_manifest(spark, config, this_version=False)
    if rows is None:
        return set()
    manifest = {r.tar_path: r.asDict() for r in rows.select("tar_path", "inputs_sha256", "num_bytes", "sha256").collect()}
    candidates = {}
    for g in groups:
        paths = [bins.tar_path(g["bin_dir"], kind, g["part"], g["tar"]) for kind in KINDS]
        if all(manifest.get(p, {}).get("inputs_sha256") == g["inputs_sha256"] for p in paths):
            candidates[(g["bin_dir"], g["part"], g["tar"])] = paths
    verified = _verify(spark, config.dataset_root, [manifest[p] for paths in candidates.values() for p in paths], config.access)
    return {group for group, paths in candidates.items() if all(p in verified for p in paths)}


# ---------------------------------------------------------------------------------------------- writing


class _Writer:
    """Writes pending tar groups in waves; each wave's manifest rows are merged when its tars are in place."""

    def __init__(self, spark: SparkSession, config: ShardJobConfig, run_id: str):
        self.spark, self.config, self.run_id = spark, config, run_id
        self.profile = resources.stage_profile(spark, GPU_OPTION, config.gpus)
        self.gpu_tasks = spark.sparkContext.accumulator(0)
        self.stats = {"num_tars_written": 0, "num_shard_errors": 0, "errors": []}

    def run(self, planned: DataFrame, pending: list[dict]) -> None:
        per_wave = self.config.tars_per_wave or 4 * self.spark.sparkContext.defaultParallelism
        for start in range(0, len(pending), per_wave):
            self._wave(planned, pending[start:start + per_wave], start)

    def _wave(self, planned: DataFrame, wave: list[dict], first_seq: int) -> None:
        c = self.config
        groups = self.spark.createDataFrame(
            [(g["bin_dir"], g["part"], g["tar"], first_seq + i, g["inputs_sha256"]) for i, g in enumerate(wave)],
            "bin_dir string, part long, tar long, tar_seq long, inputs_sha256 string")
        rows = (planned.join(groups.drop("inputs_sha256"), ["bin_dir", "part", "tar"])
                .repartitionByRange(len(wave), "tar_seq").sortWithinPartitions("tar_seq", "sample_key")
                .select(*SAMPLE_COLUMNS))
        embedded_schema = T.StructType(list(rows.schema.fields) + list(tables.struct_of(EMBEDDED_COLUMNS).fields))
        columns, text_config, gpu_tasks = embedded_schema.fieldNames(), c.text_encoder, self.gpu_tasks

        def embed(batches):
            import torch

            torch.set_num_threads(resources.task_cpus())
            addresses = resources.task_gpu_addresses()
            if addresses:
                gpu_tasks.add(1)
            return embed_caption_batches(batches, text_config, columns, addresses)

        # Checkpointed between the stages: the text encoder may run in a GPU profile, the writer in the default one.
        embedded = resources.map_in_pandas(rows, embed, embedded_schema, self.profile).localCheckpoint(eager=True)
        writer = c.writer
        manifest = embedded.mapInPandas(lambda b: write_shard_batches(b, writer), tables.struct_of(MANIFEST_COLUMNS)).collect()
        self._record(manifest, {first_seq + i: g for i, g in enumerate(wave)})

    def _record(self, manifest: list, groups: dict[int, dict]) -> None:
        now = datetime.now(timezone.utc)
        records = []
        for m in manifest:
            g = groups[m.tar_seq]
            row = {k: v for k, v in m.asDict().items() if k != "tar_seq"}
            records.append({**row, "dataset_path": self.config.dataset_root,
                            "annotation_version": self.config.annotation_version, "bin_dir": g["bin_dir"], "part": g["part"],
                            "tar": g["tar"], "inputs_sha256": g["inputs_sha256"], "run_id": self.run_id, "created_at": now})
            if m.kind == "video":
                self.stats["num_shard_errors"] += len(m.errors)
                self.stats["errors"].extend(m.errors)
        self.stats["num_tars_written"] += len(records)
        if records:
            frame = self.spark.createDataFrame(records, tables.SHARDS)
            tables.merge_rows(self.spark, self.config.lake, "shards", frame)


def _retire_stale(spark: SparkSession, config: ShardJobConfig, planned_paths: set[str]) -> int:
    """Tars of this dataset and version the manifest lists but the plan no longer has: files and rows removed."""
    mine = _dataset_manifest(spark, config)
    if mine is None:
        return 0
    stale = [r.tar_path for r in mine.select("tar_path").collect() if r.tar_path not in planned_paths]
    for path in stale:
        remove_quietly(join(config.dataset_root, path), config.access)
    if stale:
        gone = spark.createDataFrame([(config.dataset_root, p) for p in stale], "dataset_path string, tar_path string")
        (tables.ensure_table(spark, config.lake, "shards").alias("t")
         .merge(gone.alias("s"), "t.dataset_path = s.dataset_path AND t.tar_path = s.tar_path").whenMatchedDelete().execute())
    return len(stale)


def write_summaries(spark: SparkSession, config: ShardJobConfig, groups: list[dict], old_bins: set[str]) -> list[str]:
    """``wdinfo.json`` per bin from the manifest (what is on disk), ``wdinfo_list.csv`` for the version."""
    rows = _dataset_manifest(spark, config).where(F.col("kind") == "video").select("bin_dir", "tar_path", "num_samples").collect()
    planned = {bins.tar_path(g["bin_dir"], "video", g["part"], g["tar"]) for g in groups}
    per_bin: dict[str, list] = {}
    for r in rows:
        if r.tar_path in planned:
            per_bin.setdefault(r.bin_dir, []).append(r)
    written = []
    for bin_dir in sorted(per_bin):
        root = join(config.dataset_root, bin_dir)
        tars = [os.path.relpath(r.tar_path, f"{bin_dir}/video") for r in per_bin[bin_dir]]
        written.append(write_wdinfo(root, tars, sum(r.num_samples for r in per_bin[bin_dir]), config.max_tars_per_part,
                                    config.access))
    for bin_dir in old_bins - set(per_bin):  # a bin left with no tars keeps no wdinfo
        remove_quietly(join(config.dataset_root, bin_dir, "wdinfo.json"), config.access)
    listing = "".join(f"{p}\n" for p in written)
    write_bytes_atomic(join(config.dataset_root, config.annotation_version, "wdinfo_list.csv"), listing.encode(),
                       config.access)
    return written


# ---------------------------------------------------------------------------------------------- the job


def run(spark: SparkSession, args: argparse.Namespace) -> dict:
    """Run the shard pipeline; returns the ``runs`` row it wrote."""
    started = datetime.now(timezone.utc)
    config = build_config(args)
    check_environment(spark, config)
    run_id = str(uuid.uuid4())
    samples, counts, read = select_samples(spark, config)
    planned = assign_tars(samples, config).localCheckpoint(eager=True)  # one plan for every step below
    groups = plan_groups(planned, config)
    done = complete_groups(spark, config, groups)
    pending = [g for g in groups if (g["bin_dir"], g["part"], g["tar"]) not in done]
    old_bins = _manifest_bins(spark, config)

    writer = _Writer(spark, config, run_id)
    writer.run(planned, pending)
    planned_paths = {bins.tar_path(g["bin_dir"], kind, g["part"], g["tar"]) for g in groups for kind in KINDS}
    removed = _retire_stale(spark, config, planned_paths)
    wdinfos = write_summaries(spark, config, groups, old_bins) if groups or old_bins else []

    errors = writer.stats.pop("errors")
    summary = runs.record(
        spark, config.lake, run_id, PIPELINE, args, started,
        input_table_versions=json.dumps({**read["versions"], **({"dedup": read["dedup"]} if read["dedup"] else {})},
                                        sort_keys=True),
        num_clips=counts["num_clips"], num_filtered_clips=counts["num_filtered_clips"],
        num_deduplicated_clips=counts.get("num_deduplicated_clips", 0),
        num_clips_without_captions=counts["num_clips_without_captions"],
        num_shard_samples=sum(g["num_samples"] for g in groups) - writer.stats["num_shard_errors"],
        **writer.stats, num_tars_skipped=len(done) * len(KINDS), num_tars_removed=removed,
        stage_resources=json.dumps({"text_embedding": {"gpus_per_task": config.gpus if writer.profile else 0,
                                                       "tasks_with_gpu": writer.gpu_tasks.value}}),
    )
    _report(summary, errors, counts, wdinfos, config)
    return summary


def _manifest_bins(spark: SparkSession, config: ShardJobConfig) -> set[str]:
    rows = _dataset_manifest(spark, config)
    if rows is None:
        return set()
    return {r.bin_dir for r in rows.select("bin_dir").distinct().collect()}


def _report(summary: dict, errors: list[str], counts: dict, wdinfos: list[str], config: ShardJobConfig) -> None:
    print_table(
        ["samples", "tars written", "skipped", "removed", "filtered clips", "duplicates", "no captions", "errors", "seconds"],
        [[summary["num_shard_samples"], summary["num_tars_written"], summary["num_tars_skipped"], summary["num_tars_removed"],
          summary["num_filtered_clips"], summary["num_deduplicated_clips"], summary["num_clips_without_captions"],
          summary["num_shard_errors"], f"{summary['pipeline_run_time_s']:.1f}"]],
    )
    if counts.get("num_samples_without_bin"):
        print(f"  {counts['num_samples_without_bin']} windows left out: aspect ratio beyond 10:1 has no bin")
    for message in errors[:20]:
        print(f"  error  {message}")
    print(f"dataset: {join(config.dataset_root, config.annotation_version)}  ({len(wdinfos)} bins, wdinfo.json in each)")


if __name__ == "__main__":  # spark-submit jobs/shard.py --input-clip-path LAKE --output-dataset-path OUT ...
    import sys

    from jobs.cli import main

    sys.exit(main([PIPELINE, *sys.argv[1:]]))
