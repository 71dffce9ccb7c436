"""--captioning-backend openai against OpenAI-compatible servers on loopback (real HTTP, no Spark).

The server (curate_udfs.testing.openai_server) captions with the tiny Qwen2.5-VL through the
transformers backend, or misbehaves on purpose: 429 with Retry-After, 500 forever, 401.
"""

import dataclasses
import time
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pandas as pd
import pytest

from curate_udfs.captioning import OUTPUT_COLUMNS, CaptioningConfig, caption_batches, prepare_caption_batches
from curate_udfs.captioning.inputs import unpack_window_frames
from curate_udfs.captioning.openai_backend import ApiSettings, backoff_delay, retry_after_seconds
from curate_udfs.media.probe import probe_video
from curate_udfs.testing.openai_server import OpenAICompatibleServer
from curate_udfs.testing.tiny_models import write_tiny_vlm

SMALL = {"min_pixels_per_frame": 56 * 56, "max_pixels_per_frame": 112 * 196, "max_output_tokens": 6, "window_size": 64}


def run(adapter, rows, *args) -> pd.DataFrame:
    frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(rows)
    return pd.concat(list(adapter(iter([frame]), *args)), ignore_index=True)


@pytest.fixture(scope="module")
def tiny_vlm(tmp_path_factory):
    return write_tiny_vlm(str(tmp_path_factory.mktemp("tiny") / "vlm"))


@pytest.fixture(scope="module")
def windows(samples):
    """The 4 prepared windows of bikes.mp4 (250 frames in 64-frame windows)."""
    info = probe_video(str(samples["bikes.mp4"]))
    row = {"clip_id": "bikes", "location": str(samples["bikes.mp4"]), "fps": info.fps, "num_frames": info.num_frames,
           "width": info.width, "height": info.height}
    return run(prepare_caption_batches, [row], CaptioningConfig(**SMALL))


def api_config(server, **settings) -> CaptioningConfig:
    api = ApiSettings(server.base_url if server else "http://127.0.0.1:9/v1", "tiny-vlm", api_key="sk-test",
                      concurrency=4, backoff_s=0.01, **settings)
    return CaptioningConfig(backend="openai", api=api, batch_size=2, **SMALL)


def test_every_window_is_captioned_by_the_endpoint(windows, tiny_vlm):
    with OpenAICompatibleServer(tiny_vlm) as server:
        out = run(caption_batches, windows, api_config(server))
    assert list(out.columns) == list(OUTPUT_COLUMNS) and len(out) == len(windows) == 4
    assert out.error.isna().all() and out.caption.map(lambda c: isinstance(c, str)).all()
    assert (out.model == "tiny-vlm").all() and (out.prompt == CaptioningConfig().prompt).all()
    assert (out.prompt_tokens > 0).all() and (out.output_tokens >= 1).all()
    assert out.window_index.tolist() == [0, 1, 2, 3]  # in order, though sent in parallel
    # each request carried the window's frames as images, the prompt, and the key as a bearer token
    assert sorted(server.frame_counts) == sorted(unpack_window_frames(w).num_frames for w in windows.model_inputs)
    assert set(server.prompts) == {CaptioningConfig().prompt} and set(server.authorizations) == {"Bearer sk-test"}


def test_429_with_retry_after_then_200_and_every_caption_arrives(windows, tiny_vlm):
    with OpenAICompatibleServer(tiny_vlm, fail_first=3, fail_status=429, retry_after="1") as server:
        started = time.monotonic()
        out = run(caption_batches, windows, api_config(server, max_retries=3))
    assert out.error.isna().all() and out.caption.map(lambda c: isinstance(c, str)).all() and len(out) == 4
    assert server.statuses.count(429) == 3 and server.statuses.count(200) == 4
    # the retries waited what Retry-After said (1 s), not the 10 ms backoff
    assert len(server.arrivals) == 7 and min(server.arrivals[4:]) - started >= 1.0  # (the first 4 went out at once)


def test_500_forever_gives_error_rows_not_a_failed_job(windows, tiny_vlm):
    with OpenAICompatibleServer(answer=lambda prompt, frames: "never", fail_always=500) as server:
        out = run(caption_batches, windows, api_config(server, max_retries=2))
    assert len(out) == 4 and out.caption.isna().all() and out.clip_id.eq("bikes").all()
    assert out.window_index.tolist() == [0, 1, 2, 3]
    assert out.error.str.contains("HTTP 500").all() and out.error.str.contains("after 3 tries").all()
    assert server.statuses == [500] * 12  # 3 tries per window


def test_refusals_are_not_retried_and_a_dead_endpoint_is_an_error_per_window(windows):
    with OpenAICompatibleServer(answer=lambda prompt, frames: "never", fail_always=401) as server:
        out = run(caption_batches, windows.head(2), api_config(server))
    assert server.statuses == [401, 401] and out.error.str.contains("HTTP 401").all()
    out = run(caption_batches, windows.head(2), api_config(None, max_retries=1))  # nothing listens on port 9
    assert out.error.str.contains("no answer").all() and out.error.str.contains("after 2 tries").all()


def test_canned_answers_come_back_verbatim_with_usage(windows):
    with OpenAICompatibleServer(answer=lambda prompt, frames: f"  {len(frames)} frames: {prompt[:9]}  ") as server:
        out = run(caption_batches, windows, dataclasses.replace(api_config(server), prompt_variant="av"))
    counts = [unpack_window_frames(w).num_frames for w in windows.model_inputs]
    assert out.caption.tolist() == [f"{n} frames: This vide" for n in counts]
    assert out.output_tokens.tolist() == [1] * 4


def test_retry_after_and_backoff():
    assert retry_after_seconds("2") == 2.0 and retry_after_seconds("0.5") == 0.5 and retry_after_seconds("-3") == 0.0
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    assert retry_after_seconds(format_datetime(now + timedelta(seconds=30), usegmt=True), now) == 30.0
    assert retry_after_seconds(None) is None and retry_after_seconds("soon") is None
    assert backoff_delay(0, 1.0, 7.0) == 7.0
    for attempt in range(10):
        delay = backoff_delay(attempt, 1.0, None)
        assert min(60.0, 2 ** attempt) / 2 <= delay <= min(60.0, 2 ** attempt)


def test_config_checks_and_the_key_stays_out_of_reprs():
    api = ApiSettings("http://h:8000/v1", "m", api_key="sk-secret")
    assert "sk-secret" not in repr(api) and "sk-secret" not in repr(CaptioningConfig(backend="openai", api=api))
    for bad in ({"backend": "openai"}, {"api": api}, {"backend": "openai", "api": dataclasses.replace(api, base_url="h:8000")},
                {"backend": "openai", "api": dataclasses.replace(api, model="")},
                {"backend": "openai", "api": dataclasses.replace(api, concurrency=0)}):
        with pytest.raises(ValueError):
            CaptioningConfig(**bad)
