"""``python -m helpers.check``: can this machine run the workshop? (run by ``make lab``)

Finds the Redis and the PostgreSQL the notebooks will use exactly as they do
(``helpers.connect``, ``helpers.connect_sql``), says which in one line each,
and exits non-zero with what to do when one cannot be had. When nothing is
running, that means starting the throwaway servers a notebook would start
(Redis 8.2 and PostgreSQL 18 from pip): they prove the route works and are
stopped again when this check ends; each notebook then starts its own.
"""

from __future__ import annotations

import contextlib
import io
import sys

from helpers import connection
from helpers.config import settings
from helpers.servers import SetupError
from helpers.sql import connect_sql


def _check(what: str, find) -> bool:
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed):
            found = find()
    except SetupError as error:
        print(f"✗ {what}: {error}")
        return False
    line = printed.getvalue().strip().splitlines()[-1]
    if "(throwaway" in line:
        line += "; each notebook starts its own like it"
    print(f"✓ {line}")
    found.close()
    return True


def main() -> int:
    print(f"workshop size: {settings().size} (WORKSHOP_SIZE=workshop|ci)")
    ok = _check("Redis", connection.connect) & _check("PostgreSQL", connect_sql)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
