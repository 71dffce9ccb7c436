"""``wdinfo.json`` per bin and ``wdinfo_list.csv`` per version: how training loaders find a dataset's tars.

As Cosmos-Curate v1.4 writes them: ``root`` is the bin folder, an absolute local path or, on
S3, the key prefix inside the bucket (the loader joins it with its own bucket); ``data_list``
holds tar paths relative to ``root/video``; ``chunk_size`` is the tars per part folder.
"""

import json

from curate_udfs import objectstore
from curate_udfs.objectstore import S3Access
from curate_udfs.storage import join, write_bytes_atomic

DATA_KEYS = ("video", "t5_xxl", "metas")  # Cosmos-Curate's order; loaders take the kinds from their own config


def loader_root(bin_location: str) -> str:
    """``root`` as loaders join it: the path itself locally, the key prefix for ``s3://bucket/prefix``."""
    return objectstore.split_uri(bin_location)[1] if objectstore.is_s3(bin_location) else bin_location


def wdinfo(bin_location: str, video_tars: list[str], total_key_count: int, chunk_size: int) -> dict:
    """The bin's summary: ``data_list`` holds tar paths relative to ``root/video`` (``part_000000/000000.tar``)."""
    return {"data_keys": list(DATA_KEYS), "chunk_size": chunk_size, "data_list": sorted(video_tars),
            "root": loader_root(bin_location), "total_key_count": total_key_count}


def write_wdinfo(bin_location: str, video_tars: list[str], total_key_count: int, chunk_size: int,
                 access: S3Access | None = None) -> str:
    """Write ``bin_location/wdinfo.json`` (the same bytes for an unchanged bin); its full path."""
    path = join(bin_location, "wdinfo.json")
    data = json.dumps(wdinfo(bin_location, video_tars, total_key_count, chunk_size), indent=4)
    write_bytes_atomic(path, data.encode("utf-8"), access)
    return path


def write_wdinfo_list(location: str, wdinfo_paths: list[str], access: S3Access | None = None) -> None:
    """``wdinfo_list.csv``: one full wdinfo.json path per row, no header, CRLF (Python's csv writer, as Cosmos-Curate)."""
    write_bytes_atomic(location, "".join(f"{p}\r\n" for p in sorted(wdinfo_paths)).encode("utf-8"), access)
