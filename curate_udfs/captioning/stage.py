"""The captioning stage: prepared windows in, one caption row per window out (the GPU half).

``check_captioning`` runs on the driver; ``caption_batches`` is the mapInPandas body. The
model loads once per Python worker and captions ``batch_size`` windows per call.
"""

from typing import Iterator

import pandas as pd

from curate_udfs.captioning.config import CaptioningConfig
from curate_udfs.captioning.enhance import check_enhancement, load_enhancer
from curate_udfs.captioning.generation import Captioner
from curate_udfs.captioning.inputs import unpack_window_frames
from curate_udfs.captioning.openai_backend import load_openai_captioner
from curate_udfs.captioning.prepare import PREPARE_OUTPUT_COLUMNS
from curate_udfs.captioning.transformers_backend import load_transformers_captioner, vision_factor
from curate_udfs.captioning.vllm_backend import load_vllm_captioner, vllm_available
from curate_udfs.errors import EnvironmentProblem
from curate_udfs.models import locate_weights, resolve_device
from curate_udfs.stage import map_record_batches

MODEL_OPTION = "--captioning-model"
DISABLE_HINT = "Or turn captions off with --no-generate-captions."

# Declared inputs and outputs; jobs/ turns these into Spark schemas.
INPUT_COLUMNS = tuple(c for c in PREPARE_OUTPUT_COLUMNS if c != "processing_s")
OUTPUT_COLUMNS = {
    "clip_id": str, "window_index": int, "start_frame": int, "end_frame": int, "caption": str, "model": str,
    "prompt": str, "prompt_tokens": int, "output_tokens": int, "annotation_version": str,
    "enhanced_caption": str, "enhance_model": str, "error": str, "processing_s": float,
}


def choose_backend(config: CaptioningConfig, device: str) -> str:
    """``vllm``, ``transformers`` or ``openai``: auto picks vLLM when it is installed and the device is a GPU."""
    if config.backend == "openai":
        return "openai"
    if config.backend == "vllm":
        if not vllm_available():
            raise EnvironmentProblem("--captioning-backend vllm: vLLM is not installed (pip install vllm on the GPU "
                                     "machines), or use --captioning-backend transformers.")
        if not device.startswith("cuda"):
            raise EnvironmentProblem("--captioning-backend vllm needs a CUDA GPU and none is visible to this task; "
                                     "use --captioning-backend transformers to caption on the CPU.")
        return "vllm"
    if config.backend == "auto" and device.startswith("cuda") and vllm_available():
        return "vllm"
    return "transformers"


def model_resize_factor(model_dir: str) -> int:
    """What frame sides must be multiples of for the checkpoint in ``model_dir`` (28 for Qwen2.5-VL, 32 for Qwen3-VL)."""
    from transformers import AutoProcessor

    return vision_factor(AutoProcessor.from_pretrained(model_dir))


def check_captioning(config: CaptioningConfig) -> str | None:
    """Validate captioning where the job starts; the local folder of the model's weights.

    Raises :class:`EnvironmentProblem` naming ``--captioning-model`` when the weights are not
    there or the folder holds no loadable processor (tokenizer, chat template, video processor),
    so a wrong path fails before any task runs instead of in every task. With the openai backend
    there are no weights here: the endpoint's settings were checked by the config; returns None.
    """
    if config.backend == "openai":
        if config.enhance_model:
            check_enhancement(config.enhance_model)
        return None
    model_dir = locate_weights(config.model, option=MODEL_OPTION, disable_hint=DISABLE_HINT)
    try:
        from transformers import AutoProcessor

        processor = AutoProcessor.from_pretrained(model_dir)
    except Exception as e:
        raise EnvironmentProblem(
            f"{MODEL_OPTION} {config.model}: {model_dir} does not hold a loadable vision-language processor "
            f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}). Point it at a Qwen2-VL, Qwen2.5-VL "
            f"or Qwen3-VL checkpoint folder. {DISABLE_HINT}"
        ) from None
    if getattr(processor, "video_processor", None) is None or not getattr(processor, "chat_template", None):
        raise EnvironmentProblem(
            f"{MODEL_OPTION} {config.model}: the processor in {model_dir} has no video processor or no chat "
            f"template, so it cannot caption videos. {DISABLE_HINT}"
        )
    if config.backend == "vllm" and not vllm_available():
        raise EnvironmentProblem("--captioning-backend vllm: vLLM is not installed here; install it or use "
                                 "--captioning-backend transformers.")
    if config.enhance_model:
        check_enhancement(config.enhance_model)
    return model_dir


