"""``check_optimizer``: a learner's optimizer class against an independent reference.

The reference is ``torch.optim`` where torch has the algorithm and the
``adabound`` package for AdaBound, never course_lib's own code. Both optimizers
get the same float64 parameters and the same smooth non-quadratic loss, step
after step, and after every step the check compares every parameter (and, for
the optimizers torch.optim has, every state tensor under torch's key names).
The first difference fails the check with the case, the step, the parameter or
state key, and the expected against the obtained number.

Names, what the learner's class is constructed with (always by keyword), and the reference:

==============  =========================================================  ==========================
name            constructor keywords the cases use                         reference
==============  =========================================================  ==========================
gd              lr, maximize                                               torch.optim.SGD
sgd             lr, weight_decay, maximize                                 torch.optim.SGD
sgd_momentum    lr, momentum, dampening, weight_decay, nesterov            torch.optim.SGD
adagrad         lr, lr_decay, weight_decay, initial_accumulator_value, eps torch.optim.Adagrad
adadelta        lr, rho, eps, weight_decay                                 torch.optim.Adadelta
rmsprop         lr, alpha, eps, weight_decay, momentum, centered           torch.optim.RMSprop
adam            lr, betas, eps, weight_decay                               torch.optim.Adam
adamw           lr, betas, eps, weight_decay                               torch.optim.AdamW
amsgrad         lr, betas, eps, weight_decay                               torch.optim.Adam(amsgrad=True)
adamax          lr, betas, eps, weight_decay                               torch.optim.Adamax
nadam           lr, betas, eps, weight_decay, momentum_decay               torch.optim.NAdam
adafactor       lr, beta2_decay, eps, d, weight_decay                      torch.optim.Adafactor
adabound        lr, betas, final_lr, gamma, eps, weight_decay              adabound.AdaBound
==============  =========================================================  ==========================

The first case of each name passes only ``lr`` (and for ``sgd_momentum`` also
``momentum``): the other hyperparameters take the class's defaults, which must
be torch's (the package's for AdaBound). Every case of a name also checks that
``step(closure)`` returns the closure's loss, and one case gives a parameter no
gradient (``p.grad is None``): it must be skipped, as torch does.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Callable

import torch

from ._common import (call_kwargs, compare_number, compare_tensor, fail, generator,
                      learner_error, own_code_only, quiet_and_isolated, shape_str, succeed)

__all__ = ["check_optimizer", "OPTIMIZER_CHECKS", "run_optimizer_cases"]

ODD_SHAPES = ((), (1,), (3,), (2, 3, 1), (4, 3), (2, 3, 4))


@dataclass(frozen=True)
class Case:
    """One run of the learner's optimizer and the reference side by side."""

    title: str
    kwargs: dict
    shapes: tuple = ((5,),)
    second_group: dict | None = None  # {"shapes": (...), **hyperparameters of the second group}
    steps: int = 5
    closure: bool = True  # step(closure) (and check its return value), or backward() then step()
    maximize: bool = False  # the closure returns -loss (pair it with maximize=True)
    frozen: bool = False  # one more parameter that never gets a gradient
    loss_scale: float = 1.0  # small gradients, where eps matters
    seed: int = 0
    zero_in_place: bool = False  # the closure zeroes .grad in place (zero_grad(set_to_none=False)), not to None
    lr_change: tuple | None = None  # (step, factor): every group's lr is multiplied by factor before that step
    invalid: tuple = ()  # keyword sets the constructor must reject with torch's ValueError (no steps are run)


@dataclass(frozen=True)
class OptimizerSpec:
    title: str  # the name in the success line and in messages
    reference_name: str
    make_reference: Callable  # (params, **kwargs) -> optimizer
    cases: tuple
    torch_state: bool  # compare the state under torch's key names (by default)
    needs: tuple = field(default=())  # the constructor keywords the cases use, for the docs and messages


def _torch(cls_name: str, **fixed):
    def make(params, **kwargs):
        return getattr(torch.optim, cls_name)(params, **kwargs, **fixed, foreach=False)
    return make


def _adabound(params, **kwargs):
    import adabound  # the authors' package: a test-time reference only
    return adabound.AdaBound(params, **kwargs)


