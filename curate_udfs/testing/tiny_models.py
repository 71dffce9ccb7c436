"""Tiny randomly initialised checkpoints with the real architectures, for tests and cluster smoke tests.

    python -m curate_udfs.testing.tiny_models DIR

writes DIR/vlm (Qwen2.5-VL-style captioner), DIR/vlm-qwen3 (Qwen3-VL-style captioner), DIR/lm (Qwen3-style
causal LM for caption enhancement, sharing the VLMs' tokenizer), DIR/aesthetic (CLIP vision tower + LAION-style MLP),
DIR/embed (CLIP-family embedder) and DIR/t5 (T5 encoder). Each loads through the same code
paths as the real checkpoints (``--captioning-model DIR/vlm`` and so on); nothing is downloaded.
Their outputs are meaningless, their shapes and plumbing are real.
"""

import os
import sys


# Text the tiny tokenizers learn their merges and pieces from: the default caption prompt and a
# few plain sentences, so prompts tokenize into a realistic number of sub-words.
_TINY_CORPUS = (
    "Elaborate on the visual and narrative elements of the video in detail.",
    "A person rides a bicycle along a road while cars pass by in the background.",
    "The camera pans slowly across a green field under a bright blue sky.",
    "Describe this image. Describe this video. What happens next?",
    "You are a helpful assistant. The quick brown fox jumps over the lazy dog.",
)

# Qwen2-VL / Qwen2.5-VL special tokens, in the order of the real vocabulary.
_QWEN_SPECIAL_TOKENS = (
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
    "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>",
    "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>",
)

# The chat template shipped with Qwen2-VL / Qwen2.5-VL Instruct checkpoints.
QWEN_VL_CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}"
    "{{ message['content'] }}<|im_end|>\n{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}{% if add_vision_id %}"
    "Picture {{ image_count.value }}: {% endif %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}"
    "{% set video_count.value = video_count.value + 1 %}{% if add_vision_id %}"
    "Video {{ video_count.value }}: {% endif %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


# Qwen3-VL's template has the same vision markers but no default system turn.
QWEN3_VL_CHAT_TEMPLATE = QWEN_VL_CHAT_TEMPLATE.replace(
    "{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}", ""
)


def _tiny_qwen_tokenizer(vocab_size: int = 512):
    """A Qwen2 byte-level BPE tokenizer trained here on ``_TINY_CORPUS``, with Qwen's special tokens."""
    import json

    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import Qwen2Tokenizer

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    bpe.train_from_iterator(_TINY_CORPUS, trainer=trainer)
    learned = json.loads(bpe.to_str())["model"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in learned["merges"]]
    tokenizer = Qwen2Tokenizer(
        vocab=learned["vocab"], merges=merges, eos_token="<|im_end|>", pad_token="<|endoftext|>",
        unk_token=None, model_max_length=32768,
    )
    tokenizer.add_special_tokens({"additional_special_tokens": list(_QWEN_SPECIAL_TOKENS)})
    return tokenizer


def _greedy_generation(tokenizer):
    """Greedy decoding that stops at Qwen's end-of-turn or end-of-text, as the tiny checkpoints' tokenizer names them."""
    from transformers import GenerationConfig

    token_id = tokenizer.convert_tokens_to_ids
    return GenerationConfig(
        bos_token_id=token_id("<|endoftext|>"), pad_token_id=token_id("<|endoftext|>"),
        eos_token_id=[token_id("<|im_end|>"), token_id("<|endoftext|>")], do_sample=False,
    )


