"""Expected failures end in one sentence and lose nothing: a full disk, a path that is not a lake, a newer lake."""

import os
import subprocess
import sys

import pytest

from curate_udfs.testing.synthetic import write_video
from jobs import tables
from jobs.cli import run_command
from jobs.session import JARS_DIR, REPO_ROOT

pytestmark = pytest.mark.slow
FIXED = ["--splitting-algorithm", "fixed-stride", "--fixed-stride-split-duration", "2", "--no-generate-embeddings",
         "--no-generate-captions"]


def cli(*args) -> subprocess.CompletedProcess:
    env = {**os.environ, "CLIPLAKE_JARS_DIR": str(JARS_DIR), "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run([sys.executable, "-m", "jobs.cli", *map(str, args)], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=900)


def rows(spark, lake):
    clips = {(r.source_path, r.start_frame, r.end_frame, r.clip_id) for r in tables.read_table(spark, str(lake), "clips").collect()}
    videos = {(r.source_path, r.status, r.num_clips) for r in tables.read_table(spark, str(lake), "videos").collect()}
    return clips, videos


@pytest.fixture
def small_disk(tmp_path):
    """A 768 kB tmpfs (the lake needs about 2 MB), enlarged by the test once it has filled."""
    folder = tmp_path / "disk"
    folder.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=768k", "tmpfs", str(folder)], check=True)
    yield folder
    subprocess.run(["umount", "-l", str(folder)], check=False)


def test_a_full_disk_stops_the_job_with_one_line_and_a_rerun_completes(spark, tmp_path, small_disk):
    inputs = tmp_path / "in"
    inputs.mkdir()
    for i in range(6):
        write_video(str(inputs / f"v{i}.mp4"), [120], width=640, height=360, fps=24, speed=3.0 + i)
    clean = tmp_path / "clean"
    run_command(["split", "--input-video-path", str(inputs), "--output-path", str(clean), *FIXED])
    lake = small_disk / "lake"
    full = cli("split", "--input-video-path", inputs, "--output-path", lake, *FIXED)
    assert full.returncode == 2, full.stdout[-2000:] + full.stderr[-2000:]
    assert "Traceback" not in full.stderr and "\tat " not in full.stderr
    assert full.stderr.strip().splitlines()[-1].startswith("cliplake split: error:")
    assert "space" in full.stderr.strip().splitlines()[-1].lower()
    subprocess.run(["mount", "-o", "remount,size=256m", str(small_disk)], check=True)
    done = cli("split", "--input-video-path", inputs, "--output-path", lake, *FIXED)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert rows(spark, lake) == rows(spark, clean)
    assert {r[1] for r in rows(spark, lake)[1]} == {"ok"}  # no video was marked as an error for the full disk


def test_not_a_lake_is_one_sentence(tmp_path):
    (tmp_path / "empty").mkdir()
    result = cli("caption", "--output-path", tmp_path / "empty", "--captioning-model", tmp_path / "none")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("cliplake caption: error:")


def test_a_lake_written_by_a_newer_cliplake_is_refused_in_one_sentence(spark, tmp_path):
    lake = tmp_path / "lake"
    empty = tmp_path / "in"
    empty.mkdir()
    run_command(["split", "--input-video-path", str(empty), "--output-path", str(lake), *FIXED])
    runs = tables.delta_table(spark, str(lake), "runs")
    assert runs.detail().first().properties[tables.LAKE_FORMAT_PROPERTY] == str(tables.LAKE_FORMAT)
    spark.sql(f"ALTER TABLE delta.`{lake / 'runs'}` SET TBLPROPERTIES "
              f"('{tables.LAKE_FORMAT_PROPERTY}' = '{tables.LAKE_FORMAT + 1}')")
    result = cli("split", "--input-video-path", empty, "--output-path", lake, *FIXED)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "written by a newer cliplake" in result.stderr.strip().splitlines()[-1]
    assert tables.read_table(spark, str(lake), "runs").count() == 1  # the refused job wrote nothing
