"""Notebook 05's security steps: ACL users and what they can still do, script injection, exposure.

* ``acl_syntax``: the ACL rule syntax the course's users are written in, one
  rule a row, each with what it means and an example from those users.
* ``create_workshop_users``: one ACL user per job: the rate limiter's (calling
  its scripts by EVALSHA, or ``via="fcall"`` its functions only; ``via="both"``
  makes both) and the board reader. ``permission_matrix`` tries a list of jobs
  as each user, ``matrix_table`` shows it, ``beyond_the_job`` lists what each
  user was allowed that is not its job, in plain words.
* ``whoami`` and ``acl_log_after``: who a connection is logged in as, and what
  ACL LOG recorded of a user's refused attempts, in the same columns on every server.
* ``injection_demo``: a script built from user input by string concatenation,
  against the same script taking the input as ARGV.
* ``config_set_demo``: what a client with admin rights (anyone, while the default
  user has no password) can still change with CONFIG SET, and what is refused.
* ``exposure_report``: bind, protected mode, password, default user, TLS, the
  admin commands: can this server face a network? ``compose_exposure``: what
  protects the workshop's docker-compose Redis. ``PROTECTED_MODE``: what
  protected mode does and does not do, in sentences a notebook can print.

Changing ACLs or settings changes the whole server, so the functions that do it
take a ``servers.Throwaway`` (a server this process started), never a client of
the learner's Redis. Reading settings (``exposure_report``, ``acl_log``) works on
any server.

What least privilege does NOT stop. ACLs check each command and the keys it
names (inside a script or function too, against the calling user), not the code
path that sent it:

* The limiter's EVALSHA user has ``+evalsha +script|load +script|exists``:
  ``RateLimiter`` calls its scripts by SHA and, after a restart or failover
  empties the script cache, loads them again. SCRIPT LOAD plus EVALSHA runs ANY
  Lua. Every command inside is checked, so the script can touch no other key,
  but a loop that calls no command is checked by nothing: it holds the server,
  every client waiting, until it ends or SCRIPT KILL stops it (allowed once it
  has run past busy-reply-threshold, 5 s by default). The board reader has
  SCRIPT LOAD and EVALSHA too (its reads are Lua), so it can do the same.
* Both limiter users may send the commands their scripts call directly, on any
  ``workshop:ratelimit:*`` key: ZREMRANGEBYSCORE on another client's log gives
  that client a fresh limit, ZCARD reads anyone's. The FCALL-only user (an
  operator loads the functions with ``helpers.ratelimit.load_functions``; they
  persist in RDB/AOF and replicate) cannot add code, but a function's commands
  are checked against the user calling it, so that user must hold them too.

So a Redis user is a service, not a person: the limiter's credentials belong to
the service that does the limiting, never to the clients being limited.
"""

from __future__ import annotations

import contextlib
import re
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import redis

from helpers import scripts, servers
from helpers.clients import redact
from helpers.keyspace import key as workshop_key
from helpers.leaderboard import Leaderboard
from helpers.ratelimit import ALGORITHMS, FUNCTION_LIBRARY, RateLimiter, load_functions

LEADERBOARD_SCRIPTS = ("leaderboard_rank", "leaderboard_standing", "leaderboard_range", "leaderboard_around")
BOARD_READS = ("ZSCORE", "ZREVRANK", "ZREVRANGE", "ZCARD", "ZCOUNT", "HGET")  # Leaderboard's plain reads
VIA = ("evalsha", "fcall")
DEMO_BOARD = "acl-demo"
_USERNAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


