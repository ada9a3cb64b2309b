"""course_lib.optim held to PyTorch's own optimizer tests.

PyTorch tests its optimizers with a database of configurations (``optim_db``, loaded by
``tests/torch_optim_db.py``): for each optimizer the constructor arguments its tests run
(``optim_inputs_func``) and the bad ones with the error each must raise
(``optim_error_inputs_func``). Here every course optimizer with a torch counterpart runs every
one of those configurations, passed verbatim (``foreach``, ``differentiable``, ``fused`` and
tensor learning rates included), next to torch's class, and must give the same parameters and
state; must raise the same errors; and passes the state-dict, sparse-gradient and
differentiable-optimizer tests of PyTorch's ``test/test_optim.py`` and
``test/optim/test_optim.py``, ported.

As in torch's tests, the default dtype stays float32 (so a tensor learning rate is a float32
tensor, and the step counters are float32: the dtype torch computes such scalars in matters)
while the parameters are float64.
"""

from __future__ import annotations

import functools
import warnings
from copy import deepcopy

import pytest
import torch
from torch.testing import assert_close

from torch_optim_db import NAMES, OptimizerErrorEnum, configs, course_class, error_inputs, info_of, torch_class

# torch's own sparse Adagrad builds sparse tensors without saying whether to check their invariants
pytestmark = pytest.mark.filterwarnings("ignore:Sparse invariant checks are implicitly disabled:UserWarning")

STEPS = 30
RTOL = ATOL = 1e-12  # float64; everything but the fused kernels agrees bit for bit or within a few ulps
# torch's fused CPU kernels evaluate the update in another order (one pass per element, other
# roundings of the bias corrections): after 30 steps they differ from the course's multi-tensor
# path by at most 4e-16 relative here (measured); this bound leaves room for other CPUs.
FUSED_RTOL = FUSED_ATOL = 1e-13
SHAPES = [(), (7,), (4, 3, 2)]  # and a non-contiguous (3, 5): the cases torch's own tests lack


# ----------------------------------------------------------------------------- helpers

def make_params(seed=0, dtype=torch.float64):
    """Tensors of shapes (), (7,), (4, 3, 2) and a non-contiguous (3, 5) (a transposed view).

    They do not require grad: gradients are set in closed form (see ``set_grads``), and a
    ``differentiable=True`` step may then update them in place with autograd on."""
    generator = torch.Generator().manual_seed(seed)
    tensors = [torch.randn(shape, generator=generator, dtype=dtype) for shape in SHAPES]
    tensors.append(torch.randn(5, 3, generator=generator, dtype=dtype).t())
    assert not tensors[-1].is_contiguous()
    return tensors


def clone_params(params):
    return [p.detach().clone() for p in params]


_OFFSETS = [0.3 * i for i in range(len(SHAPES) + 1)]
_WEIGHTS = [1.0 + 0.25 * i for i in range(len(SHAPES) + 1)]


def set_grads(params):
    """A closure's work: the gradient of sum_i w_i (0.025 p^4 + 0.05 p^2 + sin(p + 0.3 i)), a smooth loss
    whose gradient differs coordinate by coordinate, in closed form with multi-tensor kernels (autograd
    would dominate the run time)."""
    with torch.no_grad():
        grads = torch._foreach_pow(params, 3)
        torch._foreach_mul_(grads, 0.1)
        torch._foreach_add_(grads, params, alpha=0.1)
        shifted = torch._foreach_add(params, _OFFSETS[:len(params)])
        torch._foreach_cos_(shifted)
        torch._foreach_add_(grads, shifted)
        torch._foreach_mul_(grads, _WEIGHTS[:len(params)])
        for p, g in zip(params, grads):
            p.grad = g


def layouts(params, kwargs):
    """The flat list, and two groups (0-dim and 3-D; vector and non-contiguous) whose second has its own
    learning rate (half the first's, of the same type)."""
    lr = kwargs.get("lr", None)
    second = {} if lr is None else {"lr": lr * 0.5 if not torch.is_tensor(lr) else lr.detach() * 0.5}
    yield "flat", list(params)
    yield "two groups", [{"params": [params[0], params[2]]}, {"params": [params[1], params[3]], **second}]


