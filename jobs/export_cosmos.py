"""`cliplake export-cosmos`: a lake written out as Cosmos-Curate v1.4's split output folder.

For teams whose tools read Cosmos-Curate's folders (its dedup and shard pipelines, scripts,
review UIs). The files are written by Spark tasks, each only when it is missing or differs, so a
second export changes nothing and an export after new clips adds only theirs. On S3 the clip mp4s
are copied server-side. The layout: :mod:`curate_udfs.cosmos_layout`.

    cliplake export-cosmos --output-path LAKE --to DIR [--annotation-version v0] [--embedding-model M]
"""

import argparse
import json
from datetime import datetime, timezone

import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from curate_udfs import cosmos_layout, storage
from curate_udfs.objectstore import S3Access
from jobs import dedup, storage_options, tables
from jobs.lake import Lake, normalize_location
from jobs.report import print_table
from jobs.shard import captioned_clips

PIPELINE = "export-cosmos"
COUNTS = T.StructType([T.StructField("written", T.LongType()), T.StructField("unchanged", T.LongType())])


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output-path", "--input-clip-path", dest="output_path", required=True,
                        help="the lake to export (folder or s3://bucket/prefix)")
    storage_options.add_lake_arguments(parser)
    parser.add_argument("--to", required=True, help="folder or s3:// prefix to write Cosmos-Curate's split output to")
    parser.add_argument("--to-s3-profile-name", default=None, help="AWS profile for an s3:// --to")
    parser.add_argument("--annotation-version", action="append", default=None,
                        help="captions version written as metas/{version}/ (repeat for several; default: every version)")
    parser.add_argument("--embedding-model", default=None,
                        help="clip_embeddings model written as *_embd/ and *_embd_parquet/ (default: the one with most "
                             "embeddings, as dedup picks it)")
    parser.add_argument("--as-of-version", type=int, default=None,
                        help="export the captions table as of this Delta version (time travel)")


class Target:
    """Where files go and how: each written only when missing or different (an export is incremental)."""

    def __init__(self, root: str, access: S3Access, lake_access: S3Access):
        self.root, self.access, self.lake_access = root, access, lake_access

    def path(self, *parts: str) -> str:
        return storage.join(self.root, *parts)

    def put(self, relative: str, data: bytes) -> bool:
        path = self.path(relative)
        if storage.size(path, self.access) == len(data) and storage.read_bytes(path, self.access) == data:
            return False
        storage.write_bytes_atomic(path, data, self.access)
        return True

    def copy(self, source: str, relative: str) -> bool:
        """A media file copied in; one of the same size already there (or a missing source) is left alone."""
        path, size = self.path(relative), storage.size(source, self.lake_access)
        if size is None or storage.size(path, self.access) == size:
            return False
        storage.copy_file(source, path, self.lake_access, self.access)
        return True


def _count(target: Target, files) -> pd.DataFrame:
    """Write ``files``, pairs ``(relative path, bytes or a media file to copy)``; how many were written."""
    written = unchanged = 0
    for relative, content in files:
        done = target.put(relative, content) if isinstance(content, bytes) else target.copy(content, relative)
        written, unchanged = written + done, unchanged + (not done)
    return pd.DataFrame({"written": [written], "unchanged": [unchanged]})


def _per_row(target: Target, files_of_row):
    """A mapInPandas body writing each row's files."""
    def body(frames):
        for frame in frames:
            yield _count(target, (f for row in frame.to_dict("records") for f in files_of_row(row)))
    return body


def _sum(counts: DataFrame) -> tuple[int, int]:
    row = counts.agg(F.sum("written"), F.sum("unchanged")).first()
    return int(row[0] or 0), int(row[1] or 0)


