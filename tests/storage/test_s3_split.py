"""The split job with input and lake on S3 (moto's server on loopback), read back by independent readers.

The job runs as users run it, ``python -m jobs.cli`` in its own process (its own JVM, whose
s3a reads credentials from the environment); the tables are read back with delta-rs, the clip
files with boto3 and PyAV, never through the code under test.
"""

import io
import json
import os
import subprocess
import sys

import av
import pytest
from deltalake import DeltaTable

from curate_udfs import ids
from jobs.cli import run_command
from jobs.session import REPO_ROOT

pytestmark = pytest.mark.slow


def cli(env, *args, timeout=900):
    """Run ``cliplake ARGS`` in a fresh process with ``env`` as its AWS environment; its output."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    full_env.update(env, PYSPARK_PYTHON=sys.executable)
    result = subprocess.run([sys.executable, "-m", "jobs.cli", *map(str, args)], cwd=REPO_ROOT, env=full_env,
                            capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    return result.stdout


def delta(s3_env, uri):
    """The Delta table at ``uri`` through delta-rs, an independent reader."""
    options = {"AWS_ENDPOINT_URL": s3_env["AWS_ENDPOINT_URL"], "AWS_ALLOW_HTTP": "true",
               "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1"}
    return DeltaTable(uri, storage_options=options)


def rows(s3_env, uri):
    return delta(s3_env, uri).to_pyarrow_table().to_pylist()


@pytest.fixture(scope="module")
def raw_videos(s3_server, samples, cuts_video):
    """A bucket of raw videos under videos/: two real ones (one nested) and an empty file."""
    import boto3

    s3 = boto3.client("s3", endpoint_url=s3_server.endpoint_url, region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    s3.create_bucket(Bucket="raw")
    s3.upload_file(str(samples["bikes.mp4"]), "raw", "videos/bikes.mp4")
    s3.upload_file(cuts_video, "raw", "videos/nested/three_scenes.mp4")
    s3.put_object(Bucket="raw", Key="videos/empty.mp4", Body=b"")
    s3.put_object(Bucket="raw", Key="videos/notes.txt", Body=b"not a video")
    s3.create_bucket(Bucket="lake")
    return ["s3://raw/videos/bikes.mp4", "s3://raw/videos/empty.mp4", "s3://raw/videos/nested/three_scenes.mp4"]


@pytest.fixture(scope="module")
def s3_lake(raw_videos, s3_server, tmp_path_factory):
    env = {"AWS_ENDPOINT_URL": s3_server.endpoint_url, "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
    out = cli(env, "split", "--input-video-path", "s3://raw/videos/", "--output-path", "s3://lake/curated",
              "--no-generate-captions")
    assert "lake: s3://lake/curated" in out
    return "s3://lake/curated"


def test_tables_on_s3_read_back_by_delta_rs(s3_env, s3_lake, raw_videos):
    videos = {r["source_path"]: r for r in rows(s3_env, f"{s3_lake}/videos")}
    assert set(videos) == set(raw_videos)
    bikes = videos["s3://raw/videos/bikes.mp4"]
    assert (bikes["status"], bikes["num_clips"], bikes["width"], bikes["num_frames"]) == ("ok", 2, 640, 250)
    assert bikes["video_id"] == ids.video_id("s3://raw/videos/bikes.mp4")
    assert videos["s3://raw/videos/empty.mp4"]["error"] == "empty file (0 bytes)"
    (run,) = rows(s3_env, f"{s3_lake}/runs")
    assert (run["num_input_videos"], run["num_clips"], run["num_error_videos"]) == (3, 5, 1)


def test_clip_files_in_the_bucket_decode_to_the_recorded_frames(s3_env, s3_lake, s3, list_keys):
    clips = rows(s3_env, f"{s3_lake}/clips")
    assert len(clips) == 5
    for clip in clips:
        assert clip["location"] == f"{s3_lake}/media/clips/{clip['clip_id']}.mp4"
        data = s3.get_object(Bucket="lake", Key=clip["location"].removeprefix("s3://lake/"))["Body"].read()
        assert len(data) == clip["num_bytes"]
        with av.open(io.BytesIO(data)) as container:
            assert sum(1 for _ in container.decode(video=0)) == clip["num_frames"]
    # Nothing but the clips and no temporary objects: S3 writes are single PUTs.
    assert list_keys("lake", "curated/media/") == sorted(f"curated/media/clips/{c['clip_id']}.mp4" for c in clips)
    assert not [k for k in list_keys("lake") if "_cliplake_write_check" in k]


def test_embeddings_of_clips_read_from_s3(s3_env, s3_lake):
    """The annotate stages read the clip files back from the bucket (through local copies)."""
    embeddings = rows(s3_env, f"{s3_lake}/clip_embeddings")
    clips = rows(s3_env, f"{s3_lake}/clips")
    assert sorted(e["clip_id"] for e in embeddings) == sorted(c["clip_id"] for c in clips)
    assert all(e["dim"] == len(e["embedding"]) > 0 for e in embeddings) and not [c for c in clips if c["error"]]


def test_second_run_changes_nothing_and_sql_reads_the_s3_lake(s3_env, s3_lake, raw_videos, s3, capsys):
    """In this process (whose JVM and executors have no AWS environment): named profiles reach the list's
    bucket and the lake's through S3A, set up by the driver. (A folder listing and the videos are read by
    the executors, which resolve profiles themselves, so this run names its videos in a JSON list.)"""
    versions = {name: delta(s3_env, f"{s3_lake}/{name}").version() for name in ("videos", "clips")}
    s3.put_object(Bucket="raw", Key="lists/all.json", Body=json.dumps(raw_videos).encode())
    summary = run_command(["split", "--input-video-list-json-path", "s3://raw/lists/all.json", "--output-path", s3_lake,
                           "--input-video-list-s3-profile-name", "lister", "--output-s3-profile-name", "writer",
                           "--input-s3-profile-name", "reader", "--no-generate-captions"])
    assert (summary["num_skipped_videos"], summary["num_processed_videos"]) == (3, 0)
    assert {name: delta(s3_env, f"{s3_lake}/{name}").version() for name in ("videos", "clips")} == versions
    result = run_command(["sql", "--output-path", s3_lake, "--output-s3-profile-name", "writer",
                          "SELECT status, count(*) AS n FROM videos GROUP BY status ORDER BY status"])
    assert [tuple(r) for r in result] == [("error", 1), ("ok", 2)]
    assert "status" in capsys.readouterr().out


def test_json_list_and_profiles_without_default_credentials(s3_env, raw_videos, s3, s3_server):
    """Only named profiles exist: listing, reading videos and writing the lake each use their own."""
    s3.put_object(Bucket="raw", Key="lists/videos.json", Body=json.dumps(["s3://raw/videos/bikes.mp4"]).encode())
    env = {"AWS_ENDPOINT_URL": s3_server.endpoint_url, "AWS_SHARED_CREDENTIALS_FILE": s3_env["AWS_SHARED_CREDENTIALS_FILE"],
           "AWS_CONFIG_FILE": os.devnull, "AWS_DEFAULT_REGION": "us-east-1"}
    cli(env, "split", "--input-video-list-json-path", "s3://raw/lists/videos.json", "--output-path", "s3://lake/profiled",
        "--input-video-list-s3-profile-name", "lister", "--input-s3-profile-name", "reader",
        "--output-s3-profile-name", "writer", "--splitting-algorithm", "fixed-stride", "--fixed-stride-split-duration", 5,
        "--no-generate-embeddings", "--no-generate-captions")
    clips = sorted((r["source_path"], r["start_frame"], r["end_frame"]) for r in rows(s3_env, "s3://lake/profiled/clips"))
    assert clips == [("s3://raw/videos/bikes.mp4", 0, 125), ("s3://raw/videos/bikes.mp4", 125, 250)]
