"""A JupyterLab started as ``make lab`` starts it, and Debian's Chromium to look at it.

Used by the browser tests (``make test-browser``, ``tests/browser``) and by the slide
fitter (``python -m helpers.course.slides``). The lab runs on a copy of the notebooks
(nothing the browser does can change the committed files), with every cell kept in
the page (``windowingMode: none``), autosave off and no news prompt.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import port_for

INSTALL = "apt-get install -y chromium"
CONFIG = Path(__file__).with_name("jupyter_server_config.py")  # what make lab passes as --config
VIEWPORT = {"width": 1280, "height": 800}
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
    "@jupyterlab/docmanager-extension/plugin": {"autosave": False},
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false"},
}


class BrowserMissing(RuntimeError):
    """Debian's Chromium is not installed and this process cannot install it."""


def chromium() -> str:
    """Debian's Chromium, installed with apt-get when this runs as root and it is missing.

    Playwright's own browsers are never downloaded: the course uses what the system packages.
    """
    found = shutil.which("chromium")
    if not found and os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(INSTALL.split(), check=True, capture_output=True)
        found = shutil.which("chromium")
    if not found:
        raise BrowserMissing(f"this needs Debian's Chromium: run `sudo {INSTALL}`")
    return found


@contextmanager
def lab(notebooks: Path, work: Path, size: str = "ci") -> Iterator[tuple[str, str]]:
    """``(base url, token)`` of a JupyterLab on a copy of ``notebooks`` made under ``work``."""
    copy = work / "notebooks"
    shutil.copytree(notebooks, copy, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    settings = work / "settings"
    for plugin, values in LAB_SETTINGS.items():
        path = settings / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    port, token = port_for.select_random(), secrets.token_hex(16)
    command = [str(Path(sys.executable).with_name("jupyter")), "lab"]
    command += ["--allow-root"] if os.geteuid() == 0 else []
    command += [f"--config={CONFIG}", f"--notebook-dir={copy}", f"--port={port}", "--no-browser"]
    command += [f"--IdentityProvider.token={token}"]
    environment = os.environ | {
        "WORKSHOP_SIZE": size,
        "JUPYTERLAB_SETTINGS_DIR": str(settings),
        "JUPYTERLAB_WORKSPACES_DIR": str(work / "workspaces"),  # not the user's open tabs
    }
    log_path = work / "lab.log"
    with log_path.open("w") as log:
        server = subprocess.Popen(command, env=environment, stdout=log, stderr=subprocess.STDOUT)
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 60
            while True:
                try:
                    urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
                    break
                except OSError:
                    if time.monotonic() > deadline or server.poll() is not None:
                        raise RuntimeError(f"JupyterLab did not start: see {log_path}") from None
                    time.sleep(0.5)
            yield base, token
        finally:
            server.terminate()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
