"""helpers.bench.plots: each plot returns a Figure that names what it compares."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
import pytest
from matplotlib.figure import Figure

from helpers.bench import plots

SYSTEMS = [
    "Redis 7.0.15",
    "Redis 7.0.15, fair rank (Lua)",
    "PostgreSQL 18.6, no index",
    "PostgreSQL 18.6, index on score",
]
OPERATIONS = ("rank", "increment", "top 10")


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture
def latency() -> pd.DataFrame:
    rows = []
    for n in (1_000, 10_000, 100_000):
        for factor, system in zip((0.05, 0.08, 2.0, 1.5), SYSTEMS):
            for operation in OPERATIONS:
                if "fair" in system and operation != "rank":
                    continue
                p50 = factor * (n / 1_000) ** 0.5
                rows.append(
                    {
                        "N": n,
                        "system": system,
                        "operation": operation,
                        "p50_ms": p50,
                        "p99_ms": 2 * p50,
                        "p99.9_ms": 3 * p50,
                        "samples": 100,
                    }
                )
    return pd.DataFrame(rows)


def legend_texts(figure: Figure) -> list[str]:
    legends = list(figure.legends) + [a.get_legend() for a in figure.axes if a.get_legend() is not None]
    return [text.get_text() for legend in legends for text in legend.get_texts()]


def one_ms_lines(axes) -> list:
    return [
        line
        for line in axes.get_lines()
        if list(line.get_ydata()) == [plots.ONE_MS, plots.ONE_MS] and list(line.get_xdata()) == [0, 1]
    ]


@pytest.mark.parametrize("operations", ["rank", ["rank"], OPERATIONS])
def test_latency_vs_size_is_a_log_log_figure(latency, operations):
    figure = plots.latency_vs_size(latency, operations)
    assert isinstance(figure, Figure)
    panels = [a for a in figure.axes if a.get_lines()]
    assert len(panels) == (1 if isinstance(operations, str) else len(operations))
    for axes in panels:
        assert axes.get_xscale() == "log"
        assert axes.get_yscale() == "log"


def test_latency_vs_size_draws_a_horizontal_one_millisecond_line_on_every_panel(latency):
    figure = plots.latency_vs_size(latency, OPERATIONS)
    for axes in figure.axes:
        assert len(one_ms_lines(axes)) == 1


def test_latency_vs_size_legend_names_every_system_including_sql(latency):
    texts = " | ".join(legend_texts(plots.latency_vs_size(latency, OPERATIONS)))
    for system in SYSTEMS:
        assert system in texts
    assert "PostgreSQL 18.6" in texts


def test_latency_vs_size_names_each_panel_after_its_operation(latency):
    figure = plots.latency_vs_size(latency, OPERATIONS)
    assert [a.get_title() for a in figure.axes] == list(OPERATIONS)


def test_latency_vs_size_plots_the_p50_points_of_each_system(latency):
    axes = plots.latency_vs_size(latency, "top 10").axes[0]
    expected = latency[(latency.operation == "top 10") & (latency.system == SYSTEMS[0])].sort_values("N")
    curves = [(list(line.get_xdata()), list(line.get_ydata())) for line in axes.get_lines()]
    assert (list(expected.N), list(expected.p50_ms)) in curves
    assert (list(expected.N), list(expected.p99_ms)) in curves


@pytest.mark.parametrize("operations", ["delete", ["rank", "delete"]])
def test_latency_vs_size_of_an_unknown_operation_is_a_value_error(latency, operations):
    with pytest.raises(ValueError, match="delete"):
        plots.latency_vs_size(latency, operations)


def test_bytes_per_member_shows_each_name_lengths_total():
    memory = pd.DataFrame(
        {
            "name_length": [8, 64],
            "members": [2_000, 2_000],
            "encoding": ["skiplist"] * 2,
            "bytes_total": [200_000, 320_000],
            "bytes_per_member": [100.0, 160.0],
        }
    )
    figure = plots.bytes_per_member(memory)
    assert isinstance(figure, Figure)
    axes = figure.axes[0]
    tops = {}
    for bar in axes.patches:
        x = round(bar.get_x() + bar.get_width() / 2)
        tops[x] = max(tops.get(x, 0), bar.get_y() + bar.get_height())
    assert [tops[x] for x in sorted(tops)] == pytest.approx([100.0, 160.0])
    assert "2,000 members" in axes.get_title()


def test_concurrency_outcome_shows_every_final_against_the_expected_total():
    outcome = pd.DataFrame(
        {
            "system": ["Redis", "PostgreSQL 18.6", "PostgreSQL 18.6"],
            "method": ["ZINCRBY", "SELECT, then UPDATE", "SELECT ... FOR UPDATE, then UPDATE"],
            "expected": [100, 100, 100],
            "final": [100.0, 37.0, 100.0],
            "seconds": [0.1, 0.2, 0.3],
        }
    )
    outcome["lost"] = outcome.expected - outcome.final
    outcome["increments_per_s"] = outcome.expected / outcome.seconds
    figure = plots.concurrency_outcome(outcome)
    assert isinstance(figure, Figure)
    axes = figure.axes[0]
    assert [bar.get_width() for bar in axes.patches] == [100.0, 37.0, 100.0]
    expected_lines = [line for line in axes.get_lines() if list(line.get_xdata()) == [100, 100]]
    assert len(expected_lines) == 1
    labels = " | ".join(tick.get_text() for tick in axes.get_yticklabels())
    assert "PostgreSQL 18.6" in labels and "FOR UPDATE" in labels and "ZINCRBY" in labels


def server_times() -> pd.DataFrame:
    rows = []
    for n, us in [(1_000, 0.3), (10_000, 0.8), (100_000, 2.0)]:
        rows.append({"N": n, "system": "Redis 8.2.3", "operation": "rank", "p50_ms": 0.1, "server_us": us})
        rows.append(
            {"N": n, "system": "PostgreSQL 18.6", "operation": "rank", "p50_ms": 1.0, "server_us": None}
        )
    return pd.DataFrame(rows)


def test_server_time_vs_size_plots_redis_rows_on_a_log_axis_of_n():
    figure = plots.server_time_vs_size(server_times())
    axes = figure.axes[0]
    assert axes.get_xscale() == "log" and axes.get_yscale() == "linear"
    lines = axes.get_lines()
    assert len(lines) == 1 and list(lines[0].get_ydata()) == [0.3, 0.8, 2.0]
    assert "2.00 µs" in [t.get_text() for t in axes.texts]
    plt.close(figure)


def test_server_time_vs_size_without_a_server_time_is_a_value_error():
    with pytest.raises(ValueError, match="server_us"):
        plots.server_time_vs_size(server_times().assign(server_us=None))


def test_rank_designs_draws_one_bar_per_design_and_place():
    ranks = pd.DataFrame(
        [
            {"design": design, "position": position, "p50_ms": value}
            for design, values in {"ZREVRANK": (0.1, 0.1, 0.1), "count(*)": (0.5, 20.0, 30.0)}.items()
            for position, value in zip(("top", "middle", "bottom"), values)
        ]
    )
    figure = plots.rank_designs(ranks)
    axes = figure.axes[0]
    assert axes.get_xscale() == "log"
    assert sorted(round(p.get_width(), 3) for p in axes.patches) == [0.1, 0.1, 0.1, 0.5, 20.0, 30.0]
    assert [t.get_text() for t in axes.get_yticklabels()] == ["ZREVRANK", "count(*)"]
    plt.close(figure)


def test_speedup_divides_each_run_by_its_one_process_rate_beside_the_ideal_line():
    do_nothing = pd.DataFrame({"workers": [1, 2, 4], "events_per_s": [100.0, 150.0, 120.0]})
    waiting = pd.DataFrame({"workers": [1, 2, 4], "events_per_s": [10.0, 20.0, 38.0]})
    figure = plots.speedup({"do-nothing": do_nothing, "waits": waiting})
    axes = figure.axes[0]
    ideal, first, second = axes.get_lines()
    assert list(ideal.get_ydata()) == [1, 2, 4]
    assert list(first.get_ydata()) == [1.0, 1.5, 1.2] and list(second.get_ydata()) == [1.0, 2.0, 3.8]
    assert [t.get_text() for t in axes.get_legend().get_texts()] == [
        "k times one consumer",
        "do-nothing",
        "waits",
    ]
    plt.close(figure)


def test_server_time_by_limiter_has_a_bar_pair_per_variant_named_by_library_algorithm_and_clock():
    costs = pd.DataFrame(
        [
            {"library": lib, "algorithm": alg, "clock": "caller's", "path": path, "usec_per_decision": us}
            for lib, alg, us in (("this course", "sliding_log", 10.0), ("limits 5", "moving window", 6.0))
            for path in ("admitted", "refused")
        ]
    )
    figure = plots.server_time_by_limiter(costs)
    axes = figure.axes[0]
    labels = [tick.get_text() for tick in axes.get_yticklabels()]
    assert labels == ["this course: sliding_log, caller's clock", "limits 5: moving window, caller's clock"]
    assert len(axes.patches) == 4
    assert isinstance(figure, Figure)


def test_decisions_by_clients_draws_a_line_per_depth_and_both_ceilings():
    curve = pd.DataFrame(
        {
            "clients": [1, 8, 1, 8],
            "depth": [1, 1, 16, 16],
            "decisions_per_s": [10_000.0, 40_000.0, 60_000.0, 100_000.0],
            "server_usec_per_decision": [12.0, 8.0, 8.0, 8.0],
            "server_cpu_usec_per_decision": [30.0, 15.0, 10.0, 10.0],
        }
    )
    figure = plots.decisions_by_clients(curve)
    axes = figure.axes[0]
    assert len(axes.get_lines()) == 4  # two depths, two ceilings
    texts = [text.get_text() for text in axes.texts]
    assert texts == [
        "one core, at its CPU per decision: 100,000/s",
        "the script's time alone (no I/O): 125,000/s",
    ]
