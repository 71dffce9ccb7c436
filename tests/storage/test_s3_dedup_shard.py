"""split, dedup and shard with every lake and the dataset on S3 (moto's server on loopback), read back independently.

Each job runs as users run it (``python -m jobs.cli`` in its own process and JVM); the Delta tables
are read back with delta-rs and the tars with webdataset over boto3, never through the code under test.
"""

import json
import os
import shutil
import sys

import boto3
import pytest
import webdataset as wds

from curate_udfs.testing.synthetic import write_video
from tests.storage.test_s3_split import cli, rows

pytestmark = pytest.mark.slow

FPS = 24
WINDOW = 128  # pan: 330 frames -> 3 windows; portrait: 150 frames -> 1 window
KINDS = ("video", "metas", "t5_xxl")
LAKE = "s3://dlake/curated"
DATASET = "s3://dataset/shards"


@pytest.fixture(scope="module")
def env(s3_server):
    return {"AWS_ENDPOINT_URL": s3_server.endpoint_url, "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


def profiles_only(s3_server, credentials_file) -> dict:
    """An AWS environment with named profiles (reader, lister, writer) and no default credentials."""
    return {"AWS_ENDPOINT_URL": s3_server.endpoint_url, "AWS_SHARED_CREDENTIALS_FILE": credentials_file,
            "AWS_CONFIG_FILE": os.devnull, "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture(scope="module")
def pipeline(env, s3_server, credentials_file, tiny_models, tmp_path_factory):
    """pan, dup (a byte copy of pan) and portrait in a bucket; split (captioned), dedup and shard, all on S3."""
    folder = tmp_path_factory.mktemp("s3_shard_input")
    write_video(str(folder / "pan.mp4"), [330], width=384, height=256, fps=FPS, speed=4.0)
    write_video(str(folder / "portrait.mp4"), [150], width=192, height=320, fps=FPS, speed=4.0)
    shutil.copy(folder / "pan.mp4", folder / "dup.mp4")
    s3 = boto3.client("s3", endpoint_url=s3_server.endpoint_url, region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    for bucket in ("sraw", "dlake", "dataset"):
        s3.create_bucket(Bucket=bucket)
    for name in ("pan.mp4", "dup.mp4", "portrait.mp4"):
        s3.upload_file(str(folder / name), "sraw", f"videos/{name}")

    cli(env, "split", "--input-video-path", "s3://sraw/videos/", "--output-path", LAKE, "--splitting-algorithm",
        "fixed-stride", "--fixed-stride-split-duration", "60", "--captioning-model", tiny_models["vlm"],
        "--captioning-window-size", WINDOW, "--captioning-max-output-tokens", "6")
    # Named profiles only (no default credentials): embeddings read with one, results written with the other.
    cli(profiles_only(s3_server, credentials_file), "dedup", "--output-path", LAKE, "--output-s3-profile-name", "writer",
        "--input-embeddings-path", LAKE, "--input-s3-profile-name", "reader", "--n-clusters", 2, "--eps-to-extract", 0.01,
        "--export-cosmos-layout", f"{LAKE}/semdedup")
    shard_args = ["shard", "--input-clip-path", LAKE, "--output-dataset-path", DATASET, "--input-semantic-dedup-path", LAKE,
                  "--text-encoder-model", tiny_models["t5"], "--text-encoder-batch-size", "2",
                  "--target-tar-size-mb", "0.01", "--max-tars-per-part", "1"]
    first = cli(env, *shard_args)
    # The second run, with named profiles only (no default credentials): the lake (tables, clip files)
    # read with one profile, the dataset checked with the other; see the two tests below.
    cli(profiles_only(s3_server, credentials_file), *shard_args, "--input-s3-profile-name", "reader",
        "--output-s3-profile-name", "writer")
    return s3, first, shard_args


def test_dedup_results_on_s3(s3_env, pipeline):
    s3, *_ = pipeline
    clips = {r["source_path"].rsplit("/", 1)[1]: r["clip_id"] for r in rows(s3_env, f"{LAKE}/clips")}
    dedup = {r["clip_id"]: r for r in rows(s3_env, f"{LAKE}/semantic_dedup")}
    assert set(dedup) == set(clips.values())
    # dup and pan are the same bytes: one of them is a duplicate of the other, portrait is not.
    duplicates = {c for c, r in dedup.items() if r["cosine_sim_score"] >= 1 - 0.01}
    assert len(duplicates & {clips["pan.mp4"], clips["dup.mp4"]}) == 1 and clips["portrait.mp4"] not in duplicates
    (summary,) = rows(s3_env, f"{LAKE}/dedup_summary")
    assert (summary["kept"], summary["removed"], summary["total"]) == (2, 1, 3)
    layout = s3.list_objects_v2(Bucket="dlake", Prefix="curated/semdedup/")["Contents"]
    keys = {item["Key"] for item in layout}
    assert {"curated/semdedup/clustering_results/kmeans_centroids.npy",
            "curated/semdedup/extraction/dedup_summary_0.01.csv"} <= keys


def boto3_url(bucket: str, key: str) -> str:
    """A webdataset ``pipe:`` URL streaming the object through boto3 (the endpoint comes from the environment)."""
    code = f"import boto3, sys; boto3.client('s3').download_fileobj({bucket!r}, {key!r}, sys.stdout.buffer)"
    return f"pipe:{sys.executable} -c \"{code}\""


def test_tars_on_s3_read_back_with_webdataset(s3_env, pipeline):
    s3, first, *_ = pipeline
    clips = {r["clip_id"]: r["source_path"].rsplit("/", 1)[1] for r in rows(s3_env, f"{LAKE}/clips")}
    duplicates = {r["clip_id"] for r in rows(s3_env, f"{LAKE}/semantic_dedup") if r["cosine_sim_score"] >= 1 - 0.01}
    expected = {r["clip_id"] for r in rows(s3_env, f"{LAKE}/captions") if r["clip_id"] not in duplicates}
    kept = {clips[k] for k in expected}
    assert kept in ({"pan.mp4", "portrait.mp4"}, {"dup.mp4", "portrait.mp4"})  # one sample per clip

    listing = s3.get_object(Bucket="dataset", Key="shards/v0/wdinfo_list.csv")["Body"].read().decode().split()
    assert listing and all(p.startswith(f"{DATASET}/v0/") and p.endswith("/wdinfo.json") for p in listing)
    found = {}
    for info_uri in listing:
        info = json.loads(s3.get_object(Bucket="dataset", Key=info_uri.removeprefix("s3://dataset/"))["Body"].read())
        # root is the key prefix inside the bucket: what the loader joins with its own bucket
        assert set(info["data_keys"]) == set(KINDS) and f"s3://dataset/{info['root']}" == info_uri.rsplit("/", 1)[0]
        keys_by_kind = {}
        for kind, ext in zip(KINDS, ("mp4", "json", "pickle")):
            prefix = info["root"]
            urls = [boto3_url("dataset", f"{prefix}/{kind}/{t}") for t in info["data_list"]]
            samples = list(wds.WebDataset(urls, shardshuffle=False))
            assert all(len(s[ext]) > 0 for s in samples)
            keys_by_kind[kind] = sorted(s["__key__"] for s in samples)
        assert keys_by_kind["video"] == keys_by_kind["metas"] == keys_by_kind["t5_xxl"]
        assert len(keys_by_kind["video"]) == info["total_key_count"]
        for key in keys_by_kind["video"]:
            found[key] = info_uri
    assert set(found) == expected

    manifest = rows(s3_env, f"{LAKE}/shards")
    assert {m["dataset_path"] for m in manifest} == {DATASET}
    for m in manifest:  # every tar the manifest lists is in the bucket with the recorded size
        head = s3.head_object(Bucket="dataset", Key=f"shards/{m['tar_path']}")
        assert head["ContentLength"] == m["num_bytes"]
    assert sum(m["num_samples"] for m in manifest if m["kind"] == "video") == len(expected)
    assert f"dataset: {DATASET}/v0" in first


def last_shard_run(s3_env) -> dict:
    runs = sorted(rows(s3_env, f"{LAKE}/runs"), key=lambda r: r["started_at"])
    return [r for r in runs if r["pipeline"] == "shard" and json.loads(r["arguments"])["output_dataset_path"] == DATASET][-1]


def test_second_shard_run_checks_and_skips_every_tar(s3_env, pipeline, list_keys):
    """The resume check HEADs each tar for its size and CRC32: all match, so nothing is written again."""
    last = last_shard_run(s3_env)
    tars = [k for k in list_keys("dataset", "shards/") if k.endswith(".tar")]
    assert last["num_tars_written"] == 0 and last["num_tars_skipped"] == len(tars) > 0


def test_shard_with_named_profiles_only(s3_env, pipeline):
    """No default credentials: that second run read the lake with one profile and checked the dataset with another."""
    last = last_shard_run(s3_env)
    arguments = json.loads(last["arguments"])
    assert (arguments["input_s3_profile_name"], arguments["output_s3_profile_name"]) == ("reader", "writer")
    assert last["status"] == "done" and last["num_shard_errors"] == 0 and last["num_shard_samples"] > 0


def test_tar_put_on_s3_is_checked_by_size_and_hash(s3_env, s3):
    """The resume check of an s3:// tar by a row without crc32: size, then the bytes downloaded and hashed, so a
    damaged object fails it (with a crc32: tests/storage/test_s3_checksum.py)."""
    from curate_udfs.sharding.tars import is_complete, write_tar_to

    s3.create_bucket(Bucket="tarcheck")
    uri = "s3://tarcheck/v0/video/part_000000/000000.tar"
    written = write_tar_to(uri, [("a", "json", b"{}"), ("b", "json", b"[]")])
    assert (written.path, written.num_samples) == (uri, 2)
    assert is_complete(uri, written.num_bytes, written.sha256)
    data = bytearray(s3.get_object(Bucket="tarcheck", Key="v0/video/part_000000/000000.tar")["Body"].read())
    assert len(data) == written.num_bytes
    data[600] ^= 0xFF  # same size, other bytes
    s3.put_object(Bucket="tarcheck", Key="v0/video/part_000000/000000.tar", Body=bytes(data))
    assert not is_complete(uri, written.num_bytes, written.sha256)
    assert not is_complete("s3://tarcheck/missing.tar", written.num_bytes, written.sha256)


COSMOS = "s3://dataset/cosmos"


@pytest.fixture(scope="module")
def exported(env, pipeline):
    """The S3 lake exported as Cosmos-Curate's folder to another bucket: the job's printed table."""
    return cli(env, "export-cosmos", "--output-path", LAKE, "--to", COSMOS)


def test_export_cosmos_from_an_s3_lake_to_s3(s3_env, pipeline, exported, list_keys):
    """Clip mp4s are copied inside S3 (server-side); metas and embeddings land beside them; a second export writes nothing."""
    s3, *_ = pipeline
    target, first = COSMOS, exported
    clips = rows(s3_env, f"{LAKE}/clips")
    keys = list_keys("dataset", "cosmos/")
    assert {f"cosmos/clips/{c['clip_id']}.mp4" for c in clips} <= set(keys)
    assert {f"cosmos/metas/v0/{c['clip_id']}.json" for c in clips} <= set(keys)
    assert any(k.startswith("cosmos/thumbnails-v1_embd_parquet/") for k in keys) and "cosmos/summary.json" in keys
    clip = clips[0]
    lake_bytes = s3.get_object(Bucket="dlake", Key=clip["location"].removeprefix("s3://dlake/"))["Body"].read()
    assert s3.get_object(Bucket="dataset", Key=f"cosmos/clips/{clip['clip_id']}.mp4")["Body"].read() == lake_bytes
    meta = json.loads(s3.get_object(Bucket="dataset", Key=f"cosmos/metas/v0/{clip['clip_id']}.json")["Body"].read())
    assert meta["clip_location"] == f"{target}/clips/{clip['clip_id']}.mp4"
    written = lambda output: {line.rsplit(None, 2)[0]: int(line.split()[-2])  # noqa: E731 (the printed table)
                              for line in output.splitlines() if line.startswith(("metas/", "clips,", "summary"))}
    assert written(first)["clips, pickles"] > 0
    again = written(cli(s3_env, "export-cosmos", "--output-path", LAKE, "--to", target))
    assert again.keys() == written(first).keys() and set(again.values()) == {0}


def test_import_cosmos_from_s3_into_an_s3_lake(s3_env, pipeline, exported):
    """The folder export-cosmos wrote to S3, read back into a new S3 lake: the same clips, captions and vectors."""
    source = COSMOS
    cli(s3_env, "import-cosmos", "--input-clip-path", source, "--output-path", "s3://dlake/imported")
    for name, columns in {"clips": ("clip_id", "start_frame", "end_frame", "num_frames"),
                          "captions": ("clip_id", "window_index", "start_frame", "end_frame", "caption"),
                          "clip_embeddings": ("clip_id", "model")}.items():
        read = lambda uri: sorted(tuple(r[c] for c in columns) for r in rows(s3_env, f"{uri}/{name}"))  # noqa: E731
        assert read("s3://dlake/imported") == read(LAKE) and read(LAKE), name
    imported = rows(s3_env, "s3://dlake/imported/clips")
    assert all(r["location"].startswith(f"{source}/clips/") for r in imported)
