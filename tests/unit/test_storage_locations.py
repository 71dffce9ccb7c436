"""Locations, option redaction, zips and s3a settings: the pure parts of S3 support (no JVM, no server)."""

import os
import re
import zipfile

import pytest

from curate_udfs import objectstore, storage
from curate_udfs.objectstore import S3Access
from jobs import presigned, s3a, storage_options
from jobs.cli import build_parser
from jobs.session import REPO_ROOT


def test_s3_uris():
    assert objectstore.split_uri("s3://bucket/a/b.mp4") == ("bucket", "a/b.mp4")
    assert objectstore.split_uri("s3a://bucket") == ("bucket", "")
    assert objectstore.normalize("s3a://bucket/lake/") == "s3://bucket/lake"
    assert objectstore.normalize("s3://bucket/") == "s3://bucket"
    assert not objectstore.is_s3("/data/s3/videos") and not objectstore.is_s3(None)
    with pytest.raises(ValueError, match="no bucket"):
        objectstore.split_uri("s3:///key")
    with pytest.raises(ValueError, match="http"):
        S3Access(endpoint_url="127.0.0.1:9000")


def test_join_local_and_s3(tmp_path):
    assert storage.join("s3://b/lake/", "media", "x.mp4") == "s3://b/lake/media/x.mp4"
    assert storage.join(str(tmp_path), "media", "x.mp4") == os.path.join(str(tmp_path), "media", "x.mp4")


def test_local_writes_and_copies(tmp_path):
    target = str(tmp_path / "a" / "b.bin")
    storage.write_bytes_atomic(target, b"data")
    with storage.local_copy(target) as path:
        assert path == target and open(path, "rb").read() == b"data"
    finished = tmp_path / "shard.tar"
    finished.write_bytes(b"tar")
    storage.put_file(str(finished), str(tmp_path / "out" / "000000.tar"))
    assert (tmp_path / "out" / "000000.tar").read_bytes() == b"tar" and not finished.exists()
    assert os.listdir(tmp_path / "out") == ["000000.tar"]
    storage.remove_quietly(target)
    storage.remove_quietly(target)  # already gone: fine


def test_presigned_urls_are_not_recorded():
    url = "https://bucket.s3.amazonaws.com/in.zip?X-Amz-Signature=abc123&X-Amz-Credential=AKIA"
    args = build_parser().parse_args(["split", "--input-presigned-s3-url", url, "--output-path", "/tmp/lake"])
    recorded = storage_options.arguments_json(args)
    assert "abc123" not in recorded and "AKIA" not in recorded and storage_options.REDACTED in recorded
    assert '"output_presigned_s3_url": null' in recorded


def test_staging_folder_ignores_the_signature():
    a = presigned.staging_folder("https://h/bucket/in.zip?X-Amz-Signature=1")
    assert a == presigned.staging_folder("https://h/bucket/in.zip?X-Amz-Signature=2")
    assert a != presigned.staging_folder("https://h/bucket/other.zip?X-Amz-Signature=1")


def test_presigned_options_are_checked_first():
    parse = build_parser().parse_args
    with pytest.raises(ValueError, match="https://"):
        presigned.check_options(parse(["split", "--input-presigned-s3-url", "file:///etc/passwd", "--output-path", "l"]))
    with pytest.raises(ValueError, match="give one"):
        presigned.check_options(parse(["split", "--input-presigned-s3-url", "https://h/x.zip", "--input-video-path", "v",
                                       "--output-path", "l"]))


def test_zip_folder_stores_media_and_deflates_the_rest(tmp_path):
    (tmp_path / "lake" / "media").mkdir(parents=True)
    (tmp_path / "lake" / "media" / "c.mp4").write_bytes(os.urandom(1000))
    (tmp_path / "lake" / "log.json").write_text("{}" * 500)
    archive = str(tmp_path / "out.zip")
    assert presigned.zip_folder(str(tmp_path / "lake"), archive) == 2
    with zipfile.ZipFile(archive) as z:
        kinds = {i.filename: i.compress_type for i in z.infolist()}
    assert kinds == {"media/c.mp4": zipfile.ZIP_STORED, "log.json": zipfile.ZIP_DEFLATED}


