"""--input-presigned-s3-url / --output-presigned-s3-url with URLs boto3 signs against the local S3 server.

The job runs with no AWS credentials at all; the signed URLs never reach the output or the tables.
"""

import io
import os
import zipfile

import pytest

from jobs import presigned, tables
from jobs.cli import run_command

pytestmark = pytest.mark.slow

AWS_VARIABLES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL", "AWS_SHARED_CREDENTIALS_FILE")


@pytest.fixture
def signed(s3, samples, cuts_video):
    """A zip of two videos in S3, a GET URL for it, a PUT URL for the results, a GET URL of a missing object."""
    s3.create_bucket(Bucket="handoff")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.write(samples["carphone_pristine.mp4"], "batch/carphone.mp4")
        z.write(cuts_video, "batch/more/three_scenes.mp4")
    s3.put_object(Bucket="handoff", Key="in/videos.zip", Body=buffer.getvalue())
    url = lambda method, key: s3.generate_presigned_url(method, Params={"Bucket": "handoff", "Key": key}, ExpiresIn=600)  # noqa: E731
    return {"input": url("get_object", "in/videos.zip"), "output": url("put_object", "out/results.zip"),
            "missing": url("get_object", "in/missing.zip")}


def secret_part(url: str) -> str:
    return url.split("?", 1)[1]


def test_zip_in_zip_out_without_credentials(signed, s3, spark, tmp_path, monkeypatch, capsys):
    for name in AWS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    lake = tmp_path / "lake"
    summary = run_command(["split", "--input-presigned-s3-url", signed["input"], "--output-presigned-s3-url",
                           signed["output"], "--output-path", str(lake), "--no-generate-captions"])
    assert (summary["num_processed_videos"], summary["num_clips"], summary["num_error_videos"]) == (2, 4, 0)
    out = capsys.readouterr()
    assert "uploaded a zip of" in out.out

    uploaded = zipfile.ZipFile(io.BytesIO(s3.get_object(Bucket="handoff", Key="out/results.zip")["Body"].read()))
    names = set(uploaded.namelist())
    on_disk = {os.path.relpath(os.path.join(d, f), lake) for d, _, fs in os.walk(lake) for f in fs}
    assert names == on_disk  # everything written, nothing else
    clips = tables.read_table(spark, str(lake), "clips").collect()
    assert {f"media/clips/{c.clip_id}.mp4" for c in clips} <= names
    assert any(n.startswith("videos/_delta_log/") for n in names) and any(n.startswith("runs/") for n in names)

    # The signature is a credential: not in the output, not in any table.
    everything = out.out + out.err + "".join(str(r) for name in ("videos", "clips", "runs")
                                             for r in tables.read_table(spark, str(lake), name).collect())
    for url in (signed["input"], signed["output"]):
        assert secret_part(url) not in everything and "Signature" not in everything
    assert "presigned URL, not recorded" in tables.read_table(spark, str(lake), "runs").first().arguments
    # The extracted input is gone once the job ended.
    assert not os.path.exists(presigned.staging_folder(signed["input"]))


def test_same_zip_again_skips_every_video(signed, spark, tmp_path, monkeypatch):
    """The staging folder is named by the object, not the signature, so ids repeat and a re-run skips."""
    lake = str(tmp_path / "lake")
    first = run_command(["split", "--input-presigned-s3-url", signed["input"], "--output-path", lake,
                         "--splitting-algorithm", "fixed-stride", "--no-generate-captions"])
    again = run_command(["split", "--input-presigned-s3-url", signed["input"] + "&x-id=GetObject", "--output-path", lake,
                         "--splitting-algorithm", "fixed-stride", "--no-generate-captions"])
    assert (first["num_processed_videos"], again["num_processed_videos"], again["num_skipped_videos"]) == (2, 0, 2)


def test_bad_links_fail_clearly_without_showing_them(signed, spark, tmp_path, capsys):
    with pytest.raises(SystemExit):
        # (no captions: the default model is not here, and the models are checked before the download)
        run_command(["split", "--input-presigned-s3-url", signed["missing"], "--output-path", str(tmp_path / "lake"),
                     "--no-generate-captions"])
    err = capsys.readouterr().err
    assert "--input-presigned-s3-url (host 127.0.0.1): HTTP 404" in err and secret_part(signed["missing"]) not in err
    assert not os.path.exists(tmp_path / "lake")
    with pytest.raises(SystemExit):
        run_command(["split", "--input-presigned-s3-url", signed["input"], "--output-presigned-s3-url", signed["output"],
                     "--output-path", "s3://handoff/lake"])
    assert "uploads a zip of a local --output-path" in capsys.readouterr().err
