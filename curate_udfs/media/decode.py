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
    path: str, width: int, height: int, *, threads: int = 1, interpolation: str = "BICUBIC",
    kept: "KeptFrames | None" = None,
) -> Iterator[np.ndarray]:
    """Frames scaled to ``width`` x ``height`` as uint8 RGB arrays of shape (height, width, 3).

    With ``kept``, the full frames are kept as well while they fit its budget."""
    frames = iter_video_frames(path, threads=threads)
    for frame in kept.keep(frames) if kept is not None else frames:
        yield frame.to_ndarray(width=width, height=height, format="rgb24", interpolation=interpolation)


class KeptFrames:
    """Full frames kept while they fit in ``budget_bytes``, so a second pass need not decode again.

    Example::

        kept = KeptFrames(512 * 2**20)
        probabilities = predict_cut_probabilities(iter_small_rgb_frames(path, 48, 27, kept=kept))
        frames = kept.drain() or iter_video_frames(path)  # every frame again, decoded once

    Once the frames stop fitting, all kept ones are dropped and no more are kept: memory is the
    budget at most, whatever the video's length.
    """

    def __init__(self, budget_bytes: int):
        self.budget, self.used, self._frames = budget_bytes, 0, []

    def keep(self, frames: Iterator[av.VideoFrame]) -> Iterator[av.VideoFrame]:
        for frame in frames:
            if self._frames is not None:
                self.used += sum(plane.buffer_size for plane in frame.planes)
                if self.used <= self.budget:
                    self._frames.append(frame)
                else:
                    self._frames = None
            yield frame

    def drain(self) -> Iterator[av.VideoFrame] | None:
        """The kept frames in order, each let go once handed out; None when they did not fit."""
        if self._frames is None:
            return None
        frames, self._frames = self._frames, None
        frames.reverse()
        return (frames.pop() for _ in range(len(frames)))