def _standard(lr, *, odd, groups, decay, many, extra=(), first=None):
    """The cases every optimizer gets, plus ``extra`` ones (inserted before the frozen-parameter case)."""
    first = dict(lr=lr) if first is None else first
    return (
        Case("one tensor, default hyperparameters", first, shapes=((5,),), steps=3, seed=1),
        Case("odd shapes, incl. a 0-dim tensor", odd, shapes=ODD_SHAPES, steps=5, closure=False, seed=2),
        Case("two parameter groups", first, shapes=((3,), ()), second_group=dict(shapes=((2, 2),), **groups),
             steps=6, seed=3),
        *(c for c in (decay,) if c is not None),
        *extra,
        Case("a parameter without gradient (p.grad is None) is skipped", first, shapes=((3,), (2,)),
             frozen=True, steps=3, closure=False, seed=4),
        Case("many steps, zero_grad(set_to_none=False), lr halved before step 51 as a scheduler would", many,
             shapes=((6, 4), (7,)), steps=100, seed=5, zero_in_place=True, lr_change=(51, 0.5)),
    )


def _decay(kwargs, steps=8):
    return Case("weight decay", kwargs, shapes=((4,), (2, 3)), steps=steps, seed=6)


def _invalid(*keyword_sets):
    return Case("invalid hyperparameters raise torch's ValueError", keyword_sets[0], steps=0,
                invalid=tuple(keyword_sets))


def _eps(kwargs):
    return Case("tiny gradients, where eps matters", kwargs, shapes=((5,), (2, 2)), steps=8, loss_scale=1e-4,
                seed=7)


def _adam_like(lr, *, decay=0.1, defaults_decay=None, extra_kwargs=None, many_betas=(0.9, 0.99)):
    extra_kwargs = extra_kwargs or {}
    return _standard(
        lr,
        odd=dict(lr=2 * lr, betas=(0.8, 0.95), **extra_kwargs),
        groups=dict(lr=5 * lr, betas=(0.5, 0.9)),
        decay=_decay(dict(lr=lr, weight_decay=decay)),
        many=dict(lr=lr, betas=many_betas, **({} if defaults_decay is None else dict(weight_decay=defaults_decay))),
        extra=(_eps(dict(lr=lr, eps=1e-4)),),
    )


