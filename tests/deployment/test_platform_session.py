"""Where cliplake's Spark session comes from: a conf/ profile with the cached Delta JARs, Delta fetched
by Spark when there are none (a pip install), or the platform's own session on Databricks."""

import os
import subprocess
import sys

import pytest

from jobs.session import REPO_ROOT

pytestmark = pytest.mark.slow

SHOW_SESSION = ("from jobs.session import get_spark; c = get_spark('local').sparkContext.getConf(); "
                "print(c.get('spark.master'), c.get('spark.jars', '-'), c.get('spark.sql.extensions', '-'))")


def run_python(code: str, **env) -> str:
    full_env = {k: v for k, v in os.environ.items() if k != "DATABRICKS_RUNTIME_VERSION"} | env
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, env=full_env, capture_output=True,
                            text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_profile_applies_off_platform_and_not_on_databricks():
    master, jars, extensions = run_python(SHOW_SESSION).split()[-3:]
    assert master == "local[*,2]" and "delta-spark" in jars and extensions == "io.delta.sql.DeltaSparkSessionExtension"
    assert run_python(SHOW_SESSION, DATABRICKS_RUNTIME_VERSION="17.3").split()[-3:] == ["local[*]", "-", "-"]


def test_without_a_jar_folder_spark_fetches_delta(tmp_path):
    """No `make jars` folder: the session asks Spark for Delta's Maven package and Delta tables work."""
    code = ("from jobs.session import get_spark, delta_package; from jobs import tables; s = get_spark('local'); "
            f"tables.ensure_table(s, {str(tmp_path / 'lake')!r}, 'runs'); "
            "print(s.sparkContext.getConf().get('spark.jars.packages'), delta_package())")
    packages, expected = run_python(code, CLIPLAKE_JARS_DIR=str(tmp_path / "no-jars")).split()[-2:]
    assert packages == expected and expected.startswith("io.delta:delta-spark_2.1")
    assert (tmp_path / "lake" / "runs" / "_delta_log" / "00000000000000000000.json").is_file()
