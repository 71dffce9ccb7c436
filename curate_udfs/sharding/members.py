"""What a sample's members hold, in each dataset format: the clip's metas json and the T5 pickle.

Formats (``MemberFormat``):
- ``cosmos-predict2.5`` (default): Cosmos-Curate v1.4's clip metas plus ``nb_frames`` and
  ``t2w_windows`` (what cosmos-predict2.5's stock webdataset pipeline reads); the pickle holds
  one ``{"t2w_<caption type>": array}`` dict per window.
- ``cosmos-curate``: exactly what Cosmos-Curate v1.4's shard step writes: the compact metas json
  and a pickled bare list of arrays, one per window.
- ``video2world``: one window per sample; the caption as plain text and ``[array]`` pickled.

Only content goes in (no run ids, no timestamps), so the same clip and captions always give the
same bytes, and a dataset rebuilt from an old table version is the old dataset byte for byte.
"""

import json
import math
import pickle
from dataclasses import dataclass
from typing import Literal

import numpy as np

SHARD_FORMATS = ("cosmos-predict2.5", "cosmos-curate")
DATASET_FORMATS = ("webdataset", "video2world")
DEFAULT_T2W_CAPTION_TYPE = "qwen2p5_7b"
# Window keys cosmos-predict2.5's TextTransformForVideo accepts besides the frames.
T2W_CAPTION_STYLES = ("", "_short", "_medium", "_user")

# Columns a sample row carries for its members: the clip's, its source video's, and its windows
# (parallel arrays in window order; frames within the clip, end exclusive).
CLIP_COLUMNS = {
    "clip_id": str, "video_id": str, "source_path": str, "start_s": float, "end_s": float, "location": str,
    "width": int, "height": int, "fps": float, "num_frames": int, "num_bytes": int, "codec": str,
    "source_width": int, "source_height": int, "source_fps": float,
    "motion_global_mean": float, "motion_per_patch_min_256": float, "aesthetic_score": float,
    "caption_model": str, "num_clip_windows": int, "enhance_model": str,
}
# enhanced_captions: null when no window of the clip was enhanced (--enhance-captions)
WINDOW_COLUMNS = {"window_starts": list[int], "window_ends": list[int], "captions": list[str],
                  "prompt_tokens": list[int], "output_tokens": list[int], "enhanced_captions": list[str]}


@dataclass(frozen=True)
class MemberFormat:
    """How a sample's members are written; checked where the job starts.

    Example::

        MemberFormat(shard_format="cosmos-predict2.5", t2w_caption_type="qwen2p5_7b")

    ``t2w_caption_type`` names the caption in ``t2w_windows`` (``{type}_caption``) and in the
    pickle (``t2w_{type}``): the loader's ``caption_type`` is ``t2w_{type}``.
    """

    dataset_format: Literal["webdataset", "video2world"] = "webdataset"
    shard_format: Literal["cosmos-predict2.5", "cosmos-curate"] = "cosmos-predict2.5"
    t2w_caption_type: str = DEFAULT_T2W_CAPTION_TYPE

    def __post_init__(self):
        if self.dataset_format not in DATASET_FORMATS:
            raise ValueError(f"--dataset-format must be one of {', '.join(DATASET_FORMATS)}, got {self.dataset_format!r}")
        if self.shard_format not in SHARD_FORMATS:
            raise ValueError(f"--shard-format must be one of {', '.join(SHARD_FORMATS)}, got {self.shard_format!r}")
        if not self.t2w_caption_type or not self.t2w_caption_type.replace("_", "").isalnum():
            raise ValueError(f"--t2w-caption-type must be a name like qwen2p5_7b, got {self.t2w_caption_type!r}")

    @property
    def name(self) -> str:
        return self.shard_format if self.dataset_format == "webdataset" else self.dataset_format


def plain(value):
    """JSON-safe: numpy scalars to Python, NaN (pandas' missing double) to None."""
    if value is None:
        return None
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def caption_variant(model: str | None) -> str:
    """Cosmos-Curate's short name of a captioning model, the prefix of its window keys (``qwen_caption``)."""
    name = (model or "").rstrip("/").rsplit("/", 1)[-1].lower()
    for family, variant in (("qwen", "qwen"), ("nemotron", "nemotron"), ("cosmos-reason", "cosmos_r1"),
                            ("gemini", "gemini"), ("gpt", "openai")):
        if family in name:
            return variant
    return "qwen"  # a tiny or local checkpoint of the default family


