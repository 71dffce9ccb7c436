"""The aesthetic filter's model: CLIP's image tower and LAION's MLP (torch; imported by the tasks only).

See :mod:`curate_udfs.filters.aesthetic` for the folder layout and the MLP's published layers.
"""

import functools
from typing import Sequence

import numpy as np
import torch
from torch import nn

from curate_udfs.filters.aesthetic import mlp_weights_path


class AestheticMLP(nn.Module):
    """LAION's aesthetic predictor head, layer for layer, so its published state dict loads unchanged."""

    def __init__(self, input_size: int = 768):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(input_size, 1024), nn.Dropout(0.2),
            nn.Linear(1024, 128), nn.Dropout(0.2),
            nn.Linear(128, 64), nn.Dropout(0.1),
            nn.Linear(64, 16),
            nn.Linear(16, 1),
        )

    def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
        return self.layers(embeddings)


def _load_state_dict(path: str) -> dict[str, torch.Tensor]:
    if path.endswith(".safetensors"):
        from safetensors.torch import load_file

        return load_file(path)
    return torch.load(path, map_location="cpu", weights_only=True)


_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


class AestheticScorer:
    """CLIP image tower + LAION MLP on one device: RGB frames in, one score per frame out."""

    def __init__(self, folder: str, device: str = "cpu", precision: str = "fp32"):
        from transformers import AutoConfig, CLIPImageProcessor, CLIPVisionModelWithProjection

        self.device, self.dtype = device, _DTYPES[precision]
        self.processor = CLIPImageProcessor.from_pretrained(folder)
        config = AutoConfig.from_pretrained(folder)
        if config.model_type == "clip":  # a whole CLIPModel: its image tower and the shared projection size
            vision = config.vision_config
            vision.projection_dim = config.projection_dim
            config = vision
        self.clip = CLIPVisionModelWithProjection.from_pretrained(folder, config=config, dtype=self.dtype)
        self.clip = self.clip.to(device).eval()
        self.mlp = AestheticMLP(self.clip.config.projection_dim)
        self.mlp.load_state_dict(_load_state_dict(mlp_weights_path(folder)))
        self.mlp = self.mlp.to(device).eval()

    @torch.inference_mode()
    def embed(self, frames: Sequence[np.ndarray]) -> torch.Tensor:
        """L2-normalised projected CLIP image embeddings (float32) of uint8 RGB frames, each (H, W, 3)."""
        pixels = self.processor(images=list(frames), return_tensors="pt")["pixel_values"]
        embeds = self.clip(pixel_values=pixels.to(self.device, self.dtype)).image_embeds.float()
        return embeds / embeds.norm(dim=-1, keepdim=True)

    @torch.inference_mode()
    def score(self, frames: Sequence[np.ndarray], batch_size: int = 64) -> np.ndarray:
        """Aesthetic score of each frame (sizes may differ), ``batch_size`` frames per forward pass."""
        scores = [self.mlp(self.embed(frames[i: i + batch_size])).squeeze(-1).cpu()
                  for i in range(0, len(frames), batch_size)]
        return torch.cat(scores).numpy() if scores else np.zeros(0, np.float32)


@functools.lru_cache(maxsize=2)
def load_scorer(folder: str, device: str, precision: str) -> AestheticScorer:
    """The scorer for ``folder`` on ``device``, loaded once per Python worker."""
    return AestheticScorer(folder, device, precision)
