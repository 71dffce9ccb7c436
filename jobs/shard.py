"""The shard-dataset pipeline: a lake's captioned clips -> a dataset Cosmos training code loads (Cosmos-Curate's `shard`).

    cliplake shard --input-clip-path LAKE --output-dataset-path OUT [--input-semantic-dedup-path LAKE] ...

One query picks the samples (deduplicated, filtered and uncaptioned clips left out): in a
webdataset one per clip, binned by resolution, aspect ratio and duration and packed into tars;
in the video2world folder dataset one per caption window, grouped by clip. Groups already
complete in the ``shards`` manifest (same inputs, same size and sha256 on disk; on S3 the
same size and full-object CRC32 from one HeadObject, where the store keeps it) are skipped;
the rest are written in waves, each wave's manifest rows committed when its files are in
place, so a killed run loses at most one wave.
"""

import argparse
import json
import math
import os
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone

import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from curate_udfs.media.transcode import EncoderSettings
from curate_udfs.sharding import bins
from curate_udfs.sharding.members import DATASET_FORMATS, DEFAULT_T2W_CAPTION_TYPE, SHARD_FORMATS, MemberFormat
from curate_udfs.sharding.packing import fill_tars
from curate_udfs.sharding.stage import (EMBEDDED_COLUMNS, MANIFEST_COLUMNS, SAMPLE_COLUMNS, ShardWriteConfig,
                                        embed_caption_batches, write_shard_batches)
from curate_udfs.sharding.tars import is_complete
from curate_udfs.sharding.text_encoder import DEFAULT_MODEL, TextEncoderConfig, check_text_encoder
from curate_udfs.sharding.wdinfo import write_wdinfo, write_wdinfo_list
from curate_udfs import objectstore
from curate_udfs.objectstore import S3Access
from curate_udfs.storage import join, remove_quietly
from jobs import resources, runs, tables
from jobs.lake import Lake, normalize_location
from jobs.report import print_table

