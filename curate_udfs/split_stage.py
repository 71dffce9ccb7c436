"""The split stage: one video in, its metadata row and its transcoded clips out.

Two streaming passes over the video: 48x27 frames into TransNetV2 (or none for fixed
strides), then full frames into the H.264 encoder for the chosen spans. The first pass keeps
the decoded full frames while they fit in ``frame_buffer_mb``, and the second pass encodes
those instead of decoding the video again; a longer video is decoded twice, so memory stays
bounded whatever its length. In each pass decode runs in its own thread, overlapping inference
or encoding.
"""

import contextlib
import dataclasses
from dataclasses import dataclass, field
from typing import Callable, Iterator, Literal

import pandas as pd

from curate_udfs import ids
from curate_udfs.cpu_share import CpuShare, machine_cores
from curate_udfs.errors import MediaError
from curate_udfs.media.decode import KeptFrames, iter_small_rgb_frames, iter_video_frames
from curate_udfs.media.probe import VideoInfo, probe_video
from curate_udfs.media.transcode import EncoderSettings, encode_spans
from curate_udfs.prefetch import prefetch
from curate_udfs.splitting.spans import FixedStrideRules, TransNetV2Rules
from curate_udfs.stage import map_records
from curate_udfs.objectstore import S3Access
from curate_udfs.storage import join, local_copy, remove_quietly, write_bytes_atomic

# A video that decodes to fewer frames than this share of what its container declares is
# truncated or corrupt; small differences come from edit lists and rounding.
MIN_DECODED_SHARE = 0.95

# Declared inputs and outputs of the stage; jobs/ turns these into Spark schemas.
INPUT_COLUMNS = ("source_path", "local_path")
VIDEO_COLUMNS = {
    "video_id": str, "source_path": str, "num_bytes": int, "duration_s": float, "fps": float,
    "num_frames": int, "width": int, "height": int, "codec": str, "pix_fmt": str, "bit_rate": int,
    "audio_codec": str, "status": str, "error": str, "num_clips": int, "processing_s": float,
}
CLIP_COLUMNS = {
    "clip_id": str, "video_id": str, "source_path": str, "start_frame": int, "end_frame": int,
    "start_s": float, "end_s": float, "location": str, "width": int, "height": int, "fps": float,
    "num_frames": int, "num_bytes": int, "codec": str,
}


