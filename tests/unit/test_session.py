"""Spark profiles are read as spark-submit reads them (java.util.Properties lines); the settings cliplake adds.

No Spark session.
"""

import os

from jobs import jvm_output, session

# Each line in a form spark-defaults.conf allows; spark-submit --properties-file reads them all.
PROFILE = """\
# a comment line, then a blank one

  ! also a comment, after leading blanks
spark.master\tlocal[2]
spark.ui.enabled=false
spark.sql.shuffle.partitions = 4
spark.log.level: WARN
spark.executor.extraJavaOptions   -Dfoo=1 -Dbar=a:b   \t
spark.app.name  clips # of the day
spark.driver.memory\t\t 2g
path\\ with\\ spaces  C\\:\\\\data
spark.jars a.jar,\\
    b.jar
spark.empty
"""


def test_profile_lines_split_as_java_properties(tmp_path, monkeypatch):
    (tmp_path / "mine.conf").write_text(PROFILE)
    monkeypatch.setattr(session, "CONF_DIR", tmp_path)
    assert session.read_profile("mine") == {
        "spark.master": "local[2]",  # tab
        "spark.ui.enabled": "false",  # key=value
        "spark.sql.shuffle.partitions": "4",  # key = value
        "spark.log.level": "WARN",  # key: value
        "spark.executor.extraJavaOptions": "-Dfoo=1 -Dbar=a:b",  # inner spaces, = and : kept; trailing blanks trimmed
        "spark.app.name": "clips # of the day",  # '#' starts a comment only at the start of a line
        "spark.driver.memory": "2g",  # several blanks after the key
        "path with spaces": "C:\\data",  # escaped blanks stay in the key; escapes resolved
        "spark.jars": "a.jar,b.jar",  # a trailing backslash continues the line
        "spark.empty": "",
    }


def test_shipped_profiles_read_as_before():
    local = session.read_profile("local")
    assert local["spark.master"] == "local[*,2]" and local["cliplake.delta.jars"] == "fetch"
    assert local["spark.sql.extensions"] == "io.delta.sql.DeltaSparkSessionExtension"
    assert session.read_profile("databricks") == {"spark.python.worker.reuse": "true", "cliplake.delta.jars": "provided"}


def test_aws_sdk_goes_after_sparks_jars(tmp_path, monkeypatch):
    """The SDK bundle's slf4j 1.7 must not come before Spark's: never on an extraClassPath (those go first)
    but in SPARK_DIST_CLASSPATH while the driver starts, except for a remote master's executors."""
    for name in ("bundle-2.24.6.jar", "hadoop-aws-3.4.1.jar", "delta-spark_2.13-4.0.1.jar"):
        (tmp_path / name).touch()
    monkeypatch.setattr(session, "JARS_DIR", tmp_path)
    monkeypatch.setenv("SPARK_DIST_CLASSPATH", "/opt/hadoop/*")
    local = {"spark.master": "local-cluster[2,1,2048]"}
    jars = session._add_s3a_jars(local)
    assert [os.path.basename(j) for j in jars] == ["bundle-2.24.6.jar", "hadoop-aws-3.4.1.jar"]
    assert local == {"spark.master": "local-cluster[2,1,2048]"}  # executors of a local master inherit the driver's
    with session._class_path_after_spark(jars):
        assert os.environ["SPARK_DIST_CLASSPATH"] == os.pathsep.join(["/opt/hadoop/*", *jars])
    assert os.environ["SPARK_DIST_CLASSPATH"] == "/opt/hadoop/*"
    remote = {"spark.master": "spark://host:7077"}
    session._add_s3a_jars(remote)
    assert remote["spark.executor.extraClassPath"] == os.pathsep.join(jars) and "spark.driver.extraClassPath" not in remote


def test_quiet_logging_settings_keep_a_profiles_own_log4j2_file():
    settings = {"spark.log.level": "WARN", "spark.driver.extraJavaOptions": "-Dfoo=1"}
    jvm_output.add_quiet_logging(settings)
    assert settings["spark.log.level"] == "OFF"
    assert settings["spark.driver.extraJavaOptions"] == f"-Dfoo=1 -Dlog4j2.configurationFile={jvm_output.QUIET_LOG4J2.as_uri()}"
    own = {"spark.driver.extraJavaOptions": "-Dlog4j2.configurationFile=/etc/mine.properties"}
    jvm_output.add_quiet_logging(own)
    assert own["spark.driver.extraJavaOptions"] == "-Dlog4j2.configurationFile=/etc/mine.properties"


def test_driver_maps_the_class_archive_once_there_is_one(tmp_path, monkeypatch):
    from jobs import jvm_archive

    monkeypatch.setattr(jvm_archive, "ARCHIVE_DIR", tmp_path)
    monkeypatch.delenv(jvm_archive.DUMP_ENV, raising=False)
    assert jvm_archive.java_options() == ""  # none yet: the JVM starts as it always did
    path = jvm_archive.archive_path()
    assert path.parent == tmp_path and path.name.startswith("spark-4.") and path.suffix == ".jsa"
    path.write_bytes(b"archive")
    assert jvm_archive.java_options() == f"-XX:SharedArchiveFile={path} {jvm_archive.QUIET}"
    monkeypatch.setenv(jvm_archive.DUMP_ENV, str(tmp_path / "new.jsa"))  # jvm_archive.build's job writes one
    assert jvm_archive.java_options().startswith(f"-XX:ArchiveClassesAtExit={tmp_path / 'new.jsa'} ")


def test_jvm_options_of_a_local_cluster_and_a_remote_master(tmp_path, monkeypatch):
    from jobs import jvm_archive

    monkeypatch.setattr(jvm_archive, "ARCHIVE_DIR", tmp_path)
    monkeypatch.delenv(jvm_archive.DUMP_ENV, raising=False)
    jvm_archive.archive_path().write_bytes(b"archive")
    mapped = jvm_archive.mapping_options()
    cluster = {"spark.master": "local-cluster[2,1,2048]", "spark.executor.extraJavaOptions": "-Dfoo=1"}
    session.add_jvm_options(cluster, light_jvm=True)
    assert cluster["spark.driver.extraJavaOptions"] == f"{session.LIGHT_JVM_OPTIONS} {mapped}"
    assert cluster["spark.executor.extraJavaOptions"] == f"-Dfoo=1 {mapped}"  # its executors share this machine
    remote = {"spark.master": "spark://host:7077"}
    session.add_jvm_options(remote, light_jvm=True)  # the driver is here; the executors' JIT and files are not
    assert remote == {"spark.master": "spark://host:7077", "spark.driver.extraJavaOptions": mapped}
