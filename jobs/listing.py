"""Which videos a job should read: a folder walked recursively, or a JSON list; local or on S3."""

import json
import os

from curate_udfs import objectstore
from curate_udfs.objectstore import S3Access

VIDEO_EXTENSIONS = (".mp4", ".mov", ".mkv", ".webm", ".avi")
_LISTED_SIZES: dict[str, int] = {}  # sizes S3 listings gave, so planning needs no request per object


def list_videos(input_video_path: str | None = None, input_video_list_json_path: str | None = None,
                limit: int | None = None, input_access: S3Access | None = None,
                list_access: S3Access | None = None) -> list[str]:
    """Video paths to process, sorted; ``source_path`` in the tables is each path exactly as returned.

    A folder is walked recursively for files ending in one of :data:`VIDEO_EXTENSIONS` (any case)
    and its paths are made absolute, so ids do not depend on the working directory. A JSON list
    is used as written. ``limit`` keeps the first N.

    ``s3://bucket/prefix`` works for both: every object under the prefix with a video extension
    (read with ``input_access``), or a JSON list stored in S3 (read with ``list_access``).
    A missing bucket or denied access raises :class:`~curate_udfs.errors.StorageError`.
    """
    if bool(input_video_path) == bool(input_video_list_json_path):
        raise ValueError("give exactly one of --input-video-path and --input-video-list-json-path")
    if input_video_list_json_path:
        paths = json.loads(_read_text(input_video_list_json_path, list_access or S3Access()))
        if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
            raise ValueError(f"{input_video_list_json_path} must hold a JSON list of path strings")
        paths = list(dict.fromkeys(paths))  # keep order, drop repeats
    elif objectstore.is_s3(input_video_path):
        paths = _list_s3(input_video_path, input_access or S3Access())
    elif os.path.isfile(input_video_path):
        paths = [os.path.abspath(input_video_path)]
    elif os.path.isdir(input_video_path):
        root = os.path.abspath(input_video_path)
        paths = sorted(
            os.path.join(folder, name)
            for folder, _, names in os.walk(root)
            for name in names
            if name.lower().endswith(VIDEO_EXTENSIONS)
        )
    else:
        raise ValueError(f"--input-video-path {input_video_path} does not exist")
    return paths[:limit] if limit else paths


def _read_text(path: str, access: S3Access) -> str:
    if objectstore.is_s3(path):
        return objectstore.read_bytes(path, access).decode()
    with open(path) as f:
        return f.read()


def _list_s3(uri: str, access: S3Access) -> list[str]:
    """One object (when ``uri`` names a video object) or the videos under the prefix ``uri``."""
    if uri.lower().endswith(VIDEO_EXTENSIONS) and objectstore.object_size(uri, access) is not None:
        return [objectstore.normalize(uri)]
    listed = {key: size for key, size in objectstore.list_objects(uri, access) if key.lower().endswith(VIDEO_EXTENSIONS)}
    _LISTED_SIZES.update(listed)
    paths = sorted(listed)
    if not paths:
        raise ValueError(f"--input-video-path {uri} holds no videos ({', '.join(VIDEO_EXTENSIONS)})")
    return paths


def file_size(path: str) -> int | None:
    """Bytes of a local file (0 when missing) or of a listed S3 object; None when unknown."""
    if objectstore.is_s3(path):
        return _LISTED_SIZES.get(path)
    try:
        return os.path.getsize(path)
    except OSError:
        return 0
