"""Synthetic videos with known content: hard cuts at chosen frames, static or panning scenes.

Each scene is a textured pattern of its own colours moving in its own direction, so a cut
between scenes is as clear to TransNetV2 as a real hard cut, and nothing inside a scene is.
"""

from fractions import Fraction
from typing import Sequence

import av
import numpy as np


def scene_frame(scene: int, index: int, width: int, height: int, speed: float = 2.0) -> np.ndarray:
    """Frame ``index`` of scene number ``scene``: stripes and blobs in scene-specific colours, panned by ``speed`` px/frame."""
    rng = np.random.default_rng(1000 + scene)
    colours = rng.integers(0, 256, size=(4, 3))
    angle = rng.uniform(0, 2 * np.pi)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    shift = index * speed
    u = (x + shift * np.cos(angle)) * (0.05 + 0.03 * (scene % 3))
    v = (y + shift * np.sin(angle)) * (0.04 + 0.02 * (scene % 4))
    pattern = (np.sin(u) + np.cos(v) + np.sin((u + v) * 0.5)) / 3.0  # in [-1, 1]
    level = np.clip(((pattern + 1) * 2).astype(np.int32), 0, 3)
    return colours[level].astype(np.uint8)


def write_video(path: str, scene_lengths: Sequence[int], *, width: int = 320, height: int = 180, fps: int = 24,
                speed: float = 2.0, codec: str = "libx264") -> list[int]:
    """Write scenes of the given frame counts back to back; returns the frame indexes where cuts are."""
    rate = Fraction(fps)
    with av.open(path, "w") as container:
        stream = container.add_stream(codec, rate=rate)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for scene, length in enumerate(scene_lengths):
            for index in range(length):
                frame = av.VideoFrame.from_ndarray(scene_frame(scene, index, width, height, speed), format="rgb24")
                container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return [int(c) for c in np.cumsum(scene_lengths)[:-1]]


# The known-cuts video the tests and smoke checks use: 24 fps, cuts at frames 100 and 180.
THREE_SCENES = (100, 80, 130)
THREE_SCENES_FPS = 24
