"""The embedding stage: one clip file in, one L2-normalised vector per clip and model out.

Algorithms (``--embedding-algorithm``): Cosmos-Curate's ``cosmos-embed1-{224p,336p,448p}``
and ``internvideo2``, ``clip`` (any CLIP/SigLIP-family checkpoint, frame features averaged),
and ``thumbnails``, an offline near-duplicate embedder that needs no weights and is the
default when no model is configured. Vectors go to ``clip_embeddings`` keyed by
``(clip_id, model)``, where ``model`` is :attr:`EmbeddingConfig.model_name`.
"""

import functools
import os
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import pandas as pd

from curate_udfs.embedding import thumbnails
from curate_udfs.embedding.frames import clip_sample_indices, pick_evenly
from curate_udfs.errors import BadInputError, EnvironmentProblem
from curate_udfs.media.probe import probe_video
from curate_udfs.media.sampling import sample_frames
from curate_udfs.models import locate_weights, resolve_device
from curate_udfs.stage import describe_error, map_record_batches, map_records

OFFLINE_ALGORITHM = "thumbnails"
DEFAULT_ALGORITHM = OFFLINE_ALGORITHM
# Hub ids of the checkpoints Cosmos-Curate uses; --embedding-model overrides them.
DEFAULT_MODELS = {
    "cosmos-embed1-224p": "nvidia/Cosmos-Embed1-224p",
    "cosmos-embed1-336p": "nvidia/Cosmos-Embed1-336p",
    "cosmos-embed1-448p": "nvidia/Cosmos-Embed1-448p",
    "internvideo2": "OpenGVLab/InternVideo2-Stage2_1B-224p-f4",
}
ALGORITHMS = (*DEFAULT_MODELS, "clip", OFFLINE_ALGORITHM)
# Bumped whenever the offline vector's definition changes, so old and new never mix in a table.
OFFLINE_MODEL_NAME = "thumbnails-v1"
DISABLE_HINT = "Or use the default offline embedder, or --no-generate-embeddings."

INPUT_COLUMNS = ("clip_id", "location")  # plus optional local_path: where to read the clip
OUTPUT_COLUMNS = {
    "clip_id": str, "model": str, "embedding": list[float], "dim": int, "error": str, "processing_s": float,
}


def _is_local_path(model: str) -> bool:
    return model.startswith(("/", "./", "../", "~")) or os.path.isdir(model)


@dataclass(frozen=True)
class EmbeddingConfig:
    """Which embedder to run and where; checked where the job starts, used on the workers.

    Example::

        EmbeddingConfig()                                    # offline thumbnails, no weights
        EmbeddingConfig("clip", model="openai/clip-vit-base-patch32")
        EmbeddingConfig("cosmos-embed1-336p", device="cuda")

    :param algorithm: one of :data:`ALGORITHMS`.
    :param model: a local checkpoint folder or a hub id. Required by ``clip``; optional for
        the Cosmos-Curate algorithms (default :data:`DEFAULT_MODELS`); not allowed for
        ``thumbnails``. A local path is made absolute here, on the driver, so the ``model``
        column stays the same on every worker.
    :param device: ``auto`` (the task's GPU, else CPU), ``cpu``, ``cuda`` or ``cuda:N``.
    :param batch_size: clips per model call.
    """

    algorithm: str = DEFAULT_ALGORITHM
    model: str | None = None
    device: str = "auto"
    batch_size: int = 8
    decode_threads: int = 1

    def __post_init__(self):
        if self.algorithm not in ALGORITHMS:
            raise ValueError(f"embedding algorithm must be one of {', '.join(ALGORITHMS)}; got {self.algorithm!r}")
        if self.algorithm == "clip" and not self.model:
            raise ValueError("the clip embedding algorithm needs --embedding-model (a CLIP/SigLIP checkpoint)")
        if self.algorithm == OFFLINE_ALGORITHM and self.model:
            raise ValueError(f"the {OFFLINE_ALGORITHM} embedder uses no model; got --embedding-model {self.model}")
        if self.device not in ("auto", "cpu", "cuda") and not self.device.startswith("cuda:"):
            raise ValueError(f"device must be auto, cpu, cuda or cuda:N, got {self.device!r}")
        if self.batch_size < 1:
            raise ValueError(f"embedding batch size must be >= 1, got {self.batch_size}")
        if self.decode_threads < 1:
            raise ValueError(f"decode threads must be >= 1, got {self.decode_threads}")
        if self.model and _is_local_path(self.model):
            object.__setattr__(self, "model", os.path.abspath(os.path.expanduser(self.model)))

    @classmethod
    def from_options(cls, algorithm: str | None, model: str | None, **kwargs) -> "EmbeddingConfig":
        """The CLI's reading: no algorithm means ``clip`` when a model is given, else the offline default."""
        if algorithm is None:
            algorithm = "clip" if model else DEFAULT_ALGORITHM
        return cls(algorithm, model, **kwargs)

    @property
    def model_id(self) -> str | None:
        """The checkpoint to load: ``model``, or the algorithm's default hub id (None offline)."""
        return self.model or DEFAULT_MODELS.get(self.algorithm)

    @property
    def model_name(self) -> str:
        """The ``clip_embeddings.model`` value: algorithm and checkpoint, e.g. ``clip:/ckpt/siglip``."""
        if self.algorithm == OFFLINE_ALGORITHM:
            return OFFLINE_MODEL_NAME
        return f"{self.algorithm}:{self.model_id.rstrip('/')}"


