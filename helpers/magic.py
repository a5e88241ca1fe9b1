"""``%%redis``: type commands in a notebook cell as you would in ``redis-cli``, see redis-cli's replies.

Load it once, in a notebook's first cell::

    %load_ext helpers.magic

then::

    %%redis
    -- a comment line; blank lines are skipped too
    ZADD workshop:lb 1500 "player:42" 1620 player:17
    ZRANGE workshop:lb 0 -1 WITHSCORES   -- a standalone -- starts a comment

prints each command after a ``redis>`` prompt, then its reply as ``redis-cli`` prints it
(``(integer) 2``, ``(nil)``, ``"quoted strings"``, ``OK``, ``(error) ERR ...``, numbered and indented
arrays). What is sent is exactly what you typed: no redis-py response callbacks, so
``ZRANGE ... WITHSCORES`` is the flat array and ``INFO`` one bulk string.

* **Passwords** typed in a cell (``AUTH``, ``HELLO ... AUTH``, ``ACL SETUSER ... >pass``,
  ``CONFIG SET requirepass``) are sent as typed but echoed as ``***``, so a saved
  notebook never holds them (``secrets_hidden``).
* **Lines** are split as ``redis-cli`` splits them (its ``sdssplitargs``): words separated by
  blanks; ``"double quotes"`` with ``\\" \\\\ \\n \\r \\t \\b \\a \\xHH`` escapes; ``'single quotes'``
  where only ``\\'`` is an escape. A line starting with ``--``, or an unquoted ``--`` standing alone
  as a word, begins a comment (write ``"--"`` for the literal argument). A line that cannot be split
  (unbalanced quotes) raises ``UnparsableLine`` naming it, before any command is sent.
* **Connection**: the notebook's client, the variable ``r`` (or ``-c NAME``), must be a
  ``redis.Redis``; without an ``r``, ``helpers.connect()``. The cell opens one connection with that
  client's settings (server, credentials, database), speaking RESP2 as ``redis-cli`` does, and closes
  it at the end: MULTI ... EXEC, WATCH and SELECT hold for the rest of the cell.
* **Errors**: a failing command prints ``(error) ...`` and the cell goes on to the next line, as
  ``redis-cli`` does. ``-e`` / ``--raise`` stops at the first one with ``CommandFailed``.
* ``-q`` / ``--quiet`` prints nothing but errors; ``--no-echo`` leaves out the ``redis>`` lines.
* The cell's replies are kept in ``_redis`` (a list, strings decoded when they are UTF-8, errors as
  ``redis.ResponseError``); the magic itself returns nothing, so nothing is printed twice.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis
from IPython.core import magic_arguments
from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, magics_class

# redis-py has no public RESP reader that keeps what redis-cli shows (a status reply apart from a
# string, the whole error text): this one subclass of its RESP2 parser is the only private name used.
from redis._parsers import _RESP2Parser
from redis.cluster import RedisCluster
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.utils import SENTINEL

from helpers.course.connection import connect

PROMPT = "redis> "
_BLANKS = b" \t\n\r\v\f"  # C isspace(): what separates words
_WORD_ENDS = b" \t\n\r"  # sdssplitargs ends an unquoted word only on these
_HEX = b"0123456789abcdefABCDEF"
_ESCAPES = {ord(letter): ord(char) for letter, char in zip("nrtba", "\n\r\t\b\a")}
# These switch the connection into a mode where replies stop matching commands.
_UNSUPPORTED = {"SUBSCRIBE", "PSUBSCRIBE", "SSUBSCRIBE", "MONITOR", "SYNC", "PSYNC"}


class UnparsableLine(ValueError):
    """A cell line that redis-cli would refuse ("Invalid argument(s)"), or a command the magic cannot show."""


class CommandFailed(redis.ResponseError):
    """Raised with ``--raise`` when a command of the cell gets an error reply.

    ``replies`` holds the replies up to and including the error.
    """

    def __init__(self, message: str, replies: list):
        super().__init__(message)
        self.replies = replies


class Status(bytes):
    """A simple-string reply (``+OK``): printed bare, where a bulk string is printed quoted."""


class ReplyError(redis.ResponseError):
    """An error reply, with its full text (``ERR ...``, ``WRONGTYPE ...``) as redis-cli shows it."""


@dataclass(frozen=True)
class Command:
    line_number: int  # 1-based, within the cell
    source: str  # the line as typed, without its comment
    args: list[bytes]


def split_args(line: str | bytes) -> tuple[list[bytes], int]:
    """Split one line as redis-cli does; return the arguments and where a ``--`` comment starts."""
    data = line.encode() if isinstance(line, str) else line

    def at(i: int) -> int | None:
        return data[i] if i < len(data) else None

    args: list[bytes] = []
    i = 0
    while True:
        while i < len(data) and data[i] in _BLANKS:
            i += 1
        if i == len(data):
            return args, i
        if data[i : i + 2] == b"--" and (at(i + 2) is None or at(i + 2) in _BLANKS):
            return args, i
        word, quote, done = bytearray(), None, False
        while not done:
            c = at(i)
            if quote == '"' and data[i : i + 2] == b"\\x" and _is_hex_pair(data[i + 2 : i + 4]):
                word.append(int(data[i + 2 : i + 4], 16))
                i += 3
            elif quote == '"' and c == ord("\\") and at(i + 1) is not None:
                i += 1
                word.append(_ESCAPES.get(data[i], data[i]))
            elif quote == "'" and c == ord("\\") and at(i + 1) == ord("'"):
                i += 1
                word.append(data[i])
            elif quote and c == ord(quote):
                if at(i + 1) is not None and at(i + 1) not in _BLANKS:
                    raise ValueError(f"a closing {quote} must be followed by a space or the end of the line")
                done = True
            elif quote and c is None:
                raise ValueError(f"unbalanced quotes: a {quote} is never closed")
            elif quote:
                word.append(c)
            elif c is None or c in _WORD_ENDS:
                done = True
            elif c in b"\"'":
                quote = chr(c)
            else:
                word.append(c)
            if c is not None:
                i += 1
        args.append(bytes(word))


def _is_hex_pair(pair: bytes) -> bool:
    return len(pair) == 2 and all(byte in _HEX for byte in pair)


def parse_cell(cell: str) -> list[Command]:
    """Every command of a cell, or ``UnparsableLine`` for the first line that cannot be one."""
    commands = []
    for number, line in enumerate(cell.splitlines(), start=1):
        if line.strip().startswith("--"):
            continue
        try:
            args, comment_at = split_args(line)
        except ValueError as exc:
            raise UnparsableLine(f"line {number} of the cell, {line.strip()!r}: {exc}") from None
        if not args:
            continue
        name = args[0].decode(errors="replace").upper()
        if name in _UNSUPPORTED or (name == "HELLO" and args[1:2] == [b"3"]):
            raise UnparsableLine(
                f"line {number} of the cell, {line.strip()!r}: %%redis shows one reply per command over "
                "RESP2; use redis-py for this one (r.pubsub(), r.monitor())"
            )
        source = line.encode()[:comment_at].decode(errors="replace").strip()
        commands.append(Command(number, source, args))
    return commands


def quote_bytes(value: bytes) -> str:
    """A string reply as redis-cli shows it (sdscatrepr): quoted, non-printable bytes as escapes."""
    out = ['"']
    for byte in value:
        char = chr(byte)
        if char in '\\"':
            out.append("\\" + char)
        elif char in "\n\r\t\a\b":
            out.append({"\n": "\\n", "\r": "\\r", "\t": "\\t", "\a": "\\a", "\b": "\\b"}[char])
        elif 0x20 <= byte <= 0x7E:
            out.append(char)
        else:
            out.append(f"\\x{byte:02x}")
    out.append('"')
    return "".join(out)


def format_reply(reply, prefix: str = "") -> str:
    """A reply in redis-cli's words (its cliFormatReplyTTY), each line ending with a newline."""
    if isinstance(reply, redis.ResponseError):
        return f"(error) {reply}\n"
    if isinstance(reply, Status):
        return reply.decode(errors="replace") + "\n"
    if isinstance(reply, bytes):
        return quote_bytes(reply) + "\n"
    if isinstance(reply, int):
        return f"(integer) {reply}\n"
    if reply is None:
        return "(nil)\n"
    if not reply:
        return "(empty array)\n"
    width = len(str(len(reply)))
    inner = prefix + " " * (width + 2)  # nested arrays line up under their parent's first element
    lines = []
    for index, element in enumerate(reply, start=1):
        # the first element follows the parent's own "n) " on the same line
        lines.append(f"{prefix if index > 1 else ''}{index:>{width}}) {format_reply(element, inner)}")
    return "".join(lines)


