"""helpers.production.memory: notebook 04's memory measurements and maxmemory policies, on real servers."""

from __future__ import annotations

import pandas as pd
import pytest
from matplotlib.figure import Figure

from helpers.keyspace import key
from helpers.production import memory


def _workshop_keys(r) -> list[str]:
    return r.keys(key("memory") + "*") + r.keys(key("lb") + "*")


def test_encoding_switches_to_skiplist_past_the_listpack_limits_and_memory_jumps(r):
    frame = memory.encoding_switch(r, counts=(64, 128, 129, 256), lengths=(32, 64, 65))
    by_count = frame[frame.varied == "members"].set_index("members")
    entries = int(by_count.max_listpack_entries.iloc[0])
    assert entries == 128  # the session's Redis runs with the default limits
    assert by_count.loc[128, "encoding"] == "listpack"
    assert by_count.loc[129, "encoding"] == "skiplist"
    assert by_count.loc[129, "jump"] > 2  # one member more, several times the bytes per member
    by_length = frame[frame.varied == "name length"].set_index("name_length")
    assert by_length.loc[64, "encoding"] == "listpack"
    assert by_length.loc[65, "encoding"] == "skiplist"
    assert _workshop_keys(r) == []


@pytest.mark.parametrize(
    "kwargs",
    [{"counts": ()}, {"counts": (0,)}, {"lengths": (True,)}, {"lengths": (4,)}, {"name_length": 3}],
)
def test_encoding_switch_rejects_bad_sizes(r, kwargs):
    with pytest.raises(ValueError):
        memory.encoding_switch(r, **kwargs)
    assert _workshop_keys(r) == []


def test_raising_the_listpack_limit_on_a_throwaway_keeps_a_big_board_in_a_listpack():
    frame = memory.raised_listpack_limit(members=500, limits=(128, 1_024), calls=50).set_index(
        "max_listpack_entries"
    )
    assert frame.loc[128, "encoding"] == "skiplist"
    assert frame.loc[1_024, "encoding"] == "listpack"
    assert frame.loc[1_024, "bytes_per_member"] < frame.loc[128, "bytes_per_member"] / 2
    assert (frame[["zrevrank_us", "zincrby_us"]] > 0).all().all()


def test_hash_buckets_is_the_power_of_two_above_the_member_count():
    counts = (0, 1, 1_000, 1_024, 1_025, 1_000_000)
    assert [memory.hash_buckets(n) for n in counts] == [0, 4, 1_024, 1_024, 2_048, 2**20]


def test_board_growth_and_its_projection(r):
    growth = memory.board_growth(r, (1_000, 3_000, 6_000), progress=False)
    assert list(growth.encoding.unique()) == ["skiplist"]
    assert growth.memory_usage_bytes.is_monotonic_increasing
    assert (growth.used_memory_growth > 0).all()
    assert len(memory.project(growth)) == 3
    projection = memory.project(growth, small_board_bytes=100.0).set_index("method")
    assert set(projection.players) == {5_000_000}
    fit, buckets = projection.MiB.iloc[0], projection.loc["nodes (linear fit) + hash buckets", "MiB"]
    assert projection.loc["the same, mid-rehash", "MiB"] > buckets
    small = projection.loc["bytes per member of a small board x players", "MiB"]
    assert small == pytest.approx(100.0 * 5_000_000 / 2**20)
    assert small / 2 < fit < small * 2  # same order: the same structure, measured again
    assert _workshop_keys(r) == []


@pytest.mark.parametrize(
    "growth, players",
    [
        (pd.DataFrame({"members": [1_000], "memory_usage_bytes": [100_000]}), 5_000_000),
        (pd.DataFrame({"members": [1, 2], "bytes": [1, 2]}), 5_000_000),
        (pd.DataFrame({"members": [1_000, 2_000], "memory_usage_bytes": [1e5, 2e5]}), 0),
        ("not a frame", 5_000_000),
    ],
)
def test_project_rejects_what_it_cannot_fit(growth, players):
    with pytest.raises(ValueError):
        memory.project(growth, players)


def test_board_growth_rejects_bad_sizes(r):
    with pytest.raises(ValueError):
        memory.board_growth(r, (100, -1), progress=False)
    assert _workshop_keys(r) == []


@pytest.fixture(scope="module")
def evicted():
    return memory.eviction(
        maxmemory="3mb", players=10_000, cache_writes=4_000, new_players=20_000, progress=False
    )


def test_noeviction_refuses_writes_and_loses_no_player(evicted):
    table = evicted[0].set_index("policy")
    row = table.loc["noeviction"]
    assert row.oom_errors > 0
    assert row.board_members_lost == 0
    assert row.board_members == row.board_expected >= 10_000
    assert row.evicted_keys == 0 and row.board_evictions == 0
    assert row.accepted + row.oom_errors == row.writes


def test_allkeys_lru_accepts_every_write_and_players_vanish(evicted):
    row = evicted[0].set_index("policy").loc["allkeys-lru"]
    assert row.oom_errors == 0
    assert row.accepted == row.writes
    assert row.board_members_lost > 0 and row.board_evictions >= 1


def test_volatile_lru_evicts_only_ttl_keys_then_refuses(evicted):
    row = evicted[0].set_index("policy").loc["volatile-lru"]
    assert row.board_members_lost == 0
    assert row.cache_keys_left == 0  # every key with a TTL went before the first OOM
    assert row.oom_errors > 0
    assert row.evicted_keys > 0


def test_eviction_timeline_and_plot(evicted):
    timeline = evicted[1]
    assert list(dict.fromkeys(timeline.policy)) == list(memory.POLICIES)
    assert set(timeline.phase) == {"board loaded", "cache floods in", "board grows"}
    assert (timeline.board_members <= timeline.board_expected).all()
    figure = memory.plot_eviction(timeline)
    assert isinstance(figure, Figure)
    assert [ax.get_title() for ax in figure.axes if ax.get_title()] == list(memory.POLICIES)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"policies": ("lru-please",)},
        {"policies": ()},
        {"maxmemory": "lots"},
        {"maxmemory": "0mb"},
        {"players": 0},
    ],
)
def test_eviction_rejects_bad_input_before_starting_a_server(kwargs):
    with pytest.raises(ValueError):
        memory.eviction(progress=False, **kwargs)


def test_plots_refuse_frames_they_cannot_draw(r):
    with pytest.raises(ValueError):
        memory.plot_eviction(pd.DataFrame({"x": [1]}))
    with pytest.raises(ValueError):
        memory.plot_encoding_switch(pd.DataFrame({"x": [1]}))
    assert isinstance(memory.plot_encoding_switch(memory.encoding_switch(r)), Figure)


def test_name_cost_is_the_intercept_and_slope_of_bytes_per_member_against_name_length():
    frame = pd.DataFrame({"name_length": [8, 16, 32], "bytes_per_member": [90.0, 98.0, 114.0]})
    cost = memory.name_cost(frame)
    assert cost["fixed_bytes"] == pytest.approx(82.0) and cost["bytes_per_character"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="at least two name lengths"):
        memory.name_cost(frame.head(1))
    with pytest.raises(ValueError, match="sorted_set_by_name_length"):
        memory.name_cost(pd.DataFrame({"x": [1]}))


def test_a_members_name_is_stored_once_about_a_byte_per_character(r):
    cost = memory.name_cost(memory.sorted_set_by_name_length(r, members=2_000, lengths=(8, 32, 128)))
    assert 0.9 <= cost["bytes_per_character"] <= 1.5  # twice that were the name stored twice
    assert cost["fixed_bytes"] > 20