PIPELINE = "shard"
GPU_OPTION = "--text-encoder-gpus-per-worker"
FORMAT_VERSION = "cliplake-shard-2"  # part of every file's inputs digest: bump when file contents change
VIDEO2WORLD_GROUPS_PER_WAVE_PER_CORE = 64  # a video2world group is one clip's windows: small


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
                    help="dataset root (folder or s3://bucket/prefix): tars go to {annotation_version}/resolution_*/"
                         "aspect_ratio_*/duration_*/, video2world files to videos/, metas/, t5_xxl/ (need not be empty)")
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
                      help="read the captions table as it was at this time, e.g. '2025-06-01 12:00:00' (the Spark "
                           "session's time zone) or '2025-06-01T12:00:00+02:00'")

    fmt = parser.add_argument_group("dataset format")
    fmt.add_argument("--dataset-format", choices=DATASET_FORMATS, default="webdataset",
                     help="webdataset: tars, one sample per clip; video2world: the folder dataset Cosmos-Predict2 "
                          "post-training reads (videos/, metas/, t5_xxl/), one sample per caption window")
    fmt.add_argument("--shard-format", choices=SHARD_FORMATS, default="cosmos-predict2.5",
                     help="webdataset members: cosmos-predict2.5 (what its stock webdataset pipeline trains on: nb_frames, "
                          "t2w_windows, a dict per window in the pickle) or cosmos-curate (exactly Cosmos-Curate v1.4's shards)")
    fmt.add_argument("--t2w-caption-type", default=DEFAULT_T2W_CAPTION_TYPE,
                     help="cosmos-predict2.5 caption name: t2w_windows carry {TYPE}_caption, the pickle t2w_{TYPE} "
                          "(the loader's caption_type is t2w_{TYPE})")

    enc = parser.add_argument_group("text embedding (t5_xxl)")
    d = TextEncoderConfig()
    enc.add_argument("--text-encoder-model", default=DEFAULT_MODEL, help="folder or hub id of a T5 (or other transformers) text encoder")
    enc.add_argument("--text-encoder-batch-size", type=int, default=d.batch_size, help="captions per model call")
    enc.add_argument("--text-encoder-gpus-per-worker", type=float, default=None,
                     help="GPU share per text-embedding task on clusters with GPU executors (default 1 there; ignored in local mode)")

    tar = parser.add_argument_group("tars")
    tar.add_argument("--target-tar-size-mb", type=float, default=500, help="video tar size to aim for, MB")
    tar.add_argument("--max-tars-per-part", type=int, default=100, help="tars per part_NNNNNN folder")
    tar.add_argument("--min-clips-per-tar", type=int, default=1,
                     help="with --drop-small-shards: a bin's last tar holding fewer clips is left out")
    tar.add_argument("--drop-small-shards", action=argparse.BooleanOptionalAction, default=False,
                     help="leave out each bin's last tar when it holds fewer than --min-clips-per-tar clips")
    tar.add_argument("--tars-per-wave", type=int, default=0,
                     help="tar groups (video2world: clips) written between manifest commits "
                          f"(0: 4 per core of the cluster; video2world {VIDEO2WORLD_GROUPS_PER_WAVE_PER_CORE})")
    tar.add_argument("--transcode-encoder", choices=["libx264", "h264_nvenc"], default="libx264",
                     help="encoder of video2world window mp4s (clips with one window are copied as they are)")
    tar.add_argument("--transcode-encoder-preset", default=None, help="encoder preset (default: veryfast for libx264, p4 for nvenc)")
    tar.add_argument("--transcode-crf", type=int, default=23, help="constant quality of the window mp4s")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the plan (samples, left-out clips, bins, groups, files to write, skip and remove) "
                             "and stop: nothing written, not even the dataset folder")


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
    min_clips_per_tar: int = 1
    drop_small_shards: bool = False
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
        if self.min_clips_per_tar < 1:
            raise ValueError(f"--min-clips-per-tar must be >= 1, got {self.min_clips_per_tar}")
        if self.tars_per_wave < 0:
            raise ValueError(f"--tars-per-wave must be >= 0, got {self.tars_per_wave}")
        if self.dedup_eps is not None and not 0 < self.dedup_eps < 1:
            raise ValueError(f"--semantic-dedup-epsilon must be within (0, 1), got {self.dedup_eps}")
        if self.captions_as_of_version is not None and self.captions_as_of_version < 0:
            raise ValueError(f"--captions-as-of-version must be >= 0, got {self.captions_as_of_version}")
        if self.captions_as_of_timestamp is not None:
            try:  # (Spark compares it: a time without an offset is in the session time zone, spark.sql.session.timeZone)
                datetime.fromisoformat(self.captions_as_of_timestamp)
            except ValueError:
                raise ValueError(f"--captions-as-of-timestamp {self.captions_as_of_timestamp!r} is not a time such as "
                                 "'2025-06-01 12:00:00' or '2025-06-01T12:00:00+02:00'") from None
        if normalize_location(self.dataset_root) == self.lake.root:
            raise ValueError("--output-dataset-path must not be the lake itself")

    @property
    def members(self) -> MemberFormat:
        return self.writer.members

    @property
    def video2world(self) -> bool:
        return self.members.dataset_format == "video2world"

    @property
    def inputs_salt(self) -> str:
        """What besides the samples decides a file's bytes (digested with them)."""
        e, m = self.writer.encoder, self.members
        return json.dumps([FORMAT_VERSION, m.dataset_format, m.shard_format, m.t2w_caption_type, self.text_encoder.model,
                           self.text_encoder.max_length, self.text_encoder.batch_size, e.encoder, e.preset, e.crf, e.threads])


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
    members = MemberFormat(args.dataset_format, args.shard_format, args.t2w_caption_type)
    return ShardJobConfig(
        lake=lake, dataset_root=root, annotation_version=args.annotation_version, text_encoder=text,
        writer=ShardWriteConfig(root, members, encoder, access, clip_access=lake_access), access=access,
        target_tar_bytes=math.ceil(args.target_tar_size_mb * 1024 * 1024) if args.target_tar_size_mb > 0 else 0,
        max_tars_per_part=args.max_tars_per_part, tars_per_wave=args.tars_per_wave,
        min_clips_per_tar=args.min_clips_per_tar, drop_small_shards=args.drop_small_shards,
        dedup_lake=dedup_lake,
        dedup_eps=args.semantic_dedup_epsilon, dedup_model=args.semantic_dedup_model,
        captions_as_of_version=args.captions_as_of_version, captions_as_of_timestamp=args.captions_as_of_timestamp,
        gpus=args.text_encoder_gpus_per_worker,
    )


