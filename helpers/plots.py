"""Plots for the notebooks: one function per picture, each returning its Figure.

Every plot names the systems it compares, including which SQL backend (a
PostgreSQL, or the SQLite fallback) the baseline ran on.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter

ONE_MS = 1.0
_MS = FuncFormatter(lambda value, _: f"{value:g} ms")


def latency_vs_size(
    latency: pd.DataFrame, operations=("rank", "increment", "top 10"), *, title: str | None = None
) -> Figure:
    """One log-log panel per operation: latency against N, colour = system,
    solid = p50, dashed = p99; the 1 ms line, and a grey slope-1 guide (what O(N) looks like).
    """
    operations = [operations] if isinstance(operations, str) else list(operations)
    missing = [op for op in operations if op not in set(latency.operation)]
    if missing:
        raise ValueError(f"no rows for operation(s) {missing}; have {sorted(latency.operation.unique())}")
    systems = list(dict.fromkeys(latency.system))
    colors = {system: f"C{i}" for i, system in enumerate(systems)}
    figure, axes_row = plt.subplots(
        1, len(operations), figsize=(5.2 * len(operations), 4.6), sharey=True, squeeze=False
    )
    sizes = np.array(sorted(latency.N.unique()), dtype=float)
    for axes, operation in zip(axes_row[0], operations):
        data = latency[latency.operation == operation]
        for system, rows in data.groupby("system", sort=False):
            rows = rows.sort_values("N")
            axes.plot(rows.N, rows.p50_ms, "o-", color=colors[system])
            axes.plot(rows.N, rows.p99_ms, "--", color=colors[system], alpha=0.6)
        axes.axhline(ONE_MS, color="black", linestyle=":", linewidth=1)
        axes.annotate("1 ms", (sizes[0], ONE_MS), textcoords="offset points", xytext=(0, 3), fontsize=8)
        slowest = data.groupby("N").p50_ms.max().reindex(sizes).to_numpy()
        if slowest[-1] / slowest[0] > 0.1 * sizes[-1] / sizes[0]:  # something here grows like N
            guide = slowest[-1] * sizes / sizes[-1]
            axes.plot(sizes, guide, color="grey", linewidth=5, alpha=0.15)
            axes.annotate(
                "slope of O(N)",
                (sizes[-1], guide[-1]),
                textcoords="offset points",
                xytext=(-6, 6),
                fontsize=8,
                color="grey",
                ha="right",
            )
        axes.set(xscale="log", yscale="log", xlabel="players on the board (N)", title=operation)
        axes.yaxis.set_major_formatter(_MS)
        axes.grid(True, which="major", alpha=0.3)
    axes_row[0][0].set_ylabel("latency per call")
    handles = [Line2D([], [], color=colors[s], marker="o", label=s) for s in systems]
    handles += [
        Line2D([], [], color="black", label="p50 (median)"),
        Line2D([], [], color="black", linestyle="--", alpha=0.6, label="p99"),
    ]
    figure.legend(handles=handles, loc="lower center", ncol=3, fontsize=8, frameon=False)
    figure.suptitle(title or "Latency as the board grows")
    figure.tight_layout(rect=(0, 0.12, 1, 1))
    return figure


def bytes_per_member(memory: pd.DataFrame, *, title: str = "Sorted-set memory per member") -> Figure:
    """Bars of MEMORY USAGE per member against member-name length, name bytes shown apart."""
    figure, axes = plt.subplots(figsize=(7, 4))
    labels = memory.name_length.astype(str)
    name_bytes = memory.name_length.to_numpy(dtype=float)
    overhead = memory.bytes_per_member.to_numpy() - name_bytes
    axes.bar(labels, overhead, color="C0", alpha=0.5, label="structure (skip-list node, hash entry, ...)")
    axes.bar(labels, name_bytes, bottom=overhead, color="C0", label="the member name itself")
    for x, total in enumerate(memory.bytes_per_member):
        axes.annotate(f"{total:.0f} B", (x, total), ha="center", va="bottom", fontsize=9)
    members = int(memory.members.iloc[0])
    axes.set(
        xlabel="member name length (characters)",
        ylabel="bytes per member",
        title=f"{title} ({members:,} members)",
    )
    axes.legend(fontsize=8, loc="upper left")
    figure.tight_layout()
    return figure


def concurrency_outcome(
    outcome: pd.DataFrame, *, title: str = "Concurrent increments of one member"
) -> Figure:
    """Left: final value against the expected total, lost updates written on. Right: throughput."""
    figure, (left, right) = plt.subplots(
        1, 2, figsize=(11, 0.7 * len(outcome) + 1.8), sharey=True, gridspec_kw={"width_ratios": [3, 2]}
    )
    labels = [f"{s}: {m}" for s, m in zip(outcome.system, outcome.method)]
    colors = ["C2" if lost == 0 else "C3" for lost in outcome.lost]
    expected = outcome.expected.iloc[0]
    left.barh(labels, outcome.final, color=colors)
    left.axvline(expected, color="black", linestyle="--")
    for y, (final, lost) in enumerate(zip(outcome.final, outcome.lost)):
        text = "exact" if lost == 0 else f"lost {lost:,.0f}"
        left.annotate(
            text,
            (final, y),
            xytext=(-4, 0),
            textcoords="offset points",
            ha="right",
            va="center",
            color="white",
            fontsize=8,
            fontweight="bold",
        )
    left.invert_yaxis()
    left.set(xlabel=f"final score (dashed: the expected {expected:,})", title=title)
    right.barh(labels, outcome.increments_per_s, color="C7")
    right.set(xlabel="increments per second", title="throughput")
    figure.tight_layout()
    return figure
