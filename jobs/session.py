"""Build the SparkSession a job runs in, from a profile in conf/, or take the one it was given."""

import contextlib
import os
import re
import sys
from importlib import metadata
from pathlib import Path
from typing import Iterator

from pyspark.sql import SparkSession

from curate_udfs.errors import EnvironmentProblem
from jobs import jvm_archive, jvm_output

REPO_ROOT = Path(__file__).resolve().parent.parent
# Spark profiles ship inside the package, so a pip-installed cliplake has them too.
CONF_DIR = Path(os.environ.get("CLIPLAKE_CONF_DIR", Path(__file__).resolve().parent / "profiles"))
JARS_DIR = Path(os.environ.get("CLIPLAKE_JARS_DIR", REPO_ROOT / ".cache" / "jars"))
QUIET_MODEL_LOADING = {"TRANSFORMERS_VERBOSITY": "error", "HF_HUB_DISABLE_PROGRESS_BARS": "1"}
PROFILES = ("local", "local-cluster", "rapids-gpu", "databricks", "emr")


def read_profile(name: str) -> dict[str, str]:
    """Settings of ``jobs/profiles/{name}.conf``, read as spark-submit reads it (see :func:`parse_spark_defaults`)."""
    path = CONF_DIR / f"{name}.conf"
    if not path.is_file():
        known = sorted(p.stem for p in CONF_DIR.glob("*.conf"))
        raise ValueError(f"no Spark profile {name!r} in {CONF_DIR} (have: {', '.join(known)})")
    return parse_spark_defaults(path.read_text())


_BLANKS = " \t\f"  # what java.util.Properties counts as whitespace around a key
_ESCAPES = {"t": "\t", "n": "\n", "r": "\r", "f": "\f"}


def parse_spark_defaults(text: str) -> dict[str, str]:
    r"""Settings of a spark-defaults file, split line by line as java.util.Properties splits them.

    Example::

        parse_spark_defaults("spark.master\tlocal[2]\nspark.ui.enabled = false")
        # {"spark.master": "local[2]", "spark.ui.enabled": "false"}

    The key ends at its first unescaped space, tab, ``=`` or ``:``; the blanks around it and one
    ``=`` or ``:`` are skipped, and the value is trimmed (as Spark's ``getPropertiesFromFile`` does).
    ``#`` and ``!`` start a comment only as a line's first non-blank character: a value may hold
    them. A line ending in an unescaped backslash continues on the next.
    """
    settings = {}
    lines = iter(re.split(r"\r\n|\r|\n", text))
    for line in lines:
        line = line.lstrip(_BLANKS)
        if not line or line[0] in "#!":
            continue
        while (len(line) - len(line.rstrip("\\"))) % 2:
            line = line[:-1] + next(lines, "").lstrip(_BLANKS)
        key, value = _split_property(line)
        settings[key] = value.strip()
    return settings


def _split_property(line: str) -> tuple[str, str]:
    """(key, value) of one property line, backslash escapes resolved."""
    end, escaped = 0, False
    while end < len(line) and (escaped or line[end] not in _BLANKS + "=:"):
        escaped = line[end] == "\\" and not escaped
        end += 1
    value = line[end:].lstrip(_BLANKS)
    if value[:1] in ("=", ":"):
        value = value[1:].lstrip(_BLANKS)
    return _unescape(line[:end]), _unescape(value)


def _unescape(text: str) -> str:
    """java.util.Properties' escapes: ``\\uXXXX``, ``\\t`` ``\\n`` ``\\r`` ``\\f``, and ``\\x`` for any other x."""
    def one(match: re.Match) -> str:
        code = match[1]
        return chr(int(code[1:], 16)) if len(code) == 5 else _ESCAPES.get(code, code)

    return re.sub(r"\\(u[0-9a-fA-F]{4}|.?)", one, text, flags=re.DOTALL)


def delta_jars() -> list[str]:
    """The Delta Lake JARs `make jars` put in the cache folder (empty when there are none)."""
    jars = sorted(str(p) for p in JARS_DIR.glob("delta-*.jar"))
    return jars if any("delta-spark" in Path(j).name for j in jars) else []


