"""--vlm-filter and --video-classifier: parsing, scoring, and whole clips through a VLM (no Spark).

Canned structured answers come from the loopback OpenAI-compatible server over real HTTP; the tiny
random VLM (whose answers never parse) runs through the transformers backend.
"""

import json

import pandas as pd
import pytest

from curate_udfs.captioning import CaptioningConfig
from curate_udfs.captioning.openai_backend import ApiSettings
from curate_udfs.filters import vlm
from curate_udfs.media.probe import probe_video
from curate_udfs.testing.openai_server import OpenAICompatibleServer
from curate_udfs.testing.tiny_models import write_tiny_vlm

SMALL = {"min_pixels_per_frame": 56 * 56, "max_pixels_per_frame": 112 * 196, "window_size": 64}


def run(adapter, rows, config) -> pd.DataFrame:
    return pd.concat(list(adapter(iter([pd.DataFrame(rows)]), config)), ignore_index=True)


@pytest.fixture(scope="module")
def clips(samples):
    """bikes: 4 windows (5, 5, 5 and 4 sampled frames); carphone: 2 windows (4 and 3 frames)."""
    rows = []
    for name in ("bikes.mp4", "carphone_pristine.mp4"):
        info = probe_video(str(samples[name]))
        rows.append({"clip_id": name.split(".")[0], "location": str(samples[name]), "fps": info.fps,
                     "num_frames": info.num_frames, "width": info.width, "height": info.height})
    return rows


def api(server) -> CaptioningConfig:
    return CaptioningConfig(backend="openai", api=ApiSettings(server.base_url, "judge", concurrency=4, backoff_s=0.01),
                            **SMALL)


def test_parse_yes_no_reads_json_fences_prose_and_loose_pairs():
    names = ("slideshow", "fast zoom", "vehicle_POV")
    assert vlm.parse_yes_no('{"slideshow": "no", "fast zoom": "yes"}', names) == {"slideshow": False, "fast zoom": True}
    assert vlm.parse_yes_no('Sure!\n```json\n{"Slideshow": "Yes", "vehicle POV": true}\n```', names) == \
        {"slideshow": True, "vehicle_POV": True}
    assert vlm.parse_yes_no('"slideshow": "no", "fast_zoom": "no" (not valid JSON)', names) == \
        {"slideshow": False, "fast zoom": False}
    for unparseable in ("", None, "A man rides a bike.", '{"cat": "yes"}', '{"slideshow": "maybe"}'):
        assert vlm.parse_yes_no(unparseable, names) is None


def test_scores_verdicts_and_allow_block_rules():
    config = vlm.VlmFilterConfig(mode="enable", categories=("slideshow", "fast zoom"))
    yes, no = '{"slideshow": "yes", "fast zoom": "no"}', '{"slideshow": "no", "fast zoom": "no"}'
    assert vlm.score_vlm_filter([yes, no, no, no], config)["filtered_by"] is None  # 0.25 < 0.5
    half = vlm.score_vlm_filter([yes, no, "gibberish"], config)  # the unparsed window decides nothing
    assert (half["vlm_filter_score"], half["filtered_by"]) == (0.5, "vlm")
    assert json.loads(half["vlm_filter_answer"])[2] == {"unparsed": "gibberish"}
    none = vlm.score_vlm_filter(["gibberish"], config)
    assert (none["vlm_filter_score"], none["filtered_by"]) == (None, None)
    assert vlm.score_vlm_filter([yes], vlm.VlmFilterConfig(mode="score-only"))["filtered_by"] is None

    pov = '{"vehicle_POV": "yes", "aerial_footage": "no"}'
    classifier = vlm.VideoClassifierConfig(mode="enable", block=("vehicle_POV",))
    assert vlm.classify([pov, pov], classifier) == {
        "video_type": "vehicle_POV", "video_classifier_answer": json.dumps([{"vehicle_POV": True, "aerial_footage": False}] * 2,
                                                                         sort_keys=True), "filtered_by": "video_classifier"}
    allowed = vlm.VideoClassifierConfig(mode="enable", allow=("vehicle_POV", "aerial_footage"))
    assert vlm.classify([pov], allowed)["filtered_by"] is None
    assert vlm.classify(['{"cooking": "yes"}'], allowed) == {
        "video_type": "cooking", "video_classifier_answer": '[{"cooking": true}]', "filtered_by": "video_classifier"}
    assert vlm.classify(["no idea"], allowed)["filtered_by"] is None and vlm.classify(["no idea"], allowed)["video_type"] is None
    for bad in ({"allow": ("cat_videos",)}, {"allow": ("pets",), "block": ("pets",)}, {"threshold": 2}):
        with pytest.raises(ValueError):
            vlm.VideoClassifierConfig(**bad)
    with pytest.raises(ValueError):
        vlm.VlmFilterConfig(categories=())


