"""What the report reads from a lake, as Spark queries: only aggregates and bounded lists reach the
driver, and the per-clip and per-video rows come back one partition at a time (``toLocalIterator``)."""

from typing import Iterator

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs import tables
from jobs.lake import Lake
from jobs.shard import _bin_columns as shard_bins  # the bins a shard dataset files clips under

HISTOGRAM_BINS = 20
SCORES = {"motion": "motion_global_mean", "aesthetic": "aesthetic_score", "text": "artificial_text_score"}
DEFAULT_EPS = 0.01
VIDEO_ERROR = "status = 'error' OR error IS NOT NULL"


class LakeQueries:
    """The lake's tables (those present) and the report's queries over them.

    Example::

        q = LakeQueries(spark, Lake.at("demo/lake"))
        q.histograms(q.clips, {"duration": F.col("end_s") - F.col("start_s")})  # {"duration": {"edges", "counts"}}
    """

    def __init__(self, spark: SparkSession, lake: Lake, eps: float | None = None):
        self.spark, self.lake = spark, lake
        self._present = tables.delta_tables_under(spark, lake)  # one listing, not a check per table
        self.clips = self._table("clips")
        if self.clips is None:
            raise ValueError(f"no clips table in {lake}: run `cliplake split --output-path {lake.root} ...` first")
        self.videos, self.captions, self.runs = self._table("videos"), self._table("captions"), self._table("runs")
        self.dedup_model, self.eps, self.dedup = self._dedup(eps)
        self._versions: list[str] | None = None

    def _table(self, name: str) -> DataFrame | None:
        return tables.read_table(self.spark, self.lake, name) if name in self._present else None

    def _dedup(self, eps: float | None) -> tuple[str | None, float | None, DataFrame | None]:
        """The dedup results of the model with most rows (as ``shard`` picks it) and the smallest eps it was run with."""
        rows = self._table("semantic_dedup")
        if rows is None:
            return None, None, None
        top = rows.groupBy("model").count().orderBy(F.desc("count"), "model").first()
        if top is None:
            return None, None, None
        if eps is None:
            summary = self._table("dedup_summary")
            found = summary.where(F.col("model") == top.model).agg(F.min("eps")).first()[0] if summary is not None else None
            eps = found if found is not None else DEFAULT_EPS
        return top.model, eps, rows.where(F.col("model") == top.model)

    # -- counts and plots ---------------------------------------------------------------------------------

    def histograms(self, frame: DataFrame, numeric: dict, categories: dict | None = None, bins: int = HISTOGRAM_BINS) -> dict:
        """Equal-width histograms of ``numeric`` and value counts of ``categories`` ({name: column}) over
        ``frame``, in two Spark jobs whatever their number: {name: {"edges", "counts"} or [(value, count)]}.
        Names without values are left out."""
        categories = categories or {}
        stats = frame.select(*[F.struct(F.min(v).alias("lo"), F.max(v).alias("hi"), F.count(v).alias("n")).alias(name)
                               for name, v in numeric.items()]).first() if numeric else {}
        edges, keys = {}, []
        for name, value in numeric.items():
            lo, hi, n = stats[name]
            if not n:
                continue
            width = (hi - lo) / bins or 1.0
            edges[name] = [lo + i * width for i in range(bins + 1)]
            index = F.least(F.floor((value - F.lit(lo)) / F.lit(width)), F.lit(bins - 1)).cast("int").cast("string")
            keys.append(F.struct(F.lit(name).alias("name"), index.alias("key")))
        keys += [F.struct(F.lit(name).alias("name"), column.cast("string").alias("key")) for name, column in categories.items()]
        if not keys:
            return {}
        counted = (frame.select(F.explode(F.array(*keys)).alias("k")).where("k.key IS NOT NULL")
                   .groupBy("k.name", "k.key").count().collect())
        found: dict[str, dict] = {}
        for row in counted:
            found.setdefault(row["name"], {})[row["key"]] = row["count"]
        out = {}
        for name in numeric:
            if name in edges:
                got = found.get(name, {})
                out[name] = {"edges": edges[name], "counts": [got.get(str(i), 0) for i in range(bins)]}
        for name in categories:
            if name in found:
                out[name] = sorted(found[name].items(), key=lambda kv: (-kv[1], kv[0]))[:50]
        return out

    def plots(self) -> list[dict]:
        """Every plot of the report, in page order: {"title", "kind" (histogram | bars), "data"}."""
        resolution, aspect, _ = shard_bins()
        sized = (F.col("width") > 0) & (F.col("height") > 0)
        numeric = {"clip duration (s)": F.col("end_s") - F.col("start_s"),
                   **{f"{name} score ({column})": F.col(column) for name, column in SCORES.items()}}
        categories = {"resolution (short side)": F.when(sized, resolution),
                      "aspect ratio (W/H)": F.when(sized, F.coalesce(aspect, F.lit("beyond 10:1"))),
                      "filter marks": F.coalesce("filtered_by", F.lit("(kept)"))}
        found = self.histograms(self.clips, numeric, categories)
        found.update(self.histograms(self.clips.groupBy("video_id").count(), {"clips per video": F.col("count")}))
        if self.captions is not None:
            words = F.size(F.split(F.trim("caption"), r"\s+"))
            by_version = {f"caption length, words ({v})": F.when(F.col("annotation_version") == v, words)
                          for v in self.annotation_versions()}
            found.update(self.histograms(self.captions, by_version))
        order = [*numeric, "clips per video", *categories, *[n for n in found if n.startswith("caption length")]]
        return [{"title": name, "kind": "bars" if isinstance(found[name], list) else "histogram", "data": found[name]}
                for name in order if name in found]

    def annotation_versions(self) -> list[str]:
        if self._versions is None:
            found = [] if self.captions is None else self.captions.select("annotation_version").distinct().collect()
            self._versions = sorted(r[0] for r in found)
        return self._versions

    def counts(self) -> dict:
        """Totals for the page's header."""
        row = self.clips.agg(F.count("*").alias("clips"), F.count("filtered_by").alias("filtered"),
                             F.count("error").alias("clip_errors"), F.sum(F.col("end_s") - F.col("start_s")).alias("clip_s")).first()
        counts = row.asDict()
        if self.videos is not None:
            v = self.videos.agg(F.count("*").alias("videos"), F.count(F.when(F.expr(VIDEO_ERROR), 1)).alias("video_errors")).first()
            counts.update(v.asDict())
        if self.dedup is not None:
            counts["duplicates"] = self.dedup.where(F.col("cosine_sim_score") >= 1 - self.eps).count()
        return counts

    # -- lists (bounded) ------------------------------------------------------------------------------------

    def run_history(self, limit: int) -> list[dict]:
        if self.runs is None:
            return []
        columns = ["run_id", "pipeline", "status", "started_at", "pipeline_run_time_s", "num_input_videos",
                   "num_processed_videos", "num_error_videos", "num_clips", "num_captioned_clips",
                   "num_annotation_errors", "num_shard_samples", "arguments"]
        rows = self.runs.select(*[c for c in columns if c in self.runs.columns]).orderBy(F.desc("started_at")).limit(limit)
        return [r.asDict() for r in rows.collect()]

    def errors(self, limit: int, counts: dict) -> dict:
        """The first ``limit`` videos and clips with an error (by path), with their totals from :meth:`counts`."""
        out = {}
        if self.videos is not None:
            rows = self.videos.where(VIDEO_ERROR).select("source_path", "error").orderBy("source_path").limit(limit)
            out["videos"] = {"total": counts["video_errors"], "rows": [r.asDict() for r in rows.collect()]}
        rows = self.clips.where("error IS NOT NULL").select("clip_id", "source_path", "start_s", "end_s", "error")
        out["clips"] = {"total": counts["clip_errors"],
                        "rows": [r.asDict() for r in rows.orderBy("source_path", "start_s").limit(limit).collect()]}
        return out

    # -- paged rows -----------------------------------------------------------------------------------------

    def gallery(self) -> DataFrame:
        """One row per clip: the clip's columns, captions by annotation version (window order), the first
        window (its preview's name) and the clip's dedup result."""
        clips = self.clips.select("clip_id", "video_id", "source_path", "start_frame", "start_s", "end_s", "num_frames",
                                  "width", "height", "fps", "location", *SCORES.values(), "filtered_by", "error")
        if self.captions is not None:
            windows = (self.captions.groupBy("clip_id", "annotation_version")
                       .agg(F.sort_array(F.collect_list(F.struct("window_index", "caption"))).alias("w"))
                       .groupBy("clip_id")
                       .agg(F.map_from_entries(F.collect_list(F.struct("annotation_version", F.col("w.caption")))).alias("captions")))
            first = self.captions.groupBy("clip_id").agg(F.min(F.struct("start_frame", "end_frame")).alias("first_window"))
            clips = clips.join(windows, "clip_id", "left").join(first, "clip_id", "left")
        if self.dedup is not None:
            clips = clips.join(self.dedup.select("clip_id", "cluster_id", "cosine_sim_score", "max_id"), "clip_id", "left")
        return clips

    def gallery_rows(self) -> Iterator:
        """The gallery in video and time order, one partition on the driver at a time."""
        return self.gallery().orderBy("source_path", "start_frame").toLocalIterator()

    def timelines(self) -> Iterator:
        """One row per video (those in ``videos``, else those clips name) with its clips' spans in time order."""
        span = F.struct("start_s", "end_s", "filtered_by", F.col("error").isNotNull().alias("failed"))
        spans = self.clips.groupBy("video_id").agg(F.sort_array(F.collect_list(span)).alias("spans"),
                                                   F.first("source_path").alias("clip_source"))
        if self.videos is None:
            videos = spans.select(F.col("clip_source").alias("source_path"), F.lit(None).cast("double").alias("duration_s"),
                                  F.lit("ok").alias("status"), F.lit(None).cast("string").alias("error"), "spans")
        else:
            videos = (self.videos.select("video_id", "source_path", "duration_s", "status", "error")
                      .join(spans.drop("clip_source"), "video_id", "left"))
        return videos.orderBy("source_path").toLocalIterator()

    def duplicate_groups(self, limit: int, members: int = 8) -> list[dict]:
        """The largest near-duplicate groups at eps: a kept clip and the clips whose nearest earlier clip it is."""
        if self.dedup is None:
            return []
        dups = self.dedup.where(F.col("cosine_sim_score") >= 1 - self.eps)
        # Most similar first; a group of thousands brings only its first ``members`` back.
        member = F.struct((-F.col("cosine_sim_score")).alias("rank"), "clip_id", "cosine_sim_score")
        groups = (dups.groupBy("max_id").agg(F.count("*").alias("n"),
                                             F.slice(F.sort_array(F.collect_list(member)), 1, members).alias("m"))
                  .orderBy(F.desc("n"), "max_id").limit(limit).collect())
        return [{"keep": g.max_id, "size": g.n + 1, "duplicates": [{"id": m.clip_id, "sim": m.cosine_sim_score} for m in g.m]}
                for g in groups]

    def gallery_of(self, clip_ids: list[str]) -> list:
        """Gallery rows of a few clips (those of the duplicate groups)."""
        if not clip_ids:
            return []
        wanted = self.spark.createDataFrame([(c,) for c in sorted(set(clip_ids))], "clip_id string")
        return self.gallery().join(F.broadcast(wanted), "clip_id", "left_semi").collect()
