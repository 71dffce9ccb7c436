"""S3 (and S3-compatible stores) through boto3: URIs, clients per profile, and the few operations jobs need.

Credentials come from boto3's usual chain (environment, shared files, SSO, instance roles), or
from a named profile. The endpoint comes from ``AWS_ENDPOINT_URL`` (``AWS_ENDPOINT_URL_S3``
first) for S3-compatible stores. Failures become :class:`~curate_udfs.errors.StorageError`
whose message names the object and the cause, never a credential or a signed URL.
"""

import base64
import heapq
import os
import threading
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Iterator

from curate_udfs.errors import EnvironmentProblem, StorageError

SCHEMES = ("s3://", "s3a://")


def is_s3(location: str | None) -> bool:
    """True for ``s3://bucket/key`` (or Hadoop's ``s3a://``) locations."""
    return bool(location) and location.startswith(SCHEMES)


def split_uri(uri: str) -> tuple[str, str]:
    """``("bucket", "key/part")`` of ``s3://bucket/key/part``; the key may be empty."""
    if not is_s3(uri):
        raise ValueError(f"not an s3:// URI: {uri}")
    bucket, _, key = uri.split("://", 1)[1].partition("/")
    if not bucket:
        raise ValueError(f"no bucket in {uri}")
    return bucket, key


def normalize(uri: str) -> str:
    """``s3://bucket/prefix`` without a trailing slash; ``s3a://`` is written ``s3://``."""
    bucket, key = split_uri(uri)
    return f"s3://{bucket}/{key}".rstrip("/") if key.strip("/") else f"s3://{bucket}"


def _endpoint_from_environment() -> str | None:
    return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None


@dataclass(frozen=True)
class S3Access:
    """How to reach one side (input, output, video list) of a job: a profile and an endpoint.

    Built on the driver and shipped to the workers inside a stage config, so executors use the
    same endpoint as the driver even when their environment differs. ``profile_name`` None
    means boto3's default credential chain. Holds no secret itself.

    Example::

        access = S3Access(profile_name="output")   # endpoint from AWS_ENDPOINT_URL, if set
    """

    profile_name: str | None = None
    endpoint_url: str | None = field(default_factory=_endpoint_from_environment)

    def __post_init__(self):
        if self.endpoint_url and not self.endpoint_url.startswith(("http://", "https://")):
            raise ValueError(f"S3 endpoint must start with http:// or https://, got {self.endpoint_url!r}")

    def describe(self) -> str:
        return f"profile {self.profile_name!r}" if self.profile_name else "the default AWS credential chain"


_clients: dict[S3Access, object] = {}
_clients_lock = threading.Lock()


def client(access: S3Access):
    """A boto3 S3 client for ``access``, one per worker process (clients are thread-safe, sessions are not)."""
    with _clients_lock:
        if access not in _clients:
            try:
                import boto3
                import botocore.config
                import botocore.exceptions
            except ModuleNotFoundError:
                raise EnvironmentProblem("s3:// paths need boto3: pip install 'cliplake[s3]'") from None
            try:
                session = boto3.session.Session(profile_name=access.profile_name)
            except botocore.exceptions.ProfileNotFound:
                raise EnvironmentProblem(
                    f"AWS profile {access.profile_name!r} not found in ~/.aws/credentials or ~/.aws/config") from None
            config = botocore.config.Config(retries={"max_attempts": 5, "mode": "standard"},
                                            s3={"addressing_style": "path" if access.endpoint_url else "auto"})
            _clients[access] = session.client("s3", endpoint_url=access.endpoint_url, config=config)
        return _clients[access]


def _explain(error: Exception, uri: str, access: S3Access) -> StorageError:
    """A :class:`StorageError` saying what went wrong with ``uri``, in words a user can act on."""
    import botocore.exceptions

    if isinstance(error, botocore.exceptions.NoCredentialsError):
        return StorageError(f"{uri}: no AWS credentials found ({access.describe()}); set AWS_ACCESS_KEY_ID/"
                            "AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or the job's --*-s3-profile-name option")
    if isinstance(error, botocore.exceptions.EndpointConnectionError):
        return StorageError(f"{uri}: cannot reach the S3 endpoint {access.endpoint_url or '(AWS)'}")
    if isinstance(error, botocore.exceptions.ClientError):
        code = str(error.response.get("Error", {}).get("Code", ""))
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        bucket, key = split_uri(uri)
        if code == "NoSuchBucket" or (code in ("404", "NotFound") and not key):
            return StorageError(f"{uri}: bucket {bucket!r} does not exist")
        if code in ("NoSuchKey", "404", "NotFound"):
            return StorageError(f"{uri}: no such object")
        if code in ("AccessDenied", "403", "Forbidden", "InvalidAccessKeyId", "SignatureDoesNotMatch",
                    "AllAccessDisabled", "AccountProblem") or status == 403:
            return StorageError(f"{uri}: access denied ({code or status}) using {access.describe()}")
        return StorageError(f"{uri}: S3 error {code or status}: {error.response.get('Error', {}).get('Message', '')}")
    return StorageError(f"{uri}: {type(error).__name__}: {error}")


