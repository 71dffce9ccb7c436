"""While a command runs, one progress line per running Spark stage on stderr, from Spark's status tracker.

Example::

    with progress.shown(spark):
        module.run(spark, args)

A line reads ``[stage 7] first at split_annotate.py:189: 3/8 tasks, 2 running, 40s, 4.5 tasks/min,
ETA 1m07s``. The stage's name is Spark's when it names a Python call site; the others (Delta's
MERGE, checkpoints: Spark names them after JVM code) are named by the cliplake function the
command was in when the stage was first seen. Rate and ETA count the tasks done since then.

On a terminal the lines are redrawn in place twice a second and cleared before anything else is
printed. Otherwise a stage that has run for ``CLIPLAKE_PROGRESS_INTERVAL`` seconds (default 5; 0
turns progress off) gets a plain line, then another when it has moved, at most that often, and a
last one when it is done.
"""

import contextlib
import dataclasses
import os
import re
import shutil
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Iterator, TextIO

INTERVAL_ENV = "CLIPLAKE_PROGRESS_INTERVAL"
DEFAULT_INTERVAL = 5.0
POLL = 0.5  # seconds between looks at the status tracker (and redraws on a terminal)
PACKAGES = tuple(str(Path(__file__).resolve().parent.parent / name) + os.sep for name in ("jobs", "curate_udfs"))
PLUMBING = (str(Path(__file__).resolve().parent / "tables.py"),)  # MERGE, checkpoints: for every table and job


@dataclasses.dataclass(frozen=True)
class StageProgress:
    """One running stage as the status tracker reports it, and how long cliplake has seen it run."""

    stage_id: int
    name: str
    num_tasks: int
    num_completed: int
    num_active: int = 0
    num_failed: int = 0
    seconds: float = 0.0

    @property
    def moved(self) -> tuple[int, int, int]:
        return self.num_completed, self.num_active, self.num_failed


def format_duration(seconds: float) -> str:
    """``42s``, ``3m05s``, ``2h07m``."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def format_rate(tasks_per_second: float) -> str:
    """``12.0 tasks/s``, or per minute under one a second: ``4.5 tasks/min``."""
    if tasks_per_second >= 1:
        return f"{tasks_per_second:.1f} tasks/s"
    return f"{tasks_per_second * 60:.1f} tasks/min"


def short_name(name: str) -> str:
    """Spark's stage name with the folders of its call site left out: ``collect at listing.py:88``."""
    return re.sub(r"(?<= at )\S*[/\\]", "", name)


def caller_in_thread(thread_id: int, packages: tuple[str, ...] = PACKAGES,
                     plumbing: tuple[str, ...] = PLUMBING) -> str | None:
    """``_write at split_annotate.py:171 (merge_rows)``: the innermost function of ``packages`` a thread
    is running, if any; one in a ``plumbing`` file is named after its caller, which says more.

    A lambda or comprehension is named by the function that holds it (Python 3.11's ``co_qualname``).
    """
    frame = sys._current_frames().get(thread_id)
    while frame is not None and not frame.f_code.co_filename.startswith(packages):
        frame = frame.f_back
    if frame is None:
        return None
    inner = frame
    while frame is not None and frame.f_code.co_filename.startswith(plumbing):
        frame = frame.f_back
    if frame is None or frame is inner or not frame.f_code.co_filename.startswith(packages):
        return _function_at(inner)
    return f"{_function_at(frame)} ({_function_at(inner).split(' at ')[0]})"


def _function_at(frame) -> str:
    code = frame.f_code
    name = getattr(code, "co_qualname", code.co_name)  # e.g. merge_rows.<locals>.<lambda>
    while name.endswith(">") and "." in name:
        name = name.rsplit(".", 1)[0]
    return f"{name.split('.<locals>.')[-1]} at {os.path.basename(code.co_filename)}:{frame.f_lineno}"


