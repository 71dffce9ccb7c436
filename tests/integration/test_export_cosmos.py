"""`cliplake export-cosmos`: a lake as Cosmos-Curate v1.4's split output, file by file against its code's layout."""

import json
import os
import pickle

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curate_udfs.testing.synthetic import write_video
from jobs import tables
from jobs.cli import run_command

pytestmark = pytest.mark.slow

FPS = 24
METAS_KEYS = ["span_uuid", "source_video", "duration_span", "width_source", "height_source", "framerate_source",
              "clip_location", "width", "height", "framerate", "num_frames", "video_codec", "num_bytes"]
TAIL_KEYS = ["windows", "filtered_windows", "valid", "has_caption", "total_prompt_tokens", "total_output_tokens"]


@pytest.fixture(scope="module")
def lake(spark, tiny_models, tmp_path_factory):
    """pan (two windows) and walk captioned as v0 and v1, with motion scores and previews; static filtered by motion."""
    inputs = tmp_path_factory.mktemp("inputs")
    write_video(str(inputs / "pan.mp4"), [160], width=384, height=256, fps=FPS, speed=4.0)
    write_video(str(inputs / "walk.mp4"), [96], width=384, height=256, fps=FPS, speed=2.0)
    write_video(str(inputs / "static.mp4"), [96], width=384, height=256, fps=FPS, speed=0.0)
    lake = tmp_path_factory.mktemp("lake")
    captions = ["--captioning-model", tiny_models["vlm"], "--captioning-window-size", "96",
                "--captioning-max-output-tokens", "4"]
    run_command(["split", "--input-video-path", str(inputs), "--output-path", str(lake), "--splitting-algorithm",
                 "fixed-stride", "--fixed-stride-split-duration", "60", "--motion-filter", "enable",
                 "--generate-previews", *captions])
    run_command(["caption", "--output-path", str(lake), "--annotation-version", "v1", *captions])
    return lake


@pytest.fixture(scope="module")
def exported(lake, tmp_path_factory):
    out = tmp_path_factory.mktemp("cosmos")
    summary = run_command(["export-cosmos", "--output-path", str(lake), "--to", str(out)])
    return out, summary


def table(spark, lake, name):
    return tables.read_table(spark, str(lake), name).collect()


def test_clips_and_filtered_clips_are_the_lake_files(spark, lake, exported):
    out, summary = exported
    for clip in table(spark, lake, "clips"):
        folder = "clips" if clip.filtered_by is None else "filtered_clips"
        with open(clip.location, "rb") as src, open(out / folder / f"{clip.clip_id}.mp4", "rb") as dst:
            assert src.read() == dst.read()
    assert len(os.listdir(out / "clips")) == 2 and len(os.listdir(out / "filtered_clips")) == 1
    assert summary["versions"] == ["v0", "v1"]


def test_metas_keys_order_windows_and_formatting(spark, lake, exported):
    out, _ = exported
    captions = {(r.clip_id, r.annotation_version, r.window_index): r for r in table(spark, lake, "captions")}
    for clip in table(spark, lake, "clips"):
        for version in ("v0", "v1"):
            text = (out / "metas" / version / f"{clip.clip_id}.json").read_text()
            meta = json.loads(text)
            assert text == json.dumps(meta, indent=4)  # Cosmos-Curate's json.dumps(indent=4)
            keys = list(meta)
            assert keys[:len(METAS_KEYS)] == METAS_KEYS and keys[-len(TAIL_KEYS):] == TAIL_KEYS
            assert meta["span_uuid"] == clip.clip_id and meta["source_video"] == clip.source_path
            assert meta["clip_location"] == str(out / ("clips" if clip.filtered_by is None else "filtered_clips")
                                                 / f"{clip.clip_id}.mp4")
            assert isinstance(meta["framerate"], float) and isinstance(meta["num_frames"], int)
            assert meta["motion_score"]["global_mean"] == pytest.approx(clip.motion_global_mean)
            windows = [captions[(clip.clip_id, version, i)] for i in range(len(meta["windows"]))]
            for window, row in zip(meta["windows"], windows):
                assert (window["start_frame"], window["end_frame"]) == (row.start_frame, row.end_frame - 1)  # inclusive
                assert window["qwen_caption"] == row.caption and window["qwen_output_tokens"] == row.output_tokens
            assert meta["has_caption"] == (clip.filtered_by is None)
            assert meta["total_output_tokens"] == sum(r.output_tokens for r in windows)
    pan = next(c for c in table(spark, lake, "clips") if c.source_path.endswith("pan.mp4"))
    assert len(json.loads((out / "metas" / "v0" / f"{pan.clip_id}.json").read_text())["windows"]) == 2