def regroup(layout, params):
    if isinstance(layout[0], dict):
        return [{"params": [params[0], params[2]]}, {**layout[1], "params": [params[1], params[3]]}]
    return list(params)


def construct(factory, params, kwargs):
    """(optimizer, None) or (None, the exception) for ``factory(params, **kwargs)``."""
    try:
        return factory(params, **deepcopy(kwargs)), None
    except Exception as error:  # noqa: BLE001 - compared with torch's below
        return None, error


def state_of(optimizer, params):
    return [optimizer.state.get(p, {}) for p in params]


def compare(ours, ours_params, theirs, their_params, where, rtol=RTOL, atol=ATOL):
    """Params and every state entry equal; same state keys, dtypes, devices."""
    for i, (p, q) in enumerate(zip(ours_params, their_params)):
        assert_close(p, q, rtol=rtol, atol=atol, msg=lambda m, i=i: f"{where}: param {i}\n{m}")
        mine, reference = ours.state.get(p, {}), theirs.state.get(q, {})
        assert set(mine) == set(reference), f"{where}: param {i} state keys {sorted(mine)} != {sorted(reference)}"
        for key, expected in reference.items():
            got = mine[key]
            if torch.is_tensor(expected):
                assert torch.is_tensor(got), f"{where}: param {i} state[{key!r}] is not a tensor"
                assert got.dtype == expected.dtype and got.device == expected.device, (
                    f"{where}: param {i} state[{key!r}] {got.dtype}/{got.device} != {expected.dtype}/{expected.device}")
                assert_close(got.detach(), expected.detach(), rtol=rtol, atol=atol,
                             msg=lambda m, i=i, key=key: f"{where}: param {i} state[{key!r}]\n{m}")
            else:
                assert got == expected, f"{where}: param {i} state[{key!r}] {got!r} != {expected!r}"


def run_side_by_side(name, kwargs, layout, steps=STEPS):
    """``steps`` closure steps of ours and torch's class from the same start; returns both and their params."""
    ours_params, their_params = make_params(), make_params()
    ours = course_class(name)(regroup(layout, ours_params), **deepcopy(kwargs))
    theirs = torch_class(name)(regroup(layout, their_params), **deepcopy(kwargs))
    for _ in range(steps):
        ours.step(functools.partial(set_grads, ours_params))
        theirs.step(functools.partial(set_grads, their_params))
    return ours, ours_params, theirs, their_params


# ----------------------------------------------------------------------------- optim_db configurations