OPTIMIZER_CHECKS: dict[str, OptimizerSpec] = {
    "gd": OptimizerSpec(
        "GD optimizer", "torch.optim.SGD", _torch("SGD"),
        _standard(0.1, odd=dict(lr=0.05), groups=dict(lr=0.02), decay=None,
                  many=dict(lr=0.05),
                  extra=(Case("maximize=True", dict(lr=0.1, maximize=True), shapes=((4,), (2, 2)), steps=5,
                              maximize=True, seed=8),
                         _invalid(dict(lr=-0.1)))),
        torch_state=True, needs=("lr", "maximize")),
    "sgd": OptimizerSpec(
        "SGD", "torch.optim.SGD", _torch("SGD"),
        _standard(0.1, odd=dict(lr=0.05, weight_decay=0.01), groups=dict(lr=0.02, weight_decay=0.2),
                  decay=_decay(dict(lr=0.1, weight_decay=0.1)), many=dict(lr=0.05, weight_decay=0.001),
                  extra=(Case("maximize=True with weight decay", dict(lr=0.1, weight_decay=0.05, maximize=True),
                              shapes=((4,), (2, 2)), steps=5, maximize=True, seed=8),
                         _invalid(dict(lr=-0.1), dict(lr=0.1, weight_decay=-0.01)))),
        torch_state=True, needs=("lr", "weight_decay", "maximize")),
    "sgd_momentum": OptimizerSpec(
        "SGD with momentum", "torch.optim.SGD", _torch("SGD"),
        _standard(0.05, first=dict(lr=0.05, momentum=0.9),
                  odd=dict(lr=0.05, momentum=0.8, dampening=0.3),
                  groups=dict(lr=0.02, momentum=0.5, nesterov=True),
                  decay=_decay(dict(lr=0.05, momentum=0.9, weight_decay=0.1)),
                  many=dict(lr=0.02, momentum=0.95, dampening=0.1, weight_decay=0.01),
                  extra=(Case("Nesterov momentum, zero_grad(set_to_none=False)",
                              dict(lr=0.05, momentum=0.9, nesterov=True),
                              shapes=((4,), (3, 2)), steps=10, seed=9, zero_in_place=True),
                         _invalid(dict(lr=-0.1, momentum=0.9), dict(lr=0.1, momentum=-0.5),
                                  dict(lr=0.1, momentum=0.9, weight_decay=-0.01), dict(lr=0.1, nesterov=True),
                                  dict(lr=0.1, momentum=0.9, dampening=0.1, nesterov=True)))),
        torch_state=True, needs=("lr", "momentum", "dampening", "weight_decay", "nesterov")),
    "adagrad": OptimizerSpec(
        "Adagrad", "torch.optim.Adagrad", _torch("Adagrad"),
        _standard(0.1, odd=dict(lr=0.1, lr_decay=0.05), groups=dict(lr=0.3, lr_decay=0.1),
                  decay=_decay(dict(lr=0.1, weight_decay=0.1)), many=dict(lr=0.1),
                  extra=(Case("initial accumulator value, and tiny gradients where eps matters",
                              dict(lr=0.1, initial_accumulator_value=0.5, eps=1e-3), shapes=((5,), (2, 2)),
                              steps=8, loss_scale=1e-3, seed=7),)),
        torch_state=True, needs=("lr", "lr_decay", "weight_decay", "initial_accumulator_value", "eps")),
    "adadelta": OptimizerSpec(
        "Adadelta", "torch.optim.Adadelta", _torch("Adadelta"),
        _standard(1.0, odd=dict(lr=0.5, rho=0.8), groups=dict(lr=0.5, rho=0.5),
                  decay=_decay(dict(lr=1.0, weight_decay=0.1)), many=dict(lr=1.0, rho=0.95, eps=1e-5),
                  extra=(_eps(dict(lr=1.0, eps=1e-3)),)),
        torch_state=True, needs=("lr", "rho", "eps", "weight_decay")),
    "rmsprop": OptimizerSpec(
        "RMSprop", "torch.optim.RMSprop", _torch("RMSprop"),
        _standard(0.01, odd=dict(lr=0.01, alpha=0.9, eps=1e-6), groups=dict(lr=0.005, alpha=0.5, centered=True),
                  decay=_decay(dict(lr=0.01, weight_decay=0.1)),
                  many=dict(lr=0.005, alpha=0.95, momentum=0.5),
                  extra=(Case("centered, with momentum", dict(lr=0.01, momentum=0.9, centered=True),
                              shapes=((4,), (3, 2)), steps=10, seed=9),
                         _eps(dict(lr=0.01, eps=1e-4)))),
        torch_state=True, needs=("lr", "alpha", "eps", "weight_decay", "momentum", "centered")),
    "adam": OptimizerSpec("Adam", "torch.optim.Adam", _torch("Adam"), _adam_like(0.01),
                          torch_state=True, needs=("lr", "betas", "eps", "weight_decay")),
    "adamw": OptimizerSpec("AdamW", "torch.optim.AdamW", _torch("AdamW"),
                           _adam_like(0.01, decay=0.2, defaults_decay=0.1),
                           torch_state=True, needs=("lr", "betas", "eps", "weight_decay")),
    "amsgrad": OptimizerSpec("AMSGrad", "torch.optim.Adam(amsgrad=True)", _torch("Adam", amsgrad=True),
                             _adam_like(0.01, many_betas=(0.9, 0.9)),
                             torch_state=True, needs=("lr", "betas", "eps", "weight_decay")),
    "adamax": OptimizerSpec("Adamax", "torch.optim.Adamax", _torch("Adamax"), _adam_like(0.02),
                            torch_state=True, needs=("lr", "betas", "eps", "weight_decay")),
    "nadam": OptimizerSpec("NAdam", "torch.optim.NAdam", _torch("NAdam"),
                           _adam_like(0.01, extra_kwargs=dict(momentum_decay=0.02)),
                           torch_state=True, needs=("lr", "betas", "eps", "weight_decay", "momentum_decay")),
    "adafactor": OptimizerSpec(
        "Adafactor", "torch.optim.Adafactor", _torch("Adafactor"),
        _standard(0.01, odd=dict(lr=0.02, beta2_decay=-0.5), groups=dict(lr=0.05, beta2_decay=-0.6),
                  decay=_decay(dict(lr=0.01, weight_decay=0.1)), many=dict(lr=0.01),
                  extra=(Case("eps and update clipping d", dict(lr=0.01, eps=(1e-10, 1e-2), d=1.2),
                              shapes=((5,), (3, 4)), steps=8, loss_scale=1e-3, seed=7),)),
        torch_state=True, needs=("lr", "beta2_decay", "eps", "d", "weight_decay")),
    "adabound": OptimizerSpec(
        "AdaBound", "adabound.AdaBound", _adabound,
        _standard(0.01, odd=dict(lr=0.02, betas=(0.8, 0.95)), groups=dict(lr=0.05, final_lr=0.2, gamma=0.01),
                  decay=_decay(dict(lr=0.01, weight_decay=0.1)), many=dict(lr=0.01, gamma=0.01),
                  extra=(Case("bounds that bite (final_lr, gamma), lr halved before step 6 as a scheduler would "
                              "(the bounds scale with lr / base_lr)", dict(lr=0.01, final_lr=0.05, gamma=0.1),
                              shapes=((4,), (3, 2)), steps=10, seed=9, lr_change=(6, 0.5)),
                         _eps(dict(lr=0.01, eps=1e-4)))),
        torch_state=False, needs=("lr", "betas", "final_lr", "gamma", "eps", "weight_decay")),
}


