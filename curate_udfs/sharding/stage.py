"""The shard stages as mapInPandas bodies: caption embeddings, then the files of each output group.

Rows arrive partitioned and sorted by ``(tar_seq, sample_key)``. Each ``tar_seq`` is one output
group: in a webdataset, the ``video``, ``metas`` and ``t5_xxl`` tars with the same part and tar
number in one bin (one sample per clip); in the video2world folder dataset, one clip's windows
(one sample per window, three files each). Both stages work a group at a time, so the bytes
of a group's files depend only on its samples.
"""

import hashlib
import itertools
import os
import zlib
from dataclasses import dataclass, field
from typing import Iterator

import pandas as pd

from curate_udfs import objectstore, storage
from curate_udfs.media.transcode import EncoderSettings
from curate_udfs.objectstore import S3Access
from curate_udfs.sharding import bins
from curate_udfs.sharding.members import CLIP_COLUMNS, WINDOW_COLUMNS, MemberFormat, metas_member, t5_member
from curate_udfs.sharding.tars import write_tar_to
from curate_udfs.sharding.text_encoder import TextEncoderConfig, load_text_encoder
from curate_udfs.sharding.windows import cut_windows
from curate_udfs.stage import describe_error, environment_problem, map_record_batches

# Declared inputs and outputs; jobs/ turns these into Spark schemas.
SAMPLE_COLUMNS = ("tar_seq", "sample_key", "bin_dir", "part", "tar", *CLIP_COLUMNS, *WINDOW_COLUMNS)
EMBEDDED_COLUMNS = {"t5_pickle": bytes, "error": str}
MANIFEST_COLUMNS = {"tar_seq": int, "kind": str, "tar_path": str, "num_samples": int, "num_bytes": int,
                    "sha256": str, "crc32": str, "keys": list[str], "clip_ids": list[str], "errors": list[str]}


@dataclass(frozen=True)
class ShardWriteConfig:
    """Where a dataset's files go, in which format, and how window mp4s are encoded.

    ``dataset_root`` is the output dataset path (absolute, or ``s3://`` reached with ``access``);
    paths are relative to it. ``clip_access`` reads ``s3://`` clips (the lake's side).
    ``encoder`` cuts video2world windows from clips with several windows; ``encoder.threads``
    stays 1 by default: x264's output then does not depend on how many cores a task has.
    """

    dataset_root: str
    members: MemberFormat = field(default_factory=MemberFormat)
    encoder: EncoderSettings = EncoderSettings(threads=1)
    access: S3Access = S3Access()
    clip_access: S3Access = S3Access()

    def __post_init__(self):
        if not objectstore.is_s3(self.dataset_root) and not os.path.isabs(self.dataset_root):
            raise ValueError(f"dataset root must be an absolute path, got {self.dataset_root!r}")


