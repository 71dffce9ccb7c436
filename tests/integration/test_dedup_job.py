"""The dedup job on real Spark and Delta, over clip_embeddings rows written here with known duplicates."""

import os

import numpy as np
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from delta.tables import DeltaTable

from curate_udfs.testing.embeddings import clustered_embeddings
from jobs import tables
from jobs.cli import run_command

pytestmark = pytest.mark.slow
MODEL, DIM, CLUSTERS = "tiny-embed", 64, 3


def write_embeddings(spark, lake, model, vectors, ids):
    rows = [(clip, model, v.tolist(), len(v), "test") for clip, v in zip(ids, vectors)]
    tables.merge_rows(spark, lake, "clip_embeddings", spark.createDataFrame(rows, tables.CLIP_EMBEDDINGS))


def dedup(lake, *args):
    """The Spark MLlib path (the driver path is compared with it in test_driver_backend_gives_the_same_rows)."""
    return run_command(["dedup", "--output-path", str(lake), "--n-clusters", str(CLUSTERS), "--kmeans-backend", "spark",
                        *map(str, args)])


def dedup_rows(spark, lake, model=MODEL):
    return {r.clip_id: r for r in tables.read_table(spark, lake, "semantic_dedup").where(f"model = '{model}'").collect()}


def removed(rows, eps=0.01):
    return {c for c, r in rows.items() if r.cosine_sim_score >= 1 - eps}


@pytest.fixture(scope="module")
def data():
    return clustered_embeddings(600, dim=DIM, clusters=CLUSTERS, copy_fraction=0.1, seed=11)


@pytest.fixture(scope="module")
def ids(data):
    return [f"clip-{i:04d}" for i in range(len(data.vectors))]


@pytest.fixture(scope="module")
def lake(spark, tmp_path_factory, data, ids):
    lake = tmp_path_factory.mktemp("lake")
    write_embeddings(spark, lake, MODEL, data.vectors, ids)
    write_embeddings(spark, lake, "small-model", data.vectors[:50, :16], ids[:50])  # fewer rows: not the default
    return lake


@pytest.fixture(scope="module")
def first_run(lake, tmp_path_factory):
    layout = tmp_path_factory.mktemp("cosmos")
    outcome = dedup(lake, "--eps-to-extract", 0.01, 0.1, "--export-cosmos-layout", layout, "--semdedup-tile-size", 64)
    return outcome, layout


def test_planted_copies_found_one_of_each_pair_kept(spark, lake, data, ids, first_run):
    outcome, _ = first_run
    assert outcome["model"] == MODEL and outcome["kmeans_backend"] == "spark" and outcome["num_clips"] == 600
    rows = dedup_rows(spark, lake)
    assert set(rows) == set(ids)
    pairs = [(ids[i], ids[j]) for i, j in enumerate(data.copy_of) if j >= 0]
    gone = removed(rows)
    assert len(gone) == len(pairs) == 60
    for copy, original in pairs:
        assert (copy in gone) != (original in gone)
        loser = copy if copy in gone else original
        assert rows[loser].max_id == (original if loser == copy else copy)
        assert rows[copy].cluster_id == rows[original].cluster_id
    # Originals of the well-separated clusters are all kept, and each planted cluster is one k-means cluster.
    originals = [ids[i] for i in range(600) if data.copy_of[i] < 0 and not any(ids[i] == p[1] for p in pairs)]
    assert not gone & set(originals)
    for planted in range(CLUSTERS):
        assert len({rows[ids[i]].cluster_id for i in np.flatnonzero(data.cluster == planted)}) == 1


def test_summary_centroids_and_runs_tables(spark, lake, first_run):
    outcome, _ = first_run
    run_id = outcome["run_id"]
    summary = {r.eps: r for r in tables.read_table(spark, lake, "dedup_summary").where(f"run_id = '{run_id}'").collect()}
    assert set(summary) == {0.01, 0.1}
    assert (summary[0.01].kept, summary[0.01].removed, summary[0.01].total) == (540, 60, 600)
    assert summary[0.1].removed >= summary[0.01].removed and summary[0.1].model == MODEL
    centroids = tables.read_table(spark, lake, "dedup_centroids").where(f"model = '{MODEL}'").collect()
    assert sorted(c.cluster_id for c in centroids) == [0, 1, 2] and sum(c.size for c in centroids) == 600
    assert all(len(c.centroid) == DIM for c in centroids)
    run = tables.read_table(spark, lake, "runs").where(f"run_id = '{run_id}'").first()
    assert run.pipeline == "dedup" and run.num_clips == 600 and run.pipeline_run_time_s > 0