def load_captioner(config: CaptioningConfig, gpu_addresses: list[str] | None = None) -> Captioner:
    """The captioner this worker uses for ``config`` (loaded on first use, then cached)."""
    if config.backend == "openai":
        return load_openai_captioner(config.api)
    model_dir = locate_weights(config.model, option=MODEL_OPTION, disable_hint=DISABLE_HINT)
    device = resolve_device(config.device, gpu_addresses)
    if choose_backend(config, device) == "vllm":
        address = gpu_addresses[0] if gpu_addresses else None
        return load_vllm_captioner(model_dir, address, config.batch_size, config.use_fp8_weights,
                                   config.gpu_memory_utilization, config.dtype)
    return load_transformers_captioner(model_dir, device, config.dtype)


def _enhance(rows: list[dict], config: CaptioningConfig, gpu_addresses: list[str] | None) -> None:
    """Fill ``enhanced_caption`` and ``enhance_model`` of the captioned ``rows`` (in place)."""
    device = resolve_device(config.device, gpu_addresses)
    enhancer = load_enhancer(config.enhance_model, device, config.dtype)
    texts = enhancer.enhance([row["caption"] for row in rows], config.enhance_prompt, config.enhance_max_output_tokens)
    for row, text in zip(rows, texts):
        row.update(enhanced_caption=text, enhance_model=config.enhance_model)


def caption_batches(
    batches: Iterator[pd.DataFrame], config: CaptioningConfig, gpu_addresses: list[str] | None = None
) -> Iterator[pd.DataFrame]:
    """mapInPandas body: prepared windows (:data:`INPUT_COLUMNS`) in, caption rows (:data:`OUTPUT_COLUMNS`) out.

    Example::

        prepared = clips.mapInPandas(lambda b: prepare_caption_batches(b, config), prepare_schema)
        captions = prepared.mapInPandas(lambda b: caption_batches(b, config, gpus()), captions_schema)

    Rows that arrive with ``error`` set pass through as error rows without touching the model.
    ``config.batch_size`` windows share one model call; a failing call is retried one window at a
    time, so one bad window costs only its own row. ``processing_s`` is the call's time divided
    by its windows. With ``config.enhance_model`` set, each caption is also rewritten by that
    language model into ``enhanced_caption`` (``enhance_model`` names it); a failing rewrite fails the window.
    """
    common = {"model": config.model_name, "prompt": config.prompt, "annotation_version": config.annotation_version}
    captioner: list[Captioner] = []  # loaded at the first window that needs it

    def keys(record: dict) -> dict:
        return {c: record.get(c) for c in ("clip_id", "window_index", "start_frame", "end_frame")}

    def error_row(record: dict, message: str) -> dict:
        return {**keys(record), **common, "error": message}

    def process_many(records: list[dict]) -> list[dict]:
        rows: list[dict | None] = [None] * len(records)
        todo = []
        for i, record in enumerate(records):
            if isinstance(record.get("error"), str) and record["error"]:
                rows[i] = {**error_row(record, record["error"]), "processing_s": 0.0}
            else:
                todo.append(i)
        if todo:
            if not captioner:
                captioner.append(load_captioner(config, gpu_addresses))
            windows = [unpack_window_frames(records[i]["model_inputs"]) for i in todo]
            for i, caption in zip(todo, captioner[0].caption(windows, config.prompt, config.max_output_tokens)):
                if caption.error:  # (an API backend's window that failed: data, not an exception)
                    rows[i] = error_row(records[i], caption.error)
                    continue
                rows[i] = {**keys(records[i]), **common, "caption": caption.text, "prompt_tokens": caption.prompt_tokens,
                           "output_tokens": caption.output_tokens, "error": None}
            captioned = [rows[i] for i in todo if rows[i]["error"] is None]
            if config.enhance_model and captioned:
                _enhance(captioned, config, gpu_addresses)
        return rows

    # An API backend sends a group's windows in parallel: groups as large as its concurrency keep it busy.
    group = max(config.batch_size, config.api.concurrency) if config.api is not None else config.batch_size
    return map_record_batches(batches, process_many, error_row, list(OUTPUT_COLUMNS), group)
