"""Documented options through the real parser into the typed configs the jobs build (no Spark session).

Each test parses a command line with ``jobs.cli.build_parser`` and calls the function its job uses
to turn the options into configs, so an option that parses but never reaches its field fails here.
"""

import numpy as np
import pytest

from curate_udfs.captioning.prompts import PROMPT_VARIANTS
from curate_udfs.dedup.config import SemDedupConfig
from curate_udfs.filters.aesthetic import AestheticConfig
from curate_udfs.filters.artificial_text import ArtificialTextConfig
from curate_udfs.filters.motion import MotionConfig
from curate_udfs.media.transcode import EncoderSettings
from curate_udfs.splitting.spans import TransNetV2Rules
from curate_udfs.testing.tiny_models import write_tiny_aesthetic, write_tiny_qwen3_vlm, write_tiny_vlm
from jobs import annotate, dedup, dedup_kmeans, shard, split_annotate
from jobs.cli import build_parser
from jobs.lake import Lake


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """The checkpoints the driver-side checks look for (captioning and aesthetic stages)."""
    root = tmp_path_factory.mktemp("tiny")
    return {"vlm": write_tiny_vlm(str(root / "vlm")), "aesthetic": write_tiny_aesthetic(str(root / "aesthetic")),
            "vlm-qwen3": write_tiny_qwen3_vlm(str(root / "vlm-qwen3"))}


def parse(*argv: str):
    return build_parser().parse_args(list(argv))


def test_split_options_reach_the_split_and_annotate_configs(models, tmp_path):
    lake = str(tmp_path / "lake")
    args = parse(
        "split", "--input-video-path", "in", "--output-clip-path", lake,
        "--transnetv2-max-length-s", "0", "--transnetv2-max-length-mode", "truncate", "--transnetv2-crop-s", "0.25",
        "--transnetv2-precision", "bf16",
        "--transcode-encoder", "h264_nvenc", "--transcode-encoder-preset", "p7", "--transcode-crf", "30",
        "--transcode-encoder-threads", "3",
        "--motion-filter", "score-only", "--motion-global-mean-threshold", "0.5",
        "--motion-per-patch-min-256-threshold", "0.01",
        "--artificial-text-filter", "score-only", "--artificial-text-threshold", "0.3", "--artificial-text-frames", "3",
        "--aesthetic-threshold", "4.5", "--aesthetic-reduction", "mean", "--aesthetic-model", models["aesthetic"],
        "--embedding-batch-size", "3",
        "--captioning-model", models["vlm"], "--captioning-sampling-fps", "0.5", "--qwen-batch-size", "5",
    )
    assert Lake.from_args(args).root == lake  # --output-clip-path is --output-path

    config = split_annotate.build_config(args, "clips", task_cpus=2)
    assert config.transnetv2 == TransNetV2Rules(max_length_s=None, max_length_mode="truncate", crop_s=0.25)
    no_cut = np.zeros(200 * 25)  # one 200 s shot at 25 fps: kept whole, where the default cuts it at 60 s
    assert config.transnetv2.spans(no_cut, 25.0) == [(0, len(no_cut))] != TransNetV2Rules().spans(no_cut, 25.0)
    assert config.transnetv2_precision == "bf16"
    assert config.encoder == EncoderSettings("h264_nvenc", preset="p7", crf=30, threads=3)
    assert config.encoder.codec_options == {"preset": "p7", "rc": "vbr", "cq": "30"}
    args.transcode_encoder_threads = 0  # the default: spark.task.cpus
    assert split_annotate.build_config(args, "clips", task_cpus=2).encoder.threads == 2

    stages = annotate.build_config(args, lake)
    assert stages.motion == MotionConfig(mode="score-only", global_mean_threshold=0.5, per_patch_min_256_threshold=0.01)
    assert stages.artificial_text == ArtificialTextConfig(mode="score-only", threshold=0.3, frames=3)
    assert stages.aesthetic == AestheticConfig(threshold=4.5, reduction="mean", model=models["aesthetic"])
    assert (stages.embedding.algorithm, stages.embedding.batch_size) == ("thumbnails", 3)
    captioning = stages.captioning
    assert (captioning.model, captioning.sampling_fps, captioning.batch_size) == (models["vlm"], 0.5, 5)


