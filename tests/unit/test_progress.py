"""Progress lines from a status tracker: their wording (rate, ETA), when plain lines come, the redraw; no Spark."""

import io
import os
import re
import threading
import time
from types import SimpleNamespace

import pytest

from jobs import progress
from jobs.progress import ProgressLines, StageProgress, format_line


def test_line_has_done_total_rate_and_eta():
    # 3 of 8 tasks in 40 s: 4.5 tasks/min, 5 left take 66.7 s
    stage = StageProgress(7, "mapInPandas at /work/main/jobs/split_annotate.py:301", 8, 3, 2, 0, 40.0)
    assert format_line(stage) == ("[stage 7] mapInPandas at split_annotate.py:301: "
                                  "3/8 tasks, 2 running, 40s, 4.5 tasks/min, ETA 1m07s")
    fast = StageProgress(2, "collect at listing.py:88", 1000, 600, 4, 1, 50.0)  # 12 tasks/s, 400 left
    assert format_line(fast) == "[stage 2] collect at listing.py:88: 600/1000 tasks, 4 running, 1 failed, 50s, 12.0 tasks/s, ETA 33s"


def test_line_without_a_finished_task_has_no_rate_or_eta():
    assert format_line(StageProgress(0, "count at x.py:1", 4, 0, 0, 0, 0.2)) == "[stage 0] count at x.py:1: 0/4 tasks, 0s"


@pytest.mark.parametrize("seconds, text", [(0.4, "0s"), (59.6, "1m00s"), (185, "3m05s"), (7620, "2h07m")])
def test_durations(seconds, text):
    assert progress.format_duration(seconds) == text


def test_interval_from_the_environment(monkeypatch):
    monkeypatch.delenv(progress.INTERVAL_ENV, raising=False)
    assert progress.interval_from_env() == progress.DEFAULT_INTERVAL
    monkeypatch.setenv(progress.INTERVAL_ENV, "0.25")
    assert progress.interval_from_env() == 0.25
    monkeypatch.setenv(progress.INTERVAL_ENV, "soon")
    with pytest.raises(ValueError, match="CLIPLAKE_PROGRESS_INTERVAL"):
        progress.interval_from_env()


class FakeTracker:
    """The two calls of Spark's StatusTracker that progress uses, over stages set by the test."""

    def __init__(self):
        self.stages, self.active = {}, []

    def set(self, stage_id, name, tasks, done, running=0, active=True):
        self.stages[stage_id] = SimpleNamespace(name=name, numTasks=tasks, numCompletedTasks=done,
                                                numActiveTasks=running, numFailedTasks=0)
        self.active = sorted(set(self.active) | {stage_id}) if active else [i for i in self.active if i != stage_id]

    def getActiveStageIds(self):
        return list(self.active)

    def getStageInfo(self, stage_id):
        return self.stages.get(stage_id)


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_plain_lines_for_stages_that_ran_an_interval_and_moved():
    tracker, clock, out = FakeTracker(), Clock(), io.StringIO()
    lines = ProgressLines(tracker, out, terminal=False, interval=5, clock=clock)
    tracker.set(1, "a short one at x.py:1", 1, 0)
    tracker.set(2, "first at split_annotate.py:189", 4, 0, running=2)
    lines.tick()
    clock.now += 2
    tracker.set(1, "a short one at x.py:1", 1, 1, active=False)  # done within the interval: never shown
    lines.tick()
    clock.now += 4
    lines.tick()  # stage 2 has run 6 s
    clock.now += 1
    tracker.set(2, "first at split_annotate.py:189", 4, 1, running=2)
    lines.tick()  # moved, but under an interval since the last line
    clock.now += 4
    lines.tick()
    lines.tick()  # nothing moved
    clock.now += 10
    tracker.set(2, "first at split_annotate.py:189", 4, 4, active=False)
    lines.tick()
    assert out.getvalue().splitlines() == [
        "[stage 2] first at split_annotate.py:189: 0/4 tasks, 2 running, 6s",
        "[stage 2] first at split_annotate.py:189: 1/4 tasks, 2 running, 11s, 5.5 tasks/min, ETA 33s",
        "[stage 2] first at split_annotate.py:189: 4/4 tasks in 21s",
    ]


def test_terminal_lines_are_redrawn_in_place_and_cleared():
    tracker, clock, out = FakeTracker(), Clock(), io.StringIO()
    lines = ProgressLines(tracker, out, terminal=True, clock=clock, caller=lambda: "merge_rows at tables.py:410")
    tracker.set(3, "first at split_annotate.py:189", 2, 0, running=1)
    tracker.set(4, "$anonfun$withThreadLocalCaptured$2 at CompletableFuture.java:1768", 1, 0)
    lines.tick()
    first = out.getvalue()
    assert first == ("[stage 3] first at split_annotate.py:189: 0/2 tasks, 1 running, 0s\n"
                     "[stage 4] merge_rows at tables.py:410: 0/1 tasks, 0s\n")  # named by what the command runs
    clock.now += 1
    tracker.set(4, "$anonfun$withThreadLocalCaptured$2 at CompletableFuture.java:1768", 1, 1, active=False)
    lines.tick()
    # up two lines, clear to the end of the screen, draw the one stage left
    assert out.getvalue()[len(first):] == "\x1b[2F\x1b[J[stage 3] first at split_annotate.py:189: 0/2 tasks, 1 running, 1s\n"
    lines.close()
    assert out.getvalue().endswith("\x1b[1F\x1b[J")


def test_printing_on_a_terminal_clears_the_lines_first():
    tracker, out = FakeTracker(), io.StringIO()
    lines = ProgressLines(tracker, out, terminal=True)
    tracker.set(1, "first at x.py:1", 2, 0)
    lines.tick()
    printed = progress._ClearingStream(out, lines)
    printed.write("videos  clips")  # mid-line: no redraw over it
    assert out.getvalue().endswith("\x1b[1F\x1b[Jvideos  clips")
    lines.tick()
    assert out.getvalue().endswith("videos  clips")
    printed.write("\n")
    lines.tick()
    assert out.getvalue().endswith("\n[stage 1] first at x.py:1: 0/2 tasks, 0s\n")


def test_caller_is_the_innermost_function_of_the_packages():
    here = os.path.abspath(__file__)
    seen, ready = [], threading.Event()

    def merge_rows():
        ready.set()
        wait = lambda: time.sleep(1)  # noqa: E731
        wait()  # asleep in C when sampled: no frame of threading.py's inside it

    thread = threading.Thread(target=merge_rows)
    thread.start()
    ready.wait(5)
    time.sleep(0.1)  # past Event.set's own frames: asleep in the lambda
    seen.append(progress.caller_in_thread(thread.ident, packages=(here,)))
    seen.append(progress.caller_in_thread(thread.ident, packages=("/nowhere/",)))
    # This file as plumbing: its function is named after the caller (threading's run, here a package too).
    seen.append(progress.caller_in_thread(thread.ident, packages=(here, threading.__file__), plumbing=(here,)))
    thread.join(10)
    assert seen[0].startswith("merge_rows at test_progress.py:") and seen[1] is None
    assert re.fullmatch(r"Thread\.run at threading\.py:\d+ \(merge_rows\)", seen[2]), seen[2]
