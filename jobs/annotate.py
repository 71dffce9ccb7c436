"""Annotate the lake's clips: motion, artificial-text and aesthetic filters, embeddings, captions and previews.

Each stage maps a curate_udfs adapter over the clips that still lack its output, in the order
Cosmos-Curate runs them: motion -> artificial text -> aesthetic -> embedding -> caption preparation
-> captioning (the cheap CPU filters first, so fewer clips reach the models).
Filtered clips (``filtered_by``) and clips with an error skip the later stages. Everything is
keyed and merged, so a re-run (or a run after a crash) only does what is missing.
"""

import argparse
import dataclasses
import json
import math
import os
from dataclasses import dataclass
from typing import Callable, Iterator

import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from curate_udfs.captioning import OUTPUT_COLUMNS as CAPTION_COLUMNS
from curate_udfs.captioning import PREPARE_OUTPUT_COLUMNS, CaptioningConfig, caption_batches, check_captioning
from curate_udfs.captioning import prepare_caption_batches
from curate_udfs.captioning.enhance import DEFAULT_ENHANCE_MODEL
from curate_udfs.captioning.openai_backend import ApiSettings
from curate_udfs.captioning.prompts import PROMPT_VARIANT_NAMES
from curate_udfs.captioning.stage import model_resize_factor
from curate_udfs.embedding import ALGORITHMS, DEFAULT_ALGORITHM, EmbeddingConfig, check_embedding, embedding_batches
from curate_udfs.embedding import OUTPUT_COLUMNS as EMBEDDING_COLUMNS
from curate_udfs.errors import EnvironmentProblem
from curate_udfs.filters import aesthetic as aesthetic_filter
from curate_udfs.filters import artificial_text as text_filter
from curate_udfs.filters import motion as motion_filter
from curate_udfs.filters import vlm as vlm_filters
from curate_udfs.storage import local_media
from jobs import resources, tables
from jobs.report import print_table

# Columns of the clips table every stage reads.
CLIP_INPUT = ["clip_id", "location", "fps", "num_frames", "width", "height"]

# Cosmos-Curate's GPU shares per stage (sized for a 48 GB GPU), used when executors have GPUs and
# no amount is given. Motion scoring here reads H.264 motion vectors on the CPU: no GPU by default.
# OCR for the artificial-text filter runs on the CPU (onnxruntime) as well.
DEFAULT_GPUS = {"motion": 0.0, "artificial_text": 0.0, "aesthetic": 0.25, "embedding": 0.25, "captioning": 1.0}


