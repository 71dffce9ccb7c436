"""`cliplake shard` on real Spark and Delta: a lake captioned by the tiny VLM, read back with webdataset."""

import glob
import hashlib
import io
import json
import os
import pickle
import re
import shutil
import signal
import subprocess
import sys
import time

import av
import numpy as np
import pytest
import webdataset as wds

from curate_udfs.testing.synthetic import write_video
from jobs import tables
from jobs.cli import run_command
from jobs.session import JARS_DIR, REPO_ROOT

pytestmark = pytest.mark.slow

FPS = 24
WINDOW = 128  # pan: 330 frames -> windows (0,128) (128,256) (256,330); the last one in frames_256_511
KINDS = ("video", "metas", "t5_xxl")
TAR_PATH = re.compile(r"^v\d/resolution_(1080|720|lt_720)/aspect_ratio_(9_16|3_4|1_1|4_3|16_9)/frames_(\d+)_(\d+)/"
                      r"(video|metas|t5_xxl)/part_\d{6}/\d{6}\.tar$")


def rows(spark, lake, name, where="true"):
    return tables.read_table(spark, lake, name).where(where).collect()


@pytest.fixture(scope="module")
def lake(spark, tiny_models, tmp_path_factory):
    """pan (4:3) and portrait (9:16) captioned v0 then v1; dup a copy of pan; static filtered; late never captioned."""
    inputs = tmp_path_factory.mktemp("shard_input")
    write_video(str(inputs / "pan.mp4"), [330], width=384, height=256, fps=FPS, speed=4.0)
    write_video(str(inputs / "portrait.mp4"), [150], width=192, height=320, fps=FPS, speed=4.0)
    write_video(str(inputs / "static.mp4"), [150], width=384, height=256, fps=FPS, speed=0.0)
    shutil.copy(inputs / "pan.mp4", inputs / "dup.mp4")
    lake = tmp_path_factory.mktemp("shard_lake")
    common = ["--output-path", str(lake), "--splitting-algorithm", "fixed-stride", "--fixed-stride-split-duration", "60",
              "--no-generate-embeddings"]
    captions = ["--captioning-model", tiny_models["vlm"], "--captioning-window-size", str(WINDOW),
                "--captioning-max-output-tokens", "6"]
    run_command(["split", "--input-video-path", str(inputs), "--motion-filter", "enable", *common, *captions])
    late = tmp_path_factory.mktemp("late")
    write_video(str(late / "late.mp4"), [100], width=384, height=256, fps=FPS, speed=4.0)
    run_command(["split", "--input-video-path", str(late / "late.mp4"), "--no-generate-captions", *common])
    run_command(["caption", "--output-path", str(lake), "--annotation-version", "v1", *captions,
                 "--captioning-prompt-text", "Describe the motion."])
    # Dedup results as `cliplake dedup` writes them: dup is a near copy of pan.
    ids = {os.path.basename(r.source_path): r.clip_id for r in rows(spark, lake, "clips")}
    dedup = [(ids["pan.mp4"], "thumbnails-v1", 0, 0.1, ids["pan.mp4"], 0.0, "d1"),
             (ids["dup.mp4"], "thumbnails-v1", 0, 0.1, ids["pan.mp4"], 0.998, "d1"),
             (ids["portrait.mp4"], "thumbnails-v1", 1, 0.0, ids["portrait.mp4"], 0.2, "d1")]
    tables.merge_rows(spark, str(lake), "semantic_dedup", spark.createDataFrame(dedup, tables.SEMANTIC_DEDUP))
    summary = [(0.01, "d1", "thumbnails-v1", 2, 1, 3), (0.5, "d1", "thumbnails-v1", 1, 2, 3)]
    tables.merge_rows(spark, str(lake), "dedup_summary", spark.createDataFrame(summary, tables.DEDUP_SUMMARY))
    return lake, ids


def shard_args(lake, out, tiny_models, *extra):
    return ["shard", "--input-clip-path", str(lake), "--output-dataset-path", str(out),
            "--input-semantic-dedup-path", str(lake), "--text-encoder-model", tiny_models["t5"],
            "--text-encoder-batch-size", "2", "--target-tar-size-mb", "0.01", "--max-tars-per-part", "1", *extra]


