"""jobs.lake_rs: delta-rs writes a folder lake's tables as jobs.tables does (schema, keys, lake format), no JVM.

Spark reading and writing these tables is tested in tests/integration/test_dedup_job.py.
"""

import pandas as pd
import pyarrow as pa
import pytest
from deltalake import DeltaTable
from deltalake.exceptions import CommitFailedError

from jobs import lake_rs, tables
from jobs.lake import Lake


def dedup_rows(model: str, clips: list[str], run_id: str) -> pd.DataFrame:
    return pd.DataFrame({"clip_id": clips, "model": model, "cluster_id": range(len(clips)),
                         "cosine_dist_to_cent": 0.5, "max_id": clips[0], "cosine_sim_score": 0.25, "run_id": run_id})


def read(lake: Lake, name: str) -> list[tuple]:
    return sorted(DeltaTable(tables.table_path(lake, name)).to_pyarrow_table().to_pylist(), key=str)


def test_tables_get_sparks_schema_and_lake_format_and_keyed_writes(tmp_path):
    lake = Lake.at(str(tmp_path / "lake"))
    assert lake_rs.writable(lake, ["semantic_dedup", "runs"])  # absent tables
    lake_rs.replace_rows(lake, "semantic_dedup", dedup_rows("a", ["c1", "c2"], "r1"), "model = 'a'")
    lake_rs.replace_rows(lake, "semantic_dedup", dedup_rows("b", ["c1"], "r1"), "model = 'b'")
    lake_rs.replace_rows(lake, "semantic_dedup", dedup_rows("a", ["c3"], "r2"), "model = 'a'")  # a's slice only
    found = {(r["model"], r["clip_id"], r["run_id"]) for r in read(lake, "semantic_dedup")}
    assert found == {("a", "c3", "r2"), ("b", "c1", "r1")}
    table = DeltaTable(tables.table_path(lake, "semantic_dedup"))
    assert lake_rs._fields(table.schema().to_json()) == lake_rs._fields(tables.SEMANTIC_DEDUP.jsonValue())
    assert table.metadata().configuration[tables.LAKE_FORMAT_PROPERTY] == str(tables.LAKE_FORMAT)
    assert table.protocol().min_writer_version <= 2  # what Spark's createIfNotExists gives
    # MERGE on the keys (eps, run_id): a run's rows written twice are there once, with the second values.
    summary = pd.DataFrame({"eps": [0.01, 0.1], "run_id": "r1", "model": "a", "kept": [9, 8], "removed": [1, 2],
                            "total": 10})
    lake_rs.merge_rows(lake, "dedup_summary", summary)
    lake_rs.merge_rows(lake, "dedup_summary", summary.assign(kept=[7, 6]))
    assert [(r["eps"], r["kept"]) for r in read(lake, "dedup_summary")] == [(0.01, 7), (0.1, 6)]
    assert lake_rs.writable(lake, ["semantic_dedup", "dedup_summary"])


def test_tables_it_cannot_write_as_spark_would_are_left_to_spark(tmp_path):
    lake = Lake.at(str(tmp_path / "lake"))
    older = pa.schema([f for f in lake_rs.arrow_schema("runs") if f.name != "num_commit_retries"])
    DeltaTable.create(tables.table_path(lake, "runs"), older, configuration={tables.LAKE_FORMAT_PROPERTY: "1"},
                      raise_if_key_not_exists=False)  # (an older schema: Spark's schema evolution adds the column)
    assert not lake_rs.writable(lake, ["runs"]) and lake_rs.writable(lake, ["semantic_dedup"])
    newer = Lake.at(str(tmp_path / "newer"))
    lake_rs.ensure_table(newer, "runs")
    DeltaTable(tables.table_path(newer, "runs")).alter.set_table_properties({tables.LAKE_FORMAT_PROPERTY: "2"},
                                                                            raise_if_not_exists=False)
    assert not lake_rs.writable(newer, ["runs"])  # a newer cliplake's lake: Spark says so in one sentence
    assert not lake_rs.writable(Lake.at("s3://bucket/lake"), ["runs"])
    assert not lake_rs.writable(Lake.at(str(tmp_path), catalog="c", schema="s"), ["runs"])


def test_a_conflicting_delta_rs_commit_is_tried_again():
    attempts = []

    def commit():
        attempts.append(1)
        if len(attempts) == 1:
            raise CommitFailedError("a concurrent transaction deleted the same data")
        return "done"

    before = tables.commit_retries()
    assert tables.committed("MERGE into runs", commit) == "done"
    assert len(attempts) == 2 and tables.commit_retries() == before + 1


def test_small_commits_into_a_folder_lake_are_taken_and_checkpointed(tmp_path, monkeypatch):
    lake = Lake.at(str(tmp_path / "lake"))
    assert lake_rs.known_empty(lake, "runs")  # absent
    lake_rs.ensure_table(lake, "runs")
    assert lake_rs.known_empty(lake, "runs") and lake_rs.takes(lake, ["runs"], 1)
    for i in range(10):
        lake_rs.merge_rows(lake, "runs", pd.DataFrame([{"run_id": f"r{i}", "pipeline": "split", "num_clips": i}]))
    assert not lake_rs.known_empty(lake, "runs")
    log = tmp_path / "lake" / "runs" / "_delta_log"
    assert (log / f"{10:020d}.checkpoint.parquet").exists()  # version 10, as Delta Spark's interval
    for version in range(10):  # the checkpoint carries the table (Delta keeps its own version's commit)
        (log / f"{version:020d}.json").unlink()
    assert [r["num_clips"] for r in sorted(read(lake, "runs"), key=lambda r: r["run_id"])] == list(range(10))
    assert lake_rs.takes(lake, ["runs"], 20_000) and not lake_rs.takes(lake, ["runs"], 20_001)  # a big commit: Spark's
    monkeypatch.setenv(lake_rs.ROWS_ENV, "5")
    assert lake_rs.takes(lake, ["runs"], 5) and not lake_rs.takes(lake, ["runs"], 6)
    monkeypatch.setenv(lake_rs.TABLE_MB_ENV, "0")
    assert not lake_rs.takes(lake, ["runs"], 1) and lake_rs.takes(lake, ["shards"], 1)  # a table with data over 0 MB: Spark's
    s3 = Lake.at("s3://bucket/lake")
    assert not lake_rs.takes(s3, ["shards"], 1) and not lake_rs.known_empty(s3, "runs")
    monkeypatch.setenv(lake_rs.ROWS_ENV, "many")
    with pytest.raises(ValueError, match="CLIPLAKE_DRIVER_COMMIT_ROWS must be a whole number"):
        lake_rs.takes(lake, ["runs"], 1)


def test_update_columns_sets_only_the_given_columns_of_existing_keys(tmp_path):
    lake = Lake.at(str(tmp_path / "lake"))
    lake_rs.merge_rows(lake, "runs", pd.DataFrame([{"run_id": "r1", "pipeline": "split", "num_clips": 5}]))
    lake_rs.update_columns(lake, "runs", pd.DataFrame({"run_id": ["r1", "absent"], "status": ["done", "done"]}))
    assert [(r["run_id"], r["pipeline"], r["num_clips"], r["status"]) for r in read(lake, "runs")] == [("r1", "split", 5, "done")]
