"""course_lib.optim equals torch.optim (and the adabound package), option by option.

Everything runs in float64 (the ``float64`` fixture) on the device chosen with
``--device`` (``pytest --device cuda tests/test_optim.py`` runs it on a GPU).
The table of optimizers, hyperparameter grids and bad hyperparameters is in
``tests/optim_cases.py``.
"""

from __future__ import annotations

import inspect
import io
import math

import pytest
import torch
from torch.optim.lr_scheduler import CosineAnnealingLR, OneCycleLR, StepLR
from torch.testing import assert_close

from optim_cases import GRID_CASES, ONE_CASE_EACH, SPEC_BY_NAME, SPECS, Case

pytestmark = [
    pytest.mark.usefixtures("float64"),
    # the adabound package calls Tensor.add(Number, Tensor), deprecated in torch
    pytest.mark.filterwarnings("ignore:This overload of:UserWarning"),
]

RTOL, ATOL = 1e-10, 1e-12          # ours vs the reference
SELF_RTOL, SELF_ATOL = 1e-12, 1e-14  # ours (foreach) vs ours (readable)
STEPS = 50
SHAPES = [(), (7,), (3, 5), (4, 3, 2)]
UNSUPPORTED_GROUP_KEYS = {"capturable", "differentiable", "fused"}  # torch.optim's, which AdaBound lacks

GRID_IDS = [f"{spec.name}-{case.name}" for spec, case in GRID_CASES]
ONE_CASE_IDS = [f"{spec.name}-{case.name}" for spec, case in ONE_CASE_EACH]
SPEC_IDS = [spec.name for spec in SPECS]
GRID_SPECS = [spec for spec in SPECS if not spec.in_torch_db]


# ----------------------------------------------------------------------------- helpers

def make_params(device, seed=0):
    """Leaves of shapes (), (7,), (3, 5), (4, 3, 2) and a non-contiguous (3, 5) (a transposed view)."""
    generator = torch.Generator().manual_seed(seed)
    tensors = [torch.randn(shape, generator=generator).to(device) for shape in SHAPES]
    tensors.append(torch.randn(5, 3, generator=generator).to(device).t())
    params = [t.requires_grad_() for t in tensors]
    assert not params[-1].is_contiguous() and params[-1].is_leaf
    return params


def clone_params(params):
    """Independent copies with the same values and strides."""
    return [p.detach().clone().requires_grad_() for p in params]


def two_groups(params, group2):
    """Group 1 (constructor defaults): (), (3, 5), the non-contiguous one; group 2 (overrides): (7,), (4, 3, 2)."""
    return [{"params": [params[0], params[2], params[4]]}, {"params": [params[1], params[3]], **group2}]


def parity_loss(params, sign=1.0):
    """A smooth non-quadratic loss, bounded below, whose gradient differs coordinate by coordinate."""
    total = 0.0
    for i, p in enumerate(params):
        weight = 1.0 + 0.25 * i
        total = total + weight * (0.025 * p.pow(4) + 0.05 * p * p + torch.sin(p + 0.3 * i)).sum()
    return sign * total


@torch.no_grad()
def parity_grads(params, sign=1.0, used=None):
    """Set ``.grad`` to the gradient of ``parity_loss`` (in closed form: autograd would dominate the run time);
    params not in ``used`` get ``grad = None``."""
    for i, p in enumerate(params):
        if used is not None and i not in used:
            p.grad = None
            continue
        weight = sign * (1.0 + 0.25 * i)
        p.grad = (0.1 * p.pow(3)).add_(p, alpha=0.1).add_(torch.cos(p + 0.3 * i)).mul_(weight)


def loss_signs(spec, case):
    """(ours, reference): maximizing runs maximize -L; a reference without ``maximize`` minimizes L."""
    maximize = case.hp.get("maximize", False)
    ours = -1.0 if maximize else 1.0
    reference = ours if (spec.reference_has_maximize or not maximize) else -ours
    return ours, reference


def take_step(optimizer, params, sign, used=None):
    """One step on ``parity_loss`` (times ``sign``); only the params whose index is in ``used`` get a grad."""
    parity_grads(params, sign, used)
    optimizer.step()


def make_ours(spec, params_or_groups, hp, foreach):
    return spec.cls(params_or_groups, **{**hp, "foreach": foreach})


def make_reference(spec, params_or_groups, hp):
    return spec.reference(params_or_groups, **hp)


