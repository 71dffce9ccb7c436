"""Rules that turn cut predictions or strides into clip spans, as Cosmos-Curate applies them.

All spans are ``(start_frame, end_frame)`` with ``end_frame`` exclusive.
"""

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np


def seconds_to_frames(seconds: float, fps: float) -> int:
    """Frames needed to last at least ``seconds`` (tolerant of float noise like 2.0 * 29.97)."""
    return max(0, math.ceil(seconds * fps - 1e-6))


def predictions_to_scenes(predictions: np.ndarray, threshold: float) -> list[tuple[int, int]]:
    """Runs of frames whose cut probability is at most ``threshold``; the whole video if none."""
    is_cut = np.asarray(predictions) > threshold
    n = len(is_cut)
    edges = np.flatnonzero(np.diff(np.concatenate([[True], is_cut, [True]]).astype(np.int8)))
    # edges alternate: a run of non-cut frames starts (cut -> not) and ends (not -> cut)
    scenes = [(int(s), int(e)) for s, e in zip(edges[::2], edges[1::2])]
    return scenes or [(0, n)]


@dataclass(frozen=True)
class TransNetV2Rules:
    """Cosmos-Curate's TransNetV2 defaults: threshold 0.4, clips of max(2 s, 48 frames) to 60 s."""

    threshold: float = 0.4
    min_length_s: float = 2.0
    min_length_frames: int = 48
    max_length_s: float | None = 60.0
    max_length_mode: Literal["stride", "truncate"] = "stride"
    crop_s: float = 0.5

    def __post_init__(self):
        if not 0.0 < self.threshold < 1.0:
            raise ValueError(f"transnetv2 threshold must be within (0, 1), got {self.threshold}")
        if self.min_length_s < 0 or self.min_length_frames < 1:
            raise ValueError("transnetv2 minimum length must be >= 0 s and >= 1 frame")
        if self.max_length_s is not None and self.max_length_s < self.min_length_s:
            raise ValueError(
                f"transnetv2 max length {self.max_length_s} s is below the minimum {self.min_length_s} s"
            )
        if self.max_length_mode not in ("stride", "truncate"):
            raise ValueError(f"max length mode must be stride or truncate, got {self.max_length_mode!r}")
        if self.crop_s < 0:
            raise ValueError(f"crop must be >= 0 s, got {self.crop_s}")

    def spans(self, predictions: np.ndarray, fps: float) -> list[tuple[int, int]]:
        """Clip spans from per-frame cut probabilities of a video at ``fps``."""
        min_frames = max(seconds_to_frames(self.min_length_s, fps), self.min_length_frames)
        max_frames = None if self.max_length_s is None else max(min_frames, seconds_to_frames(self.max_length_s, fps))
        crop = seconds_to_frames(self.crop_s, fps)
        scenes = predictions_to_scenes(predictions, self.threshold)
        if not (np.asarray(predictions) > self.threshold).any():
            crop = 0  # no cut found: the whole video is the clip, nothing blends into a transition
        out: list[tuple[int, int]] = []
        for start, end in scenes:
            if crop and end - start - 2 * crop >= min_frames:
                start, end = start + crop, end - crop  # shed frames blended into a transition
            if end - start < min_frames:
                continue
            if max_frames is None or end - start <= max_frames:
                out.append((start, end))
            elif self.max_length_mode == "truncate":
                out.append((start, start + max_frames))
            else:
                out.extend(stride_spans(start, end, max_frames, min_frames))
        return out


def stride_spans(start: int, end: int, length: int, min_frames: int) -> list[tuple[int, int]]:
    """Consecutive spans of ``length`` frames over ``[start, end)``; a last piece under ``min_frames`` is dropped."""
    spans = [(s, min(s + length, end)) for s in range(start, end, length)]
    return [(s, e) for s, e in spans if e - s >= min_frames]


@dataclass(frozen=True)
class FixedStrideRules:
    """Cosmos-Curate's fixed-stride splitting: 10 s clips, stride = length, clips under 2 s dropped."""

    split_duration_s: float = 10.0
    min_clip_length_s: float = 2.0

    def __post_init__(self):
        if self.split_duration_s <= 0:
            raise ValueError(f"fixed stride split duration must be > 0 s, got {self.split_duration_s}")
        if self.min_clip_length_s < 0:
            raise ValueError(f"fixed stride minimum clip length must be >= 0 s, got {self.min_clip_length_s}")

    def spans(self, num_frames: int, fps: float) -> list[tuple[int, int]]:
        length = max(1, seconds_to_frames(self.split_duration_s, fps))
        return stride_spans(0, num_frames, length, max(1, seconds_to_frames(self.min_clip_length_s, fps)))

    def span_seconds(self, num_frames: int, fps: float) -> list[tuple[float, float]]:
        """Each stride's (start, end) in Cosmos-Curate's float seconds, in order: its loop, whose
        floats name its fixed-stride clips (span i of :meth:`spans` is stride i here)."""
        duration = num_frames / fps if fps > 0 else -1.0
        out, start = [], 0.0
        while start < duration:
            out.append((start, min(start + self.split_duration_s, duration)))
            start += self.split_duration_s
        return out
