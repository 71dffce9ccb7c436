"""Options of the captioning stage, named after Cosmos-Curate's ``--captioning-*`` flags."""

from dataclasses import dataclass
from typing import Literal

from curate_udfs.captioning.openai_backend import ApiSettings
from curate_udfs.captioning.prompts import DEFAULT_PROMPT, ENHANCE_PROMPTS, caption_prompt  # noqa: F401 (DEFAULT_PROMPT re-exported)

DEFAULT_MODEL = "Qwen/Qwen2.5-VL-7B-Instruct"
PromptVariant = Literal["default", "av", "av-surveillance"]


@dataclass(frozen=True)
class CaptioningConfig:
    """Everything caption preparation and generation need; checked where the job starts.

    Example::

        config = CaptioningConfig(model="/models/Qwen2.5-VL-7B-Instruct", previews_dir="lake/media/previews")

    ``min_pixels_per_frame`` / ``max_pixels_per_frame`` bound each sampled frame's area after
    resizing to multiples of ``resize_factor`` (Qwen2.5-VL: 14 px patches merged 2x2 = 28), as
    qwen-vl-utils does for videos: every 2 frames of W x H cost W * H / 784 prompt tokens.

    ``prompt`` is the instruction the model gets: ``prompt_text`` when given, else ``prompt_variant``'s.
    """

    model: str = DEFAULT_MODEL  # --captioning-model: local folder or hub id
    window_size: int = 256  # --captioning-window-size, frames
    sampling_fps: float = 2.0  # --captioning-sampling-fps
    prompt_text: str | None = None  # --captioning-prompt-text (None: the variant's prompt)
    prompt_variant: PromptVariant = "default"  # --captioning-prompt-variant
    max_output_tokens: int = 512  # --captioning-max-output-tokens
    batch_size: int = 8  # --captioning-batch-size: windows per model call
    annotation_version: str = "v0"  # --annotation-version
    backend: Literal["auto", "vllm", "transformers", "openai"] = "auto"  # --captioning-backend
    api: ApiSettings | None = None  # --captioning-backend openai: the endpoint (--captioning-api-*)
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = "auto"  # auto: bfloat16 on GPU, float32 on CPU
    use_fp8_weights: bool = False  # --qwen-use-fp8-weights (vLLM only)
    gpu_memory_utilization: float = 0.85  # share of the GPU vLLM may take
    min_pixels_per_frame: int = 128 * 28 * 28
    max_pixels_per_frame: int = 768 * 28 * 28
    resize_factor: int = 28
    previews_dir: str | None = None  # --generate-previews: where {clip_id}/{start}_{end}.webp go
    preview_fps: float = 1.0
    preview_height: int = 240
    decode_threads: int = 1
    enhance_model: str | None = None  # --enhance-captions-model when --enhance-captions is on: a causal LM rewrites captions
    enhance_max_output_tokens: int = 512  # --enhance-captions-max-output-tokens

    def __post_init__(self):
        prompt = caption_prompt(self.prompt_variant, self.prompt_text)  # (an unknown variant raises here)
        if not prompt.strip():
            raise ValueError("captioning prompt text must not be empty")
        if self.enhance_model is not None and not self.enhance_model:
            raise ValueError("--enhance-captions-model must be a local folder or a hub id, got an empty string")
        if not self.model:
            raise ValueError("captioning model must be a local folder or a hub id, got an empty string")
        if self.window_size < 2:
            raise ValueError(f"captioning window size must be >= 2 frames, got {self.window_size}")
        for name in ("sampling_fps", "preview_fps"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        for name in ("max_output_tokens", "batch_size", "decode_threads", "resize_factor", "preview_height",
                     "enhance_max_output_tokens"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.backend not in ("auto", "vllm", "transformers", "openai"):
            raise ValueError(f"captioning backend must be auto, vllm, transformers or openai, got {self.backend!r}")
        if (self.backend == "openai") != (self.api is not None):
            raise ValueError("--captioning-backend openai goes with an API endpoint (--captioning-api-base-url and "
                             "--captioning-api-model), and only with it")
        if self.api is not None:
            if not self.api.base_url.startswith(("http://", "https://")):
                raise ValueError(f"--captioning-api-base-url must be an http:// or https:// URL such as "
                                 f"http://host:8000/v1, got {self.api.base_url!r}")
            if not self.api.model:
                raise ValueError("--captioning-api-model must name the model the endpoint serves")
            if self.api.concurrency < 1 or self.api.max_retries < 0 or not self.api.timeout_s > 0 or self.api.backoff_s < 0:
                raise ValueError("caption API: concurrency >= 1, max retries >= 0, timeout > 0 and backoff >= 0 are needed")
        if self.dtype not in ("auto", "bfloat16", "float16", "float32"):
            raise ValueError(f"captioning dtype must be auto, bfloat16, float16 or float32, got {self.dtype!r}")
        if not self.device == "auto" and not self.device.split(":")[0] in ("cpu", "cuda"):
            raise ValueError(f"device must be auto, cpu, cuda or cuda:N, got {self.device!r}")
        if not 0 < self.min_pixels_per_frame <= self.max_pixels_per_frame:
            raise ValueError(
                f"need 0 < min_pixels_per_frame <= max_pixels_per_frame, got {self.min_pixels_per_frame}, "
                f"{self.max_pixels_per_frame}"
            )
        if self.max_pixels_per_frame < self.resize_factor**2:
            raise ValueError(f"max_pixels_per_frame must hold one {self.resize_factor}x{self.resize_factor} block")
        if not 0 < self.gpu_memory_utilization <= 1:
            raise ValueError(f"gpu_memory_utilization must be in (0, 1], got {self.gpu_memory_utilization}")

    @property
    def model_name(self) -> str:
        """What the captions table's ``model`` column holds: the checkpoint, or the API's model name."""
        return self.api.model if self.api is not None else self.model

    @property
    def enhance_prompt(self) -> str:
        """The enhancement model's instruction: the one for the captioning prompt variant."""
        return ENHANCE_PROMPTS[self.prompt_variant]

    @property
    def prompt(self) -> str:
        """The instruction given with each window (what the captions table's ``prompt`` column holds)."""
        return caption_prompt(self.prompt_variant, self.prompt_text)
