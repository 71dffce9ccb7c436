"""`--config FILE` through the real parser (``jobs.cli.parse_args``), no Spark session.

The example files under conf/examples parse and their values land; the command line wins; a key,
a value or a file the options refuse stops with one line naming the file, and exit status 2.
"""

import json
import os

import pytest

from jobs import split_annotate
from jobs.cli import parse_args
from jobs.session import REPO_ROOT

EXAMPLES = os.path.join(REPO_ROOT, "conf", "examples")


def example(name: str) -> str:
    return os.path.join(EXAMPLES, f"{name}.yaml")


def test_every_example_file_parses_and_its_values_land():
    split = parse_args(["split", "--config", example("split")])
    assert (split.input_video_path, split.output_path) == ("s3://my-bucket/raw-videos/", "s3://my-bucket/lake/")
    assert (split.motion_filter, split.aesthetic_threshold, split.embedding_algorithm) == ("enable", 3.5, "clip")
    assert (split.limit_clips, split.captioning_window_size, split.commit_every_seconds) == (0, 256, 600.0)
    assert split.generate_previews is False and split.generate_captions is True  # (untouched flag: its default)

    caption = parse_args(["caption", "--config", example("caption")])
    assert (caption.output_path, caption.annotation_version, caption.captioning_batch_size) == ("s3://my-bucket/lake/", "v1", 8)
    assert (caption.captioning_prompt_variant, caption.captioning_prompt_text) == ("av", None)
    assert caption.enhance_captions is True and caption.enhance_captions_model == "/models/Qwen2.5-7B-Instruct"

    dedup = parse_args(["dedup", "--config", example("dedup")])
    assert (dedup.n_clusters, dedup.eps_to_extract, dedup.which_to_keep) == (1000, [0.01, 0.05, 0.1], "hard")
    assert dedup.embedding_model is None and dedup.export_cosmos_layout is None  # null: the default

    shard = parse_args(["shard", "--config", example("shard")])
    assert (shard.input_clip_path, shard.output_dataset_path) == ("s3://my-bucket/lake/", "s3://my-bucket/datasets/v0/")
    assert (shard.semantic_dedup_epsilon, shard.min_clips_per_tar, shard.drop_small_shards) == (0.01, 5, True)


def test_the_command_line_wins_over_the_file(tmp_path):
    config = tmp_path / "dedup.yaml"
    config.write_text("output-path: /lake\nn-clusters: 5\neps-to-extract: [0.01, 0.1]\nwhich-to-keep: easy\n")
    args = parse_args(["dedup", "--n-clusters", "7", "--config", str(config), "--eps-to-extract", "0.2"])
    assert (args.output_path, args.n_clusters, args.eps_to_extract, args.which_to_keep) == ("/lake", 7, [0.2], "easy")
    # a repeatable option: the command line's list replaces the file's; a mutually exclusive choice replaces its rival
    export = tmp_path / "export.yaml"
    export.write_text("output-path: /lake\nto: /out\nannotation-version: [v0, v1]\n")
    assert parse_args(["export-cosmos", "--config", str(export), "--annotation-version", "v2"]).annotation_version == ["v2"]
    assert parse_args(["export-cosmos", "--config", str(export)]).annotation_version == ["v0", "v1"]
    shard = tmp_path / "shard.yaml"
    shard.write_text("input-clip-path: /lake\noutput-dataset-path: /out\ncaptions-as-of-version: 3\n")
    args = parse_args(["shard", "--config", str(shard), "--captions-as-of-timestamp", "2025-06-01 12:00:00"])
    assert (args.captions_as_of_version, args.captions_as_of_timestamp) == (None, "2025-06-01 12:00:00")


def test_flags_and_positionals(tmp_path):
    config = tmp_path / "split.yaml"
    config.write_text("output-path: /lake\ninput-video-path: /in\nno-generate-captions: true\n"
                      "generate_embeddings: false\nretry-errors: false\nlimit-clips: 2\n")
    args = parse_args(["split", "--config", str(config)])
    assert (args.generate_captions, args.generate_embeddings, args.retry_errors, args.limit_clips) == (False, False, False, 2)
    assert split_annotate.build_config(args, str(tmp_path / "clips")).limit_clips == 2  # on to the split stage
    shard = tmp_path / "shard.yaml"
    shard.write_text("input-clip-path: /lake\noutput-dataset-path: /out\ndrop-small-shards: true\n")
    assert parse_args(["shard", "--config", str(shard), "--no-drop-small-shards"]).drop_small_shards is False
    sql = tmp_path / "sql.yaml"
    sql.write_text("output-path: /lake\nquery: SELECT count(*) FROM clips\nmax-rows: 5\n")
    assert parse_args(["sql", "--config", str(sql)]).query == "SELECT count(*) FROM clips"
    assert parse_args(["sql", "--config", str(sql), "SELECT 1"]).query == "SELECT 1"