def enhanced_caption_key(model: str | None) -> str:
    """The window key Cosmos-Curate gives a model's enhanced caption: ``{lm}_enhanced_caption``.

    Example::

        enhanced_caption_key("/models/Qwen2.5-14B-Instruct")  # "qwen_lm_enhanced_caption"
    """
    name = (model or "").rstrip("/").rsplit("/", 1)[-1].lower()
    for family, lm in (("nemotron", "nemotron_lm"), ("gpt", "openai_lm"), ("gemini", "gemini_lm")):
        if family in name:
            return f"{lm}_enhanced_caption"
    return "qwen_lm_enhanced_caption"  # Qwen (Cosmos-Curate's default language model) and local tiny checkpoints


def windows(row: dict) -> list[dict]:
    """The row's windows: ``start``, ``end`` (exclusive), ``caption``, token counts, ``enhanced`` (or None), in order."""
    enhanced = row.get("enhanced_captions")
    if enhanced is None or isinstance(enhanced, float):  # (pandas' missing value)
        enhanced = [None] * len(row["window_starts"])
    return [{"start": int(s), "end": int(e), "caption": c, "prompt_tokens": plain(p), "output_tokens": plain(o),
             "enhanced": x}
            for s, e, c, p, o, x in zip(row["window_starts"], row["window_ends"], row["captions"], row["prompt_tokens"],
                                        row["output_tokens"], enhanced)]


def clip_metas(row: dict) -> dict:
    """Cosmos-Curate v1.4's clip metas dict (its split output's ``metas/v0/{uuid}.json``), keys in its order.

    Window frames are within the clip with ``end_frame`` inclusive, as Cosmos-Curate writes them.
    """
    r = {c: plain(row.get(c)) for c in CLIP_COLUMNS}
    meta = {
        "span_uuid": r["clip_id"], "source_video": r["source_path"], "duration_span": [r["start_s"], r["end_s"]],
        "width_source": r["source_width"], "height_source": r["source_height"], "framerate_source": r["source_fps"],
        "clip_location": r["location"], "width": r["width"], "height": r["height"], "framerate": r["fps"],
        "num_frames": r["num_frames"], "video_codec": r["codec"], "num_bytes": r["num_bytes"],
    }
    if r["motion_global_mean"] is not None:
        meta["motion_score"] = {"global_mean": r["motion_global_mean"], "per_patch_min_256": r["motion_per_patch_min_256"]}
    if r["aesthetic_score"] is not None:
        meta["aesthetic_score"] = r["aesthetic_score"]
    variant = caption_variant(r["caption_model"])
    enhanced_key = enhanced_caption_key(r["enhance_model"])
    meta["windows"] = [{"start_frame": w["start"], "end_frame": w["end"] - 1, f"{variant}_caption": w["caption"],
                        f"{variant}_prompt_tokens": w["prompt_tokens"], f"{variant}_output_tokens": w["output_tokens"],
                        **({enhanced_key: w["enhanced"]} if w["enhanced"] is not None else {})}
                       for w in windows(row)]
    meta["filtered_windows"] = []
    meta["valid"] = bool(meta["windows"])
    meta["has_caption"] = bool(meta["windows"])
    meta["total_prompt_tokens"] = sum(w[f"{variant}_prompt_tokens"] or 0 for w in meta["windows"])
    meta["total_output_tokens"] = sum(w[f"{variant}_output_tokens"] or 0 for w in meta["windows"])
    return meta


def metas_member(row: dict, fmt: MemberFormat) -> bytes:
    """The ``.json`` member (webdataset) or the ``.txt`` caption file (video2world)."""
    if fmt.dataset_format == "video2world":
        [window] = windows(row)
        return window["caption"].encode("utf-8")  # raw text, no trailing newline, as Cosmos-Curate writes it
    meta = clip_metas(row)
    if fmt.shard_format == "cosmos-predict2.5":
        # The stock loader reads nb_frames without a guard and takes t2w_windows' frames relative to the sample's mp4
        # (the whole clip here) as np.arange(start_frame, end_frame): end exclusive. A window carries only the frames
        # and the caption: other keys drop the sample.
        meta["nb_frames"] = meta["num_frames"]
        meta["t2w_windows"] = [{"start_frame": w["start"], "end_frame": w["end"],
                                f"{fmt.t2w_caption_type}_caption": w["caption"]} for w in windows(row)]
    return json.dumps(meta).encode("utf-8")  # compact, ASCII-escaped: Cosmos-Curate's json.dumps(clip_metadata)


def t5_member(embeddings: list[np.ndarray], fmt: MemberFormat) -> bytes:
    """The ``.pickle`` member: one float16 (tokens, d_model) array per window, wrapped as the format wants."""
    arrays = [e.astype(np.float16) for e in embeddings]
    if fmt.dataset_format == "webdataset" and fmt.shard_format == "cosmos-predict2.5":
        return pickle.dumps([{f"t2w_{fmt.t2w_caption_type}": a} for a in arrays], protocol=4)
    return pickle.dumps(arrays, protocol=4)
