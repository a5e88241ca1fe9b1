"""helpers.magic: the ``%%redis`` cell magic, checked against the real redis-cli on the same server."""

from __future__ import annotations

import atexit
import builtins
import os
import subprocess
import sys
import time

import pytest
import redis
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from traitlets.config import Config

from helpers import magic, servers
from helpers.clients import client_from_url
from helpers.keyspace import cleanup
from helpers.magic import (
    CommandFailed,
    UnparsableLine,
    format_reply,
    parse_cell,
    quote_bytes,
    run,
    split_args,
)

K = "workshop:magic:"


@pytest.fixture(scope="module")
def ipython():
    """A real IPython shell with the extension loaded; the interpreter is left as it was found.

    Creating a shell sets process-wide state (hooks, ``__main__``, builtins, prompts, an atexit
    handler) that would make later tests in the session believe they run inside IPython.
    """
    hooks = ("displayhook", "excepthook", "ps1", "ps2", "ps3")
    saved_sys = {name: getattr(sys, name, None) for name in hooks}
    saved_main = sys.modules.get("__main__")
    saved_builtins = {name: builtins.__dict__.get(name) for name in ("__IPYTHON__", "display")}

    def restore() -> None:
        for name, value in saved_sys.items():
            if value is None:
                vars(sys).pop(name, None)
            else:
                setattr(sys, name, value)
        sys.modules["__main__"] = saved_main
        for name, value in saved_builtins.items():
            if value is None:
                builtins.__dict__.pop(name, None)
            else:
                builtins.__dict__[name] = value

    config = Config()
    config.HistoryManager.hist_file = ":memory:"
    shell = InteractiveShell.instance(config=config)
    restore()
    shell.run_line_magic("load_ext", "helpers.magic")
    yield shell
    atexit.unregister(shell.atexit_operations)
    InteractiveShell.clear_instance()
    restore()


@pytest.fixture
def shell(ipython, r):
    """The shell with ``r`` set as the notebooks set it (the decoded test client)."""
    ipython.user_ns["r"] = r
    yield ipython
    for name in ("r", "_redis", "other"):
        ipython.user_ns.pop(name, None)


def run_cell(shell, source: str):
    """Run a whole cell through IPython, as a notebook does."""
    return shell.run_cell(source, store_history=False)


# --- splitting lines as redis-cli's sdssplitargs does ---------------------------------------------


def test_words_are_split_on_blanks_and_double_quotes_keep_spaces():
    assert split_args('SET  k\t"two words"  ')[0] == [b"SET", b"k", b"two words"]


def test_double_quotes_understand_backslash_escapes():
    args, _ = split_args(r'ECHO "say \"hi\"\tand\\go\n\r\a\b\q"')
    assert args[1] == b'say "hi"\tand\\go\n\r\x07\x08q'  # unknown escapes keep the letter, as redis-cli


def test_hex_escapes_give_raw_bytes_and_a_bad_one_is_literal():
    assert split_args(r'ECHO "\x41\x00\xff\xFe" "\xZZ"')[0][1:] == [b"A\x00\xff\xfe", b"xZZ"]


def test_single_quotes_only_unescape_a_single_quote():
    assert split_args(r"ECHO 'it\'s a \n literal'")[0][1] == b"it's a \\n literal"


def test_empty_quotes_are_an_empty_argument():
    assert split_args('SET k ""')[0] == [b"SET", b"k", b""]
    assert split_args("SET k ''")[0] == [b"SET", b"k", b""]


def test_a_quote_inside_a_word_opens_quoting_like_redis_cli():
    assert split_args('ECHO ab"c d"')[0][1] == b"abc d"


def test_non_ascii_text_is_sent_as_utf8():
    assert split_args('SET k "café"')[0][2] == "café".encode()


