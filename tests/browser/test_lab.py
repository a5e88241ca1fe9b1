"""What a learner sees in JupyterLab, checked in a real Chromium (``make test-browser``).

JupyterLab is started as ``make lab`` starts it (a token, a free port, no browser of its
own) on a copy of ``notebooks/`` (so nothing the browser does can change the committed
files), with every cell kept in the page (``windowingMode: none``) and autosave off.
Each notebook is run through the UI (Edit > Clear Outputs of All Cells, Run > Run All
Cells) at the CI size, then checked in the page; then shown as a RISE slideshow at
1280x800; then ``make html``'s pages are opened with the network cut off.

Screenshots (each notebook's first screen, and every failing check) go to
``.workshop/browser/`` (git-ignored); their paths are printed.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import port_for
import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
SHOTS = ROOT / ".workshop" / "browser"
VIEWPORT = {"width": 1280, "height": 800}
RUN_TIMEOUT_S = 600
INSTALL = "apt-get install -y chromium"


def chromium() -> str:
    """Debian's Chromium, installed when this runs as root and it is missing; never a downloaded browser."""
    found = shutil.which("chromium")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(INSTALL.split(), check=True, capture_output=True)
        found = shutil.which("chromium")
        if found:
            return found
    pytest.fail(
        f"the browser tests need Debian's Chromium: run `sudo {INSTALL}` (Playwright's own is not used)"
    )


def shot(page, name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path))
    print(f"screenshot: {path}")
    return path


@pytest.fixture(scope="session")
def lab(tmp_path_factory):
    """``(base url, token)`` of a JupyterLab on a copy of notebooks/, started like ``make lab``."""
    work = tmp_path_factory.mktemp("lab")
    shutil.copytree(
        ROOT / "notebooks", work / "notebooks", ignore=shutil.ignore_patterns(".ipynb_checkpoints")
    )
    settings = work / "settings"
    for plugin, values in {
        "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
        "@jupyterlab/docmanager-extension/plugin": {"autosave": False},
        "@jupyterlab/apputils-extension/notification": {"fetchNews": "false"},
    }.items():
        path = settings / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    port, token = port_for.select_random(), secrets.token_hex(16)
    command = [str(Path(sys.executable).with_name("jupyter")), "lab"]
    command += ["--allow-root"] if os.geteuid() == 0 else []
    command += [f"--notebook-dir={work / 'notebooks'}", f"--port={port}", "--no-browser"]
    command += [f"--IdentityProvider.token={token}"]
    environment = os.environ | {"WORKSHOP_SIZE": "ci", "JUPYTERLAB_SETTINGS_DIR": str(settings)}
    log = (work / "lab.log").open("w")
    server = subprocess.Popen(command, env=environment, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
            break
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                server.kill()
                pytest.fail(f"JupyterLab did not start: see {work / 'lab.log'}")
            time.sleep(0.5)
    yield base, token
    server.terminate()
    server.wait(timeout=30)
    log.close()


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    path = chromium()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=path, headless=True, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport=VIEWPORT)
    opened = context.new_page()
    opened.console_errors = []
    opened.on("console", lambda m: opened.console_errors.append(m.text[:300]) if m.type == "error" else None)
    opened.on("pageerror", lambda error: opened.console_errors.append(str(error)[:300]))
    opened.on(
        "response",
        lambda r: opened.console_errors.append(f"HTTP {r.status} {r.url}") if r.status >= 400 else None,
    )
    yield opened
    context.close()


def _menu(page, menu: str, command: str) -> None:
    page.locator(".lm-MenuBar-item", has_text=menu).first.click()
    page.locator(f"li[data-command='{command}']").click()


