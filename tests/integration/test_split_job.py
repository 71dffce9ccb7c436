"""The split job on real Spark and Delta: tables, clip files, bad input, re-runs, resume, clusters."""

import glob
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import av
import pandas as pd
import pytest
from pyspark.sql import functions as F

from curate_udfs import ids
from curate_udfs.testing.synthetic import THREE_SCENES_FPS as FPS
from jobs import jvm_archive, lake_rs, tables
from jobs.cli import run_command
from jobs.lake import Lake
from jobs.session import CONF_DIR, JARS_DIR, REPO_ROOT

pytestmark = pytest.mark.slow


# These tests are about splitting; the annotate stages have their own (test_annotate_job.py).
SPLIT_ONLY = ["--no-generate-embeddings", "--no-generate-captions"]


def split(lake, *args):
    return run_command(["split", "--output-path", str(lake), *map(str, args), *SPLIT_ONLY])


def clip_rows(spark, lake):
    return {(r.source_path, r.start_frame, r.end_frame, r.num_frames, r.clip_id)
            for r in tables.read_table(spark, lake, "clips").collect()}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, samples, cuts_video, bad_inputs):
    folder = tmp_path_factory.mktemp("input")
    os.makedirs(folder / "nested")
    shutil.copy(cuts_video, folder / "nested" / "three_scenes.mp4")
    shutil.copy(samples["bikes.mp4"], folder / "bikes.mp4")
    shutil.copy(samples["carphone_pristine.mp4"], folder / "carphone.MP4")
    for path in bad_inputs.values():
        shutil.copy(path, folder)
    (folder / "readme.txt").write_text("not listed: wrong extension")
    return folder


@pytest.fixture(scope="module")
def lake(spark, inputs, tmp_path_factory):
    lake = tmp_path_factory.mktemp("lake")
    summary = split(lake, "--input-video-path", inputs)
    assert summary["num_processed_videos"] == 3 + 6 and summary["num_error_videos"] == 6
    return lake


def test_videos_table(spark, lake, inputs):
    videos = {os.path.basename(r.source_path): r for r in tables.read_table(spark, lake, "videos").collect()}
    assert set(videos) == {"three_scenes.mp4", "bikes.mp4", "carphone.MP4", "empty.mp4", "notes.mp4",
                           "truncated.mp4", "garbage.mkv", "cut_short.mov", "audio_only.mp4"}
    bikes = videos["bikes.mp4"]
    assert (bikes.status, bikes.width, bikes.height, bikes.fps, bikes.num_frames, bikes.codec) == ("ok", 640, 272, 25.0, 250, "h264")
    assert bikes.video_id == ids.video_id(str(inputs / "bikes.mp4")) and bikes.source_path == str(inputs / "bikes.mp4")
    assert videos["audio_only.mp4"].error == "not a video: audio only (aac)"
    assert videos["empty.mp4"].error == "empty file (0 bytes)"
    assert "decode failed part-way" in videos["cut_short.mov"].error
    for name in ("empty.mp4", "notes.mp4", "truncated.mp4", "garbage.mkv", "cut_short.mov", "audio_only.mp4"):
        assert videos[name].status == "error" and videos[name].num_clips == 0 and videos[name].error


def test_clip_boundaries_follow_known_cuts(spark, lake, inputs):
    source = str(inputs / "nested" / "three_scenes.mp4")
    clips = sorted((r.start_frame, r.end_frame) for r in
                   tables.read_table(spark, lake, "clips").where(f"source_path = '{source}'").collect())
    crop = FPS // 2
    assert clips == [(crop, 99 - crop), (100 + crop, 179 - crop), (180 + crop, 310 - crop)]