# ---------------------------------------------------------------------------------------------
# the problem both optimizers solve


def _make_problem(case: Case):
    """Parameter values and a smooth non-quadratic loss, the same for every run of this case."""
    gen = generator(1000 + case.seed)
    groups = [case.shapes] + ([case.second_group["shapes"]] if case.second_group else [])
    values, coefficients, centers = [], [], []
    for shapes in groups:
        values.append([torch.randn(shape, generator=gen, dtype=torch.float64) for shape in shapes])
        # curvatures from 0.05 to 5: coordinates on very different scales, as adaptive methods need
        coefficients.append([torch.exp(torch.empty(shape, dtype=torch.float64).uniform_(-3.0, 1.6, generator=gen))
                             for shape in shapes])
        centers.append([torch.randn(shape, generator=gen, dtype=torch.float64) for shape in shapes])
    frozen_value = torch.randn(3, generator=gen, dtype=torch.float64) if case.frozen else None

    def loss_fn(params_by_group):
        total = torch.zeros((), dtype=torch.float64)
        for params, coefs, ctrs in zip(params_by_group, coefficients, centers):
            for p, a, c in zip(params, coefs, ctrs):
                total = total + (0.5 * a * (p - c) ** 2 + 0.1 * torch.sin(2 * p)).sum()
        total = case.loss_scale * total
        return -total if case.maximize else total

    return values, frozen_value, loss_fn


def _fresh_params(values, frozen_value):
    groups = [[v.clone().requires_grad_(True) for v in group] for group in values]
    frozen = frozen_value.clone().requires_grad_(True) if frozen_value is not None else None
    return groups, frozen


def _param_arg(case: Case, groups, frozen):
    first = list(groups[0]) + ([frozen] if frozen is not None else [])
    if case.second_group is None:
        return first
    overrides = {k: v for k, v in case.second_group.items() if k != "shapes"}
    return [{"params": first}, {"params": list(groups[1]), **overrides}]