def format_line(stage: StageProgress) -> str:
    """The stage's progress line; rate and ETA once a task is done.

    Example::

        format_line(StageProgress(7, "mapInPandas at /w/jobs/split.py:3", 8, 3, 2, 0, 40.0))
        # '[stage 7] mapInPandas at split.py:3: 3/8 tasks, 2 running, 40s, 4.5 tasks/min, ETA 1m07s'
    """
    parts = [f"{stage.num_completed}/{stage.num_tasks} tasks"]
    if stage.num_active:
        parts.append(f"{stage.num_active} running")
    if stage.num_failed:
        parts.append(f"{stage.num_failed} failed")
    parts.append(format_duration(stage.seconds))
    if stage.num_completed and stage.seconds > 0:
        rate = stage.num_completed / stage.seconds
        left = max(stage.num_tasks - stage.num_completed, 0)
        parts += [format_rate(rate), f"ETA {format_duration(left / rate)}"]
    return f"[stage {stage.stage_id}] {short_name(stage.name)}: {', '.join(parts)}"


def format_done(stage: StageProgress) -> str:
    """The line a finished stage gets where lines are not redrawn: ``[stage 7] ...: 8/8 tasks in 1m47s``."""
    failed = f", {stage.num_failed} failed" if stage.num_failed else ""
    return (f"[stage {stage.stage_id}] {short_name(stage.name)}: "
            f"{stage.num_completed}/{stage.num_tasks} tasks{failed} in {format_duration(stage.seconds)}")


def interval_from_env() -> float:
    """``CLIPLAKE_PROGRESS_INTERVAL`` in seconds (default 5; 0 or less: no progress)."""
    value = os.environ.get(INTERVAL_ENV, "")
    try:
        return float(value) if value.strip() else DEFAULT_INTERVAL
    except ValueError:
        raise ValueError(f"{INTERVAL_ENV} must be a number of seconds, not {value!r}") from None


class ProgressLines:
    """Writes the progress lines of a status tracker's running stages to ``stream``; one ``tick()`` a poll.

    ``tracker`` is ``SparkContext.statusTracker()`` or anything with its ``getActiveStageIds`` and
    ``getStageInfo``. With ``terminal`` the lines are redrawn in place (ANSI cursor moves);
    otherwise plain lines (see the module's summary). ``caller`` names what the command is doing
    (:func:`caller_in_thread`), for stages whose Spark name is not a Python call site.
    """

    def __init__(self, tracker, stream: TextIO, terminal: bool, interval: float = DEFAULT_INTERVAL,
                 clock: Callable[[], float] = time.monotonic, caller: Callable[[], str | None] = lambda: None):
        self.tracker, self.stream, self.terminal, self.interval, self.clock = tracker, stream, terminal, interval, clock
        self.caller = caller
        self.lock = threading.RLock()  # one writer at a time: the poller, or a print through _ClearingStream
        self.mid_line = False  # something else printed part of a line: no redraw until it ends
        self._first_seen: dict[int, tuple[float, str]] = {}  # stage id -> when, and its name
        self._shown: dict[int, StageProgress] = {}  # plain lines: each stage as last printed
        self._next_print = 0.0
        self._drawn = 0  # terminal: lines on screen above the cursor

    def running(self) -> list[StageProgress]:
        now = self.clock()
        stages = []
        for stage_id in self.tracker.getActiveStageIds():
            info = self.tracker.getStageInfo(stage_id)
            if info is None:
                continue
            if stage_id not in self._first_seen:
                python_call = re.search(r" at \S+\.py:\d+$", info.name)
                self._first_seen[stage_id] = now, (info.name if python_call else self.caller() or info.name)
            since, name = self._first_seen[stage_id]
            stages.append(StageProgress(stage_id, name, info.numTasks, info.numCompletedTasks,
                                        info.numActiveTasks, info.numFailedTasks, now - since))
        return stages

    def tick(self) -> None:
        stages = self.running()
        with self.lock:
            if self.terminal:
                self._redraw(stages)
            else:
                self._print_changes(stages)

    def close(self) -> None:
        """Clear the lines drawn on a terminal; print the finished stages' lines otherwise."""
        with self.lock:
            if self.terminal:
                self.erase()
            else:
                self._print_done(set())

    def erase(self) -> None:
        """Remove the lines drawn in place (the cursor goes back to where they began)."""
        if self._drawn:
            self.stream.write(f"\x1b[{self._drawn}F\x1b[J")  # up to the first one's start, clear below
            self.stream.flush()
            self._drawn = 0

    def _redraw(self, stages: list[StageProgress]) -> None:
        self.erase()
        if self.mid_line or not stages:
            return
        width = max(shutil.get_terminal_size().columns - 1, 20)
        self.stream.write("".join(format_line(s)[:width] + "\n" for s in stages))
        self.stream.flush()
        self._drawn = len(stages)

    def _print_changes(self, stages: list[StageProgress]) -> None:
        self._print_done({s.stage_id for s in stages})
        if self.clock() < self._next_print:
            return
        due = [s for s in stages if s.seconds >= self.interval]
        moved = [s for s in due if s.stage_id not in self._shown or s.moved != self._shown[s.stage_id].moved]
        for stage in moved:
            self.stream.write(format_line(stage) + "\n")
            self._shown[stage.stage_id] = stage
        if moved:
            self.stream.flush()
            self._next_print = self.clock() + self.interval

    def _print_done(self, running: set[int]) -> None:
        for stage_id in [i for i in self._shown if i not in running]:
            last = self._shown.pop(stage_id)
            info = self.tracker.getStageInfo(stage_id)  # kept after the end (spark.ui.retainedStages)
            done = dataclasses.replace(last, seconds=self.clock() - self._first_seen[stage_id][0])
            if info is not None:
                done = dataclasses.replace(done, num_tasks=info.numTasks, num_completed=info.numCompletedTasks,
                                           num_failed=info.numFailedTasks)
            self.stream.write(format_done(done) + "\n")
            self.stream.flush()


