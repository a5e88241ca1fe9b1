"""Notebook 04's security steps: least-privilege ACL users, script injection, exposure settings.

* ``create_workshop_users``: one ACL user per job. The rate limiter's user may
  run its scripts on ``workshop:ratelimit:*`` keys and nothing else; the board
  reader may only read ``workshop:lb:*`` keys. ``permission_matrix`` tries a
  list of jobs as each user and shows what is allowed and what gets NOPERM.
* ``injection_demo``: a script built from user input by string concatenation,
  against the same script taking the input as ARGV.
* ``exposure_report``: bind, protected mode, password, default user, TLS, the
  admin commands: can this server face a network?

Changing ACLs changes the whole server, so the functions that do it take a
``servers.Throwaway`` (a server this process started), never a client of the
learner's Redis. Reading settings (``exposure_report``) works on any server.

Why the limiter's user runs scripts by SHA (``+evalsha +script|load
+script|exists``) rather than ``+eval`` or FCALL only: ``RateLimiter`` calls its
scripts with EVALSHA and, after a restart or failover empties the script cache,
loads them again with SCRIPT LOAD (a pipeline asks SCRIPT EXISTS first); without
those two the limiter would fail closed for everyone after every restart. SCRIPT
LOAD plus EVALSHA can run any Lua, like EVAL, but Redis checks every command a
script calls against the calling user's ACL, so a script can do no more than the
user could do command by command: the commands the limiter's scripts call, on
its own keys. What ACLs cannot stop is a script that loops and blocks the
server (until SCRIPT KILL). If that matters, use ``via="fcall"``: an operator
loads the functions (``helpers.ratelimit.load_functions``; they persist in
RDB/AOF and replicate, so nothing needs reloading) and the user gets ``+fcall``
only, with no way to add code. ACLs check commands and keys, not call paths: the
limiter's user can also send those same commands directly, on its own keys.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import pandas as pd
import redis

from helpers import scripts, servers
from helpers.clients import redact
from helpers.keyspace import key as workshop_key
from helpers.leaderboard import Leaderboard
from helpers.ratelimit import ALGORITHMS, RateLimiter

LEADERBOARD_SCRIPTS = ("leaderboard_rank", "leaderboard_standing", "leaderboard_range", "leaderboard_around")
BOARD_READS = ("ZSCORE", "ZREVRANK", "ZREVRANGE", "ZCARD", "ZCOUNT", "HGET")  # Leaderboard's plain reads
VIA = ("evalsha", "fcall")
DEMO_BOARD = "acl-demo"
_USERNAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


@dataclass(frozen=True)
class User:
    """An ACL user created on a throwaway server; ``client()`` connects as it."""

    name: str
    rules: tuple[str, ...]
    purpose: str
    url: str = field(repr=False)
    password: str = field(repr=False)

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(
            self.url, username=self.name, password=self.password, decode_responses=True
        )


# --- rules ----------------------------------------------------------------------------------
def commands_in_scripts(names) -> tuple[str, ...]:
    """The Redis commands the Lua scripts ``lua/<name>.lua`` call, sorted, lower case."""
    found = set()
    for name in names:
        found.update(
            m.lower() for m in re.findall(r"redis\.p?call\(\s*['\"](\w+)['\"]", scripts.source(name))
        )
    return tuple(sorted(found))


def key_pattern(*parts: str) -> str:
    """``key_pattern("lb")`` -> ``"workshop:lb:*"``, glob characters in the prefix escaped."""
    prefix = workshop_key(*parts) + ":"
    return "".join("\\" + c if c in "*?[]\\" else c for c in prefix) + "*"


def limiter_rules(via: str = "evalsha") -> tuple[str, ...]:
    """ACL rules for the rate limiter: its scripts' commands on ``workshop:ratelimit:*`` only."""
    if via not in VIA:
        raise ValueError(f"via must be one of {VIA}, got {via!r}")
    calling = ("+evalsha", "+script|load", "+script|exists") if via == "evalsha" else ("+fcall",)
    inner = commands_in_scripts(ALGORITHMS.values())  # Redis checks each call inside a script too
    return ("~" + key_pattern("ratelimit"), *calling, *(f"+{c}" for c in inner))


