# Every target is idempotent: setup installs once, later runs only check.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
JARS   := .cache/jars
STAMP  := $(VENV)/.installed-stamp
JVM_ARCHIVE := .cache/jvm/.built

.PHONY: setup chromium jars demo notebooks test test-spark35 bench bench-dedup bench-shard gpu-check wheel clean

setup: $(STAMP) $(JARS)/.fetched $(JARS)/cliplake-s3a.jar chromium $(JVM_ARCHIVE)

# The report's browser test drives Debian's Chromium through Playwright (whose own browser download
# cannot be reached here); installed once, quietly, when missing (as root, or through sudo).
SUDO := $(shell test "$$(id -u)" = 0 || echo sudo)
chromium:
	@test -x /usr/bin/chromium || { $(SUDO) apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium >/dev/null; }

# pip keeps its cache (~/.cache/pip), so torch and friends download once per machine.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[spark,dev]'
	touch $@

jars: $(JARS)/.fetched $(JARS)/cliplake-s3a.jar

# The driver JVM's class-data-sharing archive (jobs/jvm_archive.py), recorded once from a tiny split:
# every later Spark start maps Spark's classes instead of loading them (a tiny split 62-66 -> 51-53 s).
$(JVM_ARCHIVE): $(STAMP) $(JARS)/.fetched $(JARS)/cliplake-s3a.jar
	$(PY) -m jobs.jvm_archive
	touch $@

# Delta Lake's Spark JARs come from Maven Central; the pom pins them to the delta-spark wheel.
$(JARS)/.fetched: conf/maven/pom.xml
	mvn --quiet --batch-mode -f conf/maven/pom.xml dependency:copy-dependencies \
	    -DincludeScope=runtime -DoutputDirectory=$(CURDIR)/$(JARS)
	touch $@

# cliplake's S3A credentials provider (a named profile, refreshed as it expires: jobs/s3a.py),
# compiled against the hadoop-aws above; it goes on the JVM class path with it.
S3A_PROVIDER := conf/maven/s3a-profile
$(JARS)/cliplake-s3a.jar: $(S3A_PROVIDER)/pom.xml $(shell find $(S3A_PROVIDER)/src -name '*.java') $(JARS)/.fetched
	mvn --quiet --batch-mode -f $(S3A_PROVIDER)/pom.xml package
	cp .cache/maven/s3a-profile/cliplake-s3a.jar $@

# Captions come from a tiny random VLM (the real Qwen2.5-VL code path, meaningless words):
# point --captioning-model at real weights for real captions.
demo: setup
	$(PY) -m curate_udfs.testing.samples demo/input
	$(PY) -m curate_udfs.testing.tiny_models demo/models
	$(VENV)/bin/cliplake split --input-video-path demo/input --output-path demo/lake \
	    --motion-filter score-only --generate-previews \
	    --captioning-model demo/models/vlm --captioning-max-output-tokens 32

# Two pytest workers, a whole module each (its Spark session and lake stay in one process): most
# tests wait on JVM start, Delta commits and subprocess jobs, so two at once fill two cores better.
TEST_WORKERS ?= 2
PYTEST := -m pytest -n $(TEST_WORKERS) --dist loadfile

# The notebooks executed top to bottom (nbclient) against the demo lake, or CLIPLAKE_LAKE; any error fails.
notebooks: demo
	CLIPLAKE_MODELS=$(CURDIR)/demo/models $(PY) notebooks/run.py

test: setup
	$(PY) $(PYTEST) --durations=40
	$(MAKE) test-spark35

# Spark 3.5 (EMR 7.x, Databricks 14.3/15.4 LTS): the `spark35` extra's pyspark and delta-spark in a
# venv of their own (no pip or setuptools either) that borrows everything else (torch, av, pytest,
# pip...) from .venv through a .pth line, which comes after the venv's own packages: its pyspark wins.
VENV35  := .venv-spark35
PY35    := $(VENV35)/bin/python
JARS35  := .cache/jars-spark35
STAMP35 := $(VENV35)/.installed-stamp
PURELIB := import sysconfig; print(sysconfig.get_paths()["purelib"])
SPARK35_EXTRA := import tomllib; print(*tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]["spark35"], sep="\n")
# What the Spark version can break, run again on 3.5: the wheel (metadata, the no-pyspark message,
# spark-submit on local-cluster: TransNetV2 on a bundled sample, embeddings, tiny-VLM captions),
# the annotate stages (motion, captions, previews) and the GPU resource profile on local-cluster,
# dedup (Spark ML k-means), shard (text encoder, tars, manifest MERGE), split into catalog
# tables (OSS Delta 3 names them by schema.table only), and split --stream (availableNow).
ANNOTATE := tests/integration/test_annotate_job.py
DEDUP    := tests/integration/test_dedup_job.py
SPARK35_TESTS := tests/deployment \
    $(ANNOTATE)::test_motion_filter_marks_the_static_clip $(ANNOTATE)::test_embeddings_only_for_clips_in_play \
    $(ANNOTATE)::test_captions_per_window_with_previews $(ANNOTATE)::test_runs_row_counts_annotations \
    $(ANNOTATE)::test_gpu_share_becomes_a_resource_profile_on_a_cluster \
    $(DEDUP)::test_planted_copies_found_one_of_each_pair_kept $(DEDUP)::test_summary_centroids_and_runs_tables \
    $(DEDUP)::test_cosmos_layout_has_the_documented_files_and_columns \
    tests/integration/test_shard_job.py::test_every_clip_trains_with_the_stock_cosmos_predict25_pipeline \
    tests/storage/test_catalog.py::test_split_writes_managed_tables_by_name \
    tests/integration/test_split_stream.py::test_available_now_splits_what_is_new_and_stops

$(STAMP35): pyproject.toml $(STAMP)
	rm -rf $(VENV35)
	$(PYTHON) -m venv --without-pip $(VENV35)
	$(PY) -c '$(SPARK35_EXTRA)' > $(VENV35)/requirements.txt
	$(PY) -m pip --python $(PY35) install --quiet -r $(VENV35)/requirements.txt
	printf '%s\n' '$(CURDIR)' "$$($(PY) -c '$(PURELIB)')" > "$$($(PY35) -c '$(PURELIB)')/cliplake-dev.pth"
	$(PY35) -c 'import pyspark, delta, torch, av, jobs; assert pyspark.__version__.startswith("3.5."), pyspark.__file__'
	touch $@

$(JARS35)/.fetched: conf/maven/spark35/pom.xml
	mvn --quiet --batch-mode -f conf/maven/spark35/pom.xml dependency:copy-dependencies \
	    -DincludeScope=runtime -DoutputDirectory=$(CURDIR)/$(JARS35)
	touch $@

test-spark35: $(STAMP35) $(JARS35)/.fetched
	CLIPLAKE_JARS_DIR=$(CURDIR)/$(JARS35) $(PY35) $(PYTEST) --durations=10 $(SPARK35_TESTS)

bench: setup
	$(PY) bench/split.py

bench-shard: setup
	$(PY) bench/shard.py

bench-dedup: setup
	$(PY) bench/dedup.py

# On a machine with an NVIDIA GPU and PyPI only, never in CI: tests/gpu and GPU speeds in at most
# 8 minutes (bench/gpu_check.py). vLLM pins torch and transformers, so it installs into .venv-gpu.
gpu-check:
	$(PYTHON) bench/gpu_check.py

wheel: setup
	$(PY) -m pip wheel --no-deps --wheel-dir dist .

clean:
	rm -rf demo dist build *.egg-info .pytest_cache