def _describe(case: Case, cls_name: str) -> str:
    def shapes(group_shapes, extra=""):
        return ", ".join(shape_str(s) for s in group_shapes) + extra
    frozen = ", (3,) without gradient" if case.frozen else ""
    if case.second_group is None:
        params = f"params of shapes [{shapes(case.shapes, frozen)}]"
    else:
        overrides = {k: v for k, v in case.second_group.items() if k != "shapes"}
        params = (f"[{{'params': shapes [{shapes(case.shapes, frozen)}]}}, "
                  f"{{'params': shapes [{shapes(case.second_group['shapes'])}], {call_kwargs(overrides)}}}]")
    loss = " of -loss" if case.maximize else ""
    if case.invalid:
        return "; ".join(f"{cls_name}(params, {call_kwargs(kwargs)})" for kwargs in case.invalid)
    return f"{cls_name}({params}, {call_kwargs(case.kwargs)}), {case.steps} step(s){loss}"


# ---------------------------------------------------------------------------------------------
# the check


_REFERENCE_MODULES = ("torch.", "adabound")


def _borrowed_from(cls) -> str | None:
    """The library class that ``cls`` is or inherits from, if it is an existing implementation."""
    from course_lib.optim import _base

    for klass in cls.__mro__:
        if klass in (object, torch.optim.Optimizer, _base.Optimizer):
            continue
        module = klass.__module__ or ""
        if module.startswith(_REFERENCE_MODULES) or module.startswith("course_lib."):
            return f"{module}.{klass.__qualname__}"
    return None


def check_optimizer(cls, name: str, *, compare_state: bool | None = None) -> None:
    """Check the learner's optimizer class ``cls`` against the reference for ``name``.

    ``compare_state`` (default: True for the algorithms torch.optim has, False for AdaBound) also
    compares ``optimizer.state[p]`` under torch's key names (``step``, ``exp_avg``, ...).
    On success prints ``<Title>: all N checks passed``; otherwise raises AssertionError.
    """
    __tracebackhide__ = True  # noqa: F841
    spec = _spec(name)
    if not inspect.isclass(cls):
        fail(f"{spec.title}: check_optimizer needs the class itself (e.g. check_optimizer(MyAdam, {name!r})), "
             f"got {type(cls).__name__} {cls!r}")
    if not issubclass(cls, torch.optim.Optimizer):
        fail(f"{spec.title}: {cls.__name__} must subclass torch.optim.Optimizer "
             f"(class {cls.__name__}(torch.optim.Optimizer): ...), so that schedulers, state_dict and "
             f"zero_grad work; its bases are {tuple(b.__name__ for b in cls.__bases__)}")
    borrowed = _borrowed_from(cls)
    if borrowed is not None:
        fail(f"{spec.title}: {cls.__name__} is or inherits from {borrowed}, an existing implementation; "
             f"write the update rule yourself in a subclass of torch.optim.Optimizer")
    run_optimizer_cases(cls, name, compare_state=compare_state, own_code_only=True)


def _spec(name: str) -> OptimizerSpec:
    try:
        return OPTIMIZER_CHECKS[name]
    except KeyError:
        raise ValueError(f"unknown optimizer check {name!r}; known: {', '.join(OPTIMIZER_CHECKS)}") from None


def run_optimizer_cases(cls, name: str, *, compare_state: bool | None = None, own_code_only: bool = False) -> None:
    """The cases of ``check_optimizer`` without its checks on where ``cls`` comes from.

    The course's own tests use it to show that course_lib's optimizers pass the checks the learners get.
    ``own_code_only``: also fail when ``cls`` runs an existing implementation (what check_optimizer does).
    """
    __tracebackhide__ = True  # noqa: F841
    spec = _spec(name)
    if compare_state is None:
        compare_state = spec.torch_state
    with quiet_and_isolated(default_dtype=torch.float64):
        for number, case in enumerate(spec.cases, start=1):
            prefix = (f"{spec.title}, case {number} of {len(spec.cases)} ({case.title}: "
                      f"{_describe(case, cls.__name__)})")
            _run_case(cls, spec, case, prefix, compare_state, own_only=own_code_only)
    succeed(spec.title, len(spec.cases))