def test_json_and_cosmos_curate_shaped_files(tmp_path):
    plain = tmp_path / "dedup.json"
    plain.write_text(json.dumps({"output_path": "/lake", "n_clusters": 4, "eps_to_extract": [0.05], "dry-run": True}))
    args = parse_args(["dedup", "--config", str(plain)])
    assert (args.output_path, args.n_clusters, args.eps_to_extract, args.dry_run) == ("/lake", 4, [0.05], True)
    # Cosmos-Curate's own config files: {"pipeline": ..., "args": {...}} with underscore keys
    cosmos = tmp_path / "split_config.json"
    cosmos.write_text(json.dumps({"pipeline": "split", "args": {
        "input_video_path": "/in", "output_clip_path": "/lake", "generate_embeddings": True, "generate_captions": False,
        "motion_filter": "disable", "aesthetic_threshold": None, "limit": 0, "limit_clips": 3}}))
    args = parse_args(["split", "--config", str(cosmos)])
    assert (args.output_path, args.generate_embeddings, args.generate_captions, args.limit_clips) == ("/lake", True, False, 3)


@pytest.mark.parametrize("text, words", [
    ("output-path: /lake\nn-cluster: 5\n", "unknown option 'n-cluster' for cliplake dedup"),
    ("output-path: /lake\nsim-metric: manhattan\n", "argument --sim-metric: invalid choice: 'manhattan'"),
    ("output-path: /lake\nn-clusters: many\n", "argument --n-clusters: invalid int value: 'many'"),
    ("output-path: /lake\nn-clusters: [1, 2]\n", "'n-clusters' takes one value"),
    ("output-path: /lake\ndry-run: yes please\n", "'dry-run' is a flag: give true or false"),
    ("output-path: [unclosed\n", "does not parse"),
    ("- a list\n", "must hold a mapping"),
    ('{"pipeline": "shard", "args": {"output-path": "/lake"}}', "is for the shard pipeline, not cliplake dedup"),
])
def test_a_file_the_options_refuse_stops_with_one_line(tmp_path, capsys, text, words):
    config = tmp_path / "dedup.yaml"
    config.write_text(text)
    with pytest.raises(SystemExit) as stop:
        parse_args(["dedup", "--config", str(config)])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and err.count("\n") == 1
    assert err.startswith(f"cliplake dedup: error: --config {config}") and words in err


def test_a_required_option_still_missing_is_argparses_error(tmp_path, capsys):
    config = tmp_path / "dedup.yaml"
    config.write_text("n-clusters: 5\n")
    with pytest.raises(SystemExit) as stop:
        parse_args(["dedup", "--config", str(config)])
    assert stop.value.code == 2 and "the following arguments are required: --output-path" in capsys.readouterr().err


def test_a_file_and_the_same_options_typed_out_give_the_same_namespace():
    """What the job receives is all it sees: equal namespaces (but for --config itself) make equal runs."""
    typed = {
        "dedup": ["--output-path", "s3://my-bucket/lake/", "--n-clusters", "1000", "--max-iter", "100", "--random-state", "1234",
                  "--kmeans-backend", "auto", "--kmeans-max-points-per-centroid", "256", "--sim-metric", "cosine",
                  "--which-to-keep", "hard", "--eps-to-extract", "0.01", "0.05", "0.1"],
        "shard": ["--input-clip-path", "s3://my-bucket/lake/", "--output-dataset-path", "s3://my-bucket/datasets/v0/",
                  "--input-semantic-dedup-path", "s3://my-bucket/lake/", "--semantic-dedup-epsilon", "0.01",
                  "--annotation-version", "v0", "--dataset-format", "webdataset", "--shard-format", "cosmos-predict2.5",
                  "--text-encoder-model", "/models/t5-v1_1-xxl", "--target-tar-size-mb", "500", "--max-tars-per-part", "100",
                  "--min-clips-per-tar", "5", "--drop-small-shards"],
    }
    for command, argv in typed.items():
        from_file = vars(parse_args([command, "--config", example(command)]))
        assert from_file.pop("config") == example(command)
        typed_out = vars(parse_args([command, *argv]))
        assert typed_out.pop("config") is None and from_file == typed_out
