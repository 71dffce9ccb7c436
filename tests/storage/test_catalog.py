"""--catalog/--schema: managed tables by name (Spark's built-in catalog here, Unity Catalog on Databricks)."""

import json
import os
import shutil

import pytest

from curate_udfs.testing.synthetic import write_video
from jobs import tables
from jobs.cli import run_command
from jobs.lake import Lake
from tests.integration.test_shard_job import read_bins

pytestmark = pytest.mark.slow


@pytest.fixture
def schema(spark, tmp_path):
    """A schema whose managed tables live in tmp_path (not in a spark-warehouse folder of the working directory)."""
    spark.sql(f"CREATE SCHEMA spark_catalog.curated_test LOCATION '{tmp_path / 'warehouse'}'")
    yield "curated_test"
    spark.sql("DROP SCHEMA spark_catalog.curated_test CASCADE")


def test_split_writes_managed_tables_by_name(spark, schema, tmp_path, samples, capsys):
    media = tmp_path / "media-root"
    summary = run_command(["split", "--input-video-path", str(samples["bikes.mp4"]), "--output-path", str(media),
                           "--catalog", "spark_catalog", "--schema", schema, "--no-generate-captions"])
    assert (summary["num_clips"], summary["num_embedded_clips"]) == (2, 2)
    assert {t.name for t in spark.catalog.listTables(f"spark_catalog.{schema}")} == set(tables.TABLES)
    for name in tables.TABLES:
        assert spark.sql(f"DESCRIBE DETAIL spark_catalog.{schema}.{name}").first().format == "delta"
    clips = spark.table(f"spark_catalog.{schema}.clips").collect()
    assert sorted((c.start_frame, c.end_frame) for c in clips) == [(76, 136), (187, 241)]  # bikes' two shots
    for clip in clips:
        assert clip.location == str(media / "media" / "clips" / f"{clip.clip_id}.mp4") and os.path.isfile(clip.location)
    assert os.listdir(media) == ["media"]  # tables are not folders under --output-path
    assert f"--catalog spark_catalog --schema {schema}" in capsys.readouterr().out

    again = run_command(["split", "--input-video-path", str(samples["bikes.mp4"]), "--output-path", str(media),
                         "--catalog", "spark_catalog", "--schema", schema, "--no-generate-captions"])
    assert again["num_skipped_videos"] == 1
    rows = run_command(["sql", "--output-path", str(media), "--catalog", "spark_catalog", "--schema", schema,
                        "SELECT count(*) AS clips FROM clips"])
    assert rows[0].clips == 2
    assert spark.table(f"spark_catalog.{schema}.runs").count() == 2


def test_catalog_and_schema_come_together(tmp_path):
    with pytest.raises(ValueError, match="together"):
        Lake.at(str(tmp_path), catalog="main")
    with pytest.raises(ValueError, match="letters, digits"):
        Lake.at(str(tmp_path), catalog="main", schema="a;drop")
    assert Lake.at(str(tmp_path), "main", "curated").table("clips").name == "`main`.`curated`.`clips`"
    assert Lake.at("s3a://bucket/lake/").table("clips").path == "s3://bucket/lake/clips"
    with pytest.raises(ValueError, match="s3://bucket/prefix"):
        Lake.at("gs://bucket/lake")


def test_dedup_and_shard_read_and_write_catalog_tables(spark, schema, tmp_path, tiny_models):
    """split (captioned), dedup, shard and caption on catalog.schema names, as the Databricks job runs them."""
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    write_video(str(inputs / "pan.mp4"), [330], width=384, height=256, fps=24, speed=4.0)
    shutil.copy(inputs / "pan.mp4", inputs / "dup.mp4")
    media, names = tmp_path / "media-root", f"spark_catalog.{schema}"
    lake = ["--catalog", "spark_catalog", "--schema", schema]
    run_command(["split", "--input-video-path", str(inputs), "--output-path", str(media), *lake, "--splitting-algorithm",
                 "fixed-stride", "--fixed-stride-split-duration", "60", "--captioning-model", tiny_models["vlm"],
                 "--captioning-window-size", "128", "--captioning-max-output-tokens", "6"])
    dedup = run_command(["dedup", "--output-path", str(media), *lake, "--n-clusters", "1", "--eps-to-extract", "0.01"])
    assert [(s["eps"], s["removed"]) for s in dedup["summary"]] == [(0.01, 1)]
    (duplicate,) = [r.clip_id for r in spark.table(f"{names}.semantic_dedup").where("cosine_sim_score >= 0.99").collect()]

    captioned = spark.sql(f"DESCRIBE HISTORY {names}.captions").agg({"version": "max"}).first()[0]
    original = {(r.clip_id, r.start_frame): r.caption for r in spark.table(f"{names}.captions").collect()}
    spark.sql(f"UPDATE {names}.captions SET caption = 'rewritten'")
    before = run_command(["sql", "--output-path", str(media), *lake,  # as README shows: time travel by the table's name
                          f"SELECT clip_id, start_frame, caption FROM {names}.captions VERSION AS OF {captioned}"])
    assert {(r.clip_id, r.start_frame): r.caption for r in before} == original != {}

    def shard(out, *extra):
        return run_command(["shard", "--input-clip-path", str(media), *lake, "--input-semantic-dedup-path", str(media),
                            "--output-dataset-path", str(out), "--text-encoder-model", tiny_models["t5"],
                            "--target-tar-size-mb", "0.01", *extra])

    old = shard(tmp_path / "as-of", "--captions-as-of-version", str(captioned))
    shard(tmp_path / "latest")
    assert old["num_deduplicated_clips"] == 1 and old["num_shard_samples"] == 1  # one clip, three 128-frame windows
    as_of = {k: json.loads(m["metas"]) for s in read_bins(tmp_path / "as-of").values() for k, m in s.items()}
    latest = {k: json.loads(m["metas"]) for s in read_bins(tmp_path / "latest").values() for k, m in s.items()}
    assert as_of.keys() == latest.keys() and len(as_of) == 1 and duplicate not in as_of
    assert {w["qwen2p5_7b_caption"] for m in latest.values() for w in m["t2w_windows"]} == {"rewritten"}
    assert [(k, w["start_frame"], w["qwen2p5_7b_caption"]) for k, m in as_of.items() for w in m["t2w_windows"]] == \
        [(k, start, original[(k, start)]) for k in as_of for start in (0, 128, 256)]

    manifest = spark.table(f"{names}.shards").collect()
    assert {r.dataset_path for r in manifest} == {str(tmp_path / "as-of"), str(tmp_path / "latest")}
    runs = spark.table(f"{names}.runs").where("pipeline = 'shard'").orderBy("started_at").collect()
    assert [json.loads(r.input_table_versions)["captions"] for r in runs] == [captioned, captioned + 1]
    assert not (media / "shards").exists() and os.listdir(media) == ["media"]  # tables are not folders

    run_command(["caption", "--output-path", str(media), *lake, "--annotation-version", "v1", "--captioning-model",
                 tiny_models["vlm"], "--captioning-window-size", "128", "--captioning-max-output-tokens", "6"])
    counts = dict(spark.table(f"{names}.captions").groupBy("annotation_version").count().collect())
    assert counts == {"v0": 6, "v1": 6}  # two clips of three windows, each version