def check_environment(spark: SparkSession, config: ShardJobConfig, for_writing: bool = True) -> None:
    """Tables present, weights found, encoder available, GPU request possible, dataset writable: before any work.

    ``for_writing=False`` (a dry run) skips what writes: the probe object of an s3:// dataset, the lake's format check.
    """
    # s3a for s3:// lakes (the manifest is written to the clip lake); the dataset bucket must take writes.
    config.lake.open(spark, for_writing=for_writing)
    if config.dedup_lake:
        config.dedup_lake.open(spark, for_writing=False)
    if for_writing and objectstore.is_s3(config.dataset_root):
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
        as_of = F.lit(config.captions_as_of_timestamp).cast("timestamp")  # an instant: any offset in the text is honoured
        found = history.where(F.col("timestamp") <= as_of).agg(F.max("version")).first()[0]
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
    seconds = F.col("num_frames") / F.col("fps")
    duration = F.lit(None).cast("string")
    for low, high, name in reversed(bins.DURATION_BINS):
        duration = F.when((seconds >= low) & (seconds <= high), F.lit(name)).otherwise(duration)
    return [resolution.alias("resolution"), aspect.alias("aspect_ratio"), duration.alias("duration")]


def captioned_clips(captions: DataFrame) -> DataFrame:
    """One row per captioned clip: its windows as parallel arrays in window order, and the caption model.

    ``enhanced_captions`` and ``enhance_model`` are null unless some window has an enhanced caption
    (so a clip's content, and the shards' fingerprints, are what they were before enhancement existed);
    a captions table older than those columns (or read as of an older version) reads as having none.
    """
    for name in ("enhanced_caption", "enhance_model"):
        if name not in captions.columns:
            captions = captions.withColumn(name, F.lit(None).cast("string"))
    window = F.struct("window_index", "start_frame", "end_frame", "caption", "prompt_tokens", "output_tokens",
                      "enhanced_caption")
    grouped = captions.groupBy("clip_id").agg(F.sort_array(F.collect_list(window)).alias("w"),
                                              F.min("model").alias("caption_model"), F.min("enhance_model").alias("enhance_model"))
    return grouped.select(
        "clip_id", "caption_model", F.size("w").alias("num_clip_windows"),
        F.col("w.start_frame").alias("window_starts"), F.col("w.end_frame").alias("window_ends"),
        F.col("w.caption").alias("captions"), F.col("w.prompt_tokens").alias("prompt_tokens"),
        F.col("w.output_tokens").alias("output_tokens"),
        F.when(F.col("enhance_model").isNotNull(), F.col("w.enhanced_caption")).alias("enhanced_captions"), "enhance_model")


def _one_window_per_row(clips: DataFrame) -> DataFrame:
    """video2world: each window its own sample, keyed ``{clip_id}_{start}_{end}`` with the end inclusive."""
    arrays = ("window_starts", "window_ends", "captions", "prompt_tokens", "output_tokens", "enhanced_captions")
    rows = clips.select("*", F.posexplode("window_starts").alias("i", "start"))
    rows = rows.select(*[c for c in clips.columns if c not in arrays],
                       *[F.when(F.col(a).isNotNull(), F.array(F.col(a)[F.col("i")])).alias(a) for a in arrays])
    return rows.withColumn("sample_key", F.concat_ws("_", "clip_id", F.col("window_starts")[0],
                                                     F.col("window_ends")[0] - 1))