def test_cosmos_layout_has_the_documented_files_and_columns(spark, lake, first_run):
    outcome, layout = first_run
    centroids = np.load(layout / "clustering_results" / "kmeans_centroids.npy")
    assert centroids.shape == (CLUSTERS, DIM) and centroids.dtype == np.float32
    by_center = ds.dataset(layout / "clustering_results" / "embs_by_nearest_center", format="parquet").to_table()
    assert by_center.column_names == ["id", "embedding", "cosine_dist_to_cent"] and by_center.num_rows == 600
    assert sorted(d.name for d in (layout / "clustering_results" / "embs_by_nearest_center").iterdir()) == \
        [f"nearest_cent_{c}" for c in range(CLUSTERS)]
    assert all(os.listdir(layout / "clustering_results" / "embs_by_nearest_center" / f"nearest_cent_{c}") == ["actor_0.parquet"]
               for c in range(CLUSTERS))
    rows = dedup_rows(spark, lake)
    total = 0
    for c in range(CLUSTERS):
        table = pq.read_table(layout / "extraction" / "semdedup_pruning_tables" / f"cluster_{c}.parquet")
        assert table.column_names == ["id", "max_id", "cosine_sim_score"]
        assert all(rows[i].cluster_id == c for i in table.column("id").to_pylist())
        total += table.num_rows
    assert total == 600
    assert (layout / "extraction" / "dedup_summary_0.01.csv").read_text() == "eps,kept,removed,total\n0.01,540,60,600\n"
    assert (layout / "extraction" / "dedup_summary_0.1.csv").read_text().startswith("eps,kept,removed,total\n0.1,")
    kept = set(pq.read_table(layout / "extraction" / "unique_ids_0.01.parquet").column("id").to_pylist())
    assert kept == {i for i, r in rows.items() if r.cosine_sim_score < 1 - 0.01} and len(kept) == 540


def test_same_seed_gives_identical_results(spark, lake, first_run):
    before = {c: (r.cluster_id, r.cosine_dist_to_cent, r.max_id, r.cosine_sim_score) for c, r in dedup_rows(spark, lake).items()}
    dedup(lake, "--eps-to-extract", 0.01, 0.1, "--semdedup-tile-size", 64)
    after = {c: (r.cluster_id, r.cosine_dist_to_cent, r.max_id, r.cosine_sim_score) for c, r in dedup_rows(spark, lake).items()}
    assert after == before


def test_rerun_after_clips_change_leaves_no_stale_rows(spark, tmp_path, data, ids):
    lake = tmp_path / "lake"
    write_embeddings(spark, lake, MODEL, data.vectors[:400], ids[:400])
    write_embeddings(spark, lake, "other", data.vectors[:30, :8], ids[:30])
    dedup(lake, "--embedding-model", "other", "--n-clusters", 2)
    other_before = {c: r.asDict() for c, r in dedup_rows(spark, lake, "other").items()}
    dedup(lake)
    assert set(dedup_rows(spark, lake)) == set(ids[:400])
    # 100 clips vanish, 200 arrive (their copies among them): the model's rows are exactly the new set.
    DeltaTable.forPath(spark, tables.table_path(str(lake), "clip_embeddings")).delete(
        f"model = '{MODEL}' AND clip_id < '{ids[100]}'")
    write_embeddings(spark, lake, MODEL, data.vectors[400:], ids[400:])
    dedup(lake)
    rows = dedup_rows(spark, lake)
    assert set(rows) == set(ids[100:])
    present = set(ids[100:])
    pairs = [(ids[i], ids[j]) for i, j in enumerate(data.copy_of) if j >= 0 and {ids[i], ids[j]} <= present]
    assert len(removed(rows)) == len(pairs) and all(len({a, b} & removed(rows)) == 1 for a, b in pairs)
    assert {c: r.asDict() for c, r in dedup_rows(spark, lake, "other").items()} == other_before
    assert tables.read_table(spark, lake, "dedup_centroids").where("model = 'other'").count() == 2