@pytest.fixture(scope="module")
def dataset(lake, tiny_models, tmp_path_factory):
    lake, _ = lake
    out = tmp_path_factory.mktemp("dataset")
    summary = run_command(shard_args(lake, out, tiny_models))
    return out, summary


def tar_files(out) -> dict[str, str]:
    """Relative path -> sha256 of every tar under ``out``."""
    found = {}
    for path in sorted(glob.glob(os.path.join(str(out), "**", "*.tar"), recursive=True)):
        with open(path, "rb") as f:
            found[os.path.relpath(path, out)] = hashlib.sha256(f.read()).hexdigest()
    return found


def read_bins(out, version="v0") -> dict[str, dict[str, dict]]:
    """bin dir -> key -> {kind: member bytes}, every tree read with webdataset.WebDataset from wdinfo's tar list."""
    bins = {}
    for info_path in sorted(glob.glob(os.path.join(str(out), version, "*", "*", "*", "wdinfo.json"))):
        info = json.load(open(info_path))
        root = info["root"]
        assert root == os.path.dirname(info_path) and info["data_keys"] == list(KINDS)
        samples: dict[str, dict] = {}
        for kind, ext in zip(KINDS, ("mp4", "json", "pickle")):
            urls = [os.path.join(root, kind, t) for t in info["data_list"]]
            for sample in wds.WebDataset(urls, shardshuffle=False):
                assert set(sample) - {"__key__", "__url__", "__local_path__"} == {ext}
                samples.setdefault(sample["__key__"], {})[kind] = sample[ext]
        assert len(samples) == info["total_key_count"]
        bins[os.path.relpath(root, out)] = samples
    return bins


def expected_samples(spark, lake, ids, version="v0"):
    kept = {ids["pan.mp4"], ids["portrait.mp4"]} | ({ids["late.mp4"]} if version == "v1" else set())  # v1 captioned late too
    return {f"{r.clip_id}_{r.start_frame}_{r.end_frame}": r
            for r in rows(spark, lake, "captions", f"annotation_version = '{version}'") if r.clip_id in kept}


def test_every_window_reads_back_with_webdataset(spark, lake, dataset, tiny_models):
    from transformers import AutoTokenizer

    (lake, ids), (out, summary) = lake, dataset
    expected = expected_samples(spark, lake, ids)
    assert len(expected) == 3 + 1  # pan's three windows, portrait's one
    tokenizer = AutoTokenizer.from_pretrained(tiny_models["t5"])
    found = {}
    for bin_dir, samples in read_bins(out).items():
        for key, members in samples.items():
            assert set(members) == set(KINDS), key  # the three trees hold the same keys
            found[key] = bin_dir
            caption = expected[key]
            meta = json.loads(members["metas"])
            assert (meta["caption"], meta["annotation_version"]) == (caption.caption, "v0")
            assert (meta["window_start_frame"], meta["window_end_frame"]) == (caption.start_frame, caption.end_frame)
            with av.open(io.BytesIO(members["video"])) as c:
                stream = c.streams.video[0]
                assert stream.codec_context.name == "h264"
                assert sum(1 for _ in c.decode(stream)) == caption.end_frame - caption.start_frame
            [embedding] = pickle.loads(members["t5_xxl"])
            tokens = len(tokenizer(caption.caption, max_length=512, truncation=True)["input_ids"])
            assert embedding.dtype == np.float32 and embedding.shape == (tokens, 32) == (meta["t5_num_tokens"], 32)
    assert sorted(found) == sorted(expected)
    pan, portrait = ids["pan.mp4"], ids["portrait.mp4"]
    assert found[f"{pan}_256_330"] == "v0/resolution_lt_720/aspect_ratio_4_3/frames_256_511"
    assert found[f"{pan}_0_128"] == found[f"{pan}_128_256"] == "v0/resolution_lt_720/aspect_ratio_4_3/frames_0_255"
    assert found[f"{portrait}_0_150"] == "v0/resolution_lt_720/aspect_ratio_9_16/frames_0_255"
    assert summary["num_shard_samples"] == 4 and summary["num_shard_errors"] == 0


