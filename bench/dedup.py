"""bench/dedup: the dedup job against a single-process floor on the same embeddings, in the same run.

Input: synthetic clustered 512-d embeddings (curate_udfs.testing.embeddings, 5% planted
near-copies), at a fixed number of rows per cluster (10,000 by default, so 1M rows = 100
clusters), written once per size to a Delta clip_embeddings table under .cache/bench/dedup.
Floor: one Python process on every core: read the same rows, L2-normalise, scikit-learn KMeans
(n_init=1, same k, max_iter and seed, trained on the same number of sampled rows), assign every
row, and the same tiled pairwise step in numpy per cluster.
Job: `cliplake dedup` in a fresh process, with its default backend (auto: scikit-learn in the
driver while the embeddings fit in --kmeans-driver-max-mb, by default an eighth of the machine's
memory under a local master, and then delta-rs reads and writes without starting Spark; Spark
MLlib above that, Spark start included; `-- --kmeans-backend spark` forces MLlib).
Both train k-means on about 256 rows per centroid (--kmeans-max-points-per-centroid 256);
prints wall times, their ratio (job / floor, lower is better) and the growth from size to size.

    python bench/dedup.py [--rows 10000 100000 1000000] [--rows-per-cluster 10000]
"""

import argparse
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

from measure import measured  # bench/measure.py, beside this script

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".cache" / "bench" / "dedup"
DIM, CHUNK, POINTS_PER_CENTROID, EPS = 512, 100_000, 256, 0.01
MODEL = "synthetic-512"

FLOOR = """
import sys, time
import numpy as np, pyarrow.dataset as ds
from sklearn.cluster import KMeans
from curate_udfs.dedup import semdedup
from curate_udfs.dedup.config import SemDedupConfig
folder, k, per_centroid, eps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
table = ds.dataset(folder, format="parquet").to_table(columns=["clip_id", "embedding"])
ids = np.asarray(table.column("clip_id").to_pylist())
x = table.column("embedding").combine_chunks().flatten().to_numpy().reshape(len(ids), -1)
del table
x = semdedup.normalize_rows(x)
sample = np.random.default_rng(42).choice(len(x), min(len(x), k * per_centroid), replace=False)
centroids = KMeans(n_clusters=k, max_iter=100, random_state=42, n_init=1).fit(x[sample]).cluster_centers_.astype(np.float32)
labels = np.concatenate([semdedup.nearest_centroids(x[i:i + 100_000], centroids) for i in range(0, len(x), 100_000)])
config, removed = SemDedupConfig(), 0
for c in range(len(centroids)):
    members = np.flatnonzero(labels == c)
    members = members[np.argsort(ids[members], kind="stable")]
    xc = x[members]
    dist = semdedup.cosine_distance_to(xc, centroids[c])
    order = semdedup.processing_order(xc, centroids[c], dist, config, c)
    scores, _ = semdedup.max_similarity_to_earlier(xc[order], config.tile_size)
    removed += int(semdedup.is_duplicate(scores, eps).sum())
print(f"removed {removed}")
"""

MAKE_LAKE = """
import sys
from jobs.session import get_spark
spark = get_spark("local", "bench-dedup-input")
spark.read.parquet(sys.argv[1]).write.format("delta").mode("overwrite").save(sys.argv[2])
spark.stop()
"""