def test_s3a_settings_for_an_endpoint_and_a_profile(tmp_path, monkeypatch):
    credentials = tmp_path / "credentials"
    credentials.write_text("[writer]\naws_access_key_id = AK\naws_secret_access_key = SK\naws_session_token = TOK\n")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    endpoint = {
        "fs.s3a.endpoint": "http://127.0.0.1:9000", "fs.s3a.endpoint.region": "eu-west-1",
        "fs.s3a.path.style.access": "true", "fs.s3a.connection.ssl.enabled": "false",
    }
    settings = s3a.hadoop_settings("s3://lake-bucket/x", S3Access("writer", "http://127.0.0.1:9000"))
    assert settings == {  # the profile by name and files: S3A resolves it, and refreshes what expires
        **endpoint,
        "fs.s3a.bucket.lake-bucket.aws.credentials.provider": "cliplake.s3a.ProfileCredentialsProvider",
        "fs.s3a.bucket.lake-bucket.cliplake.profile": "writer",
        "fs.s3a.bucket.lake-bucket.cliplake.profile.credentials.file": str(credentials),
        "fs.s3a.bucket.lake-bucket.cliplake.profile.config.file": os.devnull,
    }
    frozen = s3a.hadoop_settings("s3://lake-bucket/x", S3Access("writer", "http://127.0.0.1:9000"), refreshing=False)
    assert frozen == {  # without cliplake's provider on the class path: the credentials of the moment
        **endpoint,
        "fs.s3a.bucket.lake-bucket.access.key": "AK", "fs.s3a.bucket.lake-bucket.secret.key": "SK",
        "fs.s3a.bucket.lake-bucket.session.token": "TOK",
        "fs.s3a.bucket.lake-bucket.aws.credentials.provider": "org.apache.hadoop.fs.s3a.TemporaryAWSCredentialsProvider",
    }
    assert s3a.hadoop_settings("s3://b/x", S3Access(None, None)) == {}
    with pytest.raises(Exception, match="'nobody' not found"):
        s3a.hadoop_settings("s3://b/x", S3Access("nobody", None))


def test_s3a_profile_files_are_left_to_the_sdk_when_not_named(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("AWS_SHARED_CREDENTIALS_FILE", raising=False)
    monkeypatch.delenv("AWS_CONFIG_FILE", raising=False)
    (tmp_path / ".aws").mkdir()
    (tmp_path / ".aws" / "credentials").write_text("[writer]\naws_access_key_id = AK\naws_secret_access_key = SK\n")
    assert s3a.hadoop_settings("s3://b/x", S3Access("writer", None)) == {
        "fs.s3a.bucket.b.aws.credentials.provider": "cliplake.s3a.ProfileCredentialsProvider",
        "fs.s3a.bucket.b.cliplake.profile": "writer",
    }


def test_s3a_provider_is_built_for_the_pinned_hadoop():
    def hadoop_version(pom: str) -> str:
        text = (REPO_ROOT / "conf" / "maven" / pom).read_text()
        return re.search(r"<hadoop.version>(.+?)</hadoop.version>", text)[1]

    assert hadoop_version("s3a-profile/pom.xml") == hadoop_version("pom.xml")


# Commands whose lake goes through jobs.lake.Lake (dedup and shard still take local paths only).
LAKE_COMMANDS = ("split", "caption", "sql")


def test_lake_commands_take_the_storage_options():
    parser = build_parser()
    (commands,) = [a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction"]
    for name in LAKE_COMMANDS:
        assert {"--output-s3-profile-name", "--catalog", "--schema"} <= set(commands.choices[name]._option_string_actions), name


def test_error_messages_name_the_object_not_the_credentials():
    import botocore.exceptions

    denied = botocore.exceptions.ClientError({"Error": {"Code": "AccessDenied", "Message": "no"},
                                              "ResponseMetadata": {"HTTPStatusCode": 403}}, "PutObject")
    message = str(objectstore._explain(denied, "s3://b/k", S3Access("writer", None)))
    assert message == "s3://b/k: access denied (AccessDenied) using profile 'writer'"
    missing = botocore.exceptions.ClientError({"Error": {"Code": "NoSuchBucket"}}, "ListObjectsV2")
    assert str(objectstore._explain(missing, "s3://b/k", S3Access())) == "s3://b/k: bucket 'b' does not exist"