def select_samples(spark: SparkSession, config: ShardJobConfig) -> tuple[DataFrame, dict, dict]:
    """The samples (one per clip in play, or per window for video2world), counts of what was left out, versions read."""
    versions = {"clips": tables.latest_version(spark, config.lake, "clips")}
    clips = tables.read_table(spark, config.lake, "clips")
    captions, versions["captions"] = _read_captions(spark, config)
    captions = captions.where(F.col("annotation_version") == config.annotation_version)
    in_play = clips.where("filtered_by IS NULL AND error IS NULL")
    totals = clips.agg(F.count("*"), F.count("filtered_by")).first()  # one pass: all clips, filtered ones
    counts = {"num_clips": totals[0], "num_filtered_clips": totals[1]}
    duplicates, dedup = _duplicates(spark, config, versions)
    if duplicates is not None:
        before = in_play.count()
        in_play = in_play.join(duplicates, "clip_id", "left_anti")
        counts["num_deduplicated_clips"] = before - in_play.count()
    captioned = captioned_clips(captions)
    counts["num_clips_without_captions"] = in_play.join(captioned, "clip_id", "left_anti").count()
    sources = tables.read_table(spark, config.lake, "videos").select(
        "video_id", F.col("width").alias("source_width"), F.col("height").alias("source_height"),
        F.col("fps").alias("source_fps"))
    joined = in_play.drop("run_id").join(captioned, "clip_id").join(sources, "video_id", "left")
    if config.video2world:
        samples = _one_window_per_row(joined).withColumn("bin_dir", F.lit("")).withColumn("group_key", F.col("clip_id"))
        return samples, counts, {"versions": versions, "dedup": dedup}
    samples = joined.select("*", *_bin_columns(), F.col("clip_id").alias("sample_key")).withColumn(
        "bin_dir", F.concat_ws("/", F.lit(config.annotation_version), F.concat(F.lit("resolution_"), "resolution"),
                               F.concat(F.lit("aspect_ratio_"), "aspect_ratio"), F.concat(F.lit("duration_"), "duration")))
    left_out = samples.agg(F.count(F.when(F.col("duration").isNull(), 1)),
                           F.count(F.when(F.col("duration").isNotNull() & F.col("aspect_ratio").isNull(), 1))).first()
    counts["num_clips_too_short"], counts["num_clips_without_bin"] = left_out[0], left_out[1]
    return samples.where("aspect_ratio IS NOT NULL AND duration IS NOT NULL"), counts, {"versions": versions, "dedup": dedup}


def _fingerprinted(samples: DataFrame) -> DataFrame:
    """Everything a sample's members are made of (the clip file by path and size), digested."""
    described = sorted(set(SAMPLE_COLUMNS) - {"tar_seq", "part", "tar"})
    return samples.withColumn("fingerprint", F.sha2(F.to_json(F.struct(*described)), 256))