@pytest.fixture
def one_thread():
    """Elementwise kernels give the same numbers on any thread count; one thread keeps torch's fused CPU
    kernels from waiting on a busy thread pool (their cost on tiny tensors is then the pool's)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize("name", NAMES)
def test_every_optim_db_config_matches_torch(name):
    """Each torch configuration, verbatim: same error at construction, or closure steps (30 with one
    param group, 15 with two) that end in the same parameters and state."""
    cases = configs(name)
    compared = refused = 0
    for desc, kwargs in cases:
        probe = make_params()
        reference, their_error = construct(torch_class(name), probe, kwargs)
        course, our_error = construct(course_class(name), clone_params(probe), kwargs)
        if their_error is not None:  # e.g. a tensor lr with foreach=True: torch refuses, so must we
            assert our_error is not None, f"{name}[{desc}]: torch raised {their_error!r}, ours accepted {kwargs}"
            assert (type(our_error), str(our_error)) == (type(their_error), str(their_error)), desc
            refused += 1
            continue
        assert our_error is None, f"{name}[{desc}]: ours raised {our_error!r} for {kwargs}"
        rtol = FUSED_RTOL if kwargs.get("fused") else RTOL
        for layout_name, layout in layouts(probe, kwargs):
            # per-group handling shows from the first step: the two-group layout runs half as long
            steps = STEPS if layout_name == "flat" else STEPS // 2
            ours, ours_params, theirs, their_params = run_side_by_side(name, kwargs, layout, steps)
            compare(ours, ours_params, theirs, their_params, f"{name}[{desc}] {layout_name}", rtol=rtol, atol=rtol)
            assert [set(g) for g in ours.param_groups] == [set(g) for g in theirs.param_groups], desc
        compared += 1
    assert compared + refused == len(cases) and compared > 0


@pytest.mark.parametrize("name", NAMES)
def test_error_inputs_raise_torch_errors(name):
    """torch's ``optim_error_inputs_func``: the same exception type and message (or warning) as torch's class."""
    for error_input in error_inputs(name):
        optim_input = error_input.optimizer_error_input
        outcomes = []
        for factory in (torch_class(name), course_class(name)):
            params = deepcopy(optim_input.params)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                try:
                    optimizer = factory(params, **deepcopy(optim_input.kwargs))
                    if error_input.error_on == OptimizerErrorEnum.STEP_ERROR:
                        optimizer.step()
                    outcome = None
                except Exception as error:  # noqa: BLE001
                    outcome = (type(error), str(error))
            outcomes.append((outcome, [(w.category, str(w.message)) for w in caught]))
        (theirs, their_warnings), (ours, our_warnings) = outcomes
        where = f"{name}[{optim_input.desc}]"
        assert ours == theirs, f"{where}: ours {ours} != torch's {theirs}"
        if issubclass(error_input.error_type, Warning):
            assert our_warnings == their_warnings, f"{where}: warnings {our_warnings} != {their_warnings}"
        else:
            assert ours is not None and issubclass(ours[0], error_input.error_type), where


def test_constructor_keywords_and_defaults_are_torchs():
    """Same signature (names, order, kinds, defaults), same ``defaults`` dict, so the same repr."""
    import inspect
    for name in NAMES:
        reference = info_of(name).optim_cls
        ours_signature = dict(inspect.signature(course_class(name).__init__).parameters)
        their_signature = dict(inspect.signature(reference.__init__).parameters)
        if name == "AMSGrad":
            assert ours_signature["amsgrad"].default is True
            ours_signature["amsgrad"] = their_signature["amsgrad"]
        assert [(n, p.kind, p.default) for n, p in ours_signature.items()] == [
            (n, p.kind, p.default) for n, p in their_signature.items()], name
        params = [torch.zeros(2, requires_grad=True)]
        ours, theirs = course_class(name)(params), torch_class(name)(params)
        assert ours.defaults == theirs.defaults, name
        assert repr(ours).replace(type(ours).__name__, "X") == repr(theirs).replace(type(theirs).__name__, "X")


@pytest.mark.parametrize("name", [n for n in NAMES if n not in ("Adafactor", "SGD", "Adagrad")])
def test_capturable_is_refused_with_the_reason(name):
    """torch's classes that take ``capturable`` (CUDA-graph capture): ours take the keyword and refuse True."""
    with pytest.raises(ValueError, match="capturable=True is not supported: .*CUDA graphs"):
        course_class(name)([torch.zeros(2, requires_grad=True)], capturable=True)
    course_class(name)([torch.zeros(2, requires_grad=True)], capturable=False)


# ----------------------------------------------------------------------------- state dicts (test/test_optim.py)

def _base_configs(name):
    return [(desc, kwargs) for desc, kwargs in configs(name, with_foreach=False, skip=("differentiable",))]


def _linear_problem(dtype=torch.float64, seed=0):
    generator = torch.Generator().manual_seed(seed)
    weight = torch.randn(2, 3, generator=generator, dtype=dtype, requires_grad=True)
    bias = torch.randn(2, generator=generator, dtype=dtype, requires_grad=True)
    x = torch.randn(3, generator=generator, dtype=dtype)
    return weight, bias, x


def _fwd_bwd(optimizer, weight, bias, x):
    optimizer.zero_grad()
    loss = (weight.mv(x) + bias).pow(2).sum()
    loss.backward()
    return loss


