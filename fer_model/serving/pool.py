"""Serving many requests at once: a fixed pool of recognizers with a bounded queue in front of it.

    pool = RecognizerPool(lambda: EmotionRecognizer.from_pretrained(threads=1), workers=2, queue_size=256)
    faces = pool.run(lambda recognizer: recognizer.predict(photo))           # blocking, from any thread
    faces = await pool.run_async(lambda recognizer: recognizer.predict(photo))   # from an event loop

Each worker thread owns one recognizer (built with one thread of its own), so that `workers` single-thread
recognizers keep `workers` cores busy and never more. At most `workers + queue_size` calls are accepted at a
time; one more raises `PoolFullError` at once instead of queueing without bound.
"""
from __future__ import annotations

import asyncio
import contextvars
import os
import queue
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable, TypeVar

from ..errors import FERError

T = TypeVar("T")
DEFAULT_QUEUE_SIZE = 256
"""Calls that may wait for a worker (beyond those running): 256 clients are served without a refusal."""


class PoolFullError(FERError):
    """Every worker is busy and the queue is full: try again shortly."""


def default_workers() -> int:
    """`FER_WORKERS`, else one worker per core."""
    value = os.environ.get("FER_WORKERS")
    if value:
        try:
            workers = int(value)
        except ValueError:
            raise ValueError(f"FER_WORKERS must be a whole number, not {value!r}") from None
        if workers < 1:
            raise ValueError(f"FER_WORKERS must be at least 1, not {workers}")
        return workers
    return os.cpu_count() or 1


class RecognizerPool:
    """`workers` recognizers made by `load`, one per worker thread, behind a queue of `queue_size` calls."""

    def __init__(self, load: Callable[[], T], workers: int | None = None, queue_size: int = DEFAULT_QUEUE_SIZE):
        self.workers = workers or default_workers()
        self.queue_size = queue_size
        self._idle: queue.SimpleQueue = queue.SimpleQueue()
        for _ in range(self.workers):
            self._idle.put(load())
        self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix="recognizer")
        self._slots = threading.BoundedSemaphore(self.capacity)

    def submit(self, fn: Callable[[T], object], wait: float | None = 0) -> Future:
        """Run `fn(recognizer)` on a worker, in the caller's context variables (as `asyncio.to_thread` does); a
        `Future` of its result. With every slot taken, waits up to `wait` seconds for one (None: as long as it
        takes), then raises `PoolFullError`."""
        if not self._slots.acquire(blocking=wait != 0, timeout=wait or None):
            raise self.full()
        try:
            future = self._executor.submit(contextvars.copy_context().run, self._call, fn)
        except BaseException:
            self._slots.release()
            raise
        future.add_done_callback(lambda _: self._slots.release())
        return future

    def run(self, fn: Callable[[T], object], wait: float | None = None):
        """`fn(recognizer)` on a worker, waiting for its result (and, by default, for a free slot)."""
        return self.submit(fn, wait).result()

    async def run_async(self, fn: Callable[[T], object]):
        """`fn(recognizer)` on a worker, awaited; `PoolFullError` at once when the queue is full."""
        return await asyncio.wrap_future(self.submit(fn))

    @property
    def capacity(self) -> int:
        """Calls it accepts at once: `workers` running and `queue_size` waiting."""
        return self.workers + self.queue_size

    def full(self) -> PoolFullError:
        return PoolFullError(f"the server is busy ({self.capacity} requests in progress); try again in a moment")

    @property
    def in_flight(self) -> int:
        """Calls accepted and not yet finished (running or waiting)."""
        return self.capacity - self._slots._value

    def _call(self, fn):
        recognizer = self._idle.get()
        try:
            return fn(recognizer)
        finally:
            self._idle.put(recognizer)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
