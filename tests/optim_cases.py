"""The table that tests/test_optim.py runs: for each course optimizer, its
reference implementation, a grid of hyperparameters that together turn every
option on, bad hyperparameters, and a learning rate that makes it descend.
Optimizers that torch.optim has are also run through PyTorch's own test
configurations by tests/test_optim_torch_db.py; for them only the cases that
drive the scheduler, add_param_group and grad-None tests are used here.

Each parity case has ``hp`` (the constructor's defaults, which also drive the
first param group) and ``group2`` (overrides for the second param group, so
that per-group hyperparameters are exercised). The second group never changes
``maximize``: the parity loss flips its sign for maximizing runs so that every
run stays bounded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch

import course_lib.optim as ours

try:  # the authors' package: AdaBound's reference
    import adabound as adabound_package
except ImportError:  # pragma: no cover - requirements.txt installs it
    adabound_package = None


@dataclass(frozen=True)
class Case:
    name: str
    hp: dict
    group2: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Spec:
    name: str                          # class name in course_lib.optim
    reference: Callable                # (params, **hp) -> reference optimizer, its single-tensor path
    cases: tuple                       # Case, ...
    bad_kwargs: tuple                  # dict, ... (each must make the reference raise ValueError)
    cycles_momentum: bool              # has momentum or betas, so OneCycleLR may cycle it
    descent_hp: dict                   # {"quadratic": kwargs, "rosenbrock": kwargs}: a sensible lr
    reference_has_maximize: bool = True
    reference_has_foreach: bool = True
    extra_group_keys: frozenset = frozenset()  # keys our param groups hold and the reference's do not

    @property
    def in_torch_db(self) -> bool:
        """torch.optim has this optimizer: tests/test_optim_torch_db.py runs it through PyTorch's own
        configurations (0-dim and non-contiguous tensors included), so the grids here are not rerun for it."""
        return self.reference_has_foreach

    @property
    def cls(self):
        return getattr(ours, self.name)


def torch_reference(torch_cls, **fixed):
    """A factory for torch.optim's class on its readable single-tensor path."""
    def make(params, **hp):
        return torch_cls(params, **{**hp, **fixed, "foreach": False})

    def default_path(params, **hp):
        return torch_cls(params, **{**hp, **fixed})

    make.__name__ = f"torch.optim.{torch_cls.__name__}"
    make.torch_cls = torch_cls
    make.default_path = default_path  # torch's own choice of path (foreach on CUDA)
    return make


def adabound_reference(params, **hp):
    """The adabound package's AdaBound, which has neither ``maximize`` nor ``foreach``."""
    hp = {k: v for k, v in hp.items() if k not in ("maximize", "foreach")}
    return adabound_package.AdaBound(params, **hp)


adabound_reference.default_path = adabound_reference


ADAM_BAD = (
    {"lr": -1e-3},
    {"eps": -1e-8},
    {"betas": (1.0, 0.999)},
    {"betas": (-0.1, 0.999)},
    {"betas": (0.9, 1.0)},
    {"betas": (0.9, -0.5)},
    {"weight_decay": -0.01},
    {"eps": -1.0, "betas": (2.0, 2.0)},  # the order of the checks
    {"lr": -1.0, "weight_decay": -1.0},
)