def check_embedding(config: EmbeddingConfig) -> None:
    """Driver-side check before any task: the checkpoint of a model-based algorithm must be reachable.

    Raises :class:`EnvironmentProblem` naming ``--embedding-model`` and how to go without.
    """
    if config.algorithm == OFFLINE_ALGORITHM:
        return
    path = locate_weights(config.model_id, option="--embedding-model", disable_hint=DISABLE_HINT)
    if not os.path.isfile(os.path.join(path, "config.json")):
        raise EnvironmentProblem(
            f"--embedding-model {config.model_id}: {path} has no config.json, so transformers cannot load it "
            f"as {config.algorithm}. Point --embedding-model at a transformers checkpoint folder. {DISABLE_HINT}"
        )


@functools.lru_cache(maxsize=4)
def load_encoder(algorithm: str, model_id: str, device: str):
    """The encoder for ``algorithm`` from ``model_id``, once per Python worker and device."""
    # torch comes with the encoders, in the Python worker only: the drivers only read this module's schemas
    from curate_udfs.embedding.encoders import CosmosEmbed1Encoder, ImageFramesEncoder, InternVideo2Encoder

    path = locate_weights(model_id, option="--embedding-model", disable_hint=DISABLE_HINT)
    encoder_class = {"clip": ImageFramesEncoder, "internvideo2": InternVideo2Encoder}.get(algorithm, CosmosEmbed1Encoder)
    return encoder_class(path, device)


def _read_path(record: dict) -> str:
    return record.get("local_path") or record["location"]


def embed_clip_offline(path: str, *, threads: int = 1) -> np.ndarray:
    """The offline ``thumbnails`` vector of one clip file (see :mod:`curate_udfs.embedding.thumbnails`)."""
    info = probe_video(path)
    indices = clip_sample_indices(info.num_frames, info.fps, thumbnails.MIN_FRAMES, thumbnails.SAMPLE_FPS)
    size = thumbnails.DECODE_SIZE
    sampled = sample_frames(path, indices, width=size, height=size, threads=threads)
    if len(sampled.indices) == 0:
        raise BadInputError("clip has no frames")
    # Positions against the frames the container declares; a short decode keeps its real spread.
    count = max(info.num_frames, sampled.indices[-1] + 1)
    return thumbnails.embed_frames(sampled.frames, (np.array(sampled.indices) + 0.5) / count)


def _decode_size(info, square_size: int | None, max_short_side: int | None) -> tuple[int | None, int | None]:
    """(width, height) to decode at; None sides follow the aspect ratio, (None, None) is native."""
    if square_size:
        return square_size, square_size
    if max_short_side and min(info.width, info.height) > max_short_side:
        return (max_short_side, None) if info.width < info.height else (None, max_short_side)
    return None, None


def clip_model_frames(path: str, encoder, *, threads: int = 1) -> np.ndarray:
    """A clip's frames for ``encoder``: 2 fps (denser when short), then its ``frame_count`` of them evenly.

    Raises :class:`BadInputError` when even the densest rate gives fewer frames than the model needs.
    """
    info = probe_video(path)
    frame_count = encoder.frame_count
    indices = clip_sample_indices(info.num_frames, info.fps, frame_count or 1)
    if frame_count:
        if len(indices) < frame_count:
            raise BadInputError(f"clip too short: {len(indices)} frames at up to 20 fps, the model needs {frame_count}")
        indices = [indices[i] for i in pick_evenly(len(indices), frame_count)]
    width, height = _decode_size(info, encoder.square_size, encoder.max_short_side)
    frames = sample_frames(path, indices, width=width, height=height, threads=threads).frames
    if len(frames) == 0:
        raise BadInputError("clip has no frames")
    return frames


def _row(record: dict, config: EmbeddingConfig, vector: np.ndarray) -> dict:
    return {"clip_id": record["clip_id"], "model": config.model_name,
            "embedding": [float(v) for v in vector], "dim": int(len(vector)), "error": None}


def _error_row(config: EmbeddingConfig):
    def on_error(record: dict, message: str) -> dict:
        return {"clip_id": record["clip_id"], "model": config.model_name, "embedding": None, "dim": None, "error": message}
    return on_error


def _model_batches(batches, config: EmbeddingConfig, device: str) -> Iterator[pd.DataFrame]:
    encoder = load_encoder(config.algorithm, config.model_id, device)

    def process_many(records: list[dict]) -> list[dict]:
        rows: list[dict | None] = []
        good, clips = [], []
        for record in records:  # decode apart, so one bad file does not cost the group's model call
            try:
                clips.append(clip_model_frames(_read_path(record), encoder, threads=config.decode_threads))
                good.append(len(rows))
                rows.append(None)
            except EnvironmentProblem:
                raise
            except Exception as error:
                rows.append(_error_row(config)(record, describe_error(error)))
        if clips:
            for position, vector in zip(good, encoder.embed(clips)):
                rows[position] = _row(records[position], config, vector)
        return rows

    return map_record_batches(batches, process_many, _error_row(config), list(OUTPUT_COLUMNS), config.batch_size)


def embedding_batches(
    batches: Iterator[pd.DataFrame], config: EmbeddingConfig, gpu_addresses: list[str] | None = None, *,
    torch_threads: int = 1,
) -> Iterator[pd.DataFrame]:
    """mapInPandas body: rows of ``clip_id``/``location`` (and optional ``local_path``) in, one row per clip out.

    Out: :data:`OUTPUT_COLUMNS`. A clip that cannot be read gets ``error`` and no vector; the
    others are unaffected. ``gpu_addresses`` are the GPUs Spark gave the task (model algorithms).
    """
    if config.algorithm == OFFLINE_ALGORITHM:
        def process(record: dict) -> dict:
            return _row(record, config, embed_clip_offline(_read_path(record), threads=config.decode_threads))

        return map_records(batches, process, _error_row(config), list(OUTPUT_COLUMNS))
    import torch

    torch.set_num_threads(torch_threads)
    return _model_batches(batches, config, resolve_device(config.device, gpu_addresses))
