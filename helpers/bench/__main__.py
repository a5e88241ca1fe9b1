"""``python -m helpers.bench leaderboard|streams|ratelimit [--size ci|workshop]``: a benchmark, printed.

The same experiments as the notebook's cells, on the Redis and PostgreSQL the
notebooks use (``helpers.connect``, ``helpers.connect_sql``), printed as tables
and lined up against the course's claims (``helpers.bench.claims``).
"""

from __future__ import annotations

import argparse
import importlib
import os

import pandas as pd

PATTERNS = ("leaderboard", "streams", "ratelimit")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers.bench", description=__doc__.splitlines()[0])
    parser.add_argument("pattern", choices=PATTERNS)
    parser.add_argument("--size", choices=["workshop", "ci"], help="overrides WORKSHOP_SIZE")
    options = parser.parse_args(argv)
    if options.size:
        os.environ["WORKSHOP_SIZE"] = options.size
    from helpers.baselines.sql import connect_sql
    from helpers.course.connection import connect

    experiments = importlib.import_module(f"helpers.bench.{options.pattern}")
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        experiments.main(connect(), connect_sql())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
