"""Captioning: windows, model-input packing, previews, preparation on real clips, generation on a tiny Qwen2.5-VL."""

import io
import os
import time

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from curate_udfs.captioning import (
    DEFAULT_PROMPT,
    OUTPUT_COLUMNS,
    PREPARE_OUTPUT_COLUMNS,
    CaptioningConfig,
    caption_batches,
    caption_windows,
    check_captioning,
    prepare_caption_batches,
    preview_path,
)
from curate_udfs.captioning.generation import chat_prompt, count_output_tokens
from curate_udfs.captioning.prompts import PROMPT_VARIANTS
from curate_udfs.captioning.inputs import WindowFrames, model_frame_size, pack_window_frames, unpack_window_frames
from curate_udfs.captioning.stage import choose_backend, model_resize_factor
from curate_udfs.captioning.transformers_backend import load_transformers_captioner
from curate_udfs.errors import EnvironmentProblem
from curate_udfs.media.previews import encode_animated_webp, preview_size
from curate_udfs.media.probe import probe_video
from curate_udfs.media.sampling import sample_indices
from curate_udfs.testing.tiny_models import write_tiny_lm, write_tiny_qwen3_vlm, write_tiny_t5, write_tiny_vlm

# Small frames and few tokens keep the tiny model's generation to a fraction of a second on a CPU.
SMALL = {"min_pixels_per_frame": 56 * 56, "max_pixels_per_frame": 112 * 196, "max_output_tokens": 6}


@pytest.fixture(scope="module")
def tiny_vlm(tmp_path_factory):
    return write_tiny_vlm(str(tmp_path_factory.mktemp("tiny") / "vlm"))


def clip_row(clip_id: str, path) -> dict:
    info = probe_video(str(path))
    return {"clip_id": clip_id, "location": str(path), "fps": info.fps, "num_frames": info.num_frames,
            "width": info.width, "height": info.height}


def run(adapter, rows, *args, **kwargs) -> pd.DataFrame:
    frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(rows)
    return pd.concat(list(adapter(iter([frame]), *args, **kwargs)), ignore_index=True)


# --- windows -------------------------------------------------------------------------------------

@pytest.mark.parametrize("num_frames, expected", [
    (1, [(0, 1)]),
    (100, [(0, 100)]),
    (255, [(0, 255)]),
    (256, [(0, 256)]),
    (300, [(0, 300)]),                     # remainder 44 joins the only window
    (383, [(0, 383)]),                     # remainder 127 < 128 joins
    (384, [(0, 256), (256, 384)]),         # remainder 128 is its own window
    (511, [(0, 256), (256, 511)]),
    (512, [(0, 256), (256, 512)]),
    (600, [(0, 256), (256, 600)]),         # 256 + 88 merged: (256, 344 frames)
    (640, [(0, 256), (256, 512), (512, 640)]),
    (0, []),
])
def test_caption_windows_follow_the_remainder_rule(num_frames, expected):
    assert caption_windows(num_frames, 256) == expected


def test_caption_windows_tile_every_clip_within_half_to_one_and_a_half_windows():
    for size in (8, 64, 256):
        for n in range(1, 5 * size):
            windows = caption_windows(n, size)
            assert windows[0][0] == 0 and windows[-1][1] == n
            assert all(a[1] == b[0] for a, b in zip(windows, windows[1:]))
            lengths = [e - s for s, e in windows]
            if n >= size:
                assert min(lengths) >= size // 2 and max(lengths) < size + size // 2
            else:
                assert lengths == [n]


# --- model inputs ----------------------------------------------------------------------------------

@pytest.mark.parametrize("width, height", [(1920, 1080), (640, 272), (176, 144), (160, 90), (3840, 2160), (90, 1600)])
def test_model_frame_size_is_qwens_smart_resize(width, height):
    from transformers.models.qwen2_vl.video_processing_qwen2_vl import smart_resize

    bounds = {"min_pixels": 128 * 28 * 28, "max_pixels": 768 * 28 * 28}
    w, h = model_frame_size(width, height, factor=28, **bounds)
    assert (h, w) == smart_resize(height, width, factor=28, **bounds)
    assert w % 28 == 0 and h % 28 == 0 and bounds["min_pixels"] <= w * h <= bounds["max_pixels"]


