"""Deterministic ids, as Cosmos-Curate makes them, so outputs line up with theirs."""

import uuid


def video_id(source_path: str) -> str:
    """``uuid5(NAMESPACE_URL, source_path)`` of the path exactly as it was listed."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, source_path))


def clip_id(source_path: str, start_frame: int, end_frame: int) -> str:
    """``uuid5(NAMESPACE_URL, f"{source_path}_{start_frame}_{end_frame}")``; ``end_frame`` exclusive."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{source_path}_{start_frame}_{end_frame}"))


def fixed_stride_clip_id(source_path: str, start_s: float, end_s: float) -> str:
    """A fixed-stride clip's id as Cosmos-Curate v1.4 makes it: ``uuid5(NAMESPACE_URL, f"{path}_{start_s}_{end_s}")``
    with its float seconds written by Python (``/in/a.mp4_0.0_10.0``)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{source_path}_{float(start_s)}_{float(end_s)}"))
