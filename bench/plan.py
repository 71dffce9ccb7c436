"""bench/plan: planning a split over a long list (`split --dry-run`) against reading the list.

Input: a JSON list of N generated paths (default 1,000,000, none on disk) and a lake whose
`videos` table already holds every other one as done, so the anti-join has work to do.
Floor: ``json.load`` of the list in a Python process of its own, which any planner in Python
must do. Job: `cliplake split --dry-run` in this process (Spark already started: the plan, not
the JVM, is measured), which never holds the list (it is written line by line). Prints both
times, their ratio (lower is better) and each side's peak resident memory (Python only: the
job's list lives in Spark's JVM).

    python bench/plan.py [--entries 1000000]
"""

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=1_000_000)
    n = parser.parse_args().entries
    from pyspark.sql import functions as F

    from jobs import tables
    from jobs.cli import run_command
    from jobs.session import get_spark

    spark = get_spark("local", "bench-plan")
    with tempfile.TemporaryDirectory() as tmp:
        listing, lake = Path(tmp) / "list.json", Path(tmp) / "lake"
        with open(listing, "w") as f:
            f.write("[")
            for i in range(n):
                f.write(f'{", " if i else ""}"/videos/cam{i % 97:02d}/day{i % 31:02d}/clip_{i:08d}.mp4"')
            f.write("]")
        done = (spark.range(0, n, 2)
                .select(F.format_string("/videos/cam%02d/day%02d/clip_%08d.mp4", F.col("id") % 97, F.col("id") % 31,
                                        "id").alias("source_path"))
                .select(F.sha2("source_path", 256).alias("video_id"), "source_path", F.lit("ok").alias("status")))
        tables.merge_rows(spark, str(lake), "videos", done)

        floor_script = ("import json, time; t = time.perf_counter(); json.load(open({!r})); "
                        "print(time.perf_counter() - t, open('/proc/self/status').read().split('VmHWM:')[1].split()[0])")
        out = subprocess.run([sys.executable, "-c", floor_script.format(str(listing))], capture_output=True, text=True,
                             check=True).stdout.split()
        floor, floor_mb = float(out[0]), float(out[1]) / 1024

        from jobs import split_annotate  # noqa: F401  (imports torch: counted before the plan, not in it)

        before_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        started = time.perf_counter()
        plan = run_command(["split", "--input-video-list-json-path", str(listing), "--output-path", str(lake),
                            "--dry-run", "--no-generate-embeddings", "--no-generate-captions"])
        job = time.perf_counter() - started
    assert plan["num_pending_videos"] == n // 2, plan
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # (this process's own: no child is run after)
    print(f"entries: {n}  pending: {plan['num_pending_videos']}")
    print(f"floor (json.load): {floor:.2f} s, peak RSS {floor_mb:.0f} MB   split --dry-run: {job:.2f} s, "
          f"peak RSS (driver Python) {peak_mb:.0f} MB, {before_mb:.0f} MB before the plan   ratio: {job / floor:.1f}x")


if __name__ == "__main__":
    main()