def _groups_without_params(state_dict):
    return [{k: v for k, v in group.items() if k != "params"} for group in state_dict["param_groups"]]


def _assert_state_dicts_equal(got, expected, where):
    assert _groups_without_params(got) == _groups_without_params(expected), where
    assert [g["params"] for g in got["param_groups"]] == [g["params"] for g in expected["param_groups"]], where
    assert set(got["state"]) == set(expected["state"]), f"{where}: state of params {set(got['state'])}"
    for index, state in expected["state"].items():
        assert set(got["state"][index]) == set(state), f"{where}: state keys of param {index}"
        for key, value in state.items():
            other = got["state"][index][key]
            if torch.is_tensor(value):
                assert other.dtype == value.dtype and torch.equal(other, value), f"{where}: state[{index}][{key!r}]"
            else:
                assert other == value, f"{where}: state[{index}][{key!r}]"


@pytest.mark.parametrize("name", NAMES)
def test_state_dict_deterministic(name):
    """Ported from torch's test_state_dict_deterministic: prime 10 steps, load the state dict into a fresh
    optimizer on cloned weights, run both 10 more steps: equal weights and equal state dicts (no group key
    added or dropped by loading)."""
    for desc, kwargs in _base_configs(name):
        weight, bias, x = _linear_problem(torch.float32)  # torch runs this test in float32
        optimizer = course_class(name)([weight, bias], **deepcopy(kwargs))
        closure = functools.partial(_fwd_bwd, optimizer, weight, bias, x)
        for _ in range(10):
            optimizer.step(closure)
        weight_c, bias_c = (t.detach().clone().requires_grad_() for t in (weight, bias))
        optimizer_c = course_class(name)([weight_c, bias_c], **deepcopy(kwargs))
        closure_c = functools.partial(_fwd_bwd, optimizer_c, weight_c, bias_c, x)
        saved = deepcopy(optimizer.state_dict())
        optimizer_c.load_state_dict(saved)
        _assert_state_dicts_equal(saved, optimizer.state_dict(), f"{name}[{desc}] loading changed the state dict")
        for _ in range(10):
            optimizer.step(closure)
            optimizer_c.step(closure_c)
            assert torch.equal(weight, weight_c) and torch.equal(bias, bias_c), f"{name}[{desc}]"
        _assert_state_dicts_equal(optimizer_c.state_dict(), optimizer.state_dict(), f"{name}[{desc}]")


@pytest.mark.parametrize("direction", ["ours_to_torch", "torch_to_ours"])
@pytest.mark.parametrize("name", NAMES)
def test_state_dict_loads_both_ways(name, direction):
    """Five steps with one side; its state dict loaded into a fresh optimizer of the other side and into
    one of its own side (both built with another lr); five more steps of these two: the same weights and
    state dicts (loading casts state to the parameters' dtype, by torch's rules, on both sides)."""
    source_factory, other_factory = course_class(name), torch_class(name)
    if direction == "torch_to_ours":
        source_factory, other_factory = other_factory, source_factory
    for desc, kwargs in _base_configs(name):
        weight, bias, x = _linear_problem()
        source = source_factory([weight, bias], **deepcopy(kwargs))
        for _ in range(5):
            source.step(functools.partial(_fwd_bwd, source, weight, bias, x))
        saved = deepcopy(source.state_dict())
        sides = []
        for factory in (other_factory, source_factory):
            w, b = (t.detach().clone().requires_grad_() for t in (weight, bias))
            other_lr = torch.tensor(0.123) if torch.is_tensor(kwargs.get("lr")) else 0.123
            optimizer = factory([w, b], **{**deepcopy(kwargs), "lr": other_lr})
            optimizer.load_state_dict(deepcopy(saved))
            sides.append((optimizer, w, b))
        (crossed, w1, b1), (same_side, w2, b2) = sides
        where = f"{name}[{desc}] {direction}"
        _assert_state_dicts_equal(crossed.state_dict(), same_side.state_dict(), where)
        for _ in range(5):
            crossed.step(functools.partial(_fwd_bwd, crossed, w1, b1, x))
            same_side.step(functools.partial(_fwd_bwd, same_side, w2, b2, x))
        tol = FUSED_RTOL if kwargs.get("fused") else 0.0
        assert_close(w1, w2, rtol=tol, atol=tol, msg=where)
        assert_close(b1, b2, rtol=tol, atol=tol, msg=where)
        if not tol:
            _assert_state_dicts_equal(crossed.state_dict(), same_side.state_dict(), where)


