"""Suite ``ogr``: what one OGR step costs, against the subspace dimension d and the parameter count D.

Each row times one :class:`course_lib.second_order.OGR` step on a single parameter of ``D`` entries (its
gradient set beforehand, no closure: the optimizer's own work only) against one ``torch.optim.SGD`` step with
momentum 0.9 on the same parameter, in alternating turns (:func:`course_lib.bench._core.time_interleaved`).
Cases: the diagonal mode (``O(D)``: a handful of elementwise passes) and the subspace mode for
``d`` in 2, 8, 32 (``O(dD)`` projections plus an ``O(d^2 D)`` QR of the turned basis and two small ``eigh``).
No budget: the numbers are what notebook 09 discusses. Float32, gradients drawn once from a seeded generator.
"""

from __future__ import annotations

import statistics

import torch

from ..device import default_device
from ._core import Record, device_synchronizer, register_suite, time_interleaved

ROWS = ["OGR step"]
CASES = [(10_000, None), (10_000, 2), (10_000, 8), (10_000, 32), (100_000, None), (100_000, 8), (1_000_000, None),
         (1_000_000, 8)]


def _setup(D: int, rank, device, seed: int = 0):
    from ..second_order import OGR

    gen = torch.Generator().manual_seed(seed)
    grads = [torch.randn(D, generator=gen).to(device) for _ in range(4)]
    p_ogr = torch.randn(D, generator=gen).to(device).requires_grad_(True)
    p_sgd = p_ogr.detach().clone().requires_grad_(True)
    ogr = OGR([p_ogr], rank=rank)
    sgd = torch.optim.SGD([p_sgd], lr=0.01, momentum=0.9)
    turns = {"ogr": 0, "sgd": 0}

    def step(opt, param, key):
        param.grad = grads[turns[key] % len(grads)]
        turns[key] += 1
        opt.step()

    for _ in range(8):  # past the start-up: the basis is full, the statistics known
        step(ogr, p_ogr, "ogr")
    return (lambda: step(ogr, p_ogr, "ogr")), (lambda: step(sgd, p_sgd, "sgd"))


def time_ogr_step(D: int, rank=None, *, steps: int | None = 20, device=None) -> tuple[float, float]:
    """Median ms of one OGR step (``rank``: None for diagonal, else d) and of one SGD-momentum step, size D."""
    device = torch.device(device) if device is not None else default_device()
    course, reference = _setup(D, rank, device)
    ogr_ms, sgd_ms = time_interleaved(course, reference, steps=steps, warmup=2, sync=device_synchronizer(device))
    return statistics.median(ogr_ms), statistics.median(sgd_ms)


@register_suite("ogr", "one OGR step (diagonal; subspace d = 2, 8, 32) vs one SGD-momentum step, D = 1e4-1e6",
                names=lambda: list(ROWS))
def run_ogr_suite(*, only: list[str] | None = None, steps: int | None = None, device=None, **_):
    if only and "ogr step" not in {name.lower() for name in only}:
        return
    device = torch.device(device) if device is not None else default_device()
    for D, rank in CASES:
        case = f"D={D:,}, " + ("diagonal" if rank is None else f"subspace d={rank}")
        record = Record("ogr", "OGR step", case, None, reference="torch.optim.SGD momentum 0.9",
                        reference_key="sgd_ms", device=str(device), extra={"D": D, "d": rank})
        try:
            record.course_ms, record.reference_ms = time_ogr_step(D, rank, steps=steps, device=device)
        except Exception as error:  # a row that cannot be measured says why, the suite goes on
            record.error = f"{type(error).__name__}: {error}".splitlines()[0][:120]
        yield record
