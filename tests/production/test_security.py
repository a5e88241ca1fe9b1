"""helpers.production.security: least-privilege ACL users on a throwaway Redis, script injection, exposure."""

from __future__ import annotations

import re
import time

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
    return security.create_workshop_users(server, via="both")


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


def test_the_fcall_only_limiter_user_calls_functions_and_cannot_add_code(users, admin):
    client = users["ratelimiter-fcall"].client()
    try:
        function = load_functions(admin)  # the operator loads the code, as admin
        limit_key = key("ratelimit", "{fcall:alice}", "sliding_log")
        replies = [client.fcall(function, 1, limit_key, 60, 2, "", 1) for _ in range(3)]
        assert [int(reply[0]) for reply in replies] == [1, 1, 0]
        _refused(lambda: client.script_load("return 1"))
        _refused(lambda: client.eval("return 1", 0))
        _refused(lambda: RateLimiter(client, 2, 60).hit("alice"))  # it calls EVALSHA, which this user lacks
        _refused(lambda: client.function_load("#!lua name=y\nredis.register_function('y', function() end)"))
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


# --- the matrix: what each user can still do ----------------------------------------------------
@pytest.fixture(scope="module")
def matrix(server, users):
    return security.permission_matrix(server, users)


def test_the_permission_matrix_shows_what_each_of_the_three_users_can_still_do(matrix, users):
    assert set(matrix.columns) == {"user", "attempt", "outcome", "detail"}
    assert set(matrix.outcome) <= {"allowed", "NOPERM"}
    table = security.matrix_table(matrix)
    assert list(table.index) == list(security.default_attempts())
    assert list(table.columns) == list(users) == ["ratelimiter", "ratelimiter-fcall", "board-reader"]
    allowed = {user: set(table.index[table[user] == "allowed"]) for user in table.columns}
    # ACLs check commands and keys, not call paths: each limiter user may also send its scripts'
    # commands directly, and whoever may SCRIPT LOAD and EVALSHA may run any Lua
    assert allowed["ratelimiter"] == {
        security.HIT,
        security.HIT_MANY,
        security.READ_LIMIT,
        security.RESET_OTHER,
        security.BUSY_LOOP,
    }
    assert allowed["ratelimiter-fcall"] == {security.FCALL, security.READ_LIMIT, security.RESET_OTHER}
    assert allowed["board-reader"] == {security.TOP, security.RANK, security.SCORE, security.BUSY_LOOP}
    refused = matrix[matrix.outcome == "NOPERM"].detail
    pattern = r"NOPERM(: key|: channel|: command '[a-z|]+'| in a script: (command|key|channel))"
    assert refused.str.fullmatch(pattern).all(), set(refused)


def test_no_user_may_eval_load_functions_delete_keys_write_boards_or_administer(matrix):
    table = security.matrix_table(matrix)
    never = [
        security.EVAL_ANY,
        security.ADD_CODE,
        "RateLimiter.reset (UNLINK)",
        "Leaderboard.add (MULTI, ZADD)",
        "ZADD on the board, directly",
        "ZADD via SCRIPT LOAD + EVALSHA",
        "GET a key outside the workshop",
        "KEYS *",
        "CONFIG SET maxmemory",
        "ACL SETUSER (grant itself +@all)",
    ]
    assert (table.loc[never] == "NOPERM").all().all()


def test_beyond_the_job_names_the_resets_and_busy_loops_in_plain_words(matrix, users):
    beyond = security.beyond_the_job(matrix, users)
    assert list(beyond.columns) == ["user", "attempt", "means", "detail"]
    assert set(zip(beyond.user, beyond.attempt)) == {
        ("ratelimiter", security.READ_LIMIT),
        ("ratelimiter", security.RESET_OTHER),
        ("ratelimiter", security.BUSY_LOOP),
        ("ratelimiter-fcall", security.READ_LIMIT),
        ("ratelimiter-fcall", security.RESET_OTHER),
        ("board-reader", security.BUSY_LOOP),
    }
    assert (beyond.means.str.len() > 20).all()
    resets = beyond[beyond.attempt == security.RESET_OTHER].detail
    assert resets.str.contains("removed 3 entries").all()  # the victim's 3 requests, before each user


