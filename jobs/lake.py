"""Where a lake lives: its tables (paths under a root, or catalog.schema names) and its media files.

Every job turns its options into one :class:`Lake` and asks it for table references and media
locations, so a local folder, an ``s3://`` prefix and a Unity Catalog schema behave the same.
"""

import argparse
import os
from dataclasses import dataclass, field

from pyspark.sql import SparkSession

from curate_udfs import objectstore, storage
from curate_udfs.objectstore import S3Access
from jobs import s3a


def normalize_location(location: "str | os.PathLike") -> str:
    """A local path made absolute, or an ``s3://`` URI tidied; other schemes are refused.

    Media files are written with plain file I/O or boto3, so only those two kinds of place work
    for every part of a lake (Databricks volumes are local paths: ``/Volumes/cat/sch/vol/...``).
    """
    location = os.fspath(location)
    if objectstore.is_s3(location):
        return objectstore.normalize(location)
    if "://" in location or location.startswith("dbfs:"):
        raise ValueError(f"{location}: use a local path (or a mounted one such as /Volumes/...) or s3://bucket/prefix")
    return os.path.abspath(location)


def listed_path(path: str) -> str:
    """A path Spark's file sources report (``file:/x``, ``s3a://b/k``) in the form a listing gives
    (``/x``, ``s3://b/k``): the form ``source_path``, and so the ids, are made from."""
    if path.startswith(("s3://", "s3a://")):
        return objectstore.normalize("s3://" + path.split("://", 1)[1])
    return "/" + path.removeprefix("file:").lstrip("/") if path.startswith("file:") else path


@dataclass(frozen=True)
class TableRef:
    """One Delta table: by ``path`` (a location) or by ``name`` (catalog.schema.table); exactly one is set."""

    path: str | None = None
    name: str | None = None

    def __str__(self) -> str:
        return self.name or self.path


@dataclass(frozen=True)
class Lake:
    """A lake: media under ``root``; tables under ``root`` too, or managed in ``catalog.schema``.

    Example::

        lake = Lake.at("s3://bucket/lake", access=S3Access(profile_name="writer"))
        lake.table("clips")           # TableRef(path="s3://bucket/lake/clips")
        lake.media("clips", "x.mp4")  # "s3://bucket/lake/media/clips/x.mp4"

    ``catalog`` and ``schema`` come together: with them, tables are managed tables named
    ``catalog.schema.<table>`` (Unity Catalog on Databricks, Spark's own catalog elsewhere) and
    ``root`` holds only media. ``access`` reaches an ``s3://`` root.
    """

    root: str
    catalog: str | None = None
    schema: str | None = None
    access: S3Access = field(default_factory=S3Access)

    def __post_init__(self):
        if bool(self.catalog) != bool(self.schema):
            raise ValueError("give --catalog and --schema together (tables become catalog.schema.<table>)")
        for part in (self.catalog, self.schema):
            if part and not part.replace("_", "").replace("-", "").isalnum():
                raise ValueError(f"catalog and schema names are letters, digits, _ and -; got {part!r}")

    @classmethod
    def at(cls, location: str, catalog: str | None = None, schema: str | None = None,
           access: S3Access | None = None) -> "Lake":
        """The lake at ``location`` (made absolute, or a tidied ``s3://`` URI)."""
        return cls(normalize_location(location), catalog, schema, access or S3Access())

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "Lake":
        """The lake a job's options name: ``--output-path`` plus optional ``--catalog/--schema``
        and ``--output-s3-profile-name``."""
        access = S3Access(profile_name=getattr(args, "output_s3_profile_name", None))
        return cls.at(args.output_path, getattr(args, "catalog", None), getattr(args, "schema", None), access)

    @property
    def on_s3(self) -> bool:
        return objectstore.is_s3(self.root)

    @property
    def in_catalog(self) -> bool:
        return self.catalog is not None

    def table(self, name: str) -> TableRef:
        """Where table ``name`` lives."""
        if self.in_catalog:
            return TableRef(name=f"`{self.catalog}`.`{self.schema}`.`{name}`")
        return TableRef(path=storage.join(self.root, name))

    def media(self, *parts: str) -> str:
        """A media location under ``root/media``, e.g. ``media("clips", f"{clip_id}.mp4")``."""
        return storage.join(self.root, "media", *parts)

    def open(self, spark: SparkSession, *, for_writing: bool) -> "Lake":
        """Make the lake usable from ``spark``; fail now, before any work, when it is not.

        Configures s3a for an ``s3://`` root and checks the bucket takes writes (a missing bucket
        or a denied write is reported here, not after hours of video work); creates the schema
        of a catalog lake when it is missing; refuses to write a lake a newer cliplake wrote.
        """
        if self.on_s3:
            s3a.configure(spark, self.root, self.access)
            if for_writing:
                objectstore.check_writable(self.root, self.access)
        if self.in_catalog and for_writing:
            spark.sql(f"CREATE SCHEMA IF NOT EXISTS `{self.catalog}`.`{self.schema}`")
        if for_writing:
            from jobs import tables  # (tables imports this module)

            tables.check_lake_format(spark, self)
        return self

    def __str__(self) -> str:
        return f"{self.catalog}.{self.schema} (media: {self.root})" if self.in_catalog else self.root

    def cli_options(self) -> str:
        """The options that name this lake again, for the hint printed after a run."""
        return f"--output-path {self.root}" + (f" --catalog {self.catalog} --schema {self.schema}" if self.in_catalog else "")
