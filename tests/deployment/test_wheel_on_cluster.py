"""The wheel from `make wheel`, spark-submitted to a standalone cluster (local-cluster[2,1,2048]).

Driver and executors run a Python that has cliplake's dependencies but not cliplake: it can only
import cliplake from the wheel given with --py-files, as on a cluster where nothing was installed.
"""

import email
import glob
import os
import shutil
import subprocess
import sys

import pytest
from packaging.requirements import Requirement

from jobs import tables
from jobs.session import CONF_DIR, JARS_DIR, PROFILES, REPO_ROOT

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """dist/cliplake-*.whl as `make wheel` builds it (without build isolation: no network needed)."""
    dist, source = tmp_path_factory.mktemp("dist"), tmp_path_factory.mktemp("source")
    # From a copy, so a build/ folder left in the checkout by an earlier build cannot leak stale files in.
    for name in ("pyproject.toml", "README.md", "jobs", "curate_udfs"):
        copy = shutil.copytree if (REPO_ROOT / name).is_dir() else shutil.copy
        copy(REPO_ROOT / name, source / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "--wheel-dir", str(dist), str(source)], check=True, capture_output=True)
    (path,) = glob.glob(str(dist / "cliplake-*.whl"))
    return path


def make_venv(folder, *, borrow_packages: bool, wheel: str | None = None) -> str:
    """A venv in ``folder`` (its python returned), with ``wheel`` installed alone when given.

    ``borrow_packages``: it sees this environment's packages (plain path entries: the editable
    install's .pth hook is not run) but not cliplake's source tree. All site-packages folders on
    the path, in order: under `make test-spark35` the pyspark 3.5 venv's, then the one it borrows from.
    """
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True)
    python = str(folder / "bin" / "python")
    if borrow_packages:
        site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                              check=True, capture_output=True, text=True).stdout.strip()
        with open(os.path.join(site, "deps.pth"), "w") as f:
            f.write("".join(p + "\n" for p in sys.path if p.endswith("site-packages")))
    if wheel:
        subprocess.run([sys.executable, "-m", "pip", "--python", python, "install", "--quiet", "--no-deps", "--no-index",
                        wheel], check=True, capture_output=True)
    return python


@pytest.fixture(scope="module")
def python_without_cliplake(tmp_path_factory):
    return make_venv(tmp_path_factory.mktemp("venv"), borrow_packages=True)


def clean_env(python):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "SPARK_HOME", "PYSPARK_GATEWAY_PORT")}
    return {**env, "PYSPARK_PYTHON": python, "PYSPARK_DRIVER_PYTHON": python}


def test_wheel_holds_both_packages_and_no_tests(wheel):
    import zipfile

    names = zipfile.ZipFile(wheel).namelist()
    assert "jobs/split_annotate.py" in names and "curate_udfs/split_stage.py" in names
    assert {f"jobs/profiles/{p}.conf" for p in PROFILES} <= set(names)  # a pip install can start Spark itself
    assert not [n for n in names if n.startswith("tests/")]
    assert any(n.endswith("entry_points.txt") for n in names)


def wheel_requirements(wheel) -> list[Requirement]:
    import zipfile

    with zipfile.ZipFile(wheel) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        metadata = email.message_from_bytes(archive.read(name))
    return [Requirement(r) for r in metadata.get_all("Requires-Dist")]


def test_wheel_requires_spark_only_through_an_extra(wheel):
    """Installed on Databricks or EMR, the wheel must leave the cluster's pyspark and Delta alone."""
    requirements = wheel_requirements(wheel)
    unconditional = {r.name for r in requirements if r.marker is None or r.marker.evaluate({"extra": ""})}
    assert {"torch", "av", "pandas"} <= unconditional  # the check sees the real dependencies
    assert not unconditional & {"pyspark", "delta-spark"}
    extras = {}
    for r in requirements:
        for extra in ("spark", "spark35"):
            if r.marker is not None and r.marker.evaluate({"extra": extra}):
                extras.setdefault(extra, {})[r.name] = str(r.specifier)
    # (deltalake: dedup's delta-rs read of a small folder lake; not a Spark package)
    assert extras["spark"] == {"pyspark": "==4.0.1", "delta-spark": "==4.0.1", "deltalake": ">=0.20"}
    assert set(extras["spark35"]) == {"pyspark", "delta-spark"}
    assert all(spec.startswith("==3.") for spec in extras["spark35"].values())


