"""Point Spark's s3a connector (hadoop-aws) at the same store and credentials boto3 uses.

Delta tables on ``s3://`` are read and written by Spark through Hadoop's S3A filesystem
(``jobs/profiles/local*.conf`` map the ``s3`` scheme to it; Databricks and EMR bring their own). This
module copies what the driver knows into the session's Hadoop configuration: the custom
endpoint of an S3-compatible store, and a named profile's credentials for one bucket.
"""

import os

from pyspark.sql import SparkSession

from curate_udfs import objectstore
from curate_udfs.errors import EnvironmentProblem
from curate_udfs.objectstore import S3Access


def _region() -> str:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"


def hadoop_settings(uri: str, access: S3Access) -> dict[str, str]:
    """The ``fs.s3a.*`` settings that let Spark reach ``uri`` the way ``access`` does with boto3.

    Example::

        hadoop_settings("s3://lake/prod", S3Access(profile_name="writer", endpoint_url="http://127.0.0.1:9000"))

    An endpoint applies to the whole session (S3-compatible stores want path-style requests); a
    profile's credentials apply to ``uri``'s bucket only, so input and output can use different
    accounts. The profile is resolved here, on the driver, by boto3 (files, SSO, assumed roles);
    temporary credentials are passed with their session token.
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
        import boto3
        import botocore.exceptions

        try:
            credentials = boto3.session.Session(profile_name=access.profile_name).get_credentials()
        except botocore.exceptions.ProfileNotFound:
            credentials = None
        if credentials is None:
            raise EnvironmentProblem(f"AWS profile {access.profile_name!r} not found or has no credentials")
        frozen = credentials.get_frozen_credentials()
        per_bucket = f"fs.s3a.bucket.{bucket}."
        settings[per_bucket + "access.key"] = frozen.access_key
        settings[per_bucket + "secret.key"] = frozen.secret_key
        if frozen.token:
            settings[per_bucket + "session.token"] = frozen.token
            settings[per_bucket + "aws.credentials.provider"] = "org.apache.hadoop.fs.s3a.TemporaryAWSCredentialsProvider"
        else:
            settings[per_bucket + "aws.credentials.provider"] = "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider"
    return settings


def configure(spark: SparkSession, uri: str, access: S3Access) -> None:
    """Apply :func:`hadoop_settings` to the session's Hadoop configuration (driver and tasks).

    Secrets go only there, never into SQL confs or logs; Spark's UI redacts ``*.key`` and
    ``*.token`` settings.
    """
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    for key, value in hadoop_settings(uri, access).items():
        conf.set(key, value)