def _close(got, expected, rtol, atol):
    """Cheap version of assert_close's test (assert_close itself runs only to explain a failure)."""
    return (got.shape == expected.shape and got.dtype == expected.dtype and got.device == expected.device
            and torch.allclose(got, expected, rtol=rtol, atol=atol))


def assert_same(ours, ours_params, reference, ref_params, where, rtol=RTOL, atol=ATOL):
    """Params and every state tensor of ``ours`` equal the reference's; same state keys, shapes, dtypes, devices."""
    for i, (p, q) in enumerate(zip(ours_params, ref_params)):
        here = f"{where}, param {i} (shape {tuple(p.shape)})"
        if not _close(p, q, rtol, atol):
            assert_close(p, q, rtol=rtol, atol=atol, msg=lambda m: f"{here}: parameter differs\n{m}")
        ours_state, ref_state = ours.state.get(p, {}), reference.state.get(q, {})
        assert set(ours_state) == set(ref_state), (
            f"{here}: state keys {sorted(ours_state)} != reference's {sorted(ref_state)}")
        for key, expected in ref_state.items():
            got = ours_state[key]
            what = f"{here}, state[{key!r}]"
            if not torch.is_tensor(expected):  # the adabound package keeps a Python int step
                assert float(got) == float(expected), f"{what}: {float(got)} != reference's {float(expected)}"
                continue
            assert torch.is_tensor(got), f"{what}: a {type(got).__name__}, the reference's is a tensor"
            assert got.shape == expected.shape, f"{what}: shape {tuple(got.shape)} != {tuple(expected.shape)}"
            if not _close(got, expected, rtol, atol):
                assert_close(got, expected, rtol=rtol, atol=atol, msg=lambda m, what=what: f"{what} differs\n{m}")


def saved_and_reloaded(state_dict):
    """Through torch.save / torch.load, as a checkpoint goes (and no tensor stays shared with the source)."""
    buffer = io.BytesIO()
    torch.save(state_dict, buffer)
    buffer.seek(0)
    return torch.load(buffer)


def group_keys(optimizer, extra=frozenset()):
    return [set(g) - UNSUPPORTED_GROUP_KEYS - set(extra) for g in optimizer.param_groups]


# ----------------------------------------------------------------------------- parity

@pytest.mark.parametrize("foreach", [False, True], ids=["readable", "foreach"])
@pytest.mark.parametrize("spec,case", GRID_CASES, ids=GRID_IDS)
def test_matches_reference(spec, case, foreach, device):
    """50 steps, five odd-shaped params in two groups: params and every state tensor equal the reference's."""
    ours_sign, ref_sign = loss_signs(spec, case)
    ours_params = make_params(device)
    ref_params = clone_params(ours_params)
    ours = make_ours(spec, two_groups(ours_params, case.group2), case.hp, foreach)
    reference = make_reference(spec, two_groups(ref_params, case.group2), case.hp)
    for step in range(1, STEPS + 1):
        take_step(ours, ours_params, ours_sign)
        take_step(reference, ref_params, ref_sign)
        assert_same(ours, ours_params, reference, ref_params,
                    f"{spec.name}[{case.name}] foreach={foreach} on {device}, step {step}")
    assert group_keys(ours, spec.extra_group_keys) == group_keys(reference)


@pytest.mark.parametrize("spec,case", GRID_CASES, ids=GRID_IDS)
def test_foreach_equals_readable(spec, case, device):
    """The multi-tensor path gives the numbers of the readable rule."""
    sign, _ = loss_signs(spec, case)
    readable_params = make_params(device)
    foreach_params = clone_params(readable_params)
    readable = make_ours(spec, two_groups(readable_params, case.group2), case.hp, False)
    fast = make_ours(spec, two_groups(foreach_params, case.group2), case.hp, True)
    for step in range(1, STEPS + 1):
        take_step(readable, readable_params, sign)
        take_step(fast, foreach_params, sign)
        assert_same(fast, foreach_params, readable, readable_params,
                    f"{spec.name}[{case.name}] foreach vs readable on {device}, step {step}",
                    rtol=SELF_RTOL, atol=SELF_ATOL)


