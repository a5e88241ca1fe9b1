"""helpers.course.durations: a notebook's stated time agrees with what its content takes.

The revised notebooks (``REVISED``; the others join as their revision lands) must state,
in their first cell, in the README's table and in the instructor's guide, a time within
20 % of the estimate computed from the notebook itself.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from helpers.course import durations

ROOT = Path(__file__).resolve().parents[2]
REVISED = [
    "01_leaderboard",
    "02_streams",
    "03_rate_limiter",
    "04_durability_and_memory",
    "05_security_and_scaling_out",
]
TOLERANCE = 0.20


def write(tmp_path: Path, cells) -> Path:
    path = tmp_path / "99_test.ipynb"
    nbformat.write(new_notebook(cells=cells), path)
    return path


def timed(source: str, seconds: float):
    cell = new_code_cell(source)
    cell.metadata["execution"] = {
        "iopub.execute_input": "2026-12-01T10:00:00.000000Z",
        "shell.execute_reply": f"2026-12-01T10:00:{seconds:09.6f}Z",
    }
    return cell


def test_the_estimate_adds_prose_code_cells_run_time_and_exercises(tmp_path):
    path = write(tmp_path, [
        new_markdown_cell("# 99 · A test\n\nAbout 30 minutes. " + "word " * 196),  # 204 words
        new_markdown_cell("## 1 · First\n\n" + "word " * 396),  # 400 words: 2 min
        timed("x " * 100, 30.0),  # 100 code words: 1 min; a cell: 10 s; runs 30 s
        new_markdown_cell("### Your turn 1 · Try\n\nAbout 5 minutes."),
    ])  # fmt: skip
    intro, first = durations.parts(path)
    assert intro.title == "intro" and intro.prose == pytest.approx(204 / 200)
    assert first.title == "1 · First"
    assert first.code == pytest.approx(1.0) and first.cells == pytest.approx(10 / 60)
    assert first.run == pytest.approx(0.5) and first.exercises == 5
    assert durations.estimate(path) == pytest.approx(204 / 200 + 2.0 + 9 / 200 + 1.0 + 10 / 60 + 0.5 + 5)
    assert durations.stated(path) == 30


def test_a_notebook_that_states_no_time_is_an_error_naming_it(tmp_path):
    path = write(tmp_path, [new_markdown_cell("# 99 · No time given")])
    with pytest.raises(ValueError, match="99_test.ipynb: the first cell says no 'About N minutes'"):
        durations.stated(path)


@pytest.mark.parametrize("name", REVISED)
def test_the_stated_time_is_within_twenty_percent_of_the_estimate(name):
    path = ROOT / "notebooks" / f"{name}.ipynb"
    stated, estimate = durations.stated(path), durations.estimate(path)
    assert abs(stated - estimate) <= TOLERANCE * estimate, (
        f"{name} says {stated} min; its content takes about {estimate:.0f} "
        "(python -m helpers.course.durations shows the parts)"
    )


@pytest.mark.parametrize("name", REVISED)
def test_the_readme_and_the_instructors_guide_state_the_same_time(name):
    stated = durations.stated(ROOT / "notebooks" / f"{name}.ipynb")
    number = name[:2]
    readme = (ROOT / "README.md").read_text()
    row = next(line for line in readme.splitlines() if line.startswith(f"| [`{name}.ipynb`]"))
    assert row.endswith(f"| {stated} min |"), row[-40:]
    guide = (ROOT / "docs" / "instructor.md").read_text()
    assert re.search(rf"^## Notebook {number} · .*\({stated} min\)$", guide, re.M), (
        f"guide heading of {number}"
    )
    assert re.search(rf"^\| notebook {number} \| .* \| {stated} min \|$", guide, re.M), (
        f"guide day table, {number}"
    )


@pytest.mark.parametrize("name", REVISED)
def test_the_first_cells_parts_add_up_to_the_stated_time(name):
    path = ROOT / "notebooks" / f"{name}.ipynb"
    first = nbformat.read(path, as_version=4).cells[0].source
    minutes = [int(m) for m in re.findall(r"\| (\d+) min \|$", first, re.M)]
    assert minutes, "the first cell has a table of parts with their minutes"
    assert abs(sum(minutes) - durations.stated(path)) <= 5, (minutes, durations.stated(path))