@pytest.mark.parametrize("name", NAMES)
def test_older_state_dict_falls_back_as_torch(name):
    """Ported from torch's test_can_load_older_state_dict and test_load_nontensor_step: a state dict
    without the flags added after an optimizer's first release, and with plain-number steps, loads
    into ours as into torch's (built with maximize=True, so that the fallback must not be the
    constructor's value): same groups, same state, same next step."""
    info = info_of(name)
    for desc, kwargs in _base_configs(name):
        weight, bias, x = _linear_problem()
        source = torch_class(name)([weight, bias], **deepcopy(kwargs))
        for _ in range(3):
            source.step(functools.partial(_fwd_bwd, source, weight, bias, x))
        old = deepcopy(source.state_dict())
        for group in old["param_groups"]:
            for flag in info.not_og_supported_flags:
                group.pop(flag, None)
        for state in old["state"].values():
            if torch.is_tensor(state.get("step")):
                state["step"] = state["step"].item()
        sides = []
        for factory in (course_class(name), torch_class(name)):
            w, b = (t.detach().clone().requires_grad_() for t in (weight, bias))
            build_kwargs = {**deepcopy(kwargs), "maximize": True}
            optimizer = factory([w, b], **build_kwargs)
            optimizer.load_state_dict(deepcopy(old))
            sides.append((optimizer, w, b))
        (ours, w1, b1), (theirs, w2, b2) = sides
        _assert_state_dicts_equal(ours.state_dict(), theirs.state_dict(), f"{name}[{desc}] older state dict")
        ours.step(functools.partial(_fwd_bwd, ours, w1, b1, x))
        theirs.step(functools.partial(_fwd_bwd, theirs, w2, b2, x))
        assert torch.equal(w1, w2) and torch.equal(b1, b2), f"{name}[{desc}]"
        _assert_state_dicts_equal(ours.state_dict(), theirs.state_dict(), f"{name}[{desc}] after a step")


def test_optimizer_without_state_stores_none():
    """SGD without momentum keeps no state at all (torch stores nothing, not an empty dict per parameter)."""
    weight, bias, x = _linear_problem()
    ours = course_class("SGD")([weight, bias], lr=0.1)
    theirs = torch_class("SGD")([weight.detach().clone().requires_grad_()], lr=0.1)
    for optimizer in (ours, theirs):
        for _ in range(2):
            optimizer.step(functools.partial(_fwd_bwd, optimizer, weight, bias, x)
                           if optimizer is ours else None)
    assert ours.state_dict()["state"] == {} and len(ours.state) == 0


# ----------------------------------------------------------------------------- sparse gradients

SPARSE_CASES = [
    ("SGD", {"lr": 0.1}),
    ("SGD", {"lr": 0.1, "momentum": 0.9}),
    ("SGD", {"lr": 0.1, "momentum": 0.9, "nesterov": True, "maximize": True}),
    ("SGD", {"lr": 0.1, "momentum": 0.5, "dampening": 0.3}),
    ("SGD", {"lr": 0.1, "momentum": 0.9, "foreach": True}),
    ("SGD", {"lr": torch.tensor(0.1), "momentum": 0.9}),
    ("Adagrad", {"lr": 0.1}),
    ("Adagrad", {"lr": 0.1, "lr_decay": 0.05, "initial_accumulator_value": 0.1, "maximize": True}),
    ("Adagrad", {"lr": torch.tensor(0.1), "eps": 1e-6, "foreach": True}),
]


