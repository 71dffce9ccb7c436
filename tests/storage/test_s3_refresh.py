"""A job outlives its credentials: S3A refreshes a named profile's short-lived keys as they expire.

The profile's ``credential_process`` mints a new IAM user and access key on a moto server that
enforces IAM, and says the key expires TTL_S seconds later; a reaper thread deletes each key when
that time has passed, as AWS forgets an expired session token. A Delta table written through S3A
for longer than TTL_S with the profile's name (cliplake's provider) keeps working; one given the
profile's credentials once (the frozen path) is refused after TTL_S.
"""

import datetime
import json
import os
import sys
import threading
import time

import boto3
import pytest
from py4j.protocol import Py4JJavaError

from curate_udfs.objectstore import S3Access
from curate_udfs.testing.s3_server import LocalS3Server
from jobs import s3a

pytestmark = pytest.mark.slow

# The AWS SDK starts refreshing 15 s before the expiration and must refresh at it: 25 s keys are
# replaced after about 10 s of use. Each key dies REAPER_GRACE_S after its expiration.
TTL_S = 25
REAPER_GRACE_S = 1
EVERYTHING = {"Effect": "Allow", "Action": "*", "Resource": "*"}
BUCKETS = ("refreshing-lake", "frozen-lake")
# Requests moto serves before it enforces IAM: the admin (user, policy, key) and the two buckets.
SETUP_REQUESTS = 3 + len(BUCKETS)

MINT = '''#!{python}
"""credential_process: a new IAM user and key, valid for {ttl} s; one JSON line per call in the log."""
import datetime, json, uuid
import boto3
iam = boto3.client("iam", endpoint_url={endpoint!r}, region_name="us-east-1",
                   aws_access_key_id={key!r}, aws_secret_access_key={secret!r})
user = "minted-" + uuid.uuid4().hex[:12]
iam.create_user(UserName=user)
iam.put_user_policy(UserName=user, PolicyName="s3", PolicyDocument=json.dumps(
    {{"Version": "2012-10-17", "Statement": [{{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}}]}}))
key = iam.create_access_key(UserName=user)["AccessKey"]
expires = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds={ttl})
with open({log!r}, "a") as log:
    log.write(json.dumps({{"user": user, "key": key["AccessKeyId"], "expires": expires.timestamp()}}) + "\\n")
print(json.dumps({{"Version": 1, "AccessKeyId": key["AccessKeyId"], "SecretAccessKey": key["SecretAccessKey"],
                  "Expiration": expires.isoformat()}}))
'''


def minted(log_path) -> list[dict]:
    if not os.path.exists(log_path):
        return []
    with open(log_path) as log:
        return [json.loads(line) for line in log if line.strip()]


@pytest.fixture
def expiring_profile(tmp_path, monkeypatch):
    """Profile ``rotating`` (credential_process, TTL_S-second keys) on an IAM-enforcing moto; yields (admin iam, log)."""
    with LocalS3Server({"INITIAL_NO_AUTH_ACTION_COUNT": str(SETUP_REQUESTS)}) as server:
        anyone = dict(endpoint_url=server.endpoint_url, region_name="us-east-1",
                      aws_access_key_id="setup", aws_secret_access_key="setup")
        iam = boto3.client("iam", **anyone)
        iam.create_user(UserName="admin")
        iam.put_user_policy(UserName="admin", PolicyName="all",
                            PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [EVERYTHING]}))
        admin = iam.create_access_key(UserName="admin")["AccessKey"]
        s3 = boto3.client("s3", **anyone)
        for bucket in BUCKETS:
            s3.create_bucket(Bucket=bucket)
        as_admin = dict(endpoint_url=server.endpoint_url, region_name="us-east-1",
                        aws_access_key_id=admin["AccessKeyId"], aws_secret_access_key=admin["SecretAccessKey"])
        log = str(tmp_path / "minted.jsonl")
        script = tmp_path / "mint.py"
        script.write_text(MINT.format(python=sys.executable, ttl=TTL_S, endpoint=server.endpoint_url, log=log,
                                      key=admin["AccessKeyId"], secret=admin["SecretAccessKey"]))
        config = tmp_path / "config"
        config.write_text(f"[profile rotating]\ncredential_process = {sys.executable} {script}\n")
        for key, value in {"AWS_ENDPOINT_URL": server.endpoint_url, "AWS_DEFAULT_REGION": "us-east-1",
                           "AWS_CONFIG_FILE": str(config), "AWS_SHARED_CREDENTIALS_FILE": os.devnull}.items():
            monkeypatch.setenv(key, value)
        for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
            monkeypatch.delenv(key, raising=False)
        admin_iam = boto3.client("iam", **as_admin)
        stop = threading.Event()
        reaper = threading.Thread(target=reap, args=(admin_iam, log, stop), daemon=True)
        reaper.start()
        try:
            yield boto3.client("s3", endpoint_url=server.endpoint_url, region_name="us-east-1"), log
        finally:
            stop.set()
            reaper.join()