def add_filter_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("filters (mark clips in clips.filtered_by; nothing is deleted)")
    m = motion_filter.MotionConfig()
    g.add_argument("--motion-filter", choices=["disable", "enable", "score-only"], default=m.mode,
                   help="score clip motion from H.264 motion vectors; enable: filter clips with little motion")
    g.add_argument("--motion-global-mean-threshold", type=float, default=m.global_mean_threshold,
                   help="little motion: mean flow magnitude over all pixels and sampled frames below this")
    g.add_argument("--motion-per-patch-min-256-threshold", type=float, default=m.per_patch_min_256_threshold,
                   help="little motion: the stillest 256x256 patch's mean magnitude below this")
    g.add_argument("--motion-score-gpus-per-worker", type=float, default=None,
                   help="GPU share per motion task (runs on CPU here; default 0)")
    t = text_filter.ArtificialTextConfig()
    g.add_argument("--artificial-text-filter", choices=["disable", "enable", "score-only"], default=t.mode,
                   help="OCR (PP-OCRv4, pip install 'cliplake[ocr]') finds burned-in text: subtitles, tickers, captions, "
                        "title cards; enable: filter clips that have it")
    g.add_argument("--artificial-text-threshold", type=float, default=t.threshold,
                   help="burned-in text: a clip's score in [0, 1] (position, persistence, alignment, size, contrast "
                        "of its text) at or above this")
    g.add_argument("--artificial-text-frames", type=int, default=t.frames, help="frames OCR'd per clip, spread evenly")
    g.add_argument("--aesthetic-threshold", type=float, default=None,
                   help="filter clips scoring below this (unset: aesthetic filter off; negative: score only)")
    g.add_argument("--aesthetic-reduction", choices=["min", "mean"], default="min", help="how per-frame scores combine")
    g.add_argument("--aesthetic-model", default=None,
                   help="folder (or hub id) holding a CLIP ViT-L/14 checkpoint and LAION's aesthetic MLP weights")
    g.add_argument("--aesthetic-gpus-per-worker", type=float, default=None, help=_GPU_HELP.format(DEFAULT_GPUS["aesthetic"]))
    v = vlm_filters.VlmFilterConfig()
    g.add_argument("--vlm-filter", choices=["disable", "enable", "score-only"], default=v.mode,
                   help="the captioning VLM (--captioning-model or its API endpoint) answers yes/no per category for each "
                        "caption window; enable: filter clips where it says yes in at least --vlm-filter-threshold of them")
    g.add_argument("--vlm-filter-categories", default=None,
                   help=f"comma-separated categories to reject (default: {', '.join(vlm_filters.DEFAULT_CATEGORIES)})")
    g.add_argument("--vlm-filter-threshold", "--vlm-filter-rejection-threshold", dest="vlm_filter_threshold", type=float,
                   default=v.threshold, help="share of a clip's windows with a yes at which it is rejected")
    g.add_argument("--video-classifier", choices=["disable", "enable"], default="disable",
                   help="the captioning VLM classifies each clip into Cosmos-Curate's 27 video types (clips.video_type); "
                        "with allow/block lists, clips of other/blocked types are filtered")
    g.add_argument("--video-classifier-allow", default=None,
                   help="comma-separated video types to keep (a clip of none of them is filtered): "
                        + ", ".join(vlm_filters.VIDEO_TYPES))
    g.add_argument("--video-classifier-block", default=None, help="comma-separated video types to filter")
    g.add_argument("--video-classifier-threshold", type=float, default=v.threshold,
                   help="share of a clip's windows that must say yes for the clip to be of a type")


_GPU_HELP = "GPU share per task on clusters with GPU executors (default {:g} there; ignored in local mode)"


def add_embedding_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("embeddings (clip_embeddings table)")
    g.add_argument("--no-generate-embeddings", dest="generate_embeddings", action="store_false")
    g.add_argument("--embedding-algorithm", choices=ALGORITHMS, default=None,
                   help=f"default: clip when --embedding-model is given, else {DEFAULT_ALGORITHM} (no downloaded weights)")
    g.add_argument("--embedding-model", default=None, help="folder or hub id of the embedding checkpoint")
    g.add_argument("--embedding-batch-size", type=int, default=EmbeddingConfig(DEFAULT_ALGORITHM).batch_size,
                   help="clips per model call")
    g.add_argument("--embedding-gpus-per-worker", type=float, default=None, help=_GPU_HELP.format(DEFAULT_GPUS["embedding"]))