def clip_rows(spark: SparkSession, lake: Lake, target: Target, captions: DataFrame, version: str) -> DataFrame:
    """Every clip with its video's size and rate, its ``version`` windows (none when uncaptioned) and where it goes."""
    sources = tables.read_table(spark, lake, "videos").select(
        "video_id", F.col("width").alias("source_width"), F.col("height").alias("source_height"),
        F.col("fps").alias("source_fps"))
    folder = F.when(F.col("filtered_by").isNull(), F.lit("clips")).otherwise(F.lit("filtered_clips"))
    windows = captioned_clips(captions.where(F.col("annotation_version") == version))
    return (tables.read_table(spark, lake, "clips").drop("run_id")
            .join(windows, "clip_id", "left").join(sources, "video_id", "left")
            .withColumn("media", F.col("location"))
            .withColumn("relative", F.concat(folder, F.lit("/"), "clip_id", F.lit(".mp4")))
            .withColumn("location", F.concat(F.lit(target.root.rstrip("/") + "/"), "relative")))


def _metas_files(version: str):
    def files(row):
        for name in ("window_starts", "window_ends", "captions", "prompt_tokens", "output_tokens"):
            if row.get(name) is None:
                row[name] = []
        yield f"metas/{version}/{row['clip_id']}.json", cosmos_layout.metas_json(row, row.get("error"))
    return files


def _media_files(folder: str | None):
    def files(row):
        yield row["relative"], row["media"]
        if folder and row.get("embedding") is not None:
            yield f"{folder}/{row['clip_id']}.pickle", cosmos_layout.embedding_pickle(row["embedding"])
    return files


def _video_files(folder: str | None):
    def files(group: pd.DataFrame):
        video = group.iloc[0].to_dict()
        clips = group.dropna(subset=["clip_id"]).sort_values("start_frame")
        yield f"processed_videos/{cosmos_layout.relpath(video['source_path'])}.json", \
            cosmos_layout.processed_video(video, len(clips))
        if folder:
            embedded = clips.dropna(subset=["embedding"])
            size = cosmos_layout.CLIPS_PER_CHUNK
            for chunk, start in enumerate(range(0, len(embedded), size)):
                part = embedded.iloc[start:start + size]
                yield f"{folder}_parquet/{video['video_id']}_{chunk}.parquet", \
                    cosmos_layout.embeddings_parquet(list(part["clip_id"]), list(part["embedding"]))
    return files


def run(spark: SparkSession, args: argparse.Namespace) -> dict:
    started = datetime.now(timezone.utc)
    lake = Lake.from_args(args).open(spark, for_writing=False)
    if not tables.exists(spark, lake, "clips"):
        raise ValueError(f"{lake} holds no clips table: nothing to export")
    target = Target(normalize_location(args.to), S3Access(profile_name=args.to_s3_profile_name), lake.access)
    captions = tables.read_table(spark, lake, "captions", args.as_of_version)
    versions = args.annotation_version or sorted(r[0] for r in captions.select("annotation_version").distinct().collect())
    versions = versions or ["v0"]  # metas of uncaptioned clips still tell where each clip came from
    model = args.embedding_model
    if model or (tables.exists(spark, lake, "clip_embeddings") and tables.read_table(spark, lake, "clip_embeddings").head(1)):
        model = dedup.choose_model(spark, lake, model)  # as dedup picks it: the model with most embeddings
    folder = cosmos_layout.embedding_folder(model) if model else None

    counts = {}
    rows = {v: clip_rows(spark, lake, target, captions, v) for v in versions}
    for version, clips in rows.items():
        counts[f"metas/{version}"] = _sum(clips.mapInPandas(_per_row(target, _metas_files(version)), COUNTS))
    clips = rows[versions[0]]
    if model:
        vectors = tables.read_table(spark, lake, "clip_embeddings").where(F.col("model") == model)
        clips = clips.join(vectors.select("clip_id", "embedding"), "clip_id", "left")
    else:
        clips = clips.withColumn("embedding", F.lit(None).cast("array<float>"))
    counts["clips, pickles"] = _sum(clips.mapInPandas(_per_row(target, _media_files(folder)), COUNTS))
    videos = tables.read_table(spark, lake, "videos").where("status = 'ok'").join(
        clips.select("video_id", "clip_id", "start_frame", "embedding"), "video_id", "left")
    video_files = _video_files(folder)
    per_video = videos.groupBy("video_id").applyInPandas(lambda group: _count(target, video_files(group)), COUNTS)
    counts["processed_videos, parquet"] = _sum(per_video)
    counts["summary, captions"] = _write_summaries(spark, lake, target, rows, versions)
    counts["previews"] = _copy_previews(lake, target)

    print_table(["files", "written", "unchanged"], [[name, w, u] for name, (w, u) in counts.items()])
    print(f"exported {lake} to {target.root} (annotation versions {', '.join(versions)}; "
          f"embeddings {model or 'none'}) in {(datetime.now(timezone.utc) - started).total_seconds():.1f} s")
    return {"versions": versions, "embedding_model": model, "embedding_folder": folder,
            "written": sum(w for w, _ in counts.values()), "unchanged": sum(u for _, u in counts.values())}


