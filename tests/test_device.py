"""course_lib.device: the device choice and seeding."""

import random

import numpy as np
import pytest
import torch

from course_lib.device import default_device, seed_everything


def test_course_device_env_wins(monkeypatch):
    monkeypatch.setenv("COURSE_DEVICE", "cpu")
    assert default_device() == torch.device("cpu")


def test_without_env_prefers_cuda_then_mps_then_cpu(monkeypatch):
    monkeypatch.delenv("COURSE_DEVICE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert default_device().type == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert default_device().type == "mps"
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert default_device().type == "cpu"


def test_unavailable_device_requested_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv("COURSE_DEVICE", "cuda")
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        default_device()
    monkeypatch.setenv("COURSE_DEVICE", "not-a-device")
    with pytest.raises(RuntimeError):
        default_device()


def _draw():
    return random.random(), float(np.random.rand()), torch.randn(3).tolist()


def test_seed_everything_repeats_python_numpy_and_torch():
    seed_everything(123)
    first = _draw()
    seed_everything(123)
    assert _draw() == first
    seed_everything(124)
    assert _draw() != first


def test_seed_everything_returns_a_seeded_generator():
    a = torch.randn(4, generator=seed_everything(7))
    b = torch.randn(4, generator=seed_everything(7))
    assert torch.equal(a, b)
    with pytest.raises(TypeError):
        seed_everything(1.5)
