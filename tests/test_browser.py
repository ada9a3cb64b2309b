"""A real-browser test: JupyterLab in headless Chromium runs a notebook and moves a slider of its panel.

The test starts JupyterLab on 127.0.0.1 (free port, a token, every Jupyter directory in a temp dir,
news / update checks off, the notebook copied to a temp root so that ``solutions/`` is never touched),
opens the notebook in Chromium from the OS packages (``/usr/bin/chromium``, driven by Playwright for
Python: no browser download), runs all cells from the Run menu, waits for a panel's plot, presses
ArrowRight on one of its sliders and checks that the plot changed and that no cell shows an error.
Two notebooks: the optimizer race of ``05_surfaces`` ("start x") and the OGR panel of
``09_online_second_order`` ("beta"). It saves a screenshot (``$COURSE_SCREENSHOT_DIR`` or
``tests/screenshots/``), also on failure.

Without Chromium the test is skipped (see ``conftest.py``), except in CI (``CI=true``), where it fails.
Run it alone with ``pytest -m browser tests/test_browser.py``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
# The notebook whose race panel is driven; COURSE_BROWSER_NOTEBOOK overrides it.
NOTEBOOK = ROOT / "solutions" / "05_surfaces.ipynb"
# (notebook, the label of the slider to move, what the screenshot is called)
CASES = [(NOTEBOOK, "start x", "race"), (ROOT / "solutions" / "09_online_second_order.ipynb", "beta", "ogr")]


def panel_selector(label: str) -> str:
    """The first VBox that has a slider labelled ``label`` and an Output showing an image."""
    return f'.widget-vbox:has(.widget-label:text-is("{label}")):has(.widget-output img)'


def slider_selector(label: str) -> str:
    return f'.widget-slider:has(.widget-label:text-is("{label}"))'


PANEL_IMG = ".widget-output img"
ERROR_OUTPUTS = ('.jp-OutputArea-output[data-mime-type*="error"], '
                 '.jp-RenderedText[data-mime-type="application/vnd.jupyter.error"]')


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def screenshot_dir() -> Path:
    path = Path(os.environ.get("COURSE_SCREENSHOT_DIR") or ROOT / "tests" / "screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


def race_notebook(path: Path) -> Path:
    """A one-widget notebook that shows the race panel (used while no course notebook is given)."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# Race panel (browser test)"),
                nbformat.v4.new_code_cell("from course_lib import widgets\nwidgets.race_panel()")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Lab:
    """JupyterLab in a subprocess, fully isolated in ``tmp``; ``api(path)`` calls its REST API."""

    def __init__(self, root: Path, tmp: Path):
        self.root, self.tmp = root, tmp
        self.port, self.token = free_port(), uuid.uuid4().hex
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = tmp / "jupyterlab.log"
        self.proc = None

    def start(self, timeout: float = 60.0) -> None:
        dirs = {name: self.tmp / name for name in ("config", "data", "runtime", "ipython", "settings", "workspaces")}
        for path in dirs.values():
            path.mkdir(parents=True, exist_ok=True)
        # the first-start "receive Jupyter news?" toast off; nothing fetched from the network
        notification = dirs["settings"] / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
        notification.parent.mkdir(parents=True, exist_ok=True)
        notification.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
        env = dict(os.environ, COURSE_DEVICE="cpu", JUPYTER_CONFIG_DIR=str(dirs["config"]),
                   JUPYTER_DATA_DIR=str(dirs["data"]), JUPYTER_RUNTIME_DIR=str(dirs["runtime"]),
                   IPYTHONDIR=str(dirs["ipython"]), JUPYTERLAB_SETTINGS_DIR=str(dirs["settings"]),
                   JUPYTERLAB_WORKSPACES_DIR=str(dirs["workspaces"]), JUPYTER_PLATFORM_DIRS="1",
                   MPLBACKEND="Agg", PYTHONUNBUFFERED="1")
        env.pop("JUPYTER_PATH", None)
        cmd = [sys.executable, "-m", "jupyterlab", "--no-browser",
               "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={self.port}", "--ServerApp.port_retries=0",
               f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={self.root}",
               f"--LabApp.user_settings_dir={dirs['settings']}", f"--LabApp.workspaces_dir={dirs['workspaces']}",
               "--LabApp.news_url=None",
               "--LabApp.check_for_updates_class=jupyterlab.handlers.announcements.NeverCheckForUpdate",
               "--LabApp.extension_manager=readonly"]
        if hasattr(os, "geteuid") and os.geteuid() == 0:  # CI containers run as root
            cmd.append("--allow-root")
        self.log = open(self.log_path, "w")
        # own process group: the server and its kernels can be stopped together whatever happens
        self.proc = subprocess.Popen(cmd, cwd=self.root, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"JupyterLab exited with code {self.proc.returncode}:\n{self.log_tail()}")
            with contextlib.suppress(OSError, ValueError):
                if self.api("/api/status").get("started"):
                    return
            time.sleep(0.25)
        raise TimeoutError(f"JupyterLab did not answer within {timeout:.0f} s:\n{self.log_tail()}")

    def api(self, path: str, method: str = "GET"):
        request = urllib.request.Request(self.url + path, method=method,
                                         headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=5) as response:
            body = response.read()
        return json.loads(body) if body else None

    def kernels_idle(self) -> bool:
        kernels = self.api("/api/kernels")
        return bool(kernels) and all(kernel["execution_state"] == "idle" for kernel in kernels)

    def log_tail(self, lines: int = 40) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            with contextlib.suppress(Exception):  # shuts down the kernels too
                self.api("/api/shutdown", method="POST")
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=10)
        # whatever is left of our process group (the server, a kernel that hung)
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=5)
                break
        self.log.close()