def _run_case(cls, spec: OptimizerSpec, case: Case, prefix: str, compare_state: bool, own_only: bool = True) -> None:
    """One case, step by step; ``own_only``: fail if the learner's class runs an existing implementation."""
    __tracebackhide__ = True  # noqa: F841
    values, frozen_value, loss_fn = _make_problem(case)
    mine, mine_frozen = _fresh_params(values, frozen_value)
    ref, ref_frozen = _fresh_params(values, frozen_value)
    if case.invalid:
        _check_invalid(cls, spec, case, prefix, mine, ref, own_only)
        return
    with own_code_only(f"{prefix}: creating the optimizer", active=own_only):
        try:
            optimizer = cls(_param_arg(case, mine, mine_frozen), **case.kwargs)
        except Exception as err:  # noqa: BLE001 (the learner's code may raise anything)
            learner_error(f"{prefix}: creating the optimizer", err,
                          hint=f"the constructor must accept the keyword arguments {', '.join(spec.needs)}")
    if not isinstance(optimizer, torch.optim.Optimizer) or not hasattr(optimizer, "param_groups"):
        fail(f"{prefix}: the optimizer has no param_groups; call super().__init__(params, defaults) in __init__")
    reference = spec.make_reference(_param_arg(case, ref, ref_frozen), **case.kwargs)

    def closure_for(groups, frozen):
        def closure():
            for p in [p for g in groups for p in g] + ([frozen] if frozen is not None else []):
                if case.zero_in_place and p.grad is not None:
                    p.grad.zero_()  # what zero_grad(set_to_none=False) does: the same tensor, filled with zeros
                else:
                    p.grad = None
            loss = loss_fn(groups)
            loss.backward()
            return loss
        return closure

    mine_closure, ref_closure = closure_for(mine, mine_frozen), closure_for(ref, ref_frozen)
    for step in range(1, case.steps + 1):
        where = f"{prefix}, step {step}"
        if case.lr_change is not None and step == case.lr_change[0]:
            for opt in (optimizer, reference):  # what a learning-rate scheduler does between steps
                for group in opt.param_groups:
                    group["lr"] *= case.lr_change[1]
        if case.closure:
            expected_loss = float(reference.step(ref_closure))
            with own_code_only(f"{where}: step(closure)", active=own_only):
                try:
                    returned = optimizer.step(mine_closure)
                except Exception as err:  # noqa: BLE001
                    learner_error(f"{where}: step(closure)", err, hint=_closure_hint(err))
            if returned is None:
                fail(f"{where}: step(closure) returned None; it must call closure() (inside "
                     f"torch.enable_grad() when step is decorated with @torch.no_grad()) and return its loss")
            problem = compare_number(returned, expected_loss, "the loss returned by step(closure)")
            if problem:
                fail(f"{where}: {problem}")
        else:
            with torch.enable_grad():
                ref_closure()
                mine_closure()
            reference.step()
            with own_code_only(f"{where}: step()", active=own_only):
                try:
                    optimizer.step()
                except Exception as err:  # noqa: BLE001
                    learner_error(f"{where}: step()", err, hint=_step_hint(err, case))
        hint = _tiny_hint(case)
        _compare_grads(where, mine, ref)
        _compare_params(where, mine, ref, mine_frozen, ref_frozen, hint)
        if compare_state:
            _compare_state(where, spec, optimizer, reference, mine, ref, hint)


def _tiny_hint(case: Case) -> str | None:
    """What a tiny difference most likely comes from in this case, or None where no guess is likely."""
    if case.loss_scale < 1 or "eps" in case.kwargs:
        return "with tiny gradients eps dominates: look at where eps enters (inside or outside the square root)"
    if case.kwargs.get("weight_decay"):
        return "look at where weight decay enters the update (before or after the moments, times lr or not)"
    return None


def _check_invalid(cls, spec: OptimizerSpec, case: Case, prefix: str, mine, ref, own_only=True) -> None:
    """Each keyword set of ``case.invalid`` must raise ValueError with torch's (the reference's) message."""
    __tracebackhide__ = True  # noqa: F841
    for kwargs in case.invalid:
        call = f"{cls.__name__}(params, {call_kwargs(kwargs)})"
        try:
            spec.make_reference(list(ref[0]), **kwargs)
        except ValueError as err:
            expected = str(err)
        else:  # pragma: no cover (the cases are chosen so that the reference rejects them)
            raise RuntimeError(f"{spec.reference_name} accepts {kwargs}; the check's case is wrong")
        try:
            with own_code_only(f"{prefix}: {call}", active=own_only):
                cls(list(mine[0]), **kwargs)
        except ValueError as err:
            if str(err) != expected:
                fail(f"{prefix}: {call} raised ValueError({str(err)!r}); expected torch's message: "
                     f"ValueError({expected!r})")
            continue
        except Exception as err:  # noqa: BLE001
            learner_error(f"{prefix}: {call}", err, hint=f"raise ValueError({expected!r}), as torch does")
        fail(f"{prefix}: {call} did not raise; expected ValueError({expected!r}), as torch does")