def _sparse_grad(step, rows=10, cols=3):
    """An embedding's gradient: rows 0..9 looked up with repeats (an uncoalesced sparse tensor)."""
    generator = torch.Generator().manual_seed(step)
    indices = torch.randint(0, rows, (6,), generator=generator)
    values = torch.randn(6, cols, generator=generator, dtype=torch.float64)
    return torch.sparse_coo_tensor(indices.unsqueeze(0), values, (rows, cols), check_invariants=True)


@pytest.mark.parametrize("name,kwargs", SPARSE_CASES, ids=[f"{n}-{'-'.join(map(str, k))}" for n, k in SPARSE_CASES])
def test_sparse_gradients_as_torch(name, kwargs):
    """Six steps on sparse gradients with repeated rows: ours moves exactly torch's rows by torch's amounts."""
    generator = torch.Generator().manual_seed(1)
    start = torch.randn(10, 3, generator=generator, dtype=torch.float64)
    ours_param, their_param = start.clone(), start.clone()
    ours = course_class(name)([ours_param], **deepcopy(kwargs))
    theirs = torch_class(name)([their_param], **deepcopy(kwargs))
    for step in range(6):
        ours_param.grad, their_param.grad = _sparse_grad(step), _sparse_grad(step)
        ours.step()
        theirs.step()
        assert torch.equal(ours_param, their_param), f"{name}{kwargs} step {step}"
    for key, value in theirs.state[their_param].items():
        got = ours.state[ours_param][key]
        assert got.is_sparse == value.is_sparse and torch.equal(got.to_dense(), value.to_dense()), key
    untouched = torch.ones(10, dtype=torch.bool)
    for step in range(6):
        untouched[_sparse_grad(step).coalesce().indices()[0]] = False
    assert untouched.any() and torch.equal(ours_param[untouched], start[untouched]), "a row without gradient moved"


@pytest.mark.parametrize("name,kwargs", [("Adagrad", {"weight_decay": 0.1}), ("SGD", {"weight_decay": 0.1}),
                                         ("SGD", {"fused": True})]
                         + [(n, {}) for n in NAMES if n not in ("SGD", "Adagrad")])
def test_sparse_gradients_refused_as_torch(name, kwargs):
    outcomes = []
    for factory in (torch_class(name), course_class(name)):
        param = torch.zeros(10, 3, dtype=torch.float64)
        optimizer = factory([param], **kwargs)
        param.grad = _sparse_grad(0)
        with pytest.raises(RuntimeError) as raised:
            optimizer.step()
        outcomes.append(str(raised.value))
    assert outcomes[1] == outcomes[0]


# ----------------------------------------------------------------------------- differentiable=True

def _diff_fn(p, grad, state, opt_class, kwargs, *ignored):
    """Ported from PyTorch's test/optim/test_optim.py: one differentiable step as a function of the
    parameters, the gradient and the state tensors."""
    p = p.clone()
    p.grad = grad
    state = {k: v.clone() if isinstance(v, torch.Tensor) else v for k, v in state.items()}
    optimizer = opt_class([p], **kwargs)
    optimizer.state[p].update(state)
    optimizer.step()
    return (p,) + tuple(v for v in optimizer.state[p].values() if isinstance(v, torch.Tensor) and v.requires_grad)


def _rand(*shape, requires_grad=True, scale=1.0):
    return (scale * torch.rand(*shape, dtype=torch.float64)).requires_grad_(requires_grad)


