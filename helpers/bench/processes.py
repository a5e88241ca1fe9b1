"""Benchmark processes: start several, release them at once, collect one result each, leave none behind.

Notebook 02's experiments measure work done by several processes at once
(producers, consumer-group workers, outbox consumers). This module is the
plumbing they share:

* Processes come from ``multiprocessing``'s **spawn** context, with module-level
  targets: a fork of a Jupyter kernel is unsafe (its threads, its sockets), and
  spawn works the same from a kernel, a script and pytest.
* A spawned process is slow to start (it imports numpy, pandas, redis). So each
  child gets ready first (imports, data, connection), then waits at a **start
  gate** (``wait_at_gate``) that the parent releases for all at once
  (``run_together``): start-up is never timed.
* A child reports one dict on a results queue, or ``{"error": ...}``
  (``report_failure``); the parent raises at once when a child failed or died
  (``wait_ready``, ``get``) instead of waiting out a timeout.
* Every child is joined, and terminated if it will not end (``finish``): no
  benchmark leaves a process running.
"""

from __future__ import annotations

import multiprocessing
import queue
import threading
import time

START_TIMEOUT_S = 120  # spawned processes import numpy, pandas and redis: slow on a busy machine


def spawn_context():
    """The spawn context every benchmark process is started from."""
    return multiprocessing.get_context("spawn")


def run_together(target, jobs: list[tuple], *, timeout: float) -> tuple[float, list[dict]]:
    """Start one spawned process per job, release them together, time until the last reports.

    Each ``target(*job, gate, results)`` gets ready (imports, data, connection),
    waits at the gate (``wait_at_gate``) and puts one dict on ``results``.
    Returns (seconds from the release to the last result, the results).
    """
    ctx = spawn_context()
    gate = (ctx.Semaphore(0), ctx.Event())
    results = ctx.Queue()
    children = [ctx.Process(target=target, args=(*job, gate, results), daemon=True) for job in jobs]
    try:
        for child in children:
            child.start()
        wait_ready(gate[0], len(children), children, results)
        gate[1].set()
        started = time.perf_counter()
        deadline = time.monotonic() + timeout
        reports = [get(results, children, timeout=deadline - time.monotonic()) for _ in children]
        return time.perf_counter() - started, reports
    finally:
        gate[1].set()  # a process still waiting at the gate goes on, and finds out it is alone
        finish(children)
        results.close()


def wait_at_gate(gate) -> None:
    """In a benchmark process: say "ready", then wait for the parent to release everyone."""
    ready, go = gate
    ready.release()
    if not _poll(go, START_TIMEOUT_S, interval=0.0005):
        raise TimeoutError("the other benchmark processes never got ready")


def _poll(event, timeout: float, *, interval: float) -> bool:
    """Wait for a multiprocessing ``event`` by polling it.

    Not ``event.wait()``: a process that exits while waiting stays counted as a
    sleeper of the event's condition, and the parent's ``event.set()`` then
    waits for it forever.
    """
    deadline = time.monotonic() + timeout
    while not event.is_set():
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
    return True


def wait_ready(ready, count: int, children, results) -> None:
    """In the parent: wait until ``count`` processes said ready; fail fast if one failed or died."""
    deadline = time.monotonic() + START_TIMEOUT_S
    for _ in range(count):
        while not ready.acquire(timeout=0.1):
            if not all(child.is_alive() for child in children) or time.monotonic() > deadline:
                raise RuntimeError(f"a benchmark process did not start: {_errors(results)}")


def report_failure(results, error: BaseException) -> None:
    """In a benchmark process: put the error on ``results``, for the parent to raise."""
    results.put({"error": f"{type(error).__name__}: {error}"})


def _errors(results) -> str:
    found = []
    while True:
        try:
            found.append(results.get(timeout=1).get("error", "?"))
        except queue.Empty:
            return "; ".join(found) or "no error reported"


def get(results, children, *, timeout: float) -> dict:
    """One result, raising if a process reported an error, died, or the time ran out."""
    children = children if isinstance(children, list) else [children]
    deadline = time.monotonic() + max(timeout, 0)
    while True:
        try:
            outcome = results.get(timeout=0.2)
            break
        except queue.Empty:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no result from the benchmark processes within {timeout:.0f} s") from None
            if all(not child.is_alive() and child.exitcode not in (None, 0) for child in children):
                codes = [child.exitcode for child in children]
                raise RuntimeError(f"the benchmark processes died (exit codes {codes})") from None
    if "error" in outcome:
        raise RuntimeError(f"a benchmark process failed: {outcome['error']}")
    return outcome


def stop_when(event, stop, budget_s: float) -> None:
    """In a consumer process: call ``stop()`` when the parent sets ``event``, or after ``budget_s``."""

    def watch() -> None:
        _poll(event, budget_s, interval=0.05)
        stop()

    threading.Thread(target=watch, daemon=True).start()


def finish(children) -> None:
    """Join every started child; terminate one that is still alive after 10 s."""
    for child in children:
        if child.pid is None:
            continue  # never started
        child.join(timeout=10)
        if child.is_alive():
            child.terminate()
            child.join(timeout=5)
