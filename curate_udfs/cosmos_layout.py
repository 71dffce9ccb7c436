"""Cosmos-Curate v1.4's split-output folder: its file names and JSON records (no Spark).

Used by `cliplake export-cosmos`, which writes a lake out in this layout::

    clips/{clip_id}.mp4                      filtered_clips/{clip_id}.mp4 (clips a filter marked)
    metas/{version}/{clip_id}.json           json.dumps(indent=4), Cosmos-Curate's keys and order
    {iv2_embd|ce1_embd_<v>|<algo>_embd}/{clip_id}.pickle
    {...}_parquet/{video_id}_{chunk}.parquet  id, embedding; 32 clips of one video per chunk
    processed_videos/{relpath}.json          summary.json           {version}/all_window_captions.json
    previews/{clip_id}_{start}_{end}.webp
"""

import io
import json
import pickle

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from curate_udfs.sharding.members import caption_variant, clip_metas

CLIPS_PER_CHUNK = 32  # Cosmos-Curate writes a video's clips in chunks of this many


def embedding_folder(model: str) -> str:
    """The folder Cosmos-Curate names a model's pickles by (``iv2_embd``, ``ce1_embd_336p``); others ``{algo}_embd``."""
    algorithm = model.split(":", 1)[0]
    if algorithm == "internvideo2":
        return "iv2_embd"
    if algorithm.startswith("cosmos-embed1-"):
        return "ce1_embd_" + algorithm.removeprefix("cosmos-embed1-")
    return "".join(c if c.isalnum() else "_" for c in algorithm) + "_embd"


def relpath(source_path: str) -> str:
    """``processed_videos/`` key of a source video: its path without scheme and leading slash."""
    return source_path.split("://", 1)[-1].lstrip("/")


def metas_json(row: dict, error: str | None = None) -> bytes:
    """A clip's ``metas/{version}/{clip_id}.json`` bytes: Cosmos-Curate's record, ``errors`` before the windows."""
    meta = clip_metas(row)
    if error:
        windows_on = {k: meta.pop(k) for k in ("windows", "filtered_windows", "valid", "has_caption",
                                                "total_prompt_tokens", "total_output_tokens")}
        meta["errors"] = {"split": error}
        meta.update(windows_on)
        meta["valid"] = False
    return json.dumps(meta, indent=4).encode()


def window_captions(row: dict) -> dict[str, str]:
    """``{start_end: caption}`` of a clip's windows (end inclusive), for ``all_window_captions.json``."""
    variant = caption_variant(row.get("caption_model"))
    return {f"{w['start_frame']}_{w['end_frame']}": w[f"{variant}_caption"] for w in clip_metas(row)["windows"]}


def embedding_pickle(vector) -> bytes:
    """One clip's ``.pickle``: its vector as a float32 numpy array."""
    return pickle.dumps(np.asarray(vector, dtype=np.float32))


def embeddings_parquet(ids: list[str], vectors: list) -> bytes:
    """One chunk's parquet: ``id`` (string) and ``embedding`` (list of float32)."""
    table = pa.table({"id": pa.array(ids, pa.string()),
                      "embedding": pa.array([np.asarray(v, dtype=np.float32) for v in vectors], pa.list_(pa.float32()))})
    out = io.BytesIO()
    pq.write_table(table, out)
    return out.getvalue()


def processed_video(video: dict, num_clips: int) -> bytes:
    """``processed_videos/{relpath}.json``: the source video's record, as Cosmos-Curate's clip writer writes it."""
    record = {
        "video": video["source_path"], "height": video["height"], "width": video["width"],
        "framerate": video["fps"], "num_frames": video["num_frames"], "duration": video["duration_s"],
        "video_codec": video["codec"], "pixel_format": video["pix_fmt"], "audio_format": video["audio_codec"],
        "num_total_clips": num_clips, "num_clip_chunks": -(-num_clips // CLIPS_PER_CHUNK),
        "video_uuid": video["video_id"],
    }
    return json.dumps(record, indent=4, default=_plain).encode()


def _plain(value):
    """numpy scalars (what pandas rows hold) as Python numbers, for json.dumps."""
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
