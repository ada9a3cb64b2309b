"""Shared pytest options and fixtures.

``--device`` picks where device-parametrized tests put their tensors
(default ``cpu``); ``pytest --device cuda`` runs them on the GPU. Tests marked
``cuda``, and every test that uses the ``device`` fixture when ``--device cuda``
is given, are skipped with a clear reason on a machine without CUDA.
"""

from __future__ import annotations

import pytest
import torch


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