def test_wrong_options_fail_before_any_work(spark, tmp_path, lake, capsys):
    cases = [
        (["--kmeans-backend", "rapids"], "spark-rapids-ml"),
        (["--n-clusters", "0"], "--n-clusters must be >= 1"),
        (["--eps-to-extract", "1.5"], "eps must be in [0, 1)"),
        (["--sim-metric", "cosine", "--which-to-keep", "hard", "--embedding-model", "nope"], "no embeddings for model 'nope'"),
        (["--n-clusters", "1000"], "more than the 600 embeddings"),
    ]
    for extra, message in cases:
        with pytest.raises(SystemExit) as exit_info:
            run_command(["dedup", "--output-path", str(lake), *extra])
        assert exit_info.value.code == 2
        assert message in capsys.readouterr().err
    with pytest.raises(SystemExit):
        run_command(["dedup", "--output-path", str(tmp_path / "empty")])
    assert "no clip_embeddings table" in capsys.readouterr().err


def test_one_cluster_is_the_mean_and_random_keeps_one_of_each_pair(spark, tmp_path, data, ids):
    lake = tmp_path / "one"
    write_embeddings(spark, lake, MODEL, data.vectors[:200], ids[:200])
    run_command(["dedup", "--output-path", str(lake), "--n-clusters", "1", "--which-to-keep", "random"])
    (centroid,) = tables.read_table(spark, lake, "dedup_centroids").collect()
    np.testing.assert_allclose(centroid.centroid, data.vectors[:200].mean(axis=0), atol=1e-5)
    rows = dedup_rows(spark, lake)
    pairs = [(ids[i], ids[j]) for i, j in enumerate(data.copy_of[:200]) if 0 <= j < 200]
    assert pairs and len(removed(rows)) == len(pairs) and all(len({a, b} & removed(rows)) == 1 for a, b in pairs)


def test_embeddings_read_from_another_lake(spark, tmp_path, data, ids):
    source, results = tmp_path / "source", tmp_path / "results"
    write_embeddings(spark, source, MODEL, data.vectors[:200], ids[:200])
    outcome = run_command(["dedup", "--output-path", str(results), "--input-embeddings-path", str(source), "--n-clusters", "1"])
    assert outcome["num_clips"] == 200 and set(dedup_rows(spark, results)) == set(ids[:200])
    assert not tables.exists(spark, source, "semantic_dedup") and not tables.exists(spark, results, "clip_embeddings")


def test_mixed_embedding_lengths_are_refused(spark, tmp_path, data, ids, capsys):
    lake = tmp_path / "mixed"
    write_embeddings(spark, lake, MODEL, data.vectors[:20], ids[:20])
    write_embeddings(spark, lake, MODEL, data.vectors[20:40, :32], ids[20:40])
    with pytest.raises(SystemExit):
        dedup(lake)
    assert "different lengths (32 to 64)" in capsys.readouterr().err


def lake_state(spark, lake):
    """Every file under the lake (path, size) and each table's latest Delta version."""
    files = {(os.path.relpath(os.path.join(d, n), lake), os.path.getsize(os.path.join(d, n)))
             for d, _, names in os.walk(lake) for n in names}
    versions = {t: tables.latest_version(spark, lake, t) for t in sorted(os.listdir(lake)) if tables.exists(spark, lake, t)}
    return files, versions