def reference_signature(spec):
    """[(name, kind, default)] of the reference's constructor, without capturable/differentiable/fused.

    A parameter that the reference takes positionally *after* a dropped one cannot keep its
    position in ours; its kind is given as None (ours may make it keyword-only)."""
    if spec.name == "AMSGrad":  # Adam's arguments; amsgrad, if ours takes it at all, is always on
        parameters = inspect.signature(torch.optim.Adam.__init__).parameters
        dropped = UNSUPPORTED_GROUP_KEYS | {"amsgrad"}
    elif spec.reference_has_foreach:
        parameters = inspect.signature(spec.reference.torch_cls.__init__).parameters
        dropped = UNSUPPORTED_GROUP_KEYS
    else:  # the adabound package, plus torch's keyword-only maximize and foreach
        import adabound
        parameters = inspect.signature(adabound.AdaBound.__init__).parameters
        return [(n, p.kind, p.default) for n, p in parameters.items()] + [
            ("maximize", inspect.Parameter.KEYWORD_ONLY, False), ("foreach", inspect.Parameter.KEYWORD_ONLY, None)]
    signature, after_dropped = [], False
    for name, p in parameters.items():
        if name in dropped:
            after_dropped = after_dropped or p.kind == inspect.Parameter.POSITIONAL_OR_KEYWORD
            continue
        movable = after_dropped and p.kind == inspect.Parameter.POSITIONAL_OR_KEYWORD
        signature.append((name, None if movable else p.kind, p.default))
    return signature


@pytest.mark.parametrize("spec", GRID_SPECS, ids=[s.name for s in GRID_SPECS])
def test_signature_matches_reference(spec):
    """Same argument names, order, kinds and defaults as the reference (torch's classes: test_optim_torch_db.py)."""
    parameters = dict(inspect.signature(spec.cls.__init__).parameters)
    if spec.name == "AMSGrad" and "amsgrad" in parameters:
        assert parameters.pop("amsgrad").default is True, "AMSGrad(amsgrad=...) must default to True"
    expected = reference_signature(spec)
    assert list(parameters) == [name for name, _, _ in expected], f"{spec.name}: arguments {list(parameters)}"
    got = [(name, None if kind is None else p.kind, p.default)
           for (name, p), (_, kind, _) in zip(parameters.items(), expected)]
    assert got == expected, f"{spec.name}: ours {got}\n != reference {expected}"


@pytest.mark.parametrize("spec", GRID_SPECS, ids=[s.name for s in GRID_SPECS])
def test_param_group_keys_match_reference(spec, device):
    """The param groups hold the reference's hyperparameter keys, so a state dict moves both ways."""
    params = make_params(device)
    ours = spec.cls(params)
    reference = spec.reference(clone_params(params))
    assert group_keys(ours, spec.extra_group_keys) == group_keys(reference)
    assert set(ours.defaults) - spec.extra_group_keys == set(reference.defaults) - UNSUPPORTED_GROUP_KEYS
    for key in set(reference.defaults) - UNSUPPORTED_GROUP_KEYS - {"foreach"}:
        assert ours.defaults[key] == reference.defaults[key], f"{spec.name}: default {key}"


# ----------------------------------------------------------------------------- state_dict

@pytest.mark.parametrize("direction", ["ours_to_reference", "reference_to_ours"])
@pytest.mark.parametrize("spec,case", GRID_CASES, ids=GRID_IDS)
def test_state_dict_moves_both_ways(spec, case, direction, device):
    """k steps with one, load its state_dict into a fresh other, continue both: identical runs."""
    ours_sign, ref_sign = loss_signs(spec, case)
    first_steps, more_steps = 7, 8
    params = make_params(device)
    # The loading side is built with another lr (except the adabound package, whose lr
    # schedule fixes its base lr at construction): the state dict must bring the right one.
    loaded_hp = case.hp if not spec.reference_has_foreach else {**case.hp, "lr": 3 * case.hp["lr"]}
    if direction == "ours_to_reference":
        source = make_ours(spec, two_groups(params, case.group2), case.hp, False)
        for _ in range(first_steps):
            take_step(source, params, ours_sign)
        loaded_params = clone_params(params)
        loaded = make_reference(spec, two_groups(loaded_params, {}), loaded_hp)
    else:
        source = make_reference(spec, two_groups(params, case.group2), case.hp)
        for _ in range(first_steps):
            take_step(source, params, ref_sign)
        loaded_params = clone_params(params)
        loaded = make_ours(spec, two_groups(loaded_params, {}), loaded_hp, False)
    loaded.load_state_dict(saved_and_reloaded(source.state_dict()))

    saved, reloaded = source.state_dict(), loaded.state_dict()
    assert set(saved["state"]) == set(reloaded["state"])
    for index in saved["state"]:
        assert set(saved["state"][index]) == set(reloaded["state"][index]), f"state keys of param {index}"

    if direction == "ours_to_reference":
        ours, ours_params, reference, ref_params = source, params, loaded, loaded_params
    else:
        ours, ours_params, reference, ref_params = loaded, loaded_params, source, params
    assert_same(ours, ours_params, reference, ref_params, f"{spec.name}[{case.name}] {direction} right after loading")
    for step in range(first_steps + 1, first_steps + more_steps + 1):
        take_step(ours, ours_params, ours_sign)
        take_step(reference, ref_params, ref_sign)
        assert_same(ours, ours_params, reference, ref_params,
                    f"{spec.name}[{case.name}] {direction} on {device}, step {step}")


