"""The workload notebook 02 runs on both systems, so Redis and the SQL outbox are measured alike.

The Redis experiments (``helpers.bench.streams``) and the outbox's
(``helpers.bench.outbox``) share it, and ``make doctor`` sends it too: the same small
order events (``make_events``), the same paced sending (``paced``: every
millisecond, the events due by then) and the same latency row (``latency_frame``).
"""

from __future__ import annotations

import time

import pandas as pd

from helpers.bench import timing


def make_events(n: int, *, start: int = 0) -> list[dict[str, str]]:
    """``n`` small flat order events (action, order_id, total), numbered from ``start``."""
    actions = ("placed", "paid", "shipped", "cancelled")
    return [
        {"action": actions[i % 4], "order_id": f"ord-{i // 4}", "total": "89.99"}
        for i in range(start, start + n)
    ]


def paced(send, rate: int, seconds: float) -> tuple[int, float]:
    """Call ``send(count, first)`` once a millisecond with the events due by then; (sent, seconds)."""
    ticks = max(1, round(seconds * 1_000))
    sent = 0
    started = time.perf_counter()
    deadline = started + seconds * 3 + 10  # a producer that falls far behind stops anyway
    for tick in range(1, ticks + 1):
        wait = started + tick / 1_000 - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        due = rate * tick // 1_000
        if due > sent:
            send(due - sent, sent)
            sent = due
        if time.perf_counter() > deadline:
            break
    return sent, time.perf_counter() - started


def latency_frame(system, rate, seconds, sent, elapsed, outcome, **extra) -> pd.DataFrame:
    """One row: what was sent and received, the achieved rate, and the latency percentiles and max."""
    latencies = outcome["latencies_ms"]
    row = {
        "system": system,
        "target_rate": rate,
        "seconds": seconds,
        "sent": sent,
        "received": len(latencies),
        "achieved_rate": sent / elapsed,
        **extra,
    }
    if len(latencies):
        row |= timing.summarize(latencies)
        row["max_ms"] = float(latencies.max())
    return pd.DataFrame([row])