def test_driver_backend_gives_the_same_rows(spark, lake, first_run, tmp_path):
    """auto runs a small input in the driver (scikit-learn k-means, numpy search): MLlib's rows, cluster numbers aside."""
    out = tmp_path / "driver"
    outcome = run_command(["dedup", "--output-path", str(out), "--input-embeddings-path", str(lake), "--n-clusters",
                           str(CLUSTERS), "--eps-to-extract", "0.01", "0.1", "--semdedup-tile-size", "64"])
    # A folder lake and a small input: delta-rs reads and writes, no JVM is started.
    assert (outcome["kmeans_backend"], outcome["read_by"], outcome["written_by"]) == ("driver", "delta-rs", "delta-rs")
    on_spark, in_driver = dedup_rows(spark, lake), dedup_rows(spark, out)
    assert set(in_driver) == set(on_spark)
    renumbered = {on_spark[c].cluster_id: r.cluster_id for c, r in in_driver.items()}
    assert len(renumbered) == len(set(renumbered.values())) == CLUSTERS  # the same partition
    for clip, row in in_driver.items():
        expected = on_spark[clip]
        assert (row.cluster_id, row.max_id) == (renumbered[expected.cluster_id], expected.max_id), clip
        assert row.cosine_sim_score == pytest.approx(expected.cosine_sim_score, abs=1e-6)
        assert row.cosine_dist_to_cent == pytest.approx(expected.cosine_dist_to_cent, abs=1e-3)
    summary = lambda lk: {(r.eps, r.kept, r.removed) for r in tables.read_table(spark, lk, "dedup_summary").collect()}  # noqa: E731
    assert summary(out) == summary(lake)  # (the lake has a row per eps and run: the runs agree)
    centroids = tables.read_table(spark, out, "dedup_centroids").collect()
    assert sorted(r.size for r in centroids) == sorted(
        sum(1 for r in on_spark.values() if r.cluster_id == c) for c in renumbered)
    # Spark writes over delta-rs's tables as over its own: an MLlib run into the same lake gives the lake's rows.
    again = run_command(["dedup", "--output-path", str(out), "--input-embeddings-path", str(lake), "--n-clusters",
                         str(CLUSTERS), "--eps-to-extract", "0.01", "0.1", "--semdedup-tile-size", "64",
                         "--kmeans-backend", "spark"])
    assert again["written_by"] == "spark"
    assert {c: (r.cluster_id, r.max_id) for c, r in dedup_rows(spark, out).items()} == {
        c: (r.cluster_id, r.max_id) for c, r in on_spark.items()}
    masters = {r.run_id: r.spark_master for r in tables.read_table(spark, out, "runs").collect()}
    assert masters == {outcome["run_id"]: None, again["run_id"]: spark.sparkContext.master}
    # Over the limit the same input goes to Spark.
    plan = run_command(["dedup", "--output-path", str(out), "--input-embeddings-path", str(lake), "--n-clusters",
                        str(CLUSTERS), "--kmeans-driver-max-mb", "0", "--dry-run"])
    assert plan["kmeans_backend"] == "spark"


def test_dry_run_prints_the_plan_and_writes_nothing(spark, lake, first_run, tmp_path, capsys):
    before = lake_state(spark, lake)
    capsys.readouterr()
    plan = dedup(lake, "--eps-to-extract", 0.01, 0.1, "--kmeans-max-points-per-centroid", 100, "--dry-run")
    out = capsys.readouterr().out
    assert plan == {"model": MODEL, "num_embeddings": 600, "n_clusters": 3, "kmeans_backend": "spark",
                    "num_training_rows": 300, "eps_to_extract": [0.01, 0.1], "num_rows_replaced": 600}
    assert f"model {MODEL}: 600 embeddings" in out and "3 clusters on spark, trained on about 300 rows" in out
    assert "would replace 600 semantic_dedup rows" in out and "add 2 dedup_summary rows" in out
    assert [line.split()[:2] for line in out.splitlines() if line.startswith("0.")] == [["0.01", "0.99"], ["0.1", "0.9"]]
    assert lake_state(spark, lake) == before
    # Another lake as the output: not even its folder appears.
    elsewhere = tmp_path / "new-lake"
    plan = run_command(["dedup", "--output-path", str(elsewhere), "--input-embeddings-path", str(lake),
                        "--embedding-model", "small-model", "--n-clusters", "2", "--dry-run"])
    assert (plan["model"], plan["num_embeddings"], plan["num_rows_replaced"]) == ("small-model", 50, 0)
    assert not elsewhere.exists() and lake_state(spark, lake) == before
