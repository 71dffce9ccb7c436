"""The aesthetic filter: CLIP ViT-L/14 image embeddings of 1 fps frames, scored by LAION's aesthetic MLP.

Options as Cosmos-Curate names them: ``--aesthetic-threshold X`` (unset: stage off; negative:
score only), ``--aesthetic-reduction min|mean`` (how per-frame scores become the clip's), plus
``--aesthetic-model PATH_OR_HUB_ID``, one folder (or hub repository) laid out as::

    aesthetic/
      config.json                 a transformers CLIP checkpoint: CLIPModel (text tower ignored)
      model.safetensors           or CLIPVisionModelWithProjection, saved with save_pretrained
      preprocessor_config.json    its CLIPImageProcessor
      sac+logos+ava1-l14-linearMSE.pth   LAION's MLP as published (or aesthetic_mlp.safetensors)

Build it once from the public weights::

    python -c "from transformers import CLIPModel, CLIPImageProcessor as P; \\
      CLIPModel.from_pretrained('openai/clip-vit-large-patch14').save_pretrained('aesthetic'); \\
      P.from_pretrained('openai/clip-vit-large-patch14').save_pretrained('aesthetic')"
    curl -L -o aesthetic/sac+logos+ava1-l14-linearMSE.pth \\
      https://github.com/christophschuhmann/improved-aesthetic-predictor/raw/main/sac+logos+ava1-l14-linearMSE.pth

The MLP is LAION's ``Linear(768, 1024), Dropout, Linear(1024, 128), Dropout, Linear(128, 64), Dropout,
Linear(64, 16), Linear(16, 1)`` with no activations, so the published state-dict keys
(``layers.0``, ``layers.2``, ``layers.4``, ``layers.6``, ``layers.7``) load as they are. Its input is
the L2-normalised projected image embedding; its scores run roughly 1 to 10 (5.5 fair, 6.5 high).
"""

import os
from dataclasses import dataclass
from typing import Iterator, Literal

import numpy as np
import pandas as pd

from curate_udfs.errors import EnvironmentProblem
from curate_udfs.media.sampling import sample_frames, sample_indices
from curate_udfs.models import locate_weights, resolve_device
from curate_udfs.stage import describe_error, map_record_batches

FILTERED_BY = "aesthetic"
OPTION = "--aesthetic-model"
DISABLE_HINT = "Or leave --aesthetic-threshold unset to turn the aesthetic filter off."
# Accepted names of the MLP weights inside the model folder, in order of preference.
MLP_FILES = ("aesthetic_mlp.safetensors", "sac+logos+ava1-l14-linearMSE.pth", "aesthetic_mlp.pth")
# CLIPImageProcessor resizes the short side to 224 and centre-crops; decoding straight to that
# short side keeps a long clip's frames small in memory.
SHORT_SIDE = 224

INPUT_COLUMNS = ("clip_id", "location", "fps", "num_frames")
OUTPUT_COLUMNS = {"clip_id": str, "aesthetic_score": float, "filtered_by": str, "error": str, "processing_s": float}


@dataclass(frozen=True)
class AestheticConfig:
    """``--aesthetic-*`` options; ``threshold=None`` turns the stage off, a negative one scores only."""

    threshold: float | None = None
    reduction: Literal["min", "mean"] = "min"
    model: str | None = None
    target_fps: float = 1.0
    frames_per_batch: int = 64  # frames through CLIP per forward pass
    clips_per_batch: int = 8  # clips decoded together before their frames go through the model
    device: str = "auto"
    precision: Literal["fp32", "fp16", "bf16"] = "fp32"
    decode_threads: int = 1

    def __post_init__(self):
        if self.reduction not in ("min", "mean"):
            raise ValueError(f"--aesthetic-reduction must be min or mean, got {self.reduction!r}")
        if self.precision not in ("fp32", "fp16", "bf16"):
            raise ValueError(f"aesthetic precision must be fp32, fp16 or bf16, got {self.precision!r}")
        if self.target_fps <= 0:
            raise ValueError(f"aesthetic target fps must be > 0, got {self.target_fps}")
        if self.frames_per_batch < 1 or self.clips_per_batch < 1:
            raise ValueError("aesthetic frames_per_batch and clips_per_batch must be >= 1")
        if self.decode_threads < 1:
            raise ValueError(f"aesthetic decode threads must be >= 1, got {self.decode_threads}")

    @property
    def enabled(self) -> bool:
        return self.threshold is not None

    def filters(self, score: float) -> bool:
        """True when ``score`` drops the clip: a threshold >= 0 that the score is under."""
        return self.threshold is not None and self.threshold >= 0 and score < self.threshold