def test_clip_files_are_h264_with_the_recorded_frames(spark, lake):
    rows = tables.read_table(spark, lake, "clips").collect()
    assert len(rows) == 3 + 2 + 1  # three scenes, bikes' two shots, carphone without a cut
    for r in rows:
        assert r.location == os.path.join(str(lake), "media", "clips", f"{r.clip_id}.mp4")
        assert r.clip_id == ids.clip_id(r.source_path, r.start_frame, r.end_frame)
        with av.open(r.location) as c:
            s = c.streams.video[0]
            assert (s.codec_context.name, s.codec_context.pix_fmt) == ("h264", "yuv420p")
            assert sum(1 for _ in c.decode(s)) == r.num_frames == r.end_frame - r.start_frame
        assert os.path.getsize(r.location) == r.num_bytes and r.filtered_by is None
    assert sorted(os.listdir(os.path.join(lake, "media", "clips"))) == sorted(f"{r.clip_id}.mp4" for r in rows)


def test_second_run_changes_nothing(spark, lake, inputs):
    before = {name: tables.latest_version(spark, lake, name) for name in ("videos", "clips")}
    rows_before = clip_rows(spark, lake)
    summary = split(lake, "--input-video-path", inputs)
    assert summary["num_processed_videos"] == 0 and summary["num_skipped_videos"] == 9
    assert {name: tables.latest_version(spark, lake, name) for name in ("videos", "clips")} == before
    assert clip_rows(spark, lake) == rows_before
    runs = tables.read_table(spark, lake, "runs").collect()
    assert len(runs) == 2 and {r.num_input_videos for r in runs} == {9}
    first = min(runs, key=lambda r: r.started_at)
    assert (first.num_clips, first.num_error_videos) == (6, 6)
    assert json.loads(first.arguments)["splitting_algorithm"] == "transnetv2"


def test_a_wave_too_big_for_the_driver_commits_the_same_rows_through_spark(spark, lake, inputs, tmp_path, monkeypatch):
    """The module's lake got its small wave from delta-rs (jobs.lake_rs.takes); Spark's MERGE writes the same rows."""
    monkeypatch.setenv(lake_rs.ROWS_ENV, "0")  # every commit by Spark, as a user may ask
    chosen = [str(inputs / "nested" / "three_scenes.mp4"), str(inputs / "empty.mp4")]
    (tmp_path / "list.json").write_text(json.dumps(chosen))
    split(tmp_path / "lake", "--input-video-list-json-path", tmp_path / "list.json")

    def rows(lake, name):  # (a clip's bytes depend on the encoder's threads, which follow the task's share of cores)
        frame = tables.read_table(spark, lake, name).where(F.col("source_path").isin(chosen))
        dropped = ["run_id", "processed_at", "processing_s"] + (["location", "num_bytes"] if name == "clips" else [])
        return sorted(tuple(r) for r in frame.drop(*dropped).collect())

    for name in ("videos", "clips"):
        assert rows(tmp_path / "lake", name) == rows(lake, name) and rows(lake, name)
    assert len(rows(lake, "clips")) == 3


def test_rows_collected_for_delta_rs_keep_exact_instants_in_any_time_zone(spark):
    instant = 1_767_225_600_123_456  # 2026-01-01T00:00:00.123456Z, in microseconds
    zone = spark.conf.get("spark.sql.session.timeZone")
    try:
        spark.conf.set("spark.sql.session.timeZone", "America/New_York")
        rows = spark.range(1).select(F.timestamp_micros(F.lit(instant)).alias("created_at"), F.lit("c").alias("clip_id"))
        frame = lake_rs.collected(rows)
    finally:
        spark.conf.set("spark.sql.session.timeZone", zone)
    assert frame["created_at"][0] == pd.Timestamp("2026-01-01T00:00:00.123456Z") and frame["clip_id"][0] == "c"


def test_spark_reads_a_table_delta_rs_checkpointed(spark, tmp_path):
    lake = Lake.at(str(tmp_path / "lake"))
    for i in range(10):
        lake_rs.merge_rows(lake, "runs", pd.DataFrame([{"run_id": f"r{i}", "pipeline": "split"}]))
    for version in range(10):  # Spark finds the checkpoint and reads the table from it
        (tmp_path / "lake" / "runs" / "_delta_log" / f"{version:020d}.json").unlink()
    assert sorted(r.run_id for r in tables.read_table(spark, lake, "runs").collect()) == [f"r{i}" for i in range(10)]


