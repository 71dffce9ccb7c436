"""Which videos a job should read: a folder walked recursively, or a JSON list."""

import json
import os

VIDEO_EXTENSIONS = (".mp4", ".mov", ".mkv", ".webm", ".avi")


def list_videos(input_video_path: str | None = None, input_video_list_json_path: str | None = None,
                limit: int | None = None) -> list[str]:
    """Video paths to process, sorted; ``source_path`` in the tables is each path exactly as returned.

    A folder is walked recursively for files ending in one of :data:`VIDEO_EXTENSIONS` (any case)
    and its paths are made absolute, so ids do not depend on the working directory. A JSON list
    is used as written. ``limit`` keeps the first N.
    """
    if bool(input_video_path) == bool(input_video_list_json_path):
        raise ValueError("give exactly one of --input-video-path and --input-video-list-json-path")
    if input_video_list_json_path:
        with open(input_video_list_json_path) as f:
            paths = json.load(f)
        if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
            raise ValueError(f"{input_video_list_json_path} must hold a JSON list of path strings")
        paths = list(dict.fromkeys(paths))  # keep order, drop repeats
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


def file_size(path: str) -> int:
    """Bytes of a local file, 0 when unknown (remote or missing)."""
    try:
        return os.path.getsize(path)
    except OSError:
        return 0
