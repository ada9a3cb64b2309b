"""Shared pytest options and fixtures.

``--device`` picks where device-parametrized tests put their tensors
(default ``cpu``); ``pytest --device cuda`` runs them on the GPU. Tests marked
``cuda``, and every test that uses the ``device`` fixture when ``--device cuda``
is given, are skipped with a clear reason on a machine without CUDA. Tests
marked ``browser`` are skipped without ``/usr/bin/chromium``, except in CI
(``CI=true``), where they fail.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

CHROMIUM = Path("/usr/bin/chromium")

# Notebooks compared by nbval print numbers computed on the CPU (docs/design.md, section 3), whatever the machine has;
# the kernels nbval starts inherit this. `--device cuda` still moves the library tests to the GPU.
os.environ.setdefault("COURSE_DEVICE", "cpu")


def pytest_addoption(parser):
    parser.addoption(
        "--device",
        action="store",
        default="cpu",
        help="device for device-parametrized tests: cpu (default), cuda, cuda:1, ...",
    )


def _requested_device(config) -> torch.device:
    return torch.device(config.getoption("--device"))


def pytest_collection_modifyitems(config, items):
    # `browser` tests need Chromium from the OS packages: skipped without it, except in CI
    # (CI=true), where the test itself fails so that a broken install cannot pass unnoticed.
    if not CHROMIUM.exists() and os.environ.get("CI", "").strip().lower() not in ("1", "true", "yes"):
        skip_browser = pytest.mark.skip(
            reason=f"needs Chromium at {CHROMIUM} (apt-get install chromium chromium-driver; `.ci/run` does it)")
        for item in items:
            if item.get_closest_marker("browser") is not None:
                item.add_marker(skip_browser)
    # Decided once, at collection, so that tests which monkeypatch
    # torch.cuda.is_available cannot change the answer.
    if torch.cuda.is_available():
        return
    requested = _requested_device(config)
    skip_marked = pytest.mark.skip(reason="needs CUDA (marked `cuda`), but torch.cuda.is_available() is False")
    skip_requested = pytest.mark.skip(
        reason=f"run with --device {requested}, but torch.cuda.is_available() is False on this machine")
    for item in items:
        if item.get_closest_marker("cuda") is not None:
            item.add_marker(skip_marked)
        elif requested.type == "cuda" and "device" in getattr(item, "fixturenames", ()):
            item.add_marker(skip_requested)


@pytest.fixture(scope="session")
def device(pytestconfig) -> torch.device:
    """The device chosen with ``--device`` (default ``cpu``)."""
    return _requested_device(pytestconfig)


@pytest.fixture
def float64():
    """Make float64 the default dtype for the test, and restore the previous default after it."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        yield torch.float64
    finally:
        torch.set_default_dtype(previous)