def write_tiny_vlm(folder: str) -> str:
    """Write a tiny random Qwen2.5-VL checkpoint (model, tokenizer, processor) to ``folder``.

    Example::

        path = write_tiny_vlm("/tmp/tiny/vlm")
        processor = AutoProcessor.from_pretrained(path)
        model = AutoModelForImageTextToText.from_pretrained(path)

    The architecture, processor classes, special tokens and chat template are Qwen2.5-VL's;
    sizes are tiny (hidden 64, 2 text layers, 1 vision block), so it loads and generates in
    well under a second on a CPU. Its captions are gibberish of the right shape.
    """
    import torch
    from transformers import (
        Qwen2_5_VLConfig,
        Qwen2_5_VLForConditionalGeneration,
        Qwen2_5_VLProcessor,
        Qwen2VLImageProcessor,
        Qwen2VLVideoProcessor,
    )

    tokenizer = _tiny_qwen_tokenizer()
    token_id = tokenizer.convert_tokens_to_ids
    text_config = {
        "vocab_size": len(tokenizer), "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
        "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 4096,
        # mrope halves the 16-wide head over (time, height, width): sections sum to 16 / 2
        "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [2, 3, 3]},
        "bos_token_id": token_id("<|endoftext|>"), "eos_token_id": token_id("<|im_end|>"),
        "pad_token_id": token_id("<|endoftext|>"),
    }
    vision_config = {
        "depth": 2, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2, "out_hidden_size": 64,
        "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2, "window_size": 112,
        "fullatt_block_indexes": [1], "tokens_per_second": 2,
    }
    config = Qwen2_5_VLConfig(
        text_config=text_config, vision_config=vision_config,
        image_token_id=token_id("<|image_pad|>"), video_token_id=token_id("<|video_pad|>"),
        vision_start_token_id=token_id("<|vision_start|>"), vision_end_token_id=token_id("<|vision_end|>"),
    )
    torch.manual_seed(0)
    model = Qwen2_5_VLForConditionalGeneration(config).eval()
    model.generation_config = _greedy_generation(tokenizer)
    # The real checkpoint's pixel bounds: model-side resizing happens in caption preparation.
    pixels = {"min_pixels": 56 * 56, "max_pixels": 28 * 28 * 1280}
    processor = Qwen2_5_VLProcessor(
        image_processor=Qwen2VLImageProcessor(**pixels),
        video_processor=Qwen2VLVideoProcessor(**pixels),
        tokenizer=tokenizer,
        chat_template=QWEN_VL_CHAT_TEMPLATE,
    )
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def write_tiny_qwen3_vlm(folder: str) -> str:
    """Write a tiny random Qwen3-VL checkpoint (model, tokenizer, processor) to ``folder``.

    Example::

        path = write_tiny_qwen3_vlm("/tmp/tiny/vlm-qwen3")
        model = AutoModelForImageTextToText.from_pretrained(path)  # Qwen3VLForConditionalGeneration

    What differs from Qwen2.5-VL and matters to captioning: 16 px patches (frames are sized in
    multiples of 32, not 28), a timestamp ``<t seconds>`` before each pair of frames in the prompt
    (the processor needs each frame's index and the sampling rate), DeepStack vision features, and a
    chat template without a default system turn. Same tokenizer as :func:`write_tiny_vlm`.
    """
    import torch
    from transformers import (
        Qwen2VLImageProcessor,
        Qwen3VLConfig,
        Qwen3VLForConditionalGeneration,
        Qwen3VLProcessor,
        Qwen3VLVideoProcessor,
    )

    tokenizer = _tiny_qwen_tokenizer()
    token_id = tokenizer.convert_tokens_to_ids
    text_config = {
        "vocab_size": len(tokenizer), "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
        "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16, "max_position_embeddings": 4096,
        "rope_parameters": {"rope_type": "default", "rope_theta": 5000000.0, "mrope_section": [2, 3, 3],
                            "mrope_interleaved": True},
        "bos_token_id": token_id("<|endoftext|>"), "eos_token_id": token_id("<|im_end|>"),
        "pad_token_id": token_id("<|endoftext|>"),
    }
    vision_config = {
        "depth": 2, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2, "out_hidden_size": 64,
        "patch_size": 16, "spatial_merge_size": 2, "temporal_patch_size": 2, "num_position_embeddings": 64,
        "deepstack_visual_indexes": [0],
    }
    config = Qwen3VLConfig(
        text_config=text_config, vision_config=vision_config,
        image_token_id=token_id("<|image_pad|>"), video_token_id=token_id("<|video_pad|>"),
        vision_start_token_id=token_id("<|vision_start|>"), vision_end_token_id=token_id("<|vision_end|>"),
    )
    torch.manual_seed(0)
    model = Qwen3VLForConditionalGeneration(config).eval()
    model.generation_config = _greedy_generation(tokenizer)
    size = {"shortest_edge": 64 * 64, "longest_edge": 32 * 32 * 1280}
    processor = Qwen3VLProcessor(
        image_processor=Qwen2VLImageProcessor(patch_size=16, size=size),
        video_processor=Qwen3VLVideoProcessor(size=size),
        tokenizer=tokenizer,
        chat_template=QWEN3_VL_CHAT_TEMPLATE,
    )
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def write_tiny_lm(folder: str) -> str:
    """Write a tiny random Qwen3 causal LM and its tokenizer (with a chat template) to ``folder``.

    Example::

        path = write_tiny_lm("/tmp/tiny/lm")
        model = AutoModelForCausalLM.from_pretrained(path)  # Qwen3ForCausalLM

    For ``--enhance-captions-model``: the same tokenizer as the tiny VLMs, Qwen's chat template
    (system and user turns as plain text), hidden 64 and 2 layers. Its rewrites are gibberish.
    """
    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM

    tokenizer = _tiny_qwen_tokenizer()
    tokenizer.chat_template = QWEN3_VL_CHAT_TEMPLATE
    token_id = tokenizer.convert_tokens_to_ids
    config = Qwen3Config(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, head_dim=16, max_position_embeddings=4096, tie_word_embeddings=False,
        bos_token_id=token_id("<|endoftext|>"), eos_token_id=token_id("<|im_end|>"), pad_token_id=token_id("<|endoftext|>"),
    )
    torch.manual_seed(0)
    model = Qwen3ForCausalLM(config).eval()
    model.generation_config = _greedy_generation(tokenizer)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def _tiny_t5_pieces() -> list[tuple[str, float]]:
    """SentencePiece-style unigram pieces: T5's three specials, single characters, and corpus words."""
    import string

    words = sorted({w.strip(".,?") for line in _TINY_CORPUS for w in line.lower().split()} - {""})
    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -3.0)]
    pieces += [(c, -5.0) for c in string.ascii_letters + string.digits + string.punctuation]
    pieces += [(f"▁{c}", -4.0) for c in string.ascii_letters]
    pieces += [(f"▁{w}", -1.0) for w in words]
    return pieces