@pytest.mark.parametrize("spec", GRID_SPECS, ids=[s.name for s in GRID_SPECS])
def test_state_dict_keys_match_reference(spec, device):
    """After a step, ours' state_dict has the reference's state keys for every param and the same groups."""
    case = spec.cases[1]
    ours_sign, ref_sign = loss_signs(spec, case)
    params = make_params(device)
    ref_params = clone_params(params)
    ours = make_ours(spec, two_groups(params, case.group2), case.hp, None)
    reference = make_reference(spec, two_groups(ref_params, case.group2), case.hp)
    take_step(ours, params, ours_sign)
    take_step(reference, ref_params, ref_sign)
    ours_sd, ref_sd = ours.state_dict(), reference.state_dict()
    assert {i: set(s) for i, s in ours_sd["state"].items()} == {i: set(s) for i, s in ref_sd["state"].items()}
    assert [g["params"] for g in ours_sd["param_groups"]] == [g["params"] for g in ref_sd["param_groups"]]
    assert ([set(g) - spec.extra_group_keys for g in ours_sd["param_groups"]]
            == [set(g) - UNSUPPORTED_GROUP_KEYS for g in ref_sd["param_groups"]])


# ----------------------------------------------------------------------------- schedulers

SCHEDULERS = {
    "StepLR": lambda opt, lr, cycle: StepLR(opt, step_size=7, gamma=0.5),
    "CosineAnnealingLR": lambda opt, lr, cycle: CosineAnnealingLR(opt, T_max=15, eta_min=0.01 * lr),
    "OneCycleLR": lambda opt, lr, cycle: OneCycleLR(opt, max_lr=[2 * lr, lr], total_steps=30,
                                                    cycle_momentum=cycle),
}


def scheduled_values(optimizer):
    return [(g["lr"], g.get("momentum"), g.get("betas")) for g in optimizer.param_groups]


# one case per optimizer (the richest in options) keeps the run short
SCHEDULER_CASES = ONE_CASE_EACH


@pytest.mark.parametrize("scheduler_name", list(SCHEDULERS))
@pytest.mark.parametrize("spec,case", SCHEDULER_CASES, ids=[f"{s.name}-{c.name}" for s, c in SCHEDULER_CASES])
def test_lr_schedulers_drive_ours_like_the_reference(spec, case, scheduler_name, device):
    ours_sign, ref_sign = loss_signs(spec, case)
    make_scheduler = SCHEDULERS[scheduler_name]
    params = make_params(device)
    ref_params = clone_params(params)
    ours = make_ours(spec, two_groups(params, case.group2), case.hp, None)
    reference = make_reference(spec, two_groups(ref_params, case.group2), case.hp)
    ours_scheduler = make_scheduler(ours, case.hp["lr"], spec.cycles_momentum)
    ref_scheduler = make_scheduler(reference, case.hp["lr"], spec.cycles_momentum)
    for step in range(1, 31):
        where = f"{spec.name}[{case.name}] with {scheduler_name} on {device}, step {step}"
        assert scheduled_values(ours) == scheduled_values(reference), where
        take_step(ours, params, ours_sign)
        take_step(reference, ref_params, ref_sign)
        ours_scheduler.step()
        ref_scheduler.step()
        assert_same(ours, params, reference, ref_params, where)
    assert ours_scheduler.get_last_lr() == ref_scheduler.get_last_lr()


# ----------------------------------------------------------------------------- invalid hyperparameters