SPECS = (
    Spec(
        "SGD", torch_reference(torch.optim.SGD),
        cases=(
            Case("plain", {"lr": 0.05}, {"lr": 0.02}),
            Case("momentum_dampening", {"lr": 0.03, "momentum": 0.9, "dampening": 0.3},
                 {"momentum": 0.5, "dampening": 0.0}),
            Case("nesterov_wd", {"lr": 0.03, "momentum": 0.9, "nesterov": True, "weight_decay": 0.1},
                 {"nesterov": False, "weight_decay": 0.0, "momentum": 0.7}),
            Case("maximize_momentum_wd", {"lr": 0.03, "momentum": 0.8, "weight_decay": 0.05, "maximize": True},
                 {"momentum": 0.0, "lr": 0.04}),
        ),
        bad_kwargs=(
            {"lr": -0.1},
            {"momentum": -0.5},
            {"weight_decay": -1e-4},
            {"nesterov": True},
            {"nesterov": True, "momentum": 0.9, "dampening": 0.1},
            {"lr": -1.0, "momentum": -1.0},
            {"momentum": -1.0, "weight_decay": -1.0},
        ),
        cycles_momentum=True,
        descent_hp={"quadratic": {"lr": 0.02}, "rosenbrock": {"lr": 1e-3}},
    ),
    Spec(
        "Adagrad", torch_reference(torch.optim.Adagrad),
        cases=(
            Case("plain", {"lr": 0.1}, {"lr": 0.05}),
            Case("lr_decay_init_acc_wd_eps",
                 {"lr": 0.1, "lr_decay": 0.01, "initial_accumulator_value": 0.1, "weight_decay": 0.1, "eps": 1e-8},
                 {"lr_decay": 0.0, "weight_decay": 0.0, "eps": 1e-6}),
            Case("maximize_wd", {"lr": 0.1, "maximize": True, "weight_decay": 0.05}, {"lr_decay": 0.05}),
        ),
        bad_kwargs=(
            {"lr": -0.01},
            {"lr_decay": -1e-3},
            {"weight_decay": -1.0},
            {"initial_accumulator_value": -0.5},
            {"eps": -1e-10},
            {"lr_decay": -1.0, "eps": -1.0},
            {"initial_accumulator_value": -1.0, "eps": -1.0},
        ),
        cycles_momentum=False,
        descent_hp={"quadratic": {"lr": 0.5}, "rosenbrock": {"lr": 1.0}},
    ),
    Spec(
        "Adadelta", torch_reference(torch.optim.Adadelta),
        cases=(
            Case("plain", {"lr": 1.0}, {"lr": 0.5, "rho": 0.95}),
            Case("rho_eps_wd", {"lr": 2.0, "rho": 0.8, "eps": 1e-4, "weight_decay": 0.1},
                 {"weight_decay": 0.0, "eps": 1e-6}),
            Case("maximize_wd", {"lr": 1.0, "maximize": True, "weight_decay": 0.05}, {"rho": 0.5}),
        ),
        bad_kwargs=(
            {"lr": -1.0},
            {"rho": 1.5},
            {"rho": -0.1},
            {"eps": -1e-6},
            {"weight_decay": -0.1},
            {"rho": 2.0, "eps": -1.0},
            {"eps": -1.0, "weight_decay": -1.0},
        ),
        cycles_momentum=False,
        descent_hp={"quadratic": {"lr": 2.0}, "rosenbrock": {"lr": 1.0}},
    ),
    Spec(
        "RMSprop", torch_reference(torch.optim.RMSprop),
        cases=(
            Case("plain", {"lr": 0.01}, {"lr": 0.005, "alpha": 0.9}),
            Case("centered_momentum_wd",
                 {"lr": 0.005, "alpha": 0.9, "centered": True, "momentum": 0.9, "weight_decay": 0.1, "eps": 1e-6},
                 {"centered": False, "momentum": 0.0, "weight_decay": 0.0}),
            Case("momentum_only", {"lr": 0.005, "momentum": 0.5}, {"momentum": 0.9, "centered": True}),
            Case("maximize_centered", {"lr": 0.01, "centered": True, "maximize": True}, {"momentum": 0.3}),
        ),
        bad_kwargs=(
            {"lr": -0.01},
            {"eps": -1.0},
            {"momentum": -0.9},
            {"weight_decay": -0.01},
            {"alpha": -0.99},
            {"alpha": -1.0, "eps": -1.0},
            {"momentum": -1.0, "weight_decay": -1.0, "alpha": -1.0},
        ),
        cycles_momentum=True,
        descent_hp={"quadratic": {"lr": 0.01}, "rosenbrock": {"lr": 0.01}},
    ),
    Spec(
        "Adam", torch_reference(torch.optim.Adam),
        cases=(
            Case("plain", {"lr": 0.01}, {"lr": 0.005, "betas": (0.8, 0.99)}),
            Case("amsgrad_wd", {"lr": 0.01, "amsgrad": True, "weight_decay": 0.1, "eps": 1e-6},
                 {"amsgrad": False, "weight_decay": 0.0}),
            Case("decoupled_wd_amsgrad", {"lr": 0.01, "weight_decay": 0.1, "decoupled_weight_decay": True,
                                          "amsgrad": True, "betas": (0.8, 0.99)},
                 {"decoupled_weight_decay": False, "amsgrad": False}),
            Case("maximize_wd", {"lr": 0.01, "maximize": True, "weight_decay": 0.05}, {"amsgrad": True}),
        ),
        bad_kwargs=ADAM_BAD,
        cycles_momentum=True,
        descent_hp={"quadratic": {"lr": 0.05}, "rosenbrock": {"lr": 0.05}},
    ),
    Spec(
        "AdamW", torch_reference(torch.optim.AdamW),
        cases=(
            Case("plain", {"lr": 0.01}, {"lr": 0.005, "weight_decay": 0.1}),
            Case("amsgrad_wd", {"lr": 0.01, "amsgrad": True, "weight_decay": 0.2, "betas": (0.8, 0.99), "eps": 1e-6},
                 {"amsgrad": False, "weight_decay": 0.0}),
            Case("maximize_amsgrad", {"lr": 0.01, "maximize": True, "amsgrad": True}, {"weight_decay": 0.3}),
        ),
        bad_kwargs=ADAM_BAD,
        cycles_momentum=True,
        descent_hp={"quadratic": {"lr": 0.05}, "rosenbrock": {"lr": 0.05}},
    ),
    Spec(
        "AMSGrad", torch_reference(torch.optim.Adam, amsgrad=True),
        cases=(
            Case("plain", {"lr": 0.01}, {"lr": 0.005, "betas": (0.8, 0.99)}),
            Case("wd_eps", {"lr": 0.01, "weight_decay": 0.1, "eps": 1e-6}, {"weight_decay": 0.0}),
            Case("maximize_wd", {"lr": 0.01, "maximize": True, "weight_decay": 0.05}, {"betas": (0.5, 0.9)}),
        ),
        bad_kwargs=ADAM_BAD,
        cycles_momentum=True,
        descent_hp={"quadratic": {"lr": 0.05}, "rosenbrock": {"lr": 0.05}},
    ),
    Spec(
        "Adamax", torch_reference(torch.optim.Adamax),
        cases=(
            Case("plain", {"lr": 0.02}, {"lr": 0.01, "betas": (0.8, 0.99)}),
            Case("wd_eps_betas", {"lr": 0.02, "weight_decay": 0.1, "eps": 1e-4, "betas": (0.5, 0.9)},
                 {"weight_decay": 0.0, "eps": 1e-8}),
            Case("maximize_wd", {"lr": 0.02, "maximize": True, "weight_decay": 0.05}, {"betas": (0.7, 0.95)}),
        ),
        bad_kwargs=(
            {"lr": -2e-3},
            {"eps": -1e-8},
            {"betas": (1.0, 0.999)},
            {"betas": (-0.1, 0.999)},
            {"betas": (0.9, 1.5)},
            {"weight_decay": -0.1},
            {"eps": -1.0, "betas": (2.0, 2.0)},
        ),
        cycles_momentum=True,
        descent_hp={"quadratic": {"lr": 0.2}, "rosenbrock": {"lr": 0.2}},
    ),
    Spec(
        "NAdam", torch_reference(torch.optim.NAdam),
        cases=(
            Case("plain", {"lr": 0.01}, {"lr": 0.005, "betas": (0.8, 0.99)}),
            Case("momentum_decay_wd", {"lr": 0.01, "momentum_decay": 0.01, "weight_decay": 0.1, "eps": 1e-6},
                 {"momentum_decay": 0.004, "weight_decay": 0.0}),
            Case("decoupled_wd", {"lr": 0.01, "weight_decay": 0.1, "decoupled_weight_decay": True},
                 {"decoupled_weight_decay": False, "weight_decay": 0.2}),
            Case("maximize_wd", {"lr": 0.01, "maximize": True, "weight_decay": 0.05}, {"momentum_decay": 0.1}),
        ),
        bad_kwargs=(
            {"lr": -2e-3},
            {"eps": -1e-8},
            {"betas": (1.0, 0.999)},
            {"betas": (0.9, -0.1)},
            {"weight_decay": -0.1},
            {"momentum_decay": -0.004},
            {"weight_decay": -1.0, "momentum_decay": -1.0},
        ),
        cycles_momentum=True,
        descent_hp={"quadratic": {"lr": 0.03}, "rosenbrock": {"lr": 0.03}},
    ),
    Spec(
        "Adafactor", torch_reference(torch.optim.Adafactor),
        cases=(
            Case("plain", {"lr": 0.01}, {"lr": 0.005}),
            Case("beta2_decay_d_eps_wd",
                 {"lr": 0.02, "beta2_decay": -0.5, "d": 1.5, "eps": (1e-20, 1e-2), "weight_decay": 0.1},
                 {"beta2_decay": -0.8, "d": 1.0, "eps": (None, 1e-3), "weight_decay": 0.0}),
            Case("maximize_wd", {"lr": 0.01, "maximize": True, "weight_decay": 0.05}, {"d": 3.0}),
        ),
        bad_kwargs=(
            {"lr": -0.01},
            {"beta2_decay": 0.5},
            {"eps": (-1e-30, 1e-3)},
            {"eps": (None, -1e-3)},
            {"d": 0.5},
            {"weight_decay": -0.1},
            {"lr": -1.0, "d": 0.0},
            {"beta2_decay": 1.0, "weight_decay": -1.0},
        ),
        cycles_momentum=False,
        descent_hp={"quadratic": {"lr": 0.1}, "rosenbrock": {"lr": 0.1}},
    ),
    Spec(
        "AdaBound", adabound_reference,
        cases=(
            Case("plain", {"lr": 0.01}, {"lr": 0.005, "final_lr": 0.05}),
            Case("amsbound_wd", {"lr": 0.01, "amsbound": True, "weight_decay": 0.1, "eps": 1e-6,
                                 "betas": (0.8, 0.99)},
                 {"amsbound": False, "weight_decay": 0.0}),
            Case("fast_bounds", {"lr": 0.01, "final_lr": 0.05, "gamma": 0.1}, {"gamma": 0.5, "amsbound": True}),
            Case("maximize_wd", {"lr": 0.01, "maximize": True, "weight_decay": 0.05}, {"gamma": 0.01}),
        ),
        bad_kwargs=(
            {"lr": -1e-3},
            {"eps": -1e-8},
            {"betas": (1.0, 0.999)},
            {"betas": (0.9, 1.0)},
            {"final_lr": -0.1},
            {"gamma": 1.0},
            {"gamma": -0.1},
            {"weight_decay": -0.1},  # the package accepts it: skipped
            {"final_lr": -1.0, "gamma": 2.0},
        ),
        cycles_momentum=True,
        descent_hp={"quadratic": {"lr": 0.01, "final_lr": 0.01}, "rosenbrock": {"lr": 0.01, "final_lr": 0.01}},
        reference_has_maximize=False,
        reference_has_foreach=False,
        # base_lr: the lr a group started with (the package keeps it in an attribute), so that
        # ``final_lr * lr / base_lr`` survives state_dict and add_param_group
        extra_group_keys=frozenset({"maximize", "foreach", "base_lr"}),
    ),
)

SPEC_BY_NAME = {spec.name: spec for spec in SPECS}
ALL_CASES = tuple((spec, case) for spec in SPECS for case in spec.cases)
#: the parity grid proper: only where torch's database has nothing (AdaBound, against the authors' package)
GRID_CASES = tuple((spec, case) for spec, case in ALL_CASES if not spec.in_torch_db)
#: one case per optimizer (its richest in options), plus the whole grid where there is no torch database
ONE_CASE_EACH = tuple((spec, spec.cases[1]) for spec in SPECS if spec.in_torch_db) + GRID_CASES

