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

import math
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


def machine_cores(cgroup_root: str = "/sys/fs/cgroup") -> int:
    """The cores this process may run on: its CPU affinity, capped by a container's CPU quota.

    A container limited by quota (Docker's --cpus, Kubernetes' limits) still sees every core of
    the host in its affinity; taking them all would run many threads on a few cores' time. Like
    the JVM (and so Spark's local[*]), a fractional quota counts as the next whole core.
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    quota = _cgroup_quota(cgroup_root)
    return max(1, min(cores, math.ceil(quota))) if quota else cores


def _cgroup_quota(root: str) -> float | None:
    """Cores of CPU time per period that cgroup v2 (cpu.max) or v1 (cfs quota) allows; None: no limit."""
    for quota_file, period_file in (("cpu.max", None), ("cpu/cpu.cfs_quota_us", "cpu/cpu.cfs_period_us")):
        try:
            with open(os.path.join(root, quota_file)) as f:
                fields = f.read().split()
            if period_file:
                with open(os.path.join(root, period_file)) as f:
                    fields.append(f.read().strip())
        except OSError:
            continue
        try:
            quota, period = float(fields[0]), float(fields[1])
        except (ValueError, IndexError):  # "max": no limit
            return None
        return quota / period if quota > 0 and period > 0 else None
    return None


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
