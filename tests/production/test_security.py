"""helpers.production.security: least-privilege ACL users on a throwaway Redis, script injection, exposure."""

from __future__ import annotations

import pandas as pd
import pytest
import redis

from helpers import servers
from helpers.keyspace import cleanup, key
from helpers.leaderboard import Leaderboard
from helpers.production import security
from helpers.ratelimit import ALGORITHMS, RateLimiter, load_functions

NOPERM = (redis.exceptions.NoPermissionError, redis.ResponseError)  # inside a script: a ResponseError


@pytest.fixture(scope="module")
def server():
    throwaway = servers.start_redis_binary()
    yield throwaway
    throwaway.stop()


@pytest.fixture(scope="module")
def users(server):
    return security.create_workshop_users(server)


@pytest.fixture
def admin(server):
    client = redis.Redis.from_url(server.url, decode_responses=True)
    yield client
    cleanup(client)
    client.close()


@pytest.fixture
def limiter(users):
    client = users["ratelimiter"].client()
    yield client
    client.close()


@pytest.fixture
def reader(users):
    client = users["board-reader"].client()
    yield client
    client.close()


def _refused(call) -> str:
    with pytest.raises(NOPERM) as caught:
        call()
    assert security.refusal(caught.value) is not None, caught.value
    return str(caught.value)


@pytest.mark.parametrize(
    ("said", "refused"),
    [  # Redis 7.0, then Redis 7.2+ and Valkey: the same refusals, worded differently
        ("this user has no permissions to run the 'set' command", "NOPERM: command 'set'"),
        ("User u has no permissions to run the 'set' command", "NOPERM: command 'set'"),
        ("this user has no permissions to access one of the keys used as arguments", "NOPERM: key"),
        ("No permissions to access a key", "NOPERM: key"),
        ("this user has no permissions to access one of the channels used as arguments", "NOPERM: channel"),
        (
            "The user executing the script can't run this command or subcommand script: 05238, on "
            "@user_script:1",
            "NOPERM in a script: command",
        ),
        (
            "The user executing the script can't access at least one of the keys mentioned in the command "
            "arguments script: 382e3, on @user_script:1.",
            "NOPERM in a script: key",
        ),
        (
            "ACL failure in script: No permissions to access a key script: 382e3, on @user_script:1.",
            "NOPERM in a script: key",
        ),
        (
            "The user executing the script can't publish to the channel mentioned in the command script: 8b",
            "NOPERM in a script: channel",
        ),
        (
            "ACL failure in script: No permissions to access a channel script: 8b1e9",
            "NOPERM in a script: channel",
        ),
        (
            "ACL failure in script: User u has no permissions to run the 'zadd' command script: 05238, on "
            "@user_script:1.",
            "NOPERM in a script: command",
        ),
    ],
)
def test_refusal_says_what_was_refused_in_the_same_words_on_every_server(said, refused):
    assert security.refusal(redis.exceptions.NoPermissionError(said)) == refused
    assert security.refusal(redis.ResponseError(said)) == refused


def test_refusal_is_none_for_errors_that_are_not_acl_refusals():
    assert security.refusal(redis.ResponseError("WRONGTYPE Operation against a key")) is None
    assert security.refusal(ValueError("no permissions to run the 'set' command")) is None