def _call(uri: str, access: S3Access, operation, **kwargs):
    import botocore.exceptions

    try:
        return operation(**kwargs)
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as error:
        raise _explain(error, uri, access) from None


def read_bytes(uri: str, access: S3Access) -> bytes:
    """The whole object at ``uri``."""
    bucket, key = split_uri(uri)
    s3 = client(access)
    return _call(uri, access, s3.get_object, Bucket=bucket, Key=key)["Body"].read()


def crc32_text(crc: int) -> str:
    """A CRC32 (``zlib.crc32``) as S3 writes it in ``x-amz-checksum-crc32``: its 4 big-endian bytes, base64.

    Example::

        crc32_text(zlib.crc32(b"hello"))   # 'NhCmhg=='
    """
    return base64.b64encode((crc & 0xFFFFFFFF).to_bytes(4, "big")).decode("ascii")


def _checksum_args(s3, crc32: str | None) -> dict:
    """The arguments that make a write send the object's full CRC32, which the store checks and keeps.

    Empty when there is no checksum to send, or when the client sends checksums only where an
    operation requires them (``AWS_REQUEST_CHECKSUM_CALCULATION=when_required``, the setting for
    stores that reject them): such a write stores no checksum and its check falls back to sha256.
    """
    if crc32 is None or s3.meta.config.request_checksum_calculation == "when_required":
        return {}
    return {"ChecksumAlgorithm": "CRC32", "ChecksumCRC32": crc32}


def write_bytes(uri: str, data: bytes, access: S3Access) -> None:
    """Put ``data`` at ``uri``, with its CRC32. A PUT replaces the object whole, so readers never see half of it."""
    bucket, key = split_uri(uri)
    s3 = client(access)
    _call(uri, access, s3.put_object, Bucket=bucket, Key=key, Body=data,
          **_checksum_args(s3, crc32_text(zlib.crc32(data))))


def upload_file(path: str, uri: str, access: S3Access, crc32: str | None = None) -> None:
    """Copy the local file ``path`` to ``uri`` (multipart for large files).

    Example::

        upload_file("/scratch/000000.tar", "s3://bucket/v0/video/part_000000/000000.tar", access, crc32="NhCmhg==")

    ``crc32``: the file's CRC32 as :func:`crc32_text` spells it. The upload then carries it as a
    full-object checksum (``ChecksumType=FULL_OBJECT`` for a multipart upload too): S3 rejects the
    upload unless the bytes it received match it, and keeps it, so :func:`head` can check the
    object later without reading it.
    """
    bucket, key = split_uri(uri)
    s3 = client(access)
    extra = _checksum_args(s3, crc32)
    _call(uri, access, s3.upload_file, Filename=path, Bucket=bucket, Key=key, ExtraArgs=extra or None)


def copy_object(source: str, target: str, access: S3Access) -> None:
    """Copy ``source`` to ``target`` inside S3 (server-side, multipart for large objects: no download)."""
    bucket, key = split_uri(source)
    target_bucket, target_key = split_uri(target)
    s3 = client(access)
    _call(target, access, s3.copy, CopySource={"Bucket": bucket, "Key": key}, Bucket=target_bucket, Key=target_key)


def download_file(uri: str, path: str, access: S3Access) -> None:
    """Copy the object at ``uri`` to the local file ``path`` (ranged, parallel GETs for large objects)."""
    bucket, key = split_uri(uri)
    s3 = client(access)
    _call(uri, access, s3.download_file, Bucket=bucket, Key=key, Filename=path)


def sha256(uri: str, access: S3Access, chunk_size: int = 4 << 20) -> str:
    """Hex sha256 of the object at ``uri``, streamed (never held whole in memory)."""
    import hashlib

    bucket, key = split_uri(uri)
    s3 = client(access)
    body = _call(uri, access, s3.get_object, Bucket=bucket, Key=key)["Body"]
    digest = hashlib.sha256()

    def read_all():
        for chunk in body.iter_chunks(chunk_size):
            digest.update(chunk)

    _call(uri, access, read_all)
    return digest.hexdigest()


def delete(uri: str, access: S3Access) -> None:
    """Delete the object at ``uri``; deleting a missing object is not an error in S3."""
    bucket, key = split_uri(uri)
    s3 = client(access)
    _call(uri, access, s3.delete_object, Bucket=bucket, Key=key)