@pytest.mark.parametrize("name", ["ratelimiter", "ratelimiter-fcall"])
def test_a_limiter_user_can_reset_any_clients_limit_by_sending_the_scripts_command_directly(
    admin, users, name
):
    limits = RateLimiter(admin, 2, 60, name="acl")
    assert [limits.hit("victim").allowed for _ in range(3)] == [True, True, False]
    client = users[name].client()
    try:
        assert client.zremrangebyscore(limits.keys("victim")[0], "-inf", "+inf") == 2
    finally:
        client.close()
    assert limits.hit("victim").allowed  # a fresh limit, given by the limiter's own credentials


def test_a_busy_loop_loaded_by_the_board_reader_makes_every_other_client_wait(server, users, admin):
    reader = users["board-reader"].client()
    try:
        sha = reader.script_load(security.SPIN)
        started = time.perf_counter()
        reader.evalsha(sha, 0, 1_000_000)
        loops = int(1_000_000 * 0.4 / max(time.perf_counter() - started, 1e-3))  # about 400 ms
        admin.ping()  # connected before the loop starts
        connection = reader.connection_pool.get_connection()
        try:
            connection.send_command("EVALSHA", sha, 0, loops)
            time.sleep(0.05)  # the server has read it and spins
            started = time.perf_counter()
            assert admin.ping()
            waited = time.perf_counter() - started
            assert int(connection.read_response()) == loops
        finally:
            reader.connection_pool.release(connection)
    finally:
        reader.close()
    assert waited > 0.1, f"PING answered in {waited * 1000:.0f} ms while a 400 ms loop ran"


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


def test_rules_and_matrix_reject_bad_arguments(server, users):
    with pytest.raises(ValueError, match="via"):
        security.limiter_rules("eval")
    with pytest.raises(ValueError, match="via"):
        security.create_workshop_users(server, via="eval")
    with pytest.raises(ValueError):
        security.beyond_the_job(pd.DataFrame({"x": [1]}), users)
    with pytest.raises(ValueError):
        security.acl_log_after(server, "ratelimiter")
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


# --- teaching the ACL syntax ------------------------------------------------------------------
def _rule_args(example: str) -> list[str]:
    """An example as ACL SETUSER arguments: a selector "(...)" is one argument."""
    return re.findall(r"\([^)]*\)|\S+", example)


def test_the_acl_syntax_table_covers_every_rule_the_course_uses_with_examples_redis_accepts(admin):
    table = security.acl_syntax()
    assert list(table.columns) == ["rule", "meaning", "example", "used by"]
    assert {
        "on / off",
        ">password",
        "nopass",
        "~pattern",
        "%R~pattern",
        "%W~pattern",
        "%RW~pattern",
        "+command",
        "-command",
        "+@category",
        "+command|subcommand",
        "allkeys",
        "allcommands",
        "resetkeys",
        "(rules)",
    } <= set(table.rule)
    assert (table.map(len) > 0).all().all()
    examples = table.set_index("rule").example
    course = {*security.limiter_rules(), *security.limiter_rules("fcall"), *security.reader_rules()}
    for rule in ("~pattern", "%R~pattern", "+command", "+command|subcommand", "(rules)"):
        assert examples[rule] in course, rule  # taken from the course's own users
    try:
        for example in table.example:
            admin.execute_command("ACL", "SETUSER", "syntax-check", "reset", *_rule_args(example))
    finally:
        admin.execute_command("ACL", "DELUSER", "syntax-check")


@pytest.mark.parametrize(
    ("written", "same_as"),
    [("%RW~" + security.key_pattern("ratelimit"), "~" + security.key_pattern("ratelimit")),
     ("allkeys", "~*"), ("allcommands", "+@all")],
)  # fmt: skip
def test_the_shorthands_the_syntax_table_explains_mean_what_it_says(admin, written, same_as):
    try:
        admin.execute_command("ACL", "SETUSER", "written", "reset", written)
        admin.execute_command("ACL", "SETUSER", "same-as", "reset", same_as)
        rules = {line.split()[1]: line.split()[2:] for line in admin.execute_command("ACL", "LIST")}
        assert rules["written"] == rules["same-as"]
    finally:
        admin.execute_command("ACL", "DELUSER", "written", "same-as")