def test_caption_options_reach_the_captioning_config(models, tmp_path):
    """`cliplake caption` builds its config with ``annotate.caption_config_from`` inside the job."""
    lake = str(tmp_path / "lake")
    args = parse("caption", "--input-clip-path", lake, "--captioning-model", models["vlm"],
                 "--captioning-sampling-fps", "0.5", "--qwen-batch-size", "5", "--annotation-version", "v2",
                 "--captioning-prompt-variant", "av-surveillance")
    config = annotate.caption_config_from(args, Lake.from_args(args).root)
    assert (config.model, config.sampling_fps, config.batch_size, config.annotation_version) == (models["vlm"], 0.5, 5, "v2")
    assert (config.prompt_variant, config.prompt) == ("av-surveillance", PROMPT_VARIANTS["av-surveillance"])
    args = parse("caption", "--input-clip-path", lake, "--captioning-model", models["vlm"],
                 "--captioning-prompt-variant", "av", "--captioning-prompt-text", "Describe the motion.")
    assert annotate.caption_config_from(args, lake).prompt == "Describe the motion."  # the text wins over the variant
    assert annotate.caption_config_from(args, lake).resize_factor == 28
    args = parse("caption", "--input-clip-path", lake, "--captioning-model", models["vlm-qwen3"])
    assert annotate.caption_config_from(args, lake).resize_factor == 32  # Qwen3-VL's 16 px patches, merged 2x2


def test_enhance_and_api_options_reach_the_captioning_config(models, tmp_path, monkeypatch):
    from curate_udfs.captioning.openai_backend import ApiSettings
    from curate_udfs.errors import EnvironmentProblem
    from curate_udfs.testing.tiny_models import write_tiny_lm

    lake = str(tmp_path / "lake")
    lm = write_tiny_lm(str(tmp_path / "lm"))
    args = parse("caption", "--input-clip-path", lake, "--captioning-model", models["vlm"], "--enhance-captions",
                 "--enhance-captions-model", lm, "--enhance-captions-max-output-tokens", "77")
    config = annotate.caption_config_from(args, lake)
    assert (config.enhance_model, config.enhance_max_output_tokens, config.api) == (lm, 77, None)
    args = parse("caption", "--input-clip-path", lake, "--enhance-captions-model", lm, "--captioning-model", models["vlm"])
    assert annotate.caption_config_from(args, lake).enhance_model is None  # the model alone does not turn it on

    api = ["split", "--input-video-path", "in", "--output-clip-path", lake, "--captioning-backend", "openai",
           "--captioning-api-base-url", "http://vllm:8000/v1", "--captioning-api-model", "Qwen/Qwen2.5-VL-7B-Instruct",
           "--captioning-api-key-env", "CLIPLAKE_TEST_KEY", "--captioning-api-concurrency", "16",
           "--captioning-api-max-retries", "2", "--captioning-api-timeout-s", "30"]
    monkeypatch.delenv("CLIPLAKE_TEST_KEY", raising=False)
    with pytest.raises(EnvironmentProblem, match="CLIPLAKE_TEST_KEY"):
        annotate.build_config(parse(*api), lake)
    monkeypatch.setenv("CLIPLAKE_TEST_KEY", "sk-123")
    config = annotate.build_config(parse(*api), lake).captioning  # no local weights needed
    assert config.backend == "openai" and config.model_name == "Qwen/Qwen2.5-VL-7B-Instruct"
    assert config.api == ApiSettings("http://vllm:8000/v1", "Qwen/Qwen2.5-VL-7B-Instruct", api_key="sk-123",
                                      concurrency=16, max_retries=2, timeout_s=30.0)
    no_key = annotate.build_config(parse(*api[:-8], "--captioning-api-key-env", ""), lake).captioning
    assert no_key.api.api_key is None
    with pytest.raises(ValueError, match="--captioning-api-base-url"):
        annotate.build_config(parse(*api[:7]), lake)


