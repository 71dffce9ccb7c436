import os
import uuid

import av
import numpy as np
import pandas as pd
import pytest
import torch

from curate_udfs import ids
from curate_udfs.errors import MediaError
from curate_udfs.media.decode import iter_small_rgb_frames
from curate_udfs.split_stage import VIDEO_COLUMNS, SplitConfig, split_batches, split_video
from curate_udfs.splitting.spans import FixedStrideRules
from curate_udfs.testing.synthetic import THREE_SCENES as SCENES
from curate_udfs.testing.synthetic import THREE_SCENES_FPS as FPS
from curate_udfs.splitting.transnetv2 import load_transnetv2, predict_cut_probabilities


def test_transnetv2_finds_known_cuts(cuts_video):
    p = predict_cut_probabilities(iter_small_rgb_frames(cuts_video, 48, 27))
    assert len(p) == sum(SCENES)
    # TransNetV2 marks the last frame of a shot; nothing else comes near the threshold
    assert list(np.flatnonzero(p > 0.4)) == [99, 179]
    assert np.delete(p, [99, 179]).max() < 0.1


def test_streaming_windows_equal_whole_video_inference(samples):
    """Our bounded-memory windowing reproduces the package's own whole-video inference."""
    frames = np.stack(list(iter_small_rgb_frames(str(samples["bikes.mp4"]), 48, 27)))
    streamed = predict_cut_probabilities(iter(frames))
    with torch.inference_mode():
        reference = load_transnetv2("cpu").predict_frames(torch.from_numpy(frames), quiet=True)[0]
    np.testing.assert_allclose(streamed, np.asarray(reference).reshape(-1), atol=1e-5)


def test_bf16_agrees_with_fp32(cuts_video):
    fp32 = predict_cut_probabilities(iter_small_rgb_frames(cuts_video, 48, 27))
    bf16 = predict_cut_probabilities(iter_small_rgb_frames(cuts_video, 48, 27), precision="bf16")
    assert np.abs(fp32 - bf16).max() < 0.02
    assert list(np.flatnonzero(bf16 > 0.4)) == [99, 179]


def test_no_frames_is_media_error():
    with pytest.raises(MediaError, match="no decodable"):
        predict_cut_probabilities(iter([]))


def test_split_video_known_cuts(cuts_video, tmp_path):
    config = SplitConfig(clips_dir=str(tmp_path))
    video, clips = split_video("/lake/in/three.mp4", cuts_video, config)
    crop = FPS // 2
    # scenes [0,99) [100,179) [180,310), each cropped by 0.5 s at both ends
    assert [(c["start_frame"], c["end_frame"]) for c in clips] == [
        (crop, 99 - crop), (100 + crop, 179 - crop), (180 + crop, 310 - crop)]
    assert video["status"] == "ok" and video["num_clips"] == 3 and video["num_frames"] == 310
    assert video["video_id"] == ids.video_id("/lake/in/three.mp4")
    for clip in clips:
        assert clip["clip_id"] == ids.clip_id("/lake/in/three.mp4", clip["start_frame"], clip["end_frame"])
        assert clip["location"] == os.path.join(tmp_path, f"{clip['clip_id']}.mp4")
        assert clip["start_s"] == pytest.approx(clip["start_frame"] / FPS)
        with av.open(clip["location"]) as c:
            assert sum(1 for _ in c.decode(video=0)) == clip["num_frames"]
        assert os.path.getsize(clip["location"]) == clip["num_bytes"]
    assert sorted(os.listdir(tmp_path)) == sorted(f"{c['clip_id']}.mp4" for c in clips)


def test_kept_frames_are_the_decoded_frames_and_stop_at_the_budget(cuts_video):
    from curate_udfs.media.decode import KeptFrames, iter_video_frames

    pixels = lambda frames: [f.to_ndarray(format="yuv420p") for f in frames]  # noqa: E731
    decoded = pixels(iter_video_frames(cuts_video))
    kept = KeptFrames(64 * 2**20)  # 310 frames of 320x180: 27 MB
    probabilities = predict_cut_probabilities(iter_small_rgb_frames(cuts_video, 48, 27, kept=kept))
    assert list(np.flatnonzero(probabilities > 0.4)) == [99, 179]  # the small frames are unchanged
    again = pixels(kept.drain())
    assert len(again) == len(decoded) == 310 and all(np.array_equal(a, b) for a, b in zip(again, decoded))
    assert kept.drain() is None  # handed out once
    small = KeptFrames(2**20)
    assert sum(1 for _ in small.keep(iter_video_frames(cuts_video))) == 310 and small.drain() is None


