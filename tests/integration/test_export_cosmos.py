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
    assert summary["embedding_folder"] == "thumbnails-v1_embd"
    vectors = {r.clip_id: np.array(r.embedding, dtype=np.float32) for r in table(spark, lake, "clip_embeddings")}
    for clip_id, vector in vectors.items():
        with open(out / "thumbnails-v1_embd" / f"{clip_id}.pickle", "rb") as f:
            stored = pickle.load(f)
        assert stored.dtype == np.float32 and np.array_equal(stored, vector)
    video_of = {c.clip_id: c.video_id for c in table(spark, lake, "clips")}
    found = {}
    for name in os.listdir(out / "thumbnails-v1_embd_parquet"):
        chunk = pq.read_table(out / "thumbnails-v1_embd_parquet" / name)
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


def test_import_reads_the_export_back_into_the_same_tables(spark, lake, exported, tmp_path):
    out, _ = exported
    imported = tmp_path / "imported"
    first = run_command(["import-cosmos", "--input-clip-path", str(out), "--output-path", str(imported)])
    assert first["num_clips"] == 3 and first["num_processed_videos"] == 3

    def same(name, *columns, where="true"):
        read = lambda lk: sorted(tuple(r) for r in tables.read_table(spark, str(lk), name).where(where)  # noqa: E731
                                 .select(*columns).collect())
        assert read(imported) == read(lake) and read(lake), name

    same("videos", "video_id", "source_path", "num_clips", "width", "height", "num_frames", "codec")
    same("clips", "clip_id", "video_id", "source_path", "start_frame", "end_frame", "num_frames", "num_bytes", "width")
    same("clips", "clip_id", where="filtered_by IS NULL")
    same("captions", "clip_id", "annotation_version", "window_index", "start_frame", "end_frame", "caption", "output_tokens")
    same("clip_embeddings", "clip_id", "model", "embedding")
    for clip in tables.read_table(spark, str(imported), "clips").collect():  # pointing at the folder's files
        assert clip.location.startswith(str(out)) and os.path.exists(clip.location)
    again = run_command(["import-cosmos", "--input-clip-path", str(out), "--output-path", str(imported)])
    assert again["num_clips"] == 3 and tables.read_table(spark, str(imported), "captions").count() == \
        tables.read_table(spark, str(lake), "captions").count()
    dedup = run_command(["dedup", "--output-path", str(imported), "--n-clusters", "1"])  # an imported lake is a lake
    assert dedup["num_clips"] == tables.read_table(spark, str(lake), "clip_embeddings").count() == 2  # not the filtered one


def test_import_of_a_folder_written_as_cosmos_curate_writes_it(spark, samples, tmp_path):
    """From the reference's field list: a fixed-stride clip id, a clip without captions, a filtered clip, a broken file."""
    import uuid

    folder, source = tmp_path / "cosmos", "s3://raw/cam1/drive.mp4"
    video_uuid = str(uuid.uuid5(uuid.NAMESPACE_URL, source))
    ids = [str(uuid.uuid5(uuid.NAMESPACE_URL, f"{source}_{a}_{b}")) for a, b in ((0.0, 10.0), (10.0, 20.0), (20.0, 30.0))]
    for sub in ("clips", "filtered_clips", "metas/v0", "processed_videos/cam1", "iv2_embd_parquet"):
        (folder / sub).mkdir(parents=True)

    def meta(clip_id, start, where, windows):
        return {"span_uuid": clip_id, "source_video": source, "duration_span": [start, start + 10.0],
                "width_source": 1280, "height_source": 720, "framerate_source": 30.0,
                "clip_location": f"s3://old/out/{where}/{clip_id}.mp4", "width": 1280, "height": 720, "framerate": 30.0,
                "num_frames": 300, "video_codec": "h264", "num_bytes": 1234,
                "motion_score": {"global_mean": 0.5, "per_patch_min_256": 0.1}, "aesthetic_score": 4.5,
                "windows": windows, "filtered_windows": [], "valid": True, "has_caption": bool(windows),
                "total_prompt_tokens": 0, "total_output_tokens": 0}

    window = {"start_frame": 0, "end_frame": 255, "qwen_caption": "A car drives.", "qwen_prompt_tokens": 30,
              "qwen_output_tokens": 4, "qwen_lm_enhanced_caption": "A red car drives along a coast road."}
    records = [meta(ids[0], 0.0, "clips", [window]), meta(ids[1], 10.0, "clips", []), meta(ids[2], 20.0, "filtered_clips", [])]
    for record, where in zip(records, ("clips", "clips", "filtered_clips")):
        (folder / "metas" / "v0" / f"{record['span_uuid']}.json").write_text(json.dumps(record, indent=4))
        (folder / where / f"{record['span_uuid']}.mp4").write_bytes(samples["bikes.mp4"].read_bytes())
    (folder / "metas" / "v0" / "broken-0000.json").write_text('{"span_uuid": "broken-0000", "windows": [')
    (folder / "processed_videos" / "cam1" / "drive.mp4.json").write_text(json.dumps(
        {"video": source, "height": 720, "width": 1280, "framerate": 30.0, "num_frames": 900, "duration": 30.0,
         "video_codec": "h264", "pixel_format": "yuv420p", "audio_format": None, "num_total_clips": 3,
         "num_clip_chunks": 1}))
    pq.write_table(pa.table({"id": ids[:2], "embedding": [[0.1, 0.2, 0.3], [0.3, 0.2, 0.1]]}),
                   folder / "iv2_embd_parquet" / f"{video_uuid}_0.parquet")

    lake = tmp_path / "lake"
    summary = run_command(["import-cosmos", "--input-clip-path", str(folder), "--output-path", str(lake), "--copy-media"])
    assert summary["num_clips"] == 4 and summary["num_caption_windows"] == 1
    clips = {r.clip_id: r for r in table(spark, lake, "clips")}
    assert clips["broken-0000"].error.startswith(str(folder / "metas" / "v0" / "broken-0000.json"))
    first, second, filtered = (clips[i] for i in ids)
    assert (first.start_frame, first.end_frame, second.start_frame, second.end_frame) == (0, 300, 300, 600)
    assert first.video_id == video_uuid and first.aesthetic_score == 4.5 and first.motion_global_mean == 0.5
    assert filtered.filtered_by == "cosmos-curate" and first.filtered_by is None
    assert first.location == str(lake / "media" / "clips" / f"{ids[0]}.mp4") and os.path.exists(first.location)
    [caption] = table(spark, lake, "captions")
    assert (caption.clip_id, caption.annotation_version, caption.start_frame, caption.end_frame, caption.caption,
            caption.model) == (ids[0], "v0", 0, 256, "A car drives.", "qwen")
    [video] = table(spark, lake, "videos")
    assert (video.video_id, video.source_path, video.num_clips, video.status) == (video_uuid, source, 3, "ok")
    vectors = {r.clip_id: (r.model, r.embedding) for r in table(spark, lake, "clip_embeddings")}
    assert vectors[ids[0]][0] == "internvideo2" and vectors[ids[0]][1] == pytest.approx([0.1, 0.2, 0.3])
