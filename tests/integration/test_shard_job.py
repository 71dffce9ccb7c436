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
from datetime import datetime, timedelta, timezone

import decord
import numpy as np
import pytest
import webdataset as wds
from pyspark.sql import functions as F

from curate_udfs.testing.synthetic import write_video
from jobs import tables
from jobs.cli import run_command
from jobs.session import JARS_DIR, REPO_ROOT

pytestmark = pytest.mark.slow

FPS = 24
WINDOW = 128  # pan: 330 frames -> windows (0,128) (128,256) (256,330)
KINDS = ("video", "metas", "t5_xxl")
EXTENSIONS = ("mp4", "json", "pickle")
TAR_PATH = re.compile(r"^v\d/resolution_(1080|720|lt_720)/aspect_ratio_(9_16|3_4|1_1|4_3|16_9)/duration_(5_10|10_30|30_inf)/"
                      r"(video|metas|t5_xxl)/part_\d{6}/\d{6}\.tar$")
# Window keys cosmos-predict2.5's TextTransformForVideo accepts (any other key drops the sample).
T2W_WINDOW_KEYS = {"start_frame", "end_frame", "qwen2p5_7b_caption", "qwen2p5_7b_caption_short",
                   "qwen2p5_7b_caption_medium", "qwen2p5_7b_caption_user"}


def rows(spark, lake, name, where="true"):
    return tables.read_table(spark, lake, name).where(where).collect()


@pytest.fixture(scope="module")
def lake(spark, tiny_models, tmp_path_factory):
    """pan and walk (4:3, 10-30 s) and portrait (9:16, 5-10 s) captioned v0 then v1; dup a copy of pan;
    static filtered; late (4 s) never captioned in v0."""
    inputs = tmp_path_factory.mktemp("shard_input")
    write_video(str(inputs / "pan.mp4"), [330], width=384, height=256, fps=FPS, speed=4.0)
    write_video(str(inputs / "walk.mp4"), [300], width=384, height=256, fps=FPS, speed=2.0)
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
             (ids["walk.mp4"], "thumbnails-v1", 0, 0.2, ids["pan.mp4"], 0.3, "d1"),
             (ids["portrait.mp4"], "thumbnails-v1", 1, 0.0, ids["portrait.mp4"], 0.2, "d1")]
    tables.merge_rows(spark, str(lake), "semantic_dedup", spark.createDataFrame(dedup, tables.SEMANTIC_DEDUP))
    summary = [(0.01, "d1", "thumbnails-v1", 3, 1, 4), (0.5, "d1", "thumbnails-v1", 1, 3, 4)]
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
    """bin dir -> key -> {kind: member bytes}, found as cosmos-predict2.5's loader finds them.

    wdinfo_list.csv names each bin's wdinfo.json; each tar is opened at join(root, kind, data_list[i])
    and the three trees are zipped by position, as the loader does: their keys must match in order.
    """
    bins = {}
    listing = open(os.path.join(str(out), version, "wdinfo_list.csv"), newline="").read()
    assert listing.endswith("\r\n")
    for info_path in listing.split():
        info = json.load(open(info_path))
        root = info["root"]
        assert root == os.path.dirname(info_path) and set(info["data_keys"]) == set(KINDS)
        samples: dict[str, dict] = {}
        for tar in info["data_list"]:
            trees = [wds.WebDataset(os.path.join(root, kind, tar), shardshuffle=False) for kind in KINDS]
            for members in zip(*trees, strict=True):
                assert len({m["__key__"] for m in members}) == 1  # same key at the same position
                for kind, ext, m in zip(KINDS, EXTENSIONS, members):
                    assert set(m) - {"__key__", "__url__", "__local_path__"} == {ext}
                    samples.setdefault(m["__key__"], {})[kind] = m[ext]
        assert len(samples) == info["total_key_count"]
        bins[os.path.relpath(root, out)] = samples
    return bins


