"""conf/databricks and conf/emr: parseable, and every option they pass is one the CLI has today.

The check is built from ``jobs.cli.build_parser()``, so options added later are known to it and
options renamed or removed break it.
"""

import glob
import importlib
import json
import subprocess
import tomllib

import pytest

from jobs.cli import build_parser
from jobs.session import REPO_ROOT

CONF = REPO_ROOT / "conf"


def subcommand_parsers():
    (commands,) = [a for a in build_parser()._actions if a.__class__.__name__ == "_SubParsersAction"]
    return commands.choices


def check_cli_arguments(arguments: list[str]) -> None:
    """``cliplake ARGUMENTS`` parses, and every ``--option`` is spelled exactly as the CLI defines it
    (argparse would also accept unambiguous abbreviations)."""
    command, *rest = arguments
    parsers = subcommand_parsers()
    assert command in parsers, f"no cliplake command {command!r} (have {sorted(parsers)})"
    known = parsers[command]._option_string_actions
    for token in rest:
        if token.startswith("--"):
            assert token.split("=", 1)[0] in known, f"cliplake {command} has no option {token}"
    build_parser().parse_args(arguments)  # types and choices too; exits on an error


def test_databricks_job_runs_the_wheel_with_options_the_cli_has():
    job = json.loads((CONF / "databricks" / "cliplake-job.json").read_text())
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    clusters = {c["job_cluster_key"]: c["new_cluster"] for c in job["job_clusters"]}
    # A task per pipeline: split-annotate, a caption pass, dedup, shard-dataset.
    assert {t["python_wheel_task"]["parameters"][0] for t in job["tasks"]} == {"split", "caption", "dedup", "shard"}
    for task in job["tasks"]:
        wheel = task["python_wheel_task"]
        assert wheel["package_name"] == project["name"] and wheel["entry_point"] in project["scripts"]
        assert any(lib["whl"].endswith(".whl") for lib in task["libraries"])
        check_cli_arguments(wheel["parameters"])
        assert {"--catalog", "--schema"} <= set(wheel["parameters"])  # Unity Catalog managed tables
        cluster = clusters[task["job_cluster_key"]]
        conf = cluster["spark_conf"]
        assert conf["spark.plugins"] == "com.nvidia.spark.SQLPlugin" and "gpu" in cluster["spark_version"]
        assert 0 < float(conf["spark.task.resource.gpu.amount"]) <= float(conf["spark.executor.resource.gpu.amount"])
        for gpus in [v for k, v in zip(wheel["parameters"], wheel["parameters"][1:]) if k.endswith("-gpus-per-worker")]:
            assert 0 < float(gpus) <= float(conf["spark.executor.resource.gpu.amount"])


def _pipeline_of(script: str) -> str:
    """The cliplake command a pipeline script runs: its module's PIPELINE."""
    module = importlib.import_module(f"jobs.{script.rsplit('/', 1)[-1].removesuffix('.py')}")
    return module.PIPELINE


def test_emr_steps_submit_pipeline_scripts_with_options_the_cli_has():
    steps = json.loads((CONF / "emr" / "steps.json").read_text())["Steps"]
    assert steps
    for step in steps:
        assert step["ActionOnFailure"] in ("TERMINATE_CLUSTER", "CANCEL_AND_WAIT", "CONTINUE")
        jar = step["HadoopJarStep"]
        assert jar["Jar"] == "command-runner.jar" and jar["Args"][0] == "spark-submit"
        args = jar["Args"][1:]
        script_at = next(i for i, a in enumerate(args) if a.endswith(".py"))
        submit, script, job_args = args[:script_at], args[script_at], args[script_at + 1:]
        flags = dict(zip(submit[::2], submit[1::2]))
        assert len(submit) % 2 == 0 and flags["--py-files"].endswith(".whl")
        assert all("=" in v for k, v in zip(submit[::2], submit[1::2]) if k == "--conf")
        assert (REPO_ROOT / "jobs" / script.rsplit("/", 1)[-1]).is_file()
        check_cli_arguments([_pipeline_of(script), *job_args])


def test_emr_configurations_and_scripts_are_well_formed():
    classifications = {c["Classification"]: c["Properties"] for c in json.loads((CONF / "emr" / "configurations.json").read_text())}
    assert classifications["delta-defaults"] == {"delta.enabled": "true"}
    assert classifications["spark-defaults"]["spark.sql.extensions"] == "io.delta.sql.DeltaSparkSessionExtension"
    for script in glob.glob(str(CONF / "*" / "*.sh")):
        subprocess.run(["bash", "-n", script], check=True)


def test_the_check_catches_a_wrong_option():
    with pytest.raises(AssertionError, match="no option --output-pat"):
        check_cli_arguments(["split", "--input-video-path", "x", "--output-pat", "y"])
    with pytest.raises(SystemExit):
        check_cli_arguments(["split", "--output-path", "y", "--splitting-algorithm", "scenedetect"])