@dataclass(frozen=True)
class SplitConfig:
    """Everything the split stage needs; checked where the job starts, used on the workers."""

    clips_dir: str
    splitting_algorithm: Literal["transnetv2", "fixed-stride"] = "transnetv2"
    transnetv2: TransNetV2Rules = field(default_factory=TransNetV2Rules)
    transnetv2_precision: Literal["fp32", "bf16"] = "fp32"
    fixed_stride: FixedStrideRules = field(default_factory=FixedStrideRules)
    encoder: EncoderSettings = field(default_factory=EncoderSettings)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    decode_threads: int = 1
    # How to reach s3:// sources and an s3:// clips_dir (profiles, endpoint); unused for local paths.
    input_access: S3Access = field(default_factory=S3Access)
    output_access: S3Access = field(default_factory=S3Access)
    # Keep only each video's first N clips (0: all), as Cosmos-Curate's --limit-clips: cut after splitting, before transcoding.
    limit_clips: int = 0
    # Decoded frames kept from TransNetV2's pass for the encoder (per task; 0: always decode twice).
    frame_buffer_mb: int = 512

    def __post_init__(self):
        if self.splitting_algorithm not in ("transnetv2", "fixed-stride"):
            raise ValueError(f"splitting algorithm must be transnetv2 or fixed-stride, got {self.splitting_algorithm!r}")
        if self.transnetv2_precision not in ("fp32", "bf16"):
            raise ValueError(f"transnetv2 precision must be fp32 or bf16, got {self.transnetv2_precision!r}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"device must be auto, cpu or cuda, got {self.device!r}")
        if self.decode_threads < 1:
            raise ValueError(f"decode threads must be >= 1, got {self.decode_threads}")
        if self.limit_clips < 0:
            raise ValueError(f"--limit-clips must be >= 0, got {self.limit_clips}")
        if self.frame_buffer_mb < 0:
            raise ValueError(f"--split-frame-buffer-mb must be >= 0, got {self.frame_buffer_mb}")


def _cut_spans(path: str, info: VideoInfo, config: SplitConfig, kept: KeptFrames | None = None,
               threads: Callable[[], int] | None = None) -> tuple[list[tuple[int, int]], int]:
    """Clip spans and the number of frames the video really decodes to (the container's count for fixed strides)."""
    if config.splitting_algorithm == "fixed-stride":
        return config.fixed_stride.spans(info.num_frames, info.fps), info.num_frames
    # torch is imported where frames are split, not with this module: the jobs' drivers read its schemas.
    from curate_udfs.splitting.transnetv2 import INPUT_HEIGHT, INPUT_WIDTH, predict_cut_probabilities

    frames = prefetch(iter_small_rgb_frames(path, INPUT_WIDTH, INPUT_HEIGHT, threads=config.decode_threads, kept=kept))
    probabilities = predict_cut_probabilities(frames, device=config.device, precision=config.transnetv2_precision,
                                              threads=threads)
    decoded = len(probabilities)
    if info.num_frames and decoded < MIN_DECODED_SHARE * info.num_frames:
        raise MediaError(f"truncated or corrupt: decoded {decoded} of the {info.num_frames} frames the container declares")
    return config.transnetv2.spans(probabilities, info.fps), decoded


def split_video(source_path: str, local_path: str, config: SplitConfig,
                threads: Callable[[], int] | None = None) -> tuple[dict, list[dict]]:
    """Probe, split and transcode one video; its ``videos`` row (status ok) and ``clips`` rows.

    ``source_path`` names the video in ids and tables exactly as listed; ``local_path`` is where
    to read it. Clip files go to ``config.clips_dir/{clip_id}.mp4``; on failure the ones already
    written are removed and the error propagates (:class:`MediaError` for bad input).
    """
    info = probe_video(local_path)
    one_decode = config.frame_buffer_mb and config.splitting_algorithm == "transnetv2"  # (fixed strides decode once)
    kept = KeptFrames(config.frame_buffer_mb * 2**20) if one_decode else None
    spans, num_frames = _cut_spans(local_path, info, config, kept, threads)
    vid = ids.video_id(source_path)
    cosmos_seconds = {}  # fixed-stride clips take Cosmos-Curate's ids, made from its float seconds
    if config.splitting_algorithm == "fixed-stride":
        cosmos_seconds = dict(zip(spans, config.fixed_stride.span_seconds(info.num_frames, info.fps)))
    if config.limit_clips:  # the first N in time order; decoding for transcoding stops after the last
        spans = sorted(spans)[:config.limit_clips]
    clips: list[dict] = []
    try:
        frames = (kept and kept.drain()) or prefetch(iter_video_frames(local_path, threads=config.decode_threads))
        for clip in encode_spans(frames, spans, info.frame_rate, config.encoder):
            seconds = cosmos_seconds.get((clip.start_frame, clip.end_frame))
            cid = (ids.fixed_stride_clip_id(source_path, *seconds) if seconds
                   else ids.clip_id(source_path, clip.start_frame, clip.end_frame))
            location = join(config.clips_dir, f"{cid}.mp4")
            write_bytes_atomic(location, clip.data, config.output_access)
            clips.append({
                "clip_id": cid, "video_id": vid, "source_path": source_path,
                "start_frame": clip.start_frame, "end_frame": clip.end_frame,
                "start_s": clip.start_frame / info.fps, "end_s": clip.end_frame / info.fps,
                "location": location, "width": clip.width, "height": clip.height, "fps": info.fps,
                "num_frames": clip.num_frames, "num_bytes": len(clip.data), "codec": "h264",
            })
    except BaseException:
        for clip in clips:
            remove_quietly(clip["location"], config.output_access)
        raise
    video = {**info.as_row(), "num_frames": num_frames, "video_id": vid, "source_path": source_path,
             "status": "ok", "error": None, "num_clips": len(clips)}
    return video, clips


def _error_video(record: dict, message: str) -> dict:
    source_path = record["source_path"]
    return {"video_id": ids.video_id(source_path), "source_path": source_path, "status": "error",
            "error": message, "num_clips": 0, "clips": []}


def split_batches(batches: Iterator[pd.DataFrame], config: SplitConfig, *, torch_threads: int = 1) -> Iterator[pd.DataFrame]:
    """mapInPandas body: rows of ``source_path``/``local_path`` in, one row per video out.

    Each output row holds the ``videos`` columns and ``clips``, a list of clip records.
    """
    import torch

    torch.set_num_threads(torch_threads)
    if config.device == "auto":
        config = dataclasses.replace(config, device="cuda" if torch.cuda.is_available() else "cpu")
    # On CPUs TransNetV2 takes this task's share of the machine's cores, at least torch_threads:
    # the last task of a stage (often one long video) uses the cores the finished ones left.
    share = CpuShare("split", machine_cores(), torch_threads) if config.device == "cpu" else None

    def process(record: dict) -> dict:
        # An s3:// video is downloaded for the time it is worked on; its download error is its error row.
        with local_copy(record.get("local_path") or record["source_path"], config.input_access) as path:
            video, clips = split_video(record["source_path"], path, config, share and share.threads)
        return {**video, "clips": clips}

    with share or contextlib.nullcontext():
        yield from map_records(batches, process, _error_video, [*VIDEO_COLUMNS, "clips"])