def test_cliplake_without_pyspark_names_the_extra(wheel, tmp_path):
    """`pip install cliplake-*.whl` where no Spark is installed: the command says how to get one."""
    venv = tmp_path / "venv"
    python = make_venv(venv, borrow_packages=False, wheel=wheel)
    done = subprocess.run([str(venv / "bin" / "cliplake"), "split", "--input-video-path", str(tmp_path),
                           "--output-path", str(tmp_path / "lake")], env=clean_env(python),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "pyspark and delta-spark not found" in done.stderr and "pip install 'cliplake[spark]'" in done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "lake").exists()


def test_pip_installed_cliplake_starts_its_own_spark(wheel, tmp_path, samples):
    """`pip install cliplake-*.whl` beside a Spark, no checkout: the packaged profile, Delta fetched by Spark."""
    venv = tmp_path / "venv"
    python = make_venv(venv, borrow_packages=True, wheel=wheel)
    env = {k: v for k, v in clean_env(python).items() if not k.startswith("CLIPLAKE_")}
    done = subprocess.run([str(venv / "bin" / "cliplake"), "split", "--input-video-path", str(samples["bikes.mp4"]),
                           "--output-path", "lake", "--splitting-algorithm", "fixed-stride", "--no-generate-embeddings",
                           "--no-generate-captions"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    assert len(os.listdir(tmp_path / "lake" / "media" / "clips")) >= 1
    assert (tmp_path / "lake" / "clips" / "_delta_log").is_dir()


def test_spark_submit_with_the_wheel_on_local_cluster(spark, wheel, python_without_cliplake, tmp_path, samples, tiny_models):
    """The default pipeline (TransNetV2, embeddings, captions: by the tiny VLM) from the wheel alone."""
    env = clean_env(python_without_cliplake)
    probe = subprocess.run([python_without_cliplake, "-c", "import curate_udfs"], cwd=tmp_path, env=env, capture_output=True)
    assert probe.returncode != 0, "the test Python must not see cliplake's source tree"
    assert subprocess.run([python_without_cliplake, "-c", "import torch, av, pyspark"], env=env).returncode == 0

    videos = tmp_path / "in"
    os.makedirs(videos)
    os.symlink(samples["carphone_pristine.mp4"], videos / "carphone.mp4")
    lake = tmp_path / "lake"
    submit = os.path.join(os.path.dirname(sys.executable), "spark-submit")
    delta = ",".join(sorted(glob.glob(str(JARS_DIR / "delta-*.jar"))))
    result = subprocess.run(
        [submit, "--master", "local-cluster[2,1,2048]", "--properties-file", str(CONF_DIR / "local-cluster.conf"),
         "--jars", delta, "--py-files", wheel,
         str(REPO_ROOT / "jobs" / "split_annotate.py"), "--input-video-path", str(videos), "--output-path", str(lake),
         "--captioning-model", tiny_models["vlm"], "--captioning-max-output-tokens", "8"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    run = tables.read_table(spark, str(lake), "runs").first()
    assert run.spark_master == "local-cluster[2,1,2048]" and (run.num_clips, run.num_error_videos) == (1, 0)
    assert (run.num_embedded_clips, run.num_captioned_clips, run.num_annotation_errors) == (1, 1, 0)
    (clip,) = tables.read_table(spark, str(lake), "clips").collect()
    assert os.path.getsize(clip.location) == clip.num_bytes
