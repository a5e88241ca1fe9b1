"""Plots for the notebooks: one function per picture, each returning its Figure.

Every plot names the systems it compares, including which SQL backend (a
PostgreSQL, or the SQLite fallback) the baseline ran on.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure

ONE_MS = 1.0


def latency_vs_size(latency: pd.DataFrame, operation: str = "rank", *, title: str | None = None) -> Figure:
    """Log-log latency against N for every system: p50 solid, p99 dashed, the 1 ms line."""
    data = latency[latency.operation == operation]
    if data.empty:
        raise ValueError(f"no rows for operation {operation!r}; have {sorted(latency.operation.unique())}")
    figure, axes = plt.subplots(figsize=(9, 5))
    for index, (system, rows) in enumerate(data.groupby("system", sort=False)):
        rows = rows.sort_values("N")
        color = f"C{index}"
        axes.plot(rows.N, rows.p50_ms, "o-", color=color, label=f"{system} p50")
        axes.plot(rows.N, rows.p99_ms, "s--", color=color, alpha=0.7, label=f"{system} p99")
    axes.axhline(ONE_MS, color="black", linestyle=":", linewidth=1, label="1 ms")
    axes.set(
        xscale="log",
        yscale="log",
        xlabel="players on the board (N)",
        ylabel="latency per call (ms)",
        title=title or f"{operation}: latency as the board grows",
    )
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=8, loc="upper left")
    figure.tight_layout()
    return figure


def bytes_per_member(memory: pd.DataFrame, *, title: str = "Sorted-set memory per member") -> Figure:
    """Bar chart of MEMORY USAGE per member against member-name length."""
    figure, axes = plt.subplots(figsize=(7, 4))
    axes.bar(memory.name_length.astype(str), memory.bytes_per_member, color="C3")
    for x, value in enumerate(memory.bytes_per_member):
        axes.annotate(f"{value:.0f} B", (x, value), ha="center", va="bottom", fontsize=9)
    members = int(memory.members.iloc[0])
    axes.set(
        xlabel="member name length (characters)",
        ylabel="bytes per member",
        title=f"{title} ({members:,} members)",
    )
    figure.tight_layout()
    return figure


def concurrency_outcome(
    outcome: pd.DataFrame, *, title: str = "Concurrent increments of one member"
) -> Figure:
    """Final value reached by each method against the expected total."""
    figure, axes = plt.subplots(figsize=(8, 3.5))
    labels = [f"{s}\n{m}" for s, m in zip(outcome.system, outcome.method)]
    colors = ["C2" if lost == 0 else "C3" for lost in outcome.lost]
    axes.barh(labels, outcome.final, color=colors)
    axes.axvline(outcome.expected.iloc[0], color="black", linestyle="--", label="expected")
    axes.invert_yaxis()
    axes.set(xlabel="final score", title=title)
    axes.legend(loc="lower right")
    figure.tight_layout()
    return figure
