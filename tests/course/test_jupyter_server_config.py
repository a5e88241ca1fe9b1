"""helpers/course/jupyter_server_config.py: slideshows get every JupyterLab extension but the widgets one."""

import subprocess
import sys
from pathlib import Path

from helpers.course import jupyter_server_config as config

ROOT = Path(__file__).resolve().parents[2]


def test_the_slideshow_folder_links_every_extension_but_the_widgets_one(tmp_path):
    installed = config.installed_extensions()
    assert "@jupyter-widgets/jupyterlab-manager" in installed and "jupyterlab-rise" in installed
    folder = config.slideshow_extensions(tmp_path / "rise")
    linked = {name for name in installed if (folder / name / "package.json").exists()}
    assert linked == set(installed) - config.NOT_IN_SLIDESHOWS
    for name in linked:
        assert (folder / name / "package.json").read_bytes() == (
            installed[name] / "package.json"
        ).read_bytes()


def test_making_the_folder_again_replaces_what_was_there(tmp_path):
    folder = tmp_path / "rise"
    (folder / "stale-extension").mkdir(parents=True)
    config.slideshow_extensions(folder)
    assert not (folder / "stale-extension").exists()


def test_jupyter_reads_the_file_as_its_configuration():
    shown = subprocess.run(
        [
            str(Path(sys.executable).with_name("jupyter")),
            "server",
            "--show-config",
            f"--config={ROOT / 'helpers/course/jupyter_server_config.py'}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert shown.returncode == 0, shown.stderr
    assert "rise-labextensions" in shown.stdout + shown.stderr, shown.stdout[-2000:]
