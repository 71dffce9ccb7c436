"""The embedding stage: offline near-duplicate vectors, the clip algorithm on a tiny checkpoint, errors."""

import os
from fractions import Fraction

import av
import numpy as np
import pandas as pd
import pytest
import torch

from curate_udfs.embedding import (
    ALGORITHMS,
    DEFAULT_ALGORITHM,
    OUTPUT_COLUMNS,
    EmbeddingConfig,
    check_embedding,
    embedding_batches,
)
from curate_udfs.embedding import thumbnails
from curate_udfs.embedding.frames import clip_sample_indices, pick_evenly
from curate_udfs.embedding.stage import clip_model_frames, load_encoder
from curate_udfs.errors import EnvironmentProblem
from curate_udfs.media.decode import iter_video_frames
from curate_udfs.testing.synthetic import write_video
from curate_udfs.testing.tiny_models import write_tiny_embedder


def _write(path, frames, fps, crf):
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        stream.height, stream.width = (d - d % 2 for d in frames[0].shape[:2])
        stream.pix_fmt, stream.options = "yuv420p", {"crf": str(crf), "preset": "ultrafast"}
        for frame in frames:
            crop = np.ascontiguousarray(frame[: stream.height, : stream.width])
            container.mux(stream.encode(av.VideoFrame.from_ndarray(crop, format="rgb24")))
        container.mux(stream.encode(None))
    return str(path)


def _frames(path, start, end, scale=1.0):
    out = []
    for index, frame in enumerate(iter_video_frames(str(path))):
        if index >= end:
            break
        if index >= start:
            w, h = round(frame.width * scale / 2) * 2, round(frame.height * scale / 2) * 2
            out.append(frame.to_ndarray(width=w, height=h, format="rgb24"))
    return out


@pytest.fixture(scope="module")
def bikes_clips(tmp_path_factory, samples):
    """Two 3 s clips of bikes.mp4 (hard negatives of each other), a re-encoded 0.5x copy, and a carphone clip."""
    folder = tmp_path_factory.mktemp("embedding")
    bikes = samples["bikes.mp4"]
    return {
        "first": _write(folder / "first.mp4", _frames(bikes, 0, 75), 25, 18),
        "copy": _write(folder / "copy.mp4", _frames(bikes, 0, 75, scale=0.5), 25, 32),
        "later": _write(folder / "later.mp4", _frames(bikes, 170, 245), 25, 18),
        "carphone": _write(folder / "carphone.mp4", _frames(samples["carphone_pristine.mp4"], 0, 60), 30, 18),
    }


def _run(config, paths):
    rows = pd.DataFrame({"clip_id": list(paths), "location": list(paths.values())})
    out = pd.concat(list(embedding_batches(iter([rows]), config)), ignore_index=True)
    assert list(out.columns) == list(OUTPUT_COLUMNS)
    return out.set_index("clip_id")


def test_offline_embedder_puts_a_rescaled_reencoded_copy_nearest(bikes_clips):
    out = _run(EmbeddingConfig(), bikes_clips)
    assert out["error"].isna().all()
    vectors = {k: np.array(v, dtype=np.float64) for k, v in out["embedding"].items()}
    copy = vectors["first"] @ vectors["copy"]
    assert copy >= 0.99  # SemDeDup's default eps 0.01 calls it a duplicate
    assert vectors["first"] @ vectors["later"] < 0.95  # same video, other seconds: not a duplicate
    assert vectors["first"] @ vectors["carphone"] < 0.9
    assert (out["dim"] == thumbnails.DIM).all()
    assert all(len(v) == thumbnails.DIM and abs(np.linalg.norm(v) - 1) < 1e-5 for v in vectors.values())
    assert (out["model"] == "thumbnails-v1").all()


def test_offline_vector_ignores_brightness_and_saturation():
    rng = np.random.default_rng(0)
    frames = rng.integers(40, 200, size=(10, 32, 32, 3)).astype(np.uint8)
    grey = frames.astype(np.float32).mean(axis=3, keepdims=True)
    changed = np.clip(grey + (frames - grey) * 1.2 + 15, 0, 255).astype(np.uint8)
    positions = (np.arange(10) + 0.5) / 10
    a, b = thumbnails.embed_frames(frames, positions), thumbnails.embed_frames(changed, positions)
    other = thumbnails.embed_frames(frames[::-1].copy(), positions)  # same pictures, other order
    assert a @ b > 0.995
    assert a @ other < 0.9


def test_broken_clip_gets_an_error_row_and_the_others_their_vectors(bikes_clips, bad_inputs, tmp_path):
    paths = {"good": bikes_clips["first"], "truncated": bad_inputs["truncated_mid_stream"],
             "not_media": bad_inputs["not_media"], "missing": str(tmp_path / "gone.mp4"), "other": bikes_clips["carphone"]}
    for config in (EmbeddingConfig(), EmbeddingConfig("clip", model=write_tiny_embedder(str(tmp_path / "tiny")), batch_size=5)):
        out = _run(config, paths)
        assert out.loc["good", "error"] is None and out.loc["other", "error"] is None
        assert len(out.loc["good", "embedding"]) == out.loc["good", "dim"]
        for bad in ("truncated", "not_media", "missing"):
            assert out.loc[bad, "error"], (config.algorithm, bad)
            assert out.loc[bad, "embedding"] is None
        assert "not a readable media file" in out.loc["not_media", "error"]
        assert "No such file" in out.loc["missing", "error"]


