"""Run an iterator in a background thread so producing and consuming overlap.

PyAV and torch release the GIL in their heavy calls, so decode in one thread and inference or
encode in another use two cores. The queue is bounded: memory stays at ``depth`` items.
"""

import queue
import threading
from typing import Iterable, Iterator, TypeVar

T = TypeVar("T")
_DONE = object()


class _Failure:
    def __init__(self, error: BaseException):
        self.error = error


def prefetch(items: Iterable[T], depth: int = 8) -> Iterator[T]:
    """Yield ``items`` in order, produced ahead by a daemon thread; its exceptions re-raise here.

    Stopping early (``break`` or an exception in the consumer) stops the producer at its next item.
    """
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                if stop.is_set():
                    return
                q.put(item)
        except BaseException as error:  # handed to the consumer, re-raised there
            q.put(_Failure(error))
            return
        q.put(_DONE)

    worker = threading.Thread(target=produce, daemon=True, name="prefetch")
    worker.start()
    try:
        while True:
            item = q.get()
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.error
            yield item
    finally:
        stop.set()
        while worker.is_alive():  # unblock a producer waiting on a full queue
            try:
                q.get(timeout=0.05)
            except queue.Empty:
                pass