class _ClearingStream:
    """A text stream that erases the progress lines before each write; they come back on the next tick."""

    def __init__(self, stream: TextIO, lines: ProgressLines):
        self._stream, self._lines = stream, lines

    def write(self, text: str) -> int:
        with self._lines.lock:
            self._lines.erase()
            written = self._stream.write(text)
            if text:
                self._lines.mid_line = not text.endswith("\n")
            return written

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


@contextlib.contextmanager
def shown(spark, stream: TextIO | None = None) -> Iterator[None]:
    """Show the running stages' progress on ``stream`` (stderr) while the block runs.

    A background thread polls ``spark.sparkContext.statusTracker()``; it stops, and the lines are
    cleared, when the block ends. On a terminal, ``sys.stdout`` and ``sys.stderr`` are wrapped
    for the length of the block so that what the job prints is not mixed into the lines.
    """
    interval = interval_from_env()
    if interval <= 0:
        yield
        return
    stream = stream or sys.stderr
    terminal = getattr(stream, "isatty", lambda: False)()
    command_thread = threading.get_ident()
    lines = ProgressLines(spark.sparkContext.statusTracker(), stream, terminal, interval,
                          caller=lambda: caller_in_thread(command_thread))
    stop = threading.Event()

    def poll() -> None:
        while not stop.wait(min(POLL, interval)):
            try:
                lines.tick()
            except Exception:  # the JVM is gone (the run ended or was interrupted): nothing left to show
                return

    wrapped = terminal and _wrap_std_streams(lines)
    poller = threading.Thread(target=poll, name="cliplake-progress", daemon=True)
    poller.start()
    try:
        yield
    finally:
        stop.set()
        poller.join(timeout=10)
        if wrapped:
            sys.stdout, sys.stderr = wrapped
        with contextlib.suppress(Exception):  # a tracker that is gone has nothing left to report
            lines.close()


def _wrap_std_streams(lines: ProgressLines) -> tuple[TextIO, TextIO]:
    """Route ``sys.stdout`` and ``sys.stderr`` through :class:`_ClearingStream`; returns the originals."""
    originals = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = _ClearingStream(sys.stdout, lines), _ClearingStream(sys.stderr, lines)
    return originals