def captions_of(spark, lake, clip_id, version="v0"):
    return sorted(rows(spark, lake, "captions", f"clip_id = '{clip_id}' AND annotation_version = '{version}'"),
                  key=lambda r: r.window_index)


def decoded_frames(mp4: bytes, indexes=None) -> int:
    """How many frames decord decodes from the bytes (at ``indexes`` when given, as the loader reads them)."""
    reader = decord.VideoReader(io.BytesIO(mp4), num_threads=1)
    if indexes is not None:
        return reader.get_batch(list(indexes)).shape[0]
    return len(reader)


def test_every_clip_trains_with_the_stock_cosmos_predict25_pipeline(spark, lake, dataset, tiny_models):
    """Each fact cosmos-predict2.5's VideoParsing and TextTransformForVideo rely on (reference section 1)."""
    from transformers import AutoTokenizer

    (lake, ids), (out, summary) = lake, dataset
    tokenizer = AutoTokenizer.from_pretrained(tiny_models["t5"])
    clips = {r.clip_id: r for r in rows(spark, lake, "clips")}
    found = {}
    for bin_dir, samples in read_bins(out).items():
        for key, members in samples.items():
            found[key] = bin_dir
            clip, windows = clips[key], captions_of(spark, lake, key)
            with open(clip.location, "rb") as f:
                assert members["video"] == f.read()  # the whole clip, as it is in the lake
            meta = json.loads(members["metas"])
            assert 10 <= meta["framerate"] <= 60 and meta["nb_frames"] == decoded_frames(members["video"]) == clip.num_frames
            assert meta["span_uuid"] == key and meta["source_video"] == clip.source_path
            assert len(meta["t2w_windows"]) == len(windows) > 0
            for window, caption in zip(meta["t2w_windows"], windows):
                assert set(window) <= T2W_WINDOW_KEYS and window["qwen2p5_7b_caption"] == caption.caption
                start, end = window["start_frame"], window["end_frame"]
                assert (start, end) == (caption.start_frame, caption.end_frame)
                assert decoded_frames(members["video"], np.arange(start, end)) == end - start  # np.arange, as the loader
            assert [w["end_frame"] for w in meta["windows"]] == [c.end_frame - 1 for c in windows]  # Curate's: inclusive
            embeddings = pickle.loads(members["t5_xxl"])
            assert len(embeddings) == len(windows)
            for embedding, caption in zip(embeddings, windows):
                assert list(embedding) == ["t2w_qwen2p5_7b"]
                array = embedding["t2w_qwen2p5_7b"]
                tokens = len(tokenizer(caption.caption.strip(), max_length=512, truncation=True)["input_ids"])
                assert array.dtype == np.float16 and array.shape == (tokens, 1024)
    pan, walk, portrait = ids["pan.mp4"], ids["walk.mp4"], ids["portrait.mp4"]
    assert found == {pan: "v0/resolution_lt_720/aspect_ratio_4_3/duration_10_30",
                     walk: "v0/resolution_lt_720/aspect_ratio_4_3/duration_10_30",
                     portrait: "v0/resolution_lt_720/aspect_ratio_9_16/duration_5_10"}
    assert summary["num_shard_samples"] == 3 and summary["num_shard_errors"] == 0


def test_layout_parts_and_manifest(spark, lake, dataset):
    (lake, _), (out, summary) = lake, dataset
    files = tar_files(out)
    assert files and all(TAR_PATH.match(p) for p in files)
    assert any("/part_000001/" in p for p in files)  # 10 kB tars, one per part: pan and walk share a bin
    manifest = {r.tar_path: r for r in rows(spark, lake, "shards", f"dataset_path = '{out}'")}
    assert set(manifest) == set(files)
    assert all(manifest[p].sha256 == files[p] and manifest[p].num_bytes == os.path.getsize(out / p) for p in files)
    assert sum(r.num_samples for r in manifest.values() if r.kind == "video") == 3
    assert summary["num_tars_written"] == len(files) and summary["num_tars_skipped"] == 0
    info = json.load(open(out / "v0/resolution_lt_720/aspect_ratio_4_3/duration_10_30/wdinfo.json"))
    assert list(info) == ["data_keys", "chunk_size", "data_list", "root", "total_key_count"] and info["chunk_size"] == 1
    assert info["data_list"] == ["part_000000/000000.tar", "part_000001/000000.tar"] and info["total_key_count"] == 2


