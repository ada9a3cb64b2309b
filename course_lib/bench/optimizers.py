"""Suite ``optimizers``: one step of each course optimizer against its reference.

docs/design.md, section 6: a from-scratch optimizer step may take at most 1.1x the time
of the reference's default step on the same parameters. The reference is
``torch.optim`` with default arguments (no ``foreach``: on the CPU torch then loops
tensor by tensor, on CUDA it uses its multi-tensor kernels), ``Adam(amsgrad=True)``
for AMSGrad, and the authors' ``adabound`` package for AdaBound. Both sides get
identical parameters and identical fixed gradients, on
:func:`course_lib.device.default_device`, in float32.

Two cases: the parameter shapes of torchvision's ResNet-18 (62 tensors, 11,689,512
values; many medium tensors, where per-tensor overhead shows) and one tensor of
10M values (pure memory bandwidth).

Notebook 11's optimizers: ``Muon`` against ``torch.optim.Muon`` on the same values seen as
matrices (a convolution kernel ``(o, i, k, k)`` as ``(o, i k k)``, the 10M vector as
``1000 x 10000``; vectors and scalars dropped: Muon takes matrices only); ``ScheduleFreeSGD`` /
``ScheduleFreeAdamW`` against the authors' ``schedulefree`` package (both in train mode). torch
has no Lion or Shampoo: their rows time ``torch.optim.AdamW`` beside them as a **cost reference**
(labelled so in the reference column). Lion keeps the 1.1x budget (one state tensor and no square
root: it should cost no more than AdamW); Shampoo (inverse roots by eigendecomposition, refreshed
every 10 steps) has no budget: its ratio is the price of its preconditioner.
"""

from __future__ import annotations

import math
import statistics
import warnings
from dataclasses import dataclass
from typing import Callable

import torch

from ..device import default_device
from ._core import Record, device_synchronizer, register_suite, relative_spread, time_interleaved

__all__ = ["resnet18_shapes", "CASES", "ROWS", "OptimizerRow", "run_optimizer_suite"]

BUDGET = 1.1


def resnet18_shapes(num_classes: int = 1000) -> list[tuple[int, ...]]:
    """The shapes of ``torchvision.models.resnet18().parameters()``, in that order.

    A 7x7 stem convolution, four stages of two basic blocks (3x3 convolutions;
    the first block of stages 2-4 halves the resolution, doubles the width and
    has a 1x1 projection shortcut), each convolution followed by batch norm
    (a weight and a bias), then a linear classifier.
    """
    def conv_bn(out_ch, in_ch, k):
        return [(out_ch, in_ch, k, k), (out_ch,), (out_ch,)]

    shapes = conv_bn(64, 3, 7)
    in_ch = 64
    for width in (64, 128, 256, 512):
        for block in range(2):
            shapes += conv_bn(width, in_ch, 3) + conv_bn(width, width, 3)
            if block == 0 and in_ch != width:
                shapes += conv_bn(width, in_ch, 1)  # the projection shortcut ("downsample")
            in_ch = width
    return shapes + [(num_classes, 512), (num_classes,)]


# case name -> parameter shapes (a test swaps in tiny ones)
CASES: dict[str, list[tuple[int, ...]]] = {
    "resnet18": resnet18_shapes(),
    "10M": [(10_000_000,)],
}


def _call(name: str, kwargs: dict) -> str:
    return f"{name}({', '.join(f'{key}={value!r}' for key, value in kwargs.items())})"


@dataclass
class OptimizerRow:
    """One table row: ``course_lib.optim.<course_class>(**kwargs)`` against ``build_reference``."""

    name: str
    course_class: str
    kwargs: dict
    reference: str  # what build_reference builds, for the record
    build_reference: Callable
    budget: float | None = BUDGET  # None: a cost reference only, nothing to stay under
    matrices: bool = False  # time on the case's values seen as matrices (Muon)
    train_mode: bool = False  # call .train() on both optimizers first (schedule-free)

    @property
    def course(self) -> str:
        return _call(f"course_lib.optim.{self.course_class}", self.kwargs)

    def build_course(self, params):
        from .. import optim  # imported late: a broken optimizer file must not stop the other rows
        return _in_train_mode(getattr(optim, self.course_class)(params, **self.kwargs), self.train_mode)

    def build_ref(self, params):
        return _in_train_mode(self.build_reference(params), self.train_mode)


def _in_train_mode(optimizer, train_mode: bool):
    if train_mode:
        optimizer.train()
    return optimizer


def as_matrices(tensors: list[torch.Tensor]) -> list[torch.Tensor]:
    """Views for Muon: ``(o, i, k, k) -> (o, i*k*k)``, matrices as they are, a vector of >= 1e6 values as
    ``1000 x n/1000``; other vectors and scalars are dropped."""
    out = []
    for t in tensors:
        if t.dim() >= 2:
            out.append(t.reshape(t.shape[0], -1))
        elif t.dim() == 1 and t.numel() >= 1_000_000 and t.numel() % 1000 == 0:
            out.append(t.reshape(1000, -1))
    return out


def _against_torch(name, course_class=None, reference_class=None, reference_kwargs=None, **kwargs):
    """A row whose reference is ``torch.optim.<reference_class>`` (default: the same name and arguments)."""
    reference_class = reference_class or course_class or name
    reference_kwargs = kwargs if reference_kwargs is None else reference_kwargs
    return OptimizerRow(name, course_class or name, kwargs, _call(f"torch.optim.{reference_class}", reference_kwargs),
                        lambda params: getattr(torch.optim, reference_class)(params, **reference_kwargs))


def _adabound(params):
    import adabound  # the authors' package (Luo et al. 2019)
    return adabound.AdaBound(params)


