"""Packing a bin's samples into tars, as Cosmos-Curate's shard step fills them: greedy, by bytes, in order."""

from typing import Sequence


def fill_tars(sizes: Sequence[int], target_bytes: int, min_clips: int = 1, drop_small: bool = False) -> list[int | None]:
    """The tar index of each sample (None: left out), filling tars in the order given.

    Example::

        fill_tars([40, 40, 40, 10], target_bytes=100)        # [0, 0, 1, 1]
        fill_tars([40, 40, 40], 100, min_clips=2, drop_small=True)  # [0, 0, None]

    A sample that would take the current tar past ``target_bytes`` starts the next one (a sample
    larger than the target gets a tar of its own). With ``drop_small``, the last tar is left out
    when it holds fewer than ``min_clips`` samples; only the last one can be that small.
    """
    if target_bytes < 1 or min_clips < 1:
        raise ValueError(f"target bytes and min clips must be >= 1, got {target_bytes} and {min_clips}")
    indexes: list[int | None] = []
    tar, filled, count = 0, 0, 0
    for size in sizes:
        if count and filled + size > target_bytes:
            tar, filled, count = tar + 1, 0, 0
        indexes.append(tar)
        filled, count = filled + size, count + 1
    if drop_small and 0 < count < min_clips:
        indexes[len(indexes) - count:] = [None] * count
    return indexes
