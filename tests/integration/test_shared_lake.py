"""Many cliplake jobs on one lake at once: every job exits 0 and its rows are all there."""

import glob
import os
import subprocess
import sys
import time

import pytest

from curate_udfs.testing.synthetic import write_video
from jobs import tables
from jobs.cli import run_command
from jobs.session import JARS_DIR, REPO_ROOT

pytestmark = pytest.mark.slow

FIXED = ["--splitting-algorithm", "fixed-stride", "--fixed-stride-split-duration", "2"]


def start(*args) -> subprocess.Popen:
    env = {**os.environ, "CLIPLAKE_JARS_DIR": str(JARS_DIR), "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.Popen([sys.executable, "-m", "jobs.cli", *map(str, args)], cwd=REPO_ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish(procs: list[subprocess.Popen]) -> None:
    outputs = [p.communicate(timeout=900)[0] for p in procs]
    for proc, out in zip(procs, outputs):
        gist = "\n".join(line for line in out.splitlines() if not line.lstrip().startswith("at "))[-4000:]
        assert proc.returncode == 0 and "Traceback" not in out, gist


def videos(folder, count: int, first_speed: float) -> list[str]:
    os.makedirs(folder, exist_ok=True)
    for i in range(count):
        write_video(str(folder / f"cam_{first_speed + i:g}.mp4"), [60], width=160, height=96, fps=24, speed=first_speed + i)
    return sorted(str(folder / n) for n in os.listdir(folder))


def assert_consistent(spark, lake) -> None:
    """Every clip row's file exists and every clip file has its row."""
    rows = tables.read_table(spark, str(lake), "clips").collect()
    files = set(glob.glob(str(lake / "media" / "clips" / "*.mp4")))
    assert {r.location for r in rows} == files and len(rows) == len(files)


@pytest.fixture(scope="module")
def shared(spark, tmp_path_factory):
    """Three `split` jobs started together on a new lake: two inputs, one of them split twice."""
    root = tmp_path_factory.mktemp("shared")
    inputs = {name: videos(root / name, 2, speed) for name, speed in (("a", 1), ("b", 3))}
    lake = root / "lake"
    procs = [start("split", "--input-video-path", root / name, "--output-path", lake, *FIXED, "--no-generate-captions")
             for name in ("a", "b", "a")]
    finish(procs)
    return lake, inputs


def test_three_splits_on_a_new_lake_all_succeed(spark, shared):
    lake, inputs = shared
    listed = sorted(p for paths in inputs.values() for p in paths)
    rows = tables.read_table(spark, str(lake), "videos").collect()
    assert sorted(r.source_path for r in rows) == listed  # every video once
    assert {r.status for r in rows} == {"ok"}
    assert_consistent(spark, lake)
    runs = tables.read_table(spark, str(lake), "runs").where("pipeline = 'split'").collect()
    assert len(runs) == 3 and all(r.num_input_videos == 2 and r.status == "done" for r in runs)
    assert sorted(r.num_processed_videos + r.num_skipped_videos for r in runs) == [2, 2, 2]  # each its own counts


def test_split_beside_a_caption_pass_and_dedup(spark, shared, tiny_models):
    lake, _ = shared
    before = {r.clip_id for r in tables.read_table(spark, str(lake), "clips").collect()}
    new = videos(lake.parent / "d", 2, 7)
    procs = [
        start("split", "--input-video-path", lake.parent / "d", "--output-path", lake, *FIXED, "--no-generate-captions"),
        start("caption", "--output-path", lake, "--annotation-version", "v1", "--captioning-model", tiny_models["vlm"],
              "--captioning-window-size", 48, "--captioning-max-output-tokens", 4),
        start("dedup", "--output-path", lake, "--n-clusters", 2),
    ]
    finish(procs)
    videos_now = {r.source_path for r in tables.read_table(spark, str(lake), "videos").collect()}
    assert set(new) <= videos_now
    captioned = {r.clip_id for r in tables.read_table(spark, str(lake), "captions").where("annotation_version = 'v1'").collect()}
    assert before <= captioned  # every clip there when the pass started (new ones may or may not have been seen)
    deduped = {r.clip_id for r in tables.read_table(spark, str(lake), "semantic_dedup").collect()}
    assert before <= deduped
    assert_consistent(spark, lake)
    pipelines = sorted(r.pipeline for r in tables.read_table(spark, str(lake), "runs").collect())
    assert pipelines == ["caption", "dedup"] + ["split"] * 4


def test_vacuum_removes_old_orphans_only(spark, shared, capsys):
    lake, _ = shared
    clips = lake / "media" / "clips"
    ten_days_ago = time.time() - 10 * 24 * 3600
    referenced = sorted(clips.glob("*.mp4"))[0]
    os.utime(referenced, (ten_days_ago, ten_days_ago))  # old, but a row points at it
    old = [clips / "00000000-dead-4bad-8bad-000000000000.mp4", clips / ".half-written.mp4.tmp-1234",
           lake / "media" / "previews" / "gone" / "0_47.webp"]
    young = clips / "11111111-dead-4bad-8bad-000000000000.mp4"  # maybe a running job's: its rows may come
    for path in [*old, young]:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"orphan")
    for path in old:
        os.utime(path, (ten_days_ago, ten_days_ago))
    dry = run_command(["vacuum", "--output-path", str(lake), "--retain-hours", "48", "--dry-run"])
    assert dry["orphans"] == sorted(str(p) for p in old) and all(p.exists() for p in old)
    assert "would remove" in capsys.readouterr().out
    done = run_command(["vacuum", "--output-path", str(lake), "--retain-hours", "48"])
    assert done["num_orphan_files"] == 3 and done["num_young_orphan_files"] == 1
    assert not any(p.exists() for p in old) and young.exists() and referenced.exists()
    young.unlink()
    assert_consistent(spark, lake)
    assert tables.read_table(spark, str(lake), "runs").where("pipeline = 'vacuum'").first().num_orphan_files_removed == 3