def make_inputs(rows: int, clusters: int) -> tuple[str, str, int]:
    """Parquet files and a lake holding them as clip_embeddings (built once); planted copies."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from curate_udfs.testing.embeddings import clustered_embeddings

    folder = CACHE / f"{rows}_rows_{clusters}_clusters"
    parquet, lake = folder / "parquet", folder / "lake"
    copies_file = folder / "copies.txt"
    if copies_file.exists():
        return str(parquet), str(lake), int(copies_file.read_text())
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(parquet)
    copies = 0
    for start in range(0, rows, CHUNK):  # chunks share the centres, so memory stays at one chunk
        n = min(CHUNK, rows - start)
        data = clustered_embeddings(n, DIM, clusters, seed=start + 1, centre_seed=0)
        copies += int((data.copy_of >= 0).sum())
        ids = pa.array([f"clip-{start + i:08d}" for i in range(n)])
        vectors = pa.FixedSizeListArray.from_arrays(pa.array(data.vectors.ravel()), DIM).cast(pa.list_(pa.float32()))
        pq.write_table(pa.table({"clip_id": ids, "model": pa.array([MODEL] * n), "embedding": vectors,
                                 "dim": pa.array(np.full(n, DIM, dtype=np.int64)), "run_id": pa.array(["bench"] * n)}),
                       parquet / f"part-{start // CHUNK:05d}.parquet")
    measured([sys.executable, "-c", MAKE_LAKE, str(parquet), str(lake / "clip_embeddings")])
    copies_file.write_text(str(copies))
    return str(parquet), str(lake), copies


def removed_by_job(output: str) -> int:
    match = re.search(rf"^{EPS}\s+(\d+)\s+(\d+)\s+(\d+)", output, re.MULTILINE)
    if not match:
        sys.exit(f"no summary line for eps {EPS} in the job output:\n{output[-2000:]}")
    return int(match.group(2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--rows-per-cluster", type=int, default=10_000)
    parser.add_argument("job_options", nargs="*", help="extra options for the job (after --)")
    args = parser.parse_args()
    print(f"{DIM}-d embeddings, {args.rows_per_cluster} rows per cluster, 5% planted copies, "
          f"k-means trained on {POINTS_PER_CENTROID} rows per centroid; {os.cpu_count()} cores")
    print(f"{'rows':>9} {'k':>4} {'floor s':>8} {'job s':>8} {'job/floor':>9} {'job growth':>10} "
          f"{'floor MiB':>9} {'job MiB':>8}  k-means  removed (floor, job, planted)")
    previous = None
    for rows in args.rows:
        clusters = max(1, rows // args.rows_per_cluster)
        parquet, lake, planted = make_inputs(rows, clusters)
        floor_s, floor_mem, floor_out = measured([sys.executable, "-c", FLOOR, parquet, str(clusters),
                                             str(POINTS_PER_CENTROID), str(EPS)])
        with tempfile.TemporaryDirectory(prefix="cliplake-bench-dedup-") as out:
            job_s, job_mem, job_out = measured([
                sys.executable, "-m", "jobs.cli", "dedup", "--input-embeddings-path", lake, "--output-path", out,
                "--n-clusters", str(clusters),
                "--kmeans-max-points-per-centroid", str(POINTS_PER_CENTROID), "--eps-to-extract", str(EPS),
                *args.job_options])
        floor_removed = int(re.search(r"removed (\d+)", floor_out).group(1))
        job_removed = removed_by_job(job_out)
        backend = re.search(r"k-means on (\w+)", job_out).group(1)
        growth = f"{job_s / previous[1]:.1f}x/{rows / previous[0]:.0f}x" if previous else "-"
        print(f"{rows:>9} {clusters:>4} {floor_s:>8.1f} {job_s:>8.1f} {job_s / floor_s:>9.2f} {growth:>10} "
              f"{floor_mem / 2**20:>9.0f} {job_mem / 2**20:>8.0f}  {backend:<7}  {floor_removed}, {job_removed}, {planted}",
              flush=True)
        previous = (rows, job_s)
        # k-means may put a copy and its original in different clusters when both sit near a
        # boundary (SemDeDup only compares within a cluster), so allow a few misses in 1,000.
        for name, found in (("floor", floor_removed), ("job", job_removed)):
            if not planted * 0.997 <= found <= planted:
                sys.exit(f"at {rows} rows the {name} found {found} duplicates of {planted} planted")
    print("goal: 1M rows in under 300 s on 2 cores; growth near-linear (job growth close to the row growth)")


if __name__ == "__main__":
    main()
