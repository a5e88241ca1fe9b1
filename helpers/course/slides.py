"""``python -m helpers.course.slides [NOTEBOOK ...]`` (``make fit-slides``): slides that fit the screen.

A RISE slide holds the cells from one ``slide`` or ``subslide`` cell to the next. Each
notebook is opened as a slideshow at 1280x800 in Debian's Chromium with every slide
shown at once, each cell's height is measured (``notebooks/rise.css`` already caps long
outputs, plots and code), and a subslide break is added wherever a slide would be
taller than ``BUDGET_PX``: at the last markdown cell of the part that fits once that
part is a third full (a slide then starts with its prose), else at the cell that does
not fit. Only the cells' ``slideshow`` metadata changes; outputs are kept. Run it
after changing a notebook; ``make test-browser`` checks every slide.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import nbformat

from helpers.course.browser import VIEWPORT, chromium, lab

NOTEBOOKS = Path("notebooks")
BUDGET_PX = 680  # of the 800 px a slide has: room for the navigation arrows and a little air
STARTS = {"slide", "subslide"}
SHOW_EVERY_SLIDE = """
.reveal .slides section, .reveal .slides section.stack {
  display: block !important; position: relative !important; top: auto !important; transform: none !important;
}
.reveal .slides .fragment { opacity: 1 !important; visibility: visible !important; }
"""


def slide_type(cell) -> str:
    return cell.metadata.get("slideshow", {}).get("slide_type", "-")


def new_breaks(kinds: list[str], markdown: list[bool], heights: list[float], budget: float) -> list[int]:
    """Indexes of the cells that must start a subslide so that no slide is taller than ``budget``.

    ``kinds`` are the cells' slide types, ``markdown`` whether each is a markdown cell,
    ``heights`` their measured heights. A single cell taller than ``budget`` gets a slide
    of its own (it cannot be split).
    """
    if not len(kinds) == len(markdown) == len(heights):
        raise ValueError(f"{len(kinds)} kinds, {len(markdown)} markdown flags, {len(heights)} heights")
    added, start = [], 0
    for index, kind in enumerate(kinds):
        if index == 0 or kind in STARTS:
            start = index
            continue
        while index > start and sum(heights[start : index + 1]) > budget:
            filled, cut = heights[start], index
            for candidate in range(start + 1, index + 1):
                if markdown[candidate] and filled >= budget / 3:
                    cut = candidate
                filled += heights[candidate]
            added.append(cut)
            start = cut
    return added


def measure(page, base: str, token: str, name: str) -> list[float]:
    """The height of each cell of notebook ``name`` in its slideshow, every slide shown."""
    page.goto(f"{base}/rise/{name}?token={token}")
    page.wait_for_selector(".reveal .slides section", timeout=90_000)
    time.sleep(3)  # RISE lays the slides out after the notebook renders
    page.add_style_tag(content=SHOW_EVERY_SLIDE)
    time.sleep(0.5)
    return page.evaluate(
        """() => [...document.querySelectorAll('.reveal .slides .jp-Cell')].map(cell => {
             const style = getComputedStyle(cell);
             const margins = parseFloat(style.marginTop) + parseFloat(style.marginBottom);
             return cell.getBoundingClientRect().height + margins;
           })"""
    )


def fit(paths: list[Path]) -> dict[str, list[int]]:
    """Add the subslide breaks each notebook needs; returns the new breaks by notebook."""
    from playwright.sync_api import sync_playwright

    folder = paths[0].resolve().parent
    if any(path.resolve().parent != folder for path in paths):
        raise ValueError(
            "fit notebooks of one folder at a time (RISE styles them with that folder's rise.css)"
        )
    changes = {}
    with tempfile.TemporaryDirectory() as work, lab(folder, Path(work)) as (base, token):
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=chromium(), headless=True, args=["--no-sandbox"]
            )
            for path in paths:
                book = nbformat.read(path, as_version=4)
                context = browser.new_context(viewport=VIEWPORT)
                heights = measure(context.new_page(), base, token, path.name)
                context.close()
                if len(heights) != len(book.cells):
                    raise RuntimeError(
                        f"{path.name}: {len(book.cells)} cells, {len(heights)} shown as slides"
                    )
                kinds = [slide_type(cell) for cell in book.cells]
                markdown = [cell.cell_type == "markdown" for cell in book.cells]
                added = new_breaks(kinds, markdown, heights, BUDGET_PX)
                for index, height in enumerate(heights):
                    if height > BUDGET_PX:
                        print(f"{path.name}: cell {index} alone is {height:.0f} px, more than a slide's "
                              f"{BUDGET_PX}: shorten it or cap it in rise.css", file=sys.stderr)  # fmt: skip
                for index in added:
                    book.cells[index].metadata.setdefault("slideshow", {})["slide_type"] = "subslide"
                if added:
                    nbformat.write(book, path)
                changes[path.name] = added
            browser.close()
    return changes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: every numbered notebook")
    arguments = parser.parse_args(argv)
    paths = arguments.notebooks or sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    for name, added in fit(paths).items():
        print(f"{name}: " + (f"new subslides at cells {added}" if added else "every slide fits"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
