"""A real-browser test: JupyterLab in headless Chromium runs every lesson (Run All) and moves every slider.

One JupyterLab server on 127.0.0.1 (free port, a token, every Jupyter directory in a temp dir, news /
update checks off) serves a temp copy of ``lessons/``, so that the repository is never touched. For each
lesson (unsolved: each is a notebook with at least one panel) the test opens it in Chromium from the OS
packages (``/usr/bin/chromium``, driven by Playwright for Python: no browser download), runs all cells
from the Run menu and checks that

* Run All reaches the last cell: no cell is left unrun, and every check cell says "Not solved yet";
* no cell shows an error or anything on stderr (tracebacks render as
  ``data-mime-type="application/vnd.jupyter.stderr"``), no widget fails to display, no JavaScript error;
* every panel shows a picture, and moving each of its sliders (one key press on the handle) changes
  the slider's value and the picture, with no error text in the panel.

Screenshots of every panel before and after its sliders moved go to ``$COURSE_SCREENSHOT_DIR`` or
``tests/screenshots/`` (and one of the page on failure).

Without Chromium the test is skipped (see ``conftest.py``), except in CI (``CI=true``), where it fails;
``test_lessons_run_all.py`` then covers Run All without a browser.
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

from tiers import course_params

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
LESSONS = sorted((ROOT / "lessons").glob("[0-9][0-9]_*.ipynb"))
PANEL_CELLS = ".jp-CodeCell:has(img.widget-image)"
PANEL_IMG = "img.widget-image"
ERROR_OUTPUTS = ('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"], '
                 '.jp-OutputArea-output[data-mime-type*="error"]')
NOT_SOLVED = "Not solved yet"

def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def screenshot_dir() -> Path:
    path = Path(os.environ.get("COURSE_SCREENSHOT_DIR") or ROOT / "tests" / "screenshots")
    path.mkdir(parents=True, exist_ok=True)
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
        # every cell in the page (no windowing), so that the test sees and counts all of them
        tracker = dirs["settings"] / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings"
        tracker.parent.mkdir(parents=True, exist_ok=True)
        tracker.write_text(json.dumps({"windowingMode": "none"}))
        env = dict(os.environ, COURSE_DEVICE="cpu", JUPYTER_CONFIG_DIR=str(dirs["config"]),
                   JUPYTER_DATA_DIR=str(dirs["data"]), JUPYTER_RUNTIME_DIR=str(dirs["runtime"]),
                   IPYTHONDIR=str(dirs["ipython"]), JUPYTERLAB_SETTINGS_DIR=str(dirs["settings"]),
                   JUPYTERLAB_WORKSPACES_DIR=str(dirs["workspaces"]), JUPYTER_PLATFORM_DIRS="1",
                   MPLBACKEND="Agg", PYTHONUNBUFFERED="1")
        env.pop("JUPYTER_PATH", None)
        for name in ("PYTEST_VERSION", "PYTEST_CURRENT_TEST", "COURSE_STRICT_CHECKS"):
            env.pop(name, None)  # the kernels run as in a learner's lab: an unsolved check reports, not raises
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


@pytest.fixture(scope="module")
def lab_browser(tmp_path_factory):
    """(JupyterLab serving a copy of lessons/, a Chromium context): one of each for all the lessons."""
    if not CHROMIUM.exists():  # conftest.py skips these tests outside CI; in CI they must fail
        pytest.fail(f"{CHROMIUM} is missing (CI=true): `.ci/run` installs it with apt-get (chromium chromium-driver)")
    from playwright.sync_api import sync_playwright

    tmp = tmp_path_factory.mktemp("lab")
    root = tmp / "root"
    root.mkdir()
    for lesson in LESSONS:
        shutil.copy(lesson, root / lesson.name)
    lab = Lab(root, tmp)
    try:
        lab.start()
        with sync_playwright() as playwright:
            context = playwright.chromium.launch_persistent_context(
                str(tmp / "chromium-profile"), executable_path=str(CHROMIUM), headless=True,
                args=CHROMIUM_ARGS, viewport={"width": 1400, "height": 1000}, timeout=60_000)
            try:
                yield lab, context
            finally:
                context.close()
    except BaseException:
        print(f"JupyterLab log (last lines):\n{lab.log_tail()}")
        raise
    finally:
        lab.stop()


def _open_accordions(cell) -> None:
    """Open every closed accordion section of a panel, so that its sliders can be moved."""
    headers = cell.locator(".jupyter-widget-Collapse-header, .lm-AccordionPanel-title")
    for i in range(headers.count()):
        header = headers.nth(i)
        expanded = header.get_attribute("aria-expanded")
        classes = header.get_attribute("class") or ""
        if expanded == "false" or ("mod-expanded" not in classes and "jupyter-widget-Collapse-open" not in classes
                                   and expanded is None):
            header.click()
    cell.page.wait_for_timeout(200)


def _move_sliders(page, lab, cell, where: str) -> list[str]:
    """Press an arrow key on each slider of the panel in ``cell``; the picture must change each time."""
    moved = []
    sliders = cell.locator(".widget-slider:visible")
    for i in range(sliders.count()):
        slider = sliders.nth(i)
        name = slider.locator(".widget-label").first.inner_text().strip()
        readout = slider.locator(".widget-readout").first
        handle = slider.locator(".noUi-handle").first
        before_value = readout.inner_text()
        before_image = cell.locator(PANEL_IMG).first.get_attribute("src")
        for key in ("ArrowRight", "ArrowLeft"):  # a slider at its maximum moves left
            handle.focus()
            handle.press(key)
            page.wait_for_timeout(150)
            if readout.inner_text() != before_value:
                break
        after_value = readout.inner_text()
        assert after_value != before_value, f"{where}: slider {name!r} did not move from {before_value!r}"

        def new_image():
            src = cell.locator(PANEL_IMG).first.get_attribute("src", timeout=1000)
            return src if src and src != before_image and lab.kernels_idle() else None

        wait_until(new_image, 60, f"{where}: the picture to change after slider {name!r} moved")
        assert cell.get_by_text("Error", exact=False).count() == 0, \
            f"{where}: the panel shows an error after slider {name!r} moved:\n{cell.inner_text()[-600:]}"
        moved.append(f"{name}: {before_value} -> {after_value}")
    return moved


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.parametrize("lesson", course_params(LESSONS))  # `make test`: lesson 02; `make test-all`: every lesson
def test_lesson_runs_all_and_every_slider_redraws_in_jupyterlab(lesson, lab_browser):
    lab, context = lab_browser
    shots = screenshot_dir()
    started = time.monotonic()
    page = context.new_page()
    page.set_default_timeout(60_000)
    console_errors = []
    page.on("pageerror", lambda error: console_errors.append(str(error)))
    try:
        page.goto(f"{lab.url}/lab/tree/{lesson.name}?reset&token={lab.token}")
        page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=60_000)
        wait_until(lambda: lab.api("/api/kernels"), 60, "the kernel to start")
        page.wait_for_selector('.jp-Notebook-ExecutionIndicator[data-status="idle"]', timeout=60_000)

        page.locator('.lm-MenuBar-itemLabel:text-is("Run")').click(timeout=10_000)
        page.locator('.lm-Menu-itemLabel:text-is("Run All Cells")').click(timeout=10_000)

        def unrun() -> list[int]:  # code cells whose prompt shows no execution number yet ("[ ]:" or "[*]:")
            prompts = page.locator(".jp-CodeCell .jp-InputPrompt").all_inner_texts()
            return [i + 1 for i, p in enumerate(prompts) if not any(ch.isdigit() for ch in p)] if prompts else [0]

        try:
            wait_until(lambda: not unrun() and lab.kernels_idle(), 240, "every cell to run")
        except TimeoutError:
            pytest.fail(f"{lesson.name}: Run All did not reach the end: code cells {unrun()} have not run")

        errors = page.locator(ERROR_OUTPUTS)
        assert errors.count() == 0, f"{lesson.name}: a cell shows an error:\n" + "\n\n".join(errors.all_inner_texts())
        assert page.get_by_text("Error displaying widget").count() == 0, f"{lesson.name}: a widget failed to display"
        checks = page.get_by_text(NOT_SOLVED, exact=False)
        assert checks.count() > 0, f"{lesson.name}: no check cell says {NOT_SOLVED!r}"

        cells = page.locator(PANEL_CELLS)
        assert cells.count() > 0, f"{lesson.name}: no panel with a picture"
        report = []
        for i in range(cells.count()):
            cell = cells.nth(i)
            where = f"{lesson.name}, panel {i + 1}"
            cell.scroll_into_view_if_needed()
            _open_accordions(cell)
            src = cell.locator(PANEL_IMG).first.get_attribute("src")
            assert src and src.startswith(("data:image/png", "blob:")), f"{where}: no picture ({src!r})"
            cell.screenshot(path=str(shots / f"{lesson.stem}_panel{i + 1}_before.png"))
            report += _move_sliders(page, lab, cell, where)
            page.wait_for_timeout(300)
            cell.scroll_into_view_if_needed()
            cell.screenshot(path=str(shots / f"{lesson.stem}_panel{i + 1}_after.png"))
        assert page.locator(ERROR_OUTPUTS).count() == 0, f"{lesson.name}: an error appeared while sliders moved"
        assert not console_errors, f"{lesson.name}: JavaScript errors in the page: {console_errors}"
        print(f"{lesson.name}: {cells.count()} panel(s), sliders moved: {report} "
              f"({time.monotonic() - started:.1f} s)")
    except BaseException:
        with contextlib.suppress(Exception):
            page.screenshot(path=str(shots / f"{lesson.stem}_FAILED.png"), full_page=False)
        raise
    finally:
        with contextlib.suppress(Exception):
            for kernel in lab.api("/api/kernels") or []:
                lab.api(f"/api/kernels/{kernel['id']}", method="DELETE")
        page.close()
