"""Plots for the notebooks: one function per picture, each returning its Figure.

Every plot names the systems it compares, including the PostgreSQL version the
SQL baseline ran on.
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


def server_time_vs_size(
    latency: pd.DataFrame, *, title: str = "Server time per call as the board grows"
) -> Figure:
    """The server's own microseconds per call (INFO commandstats) against N on a log axis.

    A straight rising line on a log x axis is O(log N): each tenfold of players adds the
    same few steps. Rows without a server time (SQL) are left out.
    """
    data = latency.dropna(subset=["server_us"])
    if data.empty:
        raise ValueError("no row has a server_us figure: measure with latency_by_size")
    figure, axes = plt.subplots(figsize=(7, 4))
    for (system, operation), rows in data.groupby(["system", "operation"], sort=False):
        rows = rows.sort_values("N")
        command = {"rank": "ZREVRANK", "increment": "ZINCRBY", "top 10": "ZREVRANGE 0 9"}.get(
            operation, operation
        )
        label = f"{command}" if "fair" not in system else "Leaderboard.rank (Lua: ZSCORE + ZCOUNT)"
        axes.plot(rows.N, rows.server_us, "o-", label=label)
        last = rows.iloc[-1]
        axes.annotate(f"{last.server_us:.2f} µs", (last.N, last.server_us), textcoords="offset points",
                      xytext=(4, 0), va="center", fontsize=8)  # fmt: skip
    axes.set(xscale="log", ylim=(0, None), xlabel="players on the board (N, log scale)",
             ylabel="server time per call (µs)", title=title)  # fmt: skip
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    return figure


def rank_designs(ranks: pd.DataFrame, *, title: str | None = None) -> Figure:
    """Median rank latency per design, one bar per place on the board (top, middle, bottom), log axis."""
    positions = list(dict.fromkeys(ranks.position))
    designs = list(dict.fromkeys(ranks.design))
    wide = ranks.pivot(index="design", columns="position", values="p50_ms").reindex(index=designs)
    figure, axes = plt.subplots(figsize=(8, 0.55 * len(designs) * len(positions) / 2 + 1.5))
    height = 0.8 / len(positions)
    for i, position in enumerate(positions):
        y = np.arange(len(designs)) + i * height
        axes.barh(y, wide[position], height=height, color=f"C{i}", label=position)
    axes.set_yticks(np.arange(len(designs)) + height * (len(positions) - 1) / 2, designs)
    axes.invert_yaxis()
    axes.set(
        xscale="log", xlabel="median latency per rank (log scale)", title=title or "One rank, six designs"
    )
    axes.xaxis.set_major_formatter(_MS)
    axes.axvline(ONE_MS, color="black", linestyle=":", linewidth=1)
    axes.legend(title="player's place", fontsize=8)
    axes.grid(True, axis="x", alpha=0.3)
    figure.tight_layout()
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


def lag_over_time(samples: pd.DataFrame, *, title: str = "Consumer group catching up") -> Figure:
    """XINFO GROUPS samples over time: lag (left axis) and pending (right axis, its own scale)."""
    figure, axes = plt.subplots(figsize=(8, 3.8))
    axes.plot(samples.seconds, samples.lag, color="C0", label="lag: not yet delivered to any consumer")
    axes.set(xlabel="seconds since the workers were submitted", ylabel="lag (entries)", title=title)
    axes.set_ylim(bottom=0)
    pending_axes = axes.twinx()
    pending_axes.plot(
        samples.seconds, samples.pending, color="C1", label="pending: delivered, not acknowledged"
    )
    pending_axes.set_ylabel("pending (entries)")
    pending_axes.set_ylim(bottom=0)
    axes.grid(True, alpha=0.3)
    lines = axes.get_lines() + pending_axes.get_lines()
    axes.legend(lines, [line.get_label() for line in lines], fontsize=8, loc="upper right")
    figure.tight_layout()
    return figure


def side_by_side(
    summary: pd.DataFrame, *, title: str = "Redis Streams against a PostgreSQL outbox"
) -> Figure:
    """``bench.streams.summary_table``: throughput jobs (log scale) on the left, latency on the right."""
    systems = [c for c in summary.columns[2:4]]
    throughput = summary[summary.unit == "events/s"]
    latency = summary[summary.unit == "ms"]
    figure, (left, right) = plt.subplots(1, 2, figsize=(13, 4.2), gridspec_kw={"width_ratios": [3, 2]})
    height = 0.38
    for offset, (system, color) in enumerate(zip(systems, ("C0", "C1"))):
        y = np.arange(len(throughput)) + (offset - 0.5) * height
        left.barh(y, throughput[system].fillna(0), height, color=color, label=system)
        x = np.arange(len(latency)) + (offset - 0.5) * height
        right.bar(x, latency[system].fillna(0), height, color=color, label=system)
    left.set_yticks(np.arange(len(throughput)), throughput.job, fontsize=8)
    left.invert_yaxis()
    left.set(xscale="log", xlabel="events per second (log scale; more is better)", title="throughput")
    left.legend(fontsize=8, loc="lower right")
    right.set_xticks(np.arange(len(latency)), [job.rsplit(", ", 1)[-1] for job in latency.job])
    right.axhline(2.0, color="black", linestyle=":", linewidth=1)
    right.annotate(
        "2 ms", (len(latency) - 0.5, 2.0), textcoords="offset points", xytext=(0, 3), fontsize=8, ha="right"
    )
    right.yaxis.set_major_formatter(_MS)
    rate = latency.job.iloc[0].split(", ")[0] if len(latency) else ""
    right.set(ylabel="append to handler", title=f"latency, {rate} (less is better)")
    figure.suptitle(title)
    figure.tight_layout()
    return figure


def scaling(
    frames: dict[str, pd.DataFrame],
    column: str = "events_per_s",
    by: str = "workers",
    *,
    title: str = "Consumers: events read and acknowledged per second",
) -> Figure:
    """Throughput against the number of processes, one line per system (``{label: frame}``)."""
    figure, axes = plt.subplots(figsize=(7, 3.8))
    for index, (label, frame) in enumerate(frames.items()):
        rows = frame.dropna(subset=[column]).sort_values(by)
        axes.plot(rows[by], rows[column], "o-", color=f"C{index}", label=label)
    axes.set(xlabel=f"{by} (processes)", ylabel="events per second", title=title, ylim=(0, None))
    axes.set_xticks(sorted({k for frame in frames.values() for k in frame[by]}))
    axes.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.0f}"))
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    return figure


def speedup(
    frames: dict[str, pd.DataFrame], by: str = "workers", *, title: str = "What more consumers give"
) -> Figure:
    """Events/s of k processes divided by the events/s of one, one line per run; the dashed line is k."""
    figure, axes = plt.subplots(figsize=(7, 3.8))
    ks = sorted({k for frame in frames.values() for k in frame[by]})
    axes.plot(ks, ks, "--", color="grey", linewidth=1, label="k times one consumer")
    for index, (label, frame) in enumerate(frames.items()):
        rows = frame.sort_values(by)
        one = rows.loc[rows[by] == rows[by].min(), "events_per_s"].iloc[0]
        color = ("C0", "C2", "C4", "C5")[index % 4]  # C1 is the SQL side in the plots before this one
        axes.plot(rows[by], rows.events_per_s / one, "o-", color=color, label=label)
    axes.set(xlabel=f"{by} (processes)", ylabel="speed-up over one", title=title, ylim=(0, None))
    axes.set_xticks(ks)
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    return figure


def race_outcomes(trials: pd.DataFrame, *, title: str = "Admitted per trial, one hot key") -> Figure:
    """One row per method (and runner): every trial's admitted count as a dot, the limit as a line."""
    groups = list(trials.groupby(["method", "runner"], sort=False))
    figure, axes = plt.subplots(figsize=(9, 5))  # fixed: the figure's repr is compared by nbval
    rng = np.random.default_rng(0)  # jitter only, so equal counts do not hide each other
    for y, (_, group) in enumerate(groups):
        over = group.admitted > group.limit
        jitter = rng.uniform(-0.18, 0.18, len(group))
        axes.scatter(group.admitted, y + jitter, s=12, c=np.where(over, "C3", "C2"), alpha=0.7)
    limit = int(trials.limit.iloc[0])
    axes.axvline(limit, color="black", linestyle="--", linewidth=1)
    axes.set_yticks(
        range(len(groups)), [f"{method} ({runner})" for (method, runner), _ in groups], fontsize=8
    )
    axes.invert_yaxis()
    axes.set(xlabel=f"requests admitted (dashed: the limit, {limit}; red: over it)", title=title)
    axes.grid(True, axis="x", alpha=0.3)
    figure.tight_layout()
    return figure


