"""The loops every stage shares: records in, records out, failures captured as data."""

import errno
import time
import traceback
from typing import Callable, Iterator, Sequence

import pandas as pd

from curate_udfs.errors import BadInputError, EnvironmentProblem


def environment_problem(error: BaseException) -> EnvironmentProblem | None:
    """The environment problem behind ``error`` when it is one no other record would escape (a full disk)."""
    if (isinstance(error, OSError) and error.errno == errno.ENOSPC) or "No space left on device" in str(error):
        return EnvironmentProblem(f"no space left on device ({error}): free space and run the job again; "
                                  "what it committed is kept and skipped")
    return None


def describe_error(error: BaseException) -> str:
    """A one-line message: bad input says what is wrong; anything else also says where it broke."""
    if isinstance(error, BadInputError):
        return str(error)
    frame = traceback.extract_tb(error.__traceback__)[-1] if error.__traceback__ else None
    where = f" (at {frame.filename.rsplit('/', 1)[-1]}:{frame.lineno})" if frame else ""
    return f"{type(error).__name__}: {error}{where}"


FLUSH_SECONDS = 0.5  # rows of records done within this long leave together
FLUSH_ROWS = 1024


def _frame(rows: list[dict], columns: Sequence[str]) -> pd.DataFrame:
    return pd.DataFrame([{c: row.get(c) for c in columns} for row in rows], columns=list(columns))


def _records(batches: Iterator[pd.DataFrame]) -> Iterator[dict]:
    for batch in batches:
        yield from batch.to_dict("records")


def flat_map_records(
    batches: Iterator[pd.DataFrame],
    process: Callable[[dict], list[dict]],
    on_error: Callable[[dict, str], list[dict]],
    columns: Sequence[str],
) -> Iterator[pd.DataFrame]:
    """Apply ``process`` to each record, yielding the rows it returns (zero or more) in frames.

    Rows leave as soon as a record taking at least ``FLUSH_SECONDS`` is done; rows of quicker
    records are gathered (up to that long, or ``FLUSH_ROWS`` rows) into one frame.

    A record whose processing raises becomes ``on_error(record, message)`` and the loop goes on;
    :class:`EnvironmentProblem` (missing encoder, weights...) stops the task instead, since every
    other record would fail the same way. Each output has exactly ``columns`` (missing ones None);
    ``processing_s`` is filled in on every row when it is one of ``columns``.
    """
    pending: list[dict] = []
    flushed = time.perf_counter()
    for record in _records(batches):
        started = time.perf_counter()
        try:
            rows = process(record)
        except EnvironmentProblem:
            raise
        except Exception as error:  # bad input, or a decoder/model surprise on this record only
            if environment_problem(error):
                raise environment_problem(error) from error
            rows = on_error(record, describe_error(error))
        elapsed = time.perf_counter() - started
        for row in rows:
            row.setdefault("processing_s", elapsed)
        pending += rows
        # Quick records (a missing file) share a frame: one frame per record costs more than the record.
        if pending and (time.perf_counter() - flushed >= FLUSH_SECONDS or len(pending) >= FLUSH_ROWS):
            yield _frame(pending, columns)
            pending, flushed = [], time.perf_counter()
    if pending:
        yield _frame(pending, columns)


def map_records(
    batches: Iterator[pd.DataFrame],
    process: Callable[[dict], dict],
    on_error: Callable[[dict, str], dict],
    columns: Sequence[str],
) -> Iterator[pd.DataFrame]:
    """:func:`flat_map_records` for stages that turn each record into exactly one row."""
    return flat_map_records(batches, lambda r: [process(r)], lambda r, m: [on_error(r, m)], columns)


def map_record_batches(
    batches: Iterator[pd.DataFrame],
    process_many: Callable[[list[dict]], list[dict]],
    on_error: Callable[[dict, str], dict],
    columns: Sequence[str],
    batch_size: int,
) -> Iterator[pd.DataFrame]:
    """Apply ``process_many`` to groups of ``batch_size`` records (one model call per group).

    ``process_many`` returns one row per record, in order. When a group raises, its records are
    retried one at a time, so one bad record costs only its own row (``on_error``).
    :class:`EnvironmentProblem` stops the task.
    """
    if batch_size < 1:
        raise ValueError(f"batch size must be >= 1, got {batch_size}")
    group: list[dict] = []

    def run(records: list[dict]) -> list[dict]:
        started = time.perf_counter()
        try:
            rows = process_many(records)
        except EnvironmentProblem:
            raise
        except Exception as error:
            if environment_problem(error):
                raise environment_problem(error) from error
            if len(records) > 1:
                return [row for record in records for row in run([record])]
            rows = [on_error(records[0], describe_error(error))]
        elapsed = (time.perf_counter() - started) / len(records)
        for row in rows:
            row.setdefault("processing_s", elapsed)
        return rows

    for record in _records(batches):
        group.append(record)
        if len(group) == batch_size:
            yield _frame(run(group), columns)
            group = []
    if group:
        yield _frame(run(group), columns)