BAD_CASES = [(spec, bad) for spec in SPECS for bad in spec.bad_kwargs]
BAD_IDS = [f"{spec.name}-" + "-".join(f"{k}={v}" for k, v in bad.items()) for spec, bad in BAD_CASES]


@pytest.mark.parametrize("spec,bad", BAD_CASES, ids=BAD_IDS)
def test_invalid_hyperparameters_raise_the_reference_message(spec, bad):
    param = [torch.zeros(3, requires_grad=True)]
    kwargs = dict(bad)
    if spec.name == "AMSGrad":
        reference_call = lambda: torch.optim.Adam(param, amsgrad=True, **kwargs)  # noqa: E731
    else:
        reference_call = lambda: spec.reference.default_path(param, **kwargs)  # noqa: E731
    try:
        reference_call()
    except ValueError as error:
        expected = str(error)
    except TypeError as error:
        pytest.skip(f"the reference does not take {kwargs}: {error}")
    else:
        pytest.skip(f"the reference accepts {kwargs}")
    with pytest.raises(ValueError) as raised:
        spec.cls(param, **kwargs)
    assert str(raised.value) == expected, f"{spec.name}({kwargs}): {str(raised.value)!r} != {expected!r}"


# ----------------------------------------------------------------------------- grad None, closure

@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
def test_params_without_grad_are_skipped(spec, device):
    """A param with ``.grad is None`` is neither moved nor given state (beyond what the reference gives it)."""
    case = spec.cases[1]
    ours_sign, ref_sign = loss_signs(spec, case)
    generator = torch.Generator().manual_seed(1)
    params = [torch.randn(shape, generator=generator).to(device).requires_grad_()
              for shape in [(3,), (2, 2), (4,)]]
    ref_params = clone_params(params)
    never, sometimes = params[1].detach().clone(), None

    ours = make_ours(spec, params, case.hp, None)
    reference = make_reference(spec, ref_params, case.hp)
    for step in range(1, 6):
        used = [0, 2] if step == 1 else [0]  # params[1] never gets a grad; params[2] only at step 1
        take_step(ours, params, ours_sign, used)
        take_step(reference, ref_params, ref_sign, used)
        if step == 1:
            sometimes = params[2].detach().clone()
        where = f"{spec.name}[{case.name}] with grad None, step {step}"
        assert_same(ours, params, reference, ref_params, where)
        assert torch.equal(params[1], never), f"{where}: a param without grad moved"
        assert torch.equal(params[2], sometimes), f"{where}: a param whose grad became None moved"
        if len(reference.state.get(ref_params[1], {})) == 0:
            assert len(ours.state.get(params[1], {})) == 0, f"{where}: state made for a param without grad"


@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
def test_step_with_closure_returns_its_loss(spec, device):
    case = spec.cases[0]
    params = make_params(device)
    before = [p.detach().clone() for p in params]
    optimizer = make_ours(spec, params, case.hp, None)
    losses = []

    def closure():
        assert torch.is_grad_enabled(), "the closure must run with grad enabled"
        optimizer.zero_grad()
        loss = parity_loss(params)
        loss.backward()
        losses.append(loss)
        return loss

    with torch.no_grad():  # step() must enable grad for the closure itself
        returned = optimizer.step(closure)
    assert len(losses) == 1 and returned is losses[0]
    assert any(not torch.equal(p, b) for p, b in zip(params, before)), "step(closure) did not move the params"
    assert optimizer.step() is None


# ----------------------------------------------------------------------------- add_param_group

@pytest.mark.parametrize("spec,case", ONE_CASE_EACH, ids=ONE_CASE_IDS)
def test_add_param_group(spec, case, device):
    """A group added after 5 steps gets the defaults it lacks and then moves like the reference's."""
    ours_sign, ref_sign = loss_signs(spec, case)
    params = make_params(device)
    ref_params = clone_params(params)
    first, second = [params[0], params[2], params[4]], [params[1], params[3]]
    ref_first, ref_second = [ref_params[0], ref_params[2], ref_params[4]], [ref_params[1], ref_params[3]]
    ours = make_ours(spec, first, case.hp, None)
    if spec.reference_has_foreach:
        reference = make_reference(spec, ref_first, case.hp)
    else:  # the adabound package cannot add a group (its base lrs are fixed): it gets both, the 2nd without grads
        reference = make_reference(spec, [{"params": ref_first}, {"params": ref_second, **case.group2}], case.hp)

    for step in range(1, 6):  # only the first group has grads
        take_step(ours, params, ours_sign, used=(0, 2, 4))
        take_step(reference, ref_params, ref_sign, used=(0, 2, 4))
    ours.add_param_group({"params": second, **case.group2})
    if spec.reference_has_foreach:
        reference.add_param_group({"params": ref_second, **case.group2})
    assert set(ours.param_groups[1]) == set(ours.param_groups[0]), "the added group lacks default keys"
    for step in range(6, 21):
        take_step(ours, params, ours_sign)
        take_step(reference, ref_params, ref_sign)
        assert_same(ours, params, reference, ref_params, f"{spec.name}[{case.name}] after add_param_group, step {step}")


