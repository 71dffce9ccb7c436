"""Aesthetic filter through its real loading code, on a tiny random CLIP + LAION-layout MLP checkpoint."""

import os
import shutil

import numpy as np
import pandas as pd
import pytest
import torch

from curate_udfs.errors import EnvironmentProblem
from curate_udfs.filters.aesthetic import OUTPUT_COLUMNS, AestheticConfig, aesthetic_batches, check_aesthetic, clip_frames
from curate_udfs.filters.aesthetic_model import AestheticMLP, load_scorer
from curate_udfs.media.probe import probe_video
from curate_udfs.testing.tiny_models import write_tiny_aesthetic


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return write_tiny_aesthetic(str(tmp_path_factory.mktemp("tiny") / "aesthetic"))


def _clip_row(clip_id: str, path: str) -> dict:
    info = probe_video(path)
    return {"clip_id": clip_id, "location": path, "fps": info.fps, "num_frames": info.num_frames,
            "width": info.width, "height": info.height}


@pytest.fixture(scope="module")
def rows(samples, tmp_path_factory):
    broken = tmp_path_factory.mktemp("broken") / "broken.mp4"
    broken.write_bytes(b"\x00" * 4096)
    return [
        _clip_row("bikes", str(samples["bikes.mp4"])),
        {"clip_id": "broken", "location": str(broken), "fps": 25.0, "num_frames": 100, "width": 640, "height": 360},
        _clip_row("carphone", str(samples["carphone_pristine.mp4"])),
    ]


def _run(config: AestheticConfig, rows: list[dict]) -> pd.DataFrame:
    frames = aesthetic_batches(iter([pd.DataFrame(rows[:2]), pd.DataFrame(rows[2:])]), config)
    out = pd.DataFrame([r for frame in frames for r in frame.to_dict("records")])
    assert list(out.columns) == list(OUTPUT_COLUMNS)
    return out.set_index("clip_id")


def _frame_scores(model: str, row: dict) -> np.ndarray:
    frames = clip_frames(row, AestheticConfig(threshold=-1, model=model))
    return load_scorer(model, "cpu", "fp32").score(list(frames))


def test_mlp_keys_are_laions_published_layout():
    keys = set(AestheticMLP().state_dict())
    assert keys == {f"layers.{i}.{p}" for i in (0, 2, 4, 6, 7) for p in ("weight", "bias")}
    shapes = [tuple(AestheticMLP().state_dict()[f"layers.{i}.weight"].shape) for i in (0, 2, 4, 6, 7)]
    assert shapes == [(1024, 768), (128, 1024), (64, 128), (16, 64), (1, 16)]


def test_score_is_laions_mlp_on_the_unit_clip_image_embedding(model, rows):
    """LAION's predictor recomputed from the checkpoint's files: CLIPModel image features, unit L2 norm, then
    the five linear layers (no activations; dropout off) as plain matrix products."""
    from transformers import CLIPImageProcessor, CLIPModel

    frames = list(clip_frames(rows[0], AestheticConfig(threshold=-1, model=model)))
    pixels = CLIPImageProcessor.from_pretrained(model)(images=frames, return_tensors="pt")["pixel_values"]
    with torch.inference_mode():
        output = CLIPModel.from_pretrained(model).eval().get_image_features(pixel_values=pixels)
    embeds = (output if isinstance(output, torch.Tensor) else output.pooler_output).double().numpy()
    norms = np.linalg.norm(embeds, axis=1, keepdims=True)
    assert np.abs(norms - 1).min() > 0.1  # a scorer that skipped the normalisation would score otherwise
    x = embeds / norms
    state = torch.load(os.path.join(model, "sac+logos+ava1-l14-linearMSE.pth"), weights_only=True)
    for i in (0, 2, 4, 6, 7):
        x = x @ state[f"layers.{i}.weight"].double().numpy().T + state[f"layers.{i}.bias"].double().numpy()
    np.testing.assert_allclose(load_scorer(model, "cpu", "fp32").score(frames), x[:, 0], atol=1e-4)


