"""cliplake's GPU paths on a CUDA device, through the code the jobs run: TransNetV2 and the split stage, NVENC,
tiny-VLM captions with transformers and vLLM, k-means with spark-rapids-ml.

`pytest -m gpu` (what `make gpu-check` runs). vLLM and spark-rapids-ml tests skip, saying so, where
those are not installed; the NVENC test skips where the GPU has no video encoder (H100, H200).
"""

import dataclasses
import io
import os
import shutil
import sys
import time
from fractions import Fraction

import av
import numpy as np
import pandas as pd
import pytest

from curate_udfs.captioning import CaptioningConfig, caption_batches, prepare_caption_batches
from curate_udfs.captioning.transformers_backend import load_transformers_captioner
from curate_udfs.media.decode import iter_small_rgb_frames, iter_video_frames
from curate_udfs.media.transcode import EncoderSettings, encode_spans, session_error
from curate_udfs.split_stage import SplitConfig, split_video
from curate_udfs.splitting.transnetv2 import load_transnetv2, predict_cut_probabilities
from curate_udfs.testing.synthetic import THREE_SCENES, THREE_SCENES_FPS
from curate_udfs.testing.tiny_models import write_tiny_vlm

pytestmark = pytest.mark.gpu

FRAMES = sum(THREE_SCENES)  # the known-cuts video: 310 frames, cuts at 100 and 180
VLLM_GPU_SHARE = 0.25  # of the GPU's memory, for vLLM's weights and KV cache: plenty for the tiny model


def test_transnetv2_on_cuda_finds_the_cuts_the_cpu_finds(cuts_video):
    frames = np.stack(list(iter_small_rgb_frames(cuts_video, 48, 27)))
    on_cpu = predict_cut_probabilities(iter(frames))
    for precision in ("fp32", "bf16"):
        started = time.perf_counter()
        on_cuda = predict_cut_probabilities(iter(frames), device="cuda", precision=precision, windows_per_batch=4)
        frames_per_s = len(frames) / (time.perf_counter() - started)
        assert len(on_cuda) == len(frames) == FRAMES and frames_per_s > 0
        assert list(np.flatnonzero(on_cuda > 0.4)) == [99, 179]  # the last frame of each shot
        assert np.abs(on_cuda - on_cpu).max() < 0.02
    assert next(load_transnetv2("cuda").parameters()).is_cuda


def test_split_stage_on_cuda_cuts_the_clips_the_cpu_cuts(cuts_video, tmp_path):
    spans = {}
    for device in ("cpu", "cuda"):
        video, clips = split_video("/in/three.mp4", cuts_video, SplitConfig(clips_dir=str(tmp_path / device), device=device))
        assert video["status"] == "ok" and video["num_frames"] == FRAMES and len(clips) == 3
        assert all(os.path.getsize(c["location"]) == c["num_bytes"] > 0 for c in clips)
        spans[device] = [(c["start_frame"], c["end_frame"]) for c in clips]
    assert spans["cuda"] == spans["cpu"]


def test_nvenc_clips_decode_to_every_frame(cuts_video):
    missing = session_error("h264_nvenc")  # a bare session: a failure is the GPU's (H100, H200 have no NVENC)
    if missing:
        pytest.skip(f"no NVENC session opens on this GPU ({missing})")
    spans = [(0, 100), (100, 180), (180, FRAMES)]
    started = time.perf_counter()
    clips = list(encode_spans(iter_video_frames(cuts_video), spans, Fraction(THREE_SCENES_FPS),
                              EncoderSettings(encoder="h264_nvenc")))
    frames_per_s = FRAMES / (time.perf_counter() - started)  # decode included
    assert [(c.start_frame, c.end_frame) for c in clips] == spans and frames_per_s > 0
    for clip in clips:
        with av.open(io.BytesIO(clip.data)) as container:
            stream = container.streams.video[0]
            assert stream.codec_context.name == "h264" and (stream.width, stream.height) == (320, 180)
            assert sum(1 for _ in container.decode(stream)) == clip.num_frames