def write_tiny_t5(folder: str) -> str:
    """Write a tiny random T5 encoder and its tokenizer to ``folder``.

    Example::

        path = write_tiny_t5("/tmp/tiny/t5")
        tokenizer = AutoTokenizer.from_pretrained(path)
        encoder = T5EncoderModel.from_pretrained(path)

    A T5 v1.1-style (gated-gelu) encoder with one layer and d_model 1024, T5-XXL's width, so its
    embeddings have the shape training loaders pad to (512 x 1024); the tokenizer is T5's
    unigram tokenizer over a small local vocabulary (no download), ending sequences with ``</s>``.
    """
    import torch
    from transformers import T5Config, T5EncoderModel, T5Tokenizer

    tokenizer = T5Tokenizer(vocab=_tiny_t5_pieces(), extra_ids=0, model_max_length=512)
    config = T5Config(
        vocab_size=len(tokenizer), d_model=1024, d_kv=16, d_ff=32, num_layers=1, num_decoder_layers=1,
        num_heads=2, feed_forward_proj="gated-gelu", relative_attention_num_buckets=8,
        pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id, decoder_start_token_id=0,
    )
    torch.manual_seed(0)
    T5EncoderModel(config).eval().save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def _tiny_clip_config():
    from transformers import CLIPConfig

    # projection_dim repeated in both towers, as in openai/clip-vit-large-patch14's config.json
    text = {"vocab_size": 99, "hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 1,
            "num_attention_heads": 2, "max_position_embeddings": 16, "projection_dim": 16,
            "bos_token_id": 0, "pad_token_id": 1, "eos_token_id": 2}
    vision = {"image_size": 32, "patch_size": 8, "hidden_size": 32, "intermediate_size": 37,
              "num_hidden_layers": 2, "num_attention_heads": 2, "projection_dim": 16}
    return CLIPConfig(text_config=text, vision_config=vision, projection_dim=16)