def add_caption_arguments(parser: argparse.ArgumentParser, *, switch: bool = True) -> None:
    g = parser.add_argument_group("captions (captions table) and previews")
    if switch:
        g.add_argument("--no-generate-captions", dest="generate_captions", action="store_false")
    c = CaptioningConfig()
    g.add_argument("--captioning-model", default=c.model, help="folder or hub id of the VLM (Qwen2-VL, Qwen2.5-VL or Qwen3-VL family)")
    g.add_argument("--captioning-backend", choices=["auto", "vllm", "transformers", "openai"], default=c.backend,
                   help="auto: vLLM when installed and a GPU is present, transformers otherwise; openai: an "
                        "OpenAI-compatible endpoint (--captioning-api-base-url), no local model")
    a = ApiSettings("http://unused", "unused")
    g.add_argument("--captioning-api-base-url", default=None,
                   help="openai backend: the endpoint's base URL, e.g. http://vllm-host:8000/v1 or https://api.openai.com/v1")
    g.add_argument("--captioning-api-model", default=None, help="openai backend: the model name the endpoint serves")
    g.add_argument("--captioning-api-key-env", default="OPENAI_API_KEY",
                   help="openai backend: the environment variable (on the driver) holding the API key, sent as a "
                        "bearer token; '' sends none")
    g.add_argument("--captioning-api-concurrency", type=int, default=a.concurrency,
                   help="openai backend: requests in flight per Python worker")
    g.add_argument("--captioning-api-max-retries", type=int, default=a.max_retries,
                   help="openai backend: retries of a window after 429, 5xx or a lost connection (exponential backoff; "
                        "Retry-After honoured); then the window is an error row")
    g.add_argument("--captioning-api-timeout-s", type=float, default=a.timeout_s, help="openai backend: seconds per request")
    g.add_argument("--captioning-window-size", type=int, default=c.window_size, help="frames per caption window")
    g.add_argument("--captioning-sampling-fps", type=float, default=c.sampling_fps, help="frames per second the VLM sees")
    g.add_argument("--captioning-prompt-variant", choices=PROMPT_VARIANT_NAMES, default=c.prompt_variant,
                   help="Cosmos-Curate's prompt variants: default (any video), av (a camera on a driving car), "
                        "av-surveillance (a fixed camera watching traffic)")
    g.add_argument("--captioning-prompt-text", default=None,
                   help="the instruction given with each window; replaces the variant's prompt (default: the variant's)")
    g.add_argument("--captioning-max-output-tokens", type=int, default=c.max_output_tokens, help="longest caption, tokens")
    g.add_argument("--captioning-batch-size", "--qwen-batch-size", dest="captioning_batch_size", type=int, default=c.batch_size,
                   help="caption windows per model call")
    g.add_argument("--captioning-gpus-per-worker", type=float, default=None, help=_GPU_HELP.format(DEFAULT_GPUS["captioning"]))
    g.add_argument("--enhance-captions", action="store_true",
                   help="a language model rewrites each caption, richer and longer; kept beside the raw caption "
                        "(captions.enhanced_caption; {lm}_enhanced_caption in Cosmos formats)")
    g.add_argument("--enhance-captions-model", default=DEFAULT_ENHANCE_MODEL,
                   help="folder or hub id of the causal LM (any transformers chat/instruct checkpoint)")
    g.add_argument("--enhance-captions-max-output-tokens", type=int, default=c.enhance_max_output_tokens,
                   help="longest enhanced caption, tokens")
    g.add_argument("--annotation-version", default="v0", help="captions are stored under this version; earlier ones stay")
    g.add_argument("--generate-previews", action="store_true",
                   help="animated WebP per caption window at media/previews/{clip_id}/{start}_{end}.webp")


@dataclass(frozen=True)
class AnnotateConfig:
    """Which stages run, with what settings and GPU shares; built and checked on the driver."""

    motion: motion_filter.MotionConfig | None = None
    artificial_text: text_filter.ArtificialTextConfig | None = None
    aesthetic: aesthetic_filter.AestheticConfig | None = None
    embedding: EmbeddingConfig | None = None
    captioning: CaptioningConfig | None = None
    gpus: tuple[tuple[str, float | None], ...] = ()
    retry_errors: bool = False
    vlm_filter: vlm_filters.VlmFilterConfig | None = None
    video_classifier: vlm_filters.VideoClassifierConfig | None = None

    def gpus_for(self, stage: str) -> float | None:
        return dict(self.gpus).get(stage)


