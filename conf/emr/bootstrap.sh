#!/bin/bash
# EMR bootstrap action: on every node, a Python environment with cliplake's dependencies
# (PyAV with its own FFmpeg, torch, TransNetV2 weights, boto3). Spark and Delta are the cluster's:
# emr-7.x runs Spark 3.5 (emr-7.8.0 and later ship Delta 3.3, the version cliplake is tested with;
# Delta 3.2, from emr-7.3.0, is the oldest with the MERGE schema evolution cliplake uses).
#   aws emr create-cluster --release-label emr-7.12.0 --applications Name=Spark \
#     --configurations file://conf/emr/configurations.json \
#     --bootstrap-actions Path=s3://ARTIFACT-BUCKET/cliplake/bootstrap.sh,Args=[s3://ARTIFACT-BUCKET/cliplake/cliplake-0.1.0-py3-none-any.whl]
set -euo pipefail
WHEEL_URI=${1:?usage: bootstrap.sh s3://.../cliplake-VERSION-py3-none-any.whl [DELTA_VERSION]}
DELTA_VERSION=${2:-3.3.2}  # the cluster's Delta (emr-7.12.0: 3.3.2)
VENV=/usr/local/cliplake

# Amazon Linux 2023's python3 is 3.9; cliplake needs 3.10 or later.
sudo dnf install -y -q python3.11
sudo python3.11 -m venv "$VENV"
aws s3 cp "$WHEEL_URI" /tmp/
WHEEL=/tmp/$(basename "$WHEEL_URI")
sudo "$VENV/bin/python" -m pip install --quiet --upgrade pip
# The wheel without its `spark` extra: pyspark stays the cluster's (/usr/lib/spark/python).
sudo "$VENV/bin/python" -m pip install --quiet "${WHEEL}[s3]"
# Delta's Python API only (--no-deps: no second pyspark); the JARs are the cluster's.
sudo "$VENV/bin/python" -m pip install --quiet --no-deps "delta-spark==${DELTA_VERSION}"
# cliplake itself comes with each step (--py-files cliplake-*.whl), so new code needs no new cluster.
sudo "$VENV/bin/python" -m pip uninstall --yes --quiet cliplake