def write_tiny_aesthetic(folder: str) -> str:
    """Write a tiny random aesthetic model in the ``--aesthetic-model`` layout to ``folder``.

    Example::

        path = write_tiny_aesthetic("/tmp/tiny/aesthetic")
        AestheticConfig(threshold=-1, model=path)

    A whole ``CLIPModel`` (as ``openai/clip-vit-large-patch14`` is saved), 32x32 images, projection
    dim 16, with its real ``CLIPImageProcessor``, and a LAION-layout MLP taking 16 inputs saved as
    ``sac+logos+ava1-l14-linearMSE.pth``, the published file's name and format (a plain state dict).
    """
    import torch
    from transformers import CLIPImageProcessor, CLIPModel

    from curate_udfs.filters.aesthetic_model import AestheticMLP

    os.makedirs(folder, exist_ok=True)
    torch.manual_seed(0)
    config = _tiny_clip_config()
    CLIPModel(config).save_pretrained(folder)
    size = config.vision_config.image_size
    CLIPImageProcessor(size={"shortest_edge": size}, crop_size={"height": size, "width": size}).save_pretrained(folder)
    mlp = AestheticMLP(config.projection_dim)
    with torch.no_grad():  # frames' scores differ by tenths (like the real model's), not by 1e-4,
        mlp.layers[7].weight.mul_(200.0)  # and land near LAION's 1-10 scale
        mlp.layers[7].bias.fill_(10.0)
    torch.save(mlp.state_dict(), os.path.join(folder, "sac+logos+ava1-l14-linearMSE.pth"))
    return folder


def write_tiny_embedder(folder: str) -> str:
    """A CLIP model with 24-d projections and a 32x32 image processor, for ``--embedding-algorithm clip``.

    The clip embedder reads only images, so no tokenizer is written; the text tower exists
    because CLIPModel has one. Random weights (seeded): vectors have the real shape, no meaning.
    """
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

    torch.manual_seed(0)
    tower = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2)
    config = CLIPConfig(
        text_config=dict(tower, vocab_size=99, max_position_embeddings=16, bos_token_id=0, eos_token_id=1, pad_token_id=1),
        vision_config=dict(tower, image_size=32, patch_size=8),
        projection_dim=_TINY_EMBEDDER_DIM,
    )
    CLIPModel(config).save_pretrained(folder)
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(folder)
    return folder


_TINY_EMBEDDER_DIM = 24  # distinct from the hidden size, so a test sees the projection is used


WRITERS = {"vlm": write_tiny_vlm, "vlm-qwen3": write_tiny_qwen3_vlm, "lm": write_tiny_lm,
           "aesthetic": write_tiny_aesthetic, "embed": write_tiny_embedder, "t5": write_tiny_t5}


def write_tiny_models(root: str) -> dict[str, str]:
    """Every tiny checkpoint under ``root``, by kind; existing ones are rewritten."""
    return {kind: write(os.path.join(root, kind)) for kind, write in WRITERS.items()}


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m curate_udfs.testing.tiny_models DIR")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # read when transformers is first imported
    for kind, path in write_tiny_models(sys.argv[1]).items():
        print(f"{kind:10s} {path}")