def test_sql_over_the_lake(spark, lake, capsys):
    rows = run_command(["sql", "--output-path", str(lake),
                        "SELECT v.status, count(c.clip_id) AS clips FROM videos v LEFT JOIN clips c USING (video_id) "
                        "GROUP BY v.status ORDER BY v.status"])
    assert [tuple(r) for r in rows] == [("error", 0), ("ok", 6)]
    out = capsys.readouterr().out
    assert "status" in out.splitlines()[0] and "error" in out
    # --max-rows: the rows shown and returned, and a line saying more were left out
    rows = run_command(["sql", "--output-path", str(lake), "--max-rows", "2", "SELECT clip_id FROM clips ORDER BY clip_id"])
    lines = capsys.readouterr().out.splitlines()
    assert len(rows) == 2 and lines[2:] == [*(r.clip_id for r in rows), "(first 2 rows shown; --max-rows to see more)"]


def test_retry_errors_reprocesses_fixed_files(spark, tmp_path, samples, bad_inputs):
    folder = tmp_path / "in"
    os.makedirs(folder)
    shutil.copy(bad_inputs["empty"], folder / "later.mp4")
    lake = tmp_path / "lake"
    assert split(lake, "--input-video-path", folder)["num_error_videos"] == 1
    shutil.copy(samples["carphone_pristine.mp4"], folder / "later.mp4")  # the upload completed
    assert split(lake, "--input-video-path", folder)["num_processed_videos"] == 0
    summary = split(lake, "--input-video-path", folder, "--retry-errors")
    assert (summary["num_processed_videos"], summary["num_error_videos"], summary["num_clips"]) == (1, 0, 1)
    (video,) = tables.read_table(spark, lake, "videos").collect()
    assert video.status == "ok" and video.error is None


def test_json_list_fixed_stride_and_limit(spark, tmp_path, samples):
    listed = [str(samples["bikes.mp4"]), str(samples["carphone_pristine.mp4"])]
    list_file = tmp_path / "videos.json"
    list_file.write_text(json.dumps(listed))
    lake = tmp_path / "lake"
    split(lake, "--input-video-list-json-path", list_file, "--splitting-algorithm", "fixed-stride",
          "--fixed-stride-split-duration", 4, "--limit", 1, "--no-generate-embeddings", "--no-generate-captions")
    assert sorted((r.source_path, r.start_frame, r.end_frame) for r in tables.read_table(spark, lake, "clips").collect()) == [
        (listed[0], 0, 100), (listed[0], 100, 200), (listed[0], 200, 250)]


def test_wrong_options_fail_before_any_work(tmp_path, inputs, capsys):
    with pytest.raises(SystemExit):
        split(tmp_path / "lake", "--input-video-path", tmp_path / "missing")
    assert "does not exist" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # real videos to split: only the early check keeps them from being split
        split(tmp_path / "lake", "--input-video-path", inputs, "--transnetv2-threshold", 2)
    assert "threshold" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "lake")


def _cli(*args, **kw):
    return subprocess.Popen([sys.executable, "-m", "jobs.cli", *map(str, args)], cwd=REPO_ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True, **kw)


def test_killed_run_resumes_to_the_same_tables(spark, lake, inputs, tmp_path):
    """SIGKILL the job once it has written clip files, run again: same tables as one clean run."""
    resumed = tmp_path / "lake"
    proc = _cli("split", "--input-video-path", inputs, "--output-path", resumed, *SPLIT_ONLY)
    deadline = time.time() + 600
    while not glob.glob(str(resumed / "media" / "clips" / "*.mp4")) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert proc.poll() is None, "the job ended before the kill: " + proc.stdout.read()
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert glob.glob(str(resumed / "media" / "clips" / "*.mp4")), "the kill came before any clip was written"
    runs = tables.read_table(spark, resumed, "runs").collect() if tables.exists(spark, resumed, "runs") else []
    assert not [r for r in runs if r.status == "done"]  # killed mid-run: the run never finished
    split(resumed, "--input-video-path", inputs)
    assert clip_rows(spark, resumed) == clip_rows(spark, lake)
    status = lambda lk: {(r.video_id, r.status, r.num_clips, r.error) for r in tables.read_table(spark, lk, "videos").collect()}  # noqa: E731
    assert status(resumed) == status(lake)
    assert sorted(os.listdir(resumed / "media" / "clips")) == sorted(os.listdir(lake / "media" / "clips"))


