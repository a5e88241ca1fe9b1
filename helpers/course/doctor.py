"""``python -m helpers.course.doctor`` (``make doctor``): a pre-flight check for a room of laptops.

Run it before the workshop, on every machine that will run the notebooks. It
prints one line per check, ``ok``, ``warn`` or ``fail``, and under every line
that is not ``ok`` how to fix it; it exits non-zero when anything failed.

* **Python**: 3.11 or newer (the pinned numpy, pandas and matplotlib need it).
* **packages**: everything in ``requirements.txt`` installed, at its pin.
* **Redis**: the one the notebooks will use (``helpers.connect``: ``REDIS_URL``,
  localhost:6379, else a throwaway one), its product (Redis or Valkey), version
  (7.0+) and where it is.
* **server binary**: the one every throwaway Redis runs (notebooks 03 and 04
  start their own, and a cluster): the pip Redis 8.2 unless ``WORKSHOP_REDIS``
  picks another; ``redis-benchmark`` (02's ceiling) is optional.
* **SQL baseline**: the PostgreSQL the notebooks will use (``helpers.connect_sql``).
* **Docker**: an engine is optional; it is a warning only when it would have
  given a server that is missing.
* **memory**: free memory for the workshop size, and Redis' ``maxmemory``.
* **benchmark** (about ten seconds at workshop size): the operations behind
  the notebooks' claims, timed here and judged against ``helpers.bench.claims``:
  each claim, its bound and the notebook that makes it.
  A slow figure is a ``warn``, never a ``fail``: a slow laptop still runs the
  course, its notebooks print "NOT met" beside a claim, and the ratios still
  hold. (A benchmark the server refuses, out of memory say, is a ``fail``.)

Sizes follow the workshop size (``settings().doctor_*``, ``MEMORY_NEEDED``):
``workshop`` times the real thing, ``ci`` is small so the tests stay quick.
``--quick`` skips the benchmark. ``--servers`` (what ``make lab`` runs first)
only finds the Redis and the PostgreSQL the notebooks will use, exactly as they
do, one line each, and exits non-zero with what to do when one cannot be had;
when nothing is running, that starts the throwaway servers a notebook would
start (stopped again at the end), which proves the route works.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import io
import os
import re
import shutil
import sys
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm  # a command line: text on stderr

from helpers import bounds, servers
from helpers.baselines.sql import SqlBaseline, connect_sql
from helpers.bench import timing
from helpers.bench.claims import CLAIMS, Claim
from helpers.bench.sizes import Settings, settings
from helpers.clients import redact
from helpers.course import connection

ROOT = servers.CHECKOUT
REQUIREMENTS = ROOT / "requirements.txt"
MIN_PYTHON = (3, 11)  # the pinned numpy, pandas, matplotlib and ipykernel require 3.11
STATUSES = ("ok", "warn", "fail")
GiB, MiB = 2**30, 2**20
# free memory the notebooks need (helpers.bench.sizes: "about 1 GB" at workshop size), and what Redis holds
MEMORY_NEEDED = {"workshop": 1 * GiB, "ci": 256 * MiB}
REDIS_MEMORY_NEEDED = {"workshop": 512 * MiB, "ci": 64 * MiB}

FIX_UPDATE_PYTHON = (
    "install Python 3.11 (python.org, `brew install python@3.11`, `apt install python3.11`), "
    "then rebuild the environment with it: `make clean setup PYTHON=python3.11`"
)
FIX_PACKAGES = "run `make setup`; if that says nothing to do, rebuild: `make clean setup`"
FIX_START_REDIS = f"{servers.SETUP_FIX}; {servers.NO_WHEEL_FIX}; or set REDIS_URL to a Redis you have"
FIX_ROUND_TRIP = (
    "one call at a time is a network round trip: use a Redis on this machine (not a remote one), "
    "plug the laptop in (battery saving slows the CPU), close busy programs and run it again; the notebooks "
    "still run, their claim lines will print NOT met and the ratios still hold"
)
FIX_THROUGHPUT = (
    "pipelined throughput is bound by one Python process and the CPU: plug the laptop in, close busy "
    "programs (browsers, video calls, indexers) and run it again; the notebooks still run and print NOT met "
    "beside the claim"
)
FIX_SQL_GAP = (
    "PostgreSQL counts faster than expected here or Redis answers slowly: check the Redis lines above; "
    "the leaderboard plot still shows the gap growing with N"
)
# what to try when a benchmark figure misses its claim (the claims themselves: helpers.bench.claims)
FIXES = {
    "bulk load": FIX_THROUGHPUT,
    "ZREVRANK p99": FIX_ROUND_TRIP,
    "SQL rank gap at 100,000": FIX_SQL_GAP,
    "append": FIX_THROUGHPUT,
    "consume": FIX_THROUGHPUT,
    "decision p99": FIX_ROUND_TRIP,
}


@dataclass
class Check:
    """One line of the report: what was checked, how it went, and how to fix it if it did not."""

    name: str
    status: str  # "ok", "warn" or "fail"
    result: str
    fix: str = ""

    def __post_init__(self):
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {self.status!r}")
        if self.status != "ok" and not self.fix:
            raise ValueError(f"a {self.status!r} check needs a fix: {self.name}")


# --- the environment --------------------------------------------------------------------------


def check_python(version: tuple[int, ...] | None = None) -> Check:
    version = tuple(version or sys.version_info[:3])
    shown = ".".join(map(str, version[:3]))
    if version[:2] < MIN_PYTHON:
        return Check("Python", "fail", f"{shown}: the pinned packages need 3.11 or newer", FIX_UPDATE_PYTHON)
    return Check("Python", "ok", f"{shown} ({sys.executable})")


def pinned_packages(requirements: Path = REQUIREMENTS) -> dict[str, str]:
    """``{name: version}`` for every ``name[extras]==version`` line of a requirements file."""
    pins = {}
    for line in requirements.read_text().splitlines():
        match = re.match(r"^\s*([A-Za-z0-9_.-]+)(\[[^\]]*\])?\s*==\s*([^\s#;]+)", line)
        if match:
            pins[match.group(1)] = match.group(3)
    return pins


def check_packages(requirements: Path = REQUIREMENTS) -> Check:
    pins = pinned_packages(requirements)
    missing, other = [], []
    for name, wanted in pins.items():
        try:
            found = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            missing.append(name)
            continue
        if found != wanted:
            other.append(f"{name} {found} (pinned {wanted})")
    if missing:
        return Check("packages", "fail", f"missing: {', '.join(missing)}", FIX_PACKAGES)
    if other:
        return Check("packages", "warn", f"not at their pins: {', '.join(other)}", FIX_PACKAGES)
    return Check("packages", "ok", f"all {len(pins)} pinned packages installed at their pins")


def check_redis(url: str | None = None):
    """``(Check, client or None)``: the Redis the notebooks will use, found as ``helpers.connect`` finds it.

    With no Redis running this starts the throwaway one a notebook would start
    (stopped when this process exits), which proves that route works.
    """
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed):
            client = connection.connect(url)
    except Exception as error:  # noqa: BLE001 - whatever goes wrong is a fail line, not a crash
        message = str(error) or type(error).__name__
        if "password" in message.lower() or "auth" in message.lower():
            fix = (
                "give the notebooks that Redis' password: a line REDIS_PASSWORD=... in .env (see "
                ".env.example; for `docker compose` it is the password the server was started with), "
                "or REDIS_URL=redis://:PASSWORD@host:port/0"
            )
        elif "too old" in message:
            fix = (
                "the course needs Redis 7.0 or newer: stop that server (or unset REDIS_URL) so the notebooks "
                "start the Redis 8.2 `make setup` installs, or `docker compose up -d --wait` (Redis 8.2)"
            )
        elif url or os.environ.get("REDIS_URL"):
            fix = (
                "start that Redis, or correct the URL; unset REDIS_URL to let the notebooks use "
                "localhost:6379 or start their own; " + FIX_START_REDIS
            )
        else:
            fix = FIX_START_REDIS
        return Check("Redis", "fail", message, fix), None
    return Check("Redis", "ok", printed.getvalue().strip().splitlines()[-1]), client


def check_server_binary(which: Callable[[str], str | None] = shutil.which) -> Check:
    """The binary throwaway servers run (notebooks 03 and 04, the cluster); the benchmark tool is optional."""
    try:
        binary = servers.redis_binary()
    except servers.NoServer as error:
        return Check(
            "server binary", "fail", f"{error} Notebooks 03 and 04 start their own servers", FIX_START_REDIS
        )
    result = f"{binary.label}: notebooks 03 and 04 and the cluster start it"
    if servers.postgres_bin_dir() is None:
        return Check("server binary", "warn", result + f"; no pip PostgreSQL ({servers.PIP_POSTGRES[0]})",
                     f"{servers.SETUP_FIX}; {servers.NO_WHEEL_FIX}")  # fmt: skip
    if not (which("redis-benchmark") or which("valkey-benchmark")):
        return Check("server binary", "ok", result + "; no redis-benchmark (notebook 02 skips its ceiling)")
    return Check("server binary", "ok", result)


def check_sql(url: str | None = None):
    """``(Check, SqlBaseline or None)``: the PostgreSQL the notebooks will measure Redis against."""
    try:
        baseline = connect_sql(url, quiet=True)
    except Exception as error:  # noqa: BLE001 - SqlUnavailable, or a malformed DATABASE_URL
        fix = (
            "correct or unset DATABASE_URL (then the notebooks use localhost:5432 or start the PostgreSQL 18 "
            f"`make setup` installs); {servers.SETUP_FIX}; {servers.NO_WHEEL_FIX}"
        )
        return Check("SQL baseline", "fail", str(error), fix), None
    where = f"{baseline.label} at {redact(baseline.target)} ({baseline.how})"
    return Check("SQL baseline", "ok", where), baseline


def check_docker(needed: bool, engine: Callable[[], bool] = servers.docker_engine_available) -> Check:
    """A Docker engine is optional; ``needed`` says whether it would give something that is missing."""
    if engine():
        return Check("Docker", "ok", "an engine answers (`docker compose up -d --wait` works here)")
    client = shutil.which("docker")
    state = "the docker client is installed but no engine answers" if client else "not installed"
    if not needed:
        return Check("Docker", "ok", f"{state}; not needed: the servers above were found without it")
    fix = (
        "start Docker Desktop (or `sudo systemctl start docker`), then `docker compose up -d --wait`"
        if client
        else "install Docker (Docker Desktop, or Docker Engine on Linux), then "
        "`docker compose up -d --wait`; or install PostgreSQL and set DATABASE_URL"
    )
    return Check("Docker", "warn", state, fix)


def available_memory() -> int | None:
    """Bytes of memory available to new programs, or None when this system does not say.

    Inside a container (Binder, Codespaces, Docker) the machine's free memory is not
    what counts: the container's own limit (cgroup) is, when it is lower.
    """
    available = None
    try:
        import psutil

        available = int(psutil.virtual_memory().available)
    except ImportError:
        meminfo = _read("/proc/meminfo") or ""
        found = re.search(r"^MemAvailable:\s+(\d+) kB", meminfo, re.MULTILINE)
        available = int(found.group(1)) * 1024 if found else None
    for limit_file, usage_file in (
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),  # cgroup v2
        ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"),
    ):
        limit, usage = _read(limit_file), _read(usage_file)
        if limit and usage and limit.strip().isdigit() and int(limit) < 2**60:  # "max" or huge: no limit
            left = max(int(limit) - int(usage), 0)
            available = left if available is None else min(available, left)
            break
    return available


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text()
    except OSError:
        return None


def _size(size: str | None) -> str:
    size = size or settings().size
    if size not in MEMORY_NEEDED:
        raise ValueError(f"size must be one of {tuple(MEMORY_NEEDED)}, got {size!r}")
    return size


def check_memory(available: int | None = None, size: str | None = None) -> Check:
    size = _size(size)
    needed = MEMORY_NEEDED[size]
    available = available_memory() if available is None else available
    close = "close other programs (browsers with many tabs, IDEs, containers you do not need)"
    smaller = "or run at the small size: WORKSHOP_SIZE=ci make lab (the claims are about the workshop size)"
    if available is None:
        return Check(
            "memory",
            "warn",
            "this system does not say how much memory is free",
            f"make sure about {needed / GiB:.1f} GiB is free: {close}",
        )
    result = f"{available / GiB:.1f} GiB available; {size} size needs about {needed / GiB:.2g} GiB"
    if available < needed:
        return Check("memory", "fail", result, f"{close}, {smaller}")
    if available < 2 * needed:
        return Check("memory", "warn", result + " (little to spare)", close)
    return Check("memory", "ok", result)


def check_redis_memory(client, size: str | None = None) -> Check:
    size = _size(size)
    needed = REDIS_MEMORY_NEEDED[size]
    info = client.info("memory")
    limit, policy = int(info.get("maxmemory", 0)), info.get("maxmemory_policy", "noeviction")
    if limit == 0:
        return Check(
            "Redis memory",
            "ok",
            f"no maxmemory limit ({size} size puts about {needed // MiB} MiB in Redis at its peak)",
        )
    result = f"maxmemory {limit / MiB:,.0f} MiB, policy {policy}; {size} size needs about {needed // MiB} MiB"
    if limit < needed:
        effect = "writes fail with OOM" if policy == "noeviction" else "keys are evicted and results go wrong"
        return Check(
            "Redis memory",
            "fail",
            f"{result}: {effect}",
            f"raise it: `CONFIG SET maxmemory {needed // MiB}mb` (or 0 for no limit), "
            "or use the workshop's `docker compose up -d --wait`",
        )
    return Check("Redis memory", "ok", result)


# --- the benchmark ----------------------------------------------------------------------------


def judge(name: str, measured: float, claim: Claim, fix: str) -> Check:
    """One benchmark figure against its claim: ``ok`` if it meets the bound, else ``warn``."""
    result = f"{_number(measured)} {claim.unit} (notebook {claim.notebook}: {claim.text} {claim.target})"
    if claim.met(measured):
        return Check(name, "ok", result)
    return Check(name, "warn", result + ": NOT met here", fix)


def _number(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def benchmark(client, baseline: SqlBaseline | None, *, config: Settings | None = None, progress: bool = True):
    """Time the operations behind the claims (about ten seconds at workshop size); one Check each."""
    from helpers.baselines.leaderboard import ScoresTable
    from helpers.bench.leaderboard import make_scores
    from helpers.bench.workload import make_events
    from helpers.leaderboard import Leaderboard
    from helpers.ratelimit import RateLimiter
    from helpers.streams import EventLog, Worker, ensure_group

    config = config or settings()
    rng = np.random.default_rng(7)
    board, log = Leaderboard(client, "doctor"), EventLog(client, "doctor")
    limiter = RateLimiter(client, limit=bounds.MAX_LOG_LIMIT, period_s=60, name="doctor")  # never denies here
    table = ScoresTable(baseline, "doctor_scores") if baseline is not None else None
    figures: dict[str, float] = {}
    bar = tqdm(total=6, desc="benchmark", unit=" step", disable=not progress, leave=False, file=sys.stderr)
    try:
        board.delete()
        scores = make_scores(config.doctor_board)
        started = time.perf_counter()
        board.add_many(scores, progress=False)
        figures["bulk load"] = timing.rate(len(scores), time.perf_counter() - started)
        bar.update()

        players = rng.choice(list(scores), size=config.doctor_rank_calls).tolist()
        ranks = timing.summarize(timing.time_calls(lambda p: client.zrevrank(board.key, p), players))
        figures["ZREVRANK p99"] = ranks["p99_ms"]
        bar.update()

        log.delete()
        events = make_events(config.doctor_events)
        started = time.perf_counter()
        log.append_many(events, chunk=1_000)
        figures["append"] = timing.rate(len(events), time.perf_counter() - started)
        bar.update()

        ensure_group(client, log.key, "doctor", "0")
        worker = Worker(log, "doctor", "doctor-1", lambda entry_id, fields: None, batch=1_000, block_ms=10)
        started = time.perf_counter()
        stats = worker.run(until_idle=True)
        figures["consume"] = timing.rate(stats.handled, time.perf_counter() - started)
        bar.update()

        decisions = timing.time_calls(lambda i: limiter.hit("bench"), range(config.doctor_decisions))
        figures["decision p99"] = timing.summarize(decisions)["p99_ms"]
        bar.update()

        if table is not None:
            sql_scores = dict(list(scores.items())[: config.doctor_sql_rows])
            table.create(sql_scores, progress=False)
            table.add_score_index()
            sql_players = rng.choice(list(sql_scores), size=config.doctor_sql_calls).tolist()
            sql_ranks = timing.summarize(timing.time_calls(table.rank, sql_players, warmup=3))
            figures["SQL rank gap at 100,000"] = (
                sql_ranks["p50_ms"] / ranks["p50_ms"]
            )  # medians: steadier than p99s
        bar.update()
    finally:
        bar.close()
        board.delete()
        log.delete()
        limiter.reset("bench")
        if table is not None:
            table.drop()
    checks = []
    for name, figure in figures.items():
        if name == "SQL rank gap at 100,000" and config.doctor_sql_rows < 100_000:  # too small to judge
            result = (
                f"{figure:,.1f}x at {config.doctor_sql_rows:,} rows (judged from 100,000 rows, workshop size)"
            )
            checks.append(Check(name, "ok", result))
        else:
            checks.append(judge(name, figure, CLAIMS[name], FIXES[name]))
    return checks


# --- the report -------------------------------------------------------------------------------


def run(*, quick: bool = False, progress: bool = True) -> list[Check]:
    """Every check, in the order of the report."""
    checks = [check_python(), check_packages()]
    redis_check, client = check_redis()
    sql_check, baseline = check_sql()
    docker_needed = client is None or baseline is None
    checks += [redis_check, check_server_binary(), sql_check, check_docker(docker_needed), check_memory()]
    if client is not None:
        checks.append(check_redis_memory(client))
        if not quick:
            try:
                checks += benchmark(client, baseline, progress=progress)
            except Exception as error:  # noqa: BLE001 - reported with the rest, not as a traceback
                fix = "the server refused or dropped a request: fix the fail lines above, then run it again"
                said = str(error) if len(str(error)) < 200 else f"{str(error)[:80]} ... {str(error)[-100:]}"
                checks.append(Check("benchmark", "fail", f"stopped: {type(error).__name__}: {said}", fix))
    return checks


def report(checks: list[Check]) -> str:
    width = max(len(check.name) for check in checks) + 2
    lines = [f"{'':2}{'status':<7}{'check':<{width}}result"]
    given: dict[str, str] = {}  # a fix already printed, by the check it was printed under
    for check in checks:
        lines.append(f"{'':2}{check.status:<7}{check.name:<{width}}{check.result}")
        if check.fix:
            pad = " " * (9 + width)
            advice = (
                f"how to fix: as for {given[check.fix]}, above"
                if check.fix in given
                else f"how to fix: {check.fix}"
            )
            given.setdefault(check.fix, check.name)
            # whole words only: a command is never cut in two (a long one runs past the margin instead)
            lines.append(textwrap.fill(advice, 110, initial_indent=pad, subsequent_indent=pad,
                                       break_long_words=False, break_on_hyphens=False))  # fmt: skip
    counts = {status: sum(c.status == status for c in checks) for status in STATUSES}
    verdict = (
        "not ready: fix the fail lines above"
        if counts["fail"]
        else "ready" + (" (read the warn lines above)" if counts["warn"] else "")
    )
    lines.append(f"\n{counts['ok']} ok, {counts['warn']} warn, {counts['fail']} fail: {verdict}")
    return "\n".join(lines)


def _found(what: str, find) -> bool:
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed):
            found = find()
    except servers.SetupError as error:
        print(f"✗ {what}: {error}")
        return False
    line = printed.getvalue().strip().splitlines()[-1]
    if "(throwaway" in line:
        line += "; each notebook starts its own like it"
    print(f"✓ {line}")
    found.close()
    return True


def check_servers() -> int:
    """``make lab``'s first step: the Redis and PostgreSQL the notebooks will use, one line each."""
    print(f"workshop size: {settings().size} (WORKSHOP_SIZE=workshop|ci)")
    ok = _found("Redis", connection.connect) & _found("PostgreSQL", connect_sql)
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m helpers.course.doctor", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--quick", action="store_true", help="skip the ten-second benchmark")
    parser.add_argument(
        "--servers", action="store_true", help="only find the Redis and PostgreSQL (make lab)"
    )
    options = parser.parse_args(argv)
    if options.servers:
        return check_servers()
    size = settings().size
    print(
        f"Pre-flight check (WORKSHOP_SIZE={size}; `make doctor` runs it)"
        + ("" if options.quick else ", with a benchmark of about ten seconds")
        + "\n",
        flush=True,
    )
    checks = run(quick=options.quick)
    print(report(checks))
    return 1 if any(check.status == "fail" for check in checks) else 0


if __name__ == "__main__":
    sys.exit(main())
