"""What a JVM prints while it starts is held back, and shown only when the start fails; no Spark."""

import subprocess
import sys
import time

import pytest

from jobs import jvm_output


def child(text: str, delay: float = 0.0) -> subprocess.Popen:
    """A process that, like the JVM, inherits this one's stderr and writes to it."""
    code = f"import sys, time; time.sleep({delay}); sys.stderr.write({text!r}); sys.stderr.flush()"
    return subprocess.Popen([sys.executable, "-c", code])


def test_start_lines_held_back_later_lines_passed_on(capfd):
    with jvm_output.held_back_while_starting():
        child("SLF4J: Failed to load class\nWARNING: Using incubator modules\n").wait()
        later = child("ERROR Executor: a task failed\n", delay=0.5)  # still running when the start is over
    later.wait()
    err, deadline = "", time.monotonic() + 5
    while not err and time.monotonic() < deadline:  # a daemon thread passes the line on
        time.sleep(0.05)
        err = capfd.readouterr().err
    assert err == "ERROR Executor: a task failed\n"


def test_a_failed_start_shows_what_was_held_back(capfd):
    with pytest.raises(RuntimeError):
        with jvm_output.held_back_while_starting():
            child("Invalid maximum heap size: -Xmx1x").wait()  # no newline at the end
            raise RuntimeError("Java gateway process exited")
    assert capfd.readouterr().err == "Invalid maximum heap size: -Xmx1x"


def test_verbose_holds_nothing_back(capfd):
    with jvm_output.held_back_while_starting(verbose=True):
        child("WARN NativeCodeLoader: no native-hadoop\n").wait()
    assert capfd.readouterr().err == "WARN NativeCodeLoader: no native-hadoop\n"
