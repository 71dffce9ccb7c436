"""What the Spark JVM prints on the console: nothing of its log, unless ``--verbose``.

A quiet start (the default when cliplake starts Spark itself) gives the JVM
``profiles/log4j2-quiet.properties`` (Spark's log off) and holds back what it prints while it
starts, before log4j is set up or outside it: the JDK's incubator-module warning, log4j's and
SLF4J's notes, Ivy's resolution report. Those lines are shown only if the start fails. Once the
session is up, the JVM's lines pass through to ``sys.stderr``: what it prints outside log4j, and in local
mode the Python workers' stderr, which the JVM copies to its own.

``--verbose`` changes nothing: Spark's default log4j profile at the Spark profile's
``spark.log.level`` (WARN in the shipped ones), and every line as the JVM writes it.
"""

import contextlib
import os
import sys
import threading
from pathlib import Path
from typing import Iterator

QUIET_LOG4J2 = Path(__file__).resolve().parent / "profiles" / "log4j2-quiet.properties"
QUIET_LEVEL = "OFF"  # an expected failure is cliplake's one sentence, not Spark's ERROR lines with their traces
_STARTED = b"\0cliplake: the JVM has started\n"  # written into the JVM's stderr pipe after the start
_FAILED = b"\0cliplake: the JVM failed to start\n"


def add_quiet_logging(settings: dict[str, str]) -> None:
    """Spark settings of a quiet run: Spark's log off, the quiet log4j2 file for the driver JVM.

    Example::

        add_quiet_logging(settings)  # before SparkSession.builder...getOrCreate()

    A ``-Dlog4j2.configurationFile`` the profile already gives the driver is kept; so is the
    setting when the file is missing (a wheel built without it): Spark then uses its default
    profile, whose start-up notes are held back anyway.
    """
    settings["spark.log.level"] = QUIET_LEVEL
    key = "spark.driver.extraJavaOptions"
    options = settings.get(key, "")
    if QUIET_LOG4J2.is_file() and "log4j2.configurationFile" not in options:
        # A file: URI has no blanks for spark-submit to split the options on.
        settings[key] = " ".join(filter(None, [options, f"-Dlog4j2.configurationFile={QUIET_LOG4J2.as_uri()}"]))


@contextlib.contextmanager
def held_back_while_starting(verbose: bool = False) -> Iterator[None]:
    """Hold back what a JVM started in this block prints on stderr; show it only if the block fails.

    Example::

        with held_back_while_starting(verbose=args.verbose):
            spark = builder.getOrCreate()

    The JVM inherits this process's stderr when it starts, so for the length of the block stderr
    (file descriptor 2) is a pipe, read by a daemon thread for as long as the JVM lives. Whatever
    Python writes to stderr inside the block goes the same way. With ``verbose`` it does nothing.
    """
    if verbose:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    read_end, write_end = os.pipe()
    shown = threading.Event()  # set once the held lines are dealt with
    threading.Thread(target=_pass_on, args=(read_end, shown), name="cliplake-jvm-stderr", daemon=True).start()
    os.dup2(write_end, 2)
    started = False
    try:
        yield
        started = True
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.write(write_end, _STARTED if started else _FAILED)  # after all the JVM wrote in the block
        os.close(write_end)  # the JVM holds its own copy; the pipe ends when it exits
        if not started:
            shown.wait(timeout=10)  # the JVM's reason before Python's traceback


def _pass_on(read_end: int, shown: threading.Event) -> None:
    """Hold the JVM's lines until the start marker, then pass each line on to ``sys.stderr``."""
    held: list[bytes] | None = []
    with open(read_end, "rb") as pipe:
        for line in pipe:
            if held is None:
                _write(line)
                continue
            marker = next((m for m in (_STARTED, _FAILED) if line.endswith(m)), None)
            if marker is None:
                held.append(line)
                continue
            held.append(line[:-len(marker)])  # a last line the JVM left unfinished
            if marker == _FAILED:
                for kept in held:
                    _write(kept)
            held = None
            shown.set()
    shown.set()


def _write(line: bytes) -> None:
    if not line:
        return
    try:
        sys.stderr.write(line.decode(errors="replace"))
        sys.stderr.flush()
    except (OSError, ValueError):  # stderr closed: the interpreter is ending
        pass
