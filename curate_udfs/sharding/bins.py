"""Dataset bins and paths, as Cosmos-Curate v1.4's shard code lays out its webdataset.

Bins: resolution (short side), aspect ratio (W/H) and clip duration; one sample per clip.
The video2world folder dataset has no bins: three flat folders named by window.
"""

import math

# Short side at least this many pixels -> bin name; below the last, "lt_720".
RESOLUTION_BINS = ((1080, "1080"), (720, "720"))
RESOLUTION_BELOW = "lt_720"
# (low, high] bounds of W/H and the bin's name; contiguous, as Cosmos-Curate's standard video bins.
ASPECT_RATIO_BINS = ((0.0, 0.65, "9_16"), (0.65, 0.88, "3_4"), (0.88, 1.16, "1_1"), (1.16, 1.55, "4_3"), (1.55, 10.0, "16_9"))
# [low, high] seconds of clip duration (num_frames / framerate), the first match wins (so 10 s is 5_10,
# as in Cosmos-Curate's code); a clip under 5 s fits no bin.
DURATION_BINS = ((5.0, 10.0, "5_10"), (10.0, 30.0, "10_30"), (30.0, math.inf, "30_inf"))

KINDS = ("video", "metas", "t5_xxl")  # one tar tree per member kind, as Cosmos-Curate's layout
EXTENSIONS = {"video": "mp4", "metas": "json", "t5_xxl": "pickle"}
# The video2world folder dataset: a flat folder per kind; the caption is plain text there.
VIDEO2WORLD_FOLDERS = {"video": "videos", "metas": "metas", "t5_xxl": "t5_xxl"}
VIDEO2WORLD_EXTENSIONS = {"video": "mp4", "metas": "txt", "t5_xxl": "pickle"}


def resolution_bin(width: int, height: int) -> str:
    """``1080`` when the short side is >= 1080, ``720`` when >= 720, else ``lt_720``."""
    short = min(width, height)
    return next((name for least, name in RESOLUTION_BINS if short >= least), RESOLUTION_BELOW)


def aspect_ratio_bin(width: int, height: int) -> str | None:
    """``16_9``, ``4_3``, ``1_1``, ``3_4`` or ``9_16`` by W/H; None beyond 10:1 (no bin, like Cosmos)."""
    if width <= 0 or height <= 0:
        raise ValueError(f"frame size must be positive, got {width}x{height}")
    ratio = width / height
    for low, high, name in ASPECT_RATIO_BINS:
        if low < ratio <= high:
            return name
    return None


def duration_bin(num_frames: int, framerate: float) -> str | None:
    """``5_10``, ``10_30`` or ``30_inf`` by the clip's duration in seconds; None under 5 s (no bin)."""
    if framerate <= 0:
        raise ValueError(f"frame rate must be positive, got {framerate}")
    seconds = num_frames / framerate
    return next((name for low, high, name in DURATION_BINS if low <= seconds <= high), None)


def bin_path(version: str, resolution: str, aspect_ratio: str, duration: str) -> str:
    """``{version}/resolution_{r}/aspect_ratio_{a}/duration_{d}``, relative to the dataset root."""
    return f"{version}/resolution_{resolution}/aspect_ratio_{aspect_ratio}/duration_{duration}"


def tar_path(bin_dir: str, kind: str, part: int, tar: int) -> str:
    """``{bin_dir}/{kind}/part_{part:06d}/{tar:06d}.tar``: the three kinds share part and tar numbers."""
    return f"{bin_dir}/{kind}/part_{part:06d}/{tar:06d}.tar"


def video2world_key(clip_id: str, start_frame: int, end_frame: int) -> str:
    """``{clip_id}_{start}_{end}`` with ``end_frame`` exclusive in, **inclusive** out (``0_255`` for frames 0..255)."""
    return f"{clip_id}_{start_frame}_{end_frame - 1}"


def video2world_path(kind: str, key: str) -> str:
    """``videos/{key}.mp4``, ``metas/{key}.txt`` or ``t5_xxl/{key}.pickle``, relative to the dataset root."""
    return f"{VIDEO2WORLD_FOLDERS[kind]}/{key}.{VIDEO2WORLD_EXTENSIONS[kind]}"