def _cost_reference(name, course_class, **kwargs):
    """A row for an optimizer torch lacks: torch.optim.AdamW() beside it, to show what it costs."""
    return OptimizerRow(name, course_class, kwargs, "torch.optim.AdamW() (cost reference: torch has no "
                        f"{course_class})", lambda params: torch.optim.AdamW(params),
                        budget=BUDGET if course_class == "Lion" else None)


def _schedulefree(class_name):
    def build(params):
        import schedulefree  # the authors' package (Defazio et al. 2024)
        return getattr(schedulefree, class_name)(params)
    return build


ROWS: list[OptimizerRow] = [
    _against_torch("SGD"),
    _against_torch("SGD momentum", "SGD", momentum=0.9),
    _against_torch("Adagrad"),
    _against_torch("Adadelta"),
    _against_torch("RMSprop"),
    _against_torch("Adam"),
    _against_torch("AdamW"),
    _against_torch("AMSGrad", reference_class="Adam", reference_kwargs={"amsgrad": True}),
    _against_torch("Adamax"),
    _against_torch("NAdam"),
    _against_torch("Adafactor"),
    OptimizerRow("AdaBound", "AdaBound", {}, "adabound.AdaBound()", _adabound),
    OptimizerRow("Muon", "Muon", {}, "torch.optim.Muon() (on the values as matrices)",
                 lambda params: torch.optim.Muon(params), matrices=True),
    OptimizerRow("ScheduleFreeSGD", "ScheduleFreeSGD", {}, "schedulefree.SGDScheduleFree()",
                 _schedulefree("SGDScheduleFree"), train_mode=True),
    OptimizerRow("ScheduleFreeAdamW", "ScheduleFreeAdamW", {}, "schedulefree.AdamWScheduleFree()",
                 _schedulefree("AdamWScheduleFree"), train_mode=True),
    _cost_reference("Lion", "Lion"),
    _cost_reference("Shampoo", "Shampoo", update_freq=10),
]


def _selected(rows: list[OptimizerRow], only: list[str] | None) -> list[OptimizerRow]:
    if not only:
        return rows
    wanted = {name.lower() for name in only}
    return [row for row in rows if row.name.lower() in wanted or row.course_class.lower() in wanted]


def row_names() -> list[str]:
    return [row.name for row in ROWS]


def _parameters(values: list[torch.Tensor], grads: list[torch.Tensor]) -> list[torch.Tensor]:
    """Fresh leaf copies of ``values`` with copies of ``grads`` attached (each side owns its own)."""
    params = []
    for value, grad in zip(values, grads):
        param = value.clone().requires_grad_(True)
        param.grad = grad.clone()
        params.append(param)
    return params


@register_suite("optimizers", "one optimizer step: course_lib.optim vs torch.optim's default (budget 1.1x)",
                names=row_names)
def run_optimizer_suite(*, only: list[str] | None = None, steps: int | None = None, warmup: int = 3,
                        target_s: float = 3.0, cases: dict[str, list[tuple[int, ...]]] | None = None,
                        device: torch.device | str | None = None, seed: int = 0):
    """Yield one :class:`Record` per (optimizer, case): median ms per step, ours and the reference's.

    ``steps=None`` times as many interleaved rounds as fit in ``target_s`` seconds
    per row and case (10 to 250). ``cases`` maps a case name to parameter shapes
    (default :data:`CASES`).
    """
    device = torch.device(device) if device is not None else default_device()
    cases = CASES if cases is None else cases
    rows = _selected(ROWS, only)
    sync = device_synchronizer(device)
    generator = torch.Generator().manual_seed(seed)
    for case, shapes in cases.items():
        values = [torch.randn(shape, generator=generator).to(device) for shape in shapes]
        grads = [torch.randn(shape, generator=generator).to(device) for shape in shapes]
        numel = sum(math.prod(shape) for shape in shapes)
        for row in rows:
            record = Record(suite="optimizers", name=row.name, case=case, course_ms=None, budget=row.budget,
                            reference=row.reference, reference_key="torch_ms", device=str(device),
                            extra={"course": row.course, "tensors": len(shapes), "numel": numel, "dtype": "float32",
                                   "threads": torch.get_num_threads()})
            try:
                row_values, row_grads = (as_matrices(values), as_matrices(grads)) if row.matrices else (values, grads)
                if not row_values:
                    raise ValueError("no matrix-shaped parameters in this case")
                course_params = _parameters(row_values, row_grads)
                reference_params = _parameters(row_values, row_grads)
                course_optimizer = row.build_course(course_params)
                reference_optimizer = row.build_ref(reference_params)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # adabound uses torch's deprecated add_(scalar, tensor)
                    course_times, reference_times = time_interleaved(
                        course_optimizer.step, reference_optimizer.step, steps=steps, warmup=warmup,
                        target_s=target_s, sync=sync)
            except Exception as error:  # one broken optimizer must not hide the others' numbers
                record.error = f"{type(error).__name__}: {error}".splitlines()[0][:120]
                yield record
                continue
            record.course_ms = statistics.median(course_times)
            record.reference_ms = statistics.median(reference_times)
            use_foreach = getattr(course_optimizer, "use_foreach", None)
            record.extra.update(
                course_path=("foreach" if use_foreach(course_optimizer.param_groups[0], course_params)
                             else "update") if use_foreach else "?",
                steps=len(course_times),
                course_min_ms=round(min(course_times), 4),
                torch_min_ms=round(min(reference_times), 4),
                min_ratio=round(min(course_times) / min(reference_times), 4),
                course_spread=round(relative_spread(course_times), 3),
                torch_spread=round(relative_spread(reference_times), 3),
            )
            del course_optimizer, reference_optimizer, course_params, reference_params
            yield record