def build_config(args: argparse.Namespace, lake: str) -> AnnotateConfig:
    """The stages ``args`` turn on, each validated (weights located) before any task runs."""
    options = vars(args)
    motion_config = text_config = aesthetic_config = embedding_config = caption_config = None
    if options.get("motion_filter", "disable") != "disable":
        motion_config = motion_filter.MotionConfig(
            mode=args.motion_filter, global_mean_threshold=args.motion_global_mean_threshold,
            per_patch_min_256_threshold=args.motion_per_patch_min_256_threshold,
        )
        motion_filter.check_motion(motion_config)
    if options.get("artificial_text_filter", "disable") != "disable":
        text_config = text_filter.ArtificialTextConfig(
            mode=args.artificial_text_filter, threshold=args.artificial_text_threshold, frames=args.artificial_text_frames)
        text_filter.check_artificial_text(text_config)
    if options.get("aesthetic_threshold") is not None:
        aesthetic_config = aesthetic_filter.AestheticConfig(
            model=args.aesthetic_model, threshold=args.aesthetic_threshold, reduction=args.aesthetic_reduction)
        aesthetic_filter.check_aesthetic(aesthetic_config)
    if options.get("generate_embeddings", False):
        embedding_config = EmbeddingConfig.from_options(args.embedding_algorithm, args.embedding_model,
                                                        batch_size=args.embedding_batch_size)
        check_embedding(embedding_config)
    if options.get("generate_captions", False):
        caption_config = caption_config_from(args, lake)
    vlm_config = classifier_config = None
    if options.get("vlm_filter", "disable") != "disable" or options.get("video_classifier", "disable") != "disable":
        # the captioning VLM answers; its windows, without previews or enhancement
        asking = dataclasses.replace(caption_config or caption_config_from(args, lake), previews_dir=None, enhance_model=None)
        if args.vlm_filter != "disable":
            vlm_config = vlm_filters.VlmFilterConfig(
                mode=args.vlm_filter, threshold=args.vlm_filter_threshold, captioning=asking,
                categories=vlm_filters.split_names(args.vlm_filter_categories) or vlm_filters.DEFAULT_CATEGORIES)
        if args.video_classifier != "disable":
            classifier_config = vlm_filters.VideoClassifierConfig(
                mode=args.video_classifier, allow=vlm_filters.split_names(args.video_classifier_allow),
                block=vlm_filters.split_names(args.video_classifier_block), threshold=args.video_classifier_threshold,
                captioning=asking)
    gpus = tuple((stage, options.get(f"{option}_gpus_per_worker")) for stage, option in
                 [("motion", "motion_score"), ("aesthetic", "aesthetic"), ("embedding", "embedding"), ("captioning", "captioning")])
    return AnnotateConfig(motion_config, text_config, aesthetic_config, embedding_config, caption_config, gpus,
                          retry_errors=options.get("retry_errors", False), vlm_filter=vlm_config,
                          video_classifier=classifier_config)


def caption_config_from(args: argparse.Namespace, lake: str) -> CaptioningConfig:
    config = CaptioningConfig(
        model=args.captioning_model, backend=args.captioning_backend, window_size=args.captioning_window_size,
        sampling_fps=args.captioning_sampling_fps, prompt_text=args.captioning_prompt_text,
        prompt_variant=args.captioning_prompt_variant,
        enhance_model=args.enhance_captions_model if args.enhance_captions else None, api=api_settings_from(args),
        enhance_max_output_tokens=args.enhance_captions_max_output_tokens,
        max_output_tokens=args.captioning_max_output_tokens, batch_size=args.captioning_batch_size,
        annotation_version=args.annotation_version,
        previews_dir=f"{lake}/media/previews" if args.generate_previews else None,
    )
    model_dir = check_captioning(config)
    if model_dir is None:  # an API endpoint: frames in Qwen's 28 px multiples, what vLLM serves by default
        return config
    factor = model_resize_factor(model_dir)  # frames are prepared at the sizes the checkpoint's patches tile
    return config if factor == config.resize_factor else dataclasses.replace(config, resize_factor=factor)


def api_settings_from(args: argparse.Namespace) -> ApiSettings | None:
    """The endpoint of ``--captioning-backend openai`` (None for the other backends), its key read here, on the driver.

    The key travels to the executors inside the task's config (never printed: ``ApiSettings`` hides
    it), so executors need no environment of their own.
    """
    if args.captioning_backend != "openai":
        return None
    if not args.captioning_api_base_url or not args.captioning_api_model:
        raise ValueError("--captioning-backend openai needs --captioning-api-base-url and --captioning-api-model")
    key = None
    if args.captioning_api_key_env:
        key = os.environ.get(args.captioning_api_key_env)
        if key is None:
            raise EnvironmentProblem(
                f"--captioning-backend openai: the API key variable {args.captioning_api_key_env} is not set; export it "
                f"(any value, e.g. EMPTY, for a server without keys), or pass --captioning-api-key-env '' to send none")
    return ApiSettings(args.captioning_api_base_url, args.captioning_api_model, api_key=key,
                       concurrency=args.captioning_api_concurrency, max_retries=args.captioning_api_max_retries,
                       timeout_s=args.captioning_api_timeout_s)


@dataclass(frozen=True)
class _Stage:
    """One curate_udfs adapter as Spark runs it: its output schema, GPU option and task size."""

    name: str
    gpu_option: str
    body: Callable[[Iterator[pd.DataFrame], list[str]], Iterator[pd.DataFrame]]
    schema: T.StructType
    rows_per_task: int