def assign_tars(samples: DataFrame, config: ShardJobConfig, counts: dict) -> DataFrame:
    """``part`` and ``tar`` per sample: within a bin, in key order, tars filled to ``target_tar_bytes`` of clip bytes.

    The numbering depends only on the bin's samples, so a rebuilt bin gets the same tars.
    video2world samples are grouped by clip instead (no tars).
    """
    if config.video2world:
        return _fingerprinted(samples.withColumn("part", F.lit(None).cast("long")).withColumn("tar", F.lit(None).cast("long")))
    target, min_clips, drop_small = config.target_tar_bytes, config.min_clips_per_tar, config.drop_small_shards

    def fill(bin_rows: pd.DataFrame) -> pd.DataFrame:
        bin_rows = bin_rows.sort_values("sample_key")
        return bin_rows.assign(tar_index=fill_tars(bin_rows["num_bytes"].tolist(), target, min_clips, drop_small))

    indexes = samples.select("bin_dir", "sample_key", "num_bytes").groupBy("bin_dir").applyInPandas(
        fill, "bin_dir string, sample_key string, num_bytes long, tar_index long").drop("num_bytes")
    # Not checkpointed: a local checkpoint dies with its executor (the cluster fault test loses one here).
    packed = samples.join(indexes, ["bin_dir", "sample_key"])
    counts["num_clips_in_dropped_shards"] = packed.where("tar_index IS NULL").count()
    packed = (packed.where("tar_index IS NOT NULL")
              .withColumn("part", (F.col("tar_index") / config.max_tars_per_part).cast("long"))
              .withColumn("tar", F.col("tar_index") % config.max_tars_per_part)
              .withColumn("group_key", F.format_string("%s/part_%06d/%06d", "bin_dir", "part", "tar")))
    return _fingerprinted(packed)


def group_paths(group: dict) -> list[str]:
    """The files of a planned group, relative to the dataset root: three tars, or three files per window."""
    if group["part"] is None:
        return [bins.video2world_path(kind, key) for key in group["sample_keys"] for kind in bins.KINDS]
    return [bins.tar_path(group["bin_dir"], kind, group["part"], group["tar"]) for kind in bins.KINDS]


def plan_groups(planned: DataFrame, config: ShardJobConfig) -> list[dict]:
    """One dict per output group: where it goes, its sample count and the digest of everything it is made of."""
    digest = F.sha2(F.concat(F.lit(config.inputs_salt), F.concat_ws(",", F.sort_array(F.collect_list("fingerprint")))), 256)
    rows = planned.groupBy("group_key").agg(
        F.first("bin_dir").alias("bin_dir"), F.first("part").alias("part"), F.first("tar").alias("tar"),
        F.count("*").alias("num_samples"), digest.alias("inputs_sha256"),
        F.sort_array(F.collect_list("sample_key")).alias("sample_keys"))
    groups = [{**r.asDict(), "sample_keys": list(r.sample_keys)} for r in rows.collect()]
    for g in groups:
        g["paths"] = group_paths(g)
    return sorted(groups, key=lambda g: g["group_key"])


# ---------------------------------------------------------------------------------------------- completion


_CHECKED = ("tar_path", "num_bytes", "sha256", "crc32")


def _verify(spark: SparkSession, root: str, candidates: list[dict], access: S3Access) -> set[str]:
    """The tar paths among ``candidates`` (manifest rows) whose files hold exactly the recorded bytes, checked on executors."""
    if not candidates:
        return set()
    rows = [tuple(c.get(k) for k in _CHECKED) for c in candidates]  # crc32: None in rows of older lakes
    frame = spark.createDataFrame(rows, "tar_path string, num_bytes long, sha256 string, crc32 string")
    frame = frame.repartition(max(1, min(len(candidates), spark.sparkContext.defaultParallelism * 2)))

    def check(batches):
        for batch in batches:
            ok = [is_complete(join(root, p), int(n), s, access, c if isinstance(c, str) else None)
                  for p, n, s, c in zip(batch.tar_path, batch.num_bytes, batch.sha256, batch.crc32)]
            yield pd.DataFrame({"tar_path": batch.tar_path, "ok": ok})

    return {r.tar_path for r in frame.mapInPandas(check, "tar_path string, ok boolean").where("ok").collect()}


def _dataset_manifest(spark: SparkSession, config: ShardJobConfig, this_version: bool = True) -> DataFrame | None:
    """The ``shards`` rows of this dataset, of this annotation version only unless told; None before any file.

    A video2world folder has no version folders: a later version's files replace an earlier one's.
    """
    if not tables.exists(spark, config.lake, "shards"):
        return None
    rows = tables.read_table(spark, config.lake, "shards").where(F.col("dataset_path") == config.dataset_root)
    if not this_version or config.video2world:
        return rows
    return rows.where(F.col("annotation_version") == config.annotation_version)


