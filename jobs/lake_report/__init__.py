"""`cliplake report`: a static HTML report of a lake, for people to judge the curation by looking.

    cliplake report --output-path LAKE --out DIR   # then open DIR/index.html (file://, offline)

The page holds the run history, plots (durations, scores, resolution and aspect bins, caption
lengths), per-video timelines of the clips cut, a gallery of clips with their WebP previews,
captions of every annotation version, scores and filter marks (searchable by caption, filterable
by score), duplicate groups side by side, and the errors. No server and no CDN: CSS and JS are
inline, plots inline SVG, and the gallery and timelines are paged data files loaded by
``<script>`` tags as they are needed, so a big lake opens as fast as a small one. Measured with
``python bench/report_load.py`` (synthetic 100k clips in 100 pages of 1,000, 5,000 videos;
headless Chromium on 2 busy cores): the first gallery screen in 94 ms (103 ms for 1,000 clips),
a caption search over all 100k clips in 2.2 s the first time (every page loaded), 181 ms after.

The tables are read with Spark; the gallery and timelines come back one partition at a time
(``toLocalIterator``) and are written page by page; plots and lists are aggregated in Spark first.
"""

import argparse
import os

from pyspark.sql import SparkSession

from jobs import storage_options
from jobs.lake import Lake
from jobs.lake_report import site
from jobs.lake_report.queries import LakeQueries

PIPELINE = "report"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output-path", required=True, help="the lake to report on (folder or s3://bucket/prefix)")
    storage_options.add_lake_arguments(parser)
    parser.add_argument("--out", required=True, help="local folder for index.html and its data/ files (created; "
                                                     "an earlier report's data files there are replaced)")
    parser.add_argument("--page-size", type=int, default=1000, help="clips (and videos) per data file")
    parser.add_argument("--max-list-rows", type=int, default=1000,
                        help="most rows in each list on the page (runs, errors, duplicate groups)")
    parser.add_argument("--semantic-dedup-epsilon", type=float, default=None,
                        help="duplicates: cosine_sim_score >= 1 - eps (default: the smallest eps in dedup_summary)")


def run(spark: SparkSession, args: argparse.Namespace) -> dict:
    if args.page_size < 1 or args.max_list_rows < 1:
        raise ValueError("--page-size and --max-list-rows must be >= 1")
    if "://" in args.out:
        raise ValueError(f"--out {args.out}: a local folder (the report is opened from disk)")
    lake = Lake.from_args(args).open(spark, for_writing=False)
    queries = LakeQueries(spark, lake, args.semantic_dedup_epsilon)
    out = os.path.abspath(args.out)
    site.prepare(out)
    links = site.MediaLinks(lake.root, out)

    clips = site.PagedWriter(out, "clips", args.page_size)
    for row in queries.gallery_rows():
        clips.add(site.clip_record(row.asDict(recursive=True), links, queries.eps))
    videos = site.PagedWriter(out, "videos", args.page_size)
    for row in queries.timelines():
        videos.add(site.video_record(row.asDict(recursive=True)))

    groups = queries.duplicate_groups(args.max_list_rows)
    members = [g["keep"] for g in groups] + [d["id"] for g in groups for d in g["duplicates"]]
    group_clips = {r.clip_id: site.clip_record(r.asDict(recursive=True), links, queries.eps) for r in queries.gallery_of(members)}
    counts = queries.counts()
    summary = {
        "lake": str(lake), "page_size": args.page_size, "total_clips": clips.count, "total_videos": videos.count,
        "pages": {"clips": clips.close(), "videos": videos.close()},
        "versions": queries.annotation_versions(), "media_linked": links.local,
        "dedup": {"model": queries.dedup_model, "eps": queries.eps, "groups": groups, "clips": group_clips},
    }
    site.write_summary(out, summary)
    index = site.write_index(out, lake=str(lake), counts=counts, plots=queries.plots(),
                             runs=queries.run_history(args.max_list_rows), errors=queries.errors(args.max_list_rows, counts))
    print(f"report: {index}  ({clips.count} clips in {summary['pages']['clips']} pages, {videos.count} videos, "
          f"{len(groups)} duplicate groups)")
    return {"index": index, "clips": clips.count, "videos": videos.count, "pages": summary["pages"],
            "duplicate_groups": len(groups)}


if __name__ == "__main__":  # spark-submit jobs/lake_report/__init__.py --output-path LAKE --out DIR
    import sys

    from jobs.cli import main

    sys.exit(main([PIPELINE, *sys.argv[1:]]))
