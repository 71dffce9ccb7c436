"""Failures cliplake expects, said in one sentence: the cause and what to do.

Spark hands a driver-side error up as a Py4J or PySpark exception whose text holds the JVM's
(or a Python worker's) message; :func:`explain` recognises the causes a user can act on. Anything
else is a bug and keeps its stack trace, as does everything under ``--verbose``.
"""

import re

_WORKER = re.compile(r"curate_udfs\.errors\.(?:EnvironmentProblem|StorageError|LakeConflict): ([^\n]+)")
_CAUSES = (
    (re.compile(r"No space left on device|ENOSPC|DiskSpace", re.I),
     "a disk is full (No space left on device): free space on the lake's disk (or Spark's scratch disk) and run "
     "the job again; what it committed is kept and skipped"),
    (re.compile(r"DELTA_INVALID_PROTOCOL_VERSION|InvalidProtocolVersionException|DELTA_UNSUPPORTED_FEATURES_FOR_(READ|WRITE)"),
     "the lake's tables use Delta features this cliplake's Delta cannot handle (written by a newer version): "
     "upgrade cliplake (pip install -U 'cliplake[spark]') or use the cliplake that wrote the lake"),
    (re.compile(r"DELTA_MISSING_DELTA_TABLE|is not a Delta table"),
     "the path given is not a cliplake lake (no Delta table where one was expected): check --output-path / "
     "--input-clip-path"),
    (re.compile(r"UnknownHostException|Connection refused|ConnectException|SdkClientException: Unable to execute HTTP"),
     "object storage could not be reached (unknown host or connection refused): check the endpoint "
     "(AWS_ENDPOINT_URL, fs.s3a.endpoint) and the network"),
    (re.compile(r"NoSuchBucket|The specified bucket does not exist"),
     "the bucket does not exist: check the s3:// path"),
    (re.compile(r"AccessDenied|403 Forbidden|status code: 403"),
     "object storage denied access (403): check the AWS profile (--*-s3-profile-name) and its permissions"),
)


def explain(error: BaseException) -> str | None:
    """The one-line explanation of an expected failure, or None for a bug."""
    text = str(error)
    worker = _WORKER.search(text)
    if worker:
        return worker.group(1).strip()
    for pattern, sentence in _CAUSES:
        if pattern.search(text):
            return sentence
    return None
