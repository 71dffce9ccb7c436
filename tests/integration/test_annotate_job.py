"""The annotate stages in the split job and `cliplake caption`, on real Spark and Delta with tiny models."""

import json
import os
import subprocess
import sys

import pytest
from PIL import Image

from curate_udfs.testing.synthetic import scene_frame, write_video
from curate_udfs.testing.text_clips import subtitle, write_clip
from jobs import annotate, tables
from jobs.cli import run_command
from jobs.session import CONF_DIR, JARS_DIR, REPO_ROOT

pytestmark = pytest.mark.slow

FPS = 24
PAN_FRAMES = 200  # no cut: the whole video is one clip of 200 frames
WINDOW = 64  # 200 = 3 x 64 + 8: the remainder (< 32) joins the last window


def expected_windows(num_frames: int, size: int) -> list[tuple[int, int]]:
    """The caption windows by the rule, computed independently of the code under test."""
    full, rest = divmod(num_frames, size)
    if full == 0:
        return [(0, num_frames)]
    bounds = [(i * size, (i + 1) * size) for i in range(full)]
    if rest >= size // 2:
        bounds.append((full * size, num_frames))
    elif rest:
        bounds[-1] = (bounds[-1][0], num_frames)
    return bounds


def rows(spark, lake, name, where="true"):
    return tables.read_table(spark, lake, name).where(where).collect()


@pytest.fixture(scope="module")
def motion_inputs(tmp_path_factory):
    """Three 384x256 single-shot videos: one static, one panning 4 px per frame, and that pan with a subtitle."""
    folder = tmp_path_factory.mktemp("motion_input")
    write_video(str(folder / "static.mp4"), [PAN_FRAMES], width=384, height=256, fps=FPS, speed=0.0)
    write_video(str(folder / "pan.mp4"), [PAN_FRAMES], width=384, height=256, fps=FPS, speed=4.0)
    write_clip(str(folder / "subtitled.mp4"),
               [subtitle(scene_frame(0, i, 384, 256, 4.0), "Every clip tells a story") for i in range(PAN_FRAMES)], fps=FPS)
    return folder


def caption_options(tiny_models, *extra):
    return ["--captioning-model", tiny_models["vlm"], "--captioning-window-size", str(WINDOW),
            "--captioning-max-output-tokens", "6", *extra]


def annotation_passes(command: list) -> tuple[dict, list]:
    """``command``'s summary, and what each annotation pass was given: a wave's paths, or "listing"."""
    passes, run = [], annotate.Annotator.run

    def counted(self, source_paths=None):
        passes.append(sorted(map(os.path.basename, source_paths)) if isinstance(source_paths, list) else "listing")
        return run(self, source_paths)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(annotate.Annotator, "run", counted)
        return run_command(command), passes


@pytest.fixture(scope="module")
def first_run(spark, motion_inputs, tiny_models, tmp_path_factory):
    lake = tmp_path_factory.mktemp("annotated")
    summary, passes = annotation_passes(["split", "--input-video-path", str(motion_inputs), "--output-path", str(lake),
                                         "--motion-filter", "enable", "--artificial-text-filter", "enable",
                                         "--generate-previews", *caption_options(tiny_models)])
    assert summary["num_clips"] == 3 and summary["num_error_videos"] == 0
    return lake, passes


@pytest.fixture(scope="module")
def lake(first_run):
    return first_run[0]


def clip_of(spark, lake, name):
    [clip] = rows(spark, lake, "clips", f"source_path LIKE '%/{name}'")
    return clip


def test_motion_filter_marks_the_static_clip(spark, lake):
    static, pan = clip_of(spark, lake, "static.mp4"), clip_of(spark, lake, "pan.mp4")
    assert static.filtered_by == "motion" and static.motion_global_mean < 0.00098
    assert pan.filtered_by is None and pan.motion_global_mean > 10 * 0.00098
    assert pan.motion_per_patch_min_256 > 0.000001
    assert static.error is None and pan.error is None


def test_artificial_text_filter_marks_the_subtitled_clip(spark, lake):
    subtitled, pan, static = (clip_of(spark, lake, f"{name}.mp4") for name in ("subtitled", "pan", "static"))
    assert (subtitled.filtered_by, pan.filtered_by) == ("artificial_text", None)
    assert subtitled.artificial_text_score >= 0.5 > pan.artificial_text_score and "story" in subtitled.artificial_text
    assert static.artificial_text_score is None  # filtered by motion first: never OCR'd


