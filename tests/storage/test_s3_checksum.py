"""The shard resume check of an s3:// tar: one HeadObject against the CRC32 its upload carried, sha256 as the fallback.

Against moto's server on loopback, which keeps a CRC32 for an upload that names its algorithm
(a PUT, or a multipart upload with a full-object checksum) and returns it on HeadObject with
ChecksumMode=ENABLED, and keeps none for an upload sent without one: both branches run here.
Every request the code under test sends is recorded with a botocore event hook on its client.
"""

import zlib

import pytest

from curate_udfs import objectstore
from curate_udfs.objectstore import S3Access, crc32_text
from curate_udfs.sharding.tars import is_complete, write_tar_to

BUCKET = "crccheck"
SIZES = {"single-put": 2_000, "multipart": 9 << 20}  # boto3 uploads a file over 8 MiB in parts


@pytest.fixture
def recorded(s3_env, monkeypatch):
    """``recorded()``: fresh objectstore clients (made now, from this test's environment) and the list of
    ``(operation, params)`` their requests append to."""
    def recorded() -> tuple[S3Access, list[tuple[str, dict]]]:
        monkeypatch.setattr(objectstore, "_clients", {})
        access, sent = S3Access(), []
        objectstore.client(access).meta.events.register(
            "before-parameter-build.s3", lambda model, params, **_: sent.append((model.name, params)))
        return access, sent
    return recorded


@pytest.fixture
def bucket(s3):
    if BUCKET not in [b["Name"] for b in s3.list_buckets()["Buckets"]]:
        s3.create_bucket(Bucket=BUCKET)
    return BUCKET


def operations(sent) -> list[str]:
    return [name for name, _ in sent]


def write(key: str, size: int, access: S3Access):
    payload = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    return write_tar_to(f"s3://{BUCKET}/{key}", [("clip", "mp4", payload)], access)


def replace_one_byte(s3, key: str, **put_args) -> None:
    """Another writer puts the same number of other bytes at ``key``."""
    data = bytearray(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    data[600] ^= 0xFF
    s3.put_object(Bucket=BUCKET, Key=key, Body=bytes(data), **put_args)


@pytest.mark.parametrize("size", SIZES.values(), ids=SIZES.keys())
def test_uploaded_tar_carries_its_crc32_and_resume_reads_only_its_head(s3, bucket, recorded, size):
    access, sent = recorded()
    key = f"v0/video/part_000000/{size}.tar"
    written = write(key, size, access)
    if size > 8 << 20:
        create = next(params for name, params in sent if name == "CreateMultipartUpload")
        assert (create["ChecksumType"], create["ChecksumAlgorithm"]) == ("FULL_OBJECT", "CRC32")
        assert "CompleteMultipartUpload" in operations(sent)
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    assert written.num_bytes == len(body) and written.crc32 == crc32_text(zlib.crc32(body))
    kept = s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    assert kept["ChecksumCRC32"] == written.crc32  # the store's own CRC32 of what it received
    assert kept.get("ChecksumType", "FULL_OBJECT") == "FULL_OBJECT"

    sent.clear()
    assert is_complete(f"s3://{bucket}/{key}", written.num_bytes, written.sha256, access, written.crc32)
    assert operations(sent) == ["HeadObject"] and sent[0][1]["ChecksumMode"] == "ENABLED"


@pytest.mark.parametrize("size", SIZES.values(), ids=SIZES.keys())
def test_replaced_tar_is_found_by_its_crc32_without_a_download(s3, bucket, recorded, size):
    access, sent = recorded()
    key = f"v0/video/part_000001/{size}.tar"
    written = write(key, size, access)
    replace_one_byte(s3, key, ChecksumAlgorithm="CRC32")  # the store keeps the new bytes' CRC32

    sent.clear()
    assert not is_complete(f"s3://{bucket}/{key}", written.num_bytes, written.sha256, access, written.crc32)
    assert operations(sent) == ["HeadObject"]


def test_without_a_stored_checksum_resume_streams_the_sha256(s3, bucket, recorded, monkeypatch):
    """A client told to send checksums only when required (the setting for stores that reject them) uploads
    none, so the store has none to return: the check downloads and hashes, and still finds a replaced tar."""
    monkeypatch.setenv("AWS_REQUEST_CHECKSUM_CALCULATION", "when_required")
    access, sent = recorded()
    key = "v0/video/part_000002/000000.tar"
    written = write(key, SIZES["single-put"], access)
    assert "ChecksumCRC32" not in next(params for name, params in sent if name == "PutObject")
    assert written.crc32 is not None  # recorded all the same: the manifest row does not depend on the store
    assert "ChecksumCRC32" not in s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")

    uri = f"s3://{bucket}/{key}"
    sent.clear()
    assert is_complete(uri, written.num_bytes, written.sha256, access, written.crc32)
    assert operations(sent) == ["HeadObject", "GetObject"]

    objectstore.client(access).put_object(Bucket=bucket, Key=key, Body=b"\0" * written.num_bytes)  # no checksum kept
    sent.clear()
    assert not is_complete(uri, written.num_bytes, written.sha256, access, written.crc32)
    assert operations(sent) == ["HeadObject", "GetObject"]


def test_row_from_before_crc32s_is_checked_by_sha256(s3, bucket, recorded):
    """A manifest row an older cliplake wrote has no crc32: its tar is hashed even where the store keeps one."""
    access, sent = recorded()
    key = "v0/video/part_000003/000000.tar"
    written = write(key, SIZES["single-put"], access)
    uri = f"s3://{bucket}/{key}"

    sent.clear()
    assert is_complete(uri, written.num_bytes, written.sha256, access, crc32=None)
    assert operations(sent) == ["HeadObject", "GetObject"]
    replace_one_byte(s3, key, ChecksumAlgorithm="CRC32")
    assert not is_complete(uri, written.num_bytes, written.sha256, access, crc32=None)


def test_head_of_a_missing_object_or_a_wrong_size_reads_nothing_more(bucket, recorded):
    access, sent = recorded()
    key = "v0/video/part_000004/000000.tar"
    written = write(key, SIZES["single-put"], access)
    sent.clear()
    assert not is_complete(f"s3://{bucket}/{key}", written.num_bytes + 1, written.sha256, access, written.crc32)
    assert not is_complete(f"s3://{bucket}/missing.tar", written.num_bytes, written.sha256, access, written.crc32)
    assert operations(sent) == ["HeadObject", "HeadObject"]