def reap(iam, log_path, stop: threading.Event) -> None:
    """Delete every minted key REAPER_GRACE_S after its expiration, until ``stop``."""
    reaped = set()
    while not stop.wait(0.5):
        for entry in minted(log_path):
            if entry["key"] not in reaped and time.time() > entry["expires"] + REAPER_GRACE_S:
                iam.delete_access_key(UserName=entry["user"], AccessKeyId=entry["key"])
                reaped.add(entry["key"])


def test_a_job_outlives_its_first_credentials(expiring_profile, spark):
    s3, log = expiring_profile
    access = S3Access("rotating")
    frozen = s3a.hadoop_settings("s3://frozen-lake/t", access, refreshing=False)  # the old way: keys copied once
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    for key, value in frozen.items():
        conf.set(key, value)
    frozen_key = frozen["fs.s3a.bucket.frozen-lake.access.key"]
    s3a.configure(spark, "s3://refreshing-lake/t", access)
    assert conf.get("fs.s3a.bucket.refreshing-lake.aws.credentials.provider") == s3a.PROFILE_PROVIDER
    driver_checks = len(minted(log))  # the driver's own check of the profile ran it once more

    spark.range(0, 10).write.format("delta").save("s3://frozen-lake/t")
    spark.range(0, 10).write.format("delta").save("s3://refreshing-lake/t")
    (first_jvm_key, *_) = minted(log)[driver_checks:]
    rows, appends = 10, 0
    while time.time() < first_jvm_key["expires"] + REAPER_GRACE_S + 3:  # one more append once that key is gone
        spark.range(rows, rows + 5).write.format("delta").mode("append").save("s3://refreshing-lake/t")
        rows, appends = rows + 5, appends + 1
        time.sleep(2)
    assert spark.read.format("delta").load("s3://refreshing-lake/t").count() == rows

    jvm_keys = [entry["key"] for entry in minted(log)[driver_checks:]]
    assert len(jvm_keys) >= 2, jvm_keys  # S3A asked the profile again as its keys came near expiry
    print(f"{appends} appends over {TTL_S}+ s; keys minted for S3A: {len(jvm_keys)}")
    for stale in (first_jvm_key["key"], frozen_key):  # the server refuses keys past their expiration
        with pytest.raises(Exception, match="InvalidAccessKeyId"):
            boto3.client("s3", endpoint_url=s3.meta.endpoint_url, region_name="us-east-1", aws_access_key_id=stale,
                         aws_secret_access_key="unused").list_objects_v2(Bucket="refreshing-lake")
    with pytest.raises(Py4JJavaError, match="403|InvalidAccessKeyId|AccessDenied"):
        spark.range(0, 5).write.format("delta").mode("append").save("s3://frozen-lake/t")