@pytest.mark.parametrize(
    "line, problem",
    [
        ('GET "never closed', 'a " is never closed'),
        ("GET 'never closed", "a ' is never closed"),
        ('GET "a"b', "must be followed by a space"),
        (r'GET "ends with a backslash\"', 'a " is never closed'),
    ],
)
def test_unbalanced_quotes_are_refused_with_the_reason(line, problem):
    with pytest.raises(ValueError, match=problem):
        split_args(line)


def test_an_unparsable_line_is_named_by_its_number_and_text():
    with pytest.raises(UnparsableLine, match=r"line 3 of the cell, 'GET \"oops': unbalanced quotes"):
        parse_cell('PING\n\nGET "oops\nPING')


# --- comments -------------------------------------------------------------------------------------


def test_comment_lines_and_blank_lines_are_skipped():
    cell = "-- a comment\n\n   -- indented comment\n--no space needed at the start of a line\nPING\n"
    assert [(c.line_number, c.args) for c in parse_cell(cell)] == [(5, [b"PING"])]


def test_a_standalone_double_dash_starts_a_trailing_comment_and_is_left_out_of_the_echo():
    (command,) = parse_cell('SET k "v -- not a comment"   -- sets k')
    assert command.args == [b"SET", b"k", b"v -- not a comment"]
    assert command.source == 'SET k "v -- not a comment"'


def test_a_quoted_double_dash_or_a_dash_word_is_an_argument():
    assert parse_cell('SET k "--"')[0].args == [b"SET", b"k", b"--"]
    assert parse_cell("SET k '--'")[0].args == [b"SET", b"k", b"--"]
    assert parse_cell("SET k --flag")[0].args == [b"SET", b"k", b"--flag"]


@pytest.mark.parametrize("line", ["SUBSCRIBE ch", "psubscribe ch*", "MONITOR", "HELLO 3"])
def test_commands_that_change_the_connection_mode_are_refused_before_anything_is_sent(line):
    with pytest.raises(UnparsableLine, match="use redis-py"):
        parse_cell(line)


# --- replies printed as redis-cli prints them ----------------------------------------------------


def test_strings_are_quoted_with_escapes_for_what_is_not_printable():
    assert quote_bytes(b'a "b"\\\n\t\r\x07\x08\x00\xff') == r'"a \"b\"\\\n\t\r\a\b\x00\xff"'
    assert quote_bytes("é".encode()) == r'"\xc3\xa9"'  # redis-cli does not decode UTF-8 either


def test_each_reply_type_has_redis_clis_wording():
    assert format_reply(magic.Status(b"OK")) == "OK\n"
    assert format_reply(b"OK") == '"OK"\n'
    assert format_reply(5) == "(integer) 5\n"
    assert format_reply(None) == "(nil)\n"
    assert format_reply([]) == "(empty array)\n"
    assert format_reply(magic.ReplyError("ERR nope")) == "(error) ERR nope\n"


def test_nested_arrays_are_numbered_and_indented_under_their_parent():
    reply = [b"a", [b"b", [1, None]], []]
    assert format_reply(reply) == (
        '1) "a"\n2) 1) "b"\n   2) 1) (integer) 1\n      2) (nil)\n3) (empty array)\n'
    )


def test_numbers_are_right_aligned_from_ten_elements_on():
    lines = format_reply([[1, 2]] + list(range(2, 11))).splitlines()
    assert lines[:2] == [" 1) 1) (integer) 1", "    2) (integer) 2"]
    assert lines[-1] == "10) (integer) 10"


# --- against the real server ----------------------------------------------------------------------


def test_commands_are_echoed_after_a_prompt_and_followed_by_their_reply(r, capsys):
    run(r, f'SET {K}k "x y"   -- a note\nGET {K}k\n-- done\nGET {K}missing\nINCR {K}n\n')
    assert capsys.readouterr().out == (
        f'redis> SET {K}k "x y"\nOK\n'
        f'redis> GET {K}k\n"x y"\n'
        f"redis> GET {K}missing\n(nil)\n"
        f"redis> INCR {K}n\n(integer) 1\n"
    )


