"""The split pipeline: videos -> probed `videos` rows, TransNetV2 or fixed-stride clips, H.264 mp4s.

Run it as ``cliplake split ...`` or ``spark-submit jobs/split_annotate.py ...`` (same options).
Incremental: videos already ``ok`` in the lake are skipped (``--retry-errors`` re-tries failed
ones), and every table is written with MERGE on its key, so a re-run changes nothing.
"""

import argparse
import uuid
from datetime import datetime, timezone
from typing import Callable

from pyspark import StorageLevel, TaskContext
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from curate_udfs import split_stage
from curate_udfs.objectstore import S3Access
from curate_udfs.media.transcode import EncoderSettings
from curate_udfs.sharding.text_encoder import DEFAULT_MODEL as DEFAULT_TEXT_ENCODER
from curate_udfs.sharding.text_encoder import TextEncoderConfig, check_text_encoder
from curate_udfs.splitting.spans import FixedStrideRules, TransNetV2Rules
from curate_udfs.storage import join
from jobs import annotate, lake_rs, listing, runs, storage_options, tables, work_plan
from jobs.lake import Lake
from jobs.report import print_table

PIPELINE = "split"
LIGHT_JVM = True  # the JVM lists, moves Arrow batches and commits; decoding, inference and encoding are Python (jobs.session)
VIDEO2WORLD_FOLDER = "cosmos_predict2_video2world_dataset"  # Cosmos-Curate's name, under the output path
INPUT_SCHEMA = T.StructType([T.StructField(c, T.StringType()) for c in split_stage.INPUT_COLUMNS])
RESULT_SCHEMA = tables.with_fields(
    tables.struct_of(split_stage.VIDEO_COLUMNS),
    T.StructField("clips", T.ArrayType(tables.struct_of(split_stage.CLIP_COLUMNS))),
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The split options, named as Cosmos-Curate names them."""
    io = parser.add_argument_group("input and output")
    io.add_argument("--input-video-path", help="folder or s3://bucket/prefix of videos (searched recursively: mp4, mov, "
                                               "mkv, webm, avi) or one video")
    io.add_argument("--input-video-list-json-path", help="JSON file (local or s3://) holding a list of video paths, instead of a folder")
    io.add_argument("--output-path", "--output-clip-path", dest="output_path", required=True,
                    help="lake root (folder or s3://bucket/prefix): Delta tables and media/clips/{clip_id}.mp4 go here")
    storage_options.add_input_arguments(io)
    storage_options.add_lake_arguments(io, presigned_output=True)
    io.add_argument("--limit", type=int, default=0, help="process at most N listed videos (0: all)")
    io.add_argument("--retry-errors", action="store_true", help="process again videos whose earlier run ended in error")
    io.add_argument("--limit-clips", type=int, default=0,
                    help="keep only the first N clips of each video, in time order (0: all), as Cosmos-Curate: the "
                         "video is split as usual, then only those clips are transcoded, written, annotated and counted. "
                         "A video split under a limit is done: a later run without it does not add its other clips")
    work_plan.add_wave_arguments(parser)
    from jobs import split_stream  # (it builds on this module)

    split_stream.add_arguments(parser)

    split = parser.add_argument_group("splitting")
    split.add_argument("--splitting-algorithm", choices=["transnetv2", "fixed-stride"], default="transnetv2")
    d = TransNetV2Rules()
    split.add_argument("--transnetv2-threshold", type=float, default=d.threshold, help="cut probability above which a frame is a transition")
    split.add_argument("--transnetv2-min-length-s", type=float, default=d.min_length_s, help="shortest clip kept, seconds")
    split.add_argument("--transnetv2-min-length-frames", type=int, default=d.min_length_frames, help="shortest clip kept, frames")
    split.add_argument("--transnetv2-max-length-s", type=float, default=d.max_length_s, help="longest clip; longer shots are cut (0: no limit)")
    split.add_argument("--transnetv2-max-length-mode", choices=["stride", "truncate"], default=d.max_length_mode,
                       help="stride: cut a long shot into consecutive clips; truncate: keep its first part")
    split.add_argument("--transnetv2-crop-s", type=float, default=d.crop_s, help="seconds dropped at each end of a clip, when it stays above the minimum")
    split.add_argument("--transnetv2-precision", choices=["fp32", "bf16"], default="fp32",
                       help="bf16: about 2x faster TransNetV2 on CPU, probabilities within ~1e-3")
    split.add_argument("--transnetv2-device", choices=["auto", "cpu", "cuda"], default="auto", help="auto: the GPU when there is one")
    split.add_argument("--split-frame-buffer-mb", type=int, default=split_stage.SplitConfig.frame_buffer_mb,
                       help="decoded frames kept per task from TransNetV2's pass for the encoder, so a video that fits is "
                            "decoded once (512 MiB: about 60 s of 640x360 at 25 fps, 6 s of 1080p at 30 fps); a longer "
                            "one is decoded again (0: always)")
    s = FixedStrideRules()
    split.add_argument("--fixed-stride-split-duration", type=float, default=s.split_duration_s, help="clip length, seconds")
    split.add_argument("--fixed-stride-min-clip-length-s", type=float, default=s.min_clip_length_s, help="a last piece shorter than this is dropped")

    enc = parser.add_argument_group("transcoding")
    enc.add_argument("--transcode-encoder", choices=["libx264", "h264_nvenc"], default="libx264",
                     help="h264_nvenc encodes on an NVIDIA GPU")
    enc.add_argument("--transcode-encoder-preset", default=None, help="encoder preset (default: veryfast for libx264, p4 for nvenc)")
    enc.add_argument("--transcode-crf", type=int, default=23, help="constant quality (libx264 crf, nvenc cq)")
    enc.add_argument("--transcode-encoder-threads", type=int, default=0,
                     help="encoder threads per task (0: spark.task.cpus)")

    annotate.add_filter_arguments(parser)
    annotate.add_embedding_arguments(parser)
    annotate.add_caption_arguments(parser)

    predict = parser.add_argument_group("Cosmos-Predict2 post-training dataset")
    predict.add_argument("--generate-cosmos-predict-dataset", choices=["disable", "predict2"], default="disable",
                         help=f"predict2: write the video2world folder dataset of the lake's captioned clips to "
                              f"{{output_path}}/{VIDEO2WORLD_FOLDER}/ (what `cliplake shard --dataset-format video2world` writes)")
    predict.add_argument("--text-encoder-model", default=DEFAULT_TEXT_ENCODER,
                         help="folder or hub id of the T5 that embeds the captions for that dataset")


def build_config(args: argparse.Namespace, clips_dir: str, task_cpus: int = 1,
                 output_access: S3Access | None = None) -> split_stage.SplitConfig:
    """The typed stage config, checked here on the driver before any task runs."""
    encoder = EncoderSettings(
        encoder=args.transcode_encoder, preset=args.transcode_encoder_preset, crf=args.transcode_crf,
        threads=args.transcode_encoder_threads or task_cpus,
    )
    encoder.check_available()
    return split_stage.SplitConfig(
        clips_dir=clips_dir,
        splitting_algorithm=args.splitting_algorithm,
        transnetv2=TransNetV2Rules(
            threshold=args.transnetv2_threshold, min_length_s=args.transnetv2_min_length_s,
            min_length_frames=args.transnetv2_min_length_frames, max_length_s=args.transnetv2_max_length_s or None,
            max_length_mode=args.transnetv2_max_length_mode, crop_s=args.transnetv2_crop_s,
        ),
        transnetv2_precision=args.transnetv2_precision,
        fixed_stride=FixedStrideRules(args.fixed_stride_split_duration, args.fixed_stride_min_clip_length_s),
        encoder=encoder,
        device=args.transnetv2_device,
        input_access=S3Access(profile_name=getattr(args, "input_s3_profile_name", None)),
        output_access=output_access or S3Access(),
        limit_clips=getattr(args, "limit_clips", 0),
        frame_buffer_mb=getattr(args, "split_frame_buffer_mb", split_stage.SplitConfig.frame_buffer_mb),
    )


def _pending_videos(spark: SparkSession, lake: Lake, listed: DataFrame, retry_errors: bool) -> DataFrame:
    """Listed videos not yet done, in list order: those already ``ok`` (and, unless retrying, ``error``) are skipped."""
    pending = listed
    if not lake_rs.known_empty(lake, "videos") and tables.exists(spark, lake, "videos"):  # (a new lake: nothing is done yet)
        done_status = ["ok"] if retry_errors else ["ok", "error"]
        done = tables.read_table(spark, lake, "videos").where(F.col("status").isin(done_status)).select("source_path")
        pending = listed.join(done, "source_path", "left_anti")
    return pending.orderBy("position", "source_path")


def _plan(spark: SparkSession, lake: Lake, listed: DataFrame, retry_errors: bool) -> tuple[DataFrame, dict]:
    """The pending videos (cached, to be streamed back wave by wave) and the counts: listed, skipped, pending, bytes.

    Cache ``listed`` first when it is used again: it may be a listing of a whole bucket."""
    pending, num_pending, num_bytes = listing.cached_with_totals(_pending_videos(spark, lake, listed, retry_errors),
                                                                 work_plan.UNKNOWN_VIDEO_BYTES)
    num_listed = listed.count()
    return pending, {"num_input_videos": num_listed, "num_skipped_videos": num_listed - num_pending,
                     "num_pending_videos": num_pending, "pending_bytes": num_bytes}


def _tasks(spark: SparkSession, paths: list[str], sizes: list[int]) -> list[list[str]]:
    """The wave's videos packed into tasks by size, largest first (many small videos share a task)."""
    parallelism = spark.sparkContext.defaultParallelism
    return [[paths[i] for i in task] for task in work_plan.pack_tasks(sizes, work_plan.num_tasks(sizes, parallelism))]


def _split(spark: SparkSession, config: split_stage.SplitConfig, paths: list[str], sizes: list[int]) -> DataFrame:
    """The wave's videos in tasks packed by size, each task's largest first; results cached."""
    tasks = _tasks(spark, paths, sizes)
    # One partition per task: parallelize a list of tasks, then flatten each into its rows.
    rows = spark.sparkContext.parallelize(tasks, numSlices=len(tasks)).flatMap(lambda task: [(p, p) for p in task])
    inputs = spark.createDataFrame(rows, INPUT_SCHEMA)

    def split_partition(batches):
        cpus = TaskContext.get().cpus() if TaskContext.get() else 1
        return split_stage.split_batches(batches, config, torch_threads=cpus)

    return inputs.mapInPandas(split_partition, RESULT_SCHEMA).persist(StorageLevel.MEMORY_AND_DISK)


def _write(spark: SparkSession, lake: Lake, results: DataFrame, run_id: str, stats: dict) -> None:
    """Clips first, then videos: a video marked ok always has its clips, even after a crash in between."""
    stamp = F.lit(run_id).alias("run_id")
    if stats["num_clips"]:
        clips = results.select(F.explode("clips").alias("c")).select("c.*", stamp)
        tables.merge_rows(spark, lake, "clips", clips, cached=True, num_rows=stats["num_clips"])
    videos = results.drop("clips").select("*", stamp, F.current_timestamp().alias("processed_at"))
    tables.merge_rows(spark, lake, "videos", videos, cached=True, num_rows=stats["num_processed_videos"])


MAX_ERRORS_SHOWN = 20  # the rest are in the videos table: the driver keeps no per-video list
_STATS = ("num_processed_videos", "num_error_videos", "num_clips", "total_video_duration_s",
          "total_clip_duration_s", "max_clip_duration_s")


def _statistics(results: DataFrame) -> tuple[dict, list[tuple[str, str]]]:
    """Run the split (``results`` is cached) and count what it did; the failed videos and why."""
    clip_s = F.aggregate("clips", F.lit(0.0), lambda acc, c: acc + (c["end_s"] - c["start_s"]))
    longest = F.array_max(F.transform("clips", lambda c: c["end_s"] - c["start_s"]))
    row = results.agg(
        F.count("*").alias("num_processed_videos"),
        F.count(F.when(F.col("status") == "error", 1)).alias("num_error_videos"),
        F.coalesce(F.sum("num_clips"), F.lit(0)).alias("num_clips"),
        F.coalesce(F.sum("duration_s"), F.lit(0.0)).alias("total_video_duration_s"),
        F.coalesce(F.sum(clip_s), F.lit(0.0)).alias("total_clip_duration_s"),
        F.coalesce(F.max(longest), F.lit(0.0)).alias("max_clip_duration_s"),
    ).first()
    errors = results.where("status = 'error'").select("source_path", "error").limit(MAX_ERRORS_SHOWN).collect()
    return row.asDict(), [(r.source_path, r.error) for r in errors]


class SplitRun:
    """One split run: its checked configuration and its running totals.

    A batch run splits one listing; ``split --stream`` calls :meth:`split` for each micro-batch's
    new files. Creating one checks the options and locates the weights, before any work.
    """

    def __init__(self, spark: SparkSession, args: argparse.Namespace, annotate_config: annotate.AnnotateConfig | None = None):
        self.spark, self.args, self.started = spark, args, datetime.now(timezone.utc)
        self.lake, self.run_id = Lake.from_args(args), str(uuid.uuid4())
        task_cpus = int(spark.conf.get("spark.task.cpus", "1"))
        self.config = build_config(args, self.lake.media("clips"), task_cpus, self.lake.access)
        if annotate_config is None:
            annotate_config = annotate.build_config(args, self.lake.root)
        self.annotator = annotate.Annotator(spark, self.lake, annotate_config, self.run_id)
        if args.generate_cosmos_predict_dataset == "predict2":
            if not args.generate_captions:
                raise ValueError("--generate-cosmos-predict-dataset predict2 needs captions: drop --no-generate-captions")
            check_text_encoder(TextEncoderConfig(model=args.text_encoder_model))
        self.sizer = work_plan.WaveSizer(args.commit_every_videos, args.commit_every_seconds,
                                         spark.sparkContext.defaultParallelism)
        self.stats, self.errors = {name: 0.0 if name.endswith("_s") else 0 for name in _STATS}, []
        self.listed = self.skipped = 0
        self.annotated: dict = {}

    def listed_videos(self) -> DataFrame:
        args = self.args
        return listing.listed_videos(self.spark, args.input_video_path, args.input_video_list_json_path, args.limit,
                                     self.config.input_access,
                                     S3Access(profile_name=getattr(args, "input_video_list_s3_profile_name", None)))

    def open_lake(self) -> None:
        self.lake.open(self.spark, for_writing=True)  # a missing bucket or denied write stops the job here, before any work
        tables.ensure_tables(self.spark, self.lake)  # a lake is complete even when nothing is processed

    def split(self, listed: DataFrame) -> None:
        """Split the listed videos not yet done, committing in waves, and annotate their clips."""
        spark, lake = self.spark, self.lake
        listed = listed.persist(StorageLevel.MEMORY_AND_DISK)  # planned now, its clips annotated at the end
        pending, plan = _plan(spark, lake, listed, self.args.retry_errors)
        self.listed += plan["num_input_videos"]
        self.skipped += plan["num_skipped_videos"]
        done = 0
        try:
            for wave, sizes in listing.waves_of(pending, self.sizer):
                self.sizer.start()
                results = _split(spark, self.config, wave, sizes)
                try:
                    wave_stats, wave_errors = _statistics(results)
                    self.sizer.done(sum(sizes))  # waves are sized by processing time; commits come on top
                    _write(spark, lake, results, self.run_id, wave_stats)
                finally:
                    results.unpersist()
                self.stats = {name: max(self.stats[name], wave_stats[name]) if name.startswith("max_")
                              else self.stats[name] + wave_stats[name] for name in _STATS}
                self.errors += wave_errors[:MAX_ERRORS_SHOWN - len(self.errors)]
                self.annotated = self.annotator.run(wave)  # the wave's clips are annotated as soon as they are committed
                done += len(wave)
                if done < plan["num_pending_videos"]:  # progress for `cliplake sql` to watch; the last wave's comes with the final row
                    self.record("running")
        finally:
            pending.unpersist()
        # Clips of videos split by an earlier (maybe interrupted) run: this run's waves annotated their own.
        if plan["num_skipped_videos"]:
            self.annotated = self.annotator.run(listed)
        listed.unpersist()

    def record(self, status: str) -> dict:
        """The run's ``runs`` row, as it stands."""
        return runs.record(self.spark, self.lake, self.run_id, PIPELINE, self.args, self.started, status=status,
                           num_input_videos=self.listed, num_skipped_videos=self.skipped, **self.stats, **self.annotated)

    def finish(self) -> dict:
        """The final ``runs`` row, the report, and the video2world dataset when asked for."""
        summary = self.record("done")
        _report(summary, self.errors, self.lake)
        if self.args.generate_cosmos_predict_dataset == "predict2":
            from jobs import shard

            shard.run(self.spark, _video2world_arguments(self.args, self.lake))
        return summary


def early_work(args: argparse.Namespace) -> Callable[[], annotate.AnnotateConfig]:
    """The annotation stages' checks, to run while the JVM starts (cliplake does; ``run`` takes the result):
    locating weights and loading the captioning processor (importing transformers) take seconds."""
    def work() -> annotate.AnnotateConfig:
        if args.stream:
            from jobs import split_stream

            split_stream.check_options(args)  # a wrong stream option is named before any model is looked for
        return annotate.build_config(args, Lake.from_args(args).root)

    return work


def run(spark: SparkSession, args: argparse.Namespace, annotate_config: annotate.AnnotateConfig | None = None) -> dict:
    """Run the split pipeline; returns the ``runs`` row it wrote. ``annotate_config``: :func:`early_work`'s."""
    if args.stream:
        from jobs import split_stream

        return split_stream.run(spark, args, annotate_config)
    job = SplitRun(spark, args, annotate_config)
    listed = job.listed_videos()
    if args.dry_run:
        job.lake.open(spark, for_writing=False)  # (an s3:// lake's tables are read through S3A)
        plan = _print_plan(spark, job.lake, listed, args.retry_errors, job.sizer)
        plan["stages"] = _stages(job)
        print(f"stages: {', '.join(plan['stages'])}")
        return plan
    job.open_lake()
    job.split(listed)
    return job.finish()


def _stages(job: SplitRun) -> list[str]:
    """The stages a run would run, in order (for --dry-run)."""
    c = job.config
    limit = f", first {c.limit_clips} clips per video" if c.limit_clips else ""
    stages = [f"split ({c.splitting_algorithm}{limit})", f"transcode ({c.encoder.encoder})",
              *job.annotator._enabled_model_stages()]
    if job.args.generate_cosmos_predict_dataset == "predict2":
        stages.append("video2world dataset")
    return stages


def _video2world_arguments(args: argparse.Namespace, lake: Lake) -> argparse.Namespace:
    """The `cliplake shard` options that write this lake's video2world dataset (Cosmos-Curate's split option)."""
    from jobs.cli import build_parser

    argv = ["shard", "--spark-profile", args.spark_profile, "--input-clip-path", lake.root,
            "--output-dataset-path", join(lake.root, VIDEO2WORLD_FOLDER),
            "--dataset-format", "video2world", "--annotation-version", args.annotation_version,
            "--text-encoder-model", args.text_encoder_model, "--transcode-encoder", args.transcode_encoder,
            "--transcode-crf", str(args.transcode_crf)]
    if lake.in_catalog:
        argv += ["--catalog", lake.catalog, "--schema", lake.schema]
    if args.transcode_encoder_preset:
        argv += ["--transcode-encoder-preset", args.transcode_encoder_preset]
    profile = getattr(args, "output_s3_profile_name", None)
    if profile:
        argv += ["--input-s3-profile-name", profile, "--output-s3-profile-name", profile]
    return build_parser("shard").parse_args(argv)


def _print_plan(spark: SparkSession, lake: Lake, listed: DataFrame, retry_errors: bool, sizer: work_plan.WaveSizer) -> dict:
    """--dry-run: what a run would do, without doing it."""
    listed = listed.persist(StorageLevel.MEMORY_AND_DISK)  # (counted and anti-joined: listed once)
    pending, plan = _plan(spark, lake, listed, retry_errors)
    first, sizes = next(listing.waves_of(pending, sizer), ([], []))
    pending.unpersist()
    listed.unpersist()
    plan.update(first_wave_videos=len(first), first_wave_tasks=len(_tasks(spark, first, sizes)) if first else 0,
                min_waves=-(-plan["num_pending_videos"] // sizer.every_videos))
    print_table(["listed", "done already", "pending", "first wave", "its tasks", "waves (at least)"],
                [[plan["num_input_videos"], plan["num_skipped_videos"], plan["num_pending_videos"],
                  plan["first_wave_videos"], plan["first_wave_tasks"], plan["min_waves"]]])
    print(f"later waves: up to {sizer.every_videos} videos and about {sizer.every_seconds:.0f} s of work each "
          f"(speed measured as it runs); {plan['pending_bytes'] / 1e9:.1f} GB pending")
    return plan


def _report(summary: dict, errors: list[tuple[str, str]], lake: Lake) -> None:
    wall = summary["pipeline_run_time_s"]
    print_table(
        ["videos", "skipped", "clips", "errors", "seconds", "video-s per wall-s"],
        [[summary["num_processed_videos"], summary["num_skipped_videos"], summary["num_clips"],
          summary["num_error_videos"], f"{wall:.1f}", f"{summary['total_video_duration_s'] / wall:.2f}"]],
    )
    annotate.report(summary)
    for path, message in errors:
        print(f"  error  {path}: {message}")
    if summary["num_error_videos"] > len(errors):
        print(f"  ... and {summary['num_error_videos'] - len(errors)} more: "
              "SELECT source_path, error FROM videos WHERE status = 'error'")
    print(f"lake: {lake}  (query it: cliplake sql {lake.cli_options()} \"SELECT * FROM clips\")")


if __name__ == "__main__":  # spark-submit jobs/split_annotate.py --input-video-path ... --output-path ...
    import sys

    from jobs.cli import main

    sys.exit(main([PIPELINE, *sys.argv[1:]]))
