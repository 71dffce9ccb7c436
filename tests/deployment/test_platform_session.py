"""On Databricks cliplake takes the platform's Spark as it is: no conf/ profile, no JARs, no master of its own."""

import os
import subprocess
import sys

import pytest

from jobs.session import REPO_ROOT

pytestmark = pytest.mark.slow

SHOW_SESSION = ("from jobs.session import get_spark; c = get_spark('local').sparkContext.getConf(); "
                "print(c.get('spark.master'), c.get('spark.jars', '-'), c.get('spark.sql.extensions', '-'))")


def session_settings(**env) -> list[str]:
    """master, spark.jars and SQL extensions of the session ``get_spark('local')`` gives a fresh process."""
    full_env = {k: v for k, v in os.environ.items() if k != "DATABRICKS_RUNTIME_VERSION"} | env
    result = subprocess.run([sys.executable, "-c", SHOW_SESSION], cwd=REPO_ROOT, env=full_env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.split()[-3:]


def test_profile_applies_off_platform_and_not_on_databricks():
    master, jars, extensions = session_settings()
    assert master == "local[*,2]" and "delta-spark" in jars and extensions == "io.delta.sql.DeltaSparkSessionExtension"
    assert session_settings(DATABRICKS_RUNTIME_VERSION="17.3") == ["local[*]", "-", "-"]