def test_left_out_clips_are_counted(spark, lake, dataset):
    (lake, ids), (out, summary) = lake, dataset
    keys = {k for samples in read_bins(out).values() for k in samples}
    for name in ("dup.mp4", "static.mp4", "late.mp4"):
        assert ids[name] not in keys, name
    assert (summary["num_deduplicated_clips"], summary["num_filtered_clips"], summary["num_clips_without_captions"]) == (1, 1, 1)
    versions = json.loads(summary["input_table_versions"])
    assert versions["captions"] == tables.latest_version(spark, lake, "captions")
    assert versions["dedup"] == {"eps": 0.01, "model": "thumbnails-v1"}
    [run] = rows(spark, lake, "runs", f"run_id = '{summary['run_id']}'")
    assert run.pipeline == "shard" and run.input_table_versions == summary["input_table_versions"]


def test_a_larger_eps_removes_more(spark, lake, tiny_models, tmp_path):
    lake, ids = lake
    summary = run_command(shard_args(lake, tmp_path / "out", tiny_models, "--semantic-dedup-epsilon", "0.75"))
    assert summary["num_deduplicated_clips"] == 2 and summary["num_shard_samples"] == 2  # walk (0.3 >= 0.25) goes too


def test_small_shards_dropped_as_cosmos_curate(spark, lake, tiny_models, tmp_path):
    """Big tars: each bin is one tar; with --min-clips-per-tar 2 --drop-small-shards the one-clip bin is left out."""
    (lake, ids), out = lake, tmp_path / "out"
    summary = run_command(shard_args(lake, out, tiny_models, "--target-tar-size-mb", "500", "--min-clips-per-tar", "2",
                                     "--drop-small-shards"))
    assert summary["num_clips_in_dropped_shards"] == 1 and summary["num_shard_samples"] == 2
    assert {k for s in read_bins(out).values() for k in s} == {ids["pan.mp4"], ids["walk.mp4"]}
    assert not (out / "v0/resolution_lt_720/aspect_ratio_9_16").exists()


def test_cosmos_curate_shard_format(spark, lake, tiny_models, tmp_path):
    """--shard-format cosmos-curate: Curate v1.4's members exactly (compact metas json, a bare list of float16 arrays)."""
    (lake, ids), out = lake, tmp_path / "out"
    run_command(shard_args(lake, out, tiny_models, "--shard-format", "cosmos-curate"))
    samples = {k: m for s in read_bins(out).values() for k, m in s.items()}
    assert set(samples) == {ids["pan.mp4"], ids["walk.mp4"], ids["portrait.mp4"]}
    clips = {r.clip_id: r for r in rows(spark, lake, "clips")}
    for key, members in samples.items():
        meta = json.loads(members["metas"])
        scored = ["motion_score"] if clips[key].motion_global_mean is not None else []
        assert list(meta) == ["span_uuid", "source_video", "duration_span", "width_source", "height_source",
                              "framerate_source", "clip_location", "width", "height", "framerate", "num_frames",
                              "video_codec", "num_bytes", *scored, "windows", "filtered_windows", "valid",
                              "has_caption", "total_prompt_tokens", "total_output_tokens"]
        assert members["metas"] == json.dumps(meta).encode()  # compact, as json.dumps writes it
        windows = captions_of(spark, lake, key)
        assert [(w["start_frame"], w["end_frame"], w["qwen_caption"], w["qwen_output_tokens"]) for w in meta["windows"]] == \
            [(c.start_frame, c.end_frame - 1, c.caption, c.output_tokens) for c in windows]
        assert (meta["width_source"], meta["height_source"]) == (meta["width"], meta["height"])
        arrays = pickle.loads(members["t5_xxl"])
        assert isinstance(arrays, list) and len(arrays) == len(windows)
        assert all(isinstance(a, np.ndarray) and a.dtype == np.float16 and a.shape[1] == 1024 for a in arrays)