def test_vlm_filter_over_http_with_canned_answers(clips):
    # "yes" to slideshow for windows of 4 or 5 sampled frames: bikes 4 of 4 windows (1.0), carphone 1 of 2 (0.5)
    def answer(prompt, frames):
        assert '"slideshow"' in prompt and '"low resolution"' not in prompt
        return json.dumps({"slideshow": "yes" if len(frames) >= 4 else "no", "fast zoom": "no"})

    categories = ("slideshow", "fast zoom")
    with OpenAICompatibleServer(answer=answer) as server:
        out = run(vlm.vlm_filter_batches, clips, vlm.VlmFilterConfig("enable", categories, captioning=api(server)))
        kept = run(vlm.vlm_filter_batches, clips, vlm.VlmFilterConfig("score-only", categories, captioning=api(server)))
    assert list(out.columns) == list(vlm.VLM_FILTER_COLUMNS) and out.error.isna().all()
    assert out.vlm_filter_score.tolist() == [1.0, 0.5] and out.filtered_by.tolist() == ["vlm", "vlm"]
    assert kept.vlm_filter_score.tolist() == [1.0, 0.5] and kept.filtered_by.isna().all()
    assert len(json.loads(out.vlm_filter_answer[0])) == 4 and json.loads(out.vlm_filter_answer[1])[1] == {
        "slideshow": False, "fast zoom": False}


def test_video_classifier_over_http_and_failures_as_rows(clips):
    def answer(prompt, frames):
        assert prompt.count('"') >= 2 * len(vlm.VIDEO_TYPES)  # every type is asked about
        return "The answer:\n" + json.dumps({"vehicle_POV": "yes", "cooking": "no"})

    with OpenAICompatibleServer(answer=answer) as server:
        config = vlm.VideoClassifierConfig("enable", allow=("cooking",), captioning=api(server))
        out = run(vlm.video_classifier_batches, clips, config)
    assert out.video_type.tolist() == ["vehicle_POV"] * 2 and out.filtered_by.tolist() == ["video_classifier"] * 2
    with OpenAICompatibleServer(answer=answer, fail_always=500) as server:
        config = vlm.VideoClassifierConfig("enable", captioning=CaptioningConfig(
            backend="openai", api=ApiSettings(server.base_url, "judge", max_retries=1, backoff_s=0.01), **SMALL))
        failed = run(vlm.video_classifier_batches, clips, config)
    assert failed.error.str.startswith("video_classifier: ").all() and failed.error.str.contains("HTTP 500").all()
    assert failed.video_type.isna().all() and failed.filtered_by.isna().all()


def test_tiny_vlm_answers_do_not_parse_and_keep_the_clip(clips, tmp_path):
    model = write_tiny_vlm(str(tmp_path / "vlm"))
    config = vlm.VlmFilterConfig("enable", ("slideshow",), captioning=CaptioningConfig(model=model, **SMALL))
    out = run(vlm.vlm_filter_batches, clips[1:], config)
    assert out.error.isna().all() and out.vlm_filter_score.isna().all() and out.filtered_by.isna().all()
    answers = json.loads(out.vlm_filter_answer[0])
    assert len(answers) == 2 and all(set(a) == {"unparsed"} for a in answers)  # recorded as it came
