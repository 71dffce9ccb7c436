"""The one loop every stage shares: records in, records out, failures captured as data."""

import time
import traceback
from typing import Callable, Iterator, Sequence

import pandas as pd

from curate_udfs.errors import BadInputError, EnvironmentProblem


def describe_error(error: BaseException) -> str:
    """A one-line message: bad input says what is wrong; anything else also says where it broke."""
    if isinstance(error, BadInputError):
        return str(error)
    frame = traceback.extract_tb(error.__traceback__)[-1] if error.__traceback__ else None
    where = f" (at {frame.filename.rsplit('/', 1)[-1]}:{frame.lineno})" if frame else ""
    return f"{type(error).__name__}: {error}{where}"


def map_records(
    batches: Iterator[pd.DataFrame],
    process: Callable[[dict], dict],
    on_error: Callable[[dict, str], dict],
    columns: Sequence[str],
) -> Iterator[pd.DataFrame]:
    """Apply ``process`` to each record, one output frame per record so results stream out.

    A record whose processing raises becomes ``on_error(record, message)`` and the loop goes on;
    :class:`EnvironmentProblem` (missing encoder, weights...) stops the task instead, since every
    other record would fail the same way. Each output has exactly ``columns`` (missing ones None);
    ``processing_s`` is filled in here.
    """
    for batch in batches:
        for record in batch.to_dict("records"):
            started = time.perf_counter()
            try:
                out = process(record)
            except EnvironmentProblem:
                raise
            except Exception as error:  # bad input, or a decoder/model surprise on this record only
                out = on_error(record, describe_error(error))
            out["processing_s"] = time.perf_counter() - started
            yield pd.DataFrame([{c: out.get(c) for c in columns}], columns=list(columns))
