"""A folder lake's small writes with delta-rs, in the driver process: no Spark job, no JVM needed.

A dedup of a few thousand embeddings computes in a second or two in the driver; starting Spark
only to commit four small tables cost ten times that. A split wave's few hundred rows took three
Spark MERGEs of 2.5-3.6 s each, and creating the tables 4.7 s. On a local folder lake these writes
(:func:`takes` says which) go through delta-rs instead: the same tables, schemas, keys and table
property as :mod:`jobs.tables` gives them, the same keyed semantics (``replace_rows``: a slice
replaced; ``merge_rows``: an upsert on the table's keys; ``update_columns``: columns set on existing
keys) and the same retry after another job's conflicting commit
(:func:`jobs.tables.committed` knows delta-rs's ``CommitFailedError``). Spark reads and writes
these tables as any other; Delta's log is one protocol whichever engine commits.

:func:`writable` says whether a lake's tables can be written this way: absent, or with exactly
this cliplake's schema and lake format (an older lake's tables gain new columns through Spark's
schema evolution, which this path leaves to Spark).

Example::

    if lake_rs.writable(lake, ["semantic_dedup", "runs"]):
        lake_rs.replace_rows(lake, "semantic_dedup", frame, "model = 'm'")
"""

import json
import os

import pandas as pd
import pyarrow as pa
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from jobs import tables
from jobs.lake import Lake

_ARROW = {
    T.StringType: pa.string(), T.LongType: pa.int64(), T.IntegerType: pa.int32(), T.DoubleType: pa.float64(),
    T.FloatType: pa.float32(), T.BooleanType: pa.bool_(), T.TimestampType: pa.timestamp("us", tz="UTC"),
}


def arrow_type(spark_type: T.DataType) -> pa.DataType:
    """The Arrow type delta-rs stores as Spark's ``spark_type`` (arrays of the types above)."""
    if isinstance(spark_type, T.ArrayType):
        return pa.list_(arrow_type(spark_type.elementType))
    return _ARROW[type(spark_type)]


def arrow_schema(name: str) -> pa.Schema:
    schema, _ = tables.TABLES[name]
    return pa.schema([pa.field(f.name, arrow_type(f.dataType), f.nullable) for f in schema.fields])


def _path(lake: Lake, name: str) -> str:
    return tables.table_path(lake, name)


def _open(lake: Lake, name: str):
    """delta-rs's handle on table ``name``, or None where there is no table yet."""
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    try:
        return DeltaTable(_path(lake, name))
    except TableNotFoundError:
        return None


def _fields(schema_json: str | dict) -> list:
    fields = json.loads(schema_json) if isinstance(schema_json, str) else schema_json
    return [(f["name"], f["type"]) for f in fields["fields"]]


def writable(lake: Lake, names: list[str], max_table_bytes: int | None = None) -> bool:
    """Whether delta-rs can write tables ``names`` of ``lake`` as Spark would: a folder lake whose
    tables are absent or have exactly this cliplake's schema, lake format and the protocol Spark
    gives them (no table features), and deltalake installed; each at most ``max_table_bytes`` when given."""
    if lake.in_catalog or lake.on_s3:
        return False
    try:
        for name in names:
            table = _open(lake, name)
            if table is None:
                continue
            expected, _ = tables.TABLES[name]
            found = table.metadata().configuration.get(tables.LAKE_FORMAT_PROPERTY)
            if _fields(table.schema().to_json()) != _fields(expected.jsonValue()) or found != str(tables.LAKE_FORMAT):
                return False
            if table.protocol().min_writer_version > 2:  # table features (deletion vectors...): Spark's to write
                return False
            if max_table_bytes is not None:  # (summed only when asked: creating tables needs no size)
                if sum(table.get_add_actions(flatten=True).column("size_bytes").to_pylist()) > max_table_bytes:
                    return False
    except Exception:  # deltalake missing, or a table it cannot read: Spark writes instead
        return False
    return True


# A commit of at most this many rows into a table of at most this size is made here in the driver: a
# Spark MERGE of a few rows takes 2.5-3.6 s on 2 cores, delta-rs's took 0.6 s into a 1M-row clips table (45 MiB).
ROWS_ENV, TABLE_MB_ENV = "CLIPLAKE_DRIVER_COMMIT_ROWS", "CLIPLAKE_DRIVER_COMMIT_TABLE_MB"
DEFAULT_ROWS, DEFAULT_TABLE_MB = 20_000, 512


def takes(lake: Lake, names: list[str], num_rows: int) -> bool:
    """Whether a commit of ``num_rows`` rows into tables ``names`` is made here rather than by Spark:
    they are :func:`writable` and small (``CLIPLAKE_DRIVER_COMMIT_ROWS`` rows, 20,000 unless set, into
    tables of ``CLIPLAKE_DRIVER_COMMIT_TABLE_MB``, 512; 0 rows: every commit by Spark)."""
    if num_rows > _limit(ROWS_ENV, DEFAULT_ROWS):
        return False
    return writable(lake, names, max_table_bytes=_limit(TABLE_MB_ENV, DEFAULT_TABLE_MB) << 20)