def reader_rules() -> tuple[str, ...]:
    """ACL rules for a board reader: read commands, read-only access to ``workshop:lb:*``.

    ``%R~`` gives read-only key access. EVALSHA declares its keys as possibly
    written (a script may write), so ``%R~`` alone refuses it; a selector grants
    EVALSHA on the board keys, and inside the script every command is checked
    again: no write command is granted anywhere, so no script can write.
    """
    reads = sorted({*BOARD_READS, *(c.upper() for c in commands_in_scripts(LEADERBOARD_SCRIPTS))})
    board = key_pattern("lb")
    return (
        "%R~" + board,
        *(f"+{c.lower()}" for c in reads),
        "+script|load",
        "+script|exists",
        f"(~{board} +evalsha)",
    )


# --- users on a throwaway server ----------------------------------------------------------------
def create_user(server: servers.Throwaway, name: str, rules, *, purpose: str = "") -> User:
    """``ACL SETUSER name reset on >password rules...`` with a random password; returns the user."""
    admin = _admin(server)
    if not isinstance(name, str) or not _USERNAME.match(name) or name == "default":
        raise ValueError(f"name must be 1-64 letters, digits, '_', '.', '-' (not 'default'), got {name!r}")
    rules = tuple(rules)
    if not rules or not all(isinstance(rule, str) and rule and not rule.startswith(">") for rule in rules):
        raise ValueError("rules must be non-empty ACL rule strings; the password is set here, not in rules")
    password = secrets.token_urlsafe(24)
    try:
        admin.execute_command("ACL", "SETUSER", name, "reset", "on", f">{password}", *rules)
    except redis.ResponseError as exc:
        raise ValueError(f"Redis refused the ACL rules for {name!r}: {exc}") from exc
    finally:
        admin.close()
    return User(name, rules, purpose, server.url, password)


def create_workshop_users(server: servers.Throwaway, *, via: str = "evalsha") -> dict[str, User]:
    """The two least-privilege users of the course: ``ratelimiter`` and ``board-reader``."""
    return {
        "ratelimiter": create_user(
            server, "ratelimiter", limiter_rules(via), purpose=f"runs the rate-limit scripts ({via})"
        ),
        "board-reader": create_user(server, "board-reader", reader_rules(), purpose="reads leaderboards"),
    }


def _admin(server: object) -> redis.Redis:
    if not isinstance(server, servers.Throwaway):
        raise TypeError(
            "ACL changes need a servers.Throwaway (a Redis this process started), "
            f"never a learner's Redis; got {type(server).__name__}"
        )
    if server.stopped:
        raise ValueError(f"the throwaway server at {redact(server.url)} has been stopped")
    return redis.Redis.from_url(server.url, decode_responses=True)


