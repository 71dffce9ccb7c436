"""Commit waves and task packing for long runs (pure Python)."""

import pytest

from jobs import work_plan


def test_tasks_packed_largest_first_to_the_least_loaded():
    assert work_plan.pack_tasks([5, 1, 4, 2], 2) == [[0, 1], [2, 3]]  # 5+1 and 4+2
    tasks = work_plan.pack_tasks([100] + [1] * 99, 4)
    assert sorted(len(t) for t in tasks) == [1, 33, 33, 33]  # the big one alone, the small ones spread
    assert sorted(i for t in tasks for i in t) == list(range(100))
    assert work_plan.pack_tasks([0] * 10, 3) == [[0, 3, 6, 9], [1, 4, 7], [2, 5, 8]]  # unknown sizes: by count
    assert work_plan.pack_tasks([], 3) == []


def test_task_count_fills_cores_and_grows_with_bytes():
    assert work_plan.num_tasks([0] * 5000, parallelism=2) == 4  # 5,000 missing files: four tasks, not 5,000
    assert work_plan.num_tasks([1] * 3, parallelism=8) == 3
    big = [work_plan.TARGET_TASK_BYTES] * 100
    assert work_plan.num_tasks(big, parallelism=2) == 100


def test_waves_sized_by_bytes_then_by_measured_speed():
    sizer = work_plan.WaveSizer(every_videos=10, every_seconds=60, parallelism=1)
    mb = 1 << 20
    first = work_plan.FIRST_WAVE_BYTES_PER_CORE // mb  # 32 videos of 1 MB fit the first wave; 10 is the cap
    assert [len(w) for w, _ in work_plan.waves(zip(range(25), [mb] * 25), sizer)] == [10, 10, 5] and first >= 10
    sizer.bytes_done, sizer.seconds_done = 10 * mb, 100.0  # measured: 0.1 MB/s, so 6 MB per 60 s wave
    assert [len(w) for w, _ in work_plan.waves(zip(range(13), [mb] * 13), sizer)] == [6, 6, 1]
    assert [len(w) for w, _ in work_plan.waves(zip([0, 1], [100 * mb, mb]), sizer)] == [1, 1]  # a big one still gets a wave
    missing = work_plan.WaveSizer(every_videos=10000, every_seconds=600, parallelism=2)
    assert [len(w) for w, _ in work_plan.waves(zip(range(5000), [0] * 5000), missing)] == [5000]  # missing files cost nothing
    assert work_plan.work_bytes(None) == work_plan.UNKNOWN_VIDEO_BYTES and work_plan.work_bytes(7) == 7
    with pytest.raises(ValueError, match="--commit-every-videos"):
        work_plan.WaveSizer(every_videos=0, every_seconds=1, parallelism=1)


def test_waves_read_the_pending_rows_lazily():
    """Only one wave (and the next row) is held at a time, so a 10M-row listing streams through."""
    read = []

    def rows():
        for i in range(100):
            read.append(i)
            yield i, 1

    first, sizes = next(work_plan.waves(rows(), work_plan.WaveSizer(every_videos=10, every_seconds=60, parallelism=1)))
    assert first == list(range(10)) and sizes == [1] * 10 and len(read) == 11