# ----------------------------------------------------------------------------- optimizer-specific

def test_adagrad_initial_accumulator_value_is_the_constructors(device):
    """torch's Adagrad fills ``sum`` from the constructor's initial_accumulator_value, whatever a group says."""
    spec = SPEC_BY_NAME["Adagrad"]
    case = Case("per_group_initial_accumulator", {"lr": 0.1, "initial_accumulator_value": 0.2},
                {"initial_accumulator_value": 1.0})
    params = make_params(device)
    ref_params = clone_params(params)
    ours = make_ours(spec, two_groups(params, case.group2), case.hp, False)
    reference = make_reference(spec, two_groups(ref_params, case.group2), case.hp)
    for step in range(1, 11):
        take_step(ours, params, 1.0)
        take_step(reference, ref_params, 1.0)
        assert_same(ours, params, reference, ref_params, f"Adagrad[{case.name}] step {step}")


@pytest.mark.parametrize("foreach", [False, True], ids=["readable", "foreach"])
def test_adabound_matches_package_with_amsbound_weight_decay_and_steplr(foreach, device):
    spec = SPEC_BY_NAME["AdaBound"]
    hp = {"lr": 0.02, "final_lr": 0.1, "gamma": 0.01, "amsbound": True, "weight_decay": 0.1}
    group2 = {"lr": 0.01, "amsbound": False}
    params = make_params(device)
    ref_params = clone_params(params)
    ours = make_ours(spec, two_groups(params, group2), hp, foreach)
    reference = make_reference(spec, two_groups(ref_params, group2), hp)
    ours_scheduler, ref_scheduler = StepLR(ours, 10, gamma=0.3), StepLR(reference, 10, gamma=0.3)
    for step in range(1, STEPS + 1):
        take_step(ours, params, 1.0)
        take_step(reference, ref_params, 1.0)
        ours_scheduler.step()
        ref_scheduler.step()
        assert_same(ours, params, reference, ref_params, f"AdaBound+StepLR foreach={foreach}, step {step}")


def test_adabound_bounds_tend_to_final_lr(device):
    """The effective per-coordinate step size, -Δθ / m, lies in [η_l(t), η_u(t)], which pinch to final_lr."""
    final_lr, gamma = 0.1, 0.1
    slopes = torch.tensor([1e-3, 1.0, 1e3], device=device)  # Adam's own step sizes differ by 10^6
    param = torch.zeros(3, device=device, requires_grad=True)
    optimizer = SPEC_BY_NAME["AdaBound"].cls([param], lr=1e-3, final_lr=final_lr, gamma=gamma)
    checkpoints = {1, 10, 100, 1000, 3000}
    effective = {}
    for t in range(1, max(checkpoints) + 1):
        before = param.detach().clone()
        param.grad = slopes.clone()  # the gradient of the linear loss slopes · θ
        optimizer.step()
        if t in checkpoints:
            exp_avg = optimizer.state[param]["exp_avg"]
            step_size = (before - param.detach()) / exp_avg
            lower = final_lr * (1 - 1 / (gamma * t + 1))
            upper = final_lr * (1 + 1 / (gamma * t))
            assert float(optimizer.state[param]["step"]) == t
            assert torch.all(step_size >= lower * (1 - 1e-9)) and torch.all(step_size <= upper * (1 + 1e-9)), (
                f"step {t}: effective step sizes {step_size.tolist()} leave [{lower}, {upper}]")
            effective[t] = step_size
    spread_first = (effective[1].max() / effective[1].min()).item()
    assert spread_first > 10, f"at step 1 the bounds should leave room to adapt: spread {spread_first}"
    last = max(checkpoints)
    assert_close(effective[last], torch.full_like(effective[last], final_lr), rtol=1 / (gamma * last), atol=0,
                 msg=lambda m: f"at step {last} the step sizes should be within 1/(γt) of final_lr\n{m}")