def test_vlm_filter_and_video_classifier_options_reach_their_configs(models, tmp_path):
    from curate_udfs.filters import vlm

    lake = str(tmp_path / "lake")
    common = ["split", "--input-video-path", "in", "--output-clip-path", lake, "--captioning-model", models["vlm"],
              "--captioning-window-size", "64", "--generate-previews"]
    stages = annotate.build_config(parse(*common, "--no-generate-captions", "--vlm-filter", "score-only",
                                         "--vlm-filter-categories", "slideshow, fast zoom", "--vlm-filter-threshold", "0.25",
                                         "--video-classifier", "enable", "--video-classifier-allow", "cooking,pets",
                                         "--video-classifier-block", "cartoon", "--video-classifier-threshold", "0.75"), lake)
    assert stages.captioning is None  # captions off; the VLM still answers the filters
    assert (stages.vlm_filter.mode, stages.vlm_filter.categories, stages.vlm_filter.threshold) == (
        "score-only", ("slideshow", "fast zoom"), 0.25)
    asking = stages.vlm_filter.captioning
    assert (asking.model, asking.window_size, asking.previews_dir) == (models["vlm"], 64, None)  # no previews for filters
    c = stages.video_classifier
    assert (c.mode, c.allow, c.block, c.threshold, c.captioning) == ("enable", ("cooking", "pets"), ("cartoon",), 0.75, asking)
    defaults = annotate.build_config(parse(*common, "--vlm-filter", "enable"), lake)
    assert defaults.vlm_filter.categories == vlm.DEFAULT_CATEGORIES and defaults.vlm_filter.threshold == 0.5
    assert defaults.video_classifier is None and defaults.captioning.previews_dir is not None
    with pytest.raises(ValueError, match="unknown video type"):
        annotate.build_config(parse(*common, "--video-classifier", "enable", "--video-classifier-block", "cats"), lake)


def test_dedup_options_reach_the_kmeans_and_semdedup_configs(tmp_path):
    args = parse("dedup", "--output-path", str(tmp_path), "--n-clusters", "7", "--kmeans-max-points-per-centroid", "64",
                 "--random-state", "3", "--which-to-keep", "easy", "--kmeans-backend", "driver", "--kmeans-driver-max-mb", "32")
    kmeans, prune = dedup.build_configs(args)
    assert kmeans == dedup_kmeans.KMeansConfig(n_clusters=7, random_state=3, max_points_per_centroid=64, backend="driver",
                                               driver_max_mb=32)
    assert prune == SemDedupConfig(which_to_keep="easy", random_state=3)


def test_dedups_driver_limit_is_an_eighth_of_the_memory_on_one_machine_else_256(tmp_path):
    eighth = dedup_kmeans.machine_memory() / 2**20 / 8
    assert dedup_kmeans.default_driver_max_mb("local[*,2]") == max(256, eighth)
    assert dedup_kmeans.default_driver_max_mb("local-cluster[2,1,2048]") == max(256, eighth)
    for cluster in ("yarn", "spark://head:7077", None):
        assert dedup_kmeans.default_driver_max_mb(cluster) == 256
    (tmp_path / "memory.max").write_text("1073741824\n")  # a container of 1 GiB
    assert dedup_kmeans.machine_memory(str(tmp_path)) == 2**30
    (tmp_path / "memory.max").write_text("max\n")
    assert dedup_kmeans.machine_memory(str(tmp_path)) == dedup_kmeans.machine_memory(str(tmp_path / "none")) > 2**30


def test_shard_semantic_dedup_model_reaches_the_config(tmp_path):
    lake = str(tmp_path / "lake")
    args = parse("shard", "--input-clip-path", lake, "--output-dataset-path", str(tmp_path / "out"),
                 "--input-semantic-dedup-path", lake, "--semantic-dedup-model", "clip:/models/siglip",
                 "--semantic-dedup-epsilon", "0.05")
    config = shard.build_config(args)
    assert (config.dedup_model, config.dedup_eps) == ("clip:/models/siglip", 0.05)
    assert config.dedup_lake is config.lake  # the same path: the clip lake itself