GRADCHECK_CASES = {
    "SGD": ({"momentum_buffer": _rand(10)}, {"lr": 0.9, "momentum": 0.9, "differentiable": True}),
    "Adam": ({"step": torch.tensor(10.0, dtype=torch.float64), "exp_avg": _rand(10), "exp_avg_sq": _rand(10),
              "max_exp_avg_sq": _rand(10)}, {"lr": 0.9, "differentiable": True, "amsgrad": True}),
    "AdamW": ({"step": torch.tensor(10.0, dtype=torch.float64), "exp_avg": _rand(10), "exp_avg_sq": _rand(10),
               "max_exp_avg_sq": _rand(10)}, {"lr": 0.9, "differentiable": True, "amsgrad": True}),
    "RMSprop": ({"step": torch.zeros((), dtype=torch.float64), "square_avg": _rand(10), "momentum_buffer": _rand(10),
                 "grad_avg": _rand(10, scale=1e-2)},
                {"lr": 0.9, "maximize": True, "momentum": 0.9, "differentiable": True, "centered": True,
                 "weight_decay": 0.1}),
    "Adadelta": ({"step": torch.tensor(10.0, dtype=torch.float64), "square_avg": _rand(10), "acc_delta": _rand(10)},
                 {"lr": 0.9, "weight_decay": 0.1, "differentiable": True}),
    "Adagrad": ({"step": torch.tensor(10.0, dtype=torch.float64), "sum": _rand(10)},
                {"lr": 0.9, "weight_decay": 0.1, "differentiable": True}),
    "Adamax": ({"step": torch.tensor(10.0, dtype=torch.float64), "exp_avg": _rand(10), "exp_inf": _rand(10)},
               {"lr": 0.9, "weight_decay": 0.1, "differentiable": True}),
    "NAdam": ({"step": torch.tensor(10.0, dtype=torch.float64), "exp_avg": _rand(10), "exp_avg_sq": _rand(10),
               "mu_product": torch.tensor(1.0, dtype=torch.float64, requires_grad=True)},
              {"lr": 0.9, "decoupled_weight_decay": True, "weight_decay": 0.1, "differentiable": True}),
}


@pytest.mark.parametrize("name", list(GRADCHECK_CASES))
def test_differentiable_step_passes_gradcheck(name):
    """torch's TestDifferentiableOptimizer: autograd's derivative of one step equals finite differences."""
    torch.manual_seed(0)
    state, kwargs = GRADCHECK_CASES[name]
    p, grad = _rand(10), _rand(10)
    assert torch.autograd.gradcheck(_diff_fn, (p, grad, state, course_class(name), kwargs, *state.values()))


HYPER_A = torch.tensor([[3.0, 0.5, 0.0], [0.5, 1.0, 0.2], [0.0, 0.2, 0.3]], dtype=torch.float64)
HYPER_B = torch.tensor([1.0, -1.0, 0.5], dtype=torch.float64)
HYPER_CASES = [("SGD", {}), ("SGD", {"momentum": 0.9, "nesterov": True}), ("Adagrad", {}), ("Adadelta", {}),
               ("RMSprop", {"centered": True, "momentum": 0.5}), ("Adam", {}), ("Adam", {"weight_decay": 0.1}),
               ("AdamW", {}), ("AMSGrad", {}), ("Adamax", {}), ("NAdam", {}), ("NAdam", {"decoupled_weight_decay": True, "weight_decay": 0.1})]
HYPER_IN_TORCH = {"SGD", "Adam", "AdamW"}  # torch's differentiable classes that take a requires-grad lr


def _loss_after_steps(factory, lr, start, kwargs, steps=5):
    """f(θ_k) after k differentiable steps on f(θ) = ½ θᵀAθ − bᵀθ, from θ_0 = start (a graph through lr and start)."""
    theta = start.clone()  # a non-leaf copy: the step updates it in place, autograd records it
    optimizer = factory([theta], lr=lr, differentiable=True, **kwargs)
    for _ in range(steps):
        theta.grad = HYPER_A @ theta - HYPER_B  # its graph does not need θ's value: θ may change in place
        optimizer.step()
    return 0.5 * theta @ HYPER_A @ theta - HYPER_B @ theta


