"""The workshop's JupyterLab configuration: ``jupyter lab --config=<this file>``.

``make lab``, ``make slides`` and the browser tests pass it. One setting:

RISE's slideshow page (``/rise/<notebook>``, RISE 0.43.1, built on JupyterLab 4.3)
loads every JupyterLab extension installed. The widgets one (jupyterlab_widgets 3.0.11
and later) needs ``@jupyterlab/console``, which that page does not have: it fails to
load and the browser console shows ``Shared module @jupyterlab/console doesn't exist``.
So the slideshow gets every extension but that one, from a folder of links made here
(``.workshop/rise-labextensions``); JupyterLab itself keeps them all. In a slideshow a
widget output (a progress bar, a solution button) shows as its text, as it did when the
extension failed to load.
"""

import shutil
import sys
from pathlib import Path

from jupyter_core.paths import jupyter_path

NOT_IN_SLIDESHOWS = {"@jupyter-widgets/jupyterlab-manager"}
RISE_EXTENSIONS = Path(__file__).resolve().parents[2] / ".workshop" / "rise-labextensions"


def installed_extensions() -> dict[str, Path]:
    """Every JupyterLab extension this environment has, by name (the first found wins)."""
    found: dict[str, Path] = {}
    for base in map(Path, jupyter_path("labextensions")):
        for package in sorted(base.glob("*/package.json")) + sorted(base.glob("@*/*/package.json")):
            found.setdefault(package.parent.relative_to(base).as_posix(), package.parent)
    return found


def slideshow_extensions(folder: Path = RISE_EXTENSIONS) -> Path:
    """``folder``, holding a link to every extension but ``NOT_IN_SLIDESHOWS`` (a copy where links fail)."""
    shutil.rmtree(folder, ignore_errors=True)
    for name, source in installed_extensions().items():
        if name in NOT_IN_SLIDESHOWS:
            continue
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            target.symlink_to(source, target_is_directory=True)
        except OSError:  # Windows without the right to make links
            shutil.copytree(source, target)
    return folder


if "get_config" in globals():  # read by Jupyter as a configuration file
    c = get_config()  # noqa: F821
    c.RiseApp.labextensions_path = [str(slideshow_extensions())]
    c.RiseApp.extra_labextensions_path = []
    print(f"[workshop] RISE slideshows load the extensions in {RISE_EXTENSIONS}", file=sys.stderr)
