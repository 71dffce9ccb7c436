"""The members of a shard sample in each format, built from one clip row (no Spark, no model)."""

import json
import pickle

import numpy as np
import pytest

from curate_udfs.sharding.members import MemberFormat, caption_variant, clip_metas, metas_member, t5_member

# Cosmos-Curate v1.4's split metas keys, in its order (motion and aesthetic scores present).
COSMOS_KEYS = ["span_uuid", "source_video", "duration_span", "width_source", "height_source", "framerate_source",
               "clip_location", "width", "height", "framerate", "num_frames", "video_codec", "num_bytes", "motion_score",
               "aesthetic_score", "windows", "filtered_windows", "valid", "has_caption", "total_prompt_tokens",
               "total_output_tokens"]
ROW = {
    "clip_id": "c1", "video_id": "v1", "source_path": "/in/a.mp4", "start_s": 1.5, "end_s": 15.25,
    "location": "/lake/media/clips/c1.mp4", "width": 640, "height": 360, "fps": 24.0, "num_frames": 330,
    "num_bytes": 12345, "codec": "h264", "source_width": 1280, "source_height": 720, "source_fps": 24.0,
    "motion_global_mean": 0.01, "motion_per_patch_min_256": float("nan"), "aesthetic_score": np.float64(5.5),
    "caption_model": "Qwen/Qwen2.5-VL-7B-Instruct", "num_clip_windows": 2,
    "window_starts": np.array([0, 256]), "window_ends": np.array([256, 330]), "captions": ["a cat é", "a dog"],
    "prompt_tokens": np.array([100, 90]), "output_tokens": np.array([7, 5]),
}


def test_clip_metas_follow_cosmos_curate():
    meta = clip_metas(ROW)
    assert list(meta) == COSMOS_KEYS
    assert meta["motion_score"] == {"global_mean": 0.01, "per_patch_min_256": None}
    assert meta["windows"] == [
        {"start_frame": 0, "end_frame": 255, "qwen_caption": "a cat é", "qwen_prompt_tokens": 100, "qwen_output_tokens": 7},
        {"start_frame": 256, "end_frame": 329, "qwen_caption": "a dog", "qwen_prompt_tokens": 90, "qwen_output_tokens": 5}]
    assert (meta["total_prompt_tokens"], meta["total_output_tokens"], meta["valid"], meta["has_caption"]) == (190, 12, True, True)
    unscored = clip_metas({**ROW, "motion_global_mean": None, "aesthetic_score": float("nan")})
    assert "motion_score" not in unscored and "aesthetic_score" not in unscored


def test_cosmos_predict25_json_adds_what_the_stock_loader_reads():
    raw = metas_member(ROW, MemberFormat())
    meta = json.loads(raw)
    assert raw.isascii() and b"\n" not in raw  # compact json.dumps, non-ASCII escaped
    assert list(meta) == COSMOS_KEYS + ["nb_frames", "t2w_windows"] and meta["nb_frames"] == 330
    assert meta["t2w_windows"] == [{"start_frame": 0, "end_frame": 256, "qwen2p5_7b_caption": "a cat é"},
                                   {"start_frame": 256, "end_frame": 330, "qwen2p5_7b_caption": "a dog"}]
    other = json.loads(metas_member(ROW, MemberFormat(t2w_caption_type="gemini")))
    assert set(other["t2w_windows"][0]) == {"start_frame", "end_frame", "gemini_caption"}


def test_cosmos_curate_json_is_exactly_its_metas():
    assert json.loads(metas_member(ROW, MemberFormat(shard_format="cosmos-curate"))) == clip_metas(ROW)
    assert metas_member(ROW, MemberFormat(shard_format="cosmos-curate")) == json.dumps(clip_metas(ROW)).encode()


def test_video2world_caption_is_plain_text():
    one = {**ROW, **{k: v[:1] for k, v in ROW.items() if k in ("window_starts", "window_ends", "captions",
                                                                 "prompt_tokens", "output_tokens")}}
    assert metas_member(one, MemberFormat(dataset_format="video2world")) == "a cat é".encode()


def test_t5_pickles_per_format():
    arrays = [np.ones((3, 1024), np.float32), np.zeros((5, 1024), np.float32)]
    predict = pickle.loads(t5_member(arrays, MemberFormat()))
    assert [list(d) for d in predict] == [["t2w_qwen2p5_7b"]] * 2
    assert [d["t2w_qwen2p5_7b"].shape for d in predict] == [(3, 1024), (5, 1024)]
    assert all(d["t2w_qwen2p5_7b"].dtype == np.float16 for d in predict)
    curate = pickle.loads(t5_member(arrays, MemberFormat(shard_format="cosmos-curate")))
    assert isinstance(curate, list) and [a.dtype for a in curate] == [np.float16] * 2
    [v2w] = pickle.loads(t5_member(arrays[:1], MemberFormat(dataset_format="video2world")))
    assert v2w.shape == (3, 1024) and v2w.dtype == np.float16


@pytest.mark.parametrize("model, variant", [("Qwen/Qwen2.5-VL-7B-Instruct", "qwen"), ("/models/vlm", "qwen"),
                                            ("nvidia/Nemotron-Nano-12B-v2-VL", "nemotron")])
def test_caption_variant(model, variant):
    assert caption_variant(model) == variant


def test_bad_formats_fail_clearly():
    for bad in [{"shard_format": "cosmos"}, {"dataset_format": "tars"}, {"t2w_caption_type": "a b"}]:
        with pytest.raises(ValueError, match="--"):
            MemberFormat(**bad)
