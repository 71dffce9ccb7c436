"""Caption enhancement (Cosmos-Curate's ``--enhance-captions``): a language model rewrites each caption.

The rewrite is kept beside the raw caption (``captions.enhanced_caption``) and written to Cosmos
formats as ``{lm}_enhanced_caption`` (``qwen_lm_enhanced_caption`` for a Qwen model; see
:func:`curate_udfs.sharding.members.enhanced_caption_key`). Any
transformers causal LM with a chat template works; decoding is greedy.
"""

import functools
from typing import Sequence

from curate_udfs.errors import EnvironmentProblem
from curate_udfs.models import locate_weights

DEFAULT_ENHANCE_MODEL = "Qwen/Qwen2.5-14B-Instruct"
ENHANCE_OPTION = "--enhance-captions-model"
ENHANCE_HINT = "Or run without --enhance-captions."


def check_enhancement(model: str) -> str:
    """Driver-side check: ``model`` is a folder (or cached hub id) whose tokenizer has a chat template.

    Raises :class:`EnvironmentProblem` naming ``--enhance-captions-model``; returns the local folder.
    """
    model_dir = locate_weights(model, option=ENHANCE_OPTION, disable_hint=ENHANCE_HINT)
    try:
        from transformers import AutoConfig, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(model_dir)
        AutoConfig.from_pretrained(model_dir)
    except Exception as e:
        raise EnvironmentProblem(
            f"{ENHANCE_OPTION} {model}: {model_dir} does not hold a loadable language model "
            f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}). {ENHANCE_HINT}") from None
    if not getattr(tokenizer, "chat_template", None):
        raise EnvironmentProblem(f"{ENHANCE_OPTION} {model}: the tokenizer in {model_dir} has no chat template, so it "
                                 f"cannot be instructed; use an instruct/chat checkpoint. {ENHANCE_HINT}")
    return model_dir


class CaptionEnhancer:
    """A causal LM (``AutoModelForCausalLM``) that rewrites captions, several per ``generate`` call.

    Example::

        enhancer = CaptionEnhancer("/models/Qwen2.5-14B-Instruct", device="cuda")
        enhancer.enhance(["A man walks a dog."], instruction=ENHANCE_PROMPTS["default"], max_output_tokens=512)
    """

    def __init__(self, model_dir: str, device: str, dtype: str = "auto"):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from curate_udfs.captioning.transformers_backend import _eos_token_ids, _torch_dtype

        self.device = device
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        self.model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=_torch_dtype(dtype, device))
        self.model.to(device).eval()
        self.eos_token_ids = _eos_token_ids(self.model, self.tokenizer)
        self._torch = torch

    def enhance(self, captions: Sequence[str], instruction: str, max_output_tokens: int) -> list[str]:
        """Each caption rewritten, in order (greedy; the batch left-padded)."""
        from transformers import GenerationConfig

        from curate_udfs.captioning.generation import count_output_tokens

        prompts = [self.tokenizer.apply_chat_template(
            [{"role": "system", "content": instruction}, {"role": "user", "content": caption}],
            tokenize=False, add_generation_prompt=True) for caption in captions]
        inputs = self.tokenizer(prompts, padding=True, padding_side="left", return_tensors="pt",
                                add_special_tokens=False).to(self.device)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else min(self.eos_token_ids)
        settings = GenerationConfig(max_new_tokens=max_output_tokens, do_sample=False, num_beams=1,
                                    eos_token_id=sorted(self.eos_token_ids), pad_token_id=pad)
        with self._torch.inference_mode():
            generated = self.model.generate(**inputs, generation_config=settings)
        texts = []
        for tokens in generated[:, inputs["input_ids"].shape[1]:].tolist():
            count = count_output_tokens(tokens, self.eos_token_ids)
            texts.append(self.tokenizer.decode(tokens[:count], skip_special_tokens=True).strip())
        return texts


@functools.lru_cache(maxsize=1)
def load_enhancer(model: str, device: str, dtype: str) -> CaptionEnhancer:
    """The enhancer for these arguments, loaded once per Python worker."""
    return CaptionEnhancer(locate_weights(model, option=ENHANCE_OPTION, disable_hint=ENHANCE_HINT), device, dtype)