def test_replies_are_raw_not_reshaped_by_redis_py_callbacks(r, capsys):
    run(r, f"ZADD {K}z 1 a 2.5 b\nZRANGE {K}z 0 -1 WITHSCORES\nINFO server", echo=False)
    lines = capsys.readouterr().out.splitlines()
    assert lines[:5] == ["(integer) 2", '1) "a"', '2) "1"', '3) "b"', '4) "2.5"']
    assert lines[5].startswith(r'"# Server\r\nredis_version:')  # one bulk string, not a dict


def test_a_status_reply_is_bare_and_the_same_text_stored_as_a_value_is_quoted(r, capsys):
    run(r, f"SET {K}k OK\nGET {K}k", echo=False)
    assert capsys.readouterr().out == 'OK\n"OK"\n'


def test_an_error_shows_its_full_text_and_the_cell_goes_on(r, capsys):
    replies = run(r, f"SET {K}k v\nLPUSH {K}k x\nSET {K}after yes")
    out = capsys.readouterr().out
    assert "(error) WRONGTYPE Operation against a key holding the wrong kind of value\n" in out
    assert r.get(f"{K}after") == "yes"
    assert isinstance(replies[1], redis.ResponseError)


def test_raise_errors_stops_at_the_first_error_and_names_its_line(r, capsys):
    with pytest.raises(CommandFailed, match=rf"line 2 of the cell, 'LPUSH {K}k x': WRONGTYPE") as failure:
        run(r, f"SET {K}k v\nLPUSH {K}k x\nSET {K}after yes", raise_errors=True)
    assert r.get(f"{K}after") is None
    assert "(error) WRONGTYPE" in capsys.readouterr().out  # printed before raising
    assert len(failure.value.replies) == 2


def test_quiet_prints_only_the_failing_command_and_its_error(r, capsys):
    run(r, f"SET {K}k v\nGET {K}k\nNOSUCHCOMMAND x\nGET {K}k", quiet=True)
    assert capsys.readouterr().out == (
        "redis> NOSUCHCOMMAND x\n"
        "(error) ERR unknown command 'NOSUCHCOMMAND', with args beginning with: 'x' \n"
    )
    assert r.get(f"{K}k") == "v"


def test_an_unparsable_line_sends_nothing_at_all(r, capsys):
    with pytest.raises(UnparsableLine, match="line 2"):
        run(r, f'SET {K}k v\nGET "{K}k')
    assert r.exists(f"{K}k") == 0
    assert capsys.readouterr().out == ""


def test_multi_exec_runs_on_the_cells_single_connection(r, capsys):
    replies = run(r, f"CLIENT ID\nMULTI\nINCR {K}n\nLPUSH {K}n x\nINCR {K}n\nEXEC\nCLIENT ID", echo=False)
    assert replies[0] == replies[-1]  # one connection for the whole cell
    assert capsys.readouterr().out.splitlines()[1:9] == [
        "OK",
        "QUEUED",
        "QUEUED",
        "QUEUED",
        "1) (integer) 1",
        "2) (error) WRONGTYPE Operation against a key holding the wrong kind of value",
        "3) (integer) 2",
        f"(integer) {replies[0]}",
    ]