def _groups(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    """One frame per ``tar_seq``, in arrival order (rows of a group are contiguous)."""
    pending: list[pd.DataFrame] = []
    for batch in batches:
        for _, part in itertools.groupby(range(len(batch)), key=lambda i, s=batch["tar_seq"].to_numpy(): s[i]):
            indexes = list(part)
            piece = batch.iloc[indexes[0]: indexes[-1] + 1]
            if pending and pending[-1]["tar_seq"].iat[0] != piece["tar_seq"].iat[0]:
                yield pd.concat(pending, ignore_index=True)
                pending = []
            pending.append(piece)
    if pending:
        yield pd.concat(pending, ignore_index=True)


def embed_caption_batches(
    batches: Iterator[pd.DataFrame], config: TextEncoderConfig, members: MemberFormat, columns: list[str],
    gpu_addresses: list[str] | None = None,
) -> Iterator[pd.DataFrame]:
    """mapInPandas body: sample rows in, the same rows with ``t5_pickle`` out (the ``.pickle`` member).

    Every window's caption of a sample is encoded; the pickle wraps the float16 arrays as
    ``members`` says. A sample whose captions the encoder fails on gets ``error`` and no pickle.
    ``columns`` are the output columns.
    """

    def process_many(records: list[dict]) -> list[dict]:
        encoder = load_text_encoder(config, gpu_addresses)
        arrays = iter(encoder.encode([c for r in records for c in r["captions"]]))
        return [{**r, "t5_pickle": t5_member([next(arrays) for _ in r["captions"]], members), "error": None}
                for r in records]

    def error_row(record: dict, message: str) -> dict:
        return {**record, "error": f"text embedding: {message}"}

    for group in _groups(batches):  # a batch never mixes two groups: a group's bytes depend on its samples only
        yield from map_record_batches(iter([group]), process_many, error_row, columns, config.batch_size)


@dataclass
class _Written:
    path: str
    num_samples: int
    num_bytes: int
    sha256: str
    crc32: str | None = None


def _write_file(location: str, data: bytes, access: S3Access) -> _Written:
    """One video2world file; on S3 with its CRC32, which the PUT sends as the object's checksum."""
    storage.write_bytes_atomic(location, data, access)
    crc32 = objectstore.crc32_text(zlib.crc32(data)) if objectstore.is_s3(location) else None
    return _Written(location, 1, len(data), hashlib.sha256(data).hexdigest(), crc32)


def _clip_mp4s(rows: list[dict], config: ShardWriteConfig, errors: dict[str, str]) -> dict[str, bytes]:
    """sample key -> the sample's mp4: the clip file itself, or a window cut from it (video2world, several windows)."""
    out = {}
    for location, clip_rows in itertools.groupby(rows, key=lambda r: r["location"]):
        clip_rows = list(clip_rows)
        try:
            whole = [r for r in clip_rows if config.members.dataset_format == "webdataset" or int(r["num_clip_windows"]) == 1]
            if whole:
                data = storage.read_bytes(location, config.clip_access)
                out.update({r["sample_key"]: data for r in whole})
            cut = [r for r in clip_rows if r not in whole]
            if cut:
                spans = {r["sample_key"]: (int(r["window_starts"][0]), int(r["window_ends"][0])) for r in cut}
                with storage.local_copy(location, config.clip_access) as local:
                    mp4s = cut_windows(local, sorted(set(spans.values())), config.encoder)
                out.update({key: mp4s[span] for key, span in spans.items()})
        except Exception as e:  # a clip that cannot be read or cut loses its own samples only
            if environment_problem(e):
                raise environment_problem(e) from e
            message = f"clip {location}: {describe_error(e)}"
            errors.update({r["sample_key"]: message for r in clip_rows})
    return out


def _manifest_row(tar_seq: int, kind: str, path: str, written, rows: list[dict], errors: dict[str, str]) -> dict:
    return {"tar_seq": tar_seq, "kind": kind, "tar_path": path, "num_samples": written.num_samples,
            "num_bytes": written.num_bytes, "sha256": written.sha256, "crc32": written.crc32,
            "keys": [r["sample_key"] for r in rows],
            "clip_ids": sorted({r["clip_id"] for r in rows}),
            "errors": [f"{key}: {message}" for key, message in sorted(errors.items())]}


def _write_tars(rows: list[dict], config: ShardWriteConfig, errors: dict[str, str]) -> list[dict]:
    """The group's three tars; a sample that fails is left out of all three (the loader zips them by position)."""
    first = rows[0]
    paths = {kind: bins.tar_path(first["bin_dir"], kind, int(first["part"]), int(first["tar"])) for kind in bins.KINDS}
    mp4s = _clip_mp4s([r for r in rows if r["sample_key"] not in errors], config, errors)
    rows = [r for r in rows if r["sample_key"] not in errors]
    content = {"video": lambda r: mp4s[r["sample_key"]], "metas": lambda r: metas_member(r, config.members),
               "t5_xxl": lambda r: bytes(r["t5_pickle"])}
    written = {kind: write_tar_to(storage.join(config.dataset_root, paths[kind]),
                                  ((r["sample_key"], bins.EXTENSIONS[kind], content[kind](r)) for r in rows), config.access)
               for kind in bins.KINDS}
    # The group's failures travel on its video row only.
    return [_manifest_row(int(first["tar_seq"]), kind, paths[kind], written[kind], rows, errors if kind == "video" else {})
            for kind in bins.KINDS]


def _write_folder_files(rows: list[dict], config: ShardWriteConfig, errors: dict[str, str]) -> list[dict]:
    """Three files per window sample (video2world); a window that fails gets none of them."""
    mp4s = _clip_mp4s([r for r in rows if r["sample_key"] not in errors], config, errors)
    out = []
    for r in rows:
        if r["sample_key"] in errors:
            continue
        content = {"video": mp4s[r["sample_key"]], "metas": metas_member(r, config.members), "t5_xxl": bytes(r["t5_pickle"])}
        for kind in bins.KINDS:
            path = bins.video2world_path(kind, r["sample_key"])
            written = _write_file(storage.join(config.dataset_root, path), content[kind], config.access)
            out.append(_manifest_row(int(r["tar_seq"]), kind, path, written, [r], {}))
    if errors:  # the group's failures travel on its first row (one with no file when every window failed)
        out = out or [_manifest_row(int(rows[0]["tar_seq"]), "video", "", _Written("", 0, 0, ""), [], {})]
        out[0]["errors"] = [f"{key}: {message}" for key, message in sorted(errors.items())]
    return out


def write_shard_batches(batches: Iterator[pd.DataFrame], config: ShardWriteConfig) -> Iterator[pd.DataFrame]:
    """mapInPandas body: embedded sample rows in, one manifest row per file written out.

    Example::

        manifest = embedded.mapInPandas(lambda b: write_shard_batches(b, config), manifest_schema)

    Samples with an ``error`` (or whose clip cannot be read) are left out and listed in the rows'
    ``errors``; the other samples of the group are written.
    """
    write = _write_tars if config.members.dataset_format == "webdataset" else _write_folder_files
    for group in _groups(batches):
        rows = group.to_dict("records")
        errors = {r["sample_key"]: r["error"] for r in rows if isinstance(r.get("error"), str) and r["error"]}
        yield pd.DataFrame(write(rows, config, errors), columns=list(MANIFEST_COLUMNS))