# --- the rate limiter's user -----------------------------------------------------------------
@pytest.mark.parametrize("algorithm", sorted(ALGORITHMS))
def test_the_rate_limiter_works_as_its_least_privilege_user(admin, limiter, algorithm):
    limits = RateLimiter(limiter, 3, 60, algorithm, name="acl")
    decisions = [limits.hit("alice") for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert all(not d.degraded for d in decisions)
    assert [d.allowed for d in limits.hit_many([("bob", 1), ("bob", 2), ("bob", 1)])] == [True, True, False]
    assert admin.exists(*limits.keys("alice")) >= 1


def test_the_rate_limiter_reloads_its_scripts_after_the_cache_is_emptied(admin, limiter):
    limits = RateLimiter(limiter, 2, 60, name="acl")
    assert limits.hit("carol").allowed
    admin.script_flush()  # what a restart or a failover does to the script cache
    assert limits.hit("carol").allowed
    assert not limits.hit("carol").allowed


@pytest.mark.parametrize(
    "attempt",
    [
        lambda c: c.zadd(key("lb", "{global}"), {"mallory": 1e9}),
        lambda c: c.zscore(key("lb", "{global}"), "alice"),
        lambda c: c.get("learner:precious"),
        lambda c: c.get(key("orders", "1")),
        lambda c: c.eval("return 1", 0),
        lambda c: c.evalsha(c.script_load("return redis.call('GET', KEYS[1])"), 1, key("lb", "x")),
        lambda c: c.evalsha(c.script_load("return redis.call('GET', 'learner:precious')"), 0),
        lambda c: c.unlink(key("ratelimit", "{api:alice}", "sliding_log")),
        lambda c: c.xadd(key("ratelimit", "{api:alice}", "log"), {"a": "b"}),
        lambda c: c.keys("*"),
        lambda c: c.config_set("maxmemory", "1mb"),
        lambda c: c.execute_command("ACL", "SETUSER", "ratelimiter", "+@all"),
        lambda c: c.function_load("#!lua name=x\nredis.register_function('x', function() return 1 end)"),
    ],
    ids=[
        "ZADD board",
        "ZSCORE board",
        "foreign key",
        "other workshop key",
        "EVAL",
        "script on another key",
        "script on an undeclared key",
        "UNLINK",
        "XADD",
        "KEYS",
        "CONFIG SET",
        "ACL SETUSER",
        "FUNCTION LOAD",
    ],
)
def test_the_rate_limiter_user_gets_noperm_outside_its_keys_and_commands(limiter, attempt):
    _refused(lambda: attempt(limiter))


def test_the_fcall_only_limiter_user_calls_functions_and_cannot_add_code(server, admin):
    user = security.create_user(server, "ratelimiter-fcall", security.limiter_rules("fcall"))
    client = user.client()
    try:
        function = load_functions(admin)  # the operator loads the code, as admin
        limit_key = key("ratelimit", "{fcall:alice}", "sliding_log")
        replies = [client.fcall(function, 1, limit_key, 60, 2, "", 1) for _ in range(3)]
        assert [int(reply[0]) for reply in replies] == [1, 1, 0]
        _refused(lambda: client.script_load("return 1"))
        _refused(lambda: client.eval("return 1", 0))
        _refused(lambda: RateLimiter(client, 2, 60).hit("alice"))  # it calls EVALSHA, which this user lacks
    finally:
        admin.function_delete("workshop_ratelimit")
        client.close()


# --- the board reader -------------------------------------------------------------------------
def test_the_board_reader_reads_a_leaderboard_like_the_admin(admin, reader):
    written = Leaderboard(admin, "acl-read")
    written.add_many({"alice": 300, "bob": 200, "carol": 200, "dave": 100}, progress=False)
    written.set_meta("alice", {"country": "NL"})
    read = Leaderboard(reader, "acl-read")
    assert read.top(3) == written.top(3)
    assert read.page(2, 2) == written.page(2, 2)
    assert read.around("bob", 1) == written.around("bob", 1)
    assert read.rank("carol") == 2 and read.rank("carol", ties="unique") == written.rank(
        "carol", ties="unique"
    )
    assert read.percentile("dave") == 0.0
    assert read.score("alice") == 300 and len(read) == 4
    assert read.meta("alice") == {"country": "NL"}


def test_the_board_reader_cannot_write_even_through_a_script(admin, reader):
    written = Leaderboard(admin, "acl-write")
    written.add("alice", 300)
    read = Leaderboard(reader, "acl-write")
    _refused(lambda: read.add("mallory", 1e9))
    _refused(lambda: read.incr("alice", 1))
    _refused(lambda: reader.zadd(written.key, {"mallory": 1e9}))
    _refused(lambda: reader.unlink(written.key))
    source = "return redis.call('ZADD', KEYS[1], 1e9, 'mallory')"
    _refused(lambda: reader.evalsha(reader.script_load(source), 1, written.key))
    _refused(lambda: reader.eval(source, 1, written.key))
    assert admin.zrange(written.key, 0, -1, withscores=True) == [("alice", 300.0)]


@pytest.mark.parametrize(
    "attempt",
    [
        lambda c: c.get(key("ratelimit", "{api:alice}", "gcra")),
        lambda c: c.zscore(key("streams", "x"), "a"),
        lambda c: c.get("learner:precious"),
        lambda c: RateLimiter(c, 3, 60).hit("alice"),
        lambda c: c.keys("*"),
        lambda c: c.config_get("requirepass"),
    ],
    ids=["ratelimit key", "other workshop key", "foreign key", "RateLimiter", "KEYS", "CONFIG GET"],
)
def test_the_board_reader_gets_noperm_outside_its_keys(reader, attempt):
    _refused(lambda: attempt(reader))


# --- the matrix -------------------------------------------------------------------------------
def test_the_permission_matrix_shows_each_user_allowed_only_its_job(server, users, admin):
    matrix = security.permission_matrix(server, users)
    assert set(matrix.columns) == {"user", "attempt", "outcome", "detail"}
    assert set(matrix.outcome) <= {"allowed", "NOPERM"}
    table = security.matrix_table(matrix)
    assert list(table.index) == list(security.default_attempts())
    allowed = {user: set(table.index[table[user] == "allowed"]) for user in table.columns}
    assert allowed["ratelimiter"] == {
        "RateLimiter.hit (EVALSHA)",
        "RateLimiter.hit_many (pipeline)",
        "ZCARD on a ratelimit key, directly",  # ACLs check commands and keys, not call paths
    }
    assert allowed["board-reader"] == {
        "Leaderboard.top(3) (Lua, EVALSHA)",
        "Leaderboard.rank (Lua, EVALSHA)",
        "Leaderboard.score (ZSCORE)",
    }
    refused = matrix[matrix.outcome == "NOPERM"].detail
    pattern = r"NOPERM(: key|: channel|: command '[a-z|]+'| in a script: (command|key|channel))"
    assert refused.str.fullmatch(pattern).all(), set(refused)


# --- users: bad input ------------------------------------------------------------------------
def test_acl_changes_refuse_anything_but_a_throwaway_server(redis_url):
    client = redis.Redis.from_url(redis_url)
    with pytest.raises(TypeError, match="Throwaway"):
        security.create_user(client, "someone", ("+ping",))
    with pytest.raises(TypeError, match="Throwaway"):
        security.create_workshop_users(redis_url)
    client.close()


def test_acl_changes_refuse_a_stopped_server():
    throwaway = servers.start_redis_binary()
    throwaway.stop()
    with pytest.raises(ValueError, match="stopped"):
        security.create_workshop_users(throwaway)


@pytest.mark.parametrize(
    "name, rules",
    [
        ("default", ("+ping",)),
        ("two words", ("+ping",)),
        ("", ("+ping",)),
        ("ok", ()),
        ("ok", (">secret", "+ping")),
        ("ok", ("+nosuchcommand",)),
    ],
)
def test_create_user_rejects_bad_names_and_rules(server, name, rules):
    with pytest.raises(ValueError):
        security.create_user(server, name, rules)


def test_rules_and_matrix_reject_bad_arguments(server):
    with pytest.raises(ValueError, match="via"):
        security.limiter_rules("eval")
    with pytest.raises(ValueError):
        security.permission_matrix(server, {})
    with pytest.raises(ValueError):
        security.permission_matrix(server, {"x": "not a user"})


def test_the_rules_name_exactly_the_commands_the_scripts_call():
    rules = security.limiter_rules()
    assert rules[0] == "~workshop:ratelimit:*"
    assert {"+zadd", "+zremrangebyscore", "+time", "+hset", "+set", "+evalsha"} <= set(rules)
    assert not {"+eval", "+del", "+unlink", "+@all", "+@write"} & set(rules)
    reader = security.reader_rules()
    assert reader[0] == "%R~workshop:lb:*"
    assert not any(
        rule.lstrip("+").upper() in {"ZADD", "ZINCRBY", "HSET", "DEL", "UNLINK"} for rule in reader
    )


# --- injection --------------------------------------------------------------------------------
def test_concatenated_lua_runs_injected_code_and_argv_keeps_it_data(r):
    frame = security.injection_demo(r).set_index(["script", "input"])
    concatenated, argv = frame.loc["concatenated source"], frame.loc["ARGV"]
    assert concatenated.loc["plain", "nickname stored"] == argv.loc["plain", "nickname stored"] == "Alice"
    assert concatenated.loc["awkward", "error"]  # a quote in a real name breaks the concatenated script
    assert argv.loc["awkward", "nickname stored"] == "O'Brien"
    assert concatenated.loc["malicious", "board leader"].startswith("mallory")
    assert argv.loc["malicious", "board leader"].startswith("alice")
    board = key("security", "{injection}", "board")
    assert argv.loc["malicious", "nickname stored"] == security.malicious_nickname(board)
    assert r.keys(key("security") + "*") == []


# --- exposure ---------------------------------------------------------------------------------
def test_a_throwaway_without_a_password_is_not_safe_to_expose(admin):
    report = security.exposure_report(admin).set_index("setting")
    assert report.loc["bind", "status"] == "ok"  # loopback only
    assert report.loc["default user", "value"] == "on, no password"
    assert report.loc["default user", "status"] == "risk"
    assert not security.safe_to_expose(report.reset_index())


def test_a_password_protected_loopback_server_passes_and_its_password_is_never_shown():
    password = "correct-horse-battery-staple-7"
    throwaway = servers.start_redis_binary(extra_args=("--requirepass", password))
    client = redis.Redis.from_url(throwaway.url, password=password, decode_responses=True)
    try:
        report = security.exposure_report(client)
        assert report.set_index("setting").loc["default user", "value"] == "on, password required"
        assert security.safe_to_expose(report)
        assert password not in report.to_string()
    finally:
        client.close()
        throwaway.stop()


def test_every_interface_without_a_password_or_protected_mode_is_a_risk():
    config = {"bind": "* -::*", "protected-mode": "no", "tls-port": "0", "enable-debug-command": "no"}
    report = security.assess_exposure(config, {"on": True, "password_required": False, "rights": "+@all ~*"})
    risks = set(report[report.status == "risk"].setting)
    assert risks == {"bind", "default user", "protected-mode", "TLS"}
    with_password = security.assess_exposure(
        config, {"on": True, "password_required": True, "rights": "+@all"}
    )
    assert set(with_password[with_password.status == "risk"].setting) == {"TLS"}  # the password in clear text


def test_a_user_that_may_not_read_the_settings_gets_unknowns_not_an_error(reader):
    report = security.exposure_report(reader).set_index("setting")
    assert report.loc["bind", "value"] == "unknown"
    assert report.loc["default user", "value"] == "unknown"


def test_safe_to_expose_rejects_a_frame_it_did_not_make():
    with pytest.raises(ValueError):
        security.safe_to_expose(pd.DataFrame({"x": [1]}))