def test_one_decode_gives_the_same_clips_in_bounded_memory(tmp_path):
    """Frames kept from TransNetV2's pass are encoded instead of decoding again: the same clips whatever
    the budget; within it the decoded frames are held, over it none are (memory flat in the video's length).

    (The clip bytes are not compared: libx264's macroblock tree makes them vary from run to run. Peak RSS
    is not compared either: torch's own peak hides 166 MB on some machines.)"""
    from curate_udfs.media.decode import KeptFrames, iter_video_frames
    from curate_udfs.testing.synthetic import write_video

    video = str(tmp_path / "long.mp4")
    scenes = [100, 140]  # 240 frames of 346 KB: 83 MB decoded
    write_video(video, scenes, width=640, height=360, fps=24)
    clips = []
    for budget in (0, 8, 256):  # decode twice; keep at most 8 MiB (dropped: decode twice); keep all
        _, found = split_video("long.mp4", video, SplitConfig(clips_dir=str(tmp_path / str(budget)), frame_buffer_mb=budget))
        clips.append([(c["clip_id"], c["num_frames"]) for c in found])
    assert len(clips[0]) == 2 and clips[0] == clips[1] == clips[2]
    # What each budget holds: the decoded frames alone (TransNetV2's pass keeping them is tested above)
    held, over = KeptFrames(256 * 2**20), KeptFrames(8 * 2**20)
    for kept in (held, over):
        sum(1 for _ in kept.keep(iter_video_frames(video)))
    assert held.used == sum(scenes) * 640 * 360 * 3 // 2 and sum(1 for _ in held.drain()) == sum(scenes)
    assert over.drain() is None  # over the budget: every kept frame let go


def test_split_video_fixed_stride(samples, tmp_path):
    config = SplitConfig(clips_dir=str(tmp_path), splitting_algorithm="fixed-stride",
                         fixed_stride=FixedStrideRules(split_duration_s=4.0, min_clip_length_s=1.0))
    video, clips = split_video("bikes.mp4", str(samples["bikes.mp4"]), config)
    assert [(c["start_frame"], c["end_frame"]) for c in clips] == [(0, 100), (100, 200), (200, 250)]
    # Cosmos-Curate v1.4's fixed-stride ids: its float seconds (250 frames at 25 fps end at 10.0 s)
    assert [c["clip_id"] for c in clips] == [str(uuid.uuid5(uuid.NAMESPACE_URL, f"bikes.mp4_{a}_{b}"))
                                             for a, b in (("0.0", "4.0"), ("4.0", "8.0"), ("8.0", "10.0"))]


def test_limit_clips_keeps_each_videos_first_clips(samples, tmp_path):
    """--limit-clips 2 (Cosmos-Curate: per video): the first two clips, the same ids, only their files written."""
    rules = FixedStrideRules(split_duration_s=4.0, min_clip_length_s=1.0)
    config = SplitConfig(clips_dir=str(tmp_path), splitting_algorithm="fixed-stride", fixed_stride=rules, limit_clips=2)
    video, clips = split_video("bikes.mp4", str(samples["bikes.mp4"]), config)
    assert [(c["start_frame"], c["end_frame"]) for c in clips] == [(0, 100), (100, 200)]
    assert video["num_clips"] == 2 and video["num_frames"] == 250  # the video is still probed and split whole
    assert [c["clip_id"] for c in clips] == [str(uuid.uuid5(uuid.NAMESPACE_URL, f"bikes.mp4_{a}_{b}"))
                                             for a, b in (("0.0", "4.0"), ("4.0", "8.0"))]
    assert sorted(os.listdir(tmp_path)) == sorted(f"{c['clip_id']}.mp4" for c in clips)
    with pytest.raises(ValueError, match="--limit-clips"):
        SplitConfig(clips_dir=str(tmp_path), limit_clips=-1)


def test_split_batches_turns_bad_input_into_rows(samples, bad_inputs, tmp_path):
    paths = [str(samples["carphone_pristine.mp4"]), *bad_inputs.values()]
    batch = pd.DataFrame({"source_path": paths, "local_path": paths})
    rows = pd.concat(split_batches(iter([batch]), SplitConfig(clips_dir=str(tmp_path))), ignore_index=True)
    assert list(rows.columns) == [*VIDEO_COLUMNS, "clips"]
    assert list(rows.source_path) == paths
    assert list(rows.status) == ["ok"] + ["error"] * len(bad_inputs)
    assert rows.error.iloc[1:].str.len().min() > 10 and rows.error.iloc[0] is None
    assert rows.num_clips.iloc[0] == 1 and (rows.processing_s >= 0).all()
    # the decode that failed half-way removed the clips it had written
    assert len(os.listdir(tmp_path)) == 1


def test_split_config_checks_options(tmp_path):
    with pytest.raises(ValueError):
        SplitConfig(clips_dir=str(tmp_path), splitting_algorithm="scenedetect")
    with pytest.raises(ValueError):
        SplitConfig(clips_dir=str(tmp_path), transnetv2_precision="int4")
