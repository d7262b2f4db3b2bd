"""Seeded chunked generation across worker processes, with progress on stderr.

The synthetic datasets (`listops`, `pathfinder`) are generated in chunks of examples. Each chunk
draws from its own RNG, seeded by `chunk_seed` from the chunk's identity (dataset, seed, split,
chunk index), and chunks are consumed in index order, so the data depend on that identity only,
never on how many processes computed them. `map_ordered` computes the chunks inline or in a
process pool and yields them in order; `Progress` prints a rate-limited progress line.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import multiprocessing.pool
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

Task = TypeVar("Task")
Result = TypeVar("Result")

_END = object()  # marks the end of `tasks`


def chunk_seed(*parts: object, num_bytes: int = 32) -> int:
    """A chunk's seed: the sha256 of `parts` joined by ':' (e.g. 'listops:0:7'), read as a
    little-endian integer of its first `num_bytes` bytes.

    Stable across processes, platforms and Python versions, unlike `hash()`.
    """
    digest = hashlib.sha256(":".join(str(part) for part in parts).encode()).digest()
    return int.from_bytes(digest[:num_bytes], "little")


def num_processes(num_workers: int | None, num_chunks: int) -> int:
    """Worker processes to use: `num_workers` (default os.cpu_count()), at most one per chunk
    (more only waste start-up time). <= 1 means generate inline."""
    num_workers = (os.cpu_count() or 1) if num_workers is None else num_workers
    return min(num_workers, num_chunks)


def map_ordered(
    fn: Callable[[Task], Result],
    tasks: Iterable[Task],
    *,
    num_workers: int,
    on_wait: Callable[[list[Task]], None] | None = None,
    poll_s: float = 1.0,
) -> Iterator[Result]:
    """Yields `fn(task)` for each task, in task order; `tasks` may be endless.

    Args:
      fn: a module-level function (workers import it by name), returning picklable results.
      tasks: picklable arguments for `fn`, read lazily.
      num_workers: <= 1 runs `fn` inline; else a pool of that many processes works up to
        2 * num_workers tasks ahead of the one to yield next.
      on_wait: with a pool, called every `poll_s` seconds while the next result is not ready,
        with the tasks already finished out of order (so the caller can keep printing progress).
      poll_s: see `on_wait`.

    Closing the iterator early (or leaving a `for` loop) terminates workers still busy on tasks
    nobody needs.
    """
    if num_workers <= 1:
        yield from map(fn, tasks)
        return
    tasks = iter(tasks)
    # 'spawn', not 'fork': the caller may already run JAX or grain threads, and forking a
    # multithreaded process can deadlock. Workers import only the generator's module (no JAX).
    pool = multiprocessing.get_context("spawn").Pool(num_workers)
    try:
        pending: dict[int, tuple[Task, multiprocessing.pool.AsyncResult]] = {}
        next_submit = next_yield = 0
        exhausted = False
        while True:
            while not exhausted and len(pending) < 2 * num_workers:
                task = next(tasks, _END)
                if task is _END:
                    exhausted = True
                    break
                pending[next_submit] = task, pool.apply_async(fn, (task,))
                next_submit += 1
            if not pending:
                return
            result = pending[next_yield][1]
            result.wait(poll_s)
            if not result.ready():
                if on_wait is not None:
                    on_wait(
                        [
                            task
                            for index, (task, other) in pending.items()
                            if index != next_yield and other.ready()
                        ]
                    )
                continue
            del pending[next_yield]
            next_yield += 1
            yield result.get()
    finally:
        pool.terminate()
        pool.join()


def _format_rate(rate: float) -> str:
    return f"{rate:.1f}" if rate < 100 else f"{rate:.0f}"


class Progress:
    """Prints 'done / needed examples, rate, elapsed, ETA' to stderr at most every `every_s`
    seconds (never if `every_s` is None)."""

    def __init__(self, needed: int, every_s: float | None, label: str):
        self.needed, self.every_s, self.label = needed, every_s, label
        self.start = self.last = time.monotonic()

    def update(self, done: int) -> None:
        now = time.monotonic()
        if self.every_s is None or now - self.last < self.every_s:
            return
        self.last = now
        elapsed = max(now - self.start, 1e-9)
        rate = done / elapsed
        eta = f"{(self.needed - done) / rate:.0f}s" if rate > 0 else "?"
        print(
            f"{self.label}: {done}/{self.needed} examples ({100 * done / self.needed:.1f}%), "
            f"{_format_rate(rate)}/s, elapsed {elapsed:.0f}s, ETA {eta}",
            file=sys.stderr,
            flush=True,
        )

    def finish(self) -> None:
        """The closing line: all `needed` examples, total time and mean rate."""
        if self.every_s is None:
            return
        elapsed = max(time.monotonic() - self.start, 1e-9)
        print(
            f"{self.label}: generated {self.needed} examples in {elapsed:.1f}s "
            f"({_format_rate(self.needed / elapsed)}/s)",
            file=sys.stderr,
            flush=True,
        )