# --- who may do what ----------------------------------------------------------------------------
def default_attempts() -> dict[str, Callable[[redis.Redis], object]]:
    """Jobs to try as each user: the allowed ones, and everything else."""
    board_key = workshop_key("lb", "{" + DEMO_BOARD + "}")
    limiter_key = workshop_key("ratelimit", "{api:alice}", "sliding_log")
    return {
        "RateLimiter.hit (EVALSHA)": lambda c: RateLimiter(c, 5, 60).hit("alice"),
        "RateLimiter.hit_many (pipeline)": lambda c: RateLimiter(c, 5, 60).hit_many([("bob", 1), ("bob", 1)]),
        "RateLimiter.reset (UNLINK)": lambda c: RateLimiter(c, 5, 60).reset("alice"),
        "ZCARD on a ratelimit key, directly": lambda c: c.zcard(limiter_key),
        "Leaderboard.top(3) (Lua, EVALSHA)": lambda c: Leaderboard(c, DEMO_BOARD).top(3),
        "Leaderboard.rank (Lua, EVALSHA)": lambda c: Leaderboard(c, DEMO_BOARD).rank("alice"),
        "Leaderboard.score (ZSCORE)": lambda c: Leaderboard(c, DEMO_BOARD).score("alice"),
        "Leaderboard.add (MULTI, ZADD)": lambda c: Leaderboard(c, DEMO_BOARD).add("mallory", 1e9),
        "ZADD on the board, directly": lambda c: c.zadd(board_key, {"mallory": 1e9}),
        "ZADD via a script (EVAL)": lambda c: c.eval(
            "return redis.call('ZADD', KEYS[1], 1e9, 'm')", 1, board_key
        ),
        "ZADD via SCRIPT LOAD + EVALSHA": lambda c: c.evalsha(
            c.script_load("return redis.call('ZADD', KEYS[1], 1e9, 'm')"), 1, board_key
        ),
        "GET a key outside the workshop": lambda c: c.get("learner:precious"),
        "KEYS *": lambda c: c.keys("*"),
        "CONFIG SET maxmemory": lambda c: c.config_set("maxmemory", "1mb"),
        "ACL SETUSER (grant itself +@all)": lambda c: c.execute_command(
            "ACL", "SETUSER", c.connection_pool.connection_kwargs["username"], "+@all"
        ),
    }


def permission_matrix(
    server: servers.Throwaway,
    users: Mapping[str, User],
    attempts: Mapping[str, Callable[[redis.Redis], object]] | None = None,
) -> pd.DataFrame:
    """Try every attempt as every user; one row each: user, attempt, outcome, detail.

    ``outcome`` is ``allowed``, ``NOPERM`` (refused by the ACL, at the command
    or inside a script) or ``error`` (anything else). A demo board with three
    players is written first, as the admin, so reads have something to read.
    """
    if not users or not all(isinstance(u, User) for u in users.values()):
        raise ValueError("users must map names to User objects (create_workshop_users returns one)")
    attempts = dict(attempts or default_attempts())
    if not attempts or not all(callable(a) for a in attempts.values()):
        raise ValueError("attempts must map labels to callables taking a redis.Redis")
    admin = _admin(server)
    Leaderboard(admin, DEMO_BOARD).add_many({"alice": 300, "bob": 200, "carol": 100}, progress=False)
    rows = []
    for user in users.values():
        client = user.client()
        for label, attempt in attempts.items():
            outcome, detail = _try(attempt, client)
            rows.append({"user": user.name, "attempt": label, "outcome": outcome, "detail": detail})
        client.close()
    admin.close()
    return pd.DataFrame(rows)


def matrix_table(matrix: pd.DataFrame) -> pd.DataFrame:
    """The matrix as attempts x users, each cell ``allowed`` or ``NOPERM``, attempts in order."""
    order = list(dict.fromkeys(matrix.attempt))
    return matrix.pivot(index="attempt", columns="user", values="outcome").reindex(order)


# what an ACL refusal says: Redis 7.0 first, then 7.2 and later (and Valkey)
_REFUSED = {
    "key": re.compile(
        r"no permissions to access (one of the keys|a key)|can't access at least one of the keys", re.I
    ),
    "channel": re.compile(
        r"no permissions to access (one of the channels|a channel)|can't publish to the channel", re.I
    ),
    "command": re.compile(r"no permissions to run the '([^']+)' command|can't run this command", re.I),
}
_IN_SCRIPT = ("The user executing the script can't", "ACL failure in script")


