"""``python -m helpers.course.durations [NOTEBOOK ...]``: how long a notebook really takes, from its content.

A learner reads the prose (about 200 words a minute), reads the code more slowly (about 100
words a minute), runs each code cell and looks at what it printed (about 10 seconds a cell),
waits for the cells themselves (their run time as committed, at workshop size, from each
cell's execution timestamps) and does the exercises (the time each ``### Your turn`` cell
states, "About N minutes"). The estimate is the sum, per section (``## N · ...``) and in
all; the stated time is the "About N minutes" of the notebook's first cell. The README, the
instructor's guide and the first cell must agree with it (``tests/course/test_durations.py``).
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import nbformat

PROSE_WORDS_PER_MIN = 200
CODE_WORDS_PER_MIN = 100
SECONDS_PER_CODE_CELL = 10
STATED = re.compile(r"About (\d+) minutes")
SECTION = re.compile(r"^## (\d+) · ")


@dataclass
class Part:
    """One section's minutes, by what takes them."""

    title: str
    prose: float = 0.0
    code: float = 0.0
    cells: float = 0.0
    run: float = 0.0
    exercises: float = 0.0

    @property
    def minutes(self) -> float:
        return self.prose + self.code + self.cells + self.run + self.exercises


def _seconds(execution: dict) -> float:
    try:
        started = datetime.fromisoformat(execution["iopub.execute_input"].replace("Z", "+00:00"))
        ended = datetime.fromisoformat(execution["shell.execute_reply"].replace("Z", "+00:00"))
    except KeyError:
        return 0.0
    return max(0.0, (ended - started).total_seconds())


def parts(path: Path) -> list[Part]:
    """The notebook's sections in order (what comes before the first ``## N ·`` is part "intro")."""
    found = [Part("intro")]
    for cell in nbformat.read(path, as_version=4).cells:
        words = len(cell.source.split())
        if cell.cell_type == "markdown":
            heading = SECTION.match(cell.source)
            if heading:
                found.append(Part(cell.source.splitlines()[0].removeprefix("## ")))
            found[-1].prose += words / PROSE_WORDS_PER_MIN
            if cell.source.startswith("### Your turn"):
                found[-1].exercises += sum(int(m) for m in STATED.findall(cell.source))
        elif cell.cell_type == "code":
            found[-1].code += words / CODE_WORDS_PER_MIN
            found[-1].cells += SECONDS_PER_CODE_CELL / 60
            found[-1].run += _seconds(cell.metadata.get("execution", {})) / 60
    return found


def estimate(path: Path) -> float:
    """Minutes the notebook takes a learner, all parts together."""
    return sum(part.minutes for part in parts(path))


def stated(path: Path) -> int:
    """The "About N minutes" of the notebook's first cell."""
    first = nbformat.read(path, as_version=4).cells[0].source
    found = STATED.search(first)
    if not found:
        raise ValueError(f"{path.name}: the first cell says no 'About N minutes'")
    return int(found.group(1))


def main(argv: list[str] | None = None) -> int:
    paths = [Path(a) for a in (argv if argv is not None else sys.argv[1:])]
    for path in paths or sorted(Path("notebooks").glob("[0-9][0-9]_*.ipynb")):
        print(f"{path.name}: stated {stated(path)} min, estimated {estimate(path):.0f} min")
        for part in parts(path):
            print(
                f"  {part.title[:48]:<48} {part.minutes:5.1f} min (prose {part.prose:.1f}, "
                f"code {part.code:.1f}, cells {part.cells:.1f}, run {part.run:.1f}, "
                f"exercises {part.exercises:.0f})"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
