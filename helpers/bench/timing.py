"""Timing: call something many times, summarise the latencies as percentiles, turn counts into rates.

Benchmarks in this course print figures; they never pass or fail on timing.
Compare systems measured side by side in one run and quote ratios: absolute
times move with the machine and whatever else runs on it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

import numpy as np
from tqdm.auto import tqdm

PERCENTILES = {"p50_ms": 50, "p99_ms": 99, "p99.9_ms": 99.9}


def time_calls(
    call: Callable[[object], object],
    arguments: Iterable[object],
    *,
    warmup: int = 20,
    progress: str | None = None,
) -> np.ndarray:
    """Call ``call(arg)`` for every argument; return each call's latency in ms.

    The first ``warmup`` arguments are called but not recorded (connection
    set-up, caches, the script cache).
    """
    arguments = list(arguments)
    if not arguments:
        raise ValueError("time_calls needs at least one argument to call with")
    for argument in arguments[:warmup]:
        call(argument)
    samples = np.empty(len(arguments))
    clock = time.perf_counter_ns
    for i, argument in enumerate(tqdm(arguments, desc=progress, disable=progress is None, leave=False)):
        started = clock()
        call(argument)
        samples[i] = clock() - started
    return samples / 1e6


def summarize(samples_ms: np.ndarray) -> dict[str, float]:
    """p50, p99 and p99.9 in ms, plus how many samples they rest on."""
    values = np.percentile(samples_ms, list(PERCENTILES.values()))
    summary = {name: float(v) for name, v in zip(PERCENTILES, values)}
    summary["samples"] = int(len(samples_ms))
    return summary


def rate(count: int, seconds: float) -> float:
    """Items per second, refusing a zero or negative duration."""
    if seconds <= 0:
        raise ValueError(f"duration must be positive, got {seconds}")
    return count / seconds


def countdown(seconds: float, desc: str, *, progress: bool = True) -> None:
    """Sleep ``seconds`` behind a progress bar that counts them ("desc: ▕███  ▏ 1.2/3.0 s")."""
    if not progress:
        time.sleep(seconds)
        return
    end = time.monotonic() + seconds
    shape = "{desc}: {bar} {n:.1f}/{total:.1f} s"
    with tqdm(total=seconds, desc=desc, bar_format=shape) as bar:
        while (left := end - time.monotonic()) > 0:
            time.sleep(min(0.1, left))
            bar.update(seconds - max(end - time.monotonic(), 0.0) - bar.n)