# ----------------------------------------------------------------------------- it descends

_ROTATION = torch.tensor([[math.cos(0.5), -math.sin(0.5)], [math.sin(0.5), math.cos(0.5)]], dtype=torch.float64)
_HESSIAN = _ROTATION @ torch.diag(torch.tensor([1.0, 50.0], dtype=torch.float64)) @ _ROTATION.T


def ill_conditioned_quadratic(xy):
    """0.5 xy^T H xy with H's eigenvalues 1 and 50, axes rotated; returns (loss, gradient)."""
    hessian = _HESSIAN.to(xy.device)
    gradient = hessian @ xy
    return 0.5 * xy @ gradient, gradient


def rosenbrock(xy):
    """(1 - x)^2 + 100 (y - x^2)^2; returns (loss, gradient)."""
    x, y = xy[0], xy[1]
    valley = y - x * x
    gradient = torch.stack([-2 * (1 - x) - 400 * x * valley, 200 * valley])
    return (1 - x) ** 2 + 100 * valley ** 2, gradient


PROBLEMS = {
    # name: (function, start, steps, required drop factor)
    "quadratic": (ill_conditioned_quadratic, (1.5, 1.0), 300, 100.0),
    "rosenbrock": (rosenbrock, (-1.5, 2.0), 2000, 10.0),
}


# Rosenbrock (2000 steps) only where there is no torch class to equal: the others equal torch's step for step
DESCENT_CASES = [(spec, problem) for spec in SPECS for problem in PROBLEMS
                 if problem == "quadratic" or not spec.in_torch_db]


@pytest.mark.parametrize("spec,problem", DESCENT_CASES, ids=[f"{s.name}-{p}" for s, p in DESCENT_CASES])
def test_lowers_the_loss(spec, problem, device):
    function, start, steps, factor = PROBLEMS[problem]
    hp = spec.descent_hp[problem]
    xy = torch.tensor(start, device=device, requires_grad=True)
    optimizer = spec.cls([xy], **hp)
    with torch.no_grad():
        initial = function(xy)[0].item()
        for _ in range(steps):
            xy.grad = function(xy)[1]
            optimizer.step()
        final = function(xy)[0].item()
    assert math.isfinite(final), f"{spec.name}({hp}) diverged on {problem}"
    assert final <= initial / factor, (
        f"{spec.name}({hp}) on {problem}: loss {initial:.4g} -> {final:.4g} after {steps} steps, "
        f"wanted a drop by {factor:g}x")


def test_closed_form_gradients_are_autograds(device):
    """The tests above feed closed-form gradients (fast); they are the true ones."""
    params = make_params(device)
    parity_loss(params, -1.5).backward()
    autograd = [p.grad.clone() for p in params]
    parity_grads(params, -1.5)
    for got, expected in zip([p.grad for p in params], autograd):
        assert_close(got, expected, rtol=1e-13, atol=1e-14)
    for function, start in [(ill_conditioned_quadratic, (1.5, 1.0)), (rosenbrock, (-1.5, 2.0)),
                            (rosenbrock, (0.3, -0.7))]:
        xy = torch.tensor(start, device=device, requires_grad=True)
        loss, gradient = function(xy)
        loss.backward()
        assert_close(gradient, xy.grad, rtol=1e-13, atol=1e-14)


# ----------------------------------------------------------------------------- CUDA default path

@pytest.mark.cuda
@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
def test_cuda_default_path_matches_reference(spec):
    """On CUDA foreach=None picks the multi-tensor path; it equals the reference's default path there."""
    device = torch.device("cuda")
    case = spec.cases[1]
    ours_sign, ref_sign = loss_signs(spec, case)
    params = make_params(device)
    ref_params = clone_params(params)
    ours = spec.cls(two_groups(params, case.group2), **case.hp)
    reference = spec.reference.default_path(two_groups(ref_params, case.group2), **case.hp)
    for step in range(1, 21):
        take_step(ours, params, ours_sign)
        take_step(reference, ref_params, ref_sign)
        assert_same(ours, params, reference, ref_params, f"{spec.name}[{case.name}] default path on cuda, step {step}")
