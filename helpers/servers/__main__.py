"""``python -m helpers.servers COMMAND...``: run COMMAND beside a throwaway Redis and PostgreSQL.

Starts the servers ``helpers.servers`` starts (the pip Redis 8.2 unless
``WORKSHOP_REDIS`` picks another, the pip PostgreSQL 18), runs COMMAND with
``REDIS_URL`` and ``DATABASE_URL`` pointing at them, then stops them and removes
their files. ``make execute`` runs the notebooks this way, so the committed
outputs come from the default servers and never from a server with someone's
data in it. ``--list`` prints the Redis-compatible binaries found, in the order
they are preferred.
"""

from __future__ import annotations

import os
import subprocess
import sys

from helpers import servers
from helpers.clients import redact


def main(argv: list[str]) -> int:
    if argv in (["--list"], ["-l"]):
        for binary in servers.redis_binaries():
            print(f"{servers.REDIS_CHOICE_ENV}={binary.choice:<7} {binary.label} ({binary.path})")
        return 0
    command = argv[1:] if argv[:1] == ["--"] else argv
    if not command or command[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if command else 2
    try:
        redis_server = servers.start_redis()
        postgres = servers.start_postgres()
    except servers.SetupError as error:
        print(f"{type(error).__name__}: {error}", file=sys.stderr)
        return 1
    print(f"helpers.servers: Redis at {redis_server.url} ({redis_server.how})", flush=True)
    print(f"helpers.servers: PostgreSQL at {redact(postgres.url)} ({postgres.how})", flush=True)
    environment = os.environ | {"REDIS_URL": redis_server.url, "DATABASE_URL": postgres.url}
    try:
        return subprocess.run(command, env=environment).returncode
    finally:
        redis_server.stop()
        postgres.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