@dataclass(frozen=True)
class User:
    """An ACL user created on a throwaway server; ``client()`` connects as it.

    ``job`` names the ``permission_matrix`` attempts that are this user's job
    (``beyond_the_job`` lists the others it was allowed).
    """

    name: str
    rules: tuple[str, ...]
    purpose: str
    url: str = field(repr=False)
    password: str = field(repr=False)
    job: tuple[str, ...] = ()

    def client(self) -> redis.Redis:
        """A client logged in as this user. It skips redis-py's CLIENT SETINFO on connect: a user
        without that command would get it refused, silently, and every connection would add a line
        to ACL LOG."""
        return redis.Redis.from_url(
            self.url, username=self.name, password=self.password, decode_responses=True, driver_info=None
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


# --- the ACL rule syntax ------------------------------------------------------------------------
def acl_syntax() -> pd.DataFrame:
    """The ACL rules the course's users are written in: ``rule``, ``meaning``, ``example``, ``used by``.

    The examples come from the course's own users (``limiter_rules``,
    ``reader_rules``, ``create_user``, a fresh server's default user, notebook
    05's order producer); each one is a valid argument list for ``ACL SETUSER``.
    Rules apply left to right, so a later rule can take back what an earlier one granted.
    """
    limiter, reader = limiter_rules("evalsha"), reader_rules()
    keys = limiter[0]  # ~workshop:ratelimit:*
    selector = next(rule for rule in reader if rule.startswith("("))
    rows = [
        ("on / off", "the user may log in / may not (connections already logged in keep working)", "on",
         "every course user: create_user sends reset on >password, then the rules"),
        ("reset", "start from nothing: off, no password, no keys, no channels, no commands", "reset",
         "create_user, before on and the password"),
        (">password", "add a password the user may log in with (Redis keeps only its SHA-256; <password "
         "removes it)", ">a-long-random-password", "every course user: create_user sets 24 random bytes"),
        ("nopass", "any password, or none, logs this user in", "nopass",
         "the default user of a fresh server: user default on nopass ~* &* +@all"),
        ("~pattern", "may read and write the keys that match the glob pattern", keys, "ratelimiter"),
        ("%R~pattern", "may only read the keys that match (Redis 7.0+)", reader[0], "board-reader"),
        ("%W~pattern", "may only write the keys that match (Redis 7.0+)", "%W~" + key_pattern("orders"),
         "order producer, notebook 05: XADD only writes"),
        ("%RW~pattern", "read and write: the same as ~pattern", "%RW~" + key_pattern("ratelimit"),
         "ratelimiter, written out in full"),
        ("allkeys", "every key: the same as ~*", "allkeys", "default user (~*)"),
        ("resetkeys", "forget every key pattern granted so far (reset includes it)", f"resetkeys {keys}",
         "none: create_user's reset does it"),
        ("+command", "may run this command", "+zremrangebyscore",
         "ratelimiter: each command its scripts call"),
        ("-command", "may no longer run this command: takes one back after a category", "+@read -keys",
         "none: the course grants single commands, so there is nothing to take back"),
        ("+@category", "may run every command of the category (ACL CAT lists them)", "+@all", "default user"),
        ("+command|subcommand", "may run this one subcommand, not the whole command", "+script|load",
         "ratelimiter and board-reader: SCRIPT LOAD, not SCRIPT FLUSH"),
        ("allcommands", "every command: the same as +@all", "allcommands", "default user (+@all)"),
        ("(rules)", "a selector: a second set of rules checked on its own; a command is allowed if the "
         "user's root rules, or one selector, allow it and every key it names", selector,
         "board-reader: EVALSHA, but only on the board's keys"),
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=["rule", "meaning", "example", "used by"])


# --- users on a throwaway server ----------------------------------------------------------------
def create_user(
    server: servers.Throwaway, name: str, rules, *, purpose: str = "", job: tuple[str, ...] = ()
) -> User:
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
    return User(name, rules, purpose, server.url, password, tuple(job))


def create_workshop_users(server: servers.Throwaway, *, via: str = "evalsha") -> dict[str, User]:
    """The least-privilege users of the course, by name.

    ``via="evalsha"`` (the default) or ``"fcall"``: ``ratelimiter`` (calling the
    limiter that way) and ``board-reader``. ``via="both"``: ``ratelimiter``
    (EVALSHA), ``ratelimiter-fcall`` (FCALL only) and ``board-reader``.
    """
    if via not in (*VIA, "both"):
        raise ValueError(f"via must be one of {(*VIA, 'both')}, got {via!r}")
    names = (
        {"evalsha": "ratelimiter", "fcall": "ratelimiter-fcall"} if via == "both" else {via: "ratelimiter"}
    )
    users = {
        name: create_user(
            server,
            name,
            limiter_rules(how),
            purpose=f"runs the rate limiter ({how} only)"
            if how == "fcall"
            else "runs the rate-limit scripts",
            job=LIMITER_JOBS[how],
        )
        for how, name in names.items()
    }
    users["board-reader"] = create_user(
        server, "board-reader", reader_rules(), purpose="reads leaderboards", job=READER_JOB
    )
    return users


def _admin(server: object) -> redis.Redis:
    if not isinstance(server, servers.Throwaway):
        raise TypeError(
            "ACL changes need a servers.Throwaway (a Redis this process started), "
            f"never a learner's Redis; got {type(server).__name__}"
        )
    if server.stopped:
        raise ValueError(f"the throwaway server at {redact(server.url)} has been stopped")
    return redis.Redis.from_url(server.url, decode_responses=True, driver_info=None)


# --- who may do what ----------------------------------------------------------------------------
HIT = "RateLimiter.hit (EVALSHA)"
HIT_MANY = "RateLimiter.hit_many (pipeline)"
FCALL = "FCALL the limiter function"
READ_LIMIT = "ZCARD on a ratelimit key, directly"
RESET_OTHER = "reset another user's limit directly (ZREMRANGEBYSCORE)"
BUSY_LOOP = "load and run a busy loop (SCRIPT LOAD + EVALSHA)"
EVAL_ANY = "EVAL any script"
ADD_CODE = "FUNCTION LOAD new code"
TOP = "Leaderboard.top(3) (Lua, EVALSHA)"
RANK = "Leaderboard.rank (Lua, EVALSHA)"
SCORE = "Leaderboard.score (ZSCORE)"
LIMITER_JOBS = {"evalsha": (HIT, HIT_MANY), "fcall": (FCALL,)}
READER_JOB = (TOP, RANK, SCORE)
LIMITER_FUNCTION = f"workshop_{ALGORITHMS['sliding_log']}"  # what load_functions() registers
VICTIM = "victim"  # the client whose limit the matrix tries to reset: 3 requests used before each user
# a loop that calls no Redis command: no ACL rule is ever checked while it spins
SPIN = "local n = 0 for i = 1, tonumber(ARGV[1]) do n = n + 1 end return n"
SPIN_LOOPS = 2_000_000  # tens of ms: long enough to measure, short enough for a matrix
CONSEQUENCES = {  # what being allowed means, for the attempts beyond a job
    READ_LIMIT: "can read any client's rate-limit state",
    RESET_OTHER: "can give any client a fresh limit (or delete its history): the limit is only as "
    "strong as these credentials are secret",
    BUSY_LOOP: "can run any Lua: a loop that calls no command is checked by nothing and stalls every "
    "client of the server until it ends (SCRIPT KILL only after busy-reply-threshold, 5 s)",
    HIT: "can count requests for any client, using up their limit",
    HIT_MANY: "can count requests for any client, using up their limit",
    FCALL: "can count requests for any client, using up their limit",
}


def default_attempts() -> dict[str, Callable[[redis.Redis], object]]:
    """Jobs to try as each user: the allowed ones, and everything else."""
    board_key = workshop_key("lb", "{" + DEMO_BOARD + "}")
    limiter_key = _limit_key("alice")
    return {
        HIT: lambda c: RateLimiter(c, 5, 60).hit("alice"),
        HIT_MANY: lambda c: RateLimiter(c, 5, 60).hit_many([("bob", 1), ("bob", 1)]),
        FCALL: lambda c: c.fcall(LIMITER_FUNCTION, 1, limiter_key, 60, 5, "", 1),
        READ_LIMIT: lambda c: c.zcard(limiter_key),
        RESET_OTHER: _reset_victim,
        "RateLimiter.reset (UNLINK)": lambda c: RateLimiter(c, 5, 60).reset("alice"),
        BUSY_LOOP: _busy_loop,
        EVAL_ANY: lambda c: c.eval("return 'any Lua'", 0),
        ADD_CODE: lambda c: c.function_load(
            "#!lua name=mine\nredis.register_function('mine', function() return 1 end)"
        ),
        TOP: lambda c: Leaderboard(c, DEMO_BOARD).top(3),
        RANK: lambda c: Leaderboard(c, DEMO_BOARD).rank("alice"),
        SCORE: lambda c: Leaderboard(c, DEMO_BOARD).score("alice"),
        "Leaderboard.add (MULTI, ZADD)": lambda c: Leaderboard(c, DEMO_BOARD).add("mallory", 1e9),
        "ZADD on the board, directly": lambda c: c.zadd(board_key, {"mallory": 1e9}),
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


def _limit_key(client_id: str) -> str:
    """The sliding-log key ``RateLimiter(r, ..., name="api")`` keeps for ``client_id``."""
    return workshop_key("ratelimit", "{api:" + client_id + "}", "sliding_log")


def _reset_victim(c: redis.Redis) -> str:
    removed = c.zremrangebyscore(_limit_key(VICTIM), "-inf", "+inf")
    return f"removed {removed} entries: {VICTIM}'s limit is whole again"


def _busy_loop(c: redis.Redis, loops: int = SPIN_LOOPS) -> str:
    sha = c.script_load(SPIN)
    started = time.perf_counter()
    done = c.evalsha(sha, 0, loops)
    held_ms = (time.perf_counter() - started) * 1000
    return f"{done:,} Lua loops, {held_ms:.0f} ms elapsed: every other client waited"


def permission_matrix(
    server: servers.Throwaway,
    users: Mapping[str, User],
    attempts: Mapping[str, Callable[[redis.Redis], object]] | None = None,
) -> pd.DataFrame:
    """Try every attempt as every user; one row each: user, attempt, outcome, detail.

    ``outcome`` is ``allowed``, ``NOPERM`` (refused by the ACL, at the command
    or inside a script) or ``error`` (anything else). First, as the admin: a
    demo board with three players, so reads have something to read; the
    limiter's functions (``load_functions``: removed afterwards unless they were
    there before), so FCALL has something to call; and before each user, three
    requests of ``VICTIM``'s, so a reset has something to reset.
    """
    if not users or not all(isinstance(u, User) for u in users.values()):
        raise ValueError("users must map names to User objects (create_workshop_users returns one)")
    attempts = dict(attempts or default_attempts())
    if not attempts or not all(callable(a) for a in attempts.values()):
        raise ValueError("attempts must map labels to callables taking a redis.Redis")
    admin = _admin(server)
    had_functions = bool(admin.function_list(library=FUNCTION_LIBRARY))
    rows = []
    try:
        Leaderboard(admin, DEMO_BOARD).add_many({"alice": 300, "bob": 200, "carol": 100}, progress=False)
        load_functions(admin)
        for user in users.values():
            admin.unlink(_limit_key(VICTIM))
            victim = RateLimiter(admin, 3, 60)
            for _ in range(3):
                victim.hit(VICTIM)
            client = user.client()
            try:
                for label, attempt in attempts.items():
                    outcome, detail = _try(attempt, client)
                    rows.append({"user": user.name, "attempt": label, "outcome": outcome, "detail": detail})
            finally:
                client.close()
    finally:
        if not had_functions:
            with contextlib.suppress(redis.ResponseError):
                admin.function_delete(FUNCTION_LIBRARY)
        admin.close()
    return pd.DataFrame(rows)


def matrix_table(matrix: pd.DataFrame) -> pd.DataFrame:
    """The matrix as attempts x users, each cell ``allowed`` or ``NOPERM``, attempts and users in order."""
    attempts = list(dict.fromkeys(matrix.attempt))
    users = list(dict.fromkeys(matrix.user))
    return matrix.pivot(index="attempt", columns="user", values="outcome").reindex(
        index=attempts, columns=users
    )


def beyond_the_job(matrix: pd.DataFrame, users: Mapping[str, User]) -> pd.DataFrame:
    """What each user was allowed that is not its job: ``user``, ``attempt``, ``means``, ``detail``.

    A user's job is ``User.job`` (``create_workshop_users`` sets it); ``means``
    says in plain words what being allowed gives whoever holds its password.
    """
    if not isinstance(matrix, pd.DataFrame) or not {"user", "attempt", "outcome"} <= set(matrix.columns):
        raise ValueError("matrix must be the DataFrame permission_matrix() returns")
    jobs = {user.name: set(user.job) for user in users.values()}
    allowed = matrix[matrix.outcome == "allowed"]
    beyond = allowed[
        [attempt not in jobs.get(user, ()) for user, attempt in zip(allowed.user, allowed.attempt)]
    ]
    return pd.DataFrame(
        {
            "user": beyond.user,
            "attempt": beyond.attempt,
            "means": [CONSEQUENCES.get(attempt, "") for attempt in beyond.attempt],
            "detail": beyond.detail,
        }
    ).reset_index(drop=True)


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


# --- who am I, and what did the server refuse -----------------------------------------------------
# ACL LOG's fields on every server (6.0+: count, reason, context, object, username, age-seconds,
# client-info); 7.2+ and Valkey add entry-id, timestamp-created, timestamp-last-updated. Left out:
# those, and age-seconds, which differs on every run; "command" is client-info's cmd.
ACL_LOG_COLUMNS = ("username", "reason", "context", "object", "command", "count")


def whoami(r: redis.Redis) -> str:
    """ACL WHOAMI: the user this connection is logged in as.

    ACL WHOAMI is a command like any other: a user not granted it gets
    ``refused (NOPERM: command 'acl|whoami')`` here, and a line in ACL LOG.
    """
    try:
        return _text(r.execute_command("ACL", "WHOAMI"))
    except redis.ResponseError as exc:
        refused = refusal(exc)
        if refused is None:
            raise
        return f"refused ({refused})"


def acl_log(r: redis.Redis, count: int | None = None) -> pd.DataFrame:
    """ACL LOG (the last ``count`` entries, default 10), oldest first, in ``ACL_LOG_COLUMNS``.

    ``reason`` is what was refused: ``command``, ``key``, ``channel`` or ``auth``
    (a failed login); ``context`` where: ``toplevel``, ``multi`` or ``lua`` (a
    script or a function); ``object`` the command, key or channel refused;
    ``command`` the command the client sent (``evalsha`` when a script was
    refused a key); ``count`` how many times the same refusal was logged (the
    server merges repeats within 60 s into one entry and moves it to the front,
    so "oldest" means least recently refused). Read-only: needs ACL LOG rights.
    """
    args = ("ACL", "LOG") if count is None else ("ACL", "LOG", int(count))
    rows = []
    for raw in reversed(r.execute_command(*args) or []):
        entry = _fields(raw)
        info = entry.get("client-info", "")
        if isinstance(info, Mapping):
            command = _text(info.get("cmd", ""))
        else:
            found = re.search(r"(?:^|\s)cmd=(\S+)", _text(info))
            command = found.group(1) if found else ""
        rows.append(
            {
                "username": _text(entry.get("username")),
                "reason": _text(entry.get("reason")),
                "context": _text(entry.get("context")),
                "object": _text(entry.get("object")),
                "command": command,
                "count": int(entry.get("count", 0)),
            }
        )
    return pd.DataFrame(rows, columns=list(ACL_LOG_COLUMNS))


def log_attempts(user: User) -> dict[str, Callable[[redis.Redis], object]]:
    """What ``acl_log_after`` tries by default: each refused for any of the course's users."""
    board_key = workshop_key("lb", "{" + DEMO_BOARD + "}")
    return {
        "ACL WHOAMI": whoami,
        "GET a key outside its patterns": lambda c: c.get("learner:precious"),
        "the same GET again": lambda c: c.get("learner:precious"),
        "ZADD on a board": lambda c: c.zadd(board_key, {"mallory": 1e9}),
        "ZSCORE on a key outside its patterns": lambda c: c.zscore("learner:precious", "mallory"),
        "a script reading another key": lambda c: c.evalsha(
            c.script_load("return redis.call('GET', 'learner:precious')"), 0
        ),
        "log in with a wrong password": lambda c: _log_in(user, "not-the-password"),
    }


def acl_log_after(
    server: servers.Throwaway,
    user: User,
    attempts: Mapping[str, Callable[[redis.Redis], object]] | None = None,
) -> pd.DataFrame:
    """What ACL LOG records when ``user`` tries ``attempts`` (default ``log_attempts(user)``).

    On a throwaway server: ACL LOG RESET, the attempts as ``user`` (refusals are
    expected and swallowed), the log read as the admin (``acl_log``), ACL LOG
    RESET again, so the next demo starts from an empty log.
    """
    if not isinstance(user, User):
        raise ValueError("user must be a User (create_workshop_users returns them)")
    attempts = dict(attempts or log_attempts(user))
    if not all(callable(a) for a in attempts.values()):
        raise ValueError("attempts must map labels to callables taking a redis.Redis")
    admin = _admin(server)
    try:
        admin.execute_command("ACL", "LOG", "RESET")
        client = user.client()
        try:
            for attempt in attempts.values():
                _try(attempt, client)
        finally:
            client.close()
        return acl_log(admin)
    finally:
        admin.execute_command("ACL", "LOG", "RESET")
        admin.close()


def _log_in(user: User, password: str) -> str:
    client = redis.Redis.from_url(user.url, username=user.name, password=password, driver_info=None)
    try:
        client.ping()
    except redis.AuthenticationError as exc:
        return f"refused: {exc}"
    finally:
        client.close()
    return "logged in"


def _fields(raw: object) -> dict:
    if isinstance(raw, list | tuple):  # RESP2 without redis-py's parser: a flat list
        raw = dict(zip(raw[::2], raw[1::2]))
    return {_text(k): v for k, v in dict(raw).items()}


def _text(value: object) -> str:
    if value is None:
        return ""
    return value.decode() if isinstance(value, bytes) else str(value)


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
COMPOSE_FILE = servers.CHECKOUT / "docker-compose.yml"

PROTECTED_MODE = (
    "Protected mode is a safety net for a server left without a password: while it is on and the default "
    "user has no password, Redis refuses every client that does not connect over loopback or a Unix "
    "socket (since Redis 7.0 whatever bind says).",
    "It does nothing once the default user has a password, and nothing for programs on the same machine.",
    "The official redis Docker image turns it off: its Dockerfile builds Redis with protected-mode "
    "defaulting to no (older images' entrypoint added --protected-mode no), because clients reaching "
    "a container through a published port never arrive over its loopback.",
    "What protects the workshop's compose Redis is the port published on 127.0.0.1 only (no other "
    "machine reaches it) and --requirepass (no program on this machine gets in without the password).",
    "On a real network: bind, or publish the port, on loopback or a private network only; require a "
    "password, better one ACL user per job with the default user off; TLS between machines. Protected "
    "mode is what is left when all of that was forgotten.",
)
CHECKLIST_EXPOSURE = (
    "**Never expose Redis unprotected.** Listen on (or publish the port on) loopback or a private network "
    "only, require a password kept out of git (better: one ACL user per job, default user off), TLS "
    "across machines. Protected mode is only a safety net for a server without a password, and the "
    "official Docker image turns it off."
)


def exposure_report(r: redis.Redis) -> pd.DataFrame:
    """The settings that decide whether a network can reach this Redis and what it may do.

    Read-only (CONFIG GET, ACL GETUSER): safe on any server. Never shows a
    password, only whether one is set. ``status`` is ``ok``, ``risk`` or
    ``info``; ``safe_to_expose`` says no while any row is a ``risk``. A server
    in a container binds every interface inside it, with protected mode off
    (the official image's default): what protects the workshop's compose
    server is the loopback port publish, which Redis cannot see, and its
    password (``compose_exposure`` reads them from docker-compose.yml).
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
        row(
            "default user",
            "on, no password",
            "risk",
            "anyone who connects is an admin: FLUSHALL, CONFIG SET requirepass (locking you out), "
            "maxmemory...",
        )
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
    elif password or default.get("on") is False:
        row("protected-mode", mode, "info", "acts only while the default user has no password: not here")
    elif loopback_only:
        row("protected-mode", mode, "info", "changes nothing: only loopback clients can connect anyway")
    elif mode == "yes":
        row(
            "protected-mode",
            mode,
            "ok",
            "a safety net: clients from other machines are refused while there is no password "
            "(programs on this machine, or in its container, still get in as admin)",
        )
    else:
        row(
            "protected-mode",
            mode,
            "risk",
            "off, no password, listening beyond loopback: every client that reaches the port is an admin",
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
        "CONFIG SET still changes maxmemory, save, appendonly, requirepass, protected-mode at runtime "
        "(dir, dbfilename and the other protected configs are refused since 7.0): only an admin "
        "should have it",
    )
    return pd.DataFrame(rows)


def safe_to_expose(report: pd.DataFrame) -> bool:
    """True when no row of ``exposure_report`` is a risk."""
    if not isinstance(report, pd.DataFrame) or "status" not in report:
        raise ValueError("report must be the DataFrame exposure_report() returns")
    return not (report.status == "risk").any()


def compose_exposure(path: str | Path | None = None) -> pd.DataFrame:
    """What protects the Redis of ``docker-compose.yml``: ``setting``, ``value``, ``status``, ``why``.

    Read from the file (default: the repository's): where the port is
    published, whether a password is required, protected mode and bind inside
    the container. Never shows a password: the file only names the variable.
    """
    import yaml  # only this function needs it

    service = yaml.safe_load(Path(path or COMPOSE_FILE).read_text())["services"]["redis"]
    command = [str(part) for part in service.get("command") or []]
    hosts = [_published_on(port) for port in service.get("ports") or []]
    rows = []

    def row(setting: str, value: str, status: str, why: str) -> None:
        rows.append({"setting": setting, "value": value, "status": status, "why": why})

    def option(name: str) -> str | None:
        return command[command.index(name) + 1] if name in command[:-1] else None

    local = bool(hosts) and all(host.startswith(LOOPBACK) for host in hosts)
    row(
        "port published on",
        ", ".join(host or "every interface" for host in hosts) or "not published",
        "ok" if local or not hosts else "risk",
        "only programs on this machine reach it; no other machine does"
        if local
        else "other machines reach it: a password and TLS are then a must",
    )
    secret = option("--requirepass")
    variable = re.search(r"\$\{(\w+)", secret or "")
    row(
        "password",
        f"required (--requirepass ${{{variable.group(1)}}})"
        if variable
        else "required"
        if secret
        else "none",
        "ok" if secret else "risk",
        "every client must AUTH; the password lives in .env, not in this file"
        if secret
        else "any program that reaches the port is an admin",
    )
    mode = option("--protected-mode")
    row(
        "protected-mode",
        mode or "no (the image's default)",
        "info",
        "the official image builds Redis with protected mode off; with a password it would change nothing",
    )
    row(
        "bind inside the container",
        option("--bind") or "* -::* (every interface: Redis's default without a config file)",
        "info",
        "inside the container it listens everywhere; the published port decides who reaches it",
    )
    return pd.DataFrame(rows)


def _published_on(port: object) -> str:
    """A compose port entry's host address: ``"127.0.0.1:6379:6379"`` -> ``"127.0.0.1"``; ``""``: all."""
    if isinstance(port, Mapping):
        return str(port.get("host_ip", ""))
    text = re.sub(r"\$\{[^}]*\}", "X", str(port))  # ${REDIS_PORT:-6379} has a colon of its own
    parts = text.rsplit(":", 2)
    return parts[0].strip("[]") if len(parts) == 3 else ""


# --- what CONFIG SET can still do -----------------------------------------------------------
_CONFIG_ATTEMPTS = (
    ("CONFIG SET dir /tmp", ("CONFIG", "SET", "dir", "/tmp"),
     "where RDB and AOF files go: the old trick of writing a file anywhere (cron, ssh keys) is closed"),
    ("CONFIG SET dbfilename authorized_keys", ("CONFIG", "SET", "dbfilename", "authorized_keys"),
     "the snapshot's file name: protected like dir"),
    ("CONFIG SET enable-protected-configs yes", ("CONFIG", "SET", "enable-protected-configs", "yes"),
     "the switch that would allow the two above is set at startup only"),
    ("CONFIG SET maxmemory 1mb", ("CONFIG", "SET", "maxmemory", "1mb"),
     "writes now fail with OOM, or keys are evicted, at once"),
    ('CONFIG SET save ""', ("CONFIG", "SET", "save", ""), "no more snapshots"),
    ("CONFIG SET appendonly no", ("CONFIG", "SET", "appendonly", "no"),
     "no more AOF: with save off too, a restart loses everything"),
    ("CONFIG SET requirepass <new>", ("CONFIG", "SET", "requirepass", "<new>"),
     "every other client is locked out until it learns the new password"),
    ("CONFIG SET protected-mode no", ("CONFIG", "SET", "protected-mode", "no"),
     "a server without a password now serves other machines too (if it listens to them)"),
    ("MODULE LOAD /tmp/evil.so", ("MODULE", "LOAD", "/tmp/evil.so"),
     "loading native code is off unless enable-module-command is set at startup"),
    ("DEBUG SLEEP 0", ("DEBUG", "SLEEP", "0"),
     "DEBUG (sleep, crash, reload) is off unless enable-debug-command is set at startup"),
)  # fmt: skip
_RESTORED = ("maxmemory", "save", "appendonly", "requirepass", "protected-mode")


def config_set_demo(server: servers.Throwaway) -> pd.DataFrame:
    """What a client with admin rights can still do: ``action``, ``outcome``, ``means``, ``reply``.

    Tried on a throwaway server as its default user (an admin without a
    password, as on a server nobody locked). Since Redis 7.0, ``dir``,
    ``dbfilename`` and the other protected configs are refused unless
    ``enable-protected-configs`` was set at startup, and DEBUG and MODULE are
    off; the rest of CONFIG SET (memory, persistence, the password, protected
    mode) still works, and so would emptying the server (not tried: the course never
    sends that command). ``outcome`` is ``allowed``, ``refused:
    protected config``, ``refused: startup only`` or ``refused: disabled at
    startup``, the same on every server; ``reply`` is what the server said.
    The settings are put back afterwards.
    ``bind`` and ``port`` can be changed at runtime too: not tried, it would
    open the throwaway to the network.
    """
    admin = _admin(server)
    before = {name: admin.config_get(name)[name] for name in _RESTORED}
    rows = []
    try:
        for action, command, means in _CONFIG_ATTEMPTS:
            if command[-1] == "<new>":
                command = (*command[:-1], secrets.token_urlsafe(16))
            try:
                reply = admin.execute_command(*command)
                said = "OK" if reply is True else _text(reply)
            except redis.ResponseError as exc:
                said = str(exc)
            rows.append({"action": action, "outcome": _config_outcome(said), "means": means, "reply": said})
    finally:
        for name, value in before.items():  # the connection stays logged in after requirepass changes
            admin.config_set(name, value)
        admin.close()
    return pd.DataFrame(rows)


def _config_outcome(said: str) -> str:
    if said == "OK":
        return "allowed"
    if "protected config" in said:
        return "refused: protected config"
    if "immutable config" in said:
        return "refused: startup only"
    if "command not allowed" in said:
        return "refused: disabled at startup"
    return "error"


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