def test_layout_parts_and_manifest(spark, lake, dataset):
    (lake, _), (out, summary) = lake, dataset
    files = tar_files(out)
    assert files and all(TAR_PATH.match(p) for p in files)
    assert any("/part_000001/" in p for p in files)  # 10 kB tars, one per part: pan's first bin has two parts
    manifest = {r.tar_path: r for r in rows(spark, lake, "shards", f"dataset_path = '{out}'")}
    assert set(manifest) == set(files)
    assert all(manifest[p].sha256 == files[p] and manifest[p].num_bytes == os.path.getsize(out / p) for p in files)
    assert sum(r.num_samples for r in manifest.values() if r.kind == "video") == 4
    assert summary["num_tars_written"] == len(files) and summary["num_tars_skipped"] == 0


def test_left_out_clips_are_counted(spark, lake, dataset):
    (lake, ids), (out, summary) = lake, dataset
    keys = {k for samples in read_bins(out).values() for k in samples}
    for name in ("dup.mp4", "static.mp4", "late.mp4"):
        assert not any(k.startswith(ids[name]) for k in keys), name
    assert (summary["num_deduplicated_clips"], summary["num_filtered_clips"], summary["num_clips_without_captions"]) == (1, 1, 1)
    versions = json.loads(summary["input_table_versions"])
    assert versions["captions"] == tables.latest_version(spark, lake, "captions")
    assert versions["dedup"] == {"eps": 0.01, "model": "thumbnails-v1"}
    [run] = rows(spark, lake, "runs", f"run_id = '{summary['run_id']}'")
    assert run.pipeline == "shard" and run.input_table_versions == summary["input_table_versions"]


def test_a_larger_eps_removes_more(spark, lake, tiny_models, tmp_path):
    lake, ids = lake
    summary = run_command(shard_args(lake, tmp_path / "out", tiny_models, "--semantic-dedup-epsilon", "0.9"))
    assert summary["num_deduplicated_clips"] == 2 and summary["num_shard_samples"] == 3  # portrait (0.2 >= 0.1) goes too


def test_second_run_changes_nothing(spark, lake, dataset, tiny_models):
    (lake, _), (out, _) = lake, dataset
    before, shards_version = tar_files(out), tables.latest_version(spark, lake, "shards")
    infos = {p: open(p, "rb").read() for p in glob.glob(str(out / "v0" / "*" / "*" / "*" / "wdinfo.json"))}
    summary = run_command(shard_args(lake, out, tiny_models))
    assert summary["num_tars_written"] == 0 and summary["num_tars_skipped"] == len(before)
    assert tar_files(out) == before and tables.latest_version(spark, lake, "shards") == shards_version
    assert {p: open(p, "rb").read() for p in infos} == infos


def test_a_damaged_tar_is_checked_and_rewritten(spark, lake, dataset, tiny_models):
    (lake, _), (out, _) = lake, dataset
    before = tar_files(out)
    damaged = sorted(p for p in before if "/metas/" in p)[0]
    with open(out / damaged, "r+b") as f:
        f.truncate(512)
    summary = run_command(shard_args(lake, out, tiny_models))
    assert summary["num_tars_written"] == 3  # the damaged tar's group: video, metas, t5_xxl
    after = tar_files(out)
    assert after[damaged] == before[damaged] and set(after) == set(before)


def test_annotation_version_v1_has_its_own_tree(spark, lake, dataset, tiny_models):
    (lake, ids), (out, _) = lake, dataset
    v0 = tar_files(out)
    run_command(shard_args(lake, out, tiny_models, "--annotation-version", "v1"))
    expected = expected_samples(spark, lake, ids, "v1")
    got = {k: json.loads(m["metas"])["caption"] for s in read_bins(out, "v1").values() for k, m in s.items()}
    assert got == {k: r.caption for k, r in expected.items()}
    assert {r.prompt for r in expected.values()} == {"Describe the motion."}
    assert {p: h for p, h in tar_files(out).items() if p.startswith("v0/")} == v0  # v0 untouched


def metas_members(out) -> dict[str, bytes]:
    return {k: m["metas"] for samples in read_bins(out).values() for k, m in samples.items()}


