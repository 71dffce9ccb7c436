"""How a long run is cut up: videos into commit waves, a wave's videos into Spark tasks.

Pure Python (no Spark), so the planning is testable alone. A wave is what one commit makes
durable; a task is what one Python worker does in one go. Per-task overhead (scheduling,
serialisation, a worker's setup) is paid per task, not per video, so small videos share tasks.
"""

import heapq
import math
import time
from dataclasses import dataclass, field

# A task should carry about this much video, unless that leaves cores idle (measured: per-task
# overhead is ~0.2 s, so a task of a few seconds of work keeps it a small share).
TARGET_TASK_BYTES = 256 << 20
TASKS_PER_CORE = 2  # at least this many tasks per core, so one slow task does not hold a wave


def pack_tasks(sizes: list[int], num_tasks: int) -> list[list[int]]:
    """Indexes of ``sizes`` per task: largest first, each to the task with the least so far (LPT).

    Example::

        pack_tasks([5, 1, 4, 2], 2)   # [[0, 3], [2, 1]]: 7 and 5

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


@dataclass
class WaveSizer:
    """The size of the next commit wave: at most ``every_videos`` videos, and about ``every_seconds`` of work.

    The first wave is small (a few tasks' worth) to measure; later waves take as many videos as
    the measured seconds per video fit in ``every_seconds``.
    """

    every_videos: int
    every_seconds: float
    parallelism: int
    seconds_per_video: float | None = None
    _started: float = field(default=0.0, repr=False)

    def __post_init__(self):
        if self.every_videos < 1:
            raise ValueError(f"--commit-every-videos must be >= 1, got {self.every_videos}")
        if self.every_seconds <= 0:
            raise ValueError(f"--commit-every-seconds must be > 0, got {self.every_seconds}")

    def next_size(self) -> int:
        if self.seconds_per_video is None:
            guess = 4 * TASKS_PER_CORE * self.parallelism
        else:
            guess = math.floor(self.every_seconds / max(self.seconds_per_video, 1e-3))
        return max(1, min(self.every_videos, guess))

    def start(self) -> None:
        self._started = time.perf_counter()

    def done(self, videos: int) -> None:
        if videos:
            self.seconds_per_video = (time.perf_counter() - self._started) / videos


def waves(items: list, sizer: WaveSizer):
    """``items`` in consecutive waves sized by ``sizer`` (call ``sizer.start``/``done`` around each)."""
    start = 0
    while start < len(items):
        size = sizer.next_size()
        yield items[start:start + size]
        start += size