def test_off_refuses_new_logins_but_connections_already_logged_in_keep_working(server, admin):
    user = security.create_user(server, "switched-off", ("~k*", "+get"))
    logged_in = user.client()
    try:
        assert logged_in.get("k1") is None
        admin.execute_command("ACL", "SETUSER", user.name, "off")
        assert logged_in.get("k1") is None
        with pytest.raises(redis.AuthenticationError):
            user.client().get("k1")
    finally:
        logged_in.close()
        admin.execute_command("ACL", "DELUSER", user.name)


# --- whoami and ACL LOG -----------------------------------------------------------------------
def test_whoami_names_the_logged_in_user_or_says_the_user_may_not_ask(server, admin, limiter):
    assert security.whoami(admin) == "default"
    assert security.whoami(limiter) == "refused (NOPERM: command 'acl|whoami')"
    asker = security.create_user(server, "asker", ("+acl|whoami",)).client()
    try:
        assert security.whoami(asker) == "asker"
    finally:
        asker.close()


BOARD = key("lb", "{" + security.DEMO_BOARD + "}")
EXPECTED_LOG = {  # (reason, context, object, command, count)
    "ratelimiter": {
        ("command", "toplevel", "acl|whoami", "acl|whoami", 1),
        ("key", "toplevel", "learner:precious", "get", 2),
        ("key", "toplevel", BOARD, "zadd", 1),
        ("command", "toplevel", "zscore", "zscore", 1),
        ("key", "lua", "learner:precious", "evalsha", 1),
        ("auth", "toplevel", "*", "*", 1),
    },
    "ratelimiter-fcall": {
        ("command", "toplevel", "acl|whoami", "acl|whoami", 1),
        ("key", "toplevel", "learner:precious", "get", 2),
        ("key", "toplevel", BOARD, "zadd", 1),
        ("command", "toplevel", "zscore", "zscore", 1),
        ("command", "toplevel", "script|load", "script|load", 1),
        ("auth", "toplevel", "*", "*", 1),
    },
    "board-reader": {
        ("command", "toplevel", "acl|whoami", "acl|whoami", 1),
        ("command", "toplevel", "get", "get", 2),
        ("command", "toplevel", "zadd", "zadd", 1),
        ("key", "toplevel", "learner:precious", "zscore", 1),
        ("command", "lua", "get", "evalsha", 1),
        ("auth", "toplevel", "*", "*", 1),
    },
}


@pytest.mark.parametrize("name", sorted(EXPECTED_LOG))
def test_acl_log_shows_each_refusal_in_the_same_columns_on_every_server_then_is_reset(
    server, users, admin, name
):
    log = security.acl_log_after(server, users[name])
    assert tuple(log.columns) == security.ACL_LOG_COLUMNS
    assert set(log.username) == {name}
    auth = ("*", "*")  # a failed login's object and command depend on the client (AUTH or HELLO)
    seen = {(e.reason, e.context, *(auth if e.reason == "auth" else (e.object, e.command)), e.count)
            for e in log.itertuples()}  # fmt: skip
    assert seen == EXPECTED_LOG[name]
    assert security.acl_log(admin).empty  # ACL LOG RESET afterwards


def test_a_user_client_adds_nothing_to_acl_log_by_connecting(server, admin, limiter):
    admin.execute_command("ACL", "LOG", "RESET")
    assert limiter.zcard(key("ratelimit", "{acl:quiet}", "sliding_log")) == 0  # allowed: no CLIENT SETINFO
    assert security.acl_log(admin).empty


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


def test_exposure_report_says_config_set_still_reconfigures_but_no_longer_writes_files(admin):
    why = security.exposure_report(admin).set_index("setting").loc["CONFIG command", "why"]
    assert "protected" in why and "requirepass" in why and "maxmemory" in why
    assert "rewrite the server's files" not in why


