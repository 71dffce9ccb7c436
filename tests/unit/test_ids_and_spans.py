import uuid

import numpy as np
import pytest

from curate_udfs import ids
from curate_udfs.splitting.spans import FixedStrideRules, TransNetV2Rules, predictions_to_scenes, seconds_to_frames


def test_ids_follow_cosmos_curate():
    assert ids.video_id("s3://b/v.mp4") == str(uuid.uuid5(uuid.NAMESPACE_URL, "s3://b/v.mp4"))
    assert ids.clip_id("/in/a.mp4", 12, 87) == str(uuid.uuid5(uuid.NAMESPACE_URL, "/in/a.mp4_12_87"))
    assert ids.clip_id("/in/a.mp4", 12, 87) != ids.clip_id("/in/a.mp4", 12, 88)
    assert ids.fixed_stride_clip_id("/in/a.mp4", 0, 10) == str(uuid.uuid5(uuid.NAMESPACE_URL, "/in/a.mp4_0.0_10.0"))


def test_fixed_stride_seconds_pair_with_the_frame_spans():
    rules = FixedStrideRules()
    assert rules.span_seconds(25 * 25, 25) == [(0.0, 10.0), (10.0, 20.0), (20.0, 25.0)]
    assert rules.spans(25 * 21, 25) == [(0, 250), (250, 500)]  # the 1 s tail is dropped: the last stride,
    assert rules.span_seconds(25 * 21, 25)[:2] == [(0.0, 10.0), (10.0, 20.0)]  # so strides pair by position


def test_seconds_to_frames_tolerates_float_noise():
    assert seconds_to_frames(2.0, 29.97) == 60
    assert seconds_to_frames(2.0, 24) == 48
    assert seconds_to_frames(0.5, 30) == 15


def probs(n, cuts):
    p = np.zeros(n, dtype=np.float32)
    p[list(cuts)] = 0.9
    return p


def test_scenes_are_runs_between_transition_frames():
    assert predictions_to_scenes(probs(10, [3]), 0.4) == [(0, 3), (4, 10)]
    assert predictions_to_scenes(probs(10, [3, 4]), 0.4) == [(0, 3), (5, 10)]
    assert predictions_to_scenes(probs(10, []), 0.4) == [(0, 10)]
    assert predictions_to_scenes(np.ones(5), 0.4) == [(0, 5)]


def test_transnetv2_rules_crop_min_and_no_cut():
    rules = TransNetV2Rules()  # 0.4, max(2 s, 48 frames), 60 s, crop 0.5 s
    # 24 fps: min 48 frames, crop 12. Scene (0, 99) is cropped; (100, 140) is too short even uncropped.
    assert rules.spans(probs(300, [99, 140]), 24) == [(12, 87), (141 + 12, 300 - 12)]
    # a 60-frame scene cannot lose 24 frames and stay >= 48: kept uncropped
    assert rules.spans(probs(121, [60]), 24) == [(0, 60), (61, 121)]
    # no cut found: the whole video, uncropped
    assert rules.spans(probs(100, []), 24) == [(0, 100)]
    # below the minimum even as a whole: nothing
    assert rules.spans(probs(40, []), 24) == []


def test_transnetv2_rules_long_shots_stride_or_truncate():
    n = 24 * 150  # 150 s without cuts at 24 fps, max 60 s = 1440 frames
    assert TransNetV2Rules().spans(probs(n, []), 24) == [(0, 1440), (1440, 2880), (2880, 3600)]
    assert TransNetV2Rules(max_length_mode="truncate").spans(probs(n, []), 24) == [(0, 1440)]
    # a last piece under the minimum is dropped
    assert TransNetV2Rules().spans(probs(1440 + 30, []), 24) == [(0, 1440)]
    assert TransNetV2Rules(max_length_s=None).spans(probs(n, []), 24) == [(0, n)]


def test_fixed_stride_rules():
    assert FixedStrideRules().spans(250, 25) == [(0, 250)]
    assert FixedStrideRules().spans(25 * 25, 25) == [(0, 250), (250, 500), (500, 625)]
    assert FixedStrideRules().spans(25 * 21, 25) == [(0, 250), (250, 500)]  # last 1 s dropped


@pytest.mark.parametrize("kwargs", [{"threshold": 1.5}, {"min_length_frames": 0}, {"max_length_s": 1.0}, {"crop_s": -1}])
def test_transnetv2_rules_reject_bad_options(kwargs):
    with pytest.raises(ValueError):
        TransNetV2Rules(**kwargs)


def test_fixed_stride_rejects_bad_options():
    with pytest.raises(ValueError):
        FixedStrideRules(split_duration_s=0)