def delta_package() -> str:
    """Maven coordinates of the Delta JAR matching the installed delta-spark and pyspark.

    What a pip-installed cliplake asks Spark to fetch (from Maven Central, into ~/.ivy2) when
    there is no JAR folder: the same thing ``delta.configure_spark_with_delta_pip`` does.
    """
    import pyspark

    try:
        version = metadata.version("delta-spark")
    except metadata.PackageNotFoundError:
        raise EnvironmentProblem("delta-spark is not installed: pip install 'cliplake[spark]'") from None
    scala = "2.13" if int(pyspark.__version__.split(".")[0]) >= 4 else "2.12"
    return f"io.delta:delta-spark_{scala}:{version}"


def s3a_jars() -> list[str]:
    """hadoop-aws, the AWS SDK bundle and their helpers from the cache folder (empty when not fetched).

    They go on the JVM class path rather than ``spark.jars``: the SDK bundle is over 500 MB and
    ``spark.jars`` would copy it into every executor's work folder. See :func:`_add_s3a_jars` for where.
    """
    return sorted(str(p) for p in JARS_DIR.glob("*.jar") if not p.name.startswith("delta-"))


def _add_s3a_jars(settings: dict[str, str]) -> list[str]:
    """Put :func:`s3a_jars` on the class path *after* Spark's own JARs; returns the driver's share.

    The SDK bundle carries unshaded copies of slf4j-api 1.7, netty and httpclient. Ahead of Spark's
    JARs (where ``spark.*.extraClassPath`` puts entries) its slf4j 1.7 wins, finds no 1.x binding
    and sends Spark's whole log to the no-op logger ("SLF4J: Defaulting to no-operation (NOP)
    logger"). ``SPARK_DIST_CLASSPATH`` goes after Spark's JARs: cliplake sets it for the driver JVM
    it starts (see :func:`_class_path_after_spark`), and executors of a local master inherit it
    (``local-cluster`` workers run inside the driver). Executors of a remote master keep
    ``spark.executor.extraClassPath``: there the JARs must be at the same path anyway.
    """
    jars = s3a_jars()
    if jars and not settings.get("spark.master", "local").startswith("local"):
        key = "spark.executor.extraClassPath"
        settings[key] = os.pathsep.join(filter(None, [settings.get(key), *jars]))
    return jars


@contextlib.contextmanager
def _class_path_after_spark(jars: list[str]) -> Iterator[None]:
    """``jars`` after Spark's own on the class path of a JVM that PySpark starts in this block."""
    before = os.environ.get("SPARK_DIST_CLASSPATH")
    if jars:
        os.environ["SPARK_DIST_CLASSPATH"] = os.pathsep.join(filter(None, [before, *jars]))
    try:
        yield
    finally:  # the JVM has read it; later subprocesses (spark-submit, ffmpeg) should not
        if before is None:
            os.environ.pop("SPARK_DIST_CLASSPATH", None)
        else:
            os.environ["SPARK_DIST_CLASSPATH"] = before


def launched_by_spark_submit() -> bool:
    """spark-submit starts the JVM first and hands Python its gateway port."""
    return "PYSPARK_GATEWAY_PORT" in os.environ


def on_databricks() -> bool:
    """A Databricks cluster (notebooks, wheel and script tasks): its Spark is already running."""
    return "DATABRICKS_RUNTIME_VERSION" in os.environ


def planned_master(profile: str | None) -> str | None:
    """The master a job will run on, before its session starts: the active session's, else
    ``profile``'s; None under spark-submit or Databricks (the platform's, known once its session is read)."""
    active = SparkSession.getActiveSession()
    if active is not None:
        return active.sparkContext.master
    if launched_by_spark_submit() or on_databricks():
        return None
    return read_profile(profile or "local").get("spark.master", "local")


def put_wheels_on_python_path(spark: SparkSession) -> None:
    """Let Python workers import the wheels given with ``spark-submit --py-files``.

    Spark ships every ``--py-files`` file to the executors but puts only .zip, .egg and .jar ones
    on the workers' ``sys.path``; a wheel of pure-Python packages is a zip too, so it is added
    the same way (the list is sent along with every Python function the job creates).
    """
    context = spark.sparkContext
    for path in filter(None, context.getConf().get("spark.submit.pyFiles", "").split(",")):
        name = os.path.basename(path)
        if name.endswith(".whl") and name not in context._python_includes:
            context._python_includes.append(name)


