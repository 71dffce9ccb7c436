import os

import av
import numpy as np
import psutil
import pytest

from curate_udfs.errors import EnvironmentProblem, MediaError
from curate_udfs.media.decode import iter_small_rgb_frames, iter_video_frames
from curate_udfs.media.probe import probe_video
from curate_udfs.media.transcode import EncoderSettings, encode_spans, session_error
from curate_udfs.prefetch import prefetch


def test_probe_real_samples(samples):
    bikes = probe_video(str(samples["bikes.mp4"]))
    assert (bikes.width, bikes.height, bikes.fps, bikes.num_frames, bikes.codec) == (640, 272, 25.0, 250, "h264")
    assert bikes.audio_codec is None and bikes.duration_s == pytest.approx(10.0)
    bunny = probe_video(str(samples["bigbuckbunny.mp4"]))
    assert (bunny.width, bunny.height, bunny.audio_codec, bunny.pix_fmt) == (1280, 720, "aac", "yuv420p")
    carphone = probe_video(str(samples["carphone_pristine.mp4"]))
    assert carphone.fps == pytest.approx(29.97, abs=0.01) and carphone.num_frames == 120


@pytest.mark.parametrize("kind,message", [
    ("empty", "empty file"), ("not_media", "not a readable media file"), ("truncated", "not a readable media file"),
    ("garbage_body", "not a readable media file"), ("audio_only", "audio only (aac)"),
])
def test_probe_bad_inputs_name_the_problem(bad_inputs, kind, message):
    with pytest.raises(MediaError, match=message.replace("(", r"\(").replace(")", r"\)")):
        probe_video(bad_inputs[kind])


def test_probe_missing_file():
    with pytest.raises(MediaError, match="cannot read file"):
        probe_video("/no/such/video.mp4")


def test_decode_counts_and_sizes(samples):
    frames = list(iter_small_rgb_frames(str(samples["bikes.mp4"]), 48, 27))
    assert len(frames) == 250
    assert frames[0].shape == (27, 48, 3) and frames[0].dtype == np.uint8
    assert sum(1 for _ in iter_video_frames(str(samples["carphone_pristine.mp4"]))) == 120


def test_decode_part_way_failure_is_media_error(bad_inputs):
    with pytest.raises(MediaError, match="decode failed part-way"):
        for _ in iter_video_frames(bad_inputs["truncated_mid_stream"]):
            pass


def test_decode_memory_does_not_grow_with_length(samples):
    """5301 frames streamed: resident memory grows by far less than holding them would take."""
    path = str(samples["transnetv2_test.mp4"])  # 160x90, 212 s
    process = psutil.Process()
    before = process.memory_info().rss
    count = 0
    for frame in iter_video_frames(path, threads=2):
        frame.to_ndarray(format="rgb24")
        count += 1
    grown = process.memory_info().rss - before
    assert count == 5301
    assert grown < 20 * 2**20 < count * 160 * 90 * 3


def test_prefetch_keeps_order_and_reraises():
    assert list(prefetch(iter(range(100)), depth=3)) == list(range(100))

    def failing():
        yield 1
        raise MediaError("boom")

    with pytest.raises(MediaError, match="boom"):
        list(prefetch(failing()))
    it = prefetch(iter(range(10**9)), depth=2)
    assert next(it) == 0
    it.close()  # consumer stops early: producer thread ends instead of running forever


def test_transcode_spans_decode_back(samples, tmp_path):
    path = str(samples["bikes.mp4"])
    info = probe_video(path)
    spans = [(10, 70), (100, 160), (200, 250)]
    clips = list(encode_spans(iter_video_frames(path), spans, info.frame_rate, EncoderSettings()))
    assert [(c.start_frame, c.end_frame) for c in clips] == spans
    for clip in clips:
        out = tmp_path / f"{clip.start_frame}.mp4"
        out.write_bytes(clip.data)
        with av.open(str(out)) as container:
            stream = container.streams.video[0]
            assert stream.codec_context.name == "h264"
            assert stream.codec_context.pix_fmt == "yuv420p"
            assert (stream.codec_context.width, stream.codec_context.height) == (640, 272)
            assert float(stream.average_rate) == pytest.approx(25.0)
            assert sum(1 for _ in container.decode(stream)) == clip.num_frames == clip.end_frame - clip.start_frame


def test_transcode_content_matches_source(samples):
    """The clip shows the source's frames at those indexes (not shifted by one)."""
    path = str(samples["bikes.mp4"])
    (clip,) = encode_spans(iter_video_frames(path), [(120, 130)], probe_video(path).frame_rate, EncoderSettings(crf=12))
    source = [f.to_ndarray(format="gray") for i, f in enumerate(iter_video_frames(path)) if 118 <= i < 133]
    import io
    with av.open(io.BytesIO(clip.data)) as c:
        first = next(c.decode(video=0)).to_ndarray(format="gray").astype(float)
    errors = [np.abs(first - s.astype(float)).mean() for s in source]
    assert int(np.argmin(errors)) == 2 and min(errors) < 3


def test_transcode_odd_size_and_pixel_format(tmp_path):
    src = str(tmp_path / "odd.mkv")
    with av.open(src, "w") as c:
        s = c.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = 175, 99, "yuv444p"
        for i in range(30):
            frame = av.VideoFrame.from_ndarray(np.full((99, 175, 3), i * 8, np.uint8), format="rgb24")
            c.mux(s.encode(frame.reformat(format="yuv444p")))
        c.mux(s.encode(None))
    (clip,) = encode_spans(iter_video_frames(src), [(0, 30)], probe_video(src).frame_rate, EncoderSettings())
    assert (clip.width, clip.height, clip.num_frames) == (174, 98, 30)


def test_transcode_rejects_overlapping_spans(samples):
    with pytest.raises(ValueError, match="overlap"):
        list(encode_spans(iter([]), [(0, 10), (5, 20)], 25, EncoderSettings()))


def test_encoder_settings_checked():
    with pytest.raises(ValueError):
        EncoderSettings(encoder="mpeg2")
    with pytest.raises(ValueError):
        EncoderSettings(crf=99)
    EncoderSettings().check_available()  # libx264 is in PyAV's FFmpeg
    assert EncoderSettings(encoder="h264_nvenc").codec_options["preset"] == "p4"
    assert issubclass(EnvironmentProblem, RuntimeError)


def test_session_error_opens_a_bare_encoder_session():
    assert session_error("libx264") is None  # x264 runs anywhere; h264_nvenc only where the GPU has NVENC
    assert session_error("no_such_encoder") is not None


def test_failure_mid_clip_leaves_no_temp_files(samples, tmp_path, monkeypatch):
    import glob
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # this test's own: other processes write clips too
    pattern = os.path.join(tempfile.gettempdir(), "cliplake-*.mp4")
    before = set(glob.glob(pattern))
    path = str(samples["carphone_pristine.mp4"])

    def frames_then_failure():
        for i, frame in enumerate(iter_video_frames(path)):
            if i == 80:
                raise MediaError("decode failed part-way")
            yield frame

    clips = encode_spans(frames_then_failure(), [(0, 50), (60, 110)], probe_video(path).frame_rate, EncoderSettings())
    assert next(clips).num_frames == 50
    with pytest.raises(MediaError):
        next(clips)  # the second clip was half-written
    assert set(glob.glob(pattern)) == before
