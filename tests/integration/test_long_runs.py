"""Corpus-scale runs: commits in waves that survive SIGKILL, videos packed into tasks, the dry run."""

import json
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

NUM_VIDEOS = 8
FIXED = ["--splitting-algorithm", "fixed-stride", "--fixed-stride-split-duration", "2", "--no-generate-embeddings"]
CAPTIONS = ["--captioning-window-size", "48", "--captioning-max-output-tokens", "4"]


def cli(*args) -> subprocess.Popen:
    env = {**os.environ, "CLIPLAKE_JARS_DIR": str(JARS_DIR), "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.Popen([sys.executable, "-m", "jobs.cli", *map(str, args)], cwd=REPO_ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)


def kill_when(proc: subprocess.Popen, ready, timeout: float = 600) -> None:
    """SIGKILL the job (and its Spark) as soon as ``ready()`` holds."""
    deadline = time.time() + timeout
    while proc.poll() is None and time.time() < deadline and not ready():
        time.sleep(0.3)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def commits(lake, name) -> int:
    """Commits in a table's Delta log, read from the folder: instant, unlike a query."""
    log = lake / name / "_delta_log"
    return len(list(log.glob("*.json"))) if log.exists() else 0


def count(spark, lake, name, where="true") -> int:
    if not tables.exists(spark, str(lake), name):
        return 0
    return tables.read_table(spark, str(lake), name).where(where).count()


def clip_rows(spark, lake):
    return {(r.source_path, r.start_frame, r.end_frame, r.num_frames, r.clip_id)
            for r in tables.read_table(spark, str(lake), "clips").collect()}


def video_rows(spark, lake):
    return {(r.video_id, r.status, r.num_clips) for r in tables.read_table(spark, str(lake), "videos").collect()}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("many")
    for i in range(NUM_VIDEOS):
        write_video(str(folder / f"v{i}.mp4"), [72], width=160, height=96, fps=24, speed=1.0 + i)
    return folder


@pytest.fixture(scope="module")
def clean(spark, inputs, tmp_path_factory):
    """One run with the default waves (one wave for eight small videos): the reference tables."""
    lake = tmp_path_factory.mktemp("clean")
    summary = run_command(["split", "--input-video-path", str(inputs), "--output-path", str(lake), *FIXED,
                           "--no-generate-captions"])
    assert summary["num_processed_videos"] == NUM_VIDEOS and summary["num_clips"] == NUM_VIDEOS
    return lake


def test_killed_multi_wave_split_keeps_its_committed_waves(spark, inputs, clean, tmp_path):
    lake = tmp_path / "lake"
    proc = cli("split", "--input-video-path", inputs, "--output-path", lake, *FIXED, "--no-generate-captions",
               "--commit-every-videos", 1)
    kill_when(proc, lambda: commits(lake, "runs") >= 2)  # created, then the first wave's progress row
    committed = count(spark, lake, "videos", "status = 'ok'")
    assert 1 <= committed < NUM_VIDEOS, "the kill should land between waves"
    [progress] = tables.read_table(spark, str(lake), "runs").collect()  # the killed run's row shows how far it got
    assert progress.status == "running" and progress.num_processed_videos >= 1
    summary = run_command(["split", "--input-video-path", str(inputs), "--output-path", str(lake), *FIXED,
                           "--no-generate-captions", "--commit-every-videos", "2"])
    assert summary["num_skipped_videos"] == committed and summary["num_processed_videos"] == NUM_VIDEOS - committed
    assert summary["status"] == "done"
    assert clip_rows(spark, lake) == clip_rows(spark, clean) and video_rows(spark, lake) == video_rows(spark, clean)
    clip_files = lambda lk: sorted(n for n in os.listdir(lk / "media" / "clips") if not n.startswith("."))  # noqa: E731
    assert clip_files(lake) == clip_files(clean)  # (a write the kill cut short leaves a temporary: vacuum's)


def test_killed_caption_pass_resumes(spark, clean, tiny_models):
    """A v1 pass killed after its first wave, then resumed, captions exactly what a clean v2 pass does."""
    caption = ["caption", "--output-path", clean, "--captioning-model", tiny_models["vlm"], *CAPTIONS]
    first = commits(clean, "captions")
    proc = cli(*caption, "--annotation-version", "v1", "--commit-every-videos", 1)
    kill_when(proc, lambda: commits(clean, "captions") > first)  # the first wave's captions are committed
    done = count(spark, clean, "captions", "annotation_version = 'v1'")
    assert 0 < done < NUM_VIDEOS, "the kill should land between waves"
    resumed = run_command([str(a) for a in caption] + ["--annotation-version", "v1", "--commit-every-videos", "2"])
    assert resumed["num_captioned_clips"] == NUM_VIDEOS - done
    run_command([str(a) for a in caption] + ["--annotation-version", "v2"])
    rows = tables.read_table(spark, str(clean), "captions").collect()
    by_version = {v: {(r.clip_id, r.window_index, r.start_frame, r.end_frame, r.caption) for r in rows
                      if r.annotation_version == v} for v in ("v1", "v2")}
    assert len(by_version["v1"]) == NUM_VIDEOS and by_version["v1"] == by_version["v2"]


def test_thousands_of_missing_paths_share_a_few_tasks(spark, tmp_path):
    """5,000 listed paths that do not exist: one error row each, in seconds (962 s with one task per video)."""
    listing = tmp_path / "list.json"
    listing.write_text(json.dumps([f"/nowhere/cam{i % 7}/clip_{i:05d}.mp4" for i in range(5000)]))
    started = time.perf_counter()
    summary = run_command(["split", "--input-video-list-json-path", str(listing), "--output-path", str(tmp_path / "lake"),
                           "--no-generate-embeddings", "--no-generate-captions"])
    elapsed = time.perf_counter() - started
    assert summary["num_error_videos"] == 5000 and count(spark, tmp_path / "lake", "videos", "status = 'error'") == 5000
    assert elapsed < 120, f"{elapsed:.0f} s"  # about 20 s on 2 cores


def test_dry_run_plans_without_writing(inputs, tmp_path, capsys):
    plan = run_command(["split", "--input-video-path", str(inputs), "--output-path", str(tmp_path / "lake"), "--dry-run", *FIXED,
                        "--no-generate-captions", "--motion-filter", "score-only", "--limit-clips", "1",
                        "--commit-every-videos", "3"])
    assert plan["num_pending_videos"] == NUM_VIDEOS and plan["first_wave_videos"] == 3 and plan["min_waves"] == 3
    assert plan["stages"] == ["split (fixed-stride, first 1 clips per video)", "transcode (libx264)", "motion"]
    out = capsys.readouterr().out
    assert "pending" in out and "stages: split (fixed-stride" in out and not (tmp_path / "lake").exists()


def test_limit_clips_keeps_the_first_clips_of_each_video(spark, inputs, tmp_path):
    """3 s videos in 1 s strides: 3 clips each, 2 with --limit-clips 2; the tables, counts and files agree."""
    lake = tmp_path / "lake"
    strides = ["--splitting-algorithm", "fixed-stride", "--fixed-stride-split-duration", "1",
               "--fixed-stride-min-clip-length-s", "0.5", "--no-generate-embeddings", "--no-generate-captions"]
    summary = run_command(["split", "--input-video-path", str(inputs), "--output-path", str(lake), "--limit", "2",
                           "--limit-clips", "2", *strides])
    assert (summary["num_processed_videos"], summary["num_clips"]) == (2, 4)
    clips = tables.read_table(spark, str(lake), "clips").collect()
    assert sorted((r.start_frame, r.end_frame) for r in clips) == [(0, 24), (0, 24), (24, 48), (24, 48)]
    assert {r.num_clips for r in tables.read_table(spark, str(lake), "videos").collect()} == {2}
    assert sorted(os.listdir(lake / "media" / "clips")) == sorted(f"{r.clip_id}.mp4" for r in clips)