def _limit(env: str, default: int) -> int:
    value = os.environ.get(env, "").strip()
    try:
        return int(value) if value else default
    except ValueError:
        raise ValueError(f"{env} must be a whole number, not {value!r}") from None


def known_empty(lake: Lake, name: str) -> bool:
    """True when table ``name`` of a folder lake is absent or has no data files (read from its log, no JVM);
    False when it has files or this cannot tell (a catalog or s3:// lake)."""
    if lake.in_catalog or lake.on_s3:
        return False
    try:
        table = _open(lake, name)
        return table is None or not table.get_add_actions(flatten=True).num_rows
    except Exception:  # deltalake missing, or a table it cannot read: Spark reads it
        return False


def ensure_table(lake: Lake, name: str) -> None:
    """Create table ``name`` of ``lake`` empty (schema, lake format) when missing; another job
    creating it at the same moment is not an error."""
    from deltalake import DeltaTable

    if _open(lake, name) is not None:
        return
    config = {tables.LAKE_FORMAT_PROPERTY: str(tables.LAKE_FORMAT)}
    try:
        DeltaTable.create(_path(lake, name), arrow_schema(name), mode="ignore", configuration=config,
                          raise_if_key_not_exists=False)  # (a property of our own)
    except Exception:
        if _open(lake, name) is None:  # not a lost race: the error is the problem
            raise


def _arrow_rows(name: str, rows: pd.DataFrame, only_given: bool = False) -> pa.Table:
    """``rows`` with exactly the table's columns, in order and type (missing ones null), as tables._conform;
    ``only_given``: just ``rows``' columns, in the table's types."""
    schema = arrow_schema(name)
    if only_given:
        schema = pa.schema([schema.field(c) for c in rows.columns])
    columns = [pa.array(rows[f.name], f.type, from_pandas=True) if f.name in rows else pa.nulls(len(rows), f.type)
               for f in schema]
    return pa.Table.from_arrays(columns, schema=schema)


def collected(rows: DataFrame) -> pd.DataFrame:
    """``rows`` brought to the driver; timestamps as exact UTC instants, whatever the session's or the
    machine's time zone (Spark hands pandas naive local times)."""
    stamps = {f.name for f in rows.schema.fields if isinstance(f.dataType, T.TimestampType)}
    frame = rows.select([F.unix_micros(c).alias(c) if c in stamps else c for c in rows.columns]).toPandas()
    for column in stamps:
        frame[column] = pd.to_datetime(frame[column], unit="us", utc=True)
    return frame


def replace_rows(lake: Lake, name: str, rows: pd.DataFrame, where: str) -> None:
    """Atomically replace every row of table ``name`` matching ``where`` by ``rows`` (:func:`tables.replace_rows`)."""
    from deltalake import write_deltalake

    ensure_table(lake, name)
    data = _arrow_rows(name, rows)
    tables.committed(f"replacing rows of {name}",
                     lambda: write_deltalake(_path(lake, name), data, mode="overwrite", predicate=where))
    _checkpoint_when_due(lake, name)


def merge_rows(lake: Lake, name: str, rows: pd.DataFrame) -> None:
    """Upsert ``rows`` into table ``name`` on its keys (:func:`tables.merge_rows`)."""
    _, keys = tables.TABLES[name]
    data = _arrow_rows(name, rows)
    ensure_table(lake, name)
    tables.committed(f"MERGE into {name}", lambda: _open(lake, name).merge(  # (opened per try: the latest version)
        data, tables.on_keys(keys), source_alias="s", target_alias="t")
        .when_matched_update_all().when_not_matched_insert_all().execute())
    _checkpoint_when_due(lake, name)


def update_columns(lake: Lake, name: str, rows: pd.DataFrame) -> None:
    """Set ``rows``' non-key columns on the rows of table ``name`` with the same keys (:func:`tables.update_columns`)."""
    _, keys = tables.TABLES[name]
    data = _arrow_rows(name, rows, only_given=True)
    updates = {c: f"s.{c}" for c in rows.columns if c not in keys}
    ensure_table(lake, name)
    tables.committed(f"MERGE into {name}", lambda: _open(lake, name).merge(
        data, tables.on_keys(keys), source_alias="s", target_alias="t").when_matched_update(updates).execute())
    _checkpoint_when_due(lake, name)


def _checkpoint_when_due(lake: Lake, name: str) -> None:
    """A checkpoint every ``delta.checkpointInterval`` versions (10), as Delta Spark writes one, so that
    a table committed wave after wave by delta-rs is not read by replaying every commit since the start."""
    table = _open(lake, name)
    interval = int(table.metadata().configuration.get("delta.checkpointInterval") or 10)
    if table.version() % interval == 0:
        table.create_checkpoint()
