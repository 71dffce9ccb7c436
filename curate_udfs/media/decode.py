"""Streaming decode: one frame at a time, so memory never grows with the video's length."""

from typing import Iterator

import av
import numpy as np

from curate_udfs.errors import MediaError
from curate_udfs.media.probe import open_container


def iter_video_frames(path: str, *, threads: int = 1) -> Iterator[av.VideoFrame]:
    """Decoded frames of the first video stream, in presentation order.

    ``threads`` is FFmpeg's decoder thread count (frame and slice threading). Decode errors
    part-way raise :class:`MediaError`.
    """
    with open_container(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        stream.codec_context.thread_count = max(1, threads)
        try:
            yield from container.decode(stream)
        except av.error.FFmpegError as e:
            raise MediaError(f"decode failed part-way: {type(e).__name__}: {e.strerror or e}") from None


def iter_small_rgb_frames(
    path: str, width: int, height: int, *, threads: int = 1, interpolation: str = "BICUBIC"
) -> Iterator[np.ndarray]:
    """Frames scaled to ``width`` x ``height`` as uint8 RGB arrays of shape (height, width, 3)."""
    for frame in iter_video_frames(path, threads=threads):
        yield frame.to_ndarray(width=width, height=height, format="rgb24", interpolation=interpolation)