def test_packed_window_frames_round_trip():
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, size=(5, 84 * 3 // 2, 112), dtype=np.uint8)
    window = WindowFrames(frames, 1.95, (0, 13, 25, 38, 50))
    back = unpack_window_frames(pack_window_frames(window))
    assert np.array_equal(back.frames_yuv420, frames)
    assert (back.sampled_fps, back.frame_indices, back.width, back.height) == (1.95, (0, 13, 25, 38, 50), 112, 84)
    assert back.rgb().shape == (5, 84, 112, 3)
    with pytest.raises(ValueError, match="magic"):
        unpack_window_frames(b"not packed")
    with pytest.raises(ValueError, match="header says"):
        unpack_window_frames(pack_window_frames(window)[:-10])


def test_count_output_tokens_stops_at_the_first_eos_and_ignores_padding():
    assert count_output_tokens([5, 7, 2, 0, 0], {2, 0}) == 3
    assert count_output_tokens([5, 7, 9], {2}) == 3
    assert count_output_tokens([2], {2}) == 1


# --- previews -------------------------------------------------------------------------------------

def test_animated_webp_has_every_frame_at_the_given_rate():
    frames = [np.full((240, 426, 3), 40 * i, np.uint8) for i in range(4)]
    image = Image.open(io.BytesIO(encode_animated_webp(frames, fps=1.0)))
    assert (image.format, image.n_frames, image.size) == ("WEBP", 4, (426, 240))
    image.seek(2)
    image.load()
    assert (image.info["duration"], image.info["timestamp"]) == (1000, 2000)
    assert abs(int(np.asarray(image.convert("RGB")).mean()) - 80) <= 3  # the third frame, not a copy of the first
    assert preview_size(1920, 1080) == (426, 240) and preview_size(176, 144) == (294, 240)
    with pytest.raises(ValueError):
        encode_animated_webp([])


# --- preparation on real clips -------------------------------------------------------------------

def test_prepare_cuts_windows_samples_at_2fps_and_writes_1fps_previews(samples, tmp_path):
    config = CaptioningConfig(window_size=128, previews_dir=str(tmp_path / "previews"), **SMALL)
    row = clip_row("bikes", samples["bikes.mp4"])  # 250 frames at 25 fps, 640x272
    out = run(prepare_caption_batches, [row], config)
    assert list(out.columns) == list(PREPARE_OUTPUT_COLUMNS)
    assert out.error.isna().all()
    assert list(zip(out.start_frame, out.end_frame)) == [(0, 128), (128, 250)]
    for window in out.itertuples():
        frames = unpack_window_frames(window.model_inputs)
        assert list(frames.frame_indices) == sample_indices(250, 25.0, 2.0, window.start_frame, window.end_frame)
        assert frames.width % 28 == 0 and frames.height % 28 == 0 and frames.width * frames.height <= 112 * 196
        assert frames.width / frames.height == pytest.approx(640 / 272, rel=0.2)
        assert frames.sampled_fps == pytest.approx(2.0, rel=0.1)
        preview = Image.open(preview_path(config.previews_dir, "bikes", window.start_frame, window.end_frame))
        one_per_second = len(sample_indices(250, 25.0, 1.0, window.start_frame, window.end_frame))
        assert preview.n_frames == one_per_second == (window.end_frame - window.start_frame) // 25
        assert preview.size == (564, 240)
    # the frames are the clip's: the first sampled frame matches a direct decode of frame 0
    first = unpack_window_frames(out.model_inputs[0]).rgb()[0]
    from curate_udfs.media.sampling import sample_frames

    direct = sample_frames(row["location"], [0], width=first.shape[1], height=first.shape[0]).frames[0]
    assert np.abs(first.astype(int) - direct).mean() < 4


def test_a_broken_clip_is_one_error_row_and_the_others_go_on(samples, tmp_path):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video at all\n" * 100)
    rows = [clip_row("a", samples["carphone_pristine.mp4"]),
            {**clip_row("b", samples["carphone_pristine.mp4"]), "location": str(broken)},
            clip_row("c", samples["bikes.mp4"])]
    out = run(prepare_caption_batches, rows, CaptioningConfig(**SMALL))
    bad = out[out.clip_id == "b"]
    assert len(bad) == 1 and "not a readable media file" in bad.error.iloc[0]
    assert bad.window_index.isna().all() and bad.model_inputs.isna().all()
    good = out[out.clip_id != "b"]
    assert good.error.isna().all() and set(good.clip_id) == {"a", "c"}
    assert good.model_inputs.map(len).min() > 1000


# --- generation on the tiny Qwen2.5-VL -------------------------------------------------------------

@pytest.fixture(scope="module")
def prepared(samples, tiny_vlm):
    config = CaptioningConfig(model=tiny_vlm, window_size=64, batch_size=4, **SMALL)
    rows = [clip_row("bikes", samples["bikes.mp4"]), clip_row("carphone", samples["carphone_pristine.mp4"])]
    return config, run(prepare_caption_batches, rows, config)


def test_captions_come_back_per_window_with_consistent_token_counts(prepared):
    config, windows = prepared
    out = run(caption_batches, windows, config)
    assert list(out.columns) == list(OUTPUT_COLUMNS)
    assert len(out) == len(windows) == 4 + 2  # bikes: 250 frames in 64-frame windows; carphone: 120
    assert out.error.isna().all()
    assert out.caption.map(lambda c: isinstance(c, str)).all()
    assert (out.model == config.model).all() and (out.prompt == DEFAULT_PROMPT).all() and config.prompt == DEFAULT_PROMPT
    assert (out.annotation_version == "v0").all()
    assert ((out.output_tokens >= 1) & (out.output_tokens <= config.max_output_tokens)).all()
    # prompt_tokens is the tokenized prompt with its video tokens, as the processor builds it
    captioner = load_transformers_captioner(config.model, "cpu", "auto")
    from transformers.video_utils import VideoMetadata

    for window, row in zip(windows.itertuples(), out.itertuples()):
        frames = unpack_window_frames(window.model_inputs)
        alone = captioner.processor(
            text=[chat_prompt(captioner.processor, config.prompt)], videos=[frames.rgb()],
            video_metadata=[VideoMetadata(total_num_frames=frames.num_frames, fps=frames.sampled_fps)],
            do_sample_frames=False, cap_pixels_per_frame=False,
        )
        assert row.prompt_tokens == len(alone["input_ids"][0])
        video_tokens = alone["input_ids"][0].count(captioner.processor.video_token_id)
        grid = alone["video_grid_thw"][0]
        assert video_tokens == grid[0] * grid[1] * grid[2] // 4 > 0
    # the last bikes window (58 frames, 4 samples) has fewer video tokens than a full one (5 samples, padded to 6)
    assert out.prompt_tokens[3] < out.prompt_tokens[0]


def test_a_batch_of_windows_gives_the_same_captions_as_one_at_a_time(prepared):
    config, windows = prepared
    import dataclasses

    batched = run(caption_batches, windows, config)
    single = run(caption_batches, windows, dataclasses.replace(config, batch_size=1))
    assert batched.caption.tolist() == single.caption.tolist()
    assert batched.prompt_tokens.tolist() == single.prompt_tokens.tolist()
    assert batched.output_tokens.tolist() == single.output_tokens.tolist()


def test_prompt_variants_reach_the_model_and_the_prompt_column(prepared):
    config, windows = prepared
    import dataclasses

    one = windows.head(1)
    outs = {variant: run(caption_batches, one, dataclasses.replace(config, prompt_variant=variant))
            for variant in PROMPT_VARIANTS}
    captioner = load_transformers_captioner(config.model, "cpu", "auto")
    tokens = {v: len(captioner.processor.tokenizer(text)["input_ids"]) for v, text in PROMPT_VARIANTS.items()}
    assert len(set(tokens.values())) == 3  # the three instructions tokenize to different lengths
    for variant, out in outs.items():
        assert out.error.isna().all()
        assert out.prompt.tolist() == [PROMPT_VARIANTS[variant]]  # the stored prompt is the variant's text
        # the model saw the variant's text: prompt tokens differ from the default's by exactly its token difference
        assert out.prompt_tokens[0] - outs["default"].prompt_tokens[0] == tokens[variant] - tokens["default"]
    # --captioning-prompt-text wins over the variant, in the model input and in the stored prompt
    custom = run(caption_batches, one, dataclasses.replace(config, prompt_variant="av", prompt_text="Describe this video."))
    assert custom.prompt.tolist() == ["Describe this video."]
    assert custom.prompt_tokens[0] - outs["default"].prompt_tokens[0] == (
        len(captioner.processor.tokenizer("Describe this video.")["input_ids"]) - tokens["default"])


@pytest.fixture(scope="module")
def tiny_qwen3_vlm(tmp_path_factory):
    return write_tiny_qwen3_vlm(str(tmp_path_factory.mktemp("tiny") / "vlm-qwen3"))


@pytest.mark.parametrize("family", ["qwen2.5-vl", "qwen3-vl"])
def test_qwen2_5_and_qwen3_vl_checkpoints_both_caption(family, samples, tiny_vlm, tiny_qwen3_vlm):
    model = tiny_vlm if family == "qwen2.5-vl" else tiny_qwen3_vlm
    assert check_captioning(CaptioningConfig(model=model)) == model
    factor = model_resize_factor(model)
    assert factor == {"qwen2.5-vl": 28, "qwen3-vl": 32}[family]  # 14 px patches vs 16 px, merged 2x2
    config = CaptioningConfig(model=model, window_size=64, batch_size=2, resize_factor=factor, **SMALL)
    windows = run(prepare_caption_batches, [clip_row("carphone", samples["carphone_pristine.mp4"])], config)
    out = run(caption_batches, windows, config)
    assert len(out) == 2 and out.error.isna().all()
    assert out.caption.map(lambda c: isinstance(c, str)).all() and (out.output_tokens >= 1).all()
    captioner = load_transformers_captioner(model, "cpu", "auto")
    assert type(captioner.model).__name__ == {"qwen2.5-vl": "Qwen2_5_VLForConditionalGeneration",
                                              "qwen3-vl": "Qwen3VLForConditionalGeneration"}[family]
    frames = unpack_window_frames(windows.model_inputs[0])
    assert frames.width % factor == 0 and frames.height % factor == 0
    from curate_udfs.captioning.transformers_backend import video_metadata

    alone = captioner.processor(text=[chat_prompt(captioner.processor, config.prompt)], videos=[frames.rgb()],
                                video_metadata=[video_metadata(frames.num_frames, frames.sampled_fps)],
                                do_sample_frames=False, cap_pixels_per_frame=False)
    t, h, w = alone["video_grid_thw"][0]
    assert (h * factor // 2, w * factor // 2) == (frames.height, frames.width)  # the processor kept the prepared size
    assert out.prompt_tokens[0] == len(alone["input_ids"][0])
    text = captioner.processor.tokenizer.decode(alone["input_ids"][0])
    # Qwen3-VL: a timestamp per pair of frames, from the window's start; Qwen2.5-VL: none, and a system turn
    assert (text.count(" seconds>") == t) == (family == "qwen3-vl")
    assert ("You are a helpful assistant." in text) == (family == "qwen2.5-vl")


def test_enhancement_writes_a_second_caption_beside_the_raw_one(prepared, tmp_path):
    config, windows = prepared
    import dataclasses

    from curate_udfs.captioning.prompts import ENHANCE_PROMPTS

    lm = write_tiny_lm(str(tmp_path / "lm"))
    enhanced = dataclasses.replace(config, enhance_model=lm, enhance_max_output_tokens=5, prompt_variant="av")
    assert check_captioning(enhanced) == config.model and enhanced.enhance_prompt == ENHANCE_PROMPTS["av"]
    out = run(caption_batches, windows.head(3), enhanced)
    plain = run(caption_batches, windows.head(3), dataclasses.replace(config, prompt_variant="av"))
    assert out.error.isna().all() and (out.enhance_model == lm).all()
    assert out.caption.tolist() == plain.caption.tolist()  # the raw caption is untouched
    assert out.enhanced_caption.map(lambda c: isinstance(c, str) and len(c) > 0).all()
    assert (out.enhanced_caption != out.caption).all()
    assert plain.enhanced_caption.isna().all() and plain.enhance_model.isna().all()
    # the rewrite is the language model's greedy answer to the variant's instruction and the raw caption
    from curate_udfs.captioning.enhance import load_enhancer

    again = load_enhancer(lm, "cpu", "auto").enhance(out.caption.tolist(), ENHANCE_PROMPTS["av"], 5)
    assert again == out.enhanced_caption.tolist()
    with pytest.raises(EnvironmentProblem, match="--enhance-captions-model"):
        check_captioning(dataclasses.replace(config, enhance_model=str(tmp_path / "no-lm")))


def test_error_rows_pass_through_and_a_bad_window_costs_only_its_row(prepared):
    config, windows = prepared
    rows = windows.head(3).copy()
    rows.loc[0, ["model_inputs", "error"]] = [None, "not a readable media file"]
    rows.loc[1, "model_inputs"] = b"garbage"
    out = run(caption_batches, rows, config)
    assert out.error[0] == "not a readable media file" and out.caption.isna()[0]
    assert "magic" in out.error[1] and out.caption.isna()[1]
    assert out.error.isna()[2] and isinstance(out.caption[2], str)


def test_error_rows_alone_never_load_the_model(tmp_path):
    config = CaptioningConfig(model=str(tmp_path / "no-such-model"))
    rows = [{"clip_id": "x", "window_index": None, "start_frame": None, "end_frame": None, "model_inputs": None,
             "error": "decode failed"}]
    out = run(caption_batches, rows, config)
    assert out.error.tolist() == ["decode failed"]


# --- driver checks --------------------------------------------------------------------------------

def test_check_captioning_stops_at_once_on_a_missing_model(tmp_path):
    started = time.perf_counter()
    with pytest.raises(EnvironmentProblem, match="--captioning-model") as error:
        check_captioning(CaptioningConfig(model=str(tmp_path / "missing")))
    assert "--no-generate-captions" in str(error.value)
    assert time.perf_counter() - started < 2


def test_check_captioning_rejects_a_folder_without_a_vlm_processor(tmp_path):
    not_a_vlm = write_tiny_t5(str(tmp_path / "t5"))
    with pytest.raises(EnvironmentProblem, match="--captioning-model"):
        check_captioning(CaptioningConfig(model=not_a_vlm))
    os.makedirs(tmp_path / "empty")
    with pytest.raises(EnvironmentProblem, match="--captioning-model"):
        check_captioning(CaptioningConfig(model=str(tmp_path / "empty")))


def test_check_captioning_accepts_the_tiny_vlm(tiny_vlm):
    assert check_captioning(CaptioningConfig(model=tiny_vlm)) == tiny_vlm


def test_backend_choice_and_config_checks():
    assert choose_backend(CaptioningConfig(), "cpu") == "transformers"
    assert choose_backend(CaptioningConfig(backend="transformers"), "cuda:0") == "transformers"
    with pytest.raises(EnvironmentProblem, match="vllm"):
        choose_backend(CaptioningConfig(backend="vllm"), "cpu")
    for bad in ({"window_size": 1}, {"batch_size": 0}, {"sampling_fps": 0}, {"backend": "onnx"},
                {"max_pixels_per_frame": 10}, {"prompt_text": " "}, {"device": "tpu"}, {"prompt_variant": "dashcam"}):
        with pytest.raises(ValueError):
            CaptioningConfig(**bad)
