"""Reading and writing media files beside the tables, on local disk or S3, so retries overwrite.

Every media write and read in curate_udfs goes through here; a location is a local path or an
``s3://`` URI, and ``access`` (an :class:`~curate_udfs.objectstore.S3Access`) says how to reach S3.
"""

import contextlib
import os
import shutil
import tempfile
import uuid
from typing import Iterator

from curate_udfs import objectstore
from curate_udfs.errors import StorageError
from curate_udfs.objectstore import S3Access


def join(root: str, *parts: str) -> str:
    """``root/part/...`` for a local folder or an ``s3://`` prefix alike."""
    return "/".join([root.rstrip("/"), *parts]) if objectstore.is_s3(root) else os.path.join(root, *parts)


def write_bytes_atomic(path: str, data: bytes, access: S3Access | None = None) -> None:
    """Write ``data`` to ``path`` so a reader never sees half of it; a retried task replaces it.

    Locally through a temporary name in the same folder and ``os.replace``; on S3 one PUT, which
    is atomic by itself.
    """
    if objectstore.is_s3(path):
        objectstore.write_bytes(path, data, access or S3Access())
        return
    with _replacing(path) as tmp, open(tmp, "wb") as f:
        f.write(data)


@contextlib.contextmanager
def _replacing(path: str) -> Iterator[str]:
    """A temporary name beside local ``path`` to fill; renamed onto ``path`` when the block ends, removed on failure."""
    folder, name = os.path.split(path)
    os.makedirs(folder or ".", exist_ok=True)
    tmp = os.path.join(folder, f".{name}.tmp-{uuid.uuid4().hex}")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def read_bytes(path: str, access: S3Access | None = None) -> bytes:
    """The bytes of a local file or an ``s3://`` object."""
    if objectstore.is_s3(path):
        return objectstore.read_bytes(path, access or S3Access())
    with open(path, "rb") as f:
        return f.read()


def put_file(local_path: str, location: str, access: S3Access | None = None, crc32: str | None = None) -> None:
    """Move a finished local file (a shard tar, a big archive) to ``location``: a rename on local
    disk, a (multipart) upload to S3 after which the local file is removed.

    ``crc32``: the file's CRC32 (:func:`~curate_udfs.objectstore.crc32_text`), sent with an S3
    upload as its full-object checksum (see :func:`~curate_udfs.objectstore.upload_file`).
    """
    if objectstore.is_s3(location):
        objectstore.upload_file(local_path, location, access or S3Access(), crc32=crc32)
        os.remove(local_path)
        return
    with _replacing(location) as tmp:
        shutil.move(local_path, tmp)  # a copy when across filesystems, so rename only once it is complete


def size(path: str, access: S3Access | None = None) -> int | None:
    """Bytes of a local file or ``s3://`` object; None when there is none."""
    if objectstore.is_s3(path):
        return objectstore.object_size(path, access or S3Access())
    try:
        return os.path.getsize(path)
    except OSError:
        return None


def copy_file(source: str, target: str, source_access: S3Access | None = None,
              target_access: S3Access | None = None) -> None:
    """Copy a file between local folders and S3 in any direction; S3 to S3 is a server-side copy
    (made with ``target_access``, which must be able to read the source)."""
    source_s3, target_s3 = objectstore.is_s3(source), objectstore.is_s3(target)
    if source_s3 and target_s3:
        objectstore.copy_object(source, target, target_access or S3Access())
    elif target_s3:
        objectstore.upload_file(source, target, target_access or S3Access())
    else:
        with _replacing(target) as tmp:
            if source_s3:
                objectstore.download_file(source, tmp, source_access or S3Access())
            else:
                shutil.copyfile(source, tmp)


def list_files(root: str, access: S3Access | None = None) -> Iterator[tuple[str, int, float]]:
    """``(path, size, modified epoch seconds)`` of every file under the folder or ``s3://`` prefix ``root``."""
    if objectstore.is_s3(root):
        yield from objectstore.list_objects_modified(root, access or S3Access())
        return
    for folder, _, names in os.walk(root):
        for name in names:
            path = os.path.join(folder, name)
            try:
                stat = os.stat(path)
            except FileNotFoundError:  # removed by another job since the walk saw it
                continue
            yield path, stat.st_size, stat.st_mtime


def remove_quietly(path: str, access: S3Access | None = None) -> None:
    """Delete ``path`` if it exists."""
    if objectstore.is_s3(path):
        objectstore.delete(path, access or S3Access())
        return
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


@contextlib.contextmanager
def local_copy(path: str, access: S3Access | None = None) -> Iterator[str]:
    """A local file holding ``path``'s bytes, for readers that need a file (the decoder seeks).

    A local path is yielded as is; an ``s3://`` object is downloaded to a temporary file that is
    deleted when the block ends, so a task holds at most the videos it is working on.
    """
    if not objectstore.is_s3(path):
        yield path
        return
    suffix = os.path.splitext(path)[1]
    # Spark's scratch disks when running in an executor, else the temp folder.
    scratch = (os.environ.get("SPARK_LOCAL_DIRS") or "").split(",")[0] or None
    fd, tmp = tempfile.mkstemp(prefix="cliplake-", suffix=suffix, dir=scratch)
    os.close(fd)
    try:
        objectstore.download_file(path, tmp, access or S3Access())
        yield tmp
    finally:
        os.remove(tmp)


@contextlib.contextmanager
def local_media(access: S3Access | None = None) -> Iterator:
    """``localize(batches, column)`` for one task: s3:// values of ``column`` become local copies.

    Example::

        with local_media(access) as localize:
            yield from stage(localize(batches, "location"))

    Copies are downloaded batch by batch and all deleted when the block ends, so a stage may hold
    records across batches. An object that cannot be downloaded keeps its URI, so the stage's
    reader fails on that record alone and reports it as the record's error.
    """
    with contextlib.ExitStack() as stack:
        def copy(location):
            if not isinstance(location, str) or not objectstore.is_s3(location):
                return location
            try:
                return stack.enter_context(local_copy(location, access))
            except StorageError:
                return location

        def localize(batches, column: str):
            for batch in batches:
                yield batch.assign(**{column: [copy(v) for v in batch[column]]}) if column in batch else batch

        yield localize