def test_clip_algorithm_loads_the_tiny_checkpoint_through_the_real_code(bikes_clips, tmp_path):
    folder = write_tiny_embedder(str(tmp_path / "embed"))
    config = EmbeddingConfig("clip", model=folder, batch_size=2)
    check_embedding(config)
    encoder = load_encoder(config.algorithm, config.model_id, "cpu")
    assert type(encoder.model).__name__ == "CLIPModel"
    out = _run(config, bikes_clips)
    expected_dim = encoder.model.config.projection_dim
    assert (out["dim"] == expected_dim).all() and expected_dim != encoder.model.config.vision_config.hidden_size
    vectors = np.array(out["embedding"].tolist())
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    assert out.loc["first", "model"] == f"clip:{folder}"


def test_clip_algorithm_averages_the_unit_features_of_every_sampled_frame(tmp_path):
    """The clip vector is the normalised mean of each frame's normalised features, recomputed here frame by frame."""
    path = str(tmp_path / "two_scenes.mp4")
    write_video(path, [24, 24], fps=24)  # 2 s, a cut at 1 s: the 2 fps frames come from two unlike scenes
    config = EmbeddingConfig("clip", model=write_tiny_embedder(str(tmp_path / "embed")))
    vector = np.array(_run(config, {"two": path}).loc["two", "embedding"])

    encoder = load_encoder(config.algorithm, config.model_id, "cpu")
    frames = clip_model_frames(path, encoder)
    assert len(frames) == 4
    features = []
    for frame in frames:  # one model call per frame
        pixels = encoder.processor(images=[frame], return_tensors="pt")["pixel_values"]
        with torch.inference_mode():
            output = encoder.model.get_image_features(pixel_values=pixels)
        feature = (output if isinstance(output, torch.Tensor) else output.pooler_output)[0].double().numpy()
        features.append(feature / np.linalg.norm(feature))
    mean = np.mean(features, axis=0)
    expected = mean / np.linalg.norm(mean)
    np.testing.assert_allclose(vector, expected, atol=1e-5)
    assert features[0] @ expected < 0.999 and features[-1] @ expected < 0.999  # no single frame would pass


def test_check_embedding_stops_on_missing_weights_naming_the_option(tmp_path):
    missing = str(tmp_path / "no-such-checkpoint")
    for algorithm in ("clip", "cosmos-embed1-336p", "internvideo2"):
        with pytest.raises(EnvironmentProblem, match="--embedding-model") as caught:
            check_embedding(EmbeddingConfig(algorithm, model=missing))
        assert "--no-generate-embeddings" in str(caught.value)
    check_embedding(EmbeddingConfig())  # the offline default needs nothing


def test_model_loaders_without_weights_fail_with_the_fix(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    for algorithm in ("cosmos-embed1-224p", "internvideo2"):
        with pytest.raises(EnvironmentProblem, match="config.json"):
            check_embedding(EmbeddingConfig(algorithm, model=str(empty)))
    raw_pt = tmp_path / "iv2"
    raw_pt.mkdir()
    (raw_pt / "InternVideo2-stage2_1b-224p-f4.pt").write_bytes(b"x")
    with pytest.raises(EnvironmentProblem, match="transformers-format InternVideo2"):
        load_encoder("internvideo2", str(raw_pt), "cpu")


def test_model_name_is_stable_and_names_algorithm_and_checkpoint(tmp_path, monkeypatch):
    assert DEFAULT_ALGORITHM == "thumbnails" and DEFAULT_ALGORITHM in ALGORITHMS
    assert EmbeddingConfig().model_name == EmbeddingConfig(batch_size=3, device="cpu").model_name == "thumbnails-v1"
    assert EmbeddingConfig("cosmos-embed1-336p").model_name == "cosmos-embed1-336p:nvidia/Cosmos-Embed1-336p"
    assert EmbeddingConfig("internvideo2").model_name == "internvideo2:OpenGVLab/InternVideo2-Stage2_1B-224p-f4"
    assert EmbeddingConfig("clip", model="google/siglip-base-patch16-224").model_name == "clip:google/siglip-base-patch16-224"
    monkeypatch.chdir(tmp_path)
    os.mkdir("ckpt")
    relative = EmbeddingConfig("clip", model="./ckpt/")
    assert relative.model_name == f"clip:{tmp_path / 'ckpt'}" == EmbeddingConfig("clip", model=str(tmp_path / "ckpt")).model_name


def test_config_rejects_wrong_options():
    with pytest.raises(ValueError, match="one of"):
        EmbeddingConfig("vjepa")
    with pytest.raises(ValueError, match="needs --embedding-model"):
        EmbeddingConfig("clip")
    with pytest.raises(ValueError, match="uses no model"):
        EmbeddingConfig("thumbnails", model="x")
    with pytest.raises(ValueError, match="batch size"):
        EmbeddingConfig(batch_size=0)
    assert EmbeddingConfig.from_options(None, None).algorithm == "thumbnails"
    assert EmbeddingConfig.from_options(None, "org/model").algorithm == "clip"


def test_sampling_follows_cosmos_two_fps_doubling_up_to_twenty():
    assert len(clip_sample_indices(250, 25.0, 8)) == 20  # 10 s at 2 fps
    assert len(clip_sample_indices(60, 30.0, 8)) == 8  # 2 s: 4 frames at 2 fps -> 8 at 4 fps
    assert len(clip_sample_indices(12, 24.0, 8)) == 8  # 0.5 s: 2, 4, 8 fps -> 4 frames; 16 fps -> 8
    assert clip_sample_indices(5, 25.0, 8) == [0, 2, 3]  # 16 fps: doubling again would pass 20
    assert pick_evenly(20, 8) == [0, 2, 4, 6, 8, 10, 12, 14]
    with pytest.raises(ValueError):
        pick_evenly(3, 4)