def check_aesthetic(config: AestheticConfig) -> str | None:
    """Driver-side check before any task: the model folder exists and holds both parts; its path.

    Returns None when the stage is off. Raises :class:`EnvironmentProblem` naming
    ``--aesthetic-model`` and how to turn the stage off.
    """
    if not config.enabled:
        return None
    if not config.model:
        raise EnvironmentProblem(f"--aesthetic-threshold is set but {OPTION} is not: point it at a folder "
                                 f"holding a CLIP checkpoint and LAION's MLP (see curate_udfs/filters/aesthetic.py). "
                                 f"{DISABLE_HINT}")
    folder = locate_weights(config.model, option=OPTION, disable_hint=DISABLE_HINT)
    mlp_weights_path(folder)
    if not os.path.exists(os.path.join(folder, "config.json")):
        raise EnvironmentProblem(f"{OPTION} {config.model}: no config.json, so no CLIP checkpoint in {folder}. "
                                 f"Save one there with save_pretrained. {DISABLE_HINT}")
    return folder


def mlp_weights_path(folder: str) -> str:
    """The LAION MLP weights file in ``folder`` (see :data:`MLP_FILES`)."""
    for name in MLP_FILES:
        path = os.path.join(folder, name)
        if os.path.exists(path):
            return path
    raise EnvironmentProblem(f"{OPTION} {folder}: no aesthetic MLP weights; expected one of {', '.join(MLP_FILES)} "
                             f"beside the CLIP checkpoint. {DISABLE_HINT}")


def reduce_scores(scores: np.ndarray, reduction: str) -> float:
    """The clip's score from its frames' scores: the worst frame (min) or the average (mean)."""
    if len(scores) == 0:
        raise ValueError("no frames to score")
    return float(scores.min() if reduction == "min" else scores.mean())


def clip_frames(record: dict, config: AestheticConfig) -> np.ndarray:
    """The clip's frames at ``config.target_fps``, short side scaled to 224 (uint8 RGB)."""
    indices = sample_indices(int(record["num_frames"]), float(record["fps"]), config.target_fps)
    side = {"height": SHORT_SIDE} if record.get("width", 1) >= record.get("height", 1) else {"width": SHORT_SIDE}
    return sample_frames(record["location"], indices, threads=config.decode_threads, **side).frames


def aesthetic_batches(
    batches: Iterator[pd.DataFrame], config: AestheticConfig, gpu_addresses: list[str] | None = None
) -> Iterator[pd.DataFrame]:
    """mapInPandas body: clip rows (:data:`INPUT_COLUMNS`) in, one :data:`OUTPUT_COLUMNS` row per clip out.

    Example::

        clips.mapInPandas(lambda b: aesthetic_batches(b, AestheticConfig(threshold=3.5, model=path)), schema)

    Frames of ``clips_per_batch`` clips go through the model together. A clip that cannot be
    decoded gets ``error`` and no score; the others in its batch are scored. ``config.model``
    must already be a local folder or a cached hub id (run :func:`check_aesthetic` on the driver).
    """
    columns = list(OUTPUT_COLUMNS)
    if not config.enabled:
        yield from (pd.DataFrame({"clip_id": b["clip_id"], **{c: None for c in columns[1:]}}, columns=columns)
                    for b in batches)
        return
    from curate_udfs.filters.aesthetic_model import load_scorer  # torch, in the Python worker only

    folder = check_aesthetic(config)
    device = resolve_device(config.device, gpu_addresses)

    def process_many(records: list[dict]) -> list[dict]:
        rows, decoded = [], []
        for record in records:
            try:
                decoded.append(clip_frames(record, config))
                rows.append({"clip_id": record["clip_id"], "error": None})
            except EnvironmentProblem:
                raise
            except Exception as error:  # this clip only: its neighbours still go through the model
                decoded.append(None)
                rows.append(_error_row(record, describe_error(error)))
        good = [frames for frames in decoded if frames is not None]
        if good:
            frames = [frame for clip in good for frame in clip]
            scores = load_scorer(folder, device, config.precision).score(frames, config.frames_per_batch)
            start = 0
            for row, frames in zip(rows, decoded):
                if frames is None:
                    continue
                score = reduce_scores(scores[start: start + len(frames)], config.reduction)
                start += len(frames)
                row.update(aesthetic_score=score, filtered_by=FILTERED_BY if config.filters(score) else None)
        return rows

    yield from map_record_batches(batches, process_many, _error_row, columns, config.clips_per_batch)


def _error_row(record: dict, message: str) -> dict:
    return {"clip_id": record["clip_id"], "aesthetic_score": None, "filtered_by": None,
            "error": f"aesthetic: {message}"}
