"""Point Spark's s3a connector (hadoop-aws) at the same store and credentials boto3 uses.

Delta tables on ``s3://`` are read and written by Spark through Hadoop's S3A filesystem
(``jobs/profiles/local*.conf`` map the ``s3`` scheme to it; Databricks and EMR bring their own). This
module copies what the driver knows into the session's Hadoop configuration: the custom
endpoint of an S3-compatible store, and a named profile for one bucket. The profile goes by name to
cliplake's S3A credentials provider (``conf/maven/s3a-profile``, built by ``make jars``), so SSO,
assumed-role and ``credential_process`` credentials are refreshed in every JVM for as long as a job runs.
"""

import logging
import os

from pyspark.sql import SparkSession

from curate_udfs import objectstore
from curate_udfs.errors import EnvironmentProblem
from curate_udfs.objectstore import S3Access

# The AWS SDK's ProfileCredentialsProvider bound to ``fs.s3a.cliplake.profile`` (S3A has no such option).
PROFILE_PROVIDER = "cliplake.s3a.ProfileCredentialsProvider"
# Where the driver was told the profile files are: the provider reads the same ones (on every node).
PROFILE_FILES = {"AWS_SHARED_CREDENTIALS_FILE": "cliplake.profile.credentials.file",
                 "AWS_CONFIG_FILE": "cliplake.profile.config.file"}
log = logging.getLogger(__name__)


def _region() -> str:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"


def hadoop_settings(uri: str, access: S3Access, refreshing: bool = True) -> dict[str, str]:
    """The ``fs.s3a.*`` settings that let Spark reach ``uri`` the way ``access`` does with boto3.

    Example::

        hadoop_settings("s3://lake/prod", S3Access(profile_name="writer", endpoint_url="http://127.0.0.1:9000"))

    An endpoint applies to the whole session (S3-compatible stores want path-style requests); a
    profile applies to ``uri``'s bucket only, so input and output can use different accounts. The
    profile is checked here, on the driver, by boto3 (files, SSO, assumed roles, credential_process).
    With ``refreshing`` (cliplake's provider on the JVM class path) S3A gets the profile's name and
    files and resolves it itself, refreshing expiring credentials; without, the profile's current
    credentials are copied (with their session token) and last only as long as they are valid.
    """
    bucket, _ = objectstore.split_uri(uri)
    settings = {}
    if access.endpoint_url:
        settings.update({
            "fs.s3a.endpoint": access.endpoint_url,
            "fs.s3a.endpoint.region": _region(),
            "fs.s3a.path.style.access": "true",
            "fs.s3a.connection.ssl.enabled": str(access.endpoint_url.startswith("https://")).lower(),
        })
    if access.profile_name:
        credentials = _profile_credentials(access.profile_name)
        per_bucket = f"fs.s3a.bucket.{bucket}."
        if refreshing:
            settings[per_bucket + "aws.credentials.provider"] = PROFILE_PROVIDER
            settings[per_bucket + "cliplake.profile"] = access.profile_name
            for variable, key in PROFILE_FILES.items():
                if os.environ.get(variable):
                    settings[per_bucket + key] = os.path.abspath(os.path.expanduser(os.environ[variable]))
        else:
            settings.update(_frozen(per_bucket, credentials.get_frozen_credentials()))
    return settings


def _profile_credentials(name: str):
    """boto3's credentials of profile ``name``; one clear error when it is missing or holds none."""
    import boto3
    import botocore.exceptions

    try:
        credentials = boto3.session.Session(profile_name=name).get_credentials()
    except botocore.exceptions.ProfileNotFound:
        credentials = None
    if credentials is None:
        raise EnvironmentProblem(f"AWS profile {name!r} not found or has no credentials")
    return credentials


def _frozen(per_bucket: str, frozen) -> dict[str, str]:
    settings = {per_bucket + "access.key": frozen.access_key, per_bucket + "secret.key": frozen.secret_key}
    if frozen.token:
        settings[per_bucket + "session.token"] = frozen.token
        settings[per_bucket + "aws.credentials.provider"] = "org.apache.hadoop.fs.s3a.TemporaryAWSCredentialsProvider"
    else:
        settings[per_bucket + "aws.credentials.provider"] = "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider"
    return settings


def provider_on_class_path(spark: SparkSession) -> bool:
    """Whether the session's JVM can load cliplake's profile provider (``make jars`` put it there)."""
    from py4j.protocol import Py4JJavaError

    jvm = spark.sparkContext._jvm
    try:
        jvm.java.lang.Class.forName(PROFILE_PROVIDER, False, jvm.java.lang.Thread.currentThread().getContextClassLoader())
        return True
    except Py4JJavaError:
        return False


def configure(spark: SparkSession, uri: str, access: S3Access) -> None:
    """Apply :func:`hadoop_settings` to the session's Hadoop configuration (driver and tasks).

    Secrets go only there, never into SQL confs or logs; Spark's UI redacts ``*.key`` and
    ``*.token`` settings. Where the JVM lacks cliplake's provider (a platform's own Spark, or one
    started without ``make jars``), a profile's credentials are copied as they are now, with a warning.
    """
    refreshing = not access.profile_name or provider_on_class_path(spark)
    if not refreshing:
        log.warning("%s is not on the JVM class path (make jars): S3A gets AWS profile %r's current credentials "
                    "for %s, which are not refreshed when they expire", PROFILE_PROVIDER, access.profile_name, uri)
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    for key, value in hadoop_settings(uri, access, refreshing).items():
        conf.set(key, value)