def _expected(path: Path) -> dict:
    """What the committed notebook says the page must show: plots, solution cells, progress bars."""
    cells = [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
    return {
        "code": len(cells),
        "plots": [i for i, c in enumerate(cells) if any("image/png" in o.get("data", {}) for o in c.outputs)],
        "solutions": [i for i, c in enumerate(cells) if "solution" in c.metadata.get("tags", [])],
        "sql": "connect_sql" in cells[0].source,
        "progress": any(
            "application/vnd.jupyter.widget-view+json" in o.get("data", {})
            and "%|" in o["data"].get("text/plain", "")
            for c in cells
            for o in c.outputs
        ),
    }


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_run_all_in_jupyterlab_shows_what_a_learner_should_see(lab, page, path):
    base, token = lab
    expected = _expected(path)
    page.goto(f"{base}/lab/tree/{path.name}?reset&token={token}")  # reset: no tab of an earlier test
    page.wait_for_function(
        f"document.querySelectorAll('.jp-Notebook .jp-CodeCell').length >= {expected['code']}", timeout=90_000
    )
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=90_000)
    shot(page, f"{path.stem}-first-screen")
    _menu(page, "Edit", "editmenu:clear-all")
    _menu(page, "Run", "runmenu:run-all")
    prompts = page.locator(".jp-Notebook .jp-CodeCell .jp-InputArea-prompt")
    progress_seen, started = False, time.monotonic()
    while time.monotonic() - started < RUN_TIMEOUT_S:
        progress_seen = progress_seen or page.locator(".widget-hprogress, .widget-progress").count() > 0
        texts = prompts.all_inner_texts()
        idle = page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").count() > 0
        if idle and texts and all(re.fullmatch(r"\[\d+\]:", t.strip()) for t in texts):
            break
        time.sleep(0.25)
    else:
        shot(page, f"{path.stem}-timed-out")
        pytest.fail(f"{path.name}: Run All did not finish in {RUN_TIMEOUT_S} s")
    cells = page.locator(".jp-Notebook .jp-CodeCell")
    problems = []
    for index in range(cells.count()):
        cell = cells.nth(index)
        kinds = cell.locator(".jp-OutputArea-output").evaluate_all(
            "els => els.map(e => e.getAttribute('data-mime-type') || '')"
        )
        text = cell.locator(".jp-Cell-outputArea").inner_text()
        if "application/vnd.jupyter.error" in kinds or "Traceback" in text:
            problems.append(f"cell {index}: an error output")
        shown = [k for k in kinds if k]
        if shown and all(k == "application/vnd.jupyter.stderr" for k in shown):
            problems.append(f"cell {index}: only stderr output: {text[:120]!r}")
        if "notebooks/solutions/" in text or (index in expected["solutions"] and "def " in text):
            problems.append(f"cell {index}: a solution was shown before it was asked for")
        if (
            index in expected["solutions"]
            and cell.locator("button", has_text="Show the solution").count() != 1
        ):
            problems.append(f"cell {index}: no 'Show the solution' button")
        if index in expected["plots"] and cell.locator(".jp-OutputArea-output img").count() == 0:
            problems.append(f"cell {index}: the plot is not shown as an image")
        if re.search(r"\d+%\|", text) and "application/vnd.jupyter.stderr" in kinds:
            problems.append(f"cell {index}: a text progress bar on stderr")
    first = cells.nth(0).locator(".jp-Cell-outputArea").inner_text()
    if not re.search(r"\b(Redis|Valkey) \d", first):
        problems.append(f"the first cell does not say which Redis it uses: {first[:200]!r}")
    if expected["sql"] and "PostgreSQL" not in first:
        problems.append(f"the first cell does not say which PostgreSQL it uses: {first[:200]!r}")
    if expected["progress"] and not progress_seen:
        problems.append("no progress bar was shown as a widget during the run")
    if problems:
        shot(page, f"{path.stem}-failed")
    assert not problems, f"{path.name}:\n" + "\n".join(problems)
    if expected["solutions"]:  # asked for, a solution is shown, loaded and checked
        cell = cells.nth(expected["solutions"][0])
        cell.locator("button", has_text="Show the solution").click()
        cell.locator(".jp-Cell-outputArea", has_text="notebooks/solutions/").wait_for(timeout=60_000)
        cell.locator(".jp-Cell-outputArea", has_text="✓").wait_for(timeout=60_000)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_the_slideshow_fits_the_screen_and_the_console_stays_clean(lab, page, path):
    base, token = lab
    page.goto(f"{base}/rise/{path.name}?token={token}")
    page.wait_for_selector(".reveal .slides section", timeout=90_000)
    time.sleep(3)  # RISE lays the slides out after the notebook renders
    seen, tall = [], []
    for _ in range(1_000):
        where, height = page.evaluate(
            """() => { const s = document.querySelector('.reveal .slides section.present:not(.stack)')
                 || document.querySelector('.reveal .slides section.present');
               return [location.hash, s ? s.scrollHeight : 0]; }"""
        )
        if height > VIEWPORT["height"] and where not in {t[0] for t in tall}:
            tall.append((where, height))
            shot(page, f"{path.stem}-slide-{where.strip('#/').replace('/', '-')}-too-tall")
        seen.append(where)
        if len(seen) > 3 and len(set(seen[-3:])) == 1:
            break
        page.keyboard.press("Space")
        time.sleep(0.1)
    problems = [
        f"slide {where} is {height} px tall in a {VIEWPORT['height']} px screen" for where, height in tall
    ]
    problems += [f"console: {error}" for error in page.console_errors]
    assert not problems, f"{path.name}:\n" + "\n".join(problems)


def test_the_static_site_renders_offline_with_no_solution(page, tmp_path):
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "helpers.course.site", str(ROOT / "notebooks")], cwd=tmp_path, check=True
    )
    outside = []

    def only_local(route):
        if route.request.url.startswith("file://"):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    page.route("**/*", only_local)
    for built in sorted(site.glob("*.html")):
        page.goto(built.as_uri())
        page.wait_for_load_state("load")
        assert page.title(), built.name
        text = page.locator("body").inner_text()
        assert "Show the solution" not in text and "notebooks/solutions/" not in text, built.name
    assert not outside, f"the site needs the internet: {sorted(set(outside))}"
    assert not page.console_errors, page.console_errors
