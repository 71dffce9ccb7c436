"""curate_udfs.cpu_share: a task's share of the cores follows the tasks running beside it."""

import os
import subprocess
import sys

import numpy as np
import torch

from curate_udfs.cpu_share import CpuShare, machine_cores
from curate_udfs.splitting.transnetv2 import predict_cut_probabilities


def test_the_last_running_task_takes_the_cores_the_others_left(tmp_path):
    folder = str(tmp_path / "tasks")
    with CpuShare("split", cores=4, folder=folder) as first:
        assert first.threads() == 4
        with CpuShare("split", cores=4, folder=folder) as second:
            assert (first.running(), first.threads(), second.threads()) == (2, 2, 2)
            with CpuShare("split", cores=4, least=2, folder=folder) as third:
                assert (first.threads(), third.threads()) == (1, 2)  # 4 // 3, and at least what it was given
        assert first.threads() == 4
    assert os.listdir(folder) == []


def test_a_dead_task_is_not_counted_and_its_marker_goes(tmp_path):
    folder = tmp_path / "tasks"
    folder.mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (folder / f"{dead.stdout.strip()}.killed").touch()  # a worker killed before it removed its marker
    with CpuShare("split", cores=2, folder=str(folder)) as share:
        assert share.threads() == 2
        assert len(os.listdir(folder)) == 1


def test_transnetv2_takes_the_threads_asked_for_before_each_batch():
    asked = []

    def threads() -> int:
        asked.append(len(asked))
        return 1 if len(asked) < 2 else 2  # another task ends after the first window

    before = torch.get_num_threads()
    try:
        frames = np.random.default_rng(0).integers(0, 255, (120, 27, 48, 3), dtype=np.uint8)
        predict_cut_probabilities(iter(frames), threads=threads)
        assert len(asked) == 3  # 120 frames: three windows of 100, stride 50
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_a_containers_cpu_quota_caps_the_cores(tmp_path):
    affinity = len(os.sched_getaffinity(0))
    assert machine_cores(str(tmp_path / "none")) == affinity  # no cgroup files: the affinity
    v2 = tmp_path / "v2"
    v2.mkdir()
    (v2 / "cpu.max").write_text("max 100000\n")
    assert machine_cores(str(v2)) == affinity
    (v2 / "cpu.max").write_text("50000 100000\n")  # half a core: one
    assert machine_cores(str(v2)) == 1
    v1 = tmp_path / "v1" / "cpu"
    v1.mkdir(parents=True)
    (v1 / "cpu.cfs_quota_us").write_text("-1\n")
    (v1 / "cpu.cfs_period_us").write_text("100000\n")
    assert machine_cores(str(v1.parent)) == affinity
    (v1 / "cpu.cfs_quota_us").write_text("100000\n")
    assert machine_cores(str(v1.parent)) == 1