def test_second_run_changes_nothing(spark, lake, dataset, tiny_models):
    (lake, _), (out, _) = lake, dataset
    before, shards_version = tar_files(out), tables.latest_version(spark, lake, "shards")
    infos = {p: open(p, "rb").read() for p in glob.glob(str(out / "v0" / "*" / "*" / "*" / "wdinfo.json"))}
    summary = run_command(shard_args(lake, out, tiny_models))
    assert summary["num_tars_written"] == 0 and summary["num_tars_skipped"] == len(before)
    assert tar_files(out) == before and tables.latest_version(spark, lake, "shards") == shards_version
    assert {p: open(p, "rb").read() for p in infos} == infos


def files_under(folder) -> dict[str, float]:
    """Every file under ``folder``, hidden ones (Hadoop's .crc) included -> its modification time."""
    return {os.path.join(d, n): os.path.getmtime(os.path.join(d, n)) for d, _, names in os.walk(folder) for n in names}


def test_dry_run_prints_the_plan_and_writes_nothing(spark, lake, dataset, tiny_models, tmp_path, capsys):
    """Over the complete dataset every tar would be skipped; over a new folder all written, and the folder never appears."""
    (lake, _), (out, _) = lake, dataset
    tars, lake_files, dataset_files = tar_files(out), files_under(lake), files_under(out)
    versions = {t: tables.latest_version(spark, lake, t) for t in ("shards", "runs")}
    v0 = sum(1 for p in tars if p.startswith("v0/"))
    capsys.readouterr()
    plan = run_command(shard_args(lake, out, tiny_models, "--dry-run"))
    assert (plan["num_shard_samples"], plan["num_tars_to_write"], plan["num_tars_to_skip"], plan["num_tars_to_remove"]) == (3, 0, v0, 0)
    assert plan["num_groups"] == v0 // 3 and plan["num_bins"] == 2  # pan and walk share a bin, portrait has its own
    assert (plan["num_deduplicated_clips"], plan["num_filtered_clips"], plan["num_clips_without_captions"]) == (1, 1, 1)
    header, _, row = capsys.readouterr().out.splitlines()[:3]
    assert header.split()[:3] == ["samples", "bins", "tar"] and row.split()[:6] == ["3", "2", str(v0 // 3), "0", str(v0), "0"]
    fresh = tmp_path / "fresh"
    plan = run_command(shard_args(lake, fresh, tiny_models, "--dry-run"))
    assert (plan["num_tars_to_write"], plan["num_tars_to_skip"]) == (v0, 0)
    assert not fresh.exists()
    assert tar_files(out) == tars and files_under(out) == dataset_files and files_under(lake) == lake_files
    assert {t: tables.latest_version(spark, lake, t) for t in versions} == versions


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
    summary = run_command(shard_args(lake, out, tiny_models, "--annotation-version", "v1"))
    got = {k: [w["qwen2p5_7b_caption"] for w in json.loads(m["metas"])["t2w_windows"]]
           for s in read_bins(out, "v1").values() for k, m in s.items()}
    assert got == {k: [c.caption for c in captions_of(spark, lake, k, "v1")] for k in (ids["pan.mp4"], ids["walk.mp4"],
                                                                                         ids["portrait.mp4"])}
    assert {c.prompt for k in got for c in captions_of(spark, lake, k, "v1")} == {"Describe the motion."}
    assert summary["num_clips_too_short"] == 1  # late: captioned in v1, 4.2 s fits no duration bin
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
    # Rebuilding the live dataset follows the change: only the changed clip's group is rewritten.
    again = run_command(shard_args(lake, out, tiny_models))
    assert again["num_tars_written"] == 3 and metas_members(out) == metas_members(tmp_path / "now")


def test_captions_as_of_a_time_in_any_time_zone(spark, lake, dataset, tiny_models, tmp_path, capsys):
    """The same instant written in UTC or at +05:30 reads the same captions version; a microsecond earlier, an older one."""
    from jobs import shard
    from jobs.cli import build_parser

    (lake, _), (_, first) = lake, dataset
    as_of = json.loads(first["input_table_versions"])["captions"]
    history = tables.delta_table(spark, str(lake), "captions").history()
    micros = history.where(f"version = {as_of}").select(F.unix_micros("timestamp")).first()[0]
    committed = datetime.fromtimestamp(micros / 1e6, timezone.utc)

    def version_read(when: str) -> int:
        args = build_parser().parse_args(shard_args(lake, tmp_path / "out", tiny_models, "--captions-as-of-timestamp", when))
        return shard._read_captions(spark, shard.build_config(args))[1]

    assert version_read(committed.isoformat()) == as_of
    assert version_read(committed.astimezone(timezone(timedelta(hours=5, minutes=30))).isoformat()) == as_of
    if as_of > 0:
        assert version_read((committed - timedelta(microseconds=1)).isoformat()) < as_of
    with pytest.raises(SystemExit):
        run_command(shard_args(lake, tmp_path / "out", tiny_models, "--captions-as-of-timestamp", "last tuesday"))
    assert "is not a time such as" in capsys.readouterr().err


def _cli(*args):
    env = {**os.environ, "CLIPLAKE_JARS_DIR": str(JARS_DIR), "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.Popen([sys.executable, "-m", "jobs.cli", *map(str, args)], cwd=REPO_ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)


def test_killed_run_resumes_to_the_same_dataset(spark, lake, dataset, tiny_models, tmp_path):
    """SIGKILL the job once its first wave is committed; the next run skips those tars and ends identical to a clean run."""
    (lake, _), (out, _) = lake, dataset
    resumed = tmp_path / "resumed"
    clean = {path: digest for path, digest in tar_files(out).items() if path.startswith("v0/")}  # v1 came later
    shards = tables.table_path(str(lake), "shards")
    committed = lambda: spark.read.format("delta").load(shards).where(f"dataset_path = '{resumed}'").count()  # noqa: E731
    proc = _cli(*shard_args(lake, resumed, tiny_models, "--tars-per-wave", "1"))
    deadline = time.time() + 600
    while proc.poll() is None and time.time() < deadline and committed() == 0:
        time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert 0 < committed() < len(clean), "the kill should land between waves"
    summary = run_command(shard_args(lake, resumed, tiny_models))
    assert summary["num_tars_skipped"] > 0
    assert set(tar_files(resumed)) == set(clean)
    assert tar_files(resumed) == clean  # the mp4s are the clip files: every tar byte for byte the same


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


def video2world_files(out) -> dict[str, bytes]:
    return {os.path.relpath(p, out): open(p, "rb").read() for p in sorted(glob.glob(os.path.join(str(out), "*", "*")))}


@pytest.fixture(scope="module")
def video2world(lake, tiny_models, tmp_path_factory):
    lake, _ = lake
    out = tmp_path_factory.mktemp("video2world")
    return out, run_command(shard_args(lake, out, tiny_models, "--dataset-format", "video2world"))


def test_video2world_folder_dataset(spark, lake, video2world, tiny_models):
    """Files named {clip}_{start}_{end} (end inclusive): the window's mp4, its caption as text, [float16 array] pickled."""
    from transformers import AutoTokenizer

    (lake, ids), (out, summary) = lake, video2world
    tokenizer = AutoTokenizer.from_pretrained(tiny_models["t5"])
    files = video2world_files(out)
    expected = {}
    for name in ("pan.mp4", "walk.mp4", "portrait.mp4"):
        for c in captions_of(spark, lake, ids[name]):
            expected[f"{c.clip_id}_{c.start_frame}_{c.end_frame - 1}"] = c
    assert ids["pan.mp4"] + "_0_127" in expected and ids["pan.mp4"] + "_256_329" in expected
    assert set(files) == {f"{folder}/{key}.{ext}" for key in expected
                          for folder, ext in (("videos", "mp4"), ("metas", "txt"), ("t5_xxl", "pickle"))}
    clips = {r.clip_id: r for r in rows(spark, lake, "clips")}
    for key, caption in expected.items():
        mp4 = files[f"videos/{key}.mp4"]
        assert decoded_frames(mp4) == caption.end_frame - caption.start_frame
        if len(captions_of(spark, lake, caption.clip_id)) == 1:  # one window: the clip itself
            assert mp4 == open(clips[caption.clip_id].location, "rb").read()
        assert files[f"metas/{key}.txt"] == caption.caption.encode()  # no trailing newline, not JSON
        [array] = pickle.loads(files[f"t5_xxl/{key}.pickle"])
        tokens = len(tokenizer(caption.caption.strip(), max_length=512, truncation=True)["input_ids"])
        assert array.dtype == np.float16 and array.shape == (tokens, 1024)
    manifest = {r.tar_path for r in rows(spark, lake, "shards", f"dataset_path = '{out}'")}
    assert manifest == set(files) and summary["num_tars_written"] == len(files)
    assert summary["num_shard_samples"] == len(expected) and summary["num_deduplicated_clips"] == 1
    again = run_command(shard_args(lake, out, tiny_models, "--dataset-format", "video2world"))
    assert again["num_tars_written"] == 0 and again["num_tars_skipped"] == len(files) and video2world_files(out) == files


def test_split_generates_the_same_video2world_dataset(spark, lake, video2world, tiny_models, tmp_path):
    """`split --generate-cosmos-predict-dataset predict2` writes what `shard --dataset-format video2world` writes."""
    (_, ids), (out, _) = lake, video2world
    inputs = tmp_path / "in"
    inputs.mkdir()
    write_video(str(inputs / "walk.mp4"), [300], width=384, height=256, fps=FPS, speed=2.0)  # the same bytes as walk
    fresh = tmp_path / "lake"
    run_command(["split", "--input-video-path", str(inputs), "--output-path", str(fresh), "--splitting-algorithm",
                 "fixed-stride", "--fixed-stride-split-duration", "60", "--no-generate-embeddings",
                 "--captioning-model", tiny_models["vlm"], "--captioning-window-size", str(WINDOW),
                 "--captioning-max-output-tokens", "6", "--generate-cosmos-predict-dataset", "predict2",
                 "--text-encoder-model", tiny_models["t5"]])
    generated = video2world_files(fresh / "cosmos_predict2_video2world_dataset")
    [clip] = [r.clip_id for r in rows(spark, fresh, "clips")]
    # The same frames as walk in the shared lake, captioned by the same model: the same files under its clip id.
    walk = {p.replace(ids["walk.mp4"], "ID"): data for p, data in video2world_files(out).items() if ids["walk.mp4"] in p}
    assert len(walk) == 2 * 3  # 300 frames: windows 0-127 and 128-299 (a remainder under 64 joins), three files each
    assert {p.replace(clip, "ID"): data for p, data in generated.items() if "/videos/" not in p and not p.startswith("videos/")} == \
        {p: data for p, data in walk.items() if not p.startswith("videos/")}
    assert {p.replace(clip, "ID") for p in generated} == set(walk)
