"""helpers.bench.durability: what each side of a comparison promises, read from the servers themselves."""

from __future__ import annotations

from helpers.bench import durability


def test_a_throwaway_redis_says_it_keeps_nothing_on_disk(own):
    own.config_set("save", "")
    own.config_set("appendonly", "no")
    assert durability.redis_durability(own) == "no AOF, no RDB snapshots"


def test_aof_and_snapshots_are_named_with_their_settings(own):
    own.config_set("appendonly", "yes")
    own.config_set("appendfsync", "everysec")
    own.config_set("save", "3600 1")
    assert durability.redis_durability(own) == "AOF on, fsync everysec, RDB snapshots (save 3600 1)"


def test_postgresql_says_whether_a_commit_waits_for_its_log(db):
    assert durability.sql_durability(db) == "synchronous_commit=on, fsync=on"
    db.execute("SET synchronous_commit = off")
    assert durability.sql_durability(db).startswith("synchronous_commit=off")
    db.execute("RESET synchronous_commit")


def test_described_names_both_sides(own, db):
    own.config_set("appendonly", "no")
    own.config_set("save", "")
    line = durability.described(own, db)
    assert line == (
        f"durability: Redis no AOF, no RDB snapshots | {db.label} synchronous_commit=on, fsync=on "
        "(each commit waits for its WAL flush)"
    )
