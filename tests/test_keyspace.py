"""helpers.keyspace: key names under the workshop prefix, and a clean-up that deletes only those."""

from __future__ import annotations

import secrets

import pytest

from helpers.keyspace import cleanup, key


@pytest.fixture
def foreign(r):
    """Keys that are not the workshop's: created here, removed here, never by cleanup()."""
    token = secrets.token_hex(4)
    keys = {
        f"learner:x:{token}": "a learner's string",
        f"workshopper:y:{token}": "prefix lookalike",
        f"workshop{token}": "prefix without the colon",
        f"Workshop:z:{token}": "different case",
    }
    for name, value in keys.items():  # one SET each: on a cluster they live on different shards
        r.set(name, value)
    yield keys
    r.delete(*keys)


def workshop_keys(r) -> set[str]:
    return set(r.scan_iter(match="workshop:*", count=1_000))


def test_key_joins_parts_under_the_prefix():
    assert key("lb", "daily") == "workshop:lb:daily"
    assert key("x") == "workshop:x"


def test_key_follows_workshop_prefix(monkeypatch):
    monkeypatch.setenv("WORKSHOP_PREFIX", "course:")
    assert key("lb") == "course:lb"


@pytest.mark.parametrize("parts", [(), ("",), ("lb", ""), ("", "lb"), ("lb", None), (3,)])
def test_key_rejects_empty_or_non_string_parts(parts):
    with pytest.raises(ValueError):
        key(*parts)


def test_cleanup_removes_every_workshop_key_and_no_foreign_key(r, foreign):
    r.set(key("a"), 1)
    r.zadd(key("lb", "{x}"), {"m": 1})
    r.hset(key("h"), "f", "v")
    assert cleanup(r) == 3
    assert workshop_keys(r) == set()
    for name, value in foreign.items():
        assert r.get(name) == value


def test_cleanup_returns_zero_when_there_is_nothing_to_remove(r, foreign):
    assert cleanup(r) == 0
    assert all(r.exists(name) for name in foreign)


def test_cleanup_of_a_sub_prefix_removes_only_that_sub_prefix(r):
    r.set(key("lb", "a"), 1)
    r.set(key("lb", "b"), 1)
    r.set(key("streams", "a"), 1)
    assert cleanup(r, key("lb") + ":") == 2
    assert workshop_keys(r) == {key("streams", "a")}


def test_cleanup_treats_glob_characters_in_the_prefix_literally(r):
    literal = ["workshop:[ab]:1", "workshop:[ab]:*?2"]
    lookalikes = ["workshop:a:1", "workshop:b:2", "workshop:[ab]", "workshop:\\[ab]:3"]
    for name in literal + lookalikes:
        r.set(name, 1)
    assert cleanup(r, "workshop:[ab]:") == len(literal)
    assert workshop_keys(r) == set(lookalikes)
    assert cleanup(r, "workshop:[ab]*?") == 0  # no key starts with these characters literally
    assert workshop_keys(r) == set(lookalikes)


def test_cleanup_escapes_glob_characters_in_a_custom_workshop_prefix(r, monkeypatch):
    monkeypatch.setenv("WORKSHOP_PREFIX", "ws?:")
    r.set("ws?:mine", 1)
    r.set("wsx:not-mine", 1)
    try:
        assert cleanup(r) == 1
        assert r.exists("ws?:mine") == 0
        assert r.get("wsx:not-mine") == "1"
    finally:
        r.delete("ws?:mine", "wsx:not-mine")


@pytest.mark.parametrize("prefix", ["learner:", "workshop", "workshopper:", "", "*", "Workshop:"])
def test_cleanup_refuses_a_prefix_outside_the_workshop_prefix(r, foreign, prefix):
    r.set(key("mine"), 1)
    with pytest.raises(ValueError, match="refusing"):
        cleanup(r, prefix)
    assert r.exists(key("mine")) == 1
    assert all(r.exists(name) for name in foreign)


def test_cleanup_removes_more_keys_than_one_batch(r, foreign):
    names = [key("many", str(i)) for i in range(2_345)]
    pipe = r.pipeline(transaction=False)
    for name in names:
        pipe.set(name, 1)
    pipe.execute()
    assert cleanup(r, batch=100) == len(names)
    assert workshop_keys(r) == set()
    assert all(r.exists(name) for name in foreign)


@pytest.mark.after_notebooks
def test_session_foreign_keys_survive_every_notebook_and_test(r, planted_foreign_keys):
    assert planted_foreign_keys  # the root conftest.py planted some
    for name, value in planted_foreign_keys.items():
        assert r.get(name) == value