def test_spark_submit(spark, tmp_path, samples):
    folder = tmp_path / "in"
    os.makedirs(folder)
    shutil.copy(samples["carphone_pristine.mp4"], folder)
    lake = tmp_path / "lake"
    submit = os.path.join(os.path.dirname(sys.executable), "spark-submit")
    jars = ",".join(sorted(glob.glob(str(JARS_DIR / "*.jar"))))
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable}
    result = subprocess.run(
        [submit, "--master", "local[2]", "--properties-file", str(CONF_DIR / "local.conf"), "--jars", jars,
         str(REPO_ROOT / "jobs" / "split_annotate.py"), "--input-video-path", str(folder), "--output-path", str(lake),
         "--no-generate-captions"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "video-s per wall-s" in result.stdout
    run = tables.read_table(spark, lake, "runs").first()
    assert run.spark_master == "local[2]" and run.num_clips == 1
    assert run.num_embedded_clips == 1  # the default offline embedder ran in the submitted job


JVM_NOISE = ("SLF4J", "log4j", " WARN ", "NativeCodeLoader", "jdk.incubator")
PROGRESS_LINE = re.compile(r"^\[stage \d+\] .+: \d+/\d+ tasks", re.M)
LOG4J_LINE = re.compile(r"^\d\d/\d\d/\d\d \d\d:\d\d:\d\d (WARN|INFO) \S+: ", re.M)  # Spark's console format


def test_console_shows_progress_not_jvm_noise_and_verbose_shows_spark_log(tmp_path, samples):
    """The console of a real run: summary and progress lines only; --verbose brings Spark's own log back.

    Spark's log under --verbose is the proof that SLF4J binds to log4j2: with the AWS SDK bundle's
    slf4j 1.7 ahead of Spark's JARs, it fell to the no-op logger and said nothing at all.
    """
    folder = tmp_path / "in"
    os.makedirs(folder)
    shutil.copy(samples["carphone_pristine.mp4"], folder)
    lake = tmp_path / "lake"
    env = {**os.environ, "CLIPLAKE_PROGRESS_INTERVAL": "0.2"}  # a short run still shows a line

    def cli(*args):
        result = subprocess.run([sys.executable, "-m", "jobs.cli", *map(str, args)], cwd=REPO_ROOT, env=env,
                                capture_output=True, text=True, timeout=900)
        assert result.returncode == 0, result.stdout + result.stderr
        return result

    quiet = cli("split", "--input-video-path", folder, "--output-path", lake, *SPLIT_ONLY)
    output = quiet.stdout + quiet.stderr
    assert [line for line in output.splitlines() if any(word in line for word in JVM_NOISE)] == []
    assert "video-s per wall-s" in quiet.stdout and PROGRESS_LINE.search(quiet.stderr), output
    assert not PROGRESS_LINE.search(quiet.stdout)  # progress goes to stderr only

    verbose = cli("sql", "--verbose", "--output-path", lake, "SELECT count(*) AS clips FROM clips")
    assert LOG4J_LINE.search(verbose.stderr) and "SLF4J" not in verbose.stderr, verbose.stderr
    assert verbose.stdout.split()[-1] == "1"


def test_driver_jvm_maps_the_class_archive_make_setup_built(spark):
    """`make setup` ran jobs.jvm_archive: the session cliplake started maps Spark's classes from it."""
    path = jvm_archive.archive_path()
    assert path.is_file() and path.stat().st_size > 50 * 2**20, f"make setup should have built {path}"
    pid = spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid()
    info = subprocess.run(["jcmd", str(pid), "VM.info"], capture_output=True, text=True, check=True).stdout
    assert f"-XX:SharedArchiveFile={path}" in info
    # the JDK's own archive is ~13 MB; with ours on top the mapping is larger than our file alone
    mapped = int(re.search(r"CDS archive\(s\) mapped at: .*, size (\d+)", info).group(1))
    assert mapped > path.stat().st_size, info[:2000]