def _write_summaries(spark: SparkSession, lake: Lake, target: Target, rows: dict, versions: list[str]) -> tuple[int, int]:
    """``summary.json`` from the lake's split runs and clips; ``{version}/all_window_captions.json``."""
    done = []
    runs = tables.read_table(spark, lake, "runs").where("pipeline = 'split'") if tables.exists(spark, lake, "runs") else None
    totals = runs.agg(F.sum("num_input_videos"), F.sum("pipeline_run_time_s")).first() if runs else (0, 0.0)
    videos = tables.read_table(spark, lake, "videos")
    clips = tables.read_table(spark, lake, "clips")
    duration = (F.col("end_s") - F.col("start_s"))
    clip_stats = clips.agg(F.sum(duration), F.max(duration), F.count(F.when(F.col("filtered_by") == "motion", 1)),
                           F.count(F.when(F.col("filtered_by") == "aesthetic", 1)),
                           F.count(F.when(F.col("filtered_by").isNull(), 1))).first()
    video_stats = videos.where("status = 'ok'").agg(F.count("*"), F.sum("duration_s"), F.sum("num_bytes")).first()
    summary = {
        "num_input_videos": int(totals[0] or video_stats[0] or 0), "num_processed_videos": int(video_stats[0] or 0),
        "total_video_duration": float(video_stats[1] or 0.0), "total_clip_duration": float(clip_stats[0] or 0.0),
        "max_clip_duration": float(clip_stats[1] or 0.0), "pipeline_run_time": float(totals[1] or 0.0) / 60,
        "total_video_bytes": int(video_stats[2] or 0),
        "total_num_clips_filtered_by_motion": int(clip_stats[2]), "total_num_clips_filtered_by_aesthetic": int(clip_stats[3]),
        "total_num_clips_passed": int(clip_stats[4]),
    }
    done.append(target.put("summary.json", json.dumps(summary, indent=4).encode()))
    for version in versions:
        captioned = rows[version].where(F.col("window_starts").isNotNull()).select(
            "source_path", "clip_id", "caption_model", "window_starts", "window_ends", "captions", "prompt_tokens",
            "output_tokens")
        by_video: dict = {}
        for row in captioned.toLocalIterator():
            record = row.asDict()
            by_video.setdefault(cosmos_layout.relpath(record["source_path"]), {})[record["clip_id"]] = \
                cosmos_layout.window_captions(record)
        done.append(target.put(f"{version}/all_window_captions.json", json.dumps(by_video, indent=4).encode()))
    return sum(done), len(done) - sum(done)


def _copy_previews(lake: Lake, target: Target) -> tuple[int, int]:
    """``media/previews/{clip_id}/{start}_{end}.webp`` -> ``previews/{clip_id}_{start}_{end}.webp``."""
    root = lake.media("previews")
    done = []
    for path, _, _ in storage.list_files(root, lake.access):
        clip_id, name = path[len(root):].strip("/").split("/", 1)
        done.append(target.copy(path, f"previews/{clip_id}_{name}"))
    return sum(done), len(done) - sum(done)


if __name__ == "__main__":  # spark-submit jobs/export_cosmos.py --output-path LAKE --to DIR
    import sys

    from jobs.cli import main

    sys.exit(main([PIPELINE, *sys.argv[1:]]))
