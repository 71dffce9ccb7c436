"""The tiny checkpoints load through the same classes as the real Qwen2.5-VL and T5 ones, offline and fast."""

import os
import time

import numpy as np
import pytest
import torch

from curate_udfs.testing.tiny_models import QWEN_VL_CHAT_TEMPLATE, write_tiny_t5, write_tiny_vlm


def folder_bytes(folder: str) -> int:
    return sum(os.path.getsize(os.path.join(folder, name)) for name in os.listdir(folder))


@pytest.fixture(scope="module")
def vlm(tmp_path_factory):
    started = time.perf_counter()
    path = write_tiny_vlm(str(tmp_path_factory.mktemp("tiny") / "vlm"))
    return path, time.perf_counter() - started


@pytest.fixture(scope="module")
def t5(tmp_path_factory):
    return write_tiny_t5(str(tmp_path_factory.mktemp("tiny") / "t5"))


def test_tiny_vlm_loads_as_qwen2_5_vl_with_its_special_tokens(vlm):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    path, seconds = vlm
    assert seconds < 20 and folder_bytes(path) < 5_000_000
    processor = AutoProcessor.from_pretrained(path)
    model = AutoModelForImageTextToText.from_pretrained(path)
    assert type(processor).__name__ == "Qwen2_5_VLProcessor"
    assert type(processor.video_processor).__name__ == "Qwen2VLVideoProcessor"
    assert type(processor.tokenizer).__name__ == "Qwen2Tokenizer"
    assert type(model).__name__ == "Qwen2_5_VLForConditionalGeneration"
    tokenizer = processor.tokenizer
    for token, config_id in [("<|video_pad|>", model.config.video_token_id), ("<|image_pad|>", model.config.image_token_id),
                             ("<|vision_start|>", model.config.vision_start_token_id)]:
        assert tokenizer.convert_tokens_to_ids(token) == config_id
        assert tokenizer.tokenize(f"a {token} b").count(token) == 1  # one token, never split
    assert tokenizer.eos_token == "<|im_end|>" and tokenizer.pad_token == "<|endoftext|>"
    assert processor.chat_template == QWEN_VL_CHAT_TEMPLATE


def test_tiny_vlm_expands_video_tokens_and_generates(vlm):
    from transformers import AutoModelForImageTextToText, AutoProcessor
    from transformers.video_utils import VideoMetadata

    path, _ = vlm
    processor = AutoProcessor.from_pretrained(path)
    model = AutoModelForImageTextToText.from_pretrained(path).eval()
    messages = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "Describe this video."}]}]
    prompt = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert prompt.startswith("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n")
    assert "<|vision_start|><|video_pad|><|vision_end|>Describe this video.<|im_end|>\n<|im_start|>assistant\n" in prompt
    frames = np.random.default_rng(0).integers(0, 256, size=(4, 56, 112, 3), dtype=np.uint8)
    inputs = processor(text=[prompt], videos=[frames], video_metadata=[VideoMetadata(total_num_frames=4, fps=2.0)],
                       do_sample_frames=False, cap_pixels_per_frame=False, return_tensors="pt")
    # 4 frames of 56x112: 2 temporal x (4 x 8 patches) / 2x2 merge = 16 video tokens
    assert inputs["video_grid_thw"].tolist() == [[2, 4, 8]]
    assert (inputs["input_ids"][0] == processor.video_token_id).sum().item() == 16
    out = model.generate(**inputs, max_new_tokens=5, do_sample=False)
    assert out.shape[1] > inputs["input_ids"].shape[1]


def test_tiny_t5_loads_and_encodes(t5):
    from transformers import AutoTokenizer, T5EncoderModel

    assert folder_bytes(t5) < 4_000_000
    tokenizer = AutoTokenizer.from_pretrained(t5)
    encoder = T5EncoderModel.from_pretrained(t5).eval()
    assert encoder.config.d_model == 1024  # T5-XXL's width: what training loaders pad embeddings to
    assert type(tokenizer).__name__ == "T5Tokenizer"
    batch = tokenizer(["A person rides a bicycle along a road.", "sky"], padding=True, return_tensors="pt")
    ids = batch["input_ids"]
    assert ids[0, -1].item() == tokenizer.eos_token_id == 1 and ids[1, 0].item() != tokenizer.unk_token_id
    assert (ids[1] == tokenizer.pad_token_id).sum() > 0
    with torch.no_grad():
        hidden = encoder(**batch).last_hidden_state
        alone = encoder(**tokenizer(["sky"], return_tensors="pt")).last_hidden_state
    assert hidden.shape == (2, ids.shape[1], encoder.config.d_model)
    assert torch.isfinite(hidden).all()
    # padding is masked out: the short caption encodes the same alone as in the padded batch
    length = alone.shape[1]
    assert torch.allclose(hidden[1, :length], alone[0], atol=1e-5)
