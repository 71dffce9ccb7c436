"""conf/databricks and conf/emr: parseable, and every option they pass is one the CLI has today.

The check is built from ``jobs.cli.build_parser()``, so options added later are known to it and
options renamed or removed break it.
"""

import glob
import importlib
import json
import re
import subprocess
import tomllib
from xml.etree import ElementTree

import pytest
from packaging.requirements import Requirement

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
    scripts = {a.rsplit("/", 1)[-1] for s in steps for a in s["HadoopJarStep"]["Args"] if a.endswith(".py")}
    assert {_pipeline_of(script) for script in scripts} == {"split", "dedup", "shard"}
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


def test_emr_bootstrap_keeps_the_clusters_spark():
    """The wheel is installed without its `spark` extra, and Delta's Python API without dependencies."""
    installs = [line for line in (CONF / "emr" / "bootstrap.sh").read_text().splitlines()
                if re.search(r"pip install", line) and not line.lstrip().startswith("#")]
    wheel = [line for line in installs if "${WHEEL}" in line]
    assert len(wheel) == 1 and "[s3]" in wheel[0] and "spark" not in wheel[0]
    for line in installs:
        assert "pyspark" not in line
        assert "delta-spark" not in line or "--no-deps" in line


SCALA = {"4": "2.13", "3": "2.12"}  # the Scala each pyspark major version is built with


@pytest.mark.parametrize("extra, pom", [("spark", "pom.xml"), ("spark35", "spark35/pom.xml")])
def test_spark_extras_match_their_delta_jars(extra, pom):
    """pyspark and delta-spark only in extras; each extra's Delta pin is the version its pom fetches."""
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    assert not {Requirement(r).name for r in project["dependencies"]} & {"pyspark", "delta-spark"}
    pins = {r.name: str(r.specifier) for r in map(Requirement, project["optional-dependencies"][extra])}
    namespace = {"m": "http://maven.apache.org/POM/4.0.0"}
    properties = ElementTree.parse(CONF / "maven" / pom).getroot().find("m:properties", namespace)
    assert pins["delta-spark"] == "==" + properties.find("m:delta.version", namespace).text
    assert properties.find("m:scala.binary.version", namespace).text == SCALA[pins["pyspark"].removeprefix("==")[0]]


def test_the_check_catches_a_wrong_option():
    with pytest.raises(AssertionError, match="no option --output-pat"):
        check_cli_arguments(["split", "--input-video-path", "x", "--output-pat", "y"])
    with pytest.raises(SystemExit):
        check_cli_arguments(["split", "--output-path", "y", "--splitting-algorithm", "scenedetect"])