def trace_replay(
    buckets: pd.DataFrame,
    *,
    window_ms: int,
    start_s: float = 2.5,
    seconds: float = 3.0,
    title: str = "The same trace through every limiter",
) -> Figure:
    """Admitted requests per time bucket from ``start_s`` for ``seconds``: each algorithm against the oracle.

    ``buckets`` start at a window edge (``helpers.bench.ratelimit.compare_algorithms``), so
    multiples of ``window_ms`` are window edges, drawn dotted.
    """
    data = buckets[(buckets.t_ms >= start_s * 1000) & (buckets.t_ms < (start_s + seconds) * 1000)]
    algorithms = [c for c in data.columns if c not in ("t_ms", "requests", "oracle")]
    figure, panels = plt.subplots(
        len(algorithms), 1, figsize=(10, 1.5 * len(algorithms) + 1), sharex=True, squeeze=False
    )
    for axes, algorithm in zip(panels[:, 0], algorithms):
        axes.bar(
            data.t_ms, data.requests, width=data.t_ms.diff().median() * 0.9, color="0.85", label="requests"
        )
        axes.step(data.t_ms, data.oracle, where="mid", color="black", linewidth=1, label="exact (oracle)")
        axes.step(data.t_ms, data[algorithm], where="mid", color="C3", linewidth=1.2, label=algorithm)
        first_edge = -(-int(start_s * 1000) // window_ms) * window_ms
        for edge in range(first_edge, int((start_s + seconds) * 1000) + 1, window_ms):
            axes.axvline(edge, color="0.6", linestyle=":", linewidth=0.8)
        axes.set_ylabel("admitted", fontsize=8)
        axes.legend(fontsize=7, loc="upper right", ncol=3)
    panels[-1, 0].set_xlabel("ms since the trace started (dotted: window edges)")
    figure.suptitle(title)
    figure.tight_layout()
    return figure


def memory_by_limit(memory: pd.DataFrame, *, title: str = "Memory per limited key") -> Figure:
    """MEMORY USAGE of one key per algorithm, against the limit (log-log)."""
    figure, axes = plt.subplots(figsize=(7, 4))
    for index, (algorithm, rows) in enumerate(memory.groupby("algorithm", sort=False)):
        axes.plot(rows.limit, rows.bytes, "o-", color=f"C{index}", label=algorithm)
    axes.set(
        xscale="log",
        yscale="log",
        xlabel="limit (requests per window)",
        ylabel="bytes (MEMORY USAGE)",
        title=title,
    )
    axes.grid(True, which="major", alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    return figure


def server_time_by_limiter(costs: pd.DataFrame, *, title: str = "The server's time per decision") -> Figure:
    """Horizontal bars: µs of one core per decision (``limiter_service.server_time``), admitted and
    refused side by side, one row per library, algorithm and clock."""
    table = costs.pivot_table(
        index=["library", "algorithm", "clock"], columns="path", values="usec_per_decision", sort=False
    )
    figure, axes = plt.subplots(figsize=(9, 0.42 * len(table) + 1.4))  # fixed by the rows: nbval compares it
    positions = np.arange(len(table))
    for offset, (path, color) in zip((-0.2, 0.2), (("admitted", "C2"), ("refused", "C3"))):
        if path in table:
            axes.barh(positions + offset, table[path], height=0.38, color=color, label=path)
    axes.set_yticks(positions, [f"{library}: {algorithm}, {clock} clock" for library, algorithm, clock
                                in table.index], fontsize=8)  # fmt: skip
    axes.invert_yaxis()
    axes.set(xlabel="µs of the server per decision (INFO commandstats)", title=title)
    axes.grid(True, axis="x", alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    return figure


def decisions_by_clients(curve: pd.DataFrame, *, title: str = "Decisions per second, one Redis") -> Figure:
    """Decisions/s against the number of clients (``limiter_service.decisions_by_clients``), one line
    per pipeline depth; dashed, one core's ceiling at the busiest run's CPU per decision (1e6 / µs),
    and dotted, the ceiling were reading requests and writing replies free (the script's µs alone)."""
    figure, axes = plt.subplots(figsize=(8, 4.2))
    for index, (depth, rows) in enumerate(curve.groupby("depth")):
        rows = rows.sort_values("clients")
        label = "one request in flight per client" if depth == 1 else f"{depth} pipelined per client"
        axes.plot(rows.clients, rows.decisions_per_s, "o-", color=f"C{index}", label=label)
    busiest = curve.loc[curve.decisions_per_s.idxmax()]
    core = 1e6 / busiest.server_cpu_usec_per_decision
    ceiling = 1e6 / busiest.server_usec_per_decision
    for line, style, text in ((core, "--", "one core, at its CPU per decision"),
                              (ceiling, ":", "the script's time alone (no I/O)")):  # fmt: skip
        axes.axhline(line, color="black", linestyle=style, linewidth=1)
        axes.annotate(f"{text}: {line:,.0f}/s", (curve.clients.min(), line), textcoords="offset points",
                      xytext=(2, 4 if line == ceiling else -11), fontsize=8)  # fmt: skip
    axes.set(xscale="log", xlabel="clients (connections)", ylabel="decisions per second", title=title,
             ylim=(0, ceiling * 1.15))  # fmt: skip
    clients = sorted(curve.clients.unique())
    axes.set_xticks(clients, [str(c) for c in clients])
    axes.minorticks_off()
    axes.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.0f}"))
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize=8, loc="lower right")
    figure.tight_layout()
    return figure