def to_python(reply):
    """A reply as plain Python, for ``_redis``: UTF-8 strings decoded, other bytes left as bytes."""
    if isinstance(reply, list):
        return [to_python(element) for element in reply]
    if isinstance(reply, bytes):
        try:
            return reply.decode()
        except UnicodeDecodeError:
            return bytes(reply)
    return reply


class _CliReplyParser(_RESP2Parser):
    """RESP2 replies with the distinctions redis-cli shows and redis-py drops (status, full error text)."""

    def _read_response(self, disable_decoding=False, timeout=SENTINEL):
        raw = self._buffer.readline(timeout=timeout)
        if not raw:
            raise RedisConnectionError("Connection closed by server.")
        kind, body = raw[:1], raw[1:]
        if kind == b"-":
            text = body.decode(errors="replace")
            as_redis_py_sees_it = self.parse_error(text)
            if isinstance(as_redis_py_sees_it, RedisConnectionError):  # LOADING, max clients...
                raise as_redis_py_sees_it
            return ReplyError(text)
        if kind == b"+":
            return Status(body)
        if kind == b":":
            return int(body)
        if kind in b"$*" and body == b"-1":
            return None
        if kind == b"$":
            return bytes(self._buffer.read(int(body), timeout=timeout))
        if kind == b"*":
            return [self._read_response(timeout=timeout) for _ in range(int(body))]
        raise redis.InvalidResponse(f"Protocol error: {raw!r}")


