"""How a long run is cut up: videos into commit waves, a wave's videos into Spark tasks.

Pure Python (no Spark), so the planning is testable alone. A wave is what one commit makes
durable; a task is what one Python worker does in one go. Per-task overhead (scheduling,
serialisation, a worker's setup) is paid per task, not per video, so small videos share tasks.
"""

import argparse
import heapq
import math
import time
from dataclasses import dataclass, field
from typing import Iterable, Iterator

# Each wave costs a few commits (Spark's MERGE: about 2 s each here on a small lake, more on a big one;
# delta-rs: milliseconds, jobs/lake_rs.py): waves of 10 minutes keep commits around 1% of a run and lose
# at most 10 minutes to a crash.
COMMIT_EVERY_VIDEOS = 10000
COMMIT_EVERY_SECONDS = 600.0

# A task should carry about this much video, unless that leaves cores idle (measured: per-task
# overhead is ~0.2 s, so a task of a few seconds of work keeps it a small share).
TARGET_TASK_BYTES = 256 << 20
TASKS_PER_CORE = 2  # at least this many tasks per core, so one slow task does not hold a wave


def pack_tasks(sizes: list[int], num_tasks: int) -> list[list[int]]:
    """Indexes of ``sizes`` per task: largest first, each to the task with the least so far (LPT).

    Example::

        pack_tasks([5, 1, 4, 2], 2)   # [[0, 1], [2, 3]]: 6 and 6

    A size of 0 (unknown: remote or missing) counts as 1, so such videos are spread by count.
    """
    if num_tasks < 1:
        raise ValueError(f"number of tasks must be >= 1, got {num_tasks}")
    tasks: list[list[int]] = [[] for _ in range(min(num_tasks, len(sizes)) or 1)]
    heap = [(0, i) for i in range(len(tasks))]
    for index in sorted(range(len(sizes)), key=lambda i: (-max(sizes[i], 1), i)):
        load, task = heapq.heappop(heap)
        tasks[task].append(index)
        heapq.heappush(heap, (load + max(sizes[index], 1), task))
    return [t for t in tasks if t]


def num_tasks(sizes: list[int], parallelism: int) -> int:
    """Tasks for a wave: enough to fill every core twice, more when the wave is big, never more than videos."""
    by_bytes = math.ceil(sum(sizes) / TARGET_TASK_BYTES)
    return max(1, min(len(sizes), max(TASKS_PER_CORE * parallelism, by_bytes)))


# A video whose size is unknown (an s3:// path from a JSON list) counts as this much work.
UNKNOWN_VIDEO_BYTES = 64 << 20
# The first wave, before any speed is measured, holds about this much video per core (a few minutes of work).
FIRST_WAVE_BYTES_PER_CORE = 32 << 20


def work_bytes(size: int | None) -> int:
    """How much work a video is, in bytes: its size, or a guess when unknown."""
    return UNKNOWN_VIDEO_BYTES if size is None else size


@dataclass
class WaveSizer:
    """Commit waves of at most ``every_videos`` videos and about ``every_seconds`` of processing.

    Work is measured in video bytes, a steadier guide than a count: the first wave holds
    ``FIRST_WAVE_BYTES_PER_CORE`` per core, later ones what the measured bytes per second fit in
    ``every_seconds``. Files of 0 bytes (missing: each becomes an error row) cost nothing.
    """

    every_videos: int
    every_seconds: float
    parallelism: int
    bytes_done: int = 0
    seconds_done: float = 0.0
    _started: float = field(default=0.0, repr=False)

    def __post_init__(self):
        if self.every_videos < 1:
            raise ValueError(f"--commit-every-videos must be >= 1, got {self.every_videos}")
        if self.every_seconds <= 0:
            raise ValueError(f"--commit-every-seconds must be > 0, got {self.every_seconds}")

    def budget_bytes(self) -> float:
        if not self.bytes_done or not self.seconds_done:
            return FIRST_WAVE_BYTES_PER_CORE * self.parallelism
        return self.every_seconds * self.bytes_done / self.seconds_done

    def start(self) -> None:
        self._started = time.perf_counter()

    def done(self, wave_bytes: int) -> None:
        """The wave just processed held ``wave_bytes``: its time since :meth:`start` refines the speed."""
        self.bytes_done += wave_bytes
        self.seconds_done += time.perf_counter() - self._started


def waves(pending: Iterable[tuple[object, int]], sizer: WaveSizer) -> Iterator[tuple[list, list[int]]]:
    """``(items, sizes)``: consecutive runs of the ``(item, size)`` pairs within ``sizer``'s budget (at least one each).

    ``pending`` is read lazily (a stream of rows from Spark), so only one wave is held at a time.
    Call ``sizer.start()`` and ``sizer.done(sum(sizes))`` around each wave's processing.
    """
    items, sizes, total, budget = [], [], 0, sizer.budget_bytes()
    for item, size in pending:
        if items and (len(items) >= sizer.every_videos or total + size > budget):
            yield items, sizes
            items, sizes, total, budget = [], [], 0, sizer.budget_bytes()  # (after the caller's sizer.done)
        items.append(item)
        sizes.append(size)
        total += size
    if items:
        yield items, sizes


def add_wave_arguments(parser: argparse.ArgumentParser) -> None:
    """Commit waves and the dry run (split and caption)."""
    g = parser.add_argument_group("durable progress")
    g.add_argument("--commit-every-videos", type=int, default=COMMIT_EVERY_VIDEOS,
                   help="commit the rows of at most this many videos at a time; a killed run loses at most one wave")
    g.add_argument("--commit-every-seconds", type=float, default=COMMIT_EVERY_SECONDS,
                   help="and waves of about this much processing (sized by video bytes and the measured bytes per second)")
    g.add_argument("--dry-run", action="store_true", help="print the plan (videos listed, pending, tasks, waves) and stop")