def list_objects(uri: str, access: S3Access) -> Iterator[tuple[str, int]]:
    """``(s3://bucket/key, size)`` of every object under the prefix ``uri`` (as a folder), in key order."""
    for location, size, _ in list_objects_modified(uri, access):
        yield location, size


LISTING_THREADS = 16  # sub-prefixes listed at once: a paginated listing is ~1,000 keys per round trip


def list_objects_modified(uri: str, access: S3Access) -> Iterator[tuple[str, int, float]]:
    """``(s3://bucket/key, size, last modified as epoch seconds)`` of every object under the prefix ``uri``, in key order.

    The prefix's first level of sub-prefixes ("folders") is listed in parallel, each by its own
    paginated listing, so a bucket of cameras or days lists about ``LISTING_THREADS`` times faster
    than one listing of every key.
    """
    top, folders = list_first_level(uri, access)
    with ThreadPoolExecutor(max_workers=LISTING_THREADS) as pool:
        below = list(pool.map(lambda folder: list_below(folder, access), folders))
    yield from heapq.merge(top, *below)


def list_first_level(uri: str, access: S3Access) -> tuple[list[tuple[str, int, float]], list[str]]:
    """The objects directly under the prefix ``uri`` (as :func:`list_objects_modified` gives them) and its
    sub-prefixes as ``s3://bucket/prefix/`` URIs: what to hand to :func:`list_below`, one call each."""
    bucket, key = split_uri(normalize(uri))
    objects, prefixes = _listed(uri, access, bucket, f"{key}/" if key else "", "/")
    return objects, [f"s3://{bucket}/{p}" for p in prefixes]


def list_below(prefix_uri: str, access: S3Access) -> list[tuple[str, int, float]]:
    """Every object whose key starts with ``prefix_uri``'s key (a sub-prefix from :func:`list_first_level`), in key order."""
    bucket, prefix = prefix_uri.removeprefix("s3://").split("/", 1)
    return _listed(prefix_uri, access, bucket, prefix, "")[0]


def _listed(uri: str, access: S3Access, bucket: str, prefix: str, delimiter: str) -> tuple[list, list[str]]:
    s3 = client(access)
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix, Delimiter=delimiter)
    pages = _call(uri, access, lambda: list(pages))
    objects = [(f"s3://{bucket}/{item['Key']}", item["Size"], item["LastModified"].timestamp())
               for page in pages for item in page.get("Contents", [])]
    return objects, [p["Prefix"] for page in pages for p in page.get("CommonPrefixes", [])]


@dataclass(frozen=True)
class ObjectHead:
    """What one HeadObject tells about an object: its size and, when the store keeps one, its full CRC32.

    ``crc32`` is spelled as :func:`crc32_text` spells it; None when the store returned no CRC32
    (the object was written without one, or the store keeps none: moto for plain PUTs, some
    MinIO and Ceph versions) or only a composite one (a checksum of part checksums, ``...-N``).
    """

    size: int
    crc32: str | None = None


def head(uri: str, access: S3Access) -> ObjectHead | None:
    """The size and full-object CRC32 of the object at ``uri`` from one ``HeadObject(ChecksumMode="ENABLED")``;
    None when there is no such object."""
    bucket, key = split_uri(uri)
    if not key:
        return None
    s3 = client(access)
    try:
        found = _call(uri, access, s3.head_object, Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    except StorageError as e:
        if str(e).endswith("no such object"):
            return None
        raise
    crc32 = found.get("ChecksumCRC32")
    if crc32 and (found.get("ChecksumType") == "COMPOSITE" or "-" in crc32):
        crc32 = None
    return ObjectHead(found["ContentLength"], crc32 or None)


def object_size(uri: str, access: S3Access) -> int | None:
    """Bytes of the object at ``uri``, None when there is no such object (a prefix, a typo)."""
    bucket, key = split_uri(uri)
    if not key:
        return None
    s3 = client(access)
    try:
        return _call(uri, access, s3.head_object, Bucket=bucket, Key=key)["ContentLength"]
    except StorageError as e:
        if str(e).endswith("no such object"):
            return None
        raise


def check_writable(uri: str, access: S3Access) -> None:
    """Fail now, before any work, unless objects can be written and deleted under ``uri``.

    Writes and deletes one small marker object: a missing bucket or a denied write is found
    here rather than after every video was processed.
    """
    import uuid

    bucket, key = split_uri(normalize(uri))
    s3 = client(access)
    _call(f"s3://{bucket}", access, s3.head_bucket, Bucket=bucket)
    probe = f"s3://{bucket}/{key + '/' if key else ''}_cliplake_write_check_{uuid.uuid4().hex}"
    write_bytes(probe, b"", access)
    delete(probe, access)