@pytest.mark.parametrize(
    ("bind", "mode", "password", "status", "says"),
    [
        ("* -::*", "no", True, "info", "only while the default user has no password"),
        ("* -::*", "yes", True, "info", "only while the default user has no password"),
        ("127.0.0.1", "no", False, "info", "changes nothing"),
        ("* -::*", "yes", False, "ok", "safety net"),
        ("* -::*", "no", False, "risk", "every client that reaches the port is an admin"),
    ],
)
def test_protected_mode_is_judged_as_a_safety_net_for_a_server_without_a_password(
    bind, mode, password, status, says
):
    config = {"bind": bind, "protected-mode": mode, "tls-port": "0"}
    report = security.assess_exposure(config, {"on": True, "password_required": password, "rights": "+@all"})
    row = report.set_index("setting").loc["protected-mode"]
    assert row.status == status and says in row.why
    assert "keep protected mode on" not in " ".join(report.why)


def test_compose_exposure_reads_what_protects_the_workshops_compose_redis():
    report = security.compose_exposure().set_index("setting")
    assert report.loc["port published on", "value"] == "127.0.0.1"
    assert report.loc["password", "value"] == "required (--requirepass ${REDIS_PASSWORD})"
    assert report.loc["protected-mode", "value"] == "no (the image's default)"
    assert set(report.status) == {"ok", "info"}
    said = " ".join(security.PROTECTED_MODE)  # the sentences for the notebook name the same two guards
    assert "127.0.0.1" in said and "--requirepass" in said and "keep protected mode on" not in said


def test_compose_exposure_flags_a_port_open_to_every_interface_without_a_password(tmp_path):
    compose = tmp_path / "docker-compose.yml"
    compose.write_text(
        "services:\n  redis:\n    image: redis:8.2\n    command: [redis-server, --protected-mode, 'yes']\n"
        "    ports: ['${REDIS_PORT:-6379}:6379']\n"
    )
    report = security.compose_exposure(compose).set_index("setting")
    assert report.loc["port published on", "value"] == "every interface"
    assert report.loc["port published on", "status"] == report.loc["password", "status"] == "risk"
    assert report.loc["protected-mode", "value"] == "yes"


# --- CONFIG SET -------------------------------------------------------------------------------
def test_config_set_refuses_protected_configs_but_an_admin_can_still_reconfigure_and_wipe_the_server():
    throwaway = servers.start_redis_binary()
    client = redis.Redis.from_url(throwaway.url, decode_responses=True)
    try:
        client.set(key("security", "canary"), "1")
        dir_before = client.config_get("dir")["dir"]
        demo = security.config_set_demo(throwaway)
        assert list(demo.columns) == ["action", "outcome", "means", "reply"]
        outcome = dict(zip(demo.action, demo.outcome))
        assert outcome == {
            "CONFIG SET dir /tmp": "refused: protected config",
            "CONFIG SET dbfilename authorized_keys": "refused: protected config",
            "CONFIG SET enable-protected-configs yes": "refused: startup only",
            "CONFIG SET maxmemory 1mb": "allowed",
            'CONFIG SET save ""': "allowed",
            "CONFIG SET appendonly no": "allowed",
            "CONFIG SET requirepass <new>": "allowed",
            "CONFIG SET protected-mode no": "allowed",
            "MODULE LOAD /tmp/evil.so": "refused: disabled at startup",
            "DEBUG SLEEP 0": "refused: disabled at startup",
        }
        assert "can't set protected config" in demo.set_index("action").reply["CONFIG SET dir /tmp"]
        fresh = redis.Redis.from_url(throwaway.url, decode_responses=True)  # no password: it was put back
        try:
            assert fresh.config_get("maxmemory")["maxmemory"] == "0"
            assert fresh.config_get("protected-mode")["protected-mode"] == "yes"
            assert fresh.config_get("dir")["dir"] == dir_before
        finally:
            fresh.close()
    finally:
        client.close()
        throwaway.stop()


def test_config_set_demo_refuses_anything_but_a_throwaway_server(redis_url):
    with pytest.raises(TypeError, match="Throwaway"):
        security.config_set_demo(redis_url)