def open_connection(client: redis.Redis) -> redis.Connection:
    """A new connection with ``client``'s settings that reads replies the way redis-cli shows them."""
    pool = client.connection_pool
    kwargs = dict(pool.connection_kwargs, parser_class=_CliReplyParser, protocol=2)
    # Maintenance push notifications need RESP3; this connection lives for one cell anyway.
    kwargs.pop("maint_notifications_pool_handler", None)
    kwargs["maint_notifications_config"] = None
    connection = pool.connection_class(**kwargs)
    connection.connect()
    return connection


def _pack(args: list[bytes]) -> bytes:
    # Packed here, not by redis-py, which would split a command name containing a space.
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        parts.append(b"$%d\r\n%s\r\n" % (len(arg), arg))
    return b"".join(parts)


SECRET = "***"


def secrets_hidden(command: Command) -> str:
    """The line as it may be shown and saved in a notebook: the arguments that are passwords replaced.

    ``AUTH [user] password``; ``HELLO ... AUTH user password``; ``MIGRATE ... AUTH password`` or
    ``AUTH2 user password``; ``ACL SETUSER ... >password`` (and ``<password``, ``#hash``, ``!hash``);
    ``CONFIG SET requirepass|masterauth|masteruser value``.
    """
    words = [arg.decode("utf-8", "replace") for arg in command.args]
    upper = [word.upper() for word in words]
    hidden: set[int] = set()
    if upper[:1] == ["AUTH"]:
        hidden.update(range(1, len(words)))
    if upper[:1] in (["HELLO"], ["MIGRATE"]):
        for at, word in enumerate(upper):
            if word == "AUTH":
                hidden.update({at + 2} if upper[0] == "HELLO" else {at + 1})
            elif word == "AUTH2":
                hidden.add(at + 2)
    if upper[:2] == ["ACL", "SETUSER"]:
        hidden.update(at for at, word in enumerate(words) if at > 2 and word[:1] in "><#!" and len(word) > 1)
    if upper[:2] == ["CONFIG", "SET"]:
        hidden.update(
            at + 1
            for at in range(2, len(upper), 2)
            if upper[at] in ("REQUIREPASS", "MASTERAUTH", "MASTERUSER")
        )
    hidden &= set(range(len(words)))
    if not hidden:
        return command.source
    shown = []
    for at, word in enumerate(words):
        if at in hidden:
            word = word[0] + SECRET if upper[0] == "ACL" else SECRET
        shown.append(word if word and not any(c in word for c in " \"'") else quote_bytes(word.encode()))
    return " ".join(shown)