def refusal(error: BaseException) -> str | None:
    """What an ACL refused, in the same words on every server; ``None`` if ``error`` is no ACL refusal.

    ``NOPERM: command 'set'``, ``NOPERM: key``, ``NOPERM: channel``, and inside
    a script ``NOPERM in a script: command`` (or ``key``, ``channel``). The
    servers word it differently: Redis 7.0 says "this user has no permissions to
    run the 'set' command", "... to access one of the keys used as arguments",
    and inside a script "The user executing the script can't run this command or
    subcommand" (naming none); 7.2 and later, and Valkey, say "User u has no
    permissions to run the 'set' command", "No permissions to access a key", and
    inside a script "ACL failure in script: User u has no permissions to run the
    'zadd' command". Inside a script the command is not named: 7.0 does not say it.
    """
    if not isinstance(error, redis.ResponseError):
        return None
    text = str(error)
    for what, pattern in _REFUSED.items():
        if found := pattern.search(text):
            if any(marker in text for marker in _IN_SCRIPT):
                return f"NOPERM in a script: {what}"
            if what == "command" and found.group(1):
                return f"NOPERM: command '{found.group(1).lower()}'"
            return f"NOPERM: {what}"
    return None


def _try(attempt: Callable[[redis.Redis], object], client: redis.Redis) -> tuple[str, str]:
    try:
        result = attempt(client)
    except redis.ResponseError as exc:
        refused = refusal(exc)
        return ("NOPERM", refused) if refused else ("error", str(exc))
    return "allowed", repr(result)[:80]


# --- script injection -----------------------------------------------------------------------
CONCATENATED = "redis.call('HSET', KEYS[1], 'nickname', '{nickname}') return 1"
WITH_ARGV = "redis.call('HSET', KEYS[1], 'nickname', ARGV[1]) return 1"


def malicious_nickname(board_key: str) -> str:
    """A "nickname" that closes the string and adds its own command: mallory tops the board."""
    return f"x') redis.call('ZADD', '{board_key}', 1000000, 'mallory') return 1 --"


def injection_demo(r: redis.Redis) -> pd.DataFrame:
    """Set a player's nickname with both scripts, for a plain, an awkward and a malicious input.

    The concatenated script is new Lua source for each input: a quote in a
    real name breaks it, a crafted name rewrites it (and each distinct input
    adds one more script to the server's script cache). The ARGV script is one
    fixed source; the input is data and stays data. Uses two throwaway keys
    under the workshop prefix and deletes them.
    """
    profile = workshop_key("security", "{injection}", "profile")
    board = workshop_key("security", "{injection}", "board")
    inputs = {"plain": "Alice", "awkward": "O'Brien", "malicious": malicious_nickname(board)}
    rows = []
    try:
        for approach in ("concatenated source", "ARGV"):
            for kind, nickname in inputs.items():
                r.unlink(profile, board)
                r.zadd(board, {"alice": 300, "bob": 200})
                try:
                    if approach == "ARGV":
                        r.eval(WITH_ARGV, 1, profile, nickname)
                    else:
                        r.eval(CONCATENATED.format(nickname=nickname), 1, profile)
                    error = ""
                except redis.ResponseError as exc:
                    error = str(exc).split("\n")[0][:90]
                top = r.zrevrange(board, 0, 0, withscores=True)
                rows.append(
                    {
                        "script": approach,
                        "input": kind,
                        "nickname stored": r.hget(profile, "nickname"),
                        "board leader": f"{top[0][0]} ({top[0][1]:g})",
                        "error": error,
                    }
                )
    finally:
        r.unlink(profile, board)
    return pd.DataFrame(rows)


# --- exposure --------------------------------------------------------------------------------
LOOPBACK = ("127.", "::1", "-::1", "localhost")


def exposure_report(r: redis.Redis) -> pd.DataFrame:
    """The settings that decide whether a network can reach this Redis and what it may do.

    Read-only (CONFIG GET, ACL GETUSER): safe on any server. Never shows a
    password, only whether one is set. ``status`` is ``ok``, ``risk`` or
    ``info``; ``safe_to_expose`` says no while any row is a ``risk``. A server
    in a container binds every interface inside it: what protects the
    workshop's compose server is the loopback port publish, which Redis cannot
    see, and its password.
    """
    config = _config(r, "bind", "protected-mode", "tls-port", "enable-debug-command", "enable-module-command")
    return assess_exposure(config, _default_user(r))


