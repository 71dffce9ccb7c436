"""Encode spans of a decoded frame stream into H.264 mp4 clips (yuv420p), in one pass."""

import os
import tempfile
from dataclasses import dataclass
from fractions import Fraction
from typing import Iterable, Iterator, Literal

import av
from av.video.frame import PictureType

from curate_udfs.errors import EnvironmentProblem

Encoder = Literal["libx264", "h264_nvenc"]
_DEFAULT_PRESET = {"libx264": "veryfast", "h264_nvenc": "p4"}


@dataclass(frozen=True)
class EncoderSettings:
    """H.264 encoder choice and quality; ``preset=None`` picks a fast preset for the encoder."""

    encoder: Encoder = "libx264"
    preset: str | None = None
    crf: int = 23
    threads: int = 1

    def __post_init__(self):
        if self.encoder not in _DEFAULT_PRESET:
            raise ValueError(f"transcode encoder must be one of {sorted(_DEFAULT_PRESET)}, got {self.encoder!r}")
        if not 0 <= self.crf <= 51:
            raise ValueError(f"crf must be within 0..51, got {self.crf}")
        if self.threads < 0:
            raise ValueError(f"encoder threads must be >= 0 (0 = FFmpeg decides), got {self.threads}")

    @property
    def codec_options(self) -> dict[str, str]:
        preset = self.preset or _DEFAULT_PRESET[self.encoder]
        if self.encoder == "libx264":
            return {"preset": preset, "crf": str(self.crf)}
        return {"preset": preset, "rc": "vbr", "cq": str(self.crf)}

    def check_available(self) -> None:
        """Raise :class:`EnvironmentProblem` when this FFmpeg build lacks the encoder."""
        try:
            av.codec.Codec(self.encoder, "w")
        except Exception:
            raise EnvironmentProblem(
                f"FFmpeg in PyAV {av.__version__} has no {self.encoder} encoder; "
                "use --transcode-encoder libx264 or install a PyAV wheel that bundles it"
            ) from None


def session_error(encoder: Encoder) -> str | None:
    """Why FFmpeg cannot open an ``encoder`` session on this machine, in FFmpeg's words; None when it can.

    Example::

        session_error("h264_nvenc")   # None where the GPU has NVENC; without one, for example
                                      # 'PermissionError: [Errno 1] Operation not permitted: avcodec_open2("h264_nvenc", {})'

    :meth:`EncoderSettings.check_available` asks whether FFmpeg was built with the encoder; this
    encodes one small frame, which for ``h264_nvenc`` needs an NVIDIA GPU with an NVENC engine
    (H100 and H200 have none) and its driver. No cliplake options are passed, so a failure is the
    machine's, not the settings'.
    """
    try:
        context = av.CodecContext.create(encoder, "w")
        context.width, context.height, context.pix_fmt = 256, 144, "yuv420p"
        context.time_base = Fraction(1, 24)
        context.encode(av.VideoFrame(256, 144, "yuv420p"))
        context.encode(None)
    except Exception as e:
        return f"{type(e).__name__}: {e}"
    return None


@dataclass(frozen=True)
class EncodedClip:
    start_frame: int
    end_frame: int  # exclusive
    data: bytes
    width: int
    height: int

    @property
    def num_frames(self) -> int:
        return self.end_frame - self.start_frame


class _ClipWriter:
    """One mp4: frames in, bytes out.

    It is written to a temporary file because moving the index to the front (faststart, so
    readers can stream the clip) makes the muxer reopen its output by name.
    """

    def __init__(self, frame_rate: Fraction, width: int, height: int, settings: EncoderSettings):
        fd, self.path = tempfile.mkstemp(suffix=".mp4", prefix="cliplake-")
        os.close(fd)
        self.container = av.open(self.path, "w", format="mp4", options={"movflags": "+faststart"})
        self.stream = self.container.add_stream(settings.encoder, rate=frame_rate, options=settings.codec_options)
        # yuv420p needs even sides: drop the odd last row/column instead of rescaling.
        self.width, self.height = width - width % 2, height - height % 2
        self.stream.width, self.stream.height = self.width, self.height
        self.stream.pix_fmt = "yuv420p"
        self.stream.codec_context.thread_count = settings.threads
        self.time_base = Fraction(1, 1) / frame_rate
        self.count = 0

    def add(self, frame: av.VideoFrame) -> None:
        if frame.format.name != "yuv420p" or frame.width != self.width or frame.height != self.height:
            frame = frame.reformat(width=self.width, height=self.height, format="yuv420p")
        frame.pts = self.count
        frame.time_base = self.time_base
        frame.pict_type = PictureType.NONE  # let the encoder place key frames, not the source's
        self.container.mux(self.stream.encode(frame))
        self.count += 1

    def finish(self) -> bytes:
        try:
            self.container.mux(self.stream.encode(None))
            self.container.close()
            with open(self.path, "rb") as f:
                return f.read()
        finally:
            os.remove(self.path)

    def abort(self) -> None:
        self.container.close()
        os.remove(self.path)


def encode_spans(
    frames: Iterable[av.VideoFrame],
    spans: list[tuple[int, int]],
    frame_rate: Fraction,
    settings: EncoderSettings,
) -> Iterator[EncodedClip]:
    """Encode each ``[start, end)`` frame span of ``frames`` into its own mp4, yielded as it completes.

    ``spans`` must be sorted and non-overlapping; frame indexes count decoded frames from 0.
    Decoding stops after the last span. A span cut short by the end of the stream yields the
    frames it got.
    """
    spans = sorted(spans)
    for (_, prev_end), (start, _) in zip(spans, spans[1:]):
        if start < prev_end:
            raise ValueError(f"spans overlap at frame {start}")
    if not spans:
        return
    pending = iter(spans)
    span = next(pending)
    writer: _ClipWriter | None = None
    try:
        for index, frame in enumerate(frames):
            if index < span[0]:
                continue
            if writer is None:
                writer = _ClipWriter(frame_rate, frame.width, frame.height, settings)
            writer.add(frame)
            if index == span[1] - 1:
                done, writer = writer, None
                yield EncodedClip(span[0], span[1], done.finish(), done.width, done.height)
                span = next(pending, None)
                if span is None:
                    return
        if writer is not None:
            done, writer = writer, None
            yield EncodedClip(span[0], span[0] + done.count, done.finish(), done.width, done.height)
    finally:
        if writer is not None:  # stopped part-way by an error or the consumer
            writer.abort()
