"""Deterministic ids, as Cosmos-Curate makes them, so outputs line up with theirs."""

import uuid


def video_id(source_path: str) -> str:
    """``uuid5(NAMESPACE_URL, source_path)`` of the path exactly as it was listed."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, source_path))


def clip_id(source_path: str, start_frame: int, end_frame: int) -> str:
    """``uuid5(NAMESPACE_URL, f"{source_path}_{start_frame}_{end_frame}")``; ``end_frame`` exclusive."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{source_path}_{start_frame}_{end_frame}"))
