"""bench/many_small: thousands of tiny videos, where per-video and per-task overhead shows.

Input: N one-second 160x96 H.264 videos (synthetic scenes, built once under .cache/bench).
Floor: one Python process running the job's own split stage (probe, decode, fixed-stride spans,
libx264) over every video in a loop: no Spark, no tables. Job: `cliplake split
--splitting-algorithm fixed-stride` in a fresh process, Spark start and the Delta commits
included. Prints both wall times, their ratio (job / floor, lower is better) and the overhead per
video the job adds.

    python bench/many_small.py [--videos 2000]
"""

import argparse
import os
import sys
import tempfile
from pathlib import Path

from measure import measured  # bench/measure.py, beside this script

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".cache" / "bench"
FIXED = ["--splitting-algorithm", "fixed-stride", "--fixed-stride-split-duration", "1", "--fixed-stride-min-clip-length-s", "0.5"]

FLOOR = """
import sys
import pandas as pd
from curate_udfs.media.transcode import EncoderSettings
from curate_udfs.split_stage import SplitConfig, split_batches
from curate_udfs.splitting.spans import FixedStrideRules
config = SplitConfig(clips_dir=sys.argv[1], splitting_algorithm="fixed-stride",
                     fixed_stride=FixedStrideRules(1.0, 0.5), encoder=EncoderSettings(threads=1))
paths = sys.argv[2:]
batch = pd.DataFrame({"source_path": paths, "local_path": paths})
clips = sum(len(row["clips"]) for out in split_batches(iter([batch]), config) for _, row in out.iterrows())
print(clips)
"""


def make_inputs(count: int) -> str:
    from curate_udfs.testing.synthetic import write_video

    folder = CACHE / f"{count}x1s_160x96"
    done = folder / ".complete"
    if not done.exists():
        os.makedirs(folder, exist_ok=True)
        for i in range(count):
            write_video(str(folder / f"tiny_{i:05d}.mp4"), [24], width=160, height=96, fps=24, speed=1.0 + i % 7)
        done.touch()
    return str(folder)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=2000)
    args = parser.parse_args()
    folder = make_inputs(args.videos)
    paths = sorted(str(p) for p in Path(folder).glob("*.mp4"))
    with tempfile.TemporaryDirectory(prefix="cliplake-bench-") as tmp:
        os.makedirs(os.path.join(tmp, "floor"))
        floor_s, _, floor_out = measured([sys.executable, "-c", FLOOR, os.path.join(tmp, "floor"), *paths])
        job_s, _, _ = measured([sys.executable, "-m", "jobs.cli", "split", "--input-video-path", folder,
                                "--output-path", os.path.join(tmp, "lake"), *FIXED,
                                "--no-generate-embeddings", "--no-generate-captions"])
        clips_job = len(os.listdir(os.path.join(tmp, "lake", "media", "clips")))
    clips_floor = int(floor_out.strip().splitlines()[-1])
    print(f"input: {args.videos} videos x 1 s, 160x96; {os.cpu_count()} cores")
    print(f"floor (split stage in one Python loop): {floor_s:6.1f} s  {1000 * floor_s / args.videos:5.1f} ms/video")
    print(f"cliplake split (Spark start):          {job_s:6.1f} s  {1000 * job_s / args.videos:5.1f} ms/video")
    print(f"ratio job/floor: {job_s / floor_s:.2f}  (the floor uses one core; the job all {os.cpu_count()})")
    if clips_job != clips_floor:
        sys.exit(f"job and floor disagree on the clips: {clips_job} vs {clips_floor}")


if __name__ == "__main__":
    main()
