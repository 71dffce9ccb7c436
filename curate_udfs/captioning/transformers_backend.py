"""Captions with Hugging Face transformers: any device, several windows per ``generate`` call."""

import functools
from typing import Sequence

from curate_udfs.captioning.generation import Caption, chat_prompt, count_output_tokens
from curate_udfs.captioning.inputs import WindowFrames


def _torch_dtype(dtype: str, device: str):
    import torch

    if dtype == "auto":
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    return getattr(torch, dtype)


def _eos_token_ids(model, tokenizer) -> set[int]:
    configured = model.generation_config.eos_token_id
    ids = set(configured if isinstance(configured, (list, tuple)) else [configured] if configured is not None else [])
    if tokenizer.eos_token_id is not None:
        ids.add(tokenizer.eos_token_id)
    return ids


def video_metadata(num_frames: int, sampled_fps: float):
    """What the processor needs to know of frames it gets already sampled: how many, at what rate, which.

    Qwen3-VL writes a ``<t seconds>`` timestamp before each pair of frames, computed from the frames'
    indices and the rate; the indices here count the sampled frames, so times run from the window's start.
    Qwen2/2.5-VL read only the rate (for their temporal position ids).
    """
    from transformers.video_utils import VideoMetadata

    return VideoMetadata(total_num_frames=num_frames, fps=sampled_fps, frames_indices=list(range(num_frames)))


def vision_factor(processor) -> int:
    """The side, in pixels, frame sizes must be multiples of: patch size times merge size (Qwen2.5-VL 28, Qwen3-VL 32)."""
    video = processor.video_processor
    return int(getattr(video, "patch_size", 14) or 14) * int(getattr(video, "merge_size", 2) or 2)


class TransformersCaptioner:
    """A vision-language checkpoint loaded with ``AutoProcessor`` + ``AutoModelForImageTextToText``.

    Qwen2-VL, Qwen2.5-VL and Qwen3-VL checkpoints caption the same way: the processor's chat
    template places the video, the processor expands it into video tokens (with Qwen3-VL's timestamps).

    Example::

        captioner = TransformersCaptioner("/models/Qwen2.5-VL-7B-Instruct", device="cuda", dtype="auto")
        captions = captioner.caption(windows, "Describe the video.", max_output_tokens=512)

    Decoding is greedy; a batch is left-padded so every row generates from its own last token.
    """

    def __init__(self, model_dir: str, device: str, dtype: str = "auto"):
        import torch
        from transformers import AutoModelForImageTextToText, AutoProcessor

        self.device = device
        self.processor = AutoProcessor.from_pretrained(model_dir)
        self.model = AutoModelForImageTextToText.from_pretrained(model_dir, dtype=_torch_dtype(dtype, device))
        self.model.to(device).eval()
        self.eos_token_ids = _eos_token_ids(self.model, self.processor.tokenizer)
        self._torch = torch

    def caption(self, windows: Sequence[WindowFrames], prompt_text: str, max_output_tokens: int) -> list[Caption]:
        return self.caption_frames([w.rgb() for w in windows], [w.sampled_fps for w in windows], prompt_text,
                                   max_output_tokens)

    def caption_frames(self, videos: Sequence, fps: Sequence[float], prompt_text: str, max_output_tokens: int) -> list[Caption]:
        """One greedy caption per video, each given as (N, H, W, 3) uint8 RGB frames sampled at ``fps``."""
        from transformers import GenerationConfig

        prompt = chat_prompt(self.processor, prompt_text)
        inputs = self.processor(
            text=[prompt] * len(videos),
            videos=list(videos),
            # frames are already sampled and sized; the metadata carries the rate they were sampled at
            video_metadata=[video_metadata(len(v), f) for v, f in zip(videos, fps)],
            do_sample_frames=False,
            cap_pixels_per_frame=False,
            padding=True,
            padding_side="left",
            return_tensors="pt",
        ).to(self.device)
        settings = GenerationConfig(
            max_new_tokens=max_output_tokens, do_sample=False, num_beams=1,
            eos_token_id=sorted(self.eos_token_ids), pad_token_id=self.processor.tokenizer.pad_token_id,
        )
        with self._torch.inference_mode():
            generated = self.model.generate(**inputs, generation_config=settings)
        new_tokens = generated[:, inputs["input_ids"].shape[1]:].tolist()
        prompt_lengths = inputs["attention_mask"].sum(dim=1).tolist()
        captions = []
        for tokens, prompt_tokens in zip(new_tokens, prompt_lengths):
            count = count_output_tokens(tokens, self.eos_token_ids)
            text = self.processor.tokenizer.decode(tokens[:count], skip_special_tokens=True)
            captions.append(Caption(text=text.strip(), prompt_tokens=int(prompt_tokens), output_tokens=count))
        return captions


@functools.lru_cache(maxsize=2)
def load_transformers_captioner(model_dir: str, device: str, dtype: str) -> TransformersCaptioner:
    """The captioner for these arguments, loaded once per Python worker."""
    return TransformersCaptioner(model_dir, device, dtype)