def run(
    client: redis.Redis, cell: str, *, quiet: bool = False, raise_errors: bool = False, echo: bool = True
) -> list:
    """Run a cell's commands on one connection, print them and their replies; return the replies."""
    commands = parse_cell(cell)  # every line is checked before the first command is sent
    replies: list = []
    if not commands:
        return replies
    connection = open_connection(client)
    try:
        for command in commands:
            connection.send_packed_command([_pack(command.args)])
            try:
                reply = connection.read_response()
            except ReplyError as error:
                reply = error
            replies.append(reply)
            failed = isinstance(reply, ReplyError)
            if failed or not quiet:
                print((PROMPT + secrets_hidden(command) + "\n" if echo else "") + format_reply(reply), end="")
            if failed and raise_errors:
                raise CommandFailed(
                    f"line {command.line_number} of the cell, {secrets_hidden(command)!r}: {reply}", replies
                )
    finally:
        connection.disconnect()
    return replies


@magics_class
class RedisMagics(Magics):
    """The ``%%redis`` cell magic; ``%load_ext helpers.magic`` registers it."""

    _fallback_client: redis.Redis | None = None

    @magic_arguments.magic_arguments()
    @magic_arguments.argument("-q", "--quiet", action="store_true", help="print nothing but errors")
    @magic_arguments.argument(
        "-e",
        "--raise",
        dest="raise_errors",
        action="store_true",
        help="stop the cell at the first error reply, raising CommandFailed",
    )
    @magic_arguments.argument(
        "-c", "--client", metavar="NAME", help="the redis.Redis variable to use (default: r)"
    )
    @magic_arguments.argument("--no-echo", action="store_true", help="leave out the 'redis>' lines")
    @cell_magic
    def redis(self, line: str, cell: str) -> None:
        """Run redis-cli style commands, one per line; print replies as redis-cli does."""
        options = magic_arguments.parse_argstring(self.redis, line)
        client = self._client(options.client)
        replies: list = []
        try:
            replies = run(
                client, cell, quiet=options.quiet, raise_errors=options.raise_errors, echo=not options.no_echo
            )
        except CommandFailed as failure:
            replies = failure.replies
            raise
        finally:
            self.shell.user_ns["_redis"] = [to_python(reply) for reply in replies]

    def _client(self, name: str | None) -> redis.Redis:
        namespace = self.shell.user_ns
        if name is None and "r" not in namespace:
            if RedisMagics._fallback_client is None:
                RedisMagics._fallback_client = connect()  # prints which server, as in the notebooks
            return RedisMagics._fallback_client
        name = name or "r"
        if name not in namespace:
            raise UsageError(f"%%redis -c {name}: there is no variable {name!r} in this notebook")
        client = namespace[name]
        if not isinstance(client, redis.Redis):
            problem = f"%%redis uses {name!r}, which is a {type(client).__name__}, not a redis.Redis"
            if isinstance(client, RedisCluster):
                problem += (
                    " (it talks to one server, as redis-cli without -c: pass -c with one node's client, "
                    f"e.g. node = {name}.get_node_from_key('workshop:...').redis_connection)"
                )
            raise UsageError(problem)
        return client


def load_ipython_extension(ipython) -> None:
    """Called by ``%load_ext helpers.magic``."""
    ipython.register_magics(RedisMagics)
