"""A `shards` manifest written before the crc32 column existed still resumes: its rows are checked by sha256."""

import pytest
from pyspark.sql import types as T

from curate_udfs.sharding.stage import ShardWriteConfig
from curate_udfs.sharding.tars import write_tar
from curate_udfs.sharding.text_encoder import TextEncoderConfig
from jobs import tables
from jobs.lake import Lake
from jobs.shard import ShardJobConfig, complete_groups

pytestmark = pytest.mark.slow

TAR = "v0/resolution_lt_720/aspect_ratio_4_3/duration_10_30/video/part_000000/000000.tar"
OLD_SHARDS = T.StructType([f for f in tables.SHARDS.fields if f.name != "crc32"])


def manifest_row(tar_path: str, written, **extra) -> dict:
    return {"tar_path": tar_path, "kind": "video", "annotation_version": "v0", "bin_dir": "", "part": 0, "tar": 0,
            "num_samples": written.num_samples, "num_bytes": written.num_bytes, "sha256": written.sha256,
            "inputs_sha256": "inputs", "keys": ["clip"], "clip_ids": ["clip"], "errors": [], "run_id": "old", **extra}


def test_older_manifest_resumes_by_sha256_and_gains_the_column(spark, tmp_path):
    lake, dataset = Lake.at(str(tmp_path / "lake")), str(tmp_path / "dataset")
    config = ShardJobConfig(lake=lake, dataset_root=dataset, annotation_version="v0", text_encoder=TextEncoderConfig(),
                            writer=ShardWriteConfig(dataset), target_tar_bytes=1, max_tars_per_part=1, tars_per_wave=0)
    written = write_tar(f"{dataset}/{TAR}", [("clip", "mp4", b"\1" * 5000)])
    old = [{**manifest_row(TAR, written), "dataset_path": dataset}]
    spark.createDataFrame(old, OLD_SHARDS).write.format("delta").save(tables.table_path(lake, "shards"))
    group = [{"group_key": TAR, "inputs_sha256": "inputs", "paths": [TAR]}]
    assert "crc32" not in tables.read_table(spark, lake, "shards").columns

    assert complete_groups(spark, config, group) == {TAR}
    with open(f"{dataset}/{TAR}", "r+b") as f:  # same size, other bytes: only the sha256 can tell
        f.seek(600)
        f.write(b"\0")
    assert complete_groups(spark, config, group) == set()

    # A newer run's rows add the column; the older row keeps a null crc32 and is still checked by sha256.
    other = write_tar(f"{dataset}/{TAR}.new", [("clip", "mp4", b"\2" * 5000)])
    newer = spark.createDataFrame([{**manifest_row(f"{TAR}.new", other, crc32="AAAAAA=="), "dataset_path": dataset}],
                                  tables.SHARDS)
    tables.merge_rows(spark, lake, "shards", newer)
    crc32s = {r.tar_path: r.crc32 for r in tables.read_table(spark, lake, "shards").collect()}
    assert crc32s == {TAR: None, f"{TAR}.new": "AAAAAA=="}
    write_tar(f"{dataset}/{TAR}", [("clip", "mp4", b"\1" * 5000)])
    assert complete_groups(spark, config, group) == {TAR}