@pytest.fixture(scope="module")
def windows(tmp_path_factory, cuts_video):
    """A caption config for the tiny VLM on CUDA, and the known-cuts video's windows prepared as the caption job prepares them."""
    vlm = write_tiny_vlm(str(tmp_path_factory.mktemp("tiny") / "vlm"))
    config = CaptioningConfig(model=vlm, window_size=64, batch_size=8, max_output_tokens=8, device="cuda",
                              gpu_memory_utilization=VLLM_GPU_SHARE)
    clip = {"clip_id": "three", "location": cuts_video, "fps": float(THREE_SCENES_FPS), "num_frames": FRAMES,
            "width": 320, "height": 180}
    prepared = pd.concat(list(prepare_caption_batches(iter([pd.DataFrame([clip])]), config)), ignore_index=True)
    assert prepared.error.isna().all() and len(prepared) > 1
    return config, prepared


def captions(config: CaptioningConfig, prepared: pd.DataFrame) -> pd.DataFrame:
    return pd.concat(list(caption_batches(iter([prepared]), config)), ignore_index=True)


def assert_captioned(out: pd.DataFrame, prepared: pd.DataFrame, config: CaptioningConfig) -> None:
    assert len(out) == len(prepared) and out.error.isna().all(), out.error.dropna().unique().tolist()
    assert out.window_index.tolist() == prepared.window_index.tolist()
    assert out.caption.map(lambda c: isinstance(c, str)).all()
    assert ((out.output_tokens >= 1) & (out.output_tokens <= config.max_output_tokens)).all()
    assert (out.prompt_tokens > 0).all()


def test_transformers_captions_on_cuda(windows):
    config, prepared = windows
    config = dataclasses.replace(config, backend="transformers")
    assert_captioned(captions(config, prepared), prepared, config)
    assert load_transformers_captioner(config.model, "cuda", config.dtype).model.device.type == "cuda"


def test_vllm_captions_see_the_prompt_transformers_sees(windows):
    pytest.importorskip("vllm", reason="vLLM is not installed (make gpu-check installs it)")
    config, prepared = windows
    with_vllm = captions(dataclasses.replace(config, backend="vllm"), prepared)
    assert_captioned(with_vllm, prepared, config)
    # Same chat template, same frames, same video tokens: the prompts are as long in both backends.
    with_transformers = captions(dataclasses.replace(config, backend="transformers"), prepared)
    assert with_vllm.prompt_tokens.tolist() == with_transformers.prompt_tokens.tolist()


def test_rapids_kmeans_finds_planted_centres(monkeypatch):
    pytest.importorskip("spark_rapids_ml", reason="spark-rapids-ml is not installed (make gpu-check tries to install it)")
    if not (shutil.which("java") or os.environ.get("JAVA_HOME")):
        pytest.skip("Spark needs a Java runtime and there is none here")
    from pyspark.sql import SparkSession

    from jobs.dedup_kmeans import KMeansConfig, fit_centroids

    # Local mode assigns no GPU resources to tasks: spark-rapids-ml then takes the first visible device.
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", os.environ.get("CUDA_VISIBLE_DEVICES") or "0")
    monkeypatch.setenv("PYSPARK_PYTHON", sys.executable)
    centres = np.eye(3, 16, dtype=np.float32) * 10
    noise = np.random.default_rng(0).normal(0, 0.1, (3000, 16)).astype(np.float32)
    points = centres[np.arange(3000) % 3] + noise
    spark = SparkSession.builder.master("local[2]").appName("gpu-kmeans").config("spark.ui.enabled", "false").getOrCreate()
    try:
        frame = spark.createDataFrame([(p.tolist(),) for p in points], "embedding array<float>")
        found = fit_centroids(frame, "embedding", "rapids", KMeansConfig(n_clusters=3, max_iter=20))
    finally:
        spark.stop()
    assert found.shape == (3, 16)
    distance = np.linalg.norm(found[:, None, :] - centres[None, :, :], axis=2)
    assert sorted(distance.argmin(axis=1).tolist()) == [0, 1, 2] and distance.min(axis=1).max() < 0.5