def complete_groups(spark: SparkSession, config: ShardJobConfig, groups: list[dict]) -> set[str]:
    """Keys of the groups whose files the manifest records with the same inputs and whose bytes check out."""
    rows = _dataset_manifest(spark, config, this_version=False)
    if rows is None:
        return set()
    crc32 = F.col("crc32") if "crc32" in rows.columns else F.lit(None).cast("string").alias("crc32")  # an older lake's manifest
    manifest = {r.tar_path: r.asDict() for r in rows.select("tar_path", "inputs_sha256", "num_bytes", "sha256", crc32).collect()}
    candidates = {g["group_key"]: g["paths"] for g in groups
                  if all(manifest.get(p, {}).get("inputs_sha256") == g["inputs_sha256"] for p in g["paths"])}
    verified = _verify(spark, config.dataset_root, [manifest[p] for paths in candidates.values() for p in paths], config.access)
    return {key for key, paths in candidates.items() if all(p in verified for p in paths)}


# ---------------------------------------------------------------------------------------------- writing


class _Writer:
    """Writes pending groups in waves; each wave's manifest rows are merged when its files are in place."""

    def __init__(self, spark: SparkSession, config: ShardJobConfig, run_id: str):
        self.spark, self.config, self.run_id = spark, config, run_id
        self.profile = resources.stage_profile(spark, GPU_OPTION, config.gpus)
        self.gpu_tasks = spark.sparkContext.accumulator(0)
        self.stats = {"num_tars_written": 0, "num_shard_errors": 0, "errors": []}

    def run(self, planned: DataFrame, pending: list[dict]) -> None:
        per_core = VIDEO2WORLD_GROUPS_PER_WAVE_PER_CORE if self.config.video2world else 4
        per_wave = self.config.tars_per_wave or per_core * self.spark.sparkContext.defaultParallelism
        for start in range(0, len(pending), per_wave):
            self._wave(planned, pending[start:start + per_wave], start)

    def _wave(self, planned: DataFrame, wave: list[dict], first_seq: int) -> None:
        c = self.config
        groups = self.spark.createDataFrame([(g["group_key"], first_seq + i) for i, g in enumerate(wave)],
                                            "group_key string, tar_seq long")
        rows = (planned.join(groups, "group_key")
                .repartitionByRange(len(wave), "tar_seq").sortWithinPartitions("tar_seq", "sample_key")
                .select(*SAMPLE_COLUMNS))
        embedded_schema = T.StructType(list(rows.schema.fields) + list(tables.struct_of(EMBEDDED_COLUMNS).fields))
        columns, text_config, members, gpu_tasks = embedded_schema.fieldNames(), c.text_encoder, c.members, self.gpu_tasks

        def embed(batches):
            import torch

            torch.set_num_threads(resources.task_cpus())
            addresses = resources.task_gpu_addresses()
            if addresses:
                gpu_tasks.add(1)
            return embed_caption_batches(batches, text_config, members, columns, addresses)

        # Checkpointed between the stages: the text encoder may run in a GPU profile, the writer in the default one.
        embedded = tables.computed(resources.map_in_pandas(rows, embed, embedded_schema, self.profile))
        writer = c.writer
        manifest = embedded.mapInPandas(lambda b: write_shard_batches(b, writer), tables.struct_of(MANIFEST_COLUMNS)).collect()
        self._record(manifest, {first_seq + i: g for i, g in enumerate(wave)})

    def _record(self, manifest: list, groups: dict[int, dict]) -> None:
        now = datetime.now(timezone.utc)
        records = []
        for m in manifest:
            g = groups[m.tar_seq]
            self.stats["num_shard_errors"] += len(m.errors)
            self.stats["errors"].extend(m.errors)
            if not m.tar_path:  # a group whose every sample failed wrote nothing: its errors are all it reports
                continue
            row = {k: v for k, v in m.asDict().items() if k != "tar_seq"}
            records.append({**row, "dataset_path": self.config.dataset_root,
                            "annotation_version": self.config.annotation_version, "bin_dir": g["bin_dir"], "part": g["part"],
                            "tar": g["tar"], "inputs_sha256": g["inputs_sha256"], "run_id": self.run_id, "created_at": now})
        self.stats["num_tars_written"] += len(records)
        if records:
            frame = self.spark.createDataFrame(records, tables.SHARDS)
            tables.merge_rows(self.spark, self.config.lake, "shards", frame)


