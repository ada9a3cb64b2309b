"""Suite ``second_order``: what curvature costs, measured against one gradient (docs/design.md, section 6).

* ``hvp``: one Hessian-vector product (Pearlmutter's trick: a backward pass that keeps its graph, then a
  second backward pass through :math:`g^\\top v`) against one gradient (forward + backward) of the same
  loss, on a small MLP; budget 4x.
* ``kfac step``: one :class:`course_lib.second_order.KFAC` step (closure, the extra statistics pass with
  sampled targets, factor updates, the preconditioned update; inverses refreshed every 10 steps, so the
  median step is one without inversion and the mean includes them: both are reported) against one
  ``torch.optim.SGD`` step with the same closure, on the same MLP; no budget (information).

Both run in alternating turns (:func:`course_lib.bench._core.time_interleaved`). Sizes: MLP
64-128-128-10 with tanh, batch 256, float32, cross-entropy.
"""

from __future__ import annotations

import statistics

import torch
from torch import nn
from torch.nn import functional as F

from ..device import default_device
from ._core import Record, device_synchronizer, register_suite, time_interleaved

HVP_BUDGET = 4.0
ROWS = ["hvp", "kfac step"]
SIZES = (64, 128, 128, 10)


def _problem(device, sizes=SIZES, batch=256, seed=0):
    gen = torch.Generator().manual_seed(seed)
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.Tanh())
    model = nn.Sequential(*layers)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) / max(1, p.shape[-1]) ** 0.5)
    model.to(device)
    X = torch.randn(batch, sizes[0], generator=gen).to(device)
    y = torch.randint(0, sizes[-1], (batch,), generator=gen).to(device)
    return model, X, y


def _wanted(only):
    if not only:
        return ROWS
    chosen = {name.lower() for name in only}
    return [name for name in ROWS if name in chosen]


@register_suite("second_order", "one HVP vs one gradient (budget 4x); one K-FAC step vs one SGD step",
                names=lambda: list(ROWS))
def run_second_order_suite(*, only: list[str] | None = None, steps: int | None = None, device=None,
                           sizes=SIZES, batch: int = 256, **_):
    device = torch.device(device) if device is not None else default_device()
    sync = device_synchronizer(device)
    case = f"MLP {'-'.join(map(str, sizes))}, batch {batch}"
    wanted = _wanted(only)
    if "hvp" in wanted:
        record = Record("second_order", "hvp", case, None, budget=HVP_BUDGET, reference="one gradient",
                        reference_key="gradient_ms", device=str(device))
        try:
            model, X, y = _problem(device, sizes, batch)
            params = list(model.parameters())
            vs = [torch.randn_like(p) for p in params]

            def gradient():
                loss = F.cross_entropy(model(X), y)
                return torch.autograd.grad(loss, params)

            def hvp():
                loss = F.cross_entropy(model(X), y)
                grads = torch.autograd.grad(loss, params, create_graph=True)
                dot = sum((g * v).sum() for g, v in zip(grads, vs))
                return torch.autograd.grad(dot, params)

            course, reference = time_interleaved(hvp, gradient, steps=steps, sync=sync)
            record.course_ms, record.reference_ms = statistics.median(course), statistics.median(reference)
            record.extra.update(repeats=len(course), threads=torch.get_num_threads())
        except Exception as error:  # noqa: BLE001
            record.error = f"{type(error).__name__}: {error}".splitlines()[0][:120]
        yield record
    if "kfac step" in wanted:
        from ..second_order import KFAC

        record = Record("second_order", "kfac step", case + ", T=10", None, reference="torch.optim.SGD step",
                        reference_key="sgd_ms", device=str(device))
        try:
            model_k, X, y = _problem(device, sizes, batch)
            model_s, _, _ = _problem(device, sizes, batch)
            kfac = KFAC(model_k, lr=1e-3, damping=1e-2, inverse_every=10, generator=torch.Generator().manual_seed(1))
            sgd = torch.optim.SGD(model_s.parameters(), lr=1e-3)

            def closure_for(model, opt):
                def closure():
                    opt.zero_grad()
                    loss = F.cross_entropy(model(X), y)
                    loss.backward()
                    return loss
                return closure

            ck, cs = closure_for(model_k, kfac), closure_for(model_s, sgd)
            course, reference = time_interleaved(lambda: kfac.step(ck), lambda: sgd.step(cs), steps=steps, sync=sync)
            record.course_ms, record.reference_ms = statistics.median(course), statistics.median(reference)
            record.extra.update(repeats=len(course), mean_ms=round(statistics.mean(course), 3),
                                sgd_mean_ms=round(statistics.mean(reference), 3), threads=torch.get_num_threads())
            kfac.remove_hooks()
        except Exception as error:  # noqa: BLE001
            record.error = f"{type(error).__name__}: {error}".splitlines()[0][:120]
        yield record
