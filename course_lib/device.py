"""Where tensors live, and how to make a run repeatable.

The course runs on whatever the machine has. ``default_device()`` picks it:
the environment variable ``COURSE_DEVICE`` wins (CI sets ``COURSE_DEVICE=cpu``
so that printed numbers are the same everywhere), then CUDA, then Apple's MPS,
then the CPU.
"""

from __future__ import annotations

import os
import random

import numpy as np
import torch

__all__ = ["default_device", "seed_everything"]


def default_device() -> torch.device:
    """The device the course computes on: ``$COURSE_DEVICE``, else cuda > mps > cpu.

    >>> import os; os.environ["COURSE_DEVICE"] = "cpu"; default_device()
    device(type='cpu')
    """
    requested = os.environ.get("COURSE_DEVICE", "").strip()
    if requested:
        device = torch.device(requested)  # raises on a malformed name
        if device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(f"COURSE_DEVICE={requested!r} but CUDA is not available on this machine")
        if device.type == "mps" and not torch.backends.mps.is_available():
            raise RuntimeError(f"COURSE_DEVICE={requested!r} but MPS is not available on this machine")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int = 0, deterministic: bool = True) -> torch.Generator:
    """Seed Python, NumPy and PyTorch (every device) and return a seeded CPU generator.

    With ``deterministic=True`` PyTorch is asked for deterministic algorithms where
    they exist (``warn_only``, so an op without one still runs) and cuDNN's
    autotuner is switched off: the same seed then gives the same numbers.
    """
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA device
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
    return torch.Generator().manual_seed(seed)
