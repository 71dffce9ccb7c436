"""Captions with vLLM on a CUDA GPU: continuous batching and paged attention for throughput.

vLLM is imported only here and only when this backend is chosen, so the rest of cliplake
runs without it. The prompt is the checkpoint's own chat template (the same text the
transformers backend uses); vLLM expands the video placeholder itself.
"""

import functools
import os
from typing import Sequence

from curate_udfs.captioning.generation import Caption, chat_prompt
from curate_udfs.captioning.inputs import WindowFrames


def vllm_available() -> bool:
    """Whether vLLM can be imported here (it is installed only on GPU machines)."""
    import importlib.util

    return importlib.util.find_spec("vllm") is not None


class VllmCaptioner:
    """A vision-language checkpoint served by ``vllm.LLM``, greedy, one video per prompt.

    Example::

        captioner = VllmCaptioner("/models/Qwen2.5-VL-7B-Instruct", max_num_seqs=8)
        captions = captioner.caption(windows, "Describe the video.", max_output_tokens=512)
    """

    def __init__(self, model_dir: str, *, max_num_seqs: int, use_fp8_weights: bool = False,
                 gpu_memory_utilization: float = 0.85, dtype: str = "auto"):
        from transformers import AutoProcessor
        from vllm import LLM

        self.processor = AutoProcessor.from_pretrained(model_dir)
        self.llm = LLM(
            model=model_dir,
            limit_mm_per_prompt={"image": 0, "video": 1},
            max_num_seqs=max_num_seqs,
            quantization="fp8" if use_fp8_weights else None,
            gpu_memory_utilization=gpu_memory_utilization,
            dtype=dtype,
            seed=0,
        )

    def _video(self, window: WindowFrames) -> dict:
        """The window's frames as vLLM takes them. Qwen3-VL's processor needs each frame's index and the rate
        (for its timestamps) as metadata beside the frames, and must not sample them again; Qwen2/2.5-VL take the rate.
        (The Qwen3-VL form follows vLLM's documented video-with-metadata input; it is not exercised on CPU tests.)"""
        if type(self.processor).__name__.startswith("Qwen3VL"):
            n = window.num_frames
            metadata = {"fps": window.sampled_fps, "frames_indices": list(range(n)), "total_num_frames": n,
                        "duration": n / window.sampled_fps, "video_backend": "cliplake"}
            return {"multi_modal_data": {"video": (window.rgb(), metadata)},
                    "mm_processor_kwargs": {"do_sample_frames": False}}
        return {"multi_modal_data": {"video": window.rgb()}, "mm_processor_kwargs": {"fps": window.sampled_fps}}

    def caption(self, windows: Sequence[WindowFrames], prompt_text: str, max_output_tokens: int) -> list[Caption]:
        from vllm import SamplingParams

        prompt = chat_prompt(self.processor, prompt_text)
        requests = [{"prompt": prompt, **self._video(w)} for w in windows]
        # temperature 0 is greedy; no penalties, so both backends decode the same way
        settings = SamplingParams(temperature=0.0, max_tokens=max_output_tokens, repetition_penalty=1.0)
        outputs = self.llm.generate(requests, settings, use_tqdm=False)
        captions = []
        for output in outputs:
            completion = output.outputs[0]
            # vLLM stops each sequence on its own, so its tokens end with the EOS and hold no padding
            captions.append(Caption(completion.text.strip(), len(output.prompt_token_ids), len(completion.token_ids)))
        return captions


@functools.lru_cache(maxsize=1)
def load_vllm_captioner(model_dir: str, gpu_address: str | None, max_num_seqs: int, use_fp8_weights: bool,
                        gpu_memory_utilization: float, dtype: str) -> VllmCaptioner:
    """The vLLM captioner for these arguments, loaded once per Python worker on the GPU Spark assigned."""
    if gpu_address is not None and "CUDA_VISIBLE_DEVICES" not in os.environ:
        # vLLM places the model on the first visible GPU; make that the one this task was given
        os.environ["CUDA_VISIBLE_DEVICES"] = gpu_address
    return VllmCaptioner(model_dir, max_num_seqs=max_num_seqs, use_fp8_weights=use_fp8_weights,
                         gpu_memory_utilization=gpu_memory_utilization, dtype=dtype)