@pytest.mark.parametrize("name,kwargs", HYPER_CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(HYPER_CASES)])
def test_hypergradient_matches_torch_and_finite_differences(name, kwargs):
    """d f(θ_5) / d lr and d f(θ_5) / d θ_0 through five differentiable steps: equal to torch's (where
    torch's differentiable optimizer supports a learning rate that requires grad) within 1e-10, and to
    a central finite difference."""
    start = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64, requires_grad=True)
    lr = torch.tensor(0.01, dtype=torch.float64, requires_grad=True)
    loss = _loss_after_steps(course_class(name), lr, start, kwargs)
    d_lr, d_start = torch.autograd.grad(loss, (lr, start))
    try:
        their_lr = lr.detach().clone().requires_grad_()
        their_start = start.detach().clone().requires_grad_()
        their_loss = _loss_after_steps(torch_class(name), their_lr, their_start, kwargs)
        their_d_lr, their_d_start = torch.autograd.grad(their_loss, (their_lr, their_start))
    except (RuntimeError, TypeError):  # torch's differentiable path refuses a requires-grad lr here
        assert name not in HYPER_IN_TORCH
        their_d_lr = None
    if their_d_lr is not None:
        assert_close(d_lr, their_d_lr, rtol=1e-10, atol=0)
        assert_close(d_start, their_d_start, rtol=1e-10, atol=1e-14)
    # central differences: relative truncation ~(h/lr)^2 = 1e-8, round-off ~1e-16 f/(h f') ~ 1e-9
    h = 1e-6
    with torch.no_grad():
        up = _loss_after_steps(course_class(name), lr.detach() + h, start.detach(), kwargs)
        down = _loss_after_steps(course_class(name), lr.detach() - h, start.detach(), kwargs)
    assert_close(d_lr, (up - down) / (2 * h), rtol=1e-6, atol=1e-9)


def test_differentiable_false_keeps_autograd_off():
    """By default the step runs under no_grad (an in-place update of a leaf that requires grad would fail)."""
    param = torch.zeros(3, requires_grad=True)
    optimizer = course_class("Adam")([param], differentiable=False)
    param.grad = torch.ones(3)
    with torch.enable_grad():
        optimizer.step()
    assert param.is_leaf and param.grad_fn is None and not torch.equal(param, torch.zeros(3))


# ----------------------------------------------------------------------------- tensor hyperparameters

def _tensor_cases():
    """A float32 tensor lr on every path each class has (torch's CPU configurations give one to SGD and
    Adagrad only), and Adam's tensor betas (torch runs those with capturable=True, on CUDA)."""
    cases = []
    for name in NAMES:
        impls = info_of(name).supported_impls
        paths = [{"foreach": False}, {"foreach": True}] + [{"differentiable": True}] * ("differentiable" in impls)
        paths += [{"fused": True}] * ("fused" in impls)
        lr = 0.01 if name == "Adafactor" else 0.005
        for path in paths:
            cases.append((name, {"lr": torch.tensor(lr), "weight_decay": 0.1, **path}))
            if name in ("Adam", "AdamW", "AMSGrad") and not path.get("foreach"):
                cases.append((name, {"lr": torch.tensor(lr), "betas": (torch.tensor([[[0.9]]]), torch.tensor([0.99])),
                                     **path}))
    return cases


TENSOR_CASES = _tensor_cases()


@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize("name,kwargs", TENSOR_CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(TENSOR_CASES)])
def test_tensor_hyperparameters_as_torch(name, kwargs):
    """Same result as torch, or the same refusal (Adam's family refuses a tensor lr with foreach=True)."""
    probe = make_params()
    _, their_error = construct(torch_class(name), probe, kwargs)
    _, our_error = construct(course_class(name), clone_params(probe), kwargs)
    if their_error is not None:
        assert (type(our_error), str(our_error)) == (type(their_error), str(their_error))
        return
    assert our_error is None, our_error
    tol = FUSED_RTOL if kwargs.get("fused") else RTOL
    _, layout = list(layouts(probe, kwargs))[1]  # two groups, the second with its own tensor lr
    ours, ours_params, theirs, their_params = run_side_by_side(name, kwargs, layout)
    compare(ours, ours_params, theirs, their_params, f"{name}{kwargs}", rtol=tol, atol=tol)