def test_embeddings_only_for_clips_in_play(spark, lake):
    from curate_udfs.embedding import DEFAULT_ALGORITHM, EmbeddingConfig

    [row] = rows(spark, lake, "clip_embeddings")
    assert row.clip_id == clip_of(spark, lake, "pan.mp4").clip_id
    assert row.model == EmbeddingConfig(DEFAULT_ALGORITHM).model_name
    assert len(row.embedding) == row.dim > 0
    assert abs(sum(x * x for x in row.embedding) - 1.0) < 1e-3


def test_captions_per_window_with_previews(spark, lake, tiny_models):
    pan = clip_of(spark, lake, "pan.mp4")
    captions = sorted(rows(spark, lake, "captions"), key=lambda r: r.window_index)
    assert [(r.start_frame, r.end_frame) for r in captions] == expected_windows(pan.num_frames, WINDOW)
    assert {r.clip_id for r in captions} == {pan.clip_id}
    for r in captions:
        assert r.annotation_version == "v0" and isinstance(r.caption, str)
        assert r.prompt_tokens > 0 and 0 < r.output_tokens <= 6
        preview = os.path.join(lake, "media", "previews", pan.clip_id, f"{r.start_frame}_{r.end_frame}.webp")
        with Image.open(preview) as image:
            assert image.format == "WEBP" and image.height == 240
            assert image.n_frames == max(1, (r.end_frame - r.start_frame) // FPS)  # one per whole second


def test_runs_row_counts_annotations(spark, lake):
    [run] = rows(spark, lake, "runs")
    assert (run.num_filtered_motion, run.num_filtered_artificial_text, run.num_embedded_clips,
            run.num_captioned_clips) == (1, 1, 1, 1)
    assert run.num_caption_windows == len(expected_windows(PAN_FRAMES, WINDOW))
    assert run.num_annotation_errors == 0
    assert set(json.loads(run.stage_resources)) == {"motion", "artificial_text", "embedding", "caption_prep", "captioning"}


def test_a_run_that_splits_every_video_annotates_each_wave_once(first_run):
    _, passes = first_run
    assert passes == [["pan.mp4", "static.mp4", "subtitled.mp4"]]  # its one wave; no second pass over the listing


def test_rerun_changes_nothing(spark, lake, motion_inputs, tiny_models):
    names = ["clips", "clip_embeddings", "captions"]
    before = {name: tables.latest_version(spark, lake, name) for name in names}
    summary, passes = annotation_passes(["split", "--input-video-path", str(motion_inputs), "--output-path", str(lake),
                                         "--motion-filter", "enable", "--artificial-text-filter", "enable",
                                         *caption_options(tiny_models)])
    assert summary["num_skipped_videos"] == 3 and summary["num_caption_windows"] == 0
    assert passes == ["listing"]  # clips of skipped videos (an interrupted run's) are annotated over the listing
    assert {name: tables.latest_version(spark, lake, name) for name in names} == before


def test_caption_command_adds_a_version_and_keeps_the_old_one(spark, lake, tiny_models):
    v0 = {(r.clip_id, r.window_index): r.caption for r in rows(spark, lake, "captions")}
    before = tables.latest_version(spark, lake, "captions")
    summary = run_command(["caption", "--output-path", str(lake), "--annotation-version", "v1",
                           *caption_options(tiny_models, "--captioning-prompt-text", "Describe the motion.")])
    assert summary["pipeline"] == "caption" and summary["num_caption_windows"] == len(v0)
    now = rows(spark, lake, "captions")
    assert {(r.clip_id, r.window_index): r.caption for r in now if r.annotation_version == "v0"} == v0
    v1 = [r for r in now if r.annotation_version == "v1"]
    assert len(v1) == len(v0) and {r.prompt for r in v1} == {"Describe the motion."}
    old = spark.read.format("delta").option("versionAsOf", before).load(tables.table_path(str(lake), "captions"))
    assert {r.annotation_version for r in old.collect()} == {"v0"}
    assert tables.latest_version(spark, lake, "captions") > before


def test_enhanced_captions_with_a_prompt_variant_land_beside_the_raw_ones(spark, lake, tiny_models):
    from curate_udfs.captioning.prompts import PROMPT_VARIANTS
    from curate_udfs.sharding.members import clip_metas
    from jobs.shard import captioned_clips

    summary = run_command(["caption", "--output-path", str(lake), "--annotation-version", "v2",
                           *caption_options(tiny_models, "--captioning-prompt-variant", "av", "--enhance-captions",
                                            "--enhance-captions-model", tiny_models["lm"],
                                            "--enhance-captions-max-output-tokens", "5")])
    v2 = rows(spark, lake, "captions", "annotation_version = 'v2'")
    assert summary["num_caption_windows"] == len(v2) > 0
    assert {r.prompt for r in v2} == {PROMPT_VARIANTS["av"]} and {r.enhance_model for r in v2} == {tiny_models["lm"]}
    assert all(isinstance(r.enhanced_caption, str) and r.enhanced_caption and r.enhanced_caption != r.caption for r in v2)
    assert {r.enhanced_caption for r in rows(spark, lake, "captions", "annotation_version = 'v0'")} == {None}
    captions = tables.read_table(spark, lake, "captions")
    [clip] = captioned_clips(captions.where("annotation_version = 'v2'")).collect()
    meta = clip_metas(clip.asDict())
    by_window = {r.window_index: r for r in v2}
    assert [w["qwen_lm_enhanced_caption"] for w in meta["windows"]] == [by_window[i].enhanced_caption for i in range(len(v2))]
    [clip] = captioned_clips(captions.where("annotation_version = 'v0'")).collect()
    assert clip.enhanced_captions is None and not any(k.endswith("enhanced_caption") for w in clip_metas(clip.asDict())["windows"]
                                                      for k in w)


def test_a_captions_table_from_before_enhancement_gains_its_columns(spark, tmp_path):
    """A lake written by an older cliplake: its captions table lacks the enhancement columns until the next MERGE."""
    from pyspark.sql import types as T

    from jobs.shard import captioned_clips

    old_schema = T.StructType([f for f in tables.CAPTIONS.fields if f.name not in ("enhanced_caption", "enhance_model")])
    path = tables.table_path(str(tmp_path), "captions")
    old = {"clip_id": "c", "window_index": 0, "annotation_version": "v0", "start_frame": 0, "end_frame": 10,
           "caption": "a cat", "model": "m", "prompt": "p", "prompt_tokens": 5, "output_tokens": 2}
    spark.createDataFrame([tuple(old.get(f.name) for f in old_schema)], old_schema).write.format("delta").save(path)
    new = {**old, "window_index": 1, "start_frame": 10, "end_frame": 20, "caption": "a dog",
           "enhanced_caption": "a happy dog", "enhance_model": "lm"}
    tables.merge_rows(spark, str(tmp_path), "captions", spark.createDataFrame([new]))
    now = tables.read_table(spark, str(tmp_path), "captions")
    assert {"enhanced_caption", "enhance_model"} <= set(now.columns)
    assert sorted((r.caption, r.enhanced_caption) for r in now.collect()) == [("a cat", None), ("a dog", "a happy dog")]
    [before] = captioned_clips(tables.read_table(spark, str(tmp_path), "captions", version=0)).collect()
    assert before.enhanced_captions is None and before.enhance_model is None and before.captions == ["a cat"]
    [after] = captioned_clips(now).collect()
    assert after.enhanced_captions == [None, "a happy dog"] and after.enhance_model == "lm"

    # likewise the clips table and the VLM stages' columns, which a stage sets with update_columns
    new_clip_columns = ("vlm_filter_score", "vlm_filter_answer", "video_type", "video_classifier_answer")
    old_clips = T.StructType([f for f in tables.CLIPS.fields if f.name not in new_clip_columns])
    clip = {"clip_id": "c", "source_path": "/v.mp4", "num_frames": 10}
    spark.createDataFrame([tuple(clip.get(f.name) for f in old_clips)], old_clips).write.format("delta").save(
        tables.table_path(str(tmp_path), "clips"))
    scored = spark.createDataFrame([("c", 1.0, "[]", None, None)],
                                   "clip_id string, vlm_filter_score double, vlm_filter_answer string, filtered_by string, "
                                   "error string")
    tables.update_columns(spark, str(tmp_path), "clips", scored)
    [row] = tables.read_table(spark, str(tmp_path), "clips").collect()
    assert (row.vlm_filter_score, row.vlm_filter_answer, row.num_frames) == (1.0, "[]", 10)


def test_vlm_filter_and_video_classifier_through_an_openai_endpoint(spark, motion_inputs, tmp_path, monkeypatch):
    """The VLM stages of `cliplake split` against the loopback OpenAI-compatible server answering as a VLM would."""
    from curate_udfs.testing.openai_server import OpenAICompatibleServer

    def answer(prompt, frames):
        if '"vehicle_POV"' in prompt:  # the video-type question
            return '```json\n{"vehicle_POV": "yes", "cooking": "no"}\n```'
        return '{"slideshow": "yes", "fast zoom": "no"}'

    monkeypatch.setenv("OPENAI_API_KEY", "EMPTY")
    lake = tmp_path / "lake"
    with OpenAICompatibleServer(answer=answer) as server:
        summary = run_command(["split", "--input-video-path", str(motion_inputs), "--output-path", str(lake),
                               "--no-generate-embeddings", "--no-generate-captions", "--captioning-window-size", str(WINDOW),
                               "--captioning-backend", "openai", "--captioning-api-base-url", server.base_url,
                               "--captioning-api-model", "judge", "--vlm-filter", "score-only",
                               "--vlm-filter-categories", "slideshow,fast zoom", "--video-classifier", "enable",
                               "--video-classifier-block", "vehicle_POV"])
    clips = rows(spark, lake, "clips")
    assert len(clips) == 3 and all(c.error is None for c in clips)
    assert {(c.vlm_filter_score, c.video_type, c.filtered_by) for c in clips} == {(1.0, "vehicle_POV", "video_classifier")}
    windows = len(expected_windows(PAN_FRAMES, WINDOW))
    assert all(json.loads(c.vlm_filter_answer) == [{"slideshow": True, "fast zoom": False}] * windows for c in clips)
    assert (summary["num_filtered_vlm"], summary["num_filtered_video_classifier"]) == (0, 3)
    assert server.statuses == [200] * (2 * 3 * windows)  # each clip's windows asked twice: once per stage


def test_caption_command_through_an_openai_endpoint_and_one_that_fails(spark, motion_inputs, tiny_models, tmp_path,
                                                                        monkeypatch):
    """`cliplake caption --captioning-backend openai`: captions from the endpoint serving the tiny VLM; an endpoint
    answering 500 forever leaves error rows (clips.error) and a finished run, and --retry-errors captions them later."""
    from curate_udfs.testing.openai_server import OpenAICompatibleServer

    monkeypatch.setenv("OPENAI_API_KEY", "EMPTY")
    lake = tmp_path / "lake"
    run_command(["split", "--input-video-path", str(motion_inputs / "pan.mp4"), "--output-path", str(lake),
                 "--no-generate-embeddings", "--no-generate-captions"])

    def caption(server, version, *extra):
        return run_command(["caption", "--output-path", str(lake), "--annotation-version", version,
                            "--captioning-window-size", str(WINDOW), "--captioning-max-output-tokens", "6",
                            "--captioning-backend", "openai", "--captioning-api-base-url", server.base_url,
                            "--captioning-api-model", "tiny-vlm", "--captioning-api-max-retries", "1", *extra])

    with OpenAICompatibleServer(answer=lambda prompt, frames: "never", fail_always=500) as failing:
        failed = caption(failing, "v1")
    [clip] = rows(spark, lake, "clips")
    assert failed["num_caption_windows"] == 0 and failed["num_annotation_errors"] == 1
    assert clip.error.startswith("captioning: caption API") and "HTTP 500" in clip.error and "after 2 tries" in clip.error
    assert rows(spark, lake, "captions") == []
    with OpenAICompatibleServer(tiny_models["vlm"]) as server:
        summary = caption(server, "v1", "--retry-errors")
    captions = rows(spark, lake, "captions")
    assert summary["num_caption_windows"] == len(captions) == len(expected_windows(PAN_FRAMES, WINDOW))
    assert {r.model for r in captions} == {"tiny-vlm"} and all(isinstance(r.caption, str) for r in captions)
    assert all(r.prompt_tokens > 0 and r.output_tokens >= 1 for r in captions)
    [clip] = rows(spark, lake, "clips")
    assert clip.error is None  # the earlier captioning error is gone with the captions


def test_missing_captioning_model_stops_before_any_work(motion_inputs, tmp_path, capsys):
    lake = tmp_path / "lake"
    with pytest.raises(SystemExit) as stop:
        run_command(["split", "--input-video-path", str(motion_inputs), "--output-path", str(lake),
                     "--captioning-model", str(tmp_path / "no-such-model")])
    assert stop.value.code == 2
    message = capsys.readouterr().err
    assert "--captioning-model" in message and "--no-generate-captions" in message
    assert not lake.exists()


def test_aesthetic_filter_and_clip_embedder(spark, motion_inputs, tiny_models, tmp_path):
    common = ["split", "--input-video-path", str(motion_inputs / "pan.mp4"), "--no-generate-captions",
              "--aesthetic-model", tiny_models["aesthetic"], "--embedding-algorithm", "clip",
              "--embedding-model", tiny_models["embed"]]
    scored = tmp_path / "scored"
    run_command([*common, "--output-path", str(scored), "--aesthetic-threshold", "-1"])
    [clip] = rows(spark, scored, "clips")
    assert clip.aesthetic_score is not None and clip.filtered_by is None
    [embedding] = rows(spark, scored, "clip_embeddings")
    assert embedding.clip_id == clip.clip_id and len(embedding.embedding) == embedding.dim

    filtered = tmp_path / "filtered"
    summary = run_command([*common, "--output-path", str(filtered), "--aesthetic-threshold", "1e9"])
    [clip] = rows(spark, filtered, "clips")
    assert clip.filtered_by == "aesthetic" and summary["num_filtered_aesthetic"] == 1
    assert rows(spark, filtered, "clip_embeddings") == []


GPU_DISCOVERY = '#!/bin/sh\necho \'{"name": "gpu", "addresses": ["0"]}\'\n'


def cluster_profile(folder, *, gpus: bool) -> str:
    """A local-cluster profile in its own conf dir; with ``gpus``, each worker advertises one GPU."""
    conf = (CONF_DIR / "local-cluster.conf").read_text()
    if gpus:
        script = folder / "gpus.sh"
        script.write_text(GPU_DISCOVERY)
        script.chmod(0o755)
        for key in ["spark.worker.resource.gpu", "spark.executor.resource.gpu"]:
            conf += f"\n{key}.amount 1\n{key}.discoveryScript {script}\n"
    (folder / "cluster.conf").write_text(conf)
    return str(folder)


def run_cli(conf_dir, *args):
    env = {**os.environ, "CLIPLAKE_CONF_DIR": conf_dir, "CLIPLAKE_JARS_DIR": str(JARS_DIR)}
    return subprocess.run([sys.executable, "-m", "jobs.cli", *args, "--spark-profile", "cluster"], env=env,
                          capture_output=True, text=True, timeout=900, cwd=REPO_ROOT)


def test_gpu_share_becomes_a_resource_profile_on_a_cluster(spark, lake, tiny_models, tmp_path):
    """local-cluster with a discovery script advertising one GPU per worker: the captioning tasks are
    scheduled with half a GPU each (torch finds no CUDA here and runs them on the CPU)."""
    conf_dir = cluster_profile(tmp_path, gpus=True)
    done = run_cli(conf_dir, "caption", "--output-path", str(lake), "--annotation-version", "gpu",
                   "--captioning-gpus-per-worker", "0.5", *caption_options(tiny_models))
    assert done.returncode == 0, done.stderr[-3000:]
    [run] = rows(spark, lake, "runs", "pipeline = 'caption' AND arguments LIKE '%\"annotation_version\": \"gpu\"%'")
    used = json.loads(run.stage_resources)
    assert used["captioning"]["gpus_per_task"] == 0.5
    assert used["captioning"]["tasks_with_gpu"] == used["captioning"]["tasks"] > 0
    assert used["caption_prep"]["tasks_with_gpu"] == 0  # CPU preparation stays in the default profile
    assert len(rows(spark, lake, "captions", "annotation_version = 'gpu'")) == run.num_caption_windows > 0


def test_gpu_request_without_gpus_fails_clearly(lake, tiny_models, tmp_path):
    done = run_cli(cluster_profile(tmp_path, gpus=False), "caption", "--output-path", str(lake),
                   "--annotation-version", "never", "--captioning-gpus-per-worker", "1", *caption_options(tiny_models))
    assert done.returncode == 2
    assert "--captioning-gpus-per-worker" in done.stderr and "no GPUs" in done.stderr