def test_time_travel_rebuilds_the_old_dataset(spark, lake, dataset, tiny_models, tmp_path):
    (lake, ids), (out, first) = lake, dataset
    old = metas_members(out)
    as_of = json.loads(first["input_table_versions"])["captions"]
    spark.sql(f"UPDATE delta.`{tables.table_path(str(lake), 'captions')}` SET caption = 'a corrected caption' "
              f"WHERE clip_id = '{ids['pan.mp4']}' AND annotation_version = 'v0' AND window_index = 0")
    now = run_command(shard_args(lake, tmp_path / "now", tiny_models))
    assert json.loads(now["input_table_versions"])["captions"] > as_of
    assert metas_members(tmp_path / "now") != old
    rebuilt = run_command(shard_args(lake, tmp_path / "then", tiny_models, "--captions-as-of-version", str(as_of)))
    assert json.loads(rebuilt["input_table_versions"])["captions"] == as_of
    assert metas_members(tmp_path / "then") == old  # byte for byte
    # Rebuilding the live dataset follows the change: only the changed window's group is rewritten.
    again = run_command(shard_args(lake, out, tiny_models))
    assert again["num_tars_written"] == 3 and metas_members(out) == metas_members(tmp_path / "now")


def _cli(*args):
    env = {**os.environ, "CLIPLAKE_JARS_DIR": str(JARS_DIR), "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.Popen([sys.executable, "-m", "jobs.cli", *map(str, args)], cwd=REPO_ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)


def test_killed_run_resumes_to_the_same_dataset(spark, lake, tiny_models, tmp_path):
    """SIGKILL the job once its first wave is committed; the next run skips those tars and ends identical to a clean run."""
    lake, _ = lake
    clean, resumed = tmp_path / "clean", tmp_path / "resumed"
    run_command(shard_args(lake, clean, tiny_models))
    shards = tables.table_path(str(lake), "shards")
    committed = lambda: spark.read.format("delta").load(shards).where(f"dataset_path = '{resumed}'").count()  # noqa: E731
    proc = _cli(*shard_args(lake, resumed, tiny_models, "--tars-per-wave", "1"))
    deadline = time.time() + 240
    while proc.poll() is None and time.time() < deadline and committed() == 0:
        time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert 0 < committed() < len(tar_files(clean)), "the kill should land between waves"
    summary = run_command(shard_args(lake, resumed, tiny_models))
    assert summary["num_tars_skipped"] > 0
    assert set(tar_files(resumed)) == set(tar_files(clean))
    # metas and t5_xxl tars are byte for byte the same; x264 does not promise identical bytes for every
    # frame size (see README), so videos are compared by what they decode to: the same frame counts.
    assert {p: h for p, h in tar_files(resumed).items() if "/video/" not in p} == \
        {p: h for p, h in tar_files(clean).items() if "/video/" not in p}
    assert frame_counts(resumed) == frame_counts(clean)


def frame_counts(out) -> dict[str, int]:
    counts = {}
    for samples in read_bins(out).values():
        for key, members in samples.items():
            with av.open(io.BytesIO(members["video"])) as c:
                counts[key] = sum(1 for _ in c.decode(video=0))
    return counts


def test_missing_text_encoder_stops_before_any_work(lake, tmp_path, capsys):
    lake, _ = lake
    with pytest.raises(SystemExit) as stop:
        run_command(["shard", "--input-clip-path", str(lake), "--output-dataset-path", str(tmp_path / "out"),
                     "--text-encoder-model", str(tmp_path / "no-such-model")])
    assert stop.value.code == 2 and "--text-encoder-model" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_bad_options_fail_clearly(lake, tiny_models, tmp_path, capsys):
    lake, _ = lake
    for bad, words in [(["--semantic-dedup-epsilon", "1.5"], "--semantic-dedup-epsilon"),
                       (["--captions-as-of-version", "999"], "captions has versions"),
                       (["--max-tars-per-part", "0"], "--max-tars-per-part")]:
        with pytest.raises(SystemExit):
            run_command(shard_args(lake, tmp_path / "out", tiny_models, *bad))
        assert words in capsys.readouterr().err
