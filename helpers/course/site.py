"""``python -m helpers.course.site SOURCES`` (``make html``): the notebooks as static pages, and an index.

Each notebook in ``SOURCES`` (``notebooks/``, committed executed at workshop
size; or ``site/executed/`` after ``make html EXECUTE=1``) becomes ``site/<name>.html``
with its outputs and plots, and needs no network to show them (template
``templates/offline``: no require.js, MathJax, Mermaid or widget manager from a
CDN). The exercises' solution cells (tagged ``solution``) and the widgets (their
buttons, the progress bars) are left out: the page is for reading before the
workshop, and a solution is for when the learner asks. ``site/index.html`` lists the notebooks with the
first paragraph of each.
"""

from __future__ import annotations

import datetime
import html
import sys
from pathlib import Path

import nbformat
from nbconvert import HTMLExporter
from nbconvert.preprocessors import TagRemovePreprocessor

SITE = Path("site")
HIDDEN_TAGS = {"solution"}
TEMPLATES = Path(__file__).with_name("templates")  # offline/: the lab page without CDN scripts
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def page(notebook: Path) -> str:
    """The notebook as one HTML page that needs no network: solution cells and widgets left out."""
    node = nbformat.read(notebook, as_version=4)
    _drop_widgets(node)
    exporter = HTMLExporter(template_name="offline", extra_template_basedirs=[str(TEMPLATES)])
    exporter.register_preprocessor(
        TagRemovePreprocessor(remove_cell_tags=HIDDEN_TAGS, enabled=True), enabled=True
    )
    body, _ = exporter.from_notebook_node(node)
    return body


def _drop_widgets(node) -> None:
    """Widgets out: a static page has no kernel behind its buttons, and a finished progress bar says
    nothing. Their outputs go, and so does the saved widget state (which would fetch a widget
    manager from a CDN to draw them)."""
    for cell in node.cells:
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.outputs if WIDGET_VIEW not in o.get("data", {})]
    node.metadata.pop("widgets", None)


def index(sources: Path, pages: list[Path]) -> str:
    items = []
    for built in pages:
        notebook = nbformat.read(sources / (built.stem + ".ipynb"), as_version=4)
        intro = next(cell.source for cell in notebook.cells if cell.cell_type == "markdown")
        title, _, rest = intro.partition("\n")
        summary = rest.strip().split("\n\n")[0].replace("*", "").replace("`", "").replace("\n", " ")
        link = f'<a href="{built.name}">{html.escape(title.lstrip("# "))}</a>'
        items.append(f"<li>{link}<p>{html.escape(summary)}</p></li>")
    how = "executed again for this site" if sources.name == "executed" else "as committed to the repository"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Redis Beyond Cache: the notebooks</title>
<style>body {{ font-family: sans-serif; max-width: 46em; margin: 2em auto; line-height: 1.5 }}
li {{ margin-bottom: 1em }} p {{ margin: 0.2em 0 }}</style></head><body>
<h1>Redis Beyond Cache: the notebooks, executed</h1>
<p>Each notebook with its outputs and plots, executed at workshop size (boards up to 1,000,000 players)
on one machine, {how}. The figures come from that machine; yours will differ, and the ratios measured
side by side are what travel. The exercises' solutions are not on these pages: run the notebook
(<code>make lab</code>) and ask for one there.</p>
<ol>{"".join(items)}</ol>
<p><small>Built {datetime.date.today().isoformat()} by <code>make html</code>.</small></p>
</body></html>
"""


def main(argv: list[str]) -> int:
    if len(argv) != 1 or not Path(argv[0]).is_dir():
        print(__doc__.strip())
        return 2
    sources = Path(argv[0])
    SITE.mkdir(exist_ok=True)
    pages = []
    for notebook in sorted(sources.glob("[0-9]*.ipynb")):
        built = SITE / f"{notebook.stem}.html"
        built.write_text(page(notebook))
        pages.append(built)
        print(f"{built} (solutions left out)")
    (SITE / "index.html").write_text(index(sources, pages))
    print(f"site/index.html lists {len(pages)} notebooks")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