def test_one_fps_frames_with_short_side_224(rows):
    frames = clip_frames(rows[0], AestheticConfig(threshold=-1, model="unused"))
    assert frames.shape == (10, 224, 528, 3)  # 10 s at 1 fps; 640x272 scaled to keep its shape


def test_min_and_mean_reduce_the_per_frame_scores(model, rows):
    per_frame = _frame_scores(model, rows[0])
    assert len(per_frame) == 10 and per_frame.max() - per_frame.min() > 0.01
    by_min = _run(AestheticConfig(threshold=-1, model=model), rows)
    by_mean = _run(AestheticConfig(threshold=-1, reduction="mean", model=model), rows)
    assert by_min.loc["bikes", "aesthetic_score"] == pytest.approx(float(per_frame.min()), abs=1e-5)
    assert by_mean.loc["bikes", "aesthetic_score"] == pytest.approx(float(per_frame.mean()), abs=1e-5)
    assert by_min.loc["bikes", "aesthetic_score"] < by_mean.loc["bikes", "aesthetic_score"] - 0.005
    assert by_min["filtered_by"].isna().all()  # a negative threshold only scores


def test_scores_do_not_depend_on_batching(model, rows):
    one = _run(AestheticConfig(threshold=-1, model=model, frames_per_batch=1, clips_per_batch=1), rows)
    many = _run(AestheticConfig(threshold=-1, model=model, frames_per_batch=64, clips_per_batch=8), rows)
    np.testing.assert_allclose(one.loc[["bikes", "carphone"], "aesthetic_score"],
                               many.loc[["bikes", "carphone"], "aesthetic_score"], atol=1e-5)


def test_threshold_drops_clips_under_it_and_a_broken_clip_is_an_error_row(model, rows):
    scores = _run(AestheticConfig(threshold=-1, model=model), rows)["aesthetic_score"]
    between = float(scores[["bikes", "carphone"]].mean())
    assert between > 0  # a negative threshold would only score
    out = _run(AestheticConfig(threshold=between, model=model), rows)
    lower, higher = scores[["bikes", "carphone"]].sort_values().index
    assert out.loc[lower, "filtered_by"] == "aesthetic" and out.loc[higher, "filtered_by"] is None
    assert out.loc["broken", "error"].startswith("aesthetic: ") and pd.isna(out.loc["broken", "aesthetic_score"])
    assert out.loc["bikes", "error"] is None and (out["processing_s"] > 0).all()


def test_unset_threshold_is_off(rows):
    out = _run(AestheticConfig(), rows)
    assert out["aesthetic_score"].isna().all() and out["error"].isna().all()
    assert check_aesthetic(AestheticConfig()) is None


def test_check_names_the_option_and_how_to_turn_it_off(model, tmp_path):
    with pytest.raises(EnvironmentProblem, match="--aesthetic-model.*--aesthetic-threshold unset"):
        check_aesthetic(AestheticConfig(threshold=4.0, model=str(tmp_path / "missing")))
    no_mlp = shutil.copytree(model, tmp_path / "no_mlp")
    os.remove(no_mlp / "sac+logos+ava1-l14-linearMSE.pth")
    with pytest.raises(EnvironmentProblem, match="sac\\+logos\\+ava1-l14-linearMSE.pth"):
        check_aesthetic(AestheticConfig(threshold=4.0, model=str(no_mlp)))
    assert check_aesthetic(AestheticConfig(threshold=4.0, model=model)) == model


def test_safetensors_mlp_loads_the_same(model, rows, tmp_path):
    from safetensors.torch import save_file

    other = shutil.copytree(model, tmp_path / "st")
    state = torch.load(other / "sac+logos+ava1-l14-linearMSE.pth", weights_only=True)
    os.remove(other / "sac+logos+ava1-l14-linearMSE.pth")
    save_file({k: v.contiguous() for k, v in state.items()}, str(other / "aesthetic_mlp.safetensors"))
    np.testing.assert_allclose(_frame_scores(str(other), rows[0]), _frame_scores(model, rows[0]), atol=1e-6)