def test_the_cells_connection_is_closed_when_the_cell_ends(r):
    (cell_client_id,) = run(r, "CLIENT ID", quiet=True)
    deadline = time.monotonic() + 10  # the server notices the close on its next event-loop turn
    while any(int(c["id"]) == cell_client_id for c in r.client_list()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert all(int(c["id"]) != cell_client_id for c in r.client_list())


def test_a_blocking_command_returns_its_reply_on_the_cells_connection(r, capsys):
    run(r, f"BLPOP {K}empty 0.01\nRPUSH {K}list a\nBLPOP {K}list 1", echo=False)
    assert capsys.readouterr().out == f'(nil)\n(integer) 1\n1) "{K}list"\n2) "a"\n'


def test_the_cell_uses_the_clients_database_and_settings(redis_url, capsys):
    named = redis.Redis.from_url(redis_url.rsplit("/", 1)[0] + "/1", client_name="workshop-magic-test")
    try:
        run(named, "CLIENT GETNAME\nCLIENT INFO", echo=False)
    finally:
        named.close()
    name, info = capsys.readouterr().out.splitlines()
    assert name == '"workshop-magic-test"'
    assert " db=1 " in info


SAME_AS_REDIS_CLI = rf"""SET {K}s "two words"
GET {K}s
SET {K}q "say \"hi\"\tand\\go\n"
GET {K}q
SET {K}sq 'it\'s a \n literal'
GET {K}sq
SET {K}hex "\x41\x00\xff"
GET {K}hex
SET {K}badhex "\xZZ"
GET {K}badhex
SET {K}mid ab"c d"
GET {K}mid
SET {K}empty ""
STRLEN {K}empty
GET {K}empty
SET {K}utf8 "café"
GET {K}utf8
SET {K}ok OK
GET {K}ok
GET {K}missing
INCRBY {K}n 41
INCR {K}s
SET {K}s
"CONFIG GET" maxmemory
NOSUCHCOMMAND a b
ZADD {K}z 1 a 2.5 b 10 c
ZRANGE {K}z 0 -1 WITHSCORES
ZSCORE {K}z b
ZRANGE {K}none 0 -1
RPUSH {K}l a b c d e f g h i j k l
LRANGE {K}l 0 -1
HSET {K}h name ada lang lua
HGETALL {K}h
XADD {K}x 1-1 player 42 score 1500
XADD {K}x 1-2 player 17 score 1620
XRANGE {K}x - +
XGROUP CREATE {K}x workers 0
XREADGROUP GROUP workers w1 COUNT 10 STREAMS {K}x >
XPENDING {K}x workers
BLPOP {K}nothing 0.01
EVAL "return {{1, {{2, {{3, 'deep'}}}}, 'x', {{}}}}" 0
EVAL "return {{1,2,3,4,5,6,7,8,9,10,{{'a','b'}},{{1,2,3,4,5,6,7,8,9,10,11}}}}" 0
EVAL "return redis.error_reply('MYERR custom')" 0
COMMAND DOCS get
MULTI
INCR {K}n
LPUSH {K}n oops
GET {K}n
EXEC
"""


@pytest.mark.skipif(
    servers.redis_cli() is None, reason="needs redis-cli (or valkey-cli, as the pip Valkey has)"
)
def test_the_magic_prints_exactly_what_redis_cli_prints_for_the_same_lines(shell, r, redis_url, capsys):
    by_redis_cli = subprocess.run(
        [servers.redis_cli(), "-u", redis_url, "--no-raw", "--no-auth-warning"],
        input=SAME_AS_REDIS_CLI.encode(),
        capture_output=True,
        timeout=60,
        check=True,
    ).stdout.decode()
    cleanup(r)
    result = run_cell(shell, "%%redis --no-echo\n" + SAME_AS_REDIS_CLI)
    assert result.success
    by_magic = capsys.readouterr().out
    assert '1) 1) "1-1"' in by_magic and "(error) MYERR custom" in by_magic  # the cell really ran
    assert by_magic.splitlines() == by_redis_cli.splitlines()


# --- through IPython's own machinery --------------------------------------------------------------


def test_the_magic_uses_the_notebooks_r_and_prints_nothing_else(shell, r, capsys):
    result = run_cell(shell, f"%%redis\nSET {K}k hello\nGET {K}k")
    assert result.success and result.result is None  # no Out[] repeating the replies
    assert capsys.readouterr().out == f'redis> SET {K}k hello\nOK\nredis> GET {K}k\n"hello"\n'


def test_the_replies_are_kept_in_underscore_redis_as_plain_python(shell, r, capsys):
    run_cell(shell, f'%%redis -q\nRPUSH {K}l a "\\xff"\nLRANGE {K}l 0 -1\nGET {K}none\nGET {K}l')
    replies = shell.user_ns["_redis"]
    assert replies[:3] == [2, ["a", b"\xff"], None]
    assert isinstance(replies[3], redis.ResponseError) and str(replies[3]).startswith("WRONGTYPE")


def test_an_error_does_not_stop_the_notebook_by_default(shell, r, capsys):
    result = run_cell(shell, f"%%redis\nNOSUCHCOMMAND\nSET {K}after yes")
    assert result.success
    assert "(error) ERR unknown command 'NOSUCHCOMMAND'" in capsys.readouterr().out
    assert r.get(f"{K}after") == "yes"


@pytest.mark.parametrize("option", ["-e", "--raise"])
def test_the_raise_option_makes_an_error_fail_the_cell(shell, r, capsys, option):
    result = run_cell(shell, f"%%redis {option}\nSET {K}k v\nNOSUCHCOMMAND\nSET {K}after yes")
    assert isinstance(result.error_in_exec, CommandFailed)
    assert "line 2 of the cell" in str(result.error_in_exec)
    assert r.get(f"{K}after") is None
    assert len(shell.user_ns["_redis"]) == 2


def test_the_quiet_option_hides_the_replies(shell, r, capsys):
    result = run_cell(shell, f"%%redis --quiet\nSET {K}k v\nGET {K}k")
    assert result.success
    assert capsys.readouterr().out == ""
    assert r.get(f"{K}k") == "v"


def test_an_unparsable_cell_fails_before_sending_anything(shell, r, capsys):
    result = run_cell(shell, f"%%redis\nSET {K}k v\nSET {K}j 'unclosed")
    assert isinstance(result.error_in_exec, UnparsableLine)
    assert r.exists(f"{K}k") == 0


def test_the_client_option_picks_another_variable(shell, redis_url, capsys):
    shell.user_ns["other"] = redis.Redis.from_url(redis_url, client_name="workshop-other")
    try:
        run_cell(shell, "%%redis -c other --no-echo\nCLIENT GETNAME")
    finally:
        shell.user_ns["other"].close()
    assert capsys.readouterr().out == '"workshop-other"\n'


@pytest.mark.parametrize(
    "line, value, problem",
    [("-c nowhere", None, "no variable 'nowhere'"), ("", 42, "'r', which is a int, not a redis.Redis")],
)
def test_a_missing_or_wrong_client_is_a_clear_usage_error(shell, line, value, problem):
    if value is not None:
        shell.user_ns["r"] = value
    with pytest.raises(UsageError, match=problem):
        shell.run_cell_magic("redis", line, "PING")


@pytest.mark.skipif(not os.environ.get("REDIS_CLUSTER_URL"), reason="no local Redis Cluster in this session")
def test_a_cluster_client_is_refused_with_the_way_to_reach_one_node(shell, capsys):
    cluster = client_from_url(os.environ["REDIS_CLUSTER_URL"])
    shell.user_ns["other"] = cluster
    try:
        with pytest.raises(UsageError, match="RedisCluster, not a redis.Redis .*get_node_from_key"):
            shell.run_cell_magic("redis", "-c other", "PING")
        shell.user_ns["other"] = cluster.get_node_from_key(f"{K}k").redis_connection
        shell.run_cell_magic("redis", "-c other --no-echo", f"SET {K}k on-its-node\nGET {K}k\nDEL {K}k")
    finally:
        cluster.close()
    assert capsys.readouterr().out == 'OK\n"on-its-node"\n(integer) 1\n'


def test_without_an_r_the_magic_connects_like_the_notebooks_do(shell, redis_url, capsys):
    del shell.user_ns["r"]
    try:
        shell.run_cell_magic("redis", "", "PING")
    finally:
        if magic.RedisMagics._fallback_client is not None:
            magic.RedisMagics._fallback_client.close()
            magic.RedisMagics._fallback_client = None
    assert capsys.readouterr().out.splitlines()[-2:] == ["redis> PING", "PONG"]


def test_an_unknown_option_is_a_usage_error(shell):
    with pytest.raises(UsageError):
        shell.run_cell_magic("redis", "--loud", "PING")
