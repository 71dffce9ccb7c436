"""bench/split: the split job against a plain-Python floor on the same input, in the same run.

Input: six 30-second 640x360 videos cut together from the bundled sample videos (cached in
.cache/bench). Floor: one Python process that, per video, decodes 48x27 frames, runs TransNetV2
(torch on every core) and encodes every shot with libx264 at the job's settings (preset, crf,
and one encoder thread, as the job gives each task).
Job: `cliplake split` in a fresh process, Spark start included. Prints both wall times, their
ratio (job / floor, lower is better) and the peak resident memory of each process tree.

    python bench/split.py [--videos 6] [--seconds 30] [-- extra split options]
    python bench/split.py --input-video-path demo/input   # any folder of videos instead (after make demo)
"""

import argparse
import os
import shutil
import sys
import tempfile
from fractions import Fraction
from pathlib import Path

import av

from measure import measured  # bench/measure.py, beside this script

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".cache" / "bench"
WIDTH, HEIGHT, FPS = 640, 360, 25

FLOOR = """
import os, sys
from curate_udfs.media.decode import iter_small_rgb_frames, iter_video_frames
from curate_udfs.media.probe import probe_video
from curate_udfs.media.transcode import EncoderSettings, encode_spans
from curate_udfs.splitting.spans import TransNetV2Rules
from curate_udfs.splitting.transnetv2 import predict_cut_probabilities
out = sys.argv[1]
for path in sys.argv[2:]:
    info = probe_video(path)
    probs = predict_cut_probabilities(iter_small_rgb_frames(path, 48, 27))
    spans = TransNetV2Rules().spans(probs, info.fps)
    for clip in encode_spans(iter_video_frames(path), spans, info.frame_rate, EncoderSettings(threads=1)):
        with open(os.path.join(out, f"{os.path.basename(path)}_{clip.start_frame}.mp4"), "wb") as f:
            f.write(clip.data)
"""


def make_inputs(count: int, seconds: int) -> list[str]:
    """Videos of shots taken in turn from the sample videos, scaled to 640x360 (built once)."""
    from curate_udfs.testing.samples import sample_videos

    folder = CACHE / f"{count}x{seconds}s_{WIDTH}x{HEIGHT}"
    paths = [str(folder / f"bench_{i}.mp4") for i in range(count)]
    if all(os.path.exists(p) for p in paths):
        return paths
    os.makedirs(folder, exist_ok=True)
    sources = [str(p) for p in sample_videos().values()]
    for i, path in enumerate(paths):
        frames_left, shot = seconds * FPS, 0
        with av.open(path + ".tmp.mp4", "w") as out:
            stream = out.add_stream("libx264", rate=Fraction(FPS), options={"preset": "fast", "crf": "20"})
            stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
            while frames_left > 0:
                source = sources[(i + shot) % len(sources)]
                take = min(frames_left, 60 + 37 * ((i * 7 + shot * 3) % 5))  # shots of 2.4 to 8.3 s
                with av.open(source) as src:
                    src_stream = src.streams.video[0]
                    skip = (i * 211 + shot * 97) % max(1, (src_stream.frames or 100) - take)
                    for k, frame in enumerate(src.decode(src_stream)):
                        if k < skip:
                            continue
                        if k >= skip + take:
                            break
                        frame = frame.reformat(width=WIDTH, height=HEIGHT, format="yuv420p")
                        frame.pts, frame.time_base = seconds * FPS - frames_left, Fraction(1, FPS)
                        out.mux(stream.encode(frame))
                        frames_left -= 1
                shot += 1
            out.mux(stream.encode(None))
        os.replace(path + ".tmp.mp4", path)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=6)
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--input-video-path", help="a folder of videos to split instead of the synthetic ones")
    parser.add_argument("split_options", nargs="*", help="extra options for the job (after --)")
    args = parser.parse_args()
    if args.input_video_path:
        from curate_udfs.media.probe import probe_video
        from jobs.listing import VIDEO_EXTENSIONS

        paths = sorted(str(p) for p in Path(args.input_video_path).rglob("*") if p.suffix.lower() in VIDEO_EXTENSIONS)
        video_s = sum(probe_video(p).duration_s for p in paths)
        described = f"{len(paths)} videos in {args.input_video_path}, {video_s:.0f} s in all"
    else:
        paths = make_inputs(args.videos, args.seconds)
        video_s = args.videos * args.seconds
        described = f"{args.videos} videos x {args.seconds} s, {WIDTH}x{HEIGHT} @ {FPS} fps"
    with tempfile.TemporaryDirectory(prefix="cliplake-bench-") as tmp:
        floor_out, lake = os.path.join(tmp, "floor"), os.path.join(tmp, "lake")
        os.makedirs(floor_out)
        floor_s, floor_mem, _ = measured([sys.executable, "-c", FLOOR, floor_out, *paths])
        job_s, job_mem, job_out = measured([sys.executable, "-m", "jobs.cli", "split", "--input-video-path",
                                         args.input_video_path or os.path.dirname(paths[0]), "--output-path", lake,
                                         # the floor only splits: compare like with like
                                         "--no-generate-embeddings", "--no-generate-captions", *args.split_options])
        clips_floor = len(os.listdir(floor_out))
        clips_job = len(os.listdir(os.path.join(lake, "media", "clips")))
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"input: {described}; {os.cpu_count()} cores")
    print(f"floor (one Python process):   {floor_s:7.1f} s  {video_s / floor_s:5.2f} video-s/s  "
          f"peak {floor_mem / 2**20:6.0f} MiB  {clips_floor} clips")
    print(f"cliplake split (Spark start): {job_s:7.1f} s  {video_s / job_s:5.2f} video-s/s  "
          f"peak {job_mem / 2**20:6.0f} MiB  {clips_job} clips")
    print(f"ratio job/floor: {job_s / floor_s:.2f}  (goal <= 1.0)")
    if clips_job != clips_floor:
        sys.exit(f"job and floor disagree on the clips: {clips_job} vs {clips_floor}")


if __name__ == "__main__":
    main()