def _closure_hint(err: Exception) -> str:
    if "does not require grad" in str(err):
        return ("step is running under torch.no_grad(), so the closure cannot compute gradients: "
                "call it as `with torch.enable_grad(): loss = closure()`")
    return ""


def _step_hint(err: Exception, case: Case) -> str:
    if case.frozen and isinstance(err, (TypeError, AttributeError)):
        return "skip the parameters whose .grad is None (`if p.grad is None: continue`), as torch.optim does"
    return ""


def _compare_grads(where, mine, ref) -> None:
    """step must leave p.grad as backward left it (torch.optim never changes it in place)."""
    __tracebackhide__ = True  # noqa: F841
    for g, (mine_group, ref_group) in enumerate(zip(mine, ref)):
        for i, (p, q) in enumerate(zip(mine_group, ref_group)):
            if q.grad is None or p.grad is None:
                continue
            problem = compare_tensor(p.grad, q.grad, f"p.grad of parameter {i} of group {g} after step")
            if problem:
                fail(f"{where}: {problem}; step changed p.grad in place: leave it as it is "
                     f"(grad = p.grad.add(p, alpha=weight_decay) makes a new tensor, p.grad.add_(...) changes p.grad)")


def _compare_params(where, mine, ref, mine_frozen, ref_frozen, hint=None) -> None:
    __tracebackhide__ = True  # noqa: F841
    for g, (mine_group, ref_group) in enumerate(zip(mine, ref)):
        for i, (p, q) in enumerate(zip(mine_group, ref_group)):
            problem = compare_tensor(p, q, f"parameter {i} of group {g} (shape {shape_str(q.shape)})",
                                     tiny_hint=hint)
            if problem:
                fail(f"{where}: {problem}")
    if mine_frozen is not None:
        problem = compare_tensor(mine_frozen, ref_frozen, "the parameter without gradient")
        if problem:
            fail(f"{where}: {problem}; a parameter whose .grad is None must not change")


def _compare_state(where, spec, optimizer, reference, mine, ref, hint=None) -> None:
    __tracebackhide__ = True  # noqa: F841
    for g, (mine_group, ref_group) in enumerate(zip(mine, ref)):
        for i, (p, q) in enumerate(zip(mine_group, ref_group)):
            expected = {k: v for k, v in reference.state.get(q, {}).items() if v is not None}
            if not expected:
                continue
            got = optimizer.state.get(p, {})
            name = f"parameter {i} of group {g} (shape {shape_str(q.shape)})"
            for key, value in expected.items():
                if key not in got:
                    fail(f"{where}: optimizer.state[p] of {name} has no key {key!r}; {spec.reference_name} "
                         f"keeps {sorted(expected)} (yours has {sorted(map(str, got))})")
                if key == "step":
                    problem = compare_number(got[key], float(value), f"state['step'] of {name}")
                else:
                    problem = compare_tensor(got[key], value, f"state[{key!r}] of {name}", reshape=True,
                                             tiny_hint=hint)
                if problem:
                    fail(f"{where}: {problem}")


def describe_checks() -> str:
    """A table of the optimizer checks, for the docs."""
    lines = []
    for name, spec in OPTIMIZER_CHECKS.items():
        lines.append(f"{name}: {spec.title} vs {spec.reference_name}, {len(spec.cases)} cases, "
                     f"keywords {', '.join(spec.needs)}")
        for case in spec.cases:
            lines.append(f"    {case.title}: {call_kwargs(case.kwargs)}; {case.steps} steps")
    return "\n".join(lines)

