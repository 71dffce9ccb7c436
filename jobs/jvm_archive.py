"""A class-data-sharing archive for the driver JVM: Spark's classes mapped, not loaded again.

A cold driver JVM spends seconds loading and verifying the same ten thousand classes on every run.
Java's dynamic CDS archive (``-XX:ArchiveClassesAtExit``) records them once, from a tiny split;
later JVMs map it (``-XX:SharedArchiveFile``): a two-video split went 62-66 s -> 51-53 s on 2 cores.

Build it once per machine and Spark version (``make setup`` does)::

    python -m jobs.jvm_archive

Sessions that cliplake starts itself then use it (:func:`java_options`), and so do the executors
of a ``local-cluster`` master (same machine, same class path). A missing, stale or
foreign archive (another JDK or Spark class path) is ignored by the JVM: the job runs as before.
"""

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_CHECKOUT = Path(__file__).resolve().parent.parent
# A checkout keeps it beside its JARs (.cache/jvm); a pip-installed cliplake in the user's cache.
ARCHIVE_DIR = Path(os.environ.get("CLIPLAKE_JVM_ARCHIVE_DIR") or (
    _CHECKOUT / ".cache" / "jvm" if (_CHECKOUT / "pyproject.toml").exists()
    else Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "cliplake" / "jvm"))
# Set by :func:`build` for the job it runs: that JVM writes its classes there when it exits.
DUMP_ENV = "CLIPLAKE_JVM_ARCHIVE_DUMP"
# CDS reports every class it cannot archive (or a class path that no longer matches) as a warning on
# stdout: expected, and not the user's business.
QUIET = "-Xlog:cds=off -Xlog:cds+dynamic=off"


def archive_path() -> Path:
    """The archive for this Python's Spark and the ``java`` on the PATH (or JAVA_HOME)."""
    import pyspark

    java = shutil.which("java", path=os.path.join(os.environ["JAVA_HOME"], "bin")) if os.environ.get("JAVA_HOME") \
        else shutil.which("java")
    key = hashlib.sha256(f"{pyspark.__file__}|{os.path.realpath(java or 'java')}".encode()).hexdigest()[:12]
    return ARCHIVE_DIR / f"spark-{pyspark.__version__}-{key}.jsa"


def java_options() -> str:
    """Driver JVM options: write the archive (inside :func:`build`), else :func:`mapping_options`."""
    if os.environ.get(DUMP_ENV):
        return f"-XX:ArchiveClassesAtExit={os.environ[DUMP_ENV]} {QUIET}"
    return mapping_options()


def mapping_options() -> str:
    """JVM options that map the archive when there is one (also for a local-cluster's executors), or nothing."""
    path = archive_path()
    return f"-XX:SharedArchiveFile={path} {QUIET}" if path.is_file() else ""


def build() -> Path:
    """Run a tiny split (a bundled sample video, fixed strides) whose JVM archives its classes; the archive."""
    from curate_udfs.testing.samples import sample_videos

    target = archive_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="cliplake-jvm-archive-") as tmp:
        videos = Path(tmp, "videos")
        videos.mkdir()
        shutil.copy(sample_videos()["bikes.mp4"], videos)
        dump = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        job = subprocess.Popen(
            [sys.executable, "-m", "jobs.cli", "split", "--input-video-path", str(videos), "--output-path",
             str(Path(tmp, "lake")), "--splitting-algorithm", "fixed-stride", "--no-generate-embeddings",
             "--no-generate-captions"],
            env={**os.environ, DUMP_ENV: str(dump)}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            start_new_session=True)
        try:
            _, errors = job.communicate()
            if job.returncode != 0:
                raise RuntimeError(f"the tiny split that records the JVM's classes failed: {errors[-2000:]}")
            _wait_for_group(job.pid)  # the JVM writes the archive as it exits, after Python has
            os.replace(dump, target)
        finally:
            _kill_group(job.pid)
            Path(dump).unlink(missing_ok=True)
    return target


def _wait_for_group(pgid: int, timeout_s: float = 300) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not _running_in_group(pgid):
            return
        time.sleep(0.2)
    raise RuntimeError(f"the JVM did not finish writing its class archive in {timeout_s:.0f} s")


def _running_in_group(pgid: int) -> bool:
    """Whether a process of the group still runs (a zombie is done: a container's init may never reap it)."""
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/stat") as f:
                state, _, group = f.read().rsplit(")", 1)[1].split()[:3]
        except (OSError, ValueError):
            continue
        if int(group) == pgid and state != "Z":
            return True
    return False


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


if __name__ == "__main__":
    started = time.monotonic()
    path = build()
    print(f"JVM class archive: {path} ({path.stat().st_size / 2**20:.0f} MiB, {time.monotonic() - started:.0f} s)")
