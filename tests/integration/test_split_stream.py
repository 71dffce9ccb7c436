"""`split --stream`: videos split as they land, each once, across restarts; available-now stops by itself."""

import os
import signal
import subprocess
import sys
import time

import pytest

from curate_udfs.testing.synthetic import write_video
from jobs import tables
from jobs.cli import run_command
from jobs.session import JARS_DIR, REPO_ROOT

pytestmark = pytest.mark.slow

FIXED = ["--splitting-algorithm", "fixed-stride", "--fixed-stride-split-duration", "2", "--no-generate-embeddings",
         "--no-generate-captions"]


def land(folder, name, speed):
    """A video arriving as uploads do: written under a hidden name, then renamed (S3 puts are atomic too)."""
    hidden = folder / f".partial-{name}"
    write_video(str(hidden), [48], width=160, height=96, fps=24, speed=speed)
    os.rename(hidden, folder / name)


def videos(spark, lake):
    if not tables.exists(spark, str(lake), "videos"):
        return []
    return sorted((r.source_path, r.status) for r in tables.read_table(spark, str(lake), "videos").collect())


def stuck_threads(job: subprocess.Popen, log) -> None:
    """Append what a hung job's driver JVM and Python threads are doing to its log (then it is killed)."""
    driver = subprocess.run(["pgrep", "-P", str(job.pid), "java"], capture_output=True, text=True).stdout.split()
    if driver:
        dump = subprocess.run(["jstack", driver[0]], capture_output=True, text=True, timeout=60).stdout
        threads = [t for t in dump.split("\n\n") if "stream execution" in t or "Executor task launch" in t]
        with open(log, "a") as out:
            out.write("\n\n".join(threads) + "\n")
    job.send_signal(signal.SIGABRT)  # faulthandler writes every Python thread's stack to the log
    job.wait(timeout=60)


def test_available_now_splits_what_is_new_and_stops(spark, tmp_path):
    inbox, lake = tmp_path / "inbox", tmp_path / "lake"
    (inbox / "cam1").mkdir(parents=True)
    land(inbox, "a.mp4", 1.0)
    land(inbox / "cam1", "b.mov", 2.0)
    (inbox / "notes.txt").write_text("not a video")
    stream = ["split", "--stream", "--trigger", "available-now", "--input-video-path", str(inbox),
              "--output-path", str(lake), *FIXED]
    first = run_command(stream)  # returns: available-now ends by itself
    assert first["status"] == "done" and first["num_processed_videos"] == 2
    assert videos(spark, lake) == [(str(inbox / "a.mp4"), "ok"), (str(inbox / "cam1" / "b.mov"), "ok")]
    land(inbox, "c.mp4", 3.0)
    second = run_command(stream)
    assert (second["num_input_videos"], second["num_processed_videos"]) == (1, 1)  # only the new file was handed out
    assert len(videos(spark, lake)) == 3
    assert (lake / "_checkpoints" / "split").is_dir()
    # the same ids as a batch run over the folder: it finds everything done
    batch = run_command(["split", "--input-video-path", str(inbox), "--output-path", str(lake), *FIXED])
    assert (batch["num_input_videos"], batch["num_skipped_videos"]) == (3, 3)


def test_files_landing_while_it_runs_are_split_once_across_a_kill(spark, tmp_path):
    inbox, lake = tmp_path / "inbox", tmp_path / "lake"
    inbox.mkdir()
    for i in range(2):
        land(inbox, f"early{i}.mp4", 1.0 + i)
    # PYTHONFAULTHANDLER: a job that hangs is asked for its threads' stacks before the test fails
    env = {**os.environ, "CLIPLAKE_JARS_DIR": str(JARS_DIR), "PYTHONPATH": str(REPO_ROOT), "PYTHONFAULTHANDLER": "1"}
    log = tmp_path / "stream.log"  # a file, not a pipe: a stream that runs on must never block on its output
    with open(log, "w") as out:
        job = subprocess.Popen([sys.executable, "-m", "jobs.cli", "split", "--stream", "--trigger", "1 second",
                                "--input-video-path", str(inbox), "--output-path", str(lake), *FIXED],
                               cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

    def processed():  # as the stream's runs row says after each micro-batch
        row = tables.read_table(spark, str(lake), "runs").first() if tables.exists(spark, str(lake), "runs") else None
        return (row.num_processed_videos or 0) if row else 0

    def wait_for(n):
        deadline = time.time() + 600
        while processed() < n and job.poll() is None and time.time() < deadline:
            time.sleep(2)
        if processed() < n and job.poll() is None:
            stuck_threads(job, log)
        assert processed() == n and len(videos(spark, lake)) == n, \
            ("ended" if job.poll() is not None else "timed out") + ":\n" + log.read_text()[-12000:]

    try:
        wait_for(2)
        for i in range(3):
            land(inbox, f"late{i}.mp4", 4.0 + i)
        wait_for(5)
        assert job.poll() is None, "a stream keeps running"
    finally:
        os.killpg(job.pid, signal.SIGKILL)
        job.wait()
    [killed] = tables.read_table(spark, str(lake), "runs").collect()
    assert killed.status == "running" and killed.num_processed_videos == 5
    again = run_command(["split", "--stream", "--trigger", "available-now", "--input-video-path", str(inbox),
                         "--output-path", str(lake), *FIXED])
    assert again["num_processed_videos"] == 0  # the checkpoint (and the videos table) remember all five
    assert [status for _, status in videos(spark, lake)] == ["ok"] * 5
    clips = tables.read_table(spark, str(lake), "clips").collect()
    on_disk = sorted(n for n in os.listdir(lake / "media" / "clips") if not n.startswith("."))
    assert sorted(os.path.basename(c.location) for c in clips) == on_disk and len(on_disk) == 5


def test_stream_refuses_a_json_list(tmp_path, capsys):
    listing = tmp_path / "list.json"
    listing.write_text("[]")
    with pytest.raises(SystemExit):
        run_command(["split", "--stream", "--input-video-list-json-path", str(listing), "--output-path",
                     str(tmp_path / "lake")])
    assert "--stream watches --input-video-path" in capsys.readouterr().err
