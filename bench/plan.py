"""bench/plan: planning a split over a long list (`split --dry-run`) against reading the list.

Input: a JSON list of N generated paths (default 1,000,000, none on disk) and a lake whose
`videos` table already holds every other one as done, so the anti-join has work to do.
Floor: ``json.load`` of the list, which any planner must do. Job: `cliplake split --dry-run` in
this process (Spark already started: the plan, not the JVM, is measured). Prints both times,
their ratio (lower is better) and this process's peak resident memory.

    python bench/plan.py [--entries 1000000]
"""

import argparse
import json
import resource
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
        listing.write_text(json.dumps([f"/videos/cam{i % 97:02d}/day{i % 31:02d}/clip_{i:08d}.mp4" for i in range(n)]))
        done = (spark.range(0, n, 2)
                .select(F.format_string("/videos/cam%02d/day%02d/clip_%08d.mp4", F.col("id") % 97, F.col("id") % 31,
                                        "id").alias("source_path"))
                .select(F.sha2("source_path", 256).alias("video_id"), "source_path", F.lit("ok").alias("status")))
        tables.merge_rows(spark, str(lake), "videos", done)

        started = time.perf_counter()
        with open(listing) as f:
            entries = json.load(f)
        floor = time.perf_counter() - started
        del entries

        started = time.perf_counter()
        plan = run_command(["split", "--input-video-list-json-path", str(listing), "--output-path", str(lake),
                            "--dry-run", "--no-generate-embeddings", "--no-generate-captions"])
        job = time.perf_counter() - started
    assert plan["num_pending_videos"] == n // 2, plan
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"entries: {n}  pending: {plan['num_pending_videos']}")
    print(f"floor (json.load): {floor:.2f} s   split --dry-run: {job:.2f} s   ratio: {job / floor:.1f}x   "
          f"peak RSS (driver Python): {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
