"""PyTorch's own optimizer test database (``torch.testing._internal.common_optimizers.optim_db``),
loaded for the course's tests, and the course class that stands for each of its entries.

``common_optimizers`` imports two heavy modules (``common_methods_invocations`` and
``common_device_type``, several seconds: they pull in torch._dynamo and torch._inductor) only
for the test decorators of its entries, which the course's tests do not use. They are replaced
by light stand-ins while it is imported (and removed again), so that the configurations
themselves, torch's ``optim_inputs_func`` and ``optim_error_inputs_func``, run unchanged.
"""

from __future__ import annotations

import importlib
import sys
import types
from copy import deepcopy

import torch

import course_lib.optim as ours

_HEAVY = ("torch.testing._internal.common_methods_invocations", "torch.testing._internal.common_device_type")
_MODULE = "torch.testing._internal.common_optimizers"


def _stand_ins():
    class DecorateInfo:  # only stored by OptimizerInfo
        def __init__(self, *args, **kwargs):
            self.args, self.kwargs = args, kwargs

    def toleranceOverride(*args, **kwargs):  # noqa: N802 (torch's name)
        return lambda function: function

    def tol(atol=0, rtol=0):
        return (atol, rtol)

    invocations = types.ModuleType(_HEAVY[0])
    invocations.DecorateInfo = DecorateInfo
    device_type = types.ModuleType(_HEAVY[1])
    device_type.tol, device_type.toleranceOverride = tol, toleranceOverride
    return {_HEAVY[0]: invocations, _HEAVY[1]: device_type}


def _load():
    if _MODULE in sys.modules:
        return sys.modules[_MODULE]
    inserted = {name: module for name, module in _stand_ins().items() if name not in sys.modules}
    sys.modules.update(inserted)
    flags_were_frozen = torch.backends.flags_frozen()
    try:
        return importlib.import_module(_MODULE)
    finally:
        # torch's test utilities freeze torch.backends' flags (cudnn.deterministic, ...) for the whole
        # process; the course's seed_everything sets them, so give them back
        if not flags_were_frozen:
            torch.backends.flags_frozen.__globals__["__allow_nonbracketed_mutation_flag"] = True
        # leave no trace: a test that imports these modules for real gets the real ones
        if any(name in inserted for name in _HEAVY):
            sys.modules.pop(_MODULE, None)
        for name in inserted:
            sys.modules.pop(name, None)


common_optimizers = _load()
INFOS = {info.name: info for info in common_optimizers.optim_db}
OptimizerErrorEnum = common_optimizers.OptimizerErrorEnum

#: course class -> (torch's OptimizerInfo, fixed keyword arguments of torch's class)
COURSE_CLASSES = {
    "SGD": ("SGD", {}),
    "Adagrad": ("Adagrad", {}),
    "Adadelta": ("Adadelta", {}),
    "RMSprop": ("RMSprop", {}),
    "Adam": ("Adam", {}),
    "AdamW": ("AdamW", {}),
    "AMSGrad": ("Adam", {"amsgrad": True}),
    "Adamax": ("Adamax", {}),
    "NAdam": ("NAdam", {}),
    "Adafactor": ("Adafactor", {}),
}
NAMES = list(COURSE_CLASSES)


def info_of(name):
    return INFOS[COURSE_CLASSES[name][0]]


def course_class(name):
    return getattr(ours, name)


def torch_class(name):
    """torch's class for a course class (AMSGrad: Adam with ``amsgrad=True``)."""
    info_name, fixed = COURSE_CLASSES[name]
    cls = info_of(name).optim_cls

    def make(params, **kwargs):
        return cls(params, **{**kwargs, **fixed})

    make.__name__ = f"torch.optim.{cls.__name__}"
    return make


def configs(name, *, with_foreach=True, skip=()):
    """torch's configurations of ``name`` on the CPU, as its own tests expand them
    (``_get_optim_inputs_including_global_cliquey_kwargs``: each with foreach/differentiable/fused
    off, then each of these on that the class supports on the CPU), plus ``foreach=True`` for
    every one of them: torch runs that expansion only where its foreach kernels are tested (CUDA).

    Returns ``[(description, kwargs)]``; the tensors in ``kwargs`` are made with the default dtype.
    """
    info = info_of(name)
    out = []
    for optim_input in common_optimizers._get_optim_inputs_including_global_cliquey_kwargs(
            "cpu", None, info, skip=skip):
        kwargs = dict(optim_input.kwargs)
        if name == "AMSGrad":
            kwargs.pop("amsgrad", None)
        out.append((optim_input.desc, kwargs))
        if with_foreach and "foreach" in info.supported_impls and not kwargs.get("differentiable") \
                and not kwargs.get("fused"):
            out.append((f"{optim_input.desc} & foreach", {**kwargs, "foreach": True}))
    return out


def error_inputs(name, dtype=torch.float64):
    return info_of(name).optim_error_inputs_func("cpu", dtype)


def copied(kwargs):
    return deepcopy(kwargs)
