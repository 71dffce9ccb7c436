"""The shard stages as mapInPandas bodies: caption embeddings, then the three tars of each group.

Rows arrive partitioned and sorted by ``(tar_seq, sample_key)``: each ``tar_seq`` is one tar
group (the ``video``, ``metas`` and ``t5_xxl`` tars with the same part and tar number in one
bin). Both stages work a group at a time, so the bytes of a tar depend only on its samples.
"""

import itertools
import os
import pickle
from dataclasses import dataclass
from typing import Iterator

import pandas as pd

from curate_udfs import objectstore, storage
from curate_udfs.media.transcode import EncoderSettings
from curate_udfs.objectstore import S3Access
from curate_udfs.sharding import bins
from curate_udfs.sharding.metadata import METADATA_COLUMNS, sample_metadata
from curate_udfs.sharding.tars import write_tar_to
from curate_udfs.sharding.text_encoder import TextEncoderConfig, load_text_encoder
from curate_udfs.sharding.windows import cut_windows
from curate_udfs.stage import describe_error, map_record_batches

KINDS = ("video", "metas", "t5_xxl")  # one tar tree per member kind, as Cosmos-Curate's layout
EXTENSIONS = {"video": "mp4", "metas": "json", "t5_xxl": "pickle"}

# Declared inputs and outputs; jobs/ turns these into Spark schemas.
SAMPLE_COLUMNS = ("tar_seq", "sample_key", "bin_dir", "part", "tar", "location", *METADATA_COLUMNS)
EMBEDDED_COLUMNS = {"t5_pickle": bytes, "t5_num_tokens": int, "error": str}
MANIFEST_COLUMNS = {"tar_seq": int, "kind": str, "tar_path": str, "num_samples": int, "num_bytes": int,
                    "sha256": str, "keys": list[str], "clip_ids": list[str], "errors": list[str]}


@dataclass(frozen=True)
class ShardWriteConfig:
    """Where tars go and how window mp4s are encoded.

    ``dataset_root`` is the output dataset path (absolute, or ``s3://`` reached with ``access``);
    tar paths are ``bin_dir/{kind}/part/tar`` under it. ``clip_access`` reads ``s3://`` clips (the
    lake's side). ``encoder.threads`` stays 1 by default: x264's output then does not depend on
    how many cores a task has, so a rebuilt tar is the same bytes on any cluster.
    """

    dataset_root: str
    text_encoder: str  # recorded in each sample's metadata
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
    batches: Iterator[pd.DataFrame], config: TextEncoderConfig, columns: list[str], gpu_addresses: list[str] | None = None
) -> Iterator[pd.DataFrame]:
    """mapInPandas body: sample rows in, the same rows with ``t5_pickle`` / ``t5_num_tokens`` out.

    ``t5_pickle`` is what the ``.pickle`` member holds: a pickled list with the window's one
    float32 array of shape (tokens, hidden), Cosmos-Curate's list-of-windows form. A caption the
    encoder fails on gets ``error`` and no embedding. ``columns`` are the output columns.
    """

    def process_many(records: list[dict]) -> list[dict]:
        encoder = load_text_encoder(config, gpu_addresses)
        arrays = encoder.encode([r["caption"] for r in records])
        return [{**r, "t5_pickle": pickle.dumps([a], protocol=4), "t5_num_tokens": a.shape[0], "error": None}
                for r, a in zip(records, arrays)]

    def error_row(record: dict, message: str) -> dict:
        return {**record, "error": f"text embedding: {message}"}

    for group in _groups(batches):  # a batch never mixes two tars: the tar's bytes depend on its samples only
        yield from map_record_batches(iter([group]), process_many, error_row, columns, config.batch_size)


def _video_samples(rows: list[dict], settings: EncoderSettings, errors: dict[str, str],
                   access: S3Access | None = None) -> Iterator[tuple[str, str, bytes]]:
    """``(key, "mp4", bytes)`` per row, cutting each clip once for its consecutive windows (an s3:// clip from a local copy)."""
    for location, clip_rows in itertools.groupby(rows, key=lambda r: r["location"]):
        clip_rows = list(clip_rows)
        try:
            with storage.local_copy(location, access) as local:
                mp4s = cut_windows(local, [(int(r["window_start"]), int(r["window_end"])) for r in clip_rows], settings)
        except Exception as e:  # a clip that cannot be cut loses its own windows only
            message = f"window cut: {describe_error(e)}"
            errors.update({r["sample_key"]: message for r in clip_rows})
            continue
        for r in clip_rows:
            yield r["sample_key"], "mp4", mp4s[(int(r["window_start"]), int(r["window_end"]))]


def _write_group(group: pd.DataFrame, config: ShardWriteConfig) -> list[dict]:
    rows = group.to_dict("records")
    first = rows[0]
    paths = {kind: bins.tar_path(first["bin_dir"], kind, int(first["part"]), int(first["tar"])) for kind in KINDS}
    errors = {r["sample_key"]: r["error"] for r in rows if isinstance(r.get("error"), str) and r["error"]}
    rows = [r for r in rows if r["sample_key"] not in errors]
    at = {kind: storage.join(config.dataset_root, path) for kind, path in paths.items()}
    written = {"video": write_tar_to(at["video"], _video_samples(rows, config.encoder, errors, config.clip_access), config.access)}
    rows = [r for r in rows if r["sample_key"] not in errors]  # the three trees hold the same keys
    written["metas"] = write_tar_to(at["metas"], (
        (r["sample_key"], "json", sample_metadata(r, config.text_encoder, int(r["t5_num_tokens"]))) for r in rows), config.access)
    written["t5_xxl"] = write_tar_to(at["t5_xxl"], ((r["sample_key"], "pickle", bytes(r["t5_pickle"])) for r in rows),
                                     config.access)
    keys = [r["sample_key"] for r in rows]
    clip_ids = sorted({r["clip_id"] for r in rows})
    failures = [f"{key}: {message}" for key, message in sorted(errors.items())]
    return [{"tar_seq": int(first["tar_seq"]), "kind": kind, "tar_path": paths[kind], "num_samples": written[kind].num_samples,
             "num_bytes": written[kind].num_bytes, "sha256": written[kind].sha256, "keys": keys, "clip_ids": clip_ids,
             "errors": failures} for kind in KINDS]


def write_shard_batches(batches: Iterator[pd.DataFrame], config: ShardWriteConfig) -> Iterator[pd.DataFrame]:
    """mapInPandas body: embedded sample rows in, one manifest row per tar written out.

    Example::

        manifest = embedded.mapInPandas(lambda b: write_shard_batches(b, config), manifest_schema)

    Samples with an ``error`` (or whose clip cannot be cut) are left out of all three tars and
    listed in the rows' ``errors``; the other samples of the group are written.
    """
    for group in _groups(batches):
        yield pd.DataFrame(_write_group(group, config), columns=list(MANIFEST_COLUMNS))
