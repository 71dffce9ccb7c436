"""Read a video's metadata from its container, with a clear error for anything unreadable."""

import os
from dataclasses import asdict, dataclass
from fractions import Fraction

import av

from curate_udfs.errors import MediaError


@dataclass(frozen=True)
class VideoInfo:
    """What the container says about the first video stream (``num_frames`` may be an estimate)."""

    num_bytes: int
    duration_s: float
    fps: float
    frame_rate: Fraction
    num_frames: int
    width: int
    height: int
    codec: str
    pix_fmt: str
    bit_rate: int
    audio_codec: str | None

    def as_row(self) -> dict:
        row = asdict(self)
        row.pop("frame_rate")
        return row


def open_container(path: str) -> av.container.InputContainer:
    """``av.open`` with FFmpeg's errors turned into a :class:`MediaError` that names the cause."""
    try:
        return av.open(path, metadata_errors="ignore")
    except FileNotFoundError:
        raise MediaError(f"file not found: {path}") from None
    except av.error.FFmpegError as e:
        raise MediaError(f"not a readable media file ({type(e).__name__}: {e.strerror or e})") from None


def probe_video(path: str) -> VideoInfo:
    """Metadata of ``path``'s first video stream.

    Raises :class:`MediaError` for an empty file, a file FFmpeg cannot open, or one without video.
    """
    try:
        num_bytes = os.path.getsize(path)
    except OSError as e:
        raise MediaError(f"cannot read file: {e}") from None
    if num_bytes == 0:
        raise MediaError("empty file (0 bytes)")
    with open_container(path) as container:
        audio = container.streams.audio[0].codec_context.name if container.streams.audio else None
        if not container.streams.video:
            kind = f"audio only ({audio})" if audio else "no video stream"
            raise MediaError(f"not a video: {kind}")
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        if not rate or rate <= 0:
            raise MediaError("video stream has no frame rate")
        ctx = stream.codec_context
        if not ctx.width or not ctx.height:
            raise MediaError("video stream has no frame size")
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration = container.duration / av.time_base
        else:
            duration = 0.0
        num_frames = stream.frames or int(round(duration * float(rate)))
        return VideoInfo(
            num_bytes=num_bytes,
            duration_s=duration,
            fps=float(rate),
            frame_rate=Fraction(rate),
            num_frames=num_frames,
            width=ctx.width,
            height=ctx.height,
            codec=ctx.name,
            pix_fmt=ctx.pix_fmt or "",
            bit_rate=int(container.bit_rate or 0),
            audio_codec=audio,
        )
