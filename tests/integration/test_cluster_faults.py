"""Faults on a real standalone cluster (local-cluster[2,1,2048]): a Python worker and then a whole
executor are SIGKILLed while each pipeline's tasks run; Spark retries them and every job ends with
the tables (and dataset) of a clean run. Also SIGKILL-and-rerun for dedup.

The kills come from outside, as a crash or the OOM killer would: the test walks the job's process
tree (driver JVM -> executor JVMs -> pyspark.daemon -> forked Python workers) and kills a worker
that is using CPU, i.e. running a task.
"""

import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import pytest
from pyspark.sql import functions as F

from curate_udfs.testing.synthetic import write_video
from jobs import tables
from jobs.cli import run_command
from jobs.session import JARS_DIR, REPO_ROOT

pytestmark = pytest.mark.slow

SPLIT = ["--splitting-algorithm", "fixed-stride", "--fixed-stride-split-duration", "6"]  # 6 s: a shard bin
CAPTIONS = ["--captioning-window-size", "48", "--captioning-max-output-tokens", "4"]
TICK_S = os.sysconf("SC_CLK_TCK") ** -1


def _processes() -> dict[int, tuple[int, str, int]]:
    """pid -> (parent pid, command line, CPU ticks used) for every process."""
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                command = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        out[int(entry)] = (int(fields[1]), command, int(fields[11]) + int(fields[12]))
    return out


def _descendants(procs, root: int) -> set[int]:
    tree, grown = {root}, True
    while grown:
        more = {pid for pid, (parent, _, _) in procs.items() if parent in tree} - tree
        tree |= more
        grown = bool(more)
    return tree


class Faults(threading.Thread):
    """Kill a busy Python worker of the job, then (once a worker is busy again) that worker's executor JVM."""

    def __init__(self, job: subprocess.Popen):
        super().__init__(daemon=True)
        self.job, self.killed = job, []

    def _busy_worker(self, before, now) -> int | None:
        tree = _descendants(now, self.job.pid)
        for pid in tree:
            parent, command, ticks = now[pid]
            is_worker = "pyspark.daemon" in command and "pyspark.daemon" in now.get(parent, (0, "", 0))[1]
            # 20 ms of CPU in the last 0.1 s: running a task (an idle worker uses none), even when
            # another test shares the cores
            if is_worker and pid in before and (ticks - before[pid][2]) * TICK_S >= 0.02:
                return pid
        return None

    def _executor_of(self, procs, pid: int) -> int:
        while "CoarseGrainedExecutorBackend" not in procs[pid][1]:
            pid = procs[pid][0]
        return pid

    def run(self):
        before = _processes()
        while self.job.poll() is None and len(self.killed) < 2:
            time.sleep(0.1)
            now = _processes()
            worker = self._busy_worker(before, now)
            if worker is not None:
                victim = worker if not self.killed else self._executor_of(now, worker)
                os.kill(victim, signal.SIGKILL)
                self.killed.append("worker" if not self.killed else "executor")
                time.sleep(2)  # let Spark notice and retry before the next fault
                now = _processes()
            before = now


def on_cluster(*args) -> str:
    """Run a cliplake job on local-cluster with a worker and an executor killed under it; its output.

    Each victim was using CPU, so a task died with it: the job completing with a clean run's tables
    means Spark ran those tasks again.
    """
    env = {**os.environ, "CLIPLAKE_JARS_DIR": str(JARS_DIR), "PYTHONPATH": str(REPO_ROOT)}
    job = subprocess.Popen([sys.executable, "-m", "jobs.cli", args[0], "--spark-profile", "local-cluster",
                            *map(str, args[1:])], cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, start_new_session=True)
    faults = Faults(job)
    faults.start()
    try:
        output, _ = job.communicate(timeout=900)
    finally:
        if job.poll() is None:
            os.killpg(job.pid, signal.SIGKILL)
        faults.join()
    assert job.returncode == 0, output[-3000:]
    assert faults.killed == ["worker", "executor"], f"the job ended before both faults landed: {faults.killed}"
    return output


def rows(spark, lake, name, *columns, where="true"):
    return sorted(tuple(r) for r in tables.read_table(spark, str(lake), name).where(where).select(*columns).collect())


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("videos")
    for i in range(4):
        write_video(str(folder / f"v{i}.mp4"), [144], width=320, height=192, fps=24, speed=1.5 + i)
    return folder


@pytest.fixture(scope="module")
def lakes(spark, inputs, tiny_models, tmp_path_factory):
    """(clean, faulted): the same split (thumbnail embeddings, tiny VLM captions), in local mode and on the cluster."""
    clean, faulted = tmp_path_factory.mktemp("clean"), tmp_path_factory.mktemp("faulted")
    split = ["--input-video-path", inputs, *SPLIT, "--captioning-model", tiny_models["vlm"], *CAPTIONS]
    run_command(["split", "--output-path", str(clean), *map(str, split)])
    on_cluster("split", "--output-path", faulted, *split)
    return clean, faulted


