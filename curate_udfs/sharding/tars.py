"""Deterministic webdataset tars: written through a temporary name, hashed while written, checked later.

Members get a fixed mtime, owner and mode (``webdataset.TarWriter`` otherwise stamps the
current time), so the same samples always give the same bytes, and a tar's sha256 says
whether a file on disk is the complete tar a manifest row describes. A tar bound for S3 also
gets its CRC32, uploaded as the object's full-object checksum, so that check is one HeadObject.
"""

import hashlib
import os
import shutil
import tempfile
import uuid
import zlib
from dataclasses import dataclass
from typing import Iterable


from curate_udfs import objectstore, storage
from curate_udfs.errors import StorageError
from curate_udfs.objectstore import S3Access

MEMBER_MTIME = 0  # fixed, so a rebuilt tar is byte for byte the same
MEMBER_OWNER = "cliplake"
_READ_CHUNK = 4 << 20


@dataclass(frozen=True)
class WrittenTar:
    path: str
    num_samples: int
    num_bytes: int
    sha256: str
    crc32: str | None = None  # as S3 spells it (objectstore.crc32_text); only for tars written to S3


class _HashingFile:
    """A write-only file that hashes what goes through it (the tar is read once, while written).

    The CRC32 is kept only when asked: it doubles the hashing, and only S3 uploads use it.
    """

    def __init__(self, f, crc32: bool = False):
        self.f, self.hash, self.size = f, hashlib.sha256(), 0
        self.crc = 0 if crc32 else None

    def write(self, data) -> int:
        self.hash.update(data)
        if self.crc is not None:
            self.crc = zlib.crc32(data, self.crc)
        self.size += len(data)
        return self.f.write(data)

    def flush(self) -> None:
        self.f.flush()


def write_tar(path: str, samples: Iterable[tuple[str, str, bytes]], *, crc32: bool = False) -> WrittenTar:
    """Write ``(key, extension, data)`` samples, in the order given, to the tar ``path``.

    Example::

        write_tar("out/video/part_000000/000000.tar", [("clip_0_64", "mp4", mp4_bytes)])

    The tar is written to a temporary name in the same folder and renamed into place when
    complete, so ``path`` is either absent, an older complete tar, or this one. Keys must be
    unique and must not contain dots (webdataset splits a member name at its first dot).
    ``crc32``: also compute the tar's CRC32 while writing (``WrittenTar.crc32``).
    """
    from webdataset import TarWriter  # (imports torch: in the tasks that write tars, not in drivers)

    folder = os.path.dirname(path) or "."
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, f".{os.path.basename(path)}.tmp-{uuid.uuid4().hex}")
    count = 0
    try:
        with open(tmp, "wb", buffering=1 << 20) as raw:
            hashed = _HashingFile(raw, crc32=crc32)
            with TarWriter(hashed, user=MEMBER_OWNER, group=MEMBER_OWNER, mode=0o444, encoder=False,
                           mtime=MEMBER_MTIME) as writer:
                for key, extension, data in samples:
                    if "." in key:
                        raise ValueError(f"sample key {key!r} contains a dot")
                    writer.write({"__key__": key, extension: data})
                    count += 1
            raw.flush()
            os.fsync(raw.fileno())  # the rename below must not publish a tar still in the page cache only
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    crc = None if hashed.crc is None else objectstore.crc32_text(hashed.crc)
    return WrittenTar(path, count, hashed.size, hashed.hash.hexdigest(), crc)


def write_tar_to(location: str, samples: Iterable[tuple[str, str, bytes]], access: S3Access | None = None) -> WrittenTar:
    """:func:`write_tar` to a local path or an ``s3://`` location.

    For S3 the tar is written (and hashed) in a local scratch folder, then uploaded whole with
    :func:`~curate_udfs.storage.put_file`: the object is absent, an older complete tar, or this one.
    The upload carries the CRC32 computed while writing as the object's full-object checksum.
    """
    if not objectstore.is_s3(location):
        return write_tar(location, samples)
    scratch = (os.environ.get("SPARK_LOCAL_DIRS") or "").split(",")[0] or None  # Spark's scratch disks in an executor
    folder = tempfile.mkdtemp(prefix="cliplake-tar-", dir=scratch)
    try:
        written = write_tar(os.path.join(folder, os.path.basename(location)), samples, crc32=True)
        storage.put_file(written.path, location, access, crc32=written.crc32)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return WrittenTar(location, written.num_samples, written.num_bytes, written.sha256, written.crc32)


def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_READ_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def is_complete(path: str, num_bytes: int, sha256: str, access: S3Access | None = None,
                crc32: str | None = None) -> bool:
    """Whether ``path`` holds exactly the file a manifest row recorded: same size, then same sha256.

    Example::

        is_complete("s3://bucket/v0/video/part_000000/000000.tar", row.num_bytes, row.sha256, access, row.crc32)

    An ``s3://`` object is checked with one ``HeadObject(ChecksumMode="ENABLED")``: its size, then,
    when the row recorded a ``crc32`` and the store returns the object's full-object CRC32, the two
    compared; the object is not read. Otherwise (a row written before CRC32s were recorded, a store
    that keeps none) its bytes are streamed and hashed, since an ETag is no content hash for
    multipart uploads. A missing or unreadable object is not complete.
    """
    if objectstore.is_s3(path):
        access = access or S3Access()
        try:
            found = objectstore.head(path, access)
            if found is None or found.size != num_bytes:
                return False
            if crc32 and found.crc32:
                return found.crc32 == crc32
            return objectstore.sha256(path, access) == sha256
        except StorageError:
            return False
    try:
        if os.path.getsize(path) != num_bytes:
            return False
    except OSError:
        return False
    return file_sha256(path) == sha256