def test_embeddings_as_pickles_and_parquet_chunks(spark, lake, exported):
    out, summary = exported
    assert summary["embedding_folder"] == "thumbnails_v1_embd"
    vectors = {r.clip_id: np.array(r.embedding, dtype=np.float32) for r in table(spark, lake, "clip_embeddings")}
    for clip_id, vector in vectors.items():
        with open(out / "thumbnails_v1_embd" / f"{clip_id}.pickle", "rb") as f:
            stored = pickle.load(f)
        assert stored.dtype == np.float32 and np.array_equal(stored, vector)
    video_of = {c.clip_id: c.video_id for c in table(spark, lake, "clips")}
    found = {}
    for name in os.listdir(out / "thumbnails_v1_embd_parquet"):
        chunk = pq.read_table(out / "thumbnails_v1_embd_parquet" / name)
        assert chunk.schema.names == ["id", "embedding"] and chunk.schema.field("embedding").type.value_type == pa.float32()
        for clip_id, vector in zip(chunk["id"].to_pylist(), chunk["embedding"].to_pylist()):
            assert name == f"{video_of[clip_id]}_0.parquet"  # one chunk per video: under 32 clips each
            found[clip_id] = np.array(vector, dtype=np.float32)
    assert found.keys() == vectors.keys() and all(np.array_equal(found[k], vectors[k]) for k in found)


def test_processed_videos_summary_captions_and_previews(spark, lake, exported):
    out, _ = exported
    videos = table(spark, lake, "videos")
    for video in videos:
        record = json.loads((out / "processed_videos" / (video.source_path.lstrip("/") + ".json")).read_text())
        assert (record["video"], record["num_total_clips"], record["num_clip_chunks"]) == (video.source_path, 1, 1)
        assert record["duration"] == pytest.approx(video.duration_s)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["num_processed_videos"] == 3 and summary["total_num_clips_filtered_by_motion"] == 1
    assert summary["total_num_clips_passed"] == 2
    all_captions = json.loads((out / "v1" / "all_window_captions.json").read_text())
    v1 = {(r.clip_id, f"{r.start_frame}_{r.end_frame - 1}"): r.caption for r in table(spark, lake, "captions")
          if r.annotation_version == "v1"}
    flat = {(clip, window): text for clips in all_captions.values() for clip, windows in clips.items()
            for window, text in windows.items()}
    assert flat == v1
    previews = sorted(os.listdir(out / "previews"))
    expected = sorted(f"{clip}_{name}" for clip in os.listdir(lake / "media" / "previews")
                      for name in os.listdir(lake / "media" / "previews" / clip))
    assert previews == expected and previews


def test_a_second_export_writes_nothing_and_time_travel_exports_the_old_captions(spark, lake, exported, tmp_path):
    out, _ = exported
    again = run_command(["export-cosmos", "--output-path", str(lake), "--to", str(out)])
    assert again["written"] == 0 and again["unchanged"] > 0
    latest = tables.latest_version(spark, str(lake), "captions")
    before_v1 = max(v for v in range(latest + 1)
                    if tables.read_table(spark, str(lake), "captions", v).where("annotation_version = 'v1'").count() == 0)
    old = run_command(["export-cosmos", "--output-path", str(lake), "--to", str(tmp_path / "old"),
                       "--as-of-version", str(before_v1), "--annotation-version", "v0", "--embedding-model", "thumbnails-v1"])
    assert old["versions"] == ["v0"] and not (tmp_path / "old" / "metas" / "v1").exists()
    assert sorted(os.listdir(tmp_path / "old" / "metas" / "v0")) == sorted(os.listdir(out / "metas" / "v0"))