def test_split_survives_a_killed_worker_and_executor(spark, lakes):
    clean, faulted = lakes
    for name, columns in {"videos": ("video_id", "status", "num_clips"),
                          "clips": ("clip_id", "start_frame", "end_frame", "location"),
                          "captions": ("clip_id", "annotation_version", "window_index", "caption")}.items():
        expected, got = rows(spark, clean, name, *columns), rows(spark, faulted, name, *columns)
        if name == "clips":  # the same relative media paths under each lake
            expected = [r[:3] + (os.path.relpath(r[3], clean),) for r in expected]
            got = [r[:3] + (os.path.relpath(r[3], faulted),) for r in got]
        assert got == expected and expected, name
    assert rows(spark, faulted, "clip_embeddings", "clip_id") == rows(spark, clean, "clip_embeddings", "clip_id")
    assert {r[0] for r in rows(spark, faulted, "videos", "status")} == {"ok"}


def test_caption_survives_a_killed_worker_and_executor(spark, lakes, tiny_models):
    """A v1 pass with v0's model and settings: a clean pass writes v0's captions again (test_long_runs), so v1 must equal v0."""
    _, faulted = lakes
    on_cluster("caption", "--output-path", faulted, "--annotation-version", "v1", "--captioning-model", tiny_models["vlm"],
               *CAPTIONS)
    columns = ("clip_id", "window_index", "start_frame", "end_frame", "caption")
    v1 = rows(spark, faulted, "captions", *columns, where="annotation_version = 'v1'")
    assert v1 == rows(spark, faulted, "captions", *columns, where="annotation_version = 'v0'") and v1


@pytest.fixture(scope="module")
def embeddings_lake(spark, tmp_path_factory):
    """20,000 clustered 128-d embeddings (enough Python work per task for a kill to land), made by Spark."""
    lake = tmp_path_factory.mktemp("embeddings")
    centre = (F.col("id") % 8).cast("double")
    vector = F.transform(F.sequence(F.lit(0), F.lit(127)),
                         lambda i: (F.sin(centre * 7 + i) + F.rand(3) * 0.05).cast("float"))
    rows = spark.range(20_000).select(F.format_string("clip-%06d", "id").alias("clip_id"), F.lit("m").alias("model"),
                                      vector.alias("embedding"), F.lit(128).alias("dim"))
    tables.merge_rows(spark, str(lake), "clip_embeddings", rows)
    return lake


def dedup_rows(spark, lake):
    found = tables.read_table(spark, str(lake), "semantic_dedup").collect()
    return sorted((r.clip_id, r.cluster_id, r.max_id, round(r.cosine_sim_score, 4)) for r in found)


def test_dedup_survives_a_killed_worker_and_executor_and_a_killed_job(spark, embeddings_lake, tmp_path):
    clean, faulted, killed = (tmp_path / name for name in ("clean", "faulted", "killed"))
    for lake in (clean, faulted, killed):
        shutil.copytree(embeddings_lake, lake)
    dedup = ["--n-clusters", "8", "--max-iter", "5", "--kmeans-backend", "spark"]  # tasks to kill: not the driver path
    run_command(["dedup", "--output-path", str(clean), *dedup])
    on_cluster("dedup", "--output-path", faulted, *dedup)
    assert dedup_rows(spark, faulted) == dedup_rows(spark, clean)
    # SIGKILL the whole job once it has committed its first table write, then run it again
    env = {**os.environ, "CLIPLAKE_JARS_DIR": str(JARS_DIR), "PYTHONPATH": str(REPO_ROOT)}
    job = subprocess.Popen([sys.executable, "-m", "jobs.cli", "dedup", "--output-path", str(killed), *dedup],
                           cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                           start_new_session=True)
    log = killed / "semantic_dedup" / "_delta_log"
    while job.poll() is None and not (log.exists() and any(log.glob("*.json"))):
        time.sleep(0.1)
    os.killpg(job.pid, signal.SIGKILL)
    job.wait()
    assert not tables.exists(spark, str(killed), "runs"), "the kill should land before the job ends"
    run_command(["dedup", "--output-path", str(killed), *dedup])
    assert dedup_rows(spark, killed) == dedup_rows(spark, clean)
    summary = lambda lake: set(rows(spark, lake, "dedup_summary", "eps", "kept", "removed"))  # noqa: E731 (one per run)
    assert summary(killed) == summary(clean)


def test_shard_survives_a_killed_worker_and_executor(spark, lakes, tiny_models, tmp_path):
    clean, _ = lakes
    shard = ["--input-clip-path", clean, "--text-encoder-model", tiny_models["t5"], "--text-encoder-batch-size", "2",
             "--target-tar-size-mb", "0.01", "--max-tars-per-part", "1"]
    expected, got = tmp_path / "clean", tmp_path / "faulted"
    run_command(["shard", "--output-dataset-path", str(expected), *map(str, shard)])
    on_cluster("shard", "--output-dataset-path", got, *shard)

    def members(root):
        import tarfile
        found = {}
        for tar in sorted(root.rglob("*.tar")):
            with tarfile.open(tar) as t:
                found[str(tar.relative_to(root))] = [(m.name, m.size if m.name.endswith(".mp4") else 0) for m in t]
        return found

    assert members(got) == members(expected) and members(expected)
    shards = lambda root: rows(spark, clean, "shards", "tar_path", "num_samples", where=f"dataset_path = '{root}'")  # noqa: E731
    assert shards(got) == shards(expected)
