"""Spark profiles are read as spark-submit reads them (java.util.Properties lines); no Spark session."""

from jobs import session

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