def _stale_paths(spark: SparkSession, config: ShardJobConfig, planned_paths: set[str]) -> list[str]:
    """Files of this dataset and version the manifest lists but the plan no longer has."""
    mine = _dataset_manifest(spark, config)
    if mine is None:
        return []
    return [r.tar_path for r in mine.select("tar_path").collect() if r.tar_path not in planned_paths]


def _retire_stale(spark: SparkSession, config: ShardJobConfig, planned_paths: set[str]) -> int:
    """The stale files (:func:`_stale_paths`) and their manifest rows removed; how many."""
    stale = _stale_paths(spark, config, planned_paths)
    for path in stale:
        remove_quietly(join(config.dataset_root, path), config.access)
    if stale:
        gone = spark.createDataFrame([(config.dataset_root, p) for p in stale], "dataset_path string, tar_path string")
        tables.delete_rows(spark, config.lake, "shards", gone)
    return len(stale)


def write_summaries(spark: SparkSession, config: ShardJobConfig, groups: list[dict], old_bins: set[str]) -> list[str]:
    """``wdinfo.json`` per bin from the manifest (what is on disk), ``wdinfo_list.csv`` for the version."""
    rows = _dataset_manifest(spark, config).where(F.col("kind") == "video").select("bin_dir", "tar_path", "num_samples").collect()
    planned = {g["paths"][0] for g in groups}  # the video tar
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
    write_wdinfo_list(join(config.dataset_root, config.annotation_version, "wdinfo_list.csv"), written, config.access)
    return written


# ---------------------------------------------------------------------------------------------- the job


def run(spark: SparkSession, args: argparse.Namespace) -> dict:
    """Run the shard pipeline; returns the ``runs`` row it wrote."""
    started = datetime.now(timezone.utc)
    config = build_config(args)
    check_environment(spark, config, for_writing=not args.dry_run)
    run_id = str(uuid.uuid4())
    samples, counts, read = select_samples(spark, config)
    planned = tables.computed(assign_tars(samples, config, counts))  # one plan for every step below
    groups = plan_groups(planned, config)
    done = complete_groups(spark, config, groups)
    pending = [g for g in groups if g["group_key"] not in done]
    if args.dry_run:
        return _print_plan(spark, config, counts, groups, pending)
    old_bins = set() if config.video2world else _manifest_bins(spark, config)

    writer = _Writer(spark, config, run_id)
    writer.run(planned, pending)
    removed = _retire_stale(spark, config, {p for g in groups for p in g["paths"]})
    wdinfos = write_summaries(spark, config, groups, old_bins) if not config.video2world and (groups or old_bins) else []

    errors = writer.stats.pop("errors")
    summary = runs.record(
        spark, config.lake, run_id, PIPELINE, args, started,
        input_table_versions=json.dumps({**read["versions"], **({"dedup": read["dedup"]} if read["dedup"] else {})},
                                        sort_keys=True),
        num_clips=counts["num_clips"], num_filtered_clips=counts["num_filtered_clips"],
        num_deduplicated_clips=counts.get("num_deduplicated_clips", 0),
        num_clips_without_captions=counts["num_clips_without_captions"],
        num_clips_too_short=counts.get("num_clips_too_short", 0),
        num_clips_in_dropped_shards=counts.get("num_clips_in_dropped_shards", 0),
        num_shard_samples=sum(g["num_samples"] for g in groups) - writer.stats["num_shard_errors"],
        **writer.stats, num_tars_skipped=sum(len(g["paths"]) for g in groups if g["group_key"] in done),
        num_tars_removed=removed,
        stage_resources=json.dumps({"text_embedding": {"gpus_per_task": config.gpus if writer.profile else 0,
                                                       "tasks_with_gpu": writer.gpu_tasks.value}}),
    )
    _report(summary, errors, counts, wdinfos, config)
    return summary