def wait_until(predicate, timeout: float, what: str, interval: float = 0.25):
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(Exception):
            value = predicate()
            if value:
                return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def notebook_to_drive(default: Path, tmp_path) -> Path:
    """For the race: $COURSE_BROWSER_NOTEBOOK, else solutions/05_surfaces.ipynb (a generated one if absent)."""
    given = os.environ.get("COURSE_BROWSER_NOTEBOOK")
    if default == NOTEBOOK and given:
        return Path(given).resolve()
    if default.exists() or default != NOTEBOOK:
        return default
    return race_notebook(tmp_path / "race_panel.ipynb")


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.parametrize("default, label, name", CASES, ids=[name for _, _, name in CASES])
def test_panel_slider_redraws_in_jupyterlab(default, label, name, tmp_path):
    notebook = notebook_to_drive(default, tmp_path)
    if not CHROMIUM.exists():  # conftest.py skips this test outside CI; in CI it must fail
        pytest.fail(f"{CHROMIUM} is missing (CI=true): `.ci/run` installs it with apt-get (chromium chromium-driver)")
    from playwright.sync_api import sync_playwright

    started = time.monotonic()
    root = tmp_path / "root"
    root.mkdir()
    shutil.copy(notebook, root / notebook.name)
    lab = Lab(root, tmp_path)
    shots = screenshot_dir()
    stem = notebook.stem
    page = None
    try:
        lab.start()
        with sync_playwright() as playwright:
            context = playwright.chromium.launch_persistent_context(
                str(tmp_path / "chromium-profile"), executable_path=str(CHROMIUM), headless=True,
                args=CHROMIUM_ARGS, viewport={"width": 1400, "height": 1000}, timeout=60_000)
            try:
                page = context.pages[0] if context.pages else context.new_page()
                page.set_default_timeout(60_000)
                console_errors = []
                page.on("pageerror", lambda error: console_errors.append(str(error)))
                page.goto(f"{lab.url}/lab/tree/{notebook.name}?reset&token={lab.token}")
                # the notebook is open and its kernel is ready
                page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=60_000)
                wait_until(lambda: lab.api("/api/kernels"), 60, "the kernel to start")
                page.wait_for_selector('.jp-Notebook-ExecutionIndicator[data-status="idle"]', timeout=60_000)

                # Run > Run All Cells
                page.locator('.lm-MenuBar-itemLabel:text-is("Run")').click(timeout=10_000)
                page.locator('.lm-Menu-itemLabel:text-is("Run All Cells")').click(timeout=10_000)

                panel = page.locator(panel_selector(label)).first
                panel.wait_for(state="visible", timeout=90_000)
                image = panel.locator(PANEL_IMG).first

                def all_done():  # no [*] prompt left and the kernel idle
                    return (page.locator('.jp-InputPrompt:has-text("[*]")').count() == 0
                            and lab.kernels_idle())

                wait_until(all_done, 90, "all cells to finish")
                panel.scroll_into_view_if_needed()
                before = image.get_attribute("src")
                assert before and before.startswith(("data:image/png", "blob:")), before

                # move the slider: focus its handle, three key presses (each sends its value)
                handle = panel.locator(slider_selector(label) + " .noUi-handle").first
                readout_before = panel.locator(slider_selector(label) + " .widget-readout").first.inner_text()
                handle.focus()
                for _ in range(3):
                    handle.press("ArrowRight")
                    page.wait_for_timeout(100)
                readout_after = panel.locator(slider_selector(label) + " .widget-readout").first.inner_text()
                assert readout_after != readout_before, f"slider did not move: {readout_before!r}"

                def new_image():
                    src = panel.locator(PANEL_IMG).first.get_attribute("src", timeout=1000)
                    return src if src and src != before and lab.kernels_idle() else None

                after = wait_until(new_image, 60, "the plot to change after the slider moved")
                page.wait_for_timeout(300)  # let the last redraw settle before checking and screenshotting
                after = panel.locator(PANEL_IMG).first.get_attribute("src")
                assert after != before, "the plot image did not change after the slider moved"

                errors = page.locator(ERROR_OUTPUTS)
                assert errors.count() == 0, "a cell shows an error:\n" + "\n\n".join(errors.all_inner_texts())
                assert page.get_by_text("Error displaying widget").count() == 0, "a widget failed to display"
                assert page.locator(panel_selector(label)).first.get_by_text("Error", exact=False).count() == 0, \
                    f"the {name} panel printed an error"
                assert not console_errors, f"JavaScript errors in the page: {console_errors}"

                panel.scroll_into_view_if_needed()
                path = shots / f"{stem}_{name}.png"
                page.screenshot(path=str(path))
                print(f"screenshot: {path} ({readout_before} -> {readout_after}, "
                      f"{time.monotonic() - started:.1f} s)")
            except BaseException:
                if page is not None:
                    with contextlib.suppress(Exception):
                        path = shots / f"{stem}_FAILED.png"
                        page.screenshot(path=str(path))
                        print(f"failure screenshot: {path}")
                raise
            finally:
                context.close()
    except BaseException:
        print(f"JupyterLab log (last lines):\n{lab.log_tail()}")
        raise
    finally:
        lab.stop()
