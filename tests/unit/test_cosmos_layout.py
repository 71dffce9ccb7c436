"""Cosmos-Curate's split-output records, written and read back without Spark."""

import json

import pytest

from curate_udfs import cosmos_layout, ids

ROW = {"clip_id": "c1", "video_id": ids.video_id("/v/a.mp4"), "source_path": "/v/a.mp4", "start_s": 2.0, "end_s": 12.0,
       "location": "/out/clips/c1.mp4", "width": 640, "height": 360, "fps": 30.0, "num_frames": 300, "num_bytes": 999,
       "codec": "h264", "source_width": 1280, "source_height": 720, "source_fps": 30.0, "motion_global_mean": 0.4,
       "motion_per_patch_min_256": 0.1, "aesthetic_score": None, "caption_model": "Qwen/Qwen2.5-VL-7B-Instruct",
       "window_starts": [0, 256], "window_ends": [256, 300], "captions": ["a", "b"], "prompt_tokens": [10, 11],
       "output_tokens": [3, 4]}


def test_metas_written_then_read_gives_the_clip_and_its_windows():
    text = cosmos_layout.metas_json(ROW).decode()
    meta = json.loads(text)
    assert text == json.dumps(meta, indent=4) and "aesthetic_score" not in meta
    assert [w["end_frame"] for w in meta["windows"]] == [255, 299] and meta["total_output_tokens"] == 7
    clip, captions = cosmos_layout.read_metas("/out/metas/v3/c1.json", text, "/out")
    assert (clip["clip_id"], clip["start_frame"], clip["end_frame"], clip["location"]) == ("c1", 60, 360, "/out/clips/c1.mp4")
    assert clip["video_id"] == ROW["video_id"] and clip["filtered_by"] is None and clip["error"] is None
    assert [(c["annotation_version"], c["start_frame"], c["end_frame"], c["caption"], c["model"]) for c in captions] == \
        [("v3", 0, 256, "a", "qwen"), ("v3", 256, 300, "b", "qwen")]


def test_enhanced_captions_are_written_as_lm_keys_and_read_back():
    row = {**ROW, "enhanced_captions": ["a, richer", None], "enhance_model": "/models/Qwen2.5-14B-Instruct"}
    meta = json.loads(cosmos_layout.metas_json(row))
    assert meta["windows"][0]["qwen_lm_enhanced_caption"] == "a, richer"
    assert not any(k.endswith("_enhanced_caption") for k in meta["windows"][1])  # a window without one has no key
    assert not any(k.endswith("_enhanced_caption") for w in json.loads(cosmos_layout.metas_json(ROW))["windows"] for k in w)
    _, captions = cosmos_layout.read_metas("/out/metas/v0/c1.json", json.dumps(meta), "/out")
    assert [(c["caption"], c["enhanced_caption"], c["enhance_model"]) for c in captions] == \
        [("a", "a, richer", "qwen_lm"), ("b", None, None)]


def test_errors_come_before_the_windows_and_read_back():
    meta = json.loads(cosmos_layout.metas_json(ROW, error="decode failed"))
    keys = list(meta)
    assert keys.index("errors") == keys.index("windows") - 1 and meta["valid"] is False
    clip, _ = cosmos_layout.read_metas("/o/metas/v0/c1.json", json.dumps(meta), "/o")
    assert clip["error"] == "decode failed"


def test_not_a_record_is_a_value_error_naming_the_file():
    with pytest.raises(ValueError, match="/o/metas/v0/x.json is not a Cosmos-Curate clip record"):
        cosmos_layout.read_metas("/o/metas/v0/x.json", '{"windows": []}', "/o")


@pytest.mark.parametrize("model,folder", [("internvideo2:OpenGVLab/x", "iv2_embd"),
                                          ("cosmos-embed1-336p:nvidia/Cosmos-Embed1-336p", "ce1_embd_336p"),
                                          ("thumbnails-v1", "thumbnails-v1_embd")])
def test_embedding_folders_name_the_model_both_ways(model, folder):
    assert cosmos_layout.embedding_folder(model) == folder
    assert cosmos_layout.embedding_model(folder) == model.split(":")[0]