def _stage_errors(results: DataFrame, stage: str) -> DataFrame:
    """``clip_id, error`` rows (one per clip) for the clips ``stage`` failed on, the message prefixed by the stage."""
    failed = results.where(F.col("error").isNotNull()).groupBy("clip_id").agg(F.first("error").alias("error"))
    named = F.when(F.col("error").startswith(f"{stage}:"), F.col("error")).otherwise(F.concat(F.lit(f"{stage}: "), F.col("error")))
    return failed.select("clip_id", named.alias("error"))


class Annotator:
    """Runs the configured stages over the lake's clips (optionally only those of some videos)."""

    def __init__(self, spark: SparkSession, lake: str, config: AnnotateConfig, run_id: str):
        self.spark, self.lake, self.config, self.run_id = spark, lake, config, run_id
        self.stats = {"num_filtered_motion": 0, "num_filtered_artificial_text": 0, "num_filtered_aesthetic": 0,
                      "num_filtered_vlm": 0, "num_filtered_video_classifier": 0,
                      "num_embedded_clips": 0, "num_captioned_clips": 0, "num_caption_windows": 0, "num_caption_output_tokens": 0,
                      "num_annotation_errors": 0}
        self.stage_resources: dict[str, dict] = {}
        for stage in self._enabled_model_stages():  # a GPU request the cluster cannot meet fails now
            resources.stage_profile(spark, _gpu_option(stage), self._gpus(stage))

    def _enabled_model_stages(self) -> list[str]:
        c = self.config
        return [name for name, on in [("motion", c.motion), ("artificial_text", c.artificial_text), ("aesthetic", c.aesthetic),
                                      ("vlm_filter", c.vlm_filter), ("video_classifier", c.video_classifier),
                                      ("embedding", c.embedding), ("captioning", c.captioning)] if on]

    def _gpus(self, stage: str) -> float | None:
        """The stage's GPU share: as given, else Cosmos-Curate's default when executors have GPUs."""
        c = self.config
        asking = {"captioning": c.captioning, "vlm_filter": c.vlm_filter and c.vlm_filter.captioning,
                  "video_classifier": c.video_classifier and c.video_classifier.captioning}.get(stage)
        if asking is not None:
            stage = "captioning"  # the VLM stages run the captioning model, with its GPU share
        gpus = c.gpus_for(stage)
        if gpus is None and asking is not None and asking.backend == "openai":
            gpus = 0.0  # the endpoint does the generating
        if gpus is None and resources.executor_gpus(self.spark) > 0:
            gpus = DEFAULT_GPUS.get(stage, 0.0)
        return gpus

    def run(self, source_paths: "list[str] | DataFrame | None" = None) -> dict:
        """Every enabled stage in order over the clips of ``source_paths`` (a list, or a DataFrame with that
        column; None: all clips); returns the counts for the ``runs`` row."""
        c = self.config
        self.source_paths = source_paths
        if c.motion:
            self._filter("motion", lambda batches, config, gpu_addresses: motion_filter.motion_batches(batches, config),
                         c.motion, "motion_global_mean",
                         ["motion_global_mean", "motion_per_patch_min_256"], motion_filter.OUTPUT_COLUMNS, rows_per_task=16)
        if c.artificial_text:
            self._filter("artificial_text", text_filter.artificial_text_batches, c.artificial_text,
                         "artificial_text_score", ["artificial_text_score", "artificial_text"], text_filter.OUTPUT_COLUMNS,
                         rows_per_task=16)
        if c.aesthetic:
            self._filter("aesthetic", aesthetic_filter.aesthetic_batches, c.aesthetic, "aesthetic_score",
                         ["aesthetic_score"], aesthetic_filter.OUTPUT_COLUMNS, rows_per_task=32)
        if c.vlm_filter:
            self._filter("vlm_filter", vlm_filters.vlm_filter_batches, c.vlm_filter, "vlm_filter_answer",
                         ["vlm_filter_score", "vlm_filter_answer"], vlm_filters.VLM_FILTER_COLUMNS,
                         rows_per_task=4, counter="vlm")
        if c.video_classifier:
            self._filter("video_classifier", vlm_filters.video_classifier_batches, c.video_classifier,
                         "video_classifier_answer", ["video_type", "video_classifier_answer"], vlm_filters.CLASSIFIER_COLUMNS,
                         rows_per_task=4)
        if c.embedding:
            self._embed(c.embedding)
        if c.captioning:
            self._caption(c.captioning)
        return self.counts()

    def counts(self) -> dict:
        """What the stages have done so far, for the ``runs`` row."""
        return {**self.stats, "stage_resources": json.dumps(self.stage_resources, sort_keys=True)}

    def _clips(self) -> DataFrame:
        """Clips still in play: not filtered, no error (unless retrying), of the selected videos."""
        clips = tables.read_table(self.spark, self.lake, "clips").where("filtered_by IS NULL")
        for field in tables.CLIPS.fields:  # a lake from before a stage's columns existed: they read as null
            if field.name not in clips.columns:
                clips = clips.withColumn(field.name, F.lit(None).cast(field.dataType))
        if not self.config.retry_errors:
            clips = clips.where("error IS NULL")
        selected = self.source_paths
        if isinstance(selected, list):
            selected = self.spark.createDataFrame([(p,) for p in selected], "source_path string")
        if selected is not None:
            clips = clips.join(selected.select("source_path"), "source_path", "left_semi")
        return clips

    def _run_stage(self, name: str, pending: DataFrame, adapter, config, columns: dict, rows_per_task: int):
        """The stage's results over the pending clips; None when nothing is pending."""
        pending = pending.select(*CLIP_INPUT)
        count = pending.count()
        if count == 0:
            return None
        stage = _Stage(name, _gpu_option(name), lambda batches, gpus: adapter(batches, config, gpu_addresses=gpus),
                       tables.struct_of(columns), rows_per_task)
        return self._map_stage(pending, stage, count)

    def _map_stage(self, rows: DataFrame, stage: _Stage, count: int) -> DataFrame:
        """``stage`` over ``rows`` in tasks of ``stage.rows_per_task``, in the stage's resource profile.

        The results are computed here, once; ``stage_resources`` records the GPU share asked
        for and how many tasks Spark gave a GPU.
        """
        gpus = self._gpus(stage.name)
        profile = resources.stage_profile(self.spark, stage.gpu_option, gpus)
        gpu_tasks = self.spark.sparkContext.accumulator(0)
        body = stage.body
        access = getattr(self.lake, "access", None)  # how to reach s3:// clip files (a Lake, or a plain path)

        def run(batches):
            import torch

            torch.set_num_threads(resources.task_cpus())
            addresses = resources.task_gpu_addresses()
            if addresses:
                gpu_tasks.add(1)
            with local_media(access) as localize:  # s3:// clips are read from local copies
                yield from body(localize(batches, "location"), addresses)

        partitions = max(1, math.ceil(count / stage.rows_per_task))
        # Checkpointed, not cached: a cached plan that reads `clips` is recomputed when the stage's own
        # MERGE into `clips` refreshes it, and would then find nothing pending.
        results = tables.computed(resources.map_in_pandas(rows.repartition(partitions), run, stage.schema, profile))
        self.stage_resources[stage.name] = {
            "gpus_per_task": gpus if profile is not None else 0, "tasks": partitions, "tasks_with_gpu": gpu_tasks.value}
        return results

    def _filter(self, name, adapter, config, score_column, scores, columns, rows_per_task, counter=None):
        results = self._run_stage(name, self._clips().where(F.col(score_column).isNull()), adapter, config,
                                  columns, rows_per_task)
        if results is None:
            return
        # A clip the stage cannot score (e.g. motion on a side under 256 px) has nothing to write.
        scored = results.where(F.col("error").isNull() & F.coalesce(*scores, "filtered_by").isNotNull())
        self._update_clips(scored.select("clip_id", *scores, "filtered_by", F.lit(None).cast("string").alias("error")))
        self._record_errors(_stage_errors(results, name))
        self.stats[f"num_filtered_{counter or name}"] += results.where(F.col("filtered_by").isNotNull()).count()

    def _embed(self, config: EmbeddingConfig):
        done = tables.read_table(self.spark, self.lake, "clip_embeddings").where(F.col("model") == config.model_name)
        pending = self._clips().join(done.select("clip_id"), "clip_id", "left_anti")
        results = self._run_stage("embedding", pending, embedding_batches, config, EMBEDDING_COLUMNS, rows_per_task=32)
        if results is None:
            return
        ok = results.where("error IS NULL").select("clip_id", "model", "embedding", "dim", F.lit(self.run_id).alias("run_id"))
        self.stats["num_embedded_clips"] += self._merge("clip_embeddings", ok)
        self._record_errors(_stage_errors(results, "embedding"))

    def _caption(self, config: CaptioningConfig):
        """Prepare windows on CPU (default profile), then generate in the captioning profile."""
        done = tables.read_table(self.spark, self.lake, "captions").where(F.col("annotation_version") == config.annotation_version)
        pending = self._clips().join(done.select("clip_id").distinct(), "clip_id", "left_anti")
        prepared = self._run_stage("caption_prep", pending, lambda b, c, gpu_addresses: prepare_caption_batches(b, c),
                                   config, PREPARE_OUTPUT_COLUMNS, rows_per_task=4)
        if prepared is None:
            return
        stage = _Stage("captioning", _gpu_option("captioning"),
                       lambda batches, gpus: caption_batches(batches, config, gpu_addresses=gpus),
                       tables.struct_of(CAPTION_COLUMNS), rows_per_task=4 * config.batch_size)
        results = self._map_stage(prepared, stage, prepared.count())
        errors = _stage_errors(results, "captioning")
        # A clip's captions are written only when every window succeeded, so "has captions" means complete.
        ok = results.join(errors.select("clip_id"), "clip_id", "left_anti").select(
            *[c for c in CAPTION_COLUMNS if c not in ("error", "processing_s")],
            F.lit(self.run_id).alias("run_id"), F.current_timestamp().alias("created_at"))
        row = ok.agg(F.countDistinct("clip_id").alias("clips"), F.count("*").alias("windows"),
                     F.coalesce(F.sum("output_tokens"), F.lit(0)).alias("tokens")).first()
        self._merge("captions", ok)
        self._record_errors(errors)
        if self.config.retry_errors:  # a clip captioned this time no longer carries an earlier captioning error
            clips = tables.read_table(self.spark, self.lake, "clips")
            stale = clips.where(F.col("error").startswith("captioning:")).select("clip_id").join(
                ok.select("clip_id").distinct(), "clip_id", "left_semi")
            self._update_clips(stale.select("clip_id", F.lit(None).cast("string").alias("error")))
        self.stats["num_captioned_clips"] += row.clips
        self.stats["num_caption_windows"] += row.windows
        self.stats["num_caption_output_tokens"] += row.tokens

    def _record_errors(self, errors: DataFrame) -> None:
        self.stats["num_annotation_errors"] += self._update_clips(errors)

    def _merge(self, table: str, rows: DataFrame) -> int:
        """MERGE ``rows`` into ``table``; nothing is committed when there are no rows."""
        count = rows.count()
        if count:
            tables.merge_rows(self.spark, self.lake, table, rows, num_rows=count)
        return count

    def _update_clips(self, rows: DataFrame) -> int:
        """Set these columns of ``clips``; nothing is committed when there are no rows."""
        count = rows.count()
        if count:
            tables.update_columns(self.spark, self.lake, "clips", rows, num_rows=count)
        return count


def _gpu_option(stage: str) -> str:
    if stage in ("vlm_filter", "video_classifier"):
        return "--captioning-gpus-per-worker"
    return "--motion-score-gpus-per-worker" if stage == "motion" else f"--{stage.replace('_', '-')}-gpus-per-worker"


def report(summary: dict) -> None:
    """The annotation counts of a run, when any stage ran."""
    names = ["num_filtered_motion", "num_filtered_artificial_text", "num_filtered_aesthetic", "num_filtered_vlm",
             "num_filtered_video_classifier", "num_embedded_clips",
             "num_captioned_clips", "num_caption_windows", "num_caption_output_tokens", "num_annotation_errors"]
    if any(summary.get(n) for n in names):
        print_table(["filtered: motion", "artificial text", "aesthetic", "vlm", "video type", "embedded", "captioned",
                     "windows", "output tokens", "clip errors"],
                    [[summary.get(n) or 0 for n in names]])