def assess_exposure(config: Mapping[str, str], default: Mapping[str, object]) -> pd.DataFrame:
    """The judgement behind ``exposure_report``, from CONFIG GET values and the default user.

    ``default`` is ``{"on": bool, "password_required": bool, "rights": str}``
    (or ``{"error": text}`` when it could not be read); ``config`` is empty when
    CONFIG could not be read.
    """
    password = default.get("password_required")
    rows = []

    def row(setting: str, value: object, status: str, why: str) -> None:
        rows.append({"setting": setting, "value": value, "status": status, "why": why})

    bind = config.get("bind")
    loopback_only = bind is not None and all(a.startswith(LOOPBACK) for a in bind.split())
    if bind is None:
        row("bind", "unknown", "info", "CONFIG is renamed or not allowed for this user")
    elif loopback_only:
        row("bind", bind, "ok", "only programs on this machine can connect")
    else:
        row("bind", bind, "info" if password else "risk", "listens beyond loopback: the network can connect")
    if default.get("error"):
        row("default user", "unknown", "info", default["error"])
    elif not default["on"]:
        row("default user", "off", "ok", "clients must log in as a named user")
    elif password:
        row("default user", "on, password required", "ok", "AUTH before any command")
    else:
        row("default user", "on, no password", "risk", "anyone who connects is an admin")
    if default.get("on") and password:
        row(
            "default user's rights",
            default["rights"],
            "info",
            "whoever has the password may do anything: give each job its own ACL user",
        )
    mode = config.get("protected-mode")
    if mode is None:
        row("protected-mode", "unknown", "info", "CONFIG is renamed or not allowed for this user")
    elif password:
        row("protected-mode", mode, "info", "only acts while the default user has no password")
    else:
        row(
            "protected-mode",
            mode,
            "ok" if mode == "yes" else "risk",
            "refuses non-loopback clients while there is no password"
            if mode == "yes"
            else "off with no password: every client that reaches it is served",
        )
    tls = config.get("tls-port")
    if tls is not None:
        exposed = not loopback_only and tls in ("0", "")
        row(
            "TLS",
            "off" if tls in ("0", "") else f"port {tls}",
            "risk" if exposed else "info",
            "the password and the data cross the network in clear text"
            if exposed
            else "encrypts traffic; needed once clients come from another machine",
        )
    for name in ("enable-debug-command", "enable-module-command"):
        value = config.get(name)
        if value is not None:
            allowed = value == "yes" or (value == "local" and not loopback_only)
            row(name, value, "risk" if allowed else "ok", "DEBUG/MODULE can crash the server or load code")
    row(
        "CONFIG command",
        "reachable" if config else "renamed or denied",
        "info",
        "CONFIG SET can rewrite the server's files (dir, dbfilename); only an admin should have it",
    )
    return pd.DataFrame(rows)


def safe_to_expose(report: pd.DataFrame) -> bool:
    """True when no row of ``exposure_report`` is a risk."""
    if not isinstance(report, pd.DataFrame) or "status" not in report:
        raise ValueError("report must be the DataFrame exposure_report() returns")
    return not (report.status == "risk").any()


def _config(r: redis.Redis, *names: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for name in names:
        try:
            found.update(r.config_get(name))
        except redis.ResponseError:
            return {}
    return found


def _default_user(r: redis.Redis) -> dict:
    try:
        user = r.acl_getuser("default")
    except redis.ResponseError as exc:
        return {"error": f"ACL GETUSER not allowed for this user ({exc})"}
    flags = user.get("flags", [])
    rights = f"{user.get('commands', '')} {user.get('keys', '')}".strip()
    return {"on": "on" in flags, "password_required": "nopass" not in flags, "rights": rights}