# On a machine of few cores a job's JVM, when Python does the work, spent cores on C2 compiling
# code that ran for seconds: C1 alone made `make bench` (split) 123.6 -> 112.1 s and a 10k-row dedup
# 26-31 -> 18-23 s. Not for JVM-heavy work: MLlib k-means on 1M rows went 137 -> 256 s.
LIGHT_JVM_OPTIONS = "-XX:TieredStopAtLevel=1 -XX:ReservedCodeCacheSize=256m"


def add_jvm_options(settings: dict[str, str], light_jvm: bool) -> None:
    """The JVM options of a session cliplake starts: first-tier JIT (see :data:`LIGHT_JVM_OPTIONS`) and
    the class archive (:mod:`jobs.jvm_archive`) for the driver, the archive for a local-cluster's executors."""
    master = settings.get("spark.master", "local")
    driver = [LIGHT_JVM_OPTIONS if light_jvm and master.startswith("local") else None, jvm_archive.java_options()]
    executors = [jvm_archive.mapping_options() if master.startswith("local-cluster") else None]  # on this machine
    for key, options in (("spark.driver.extraJavaOptions", driver), ("spark.executor.extraJavaOptions", executors)):
        if joined := " ".join(filter(None, [settings.get(key), *options])):
            settings[key] = joined


def get_spark(profile: str | None = None, app_name: str = "cliplake", verbose: bool = False,
              light_jvm: bool = False) -> SparkSession:
    """The active or platform session (spark-submit, notebooks, Databricks), or a new one from ``profile``.

    Example::

        spark = get_spark("local-cluster", "cliplake-split")

    A profile only applies when this call creates the session; settings of an existing session
    (for example those given to spark-submit) are kept as they are. A session created here is
    quiet (Spark's log off, see :mod:`jobs.jvm_output`) unless ``verbose``. ``light_jvm``: the job's
    JVM only plans, moves Arrow batches and commits while Python does the work; a local master's
    driver then compiles with the JIT's first tier only (see :data:`LIGHT_JVM_OPTIONS`).
    """
    active = SparkSession.getActiveSession()
    if active is not None:
        put_wheels_on_python_path(active)
        return active
    if launched_by_spark_submit() or on_databricks():  # the platform's session and settings, never a profile
        spark = SparkSession.builder.appName(app_name).getOrCreate()
        put_wheels_on_python_path(spark)
        return spark
    settings = read_profile(profile or "local")
    driver_jars = []
    if settings.pop("cliplake.delta.jars", "fetch") == "fetch":
        jars = delta_jars()
        if jars:
            settings["spark.jars"] = ",".join(filter(None, [settings.get("spark.jars"), *jars]))
        else:  # no `make jars` folder (cliplake installed with pip): Spark fetches Delta at start
            settings["spark.jars.packages"] = ",".join(filter(None, [settings.get("spark.jars.packages"), delta_package()]))
        driver_jars = _add_s3a_jars(settings)
    add_jvm_options(settings, light_jvm)
    if not verbose:
        jvm_output.add_quiet_logging(settings)
    # Python workers run this interpreter, so they import the same installed packages. PySpark
    # reads the environment variable when it starts the context from Python (the conf key only
    # reaches executors); both are set so local and cluster executors agree.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    # Model loading is quiet in the workers (they inherit this environment): no per-task progress bars.
    for key, value in QUIET_MODEL_LOADING.items():
        os.environ.setdefault(key, value)
        settings.setdefault(f"spark.executorEnv.{key}", value)
    settings.setdefault("spark.pyspark.python", os.environ["PYSPARK_PYTHON"])
    builder = SparkSession.builder.appName(app_name)
    for key, value in settings.items():
        builder = builder.config(key, value)
    with _class_path_after_spark(driver_jars), jvm_output.held_back_while_starting(verbose):
        spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN" if verbose else jvm_output.QUIET_LEVEL)
    _quiet(spark, "org.apache.spark.rdd.MapPartitionsRDD")  # "locally checkpointed" notes on every MERGE
    return spark


def _quiet(spark: SparkSession, logger: str) -> None:
    jvm = spark.sparkContext._jvm
    jvm.org.apache.logging.log4j.core.config.Configurator.setLevel(logger, jvm.org.apache.logging.log4j.Level.ERROR)
