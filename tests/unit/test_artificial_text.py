"""The artificial-text filter with the real PP-OCRv4 weights (rapidocr-onnxruntime), on real footage
with text drawn on it: overlay text (subtitles, tickers, corner captions, title cards) against clean
clips and scene-like text (signs in perspective moving with the camera, a small plate, short-lived text)."""

import importlib.util

import av
import pandas as pd
import pytest

from curate_udfs.errors import EnvironmentProblem
from curate_udfs.filters import artificial_text
from curate_udfs.filters.artificial_text import ArtificialTextConfig, artificial_text_batches, frame_indices
from curate_udfs.testing.text_clips import write_text_clips

pytest.importorskip("rapidocr_onnxruntime")

FLOOR = 0.8  # precision and recall at the default threshold, on this set


def _rows(clips) -> pd.DataFrame:
    records = []
    for clip in clips:
        with av.open(clip.path) as container:
            stream = container.streams.video[0]
            records.append({"clip_id": clip.name, "location": clip.path, "num_frames": stream.frames,
                            "width": stream.width, "height": stream.height})
    return pd.DataFrame(records)


def _run(config: ArtificialTextConfig, rows: pd.DataFrame) -> pd.DataFrame:
    return pd.concat(list(artificial_text_batches(iter([rows]), config))).set_index("clip_id")


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    return write_text_clips(str(tmp_path_factory.mktemp("text_clips")))


@pytest.fixture(scope="module")
def enabled(clips):
    return _run(ArtificialTextConfig(mode="enable"), _rows(clips))


def test_precision_and_recall_on_drawn_text(clips, enabled):
    truth = {clip.name: clip.overlay for clip in clips}
    flagged = {name: enabled.loc[name, "filtered_by"] == "artificial_text" for name in truth}
    tp = sum(flagged[n] and truth[n] for n in truth)
    fp = sum(flagged[n] and not truth[n] for n in truth)
    fn = sum(truth[n] and not flagged[n] for n in truth)
    precision, recall = tp / max(1, tp + fp), tp / max(1, tp + fn)
    for name in truth:
        print(f"{'overlay' if truth[name] else 'scene  '} {enabled.loc[name, 'artificial_text_score']:.3f} "
              f"{'FLAGGED' if flagged[name] else '       '} {name}")
    print(f"artificial text at threshold {ArtificialTextConfig().threshold}: precision {precision:.3f}, "
          f"recall {recall:.3f} ({sum(truth.values())} overlay clips, {len(truth) - sum(truth.values())} without)")
    assert enabled["error"].isna().all()
    assert precision >= FLOOR and recall >= FLOOR
    assert enabled["artificial_text_score"].between(0, 1).all()


def test_ocr_text_is_recorded(enabled):
    assert "Before it gets dark." in enabled.loc["subtitles_bunny", "artificial_text"].split("\n")
    assert "THE MEADOW" in enabled.loc["title_bunny", "artificial_text"]
    assert enabled.loc["clean_bikes", "artificial_text"] == "" and enabled.loc["clean_bikes", "artificial_text_score"] == 0
    # scene text is read and recorded, but does not mark the clip
    assert "BAKERY" in enabled.loc["sign_moving_bunny", "artificial_text"]
    assert enabled.loc["sign_moving_bunny", "filtered_by"] is None


def test_score_only_records_and_keeps(clips, enabled):
    rows = _rows([c for c in clips if c.name in ("subtitles_bikes", "clean_bunny")])
    out = _run(ArtificialTextConfig(mode="score-only"), rows)
    assert out["filtered_by"].isna().all()
    for name in out.index:
        assert out.loc[name, "artificial_text_score"] == pytest.approx(enabled.loc[name, "artificial_text_score"])
    assert out.loc["subtitles_bikes", "artificial_text_score"] >= 0.5


def test_broken_clip_is_an_error_row_and_disable_reads_nothing(tmp_path):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video")
    rows = pd.DataFrame([{"clip_id": "broken", "location": str(broken), "num_frames": 10, "width": 64, "height": 64}])
    out = _run(ArtificialTextConfig(mode="enable"), rows)
    assert out.loc["broken", "error"].startswith("artificial_text: ")
    assert pd.isna(out.loc["broken", "artificial_text_score"])
    off = _run(ArtificialTextConfig(), rows)
    assert off["artificial_text_score"].isna().all() and off["error"].isna().all()


def test_missing_ocr_package_fails_with_the_install_line(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "rapidocr_onnxruntime" else real(name, *a))
    with pytest.raises(EnvironmentProblem, match=r"pip install 'cliplake\[ocr\]'"):
        artificial_text.check_artificial_text(ArtificialTextConfig(mode="score-only"))
    artificial_text.check_artificial_text(ArtificialTextConfig())  # disabled: nothing needed


def test_options_are_checked():
    with pytest.raises(ValueError, match="--artificial-text-filter"):
        ArtificialTextConfig(mode="on")
    with pytest.raises(ValueError, match="--artificial-text-threshold"):
        ArtificialTextConfig(threshold=1.5)
    with pytest.raises(ValueError, match="--artificial-text-frames"):
        ArtificialTextConfig(frames=0)
    assert frame_indices(48, 5) == [4, 14, 24, 33, 43]
    assert frame_indices(3, 5) == [0, 1, 2]
