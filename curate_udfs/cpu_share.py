"""How many threads a task may use: the machine's cores shared among the tasks running on it now.

A Spark task gets one core, and while every core runs a task that is right. But a stage ends with
fewer tasks than cores (often one long video, the last to finish), and a task that keeps one
thread then leaves the other cores idle. Each task holds a marker file, named by its process id, in
a folder of the machine's temp dir for as long as it runs; ``threads()`` counts the markers of live
processes and gives this task its share of the cores, so the last task takes the cores the
finished ones left. Markers of processes that died (a killed worker) are removed when seen.

Example::

    with CpuShare("split", cores=machine_cores(), least=1) as share:
        for window in windows:
            torch.set_num_threads(share.threads())
"""

import os
import tempfile
import uuid


class CpuShare:
    """This task's marker among those of the tasks named ``kind`` on this machine."""

    def __init__(self, kind: str, cores: int, least: int = 1, folder: str | None = None):
        self.cores, self.least = cores, least
        self.folder = folder or os.path.join(tempfile.gettempdir(), f"cliplake-{kind}-tasks-{os.getuid()}")
        self.marker: str | None = None

    def __enter__(self) -> "CpuShare":
        os.makedirs(self.folder, exist_ok=True)
        self.marker = os.path.join(self.folder, f"{os.getpid()}.{uuid.uuid4().hex}")
        open(self.marker, "w").close()
        return self

    def __exit__(self, *exc) -> None:
        try:
            os.remove(self.marker)
        except FileNotFoundError:
            pass

    def running(self) -> int:
        """Tasks of this kind running on this machine now (this one included)."""
        live = 0
        for name in os.listdir(self.folder):
            pid = name.split(".", 1)[0]
            if pid.isdigit() and _alive(int(pid)):
                live += 1
            else:
                try:
                    os.remove(os.path.join(self.folder, name))
                except OSError:
                    pass
        return max(1, live)

    def threads(self) -> int:
        """This task's share of the cores, and at least ``least``."""
        return max(self.least, self.cores // self.running())


def machine_cores() -> int:
    """The cores this process may run on (all of them where the OS does not say)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True
