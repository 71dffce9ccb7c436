"""The artificial-text filter stage: clips in, a burned-in-text score and the OCR'd text out.

Options as Cosmos-Curate v1.4 names them: ``--artificial-text-filter disable|enable|score-only``
(default disable), plus ``--artificial-text-threshold`` (0.5: a clip scoring at or above it has
burned-in text) and ``--artificial-text-frames`` (5 frames OCR'd per clip, spread evenly over it).
How the score tells subtitles, tickers, captions and title cards from scene text (signs, plates):
:mod:`curate_udfs.filters.text_overlay`.

The OCR weights are PP-OCRv4's, inside the ``rapidocr-onnxruntime`` wheel: ``pip install 'cliplake[ocr]'``
on the driver and every executor.
"""

import importlib.util
from dataclasses import dataclass
from typing import Iterator, Literal

import pandas as pd

from curate_udfs.errors import EnvironmentProblem
from curate_udfs.filters import text_overlay
from curate_udfs.media.sampling import sample_frames
from curate_udfs.stage import map_records

TextMode = Literal["disable", "enable", "score-only"]
FILTERED_BY = "artificial_text"
TEXT_SEPARATOR = "\n"  # between the distinct OCR'd lines in the artificial_text column

INPUT_COLUMNS = ("clip_id", "location", "num_frames", "width", "height")
OUTPUT_COLUMNS = {
    "clip_id": str, "artificial_text_score": float, "artificial_text": str,
    "filtered_by": str, "error": str, "processing_s": float,
}


@dataclass(frozen=True)
class ArtificialTextConfig:
    """``--artificial-text-*`` options; ``mode='disable'`` reads nothing and keeps every clip."""

    mode: TextMode = "disable"
    threshold: float = 0.5
    frames: int = 5
    long_side: int = 640  # frames are decoded with their longer side at most this (OCR cost grows with area)
    ocr_threads: int = 1
    decode_threads: int = 1

    def __post_init__(self):
        if self.mode not in ("disable", "enable", "score-only"):
            raise ValueError(f"--artificial-text-filter must be disable, enable or score-only, got {self.mode!r}")
        if not 0 <= self.threshold <= 1:
            raise ValueError(f"--artificial-text-threshold must be within [0, 1], got {self.threshold}")
        if self.frames < 1:
            raise ValueError(f"--artificial-text-frames must be >= 1, got {self.frames}")
        if self.long_side < 64 or self.ocr_threads < 1 or self.decode_threads < 1:
            raise ValueError("artificial text long_side must be >= 64, threads >= 1")

    @property
    def enabled(self) -> bool:
        return self.mode != "disable"


def check_artificial_text(config: ArtificialTextConfig) -> None:
    """Driver-side check before any task: the OCR package (and its weights) are installed."""
    if config.enabled and (importlib.util.find_spec("rapidocr_onnxruntime") is None
                           or importlib.util.find_spec("onnxruntime") is None):
        raise EnvironmentProblem("--artificial-text-filter needs the PP-OCR models of rapidocr-onnxruntime, which is "
                                 "not installed: pip install 'cliplake[ocr]' (or run with --artificial-text-filter disable)")


def frame_indices(num_frames: int, count: int) -> list[int]:
    """``count`` frame indices spread evenly over the clip (the middle of each of ``count`` equal parts)."""
    count = max(1, min(count, num_frames))
    return sorted({min(num_frames - 1, int((i + 0.5) * num_frames / count)) for i in range(count)})


def clip_frames(record: dict, config: ArtificialTextConfig):
    """The clip's sampled frames (uint8 RGB), the longer side scaled down to ``config.long_side``."""
    width, height = int(record.get("width") or 0), int(record.get("height") or 0)
    size = {}
    if max(width, height) > config.long_side:
        size = {"width": config.long_side} if width >= height else {"height": config.long_side}
    indices = frame_indices(int(record["num_frames"]), config.frames)
    return sample_frames(record["location"], indices, threads=config.decode_threads, **size).frames


def score_clip(record: dict, config: ArtificialTextConfig) -> dict:
    """The artificial-text columns of one clip: its score, its OCR'd lines, and the verdict."""
    found = text_overlay.score_frames(clip_frames(record, config), text_overlay.load_ocr(config.ocr_threads))
    return {
        "artificial_text_score": found.score,
        "artificial_text": TEXT_SEPARATOR.join(found.texts),
        "filtered_by": FILTERED_BY if config.mode == "enable" and found.score >= config.threshold else None,
    }


def artificial_text_batches(
    batches: Iterator[pd.DataFrame], config: ArtificialTextConfig, gpu_addresses: list[str] | None = None
) -> Iterator[pd.DataFrame]:
    """mapInPandas body: clip rows (:data:`INPUT_COLUMNS`) in, one :data:`OUTPUT_COLUMNS` row per clip out.

    Example::

        clips.mapInPandas(lambda b: artificial_text_batches(b, ArtificialTextConfig(mode="enable")), schema)

    ``filtered_by`` is ``"artificial_text"`` only in enable mode for a clip scoring at least the
    threshold; score-only writes the same score and text and drops nothing. ``artificial_text`` is
    every distinct line the OCR read (newline-separated; empty when none). A clip that cannot be
    decoded gets ``error`` and no score. OCR runs on the CPU (``gpu_addresses`` is ignored).
    """

    def process(record: dict) -> dict:
        row = {"clip_id": record["clip_id"], "error": None}
        if not config.enabled:
            return {**row, "artificial_text_score": None, "artificial_text": None, "filtered_by": None}
        return {**row, **score_clip(record, config)}

    def on_error(record: dict, message: str) -> dict:
        return {"clip_id": record["clip_id"], "error": f"artificial_text: {message}"}

    if config.enabled:
        check_artificial_text(config)
    return map_records(batches, process, on_error, list(OUTPUT_COLUMNS))