def _print_plan(spark: SparkSession, config: ShardJobConfig, counts: dict, groups: list[dict], pending: list[dict]) -> dict:
    """--dry-run: the samples, the groups planned and which files a run would write, skip and remove."""
    stale = _stale_paths(spark, config, {p for g in groups for p in g["paths"]})
    files = "files" if config.video2world else "tars"
    plan = {"num_shard_samples": sum(g["num_samples"] for g in groups), "num_groups": len(groups),
            "num_bins": len({g["bin_dir"] for g in groups}), "num_groups_pending": len(pending),
            "num_tars_to_write": sum(len(g["paths"]) for g in pending),
            "num_tars_to_skip": sum(len(g["paths"]) for g in groups) - sum(len(g["paths"]) for g in pending),
            "num_tars_to_remove": len(stale), **counts}
    print_table(["samples", "bins", "groups" if config.video2world else "tar groups", f"{files} to write", "skip (complete)",
                 "remove (stale)", "filtered clips", "duplicates", "no captions", "under 5 s"],
                [[plan["num_shard_samples"], plan["num_bins"], plan["num_groups"], plan["num_tars_to_write"],
                  plan["num_tars_to_skip"], plan["num_tars_to_remove"], counts["num_filtered_clips"],
                  counts.get("num_deduplicated_clips", 0), counts["num_clips_without_captions"],
                  counts.get("num_clips_too_short", 0)]])
    target = config.dataset_root if config.video2world else join(config.dataset_root, config.annotation_version)
    print(f"dry run: nothing written; a run would write {plan['num_tars_to_write']} {files} under {target} "
          f"in waves, and their manifest rows to the shards table of {config.lake}")
    return plan


def _manifest_bins(spark: SparkSession, config: ShardJobConfig) -> set[str]:
    rows = _dataset_manifest(spark, config)
    if rows is None:
        return set()
    return {r.bin_dir for r in rows.select("bin_dir").distinct().collect()}


def _report(summary: dict, errors: list[str], counts: dict, wdinfos: list[str], config: ShardJobConfig) -> None:
    files = "files" if config.video2world else "tars"
    print_table(
        ["samples", f"{files} written", "skipped", "removed", "filtered clips", "duplicates", "no captions", "under 5 s",
         "errors", "seconds"],
        [[summary["num_shard_samples"], summary["num_tars_written"], summary["num_tars_skipped"], summary["num_tars_removed"],
          summary["num_filtered_clips"], summary["num_deduplicated_clips"], summary["num_clips_without_captions"],
          summary["num_clips_too_short"], summary["num_shard_errors"], f"{summary['pipeline_run_time_s']:.1f}"]],
    )
    if counts.get("num_clips_without_bin"):
        print(f"  {counts['num_clips_without_bin']} clips left out: aspect ratio beyond 10:1 has no bin")
    if counts.get("num_clips_in_dropped_shards"):
        print(f"  {counts['num_clips_in_dropped_shards']} clips left out: --drop-small-shards (under --min-clips-per-tar)")
    for message in errors[:20]:
        print(f"  error  {message}")
    if config.video2world:
        print(f"dataset: {config.dataset_root}  (video2world: videos/, metas/, t5_xxl/)")
    else:
        print(f"dataset: {join(config.dataset_root, config.annotation_version)}  ({len(wdinfos)} bins, wdinfo.json in each)")


if __name__ == "__main__":  # spark-submit jobs/shard.py --input-clip-path LAKE --output-dataset-path OUT ...
    import sys

    from jobs.cli import main

    sys.exit(main([PIPELINE, *sys.argv[1:]]))
