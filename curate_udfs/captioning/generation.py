"""What both caption backends share: the prompt, the result type, and counting generated tokens."""

from dataclasses import dataclass
from typing import Protocol, Sequence

from curate_udfs.captioning.inputs import WindowFrames


@dataclass(frozen=True)
class Caption:
    text: str | None
    prompt_tokens: int | None  # the prompt as the model saw it, video tokens included (None: not reported)
    output_tokens: int | None  # generated tokens up to and including the end-of-sequence token
    error: str | None = None  # this window failed (an API backend's refusal or exhausted retries): no text


class Captioner(Protocol):
    def caption(self, windows: Sequence[WindowFrames], prompt_text: str, max_output_tokens: int) -> list[Caption]:
        """One greedy caption per window, in order, in as few model calls as the backend likes."""


def chat_prompt(processor, prompt_text: str) -> str:
    """The chat-templated prompt for one video and ``prompt_text``, ready for generation.

    The template puts a single video placeholder where the video goes; the processor (or vLLM)
    expands it into one token per merged video patch.
    """
    messages = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": prompt_text}]}]
    return processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def count_output_tokens(token_ids: Sequence[int], eos_token_ids: set[int]) -> int:
    """Tokens up to and including the first end-of-sequence token (all of them if there is none).

    Rows of a batch that finished early are padded after their EOS; the padding is not output.
    """
    for position, token in enumerate(token_ids):
        if token in eos_token_ids:
            return position + 1
    return len(token_ids)
