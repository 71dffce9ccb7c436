"""Caption text embeddings for the shard dataset: a T5 (or any transformers text encoder) last hidden state.

As Cosmos-Curate computes them: the caption ``strip()``ped, encoder only, at most 512 tokens
counting the end token, the last hidden state in float32 trimmed to the token count (so no
padding rows); datasets store it as float16 (``members.t5_member``).
"""

import functools
from dataclasses import dataclass
from typing import Literal

import numpy as np

from curate_udfs.errors import EnvironmentProblem
from curate_udfs.models import locate_weights, resolve_device

MODEL_OPTION = "--text-encoder-model"
DEFAULT_MODEL = "google-t5/t5-11b"


@dataclass(frozen=True)
class TextEncoderConfig:
    """Which text encoder embeds the captions and how; checked where the job starts.

    Example::

        config = TextEncoderConfig(model="/models/t5-11b", batch_size=32)

    ``batch_size`` captions share one model call. Batches never straddle two tars (the job
    resets them per tar), so a tar's embeddings do not depend on what else ran in its task.
    """

    model: str = DEFAULT_MODEL  # --text-encoder-model: local folder or hub id
    max_length: int = 512
    batch_size: int = 16  # --text-encoder-batch-size
    device: str = "auto"
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = "auto"  # auto: float32, as Cosmos-Curate runs T5

    def __post_init__(self):
        if not self.model:
            raise ValueError("text encoder model must be a local folder or a hub id, got an empty string")
        for name in ("max_length", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"text encoder {name} must be >= 1, got {getattr(self, name)}")
        if self.dtype not in ("auto", "bfloat16", "float16", "float32"):
            raise ValueError(f"text encoder dtype must be auto, bfloat16, float16 or float32, got {self.dtype!r}")
        if self.device != "auto" and self.device.split(":")[0] not in ("cpu", "cuda"):
            raise ValueError(f"device must be auto, cpu, cuda or cuda:N, got {self.device!r}")


def check_text_encoder(config: TextEncoderConfig) -> str:
    """Validate the text encoder on the driver; the local folder of its weights.

    Raises :class:`EnvironmentProblem` naming ``--text-encoder-model`` when the weights are not
    there or the folder holds no tokenizer or no text-encoder architecture transformers knows.
    """
    folder = locate_weights(config.model, option=MODEL_OPTION)
    try:
        from transformers import AutoConfig, AutoTokenizer
        from transformers.models.auto.modeling_auto import MODEL_FOR_TEXT_ENCODING_MAPPING_NAMES

        model_type = AutoConfig.from_pretrained(folder).model_type
        AutoTokenizer.from_pretrained(folder)
    except Exception as e:
        raise EnvironmentProblem(
            f"{MODEL_OPTION} {config.model}: {folder} does not hold a loadable text encoder and tokenizer "
            f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})"
        ) from None
    if model_type not in MODEL_FOR_TEXT_ENCODING_MAPPING_NAMES:
        raise EnvironmentProblem(
            f"{MODEL_OPTION} {config.model}: transformers has no text encoder for model type {model_type!r}; "
            "use a T5 (or another encoder) checkpoint"
        )
    return folder


class TextEncoder:
    """A loaded tokenizer and encoder on one device."""

    def __init__(self, folder: str, device: str, dtype: str, max_length: int):
        import torch
        from transformers import AutoModelForTextEncoding, AutoTokenizer

        if dtype == "auto":
            dtype = "float32"
        self.tokenizer = AutoTokenizer.from_pretrained(folder)
        # T5 loads as T5EncoderModel here: the decoder's weights (half of t5-11b) are never read.
        self.model = AutoModelForTextEncoding.from_pretrained(folder, dtype=getattr(torch, dtype)).to(device).eval()
        self.device, self.max_length = device, max_length

    def encode(self, texts: list[str]) -> list[np.ndarray]:
        """One float32 array of shape (tokens, hidden) per text (stripped first), tokens counted with the end token."""
        import torch

        tokens = self.tokenizer([t.strip() for t in texts], max_length=self.max_length, truncation=True, padding="longest",
                                return_tensors="pt")
        with torch.inference_mode():
            hidden = self.model(input_ids=tokens["input_ids"].to(self.device),
                                attention_mask=tokens["attention_mask"].to(self.device)).last_hidden_state
        lengths = tokens["attention_mask"].sum(dim=1).tolist()
        hidden = hidden.float().cpu().numpy()
        return [np.ascontiguousarray(hidden[i, :n]) for i, n in enumerate(lengths)]


@functools.lru_cache(maxsize=2)
def _load(folder: str, device: str, dtype: str, max_length: int) -> TextEncoder:
    return TextEncoder(folder, device, dtype, max_length)


def load_text_encoder(config: TextEncoderConfig, gpu_addresses: list[str] | None = None) -> TextEncoder:
    """The encoder this Python worker uses for ``config``: loaded on first use, then cached."""
    folder = locate_weights(config.model, option=MODEL_OPTION)
    return _load(folder, resolve_device(config.device, gpu_addresses), config.dtype, config.max_length)
