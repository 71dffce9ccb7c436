"""Listing an S3 prefix: its first-level folders listed in parallel, merged back into key order."""

from curate_udfs import objectstore
from curate_udfs.objectstore import S3Access


def test_a_prefix_lists_every_object_once_in_key_order(s3, s3_env):
    s3.create_bucket(Bucket="many")
    keys = [f"cams/cam{c}/day{d}/clip{i}.mp4" for c in range(5) for d in range(3) for i in range(4)]
    keys += ["cams/a.mp4", "cams/cam1.mp4", "cams/z.mp4", "other/x.mp4", "camsx/y.mp4"]
    for key in keys:
        s3.put_object(Bucket="many", Key=key, Body=key.encode())
    listed = list(objectstore.list_objects("s3://many/cams", S3Access()))
    expected = sorted(k for k in keys if k.startswith("cams/"))
    assert [uri for uri, _ in listed] == [f"s3://many/{k}" for k in expected]
    assert all(size == len(uri.removeprefix("s3://many/")) for uri, size in listed)
    assert len(list(objectstore.list_objects("s3://many", S3Access()))) == len(keys)  # the bucket's root too
