"""The repository keeps its promises: executed notebooks, safe docker-compose, no FLUSH."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
import yaml

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


def test_no_code_flushes_a_whole_database():
    """Clean-up goes by prefix; FLUSHDB/FLUSHALL would take the learner's data with it."""
    call = re.compile(r"\.flush(db|all)\s*\(|['\"]flush(db|all)['\"]", re.IGNORECASE)
    sources = [*ROOT.glob("helpers/*.py"), *ROOT.glob("lua/*.lua"), *NOTEBOOKS]
    offenders = [path.name for path in sources if call.search(_code(path))]
    assert offenders == []


def test_docker_compose_gives_redis_with_aof_and_postgres_on_loopback_with_health_checks():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) >= {"redis", "postgres"}
    assert services["redis"]["image"].startswith("redis:7")
    assert "--appendonly" in services["redis"]["command"]
    assert any(v.endswith(":/data") for v in services["redis"]["volumes"])
    for name, service in services.items():
        for port in service["ports"]:
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"
        assert service["healthcheck"]["test"], f"{name} has no health check"
