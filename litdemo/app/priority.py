"""Training at a lower CPU priority: a workshop's propagations are not slowed by other students' corrections.

On a CPU Space every job shares the same few cores. A correction trains for seconds; while it runs it takes
a core from the propagations and clicks of everyone else (measured: a correction beside two propagations
on two cores slows them 1.3-1.5x; niced by 10, 1.1x: benchmarks/bench_training_priority.py and docs/app.md,
"A workshop under load"). So the long jobs can run on a few threads of their own whose scheduling priority
is lowered (a higher nice value): the kernel hands the cores to model steps first and training what is left.

Why dedicated threads and not Gradio's own: Linux lets a thread raise its own nice value, but lowering it
again needs privileges a Space does not have, and Gradio's worker threads are pooled and serve every event.
So these threads are niced once, when they start, and only ever run long jobs.

Linux only: there `setpriority(PRIO_PROCESS, thread_id)` changes one thread (POSIX would change the whole
process). Elsewhere the threads run at normal priority and a warning says so.
"""
from __future__ import annotations

import concurrent.futures
import contextvars
import logging
import os
import queue
import sys
import threading
from typing import Callable, Iterator

MAX_NICE = 19  # the lowest priority Linux has


def check_nice(nice: int, name: str = "nice") -> None:
    """The one range check of a nice value to add (AppConfig.training_nice, the workers, the thread)."""
    if not 0 <= nice <= MAX_NICE:
        raise ValueError(f"{name} must be in 0..{MAX_NICE}, 0 meaning normal priority (got {nice}).")


def lower_this_threads_priority(nice: int) -> bool:
    """Raise the calling thread's nice value by `nice` (0..19). False where the platform cannot do it."""
    check_nice(nice)
    if nice == 0:
        return True
    if not sys.platform.startswith("linux"):
        logging.getLogger(__name__).warning("cannot lower one thread's priority on %s: training runs at "
                                            "normal priority", sys.platform)
        return False
    tid = threading.get_native_id()
    current = os.getpriority(os.PRIO_PROCESS, tid)
    os.setpriority(os.PRIO_PROCESS, tid, min(MAX_NICE, current + nice))
    return True


def thread_nice() -> int:
    """The calling thread's nice value (Linux; 0 elsewhere)."""
    if not sys.platform.startswith("linux"):
        return 0
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


class LowPriorityWorkers:
    """`workers` threads niced by `nice`, started on first use. `run(fn, ...)` calls fn on one of them and
    waits for its result (or exception); `steps(gen)` does the same for each step of a generator. The
    caller's context variables go along (Gradio keeps its request and progress bar in them).

    Daemon threads, as Gradio's own workers are: a server told to stop does not wait for a running
    simulation to end (a ThreadPoolExecutor's threads would be joined at exit)."""

    def __init__(self, workers: int, nice: int):
        if workers < 1:
            raise ValueError(f"workers must be >= 1 (got {workers}).")
        check_nice(nice)  # here, not only in the threads: a bad value fails the caller, not a worker
        self.workers, self.nice = workers, nice
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def run(self, fn: Callable, *args, **kwargs):
        return self._submit(contextvars.copy_context(), fn, args, kwargs).result()

    def steps(self, gen: Iterator) -> Iterator:
        context = contextvars.copy_context()  # one context for the whole generator, entered per step
        done = object()
        while True:
            item = self._submit(context, next, (gen, done), {}).result()
            if item is done:
                return
            yield item

    def shutdown(self) -> None:
        """Let the threads end once the jobs queued before this are done."""
        with self._lock:
            for _ in self._threads:
                self._jobs.put(None)
            self._threads = []

    def _submit(self, context, fn, args, kwargs) -> concurrent.futures.Future:
        with self._lock:
            while len(self._threads) < self.workers:
                thread = threading.Thread(target=self._serve, daemon=True,
                                          name=f"litdemo-training-{len(self._threads)}")
                thread.start()
                self._threads.append(thread)
        future = concurrent.futures.Future()
        self._jobs.put((future, context, fn, args, kwargs))
        return future

    def _serve(self) -> None:
        lower_this_threads_priority(self.nice)
        while (job := self._jobs.get()) is not None:
            future, context, fn, args, kwargs = job
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(context.run(fn, *args, **kwargs))
            except BaseException as err:  # noqa: BLE001 - handed to the caller, who raises it
                future.set_exception(err)
