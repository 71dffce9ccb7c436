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

from curate_udfs import ids
from curate_udfs.sharding.members import caption_variant, clip_metas, plain

CLIPS_PER_CHUNK = 32  # Cosmos-Curate writes a video's clips in chunks of this many


def embedding_folder(model: str) -> str:
    """The folder Cosmos-Curate names a model's pickles by (``iv2_embd``, ``ce1_embd_336p``); others ``{algo}_embd``."""
    algorithm = model.split(":", 1)[0]
    if algorithm == "internvideo2":
        return "iv2_embd"
    if algorithm.startswith("cosmos-embed1-"):
        return "ce1_embd_" + algorithm.removeprefix("cosmos-embed1-")
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in algorithm) + "_embd"


def embedding_model(folder: str) -> str:
    """The ``clip_embeddings.model`` an embeddings folder holds (:func:`embedding_folder` read backwards)."""
    folder = folder.removesuffix("_parquet")
    if folder.startswith("ce1_embd"):
        return "cosmos-embed1" + folder.removeprefix("ce1_embd").replace("_", "-")
    name = folder.removesuffix("_embd")
    return "internvideo2" if name == "iv2" else name


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
    return json.dumps({key: plain(value) for key, value in record.items()}, indent=4).encode()


def read_metas(path: str, text: str, root: str) -> tuple[dict, list[dict]]:
    """A ``metas/{version}/{clip_id}.json`` file as a ``clips`` row and its ``captions`` rows.

    The clip's mp4 is taken to be under ``root`` (``clips/`` or, when the record's location says
    so, ``filtered_clips/``); frames within the source come from ``duration_span`` and the source's
    rate; window ends become exclusive again. Raises ValueError for a file that is not such a record.
    """
    parts = path.rstrip("/").split("/")
    version, clip_id = parts[-2], parts[-1].removesuffix(".json")
    try:
        meta = json.loads(text)
        start_s, end_s = (float(t) for t in meta["duration_span"])
        source, fps = meta["source_video"], float(meta["framerate"])
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{path} is not a Cosmos-Curate clip record ({type(e).__name__}: {e})") from None
    source_fps = float(meta.get("framerate_source") or fps)
    folder = "filtered_clips" if "/filtered_clips/" in str(meta.get("clip_location") or "") else "clips"
    motion = meta.get("motion_score") or {}
    errors = meta.get("errors") or {}
    clip = {
        "clip_id": clip_id, "video_id": ids.video_id(source), "source_path": source,
        "start_frame": round(start_s * source_fps), "end_frame": round(end_s * source_fps), "start_s": start_s, "end_s": end_s,
        "location": f"{root.rstrip('/')}/{folder}/{clip_id}.mp4", "width": meta.get("width"), "height": meta.get("height"),
        "fps": fps, "num_frames": meta.get("num_frames"), "num_bytes": meta.get("num_bytes"), "codec": meta.get("video_codec"),
        "motion_global_mean": motion.get("global_mean"), "motion_per_patch_min_256": motion.get("per_patch_min_256"),
        "aesthetic_score": meta.get("aesthetic_score"),
        "filtered_by": "cosmos-curate" if folder == "filtered_clips" else None,
        "error": "; ".join(map(str, errors.values() if isinstance(errors, dict) else errors)) or None,
    }
    captions = []
    for index, window in enumerate(meta.get("windows") or []):
        key = next((k for k in window if k.endswith("_caption") and not k.endswith("_enhanced_caption")), None)
        if key is None:
            continue
        variant = key.removesuffix("_caption")
        enhanced = next((k for k in window if k.endswith("_enhanced_caption")), None)
        captions.append({"clip_id": clip_id, "window_index": index, "annotation_version": version,
                         "start_frame": int(window["start_frame"]), "end_frame": int(window["end_frame"]) + 1,
                         "caption": window[key], "model": variant,
                         "prompt_tokens": window.get(f"{variant}_prompt_tokens"),
                         "output_tokens": window.get(f"{variant}_output_tokens"),
                         "enhanced_caption": window[enhanced] if enhanced else None,
                         "enhance_model": enhanced.removesuffix("_enhanced_caption") if enhanced else None})
    return clip, captions


def read_processed_video(path: str, text: str) -> dict:
    """A ``processed_videos/{relpath}.json`` record as a ``videos`` row. Raises ValueError when it is not one."""
    try:
        record = json.loads(text)
        source = record["video"]
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{path} is not a Cosmos-Curate processed-video record ({type(e).__name__}: {e})") from None
    return {"video_id": record.get("video_uuid") or ids.video_id(source), "source_path": source,
            "duration_s": record.get("duration"), "fps": record.get("framerate"), "num_frames": record.get("num_frames"),
            "width": record.get("width"), "height": record.get("height"), "codec": record.get("video_codec"),
            "pix_fmt": record.get("pixel_format"), "audio_codec": record.get("audio_format"),
            "num_clips": record.get("num_total_clips"), "status": "ok"}
