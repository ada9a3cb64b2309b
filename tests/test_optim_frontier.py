"""The frontier optimizers (notebook 11) against their references.

* ``Muon`` equals ``torch.optim.Muon`` (numbers, state, group keys, errors, state dicts both ways);
  ``newton_schulz`` equals the SVD closed form ``U p(S) V^T``.
* ``ScheduleFreeSGD`` / ``ScheduleFreeAdamW`` equal the authors' ``schedulefree`` package, including
  ``train()`` / ``eval()`` switches in the middle of a run and state dicts both ways; the eval point
  is the running average of the ``z`` sequence.
* ``Lion`` equals the paper's Algorithm 2 written out here; one state tensor (half of Adam's memory).
* ``Shampoo`` equals an explicit full-matrix computation, ``(L kron R)^{-1/4} vec(G)`` (and the
  3-factor version for an order-3 tensor); on a vector it is full-matrix Adagrad.

Everything runs in float64 on the ``--device`` device.
"""

from __future__ import annotations

import inspect
import io

import pytest
import torch

import course_lib.optim as ours
from course_lib.optim.muon import newton_schulz
from course_lib.optim.shampoo import matrix_power_psd

schedulefree = pytest.importorskip("schedulefree")

pytestmark = pytest.mark.usefixtures("float64")

STEPS = 25


# ----------------------------------------------------------------------------- helpers

def make_params(device, shapes, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(shape, generator=generator).to(device).requires_grad_() for shape in shapes]


def clone(params):
    return [p.detach().clone().requires_grad_() for p in params]


@torch.no_grad()
def set_grads(params, sign=1.0, used=None):
    """The gradient of a smooth non-quadratic loss, coordinate by coordinate different."""
    for i, p in enumerate(params):
        if used is not None and i not in used:
            p.grad = None
            continue
        p.grad = sign * (1 + 0.25 * i) * (0.1 * p.pow(3) + 0.1 * p + torch.cos(p + 0.3 * i))


def max_diff(a_params, b_params):
    return max((a - b).abs().max().item() for a, b in zip(a_params, b_params))


def assert_state_equal(opt_a, params_a, opt_b, params_b, where, atol=1e-13):
    for i, (p, q) in enumerate(zip(params_a, params_b)):
        assert torch.allclose(p, q, rtol=0, atol=atol), f"{where}: param {i} differs by {(p - q).abs().max():.3g}"
        sa, sb = opt_a.state.get(p, {}), opt_b.state.get(q, {})
        assert set(sa) == set(sb), f"{where}: state keys {sorted(sa)} != {sorted(sb)}"
        for key, value in sb.items():
            if torch.is_tensor(value):
                assert torch.allclose(sa[key].to(value.dtype), value, rtol=0, atol=atol), f"{where}: state[{key!r}]"
            else:
                assert sa[key] == value, f"{where}: state[{key!r}]"


def round_trip(state_dict):
    buffer = io.BytesIO()
    torch.save(state_dict, buffer)
    buffer.seek(0)
    return torch.load(buffer)


def group_keys(optimizer):
    return [set(g) for g in optimizer.param_groups]


# ----------------------------------------------------------------------------- Muon

MUON_SHAPES = [(5, 3), (3, 7), (4, 4), (6, 2)]
MUON_CASES = {
    "defaults": ({}, {}),
    "lr_wd_nesterov_off": ({"lr": 0.02, "weight_decay": 0.05, "nesterov": False}, {"momentum": 0.5}),
    "match_rms_adamw": ({"lr": 0.01, "adjust_lr_fn": "match_rms_adamw", "ns_steps": 3},
                        {"adjust_lr_fn": "original", "weight_decay": 0.0}),
    "cubic_coefficients": ({"lr": 0.02, "ns_coefficients": (1.5, -0.5, 0.0), "ns_steps": 8, "momentum": 0.9},
                           {"lr": 0.01, "eps": 1e-3}),
}


def two_groups(params, group2):
    return [{"params": params[::2]}, {"params": params[1::2], **group2}]


@pytest.mark.parametrize("case", list(MUON_CASES))
def test_muon_equals_torch_muon(case, device):
    hp, group2 = MUON_CASES[case]
    mine = make_params(device, MUON_SHAPES)
    theirs = clone(mine)
    a = ours.Muon(two_groups(mine, group2), **hp)
    b = torch.optim.Muon(two_groups(theirs, group2), **hp)
    for step in range(1, STEPS + 1):
        used = None if step % 5 else [0, 1, 3]  # sometimes a parameter has no gradient
        set_grads(mine, used=used)
        set_grads(theirs, used=used)
        a.step()
        b.step()
        assert_state_equal(a, mine, b, theirs, f"Muon[{case}] step {step}", atol=1e-15)
    assert group_keys(a) == group_keys(b)


def test_muon_signature_and_defaults_are_torchs():
    def described(cls):
        return [(n, p.kind, p.default) for n, p in inspect.signature(cls.__init__).parameters.items()]
    assert described(ours.Muon) == described(torch.optim.Muon)
    p = [torch.zeros(2, 3, requires_grad=True)]
    assert ours.Muon(p).defaults == torch.optim.Muon(p).defaults


MUON_BAD = [
    dict(lr=-1e-3), dict(momentum=-0.1), dict(weight_decay=-0.1), dict(adjust_lr_fn="spectral"),
    dict(lr=torch.tensor([1e-3, 1e-3])), dict(lr=-1.0, momentum=-1.0),
]


@pytest.mark.parametrize("bad", MUON_BAD, ids=[str(b) for b in MUON_BAD])
def test_muon_rejects_what_torch_rejects(bad):
    p = [torch.zeros(2, 3, requires_grad=True)]
    with pytest.raises(ValueError) as expected:
        torch.optim.Muon(p, **bad)
    with pytest.raises(ValueError) as got:
        ours.Muon(p, **bad)
    assert str(got.value) == str(expected.value)


@pytest.mark.parametrize("shape", [(3,), (2, 3, 4), ()])
def test_muon_rejects_non_matrices_like_torch(shape):
    p = [torch.zeros(shape, requires_grad=True)]
    with pytest.raises(ValueError) as expected:
        torch.optim.Muon(p)
    with pytest.raises(ValueError) as got:
        ours.Muon(p)
    assert str(got.value) == str(expected.value)


@pytest.mark.parametrize("bad", [dict(ns_steps=100), dict(ns_coefficients=(1.5, -0.5))])
def test_muon_step_rejects_what_torch_rejects(bad):
    results = []
    for cls in (torch.optim.Muon, ours.Muon):
        p = torch.ones(2, 3, requires_grad=True)
        opt = cls([p], **bad)
        p.grad = torch.ones(2, 3)
        with pytest.raises(ValueError) as raised:
            opt.step()
        results.append(str(raised.value))
    assert results[0] == results[1]


@pytest.mark.parametrize("direction", ["ours_to_torch", "torch_to_ours"])
def test_muon_state_dict_moves_both_ways(direction, device):
    params = make_params(device, MUON_SHAPES, seed=3)
    make_source, make_loaded = ((ours.Muon, torch.optim.Muon) if direction == "ours_to_torch"
                                else (torch.optim.Muon, ours.Muon))
    source = make_source(two_groups(params, {"lr": 0.03}), lr=0.02, weight_decay=0.01)
    for _ in range(6):
        set_grads(params)
        source.step()
    loaded_params = clone(params)
    loaded = make_loaded(two_groups(loaded_params, {}), lr=0.5)
    loaded.load_state_dict(round_trip(source.state_dict()))
    for step in range(8):
        set_grads(params)
        set_grads(loaded_params)
        source.step()
        loaded.step()
        assert_state_equal(source, params, loaded, loaded_params, f"{direction}, step {step}", atol=1e-15)


def svd_reference(matrix, coefficients, steps):
    """``U p(S / ||G||_F) V^T`` with ``p`` the scalar polynomial iterated ``steps`` times: what N-S must give."""
    u, s, vh = torch.linalg.svd(matrix, full_matrices=False)
    a, b, c = coefficients
    s = s / matrix.norm()
    for _ in range(steps):
        s = a * s + b * s**3 + c * s**5
    return (u * s) @ vh


@pytest.mark.parametrize("shape", [(4, 4), (3, 7), (7, 3), (1, 5), (6, 1)])
@pytest.mark.parametrize("coefficients,steps", [((3.4445, -4.7750, 2.0315), 5), ((1.5, -0.5, 0.0), 12)])
def test_newton_schulz_acts_on_singular_values_only(shape, coefficients, steps):
    matrix = torch.randn(shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    got = newton_schulz(matrix, coefficients, steps, dtype=None)
    assert got.dtype == torch.float64 and got.shape == matrix.shape
    torch.testing.assert_close(got, svd_reference(matrix, coefficients, steps), rtol=1e-10, atol=1e-12)


def test_newton_schulz_cubic_converges_to_the_orthogonal_factor():
    matrix = torch.randn(4, 6, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    u, _, vh = torch.linalg.svd(matrix, full_matrices=False)
    got = newton_schulz(matrix, (1.5, -0.5, 0.0), 40, dtype=None)
    torch.testing.assert_close(got, u @ vh, rtol=0, atol=1e-10)
    # Muon's quintic stops near, not at, 1: its singular values lie in about [0.7, 1.2]
    quintic = torch.linalg.svdvals(newton_schulz(matrix, dtype=None))
    assert 0.6 < quintic.min() and quintic.max() < 1.25 and (quintic - 1).abs().max() > 1e-3


def test_muon_with_adamw_is_torch_muon_on_matrices_and_torch_adamw_on_the_rest():
    params = make_params("cpu", [(4, 3), (4,), (2, 4), ()], seed=15)
    copies = clone(params)
    hybrid = ours.MuonWithAdamW(params, lr=0.03, weight_decay=0.01, adamw_lr=0.01, adamw_weight_decay=0.1,
                                muon_params="matrices")
    muon = torch.optim.Muon([copies[0], copies[2]], lr=0.03, weight_decay=0.01)
    adamw = torch.optim.AdamW([copies[1], copies[3]], lr=0.01, weight_decay=0.1, foreach=False)
    for step in range(10):
        set_grads(params)
        set_grads(copies)
        hybrid.step()
        muon.step()
        adamw.step()
        assert max_diff(params, copies) <= 1e-15, f"step {step}"
    assert [g["use_muon"] for g in hybrid.param_groups] == [True, False]


def test_muon_with_adamw_orthogonalizes_a_conv_kernel_as_its_out_by_fan_in_matrix():
    params = make_params("cpu", [(3, 2, 2, 2), (3,)], seed=16)
    flat = [params[0].detach().reshape(3, -1).clone().requires_grad_(), params[1].detach().clone().requires_grad_()]
    hybrid = ours.MuonWithAdamW(params, lr=0.03, weight_decay=0.01, adamw_lr=0.01, muon_params=[params[0]])
    muon = torch.optim.Muon([flat[0]], lr=0.03, weight_decay=0.01)
    adamw = torch.optim.AdamW([flat[1]], lr=0.01, weight_decay=0.0, foreach=False)
    for step in range(10):
        set_grads(params)
        set_grads(flat)
        hybrid.step()
        muon.step()
        adamw.step()
        assert params[0].shape == (3, 2, 2, 2)
        assert max_diff([params[0].reshape(3, -1), params[1]], flat) <= 1e-15, f"step {step}"
    assert hybrid.state[params[0]]["momentum_buffer"].shape == (3, 2, 2, 2)


def routed(hybrid):
    """``(muon, adamw)``: the ids of the tensors in MuonWithAdamW's two groups."""
    groups = {g["use_muon"]: {id(p) for p in g["params"]} for g in hybrid.param_groups}
    return groups.get(True, set()), groups.get(False, set())


def test_muon_with_adamw_gives_the_input_and_output_layers_to_adamw_by_default():
    model = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.ReLU(), torch.nn.Linear(5, 5), torch.nn.ReLU(),
                                torch.nn.Linear(5, 4), torch.nn.ReLU(), torch.nn.Linear(4, 3))
    linears = [m for m in model if isinstance(m, torch.nn.Linear)]
    muon, adamw = routed(ours.MuonWithAdamW(model.parameters()))
    assert muon == {id(linears[1].weight), id(linears[2].weight)}  # the hidden matrices only
    assert adamw == {id(p) for p in model.parameters()} - muon    # input and output layers, all biases
    muon, adamw = routed(ours.MuonWithAdamW(model.parameters(), muon_params="matrices"))
    assert muon == {id(m.weight) for m in linears}
    muon, adamw = routed(ours.MuonWithAdamW(model.parameters(), muon_params=[linears[0].weight]))
    assert muon == {id(linears[0].weight)} and len(adamw) == 7


def test_muon_with_adamw_hidden_default_is_adamw_alone_without_hidden_matrices():
    # a 2-layer network has no hidden-to-hidden matrix: everything is AdamW's, Muon's lr is not used
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh(), torch.nn.Linear(3, 2))
    copy = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh(), torch.nn.Linear(3, 2))
    copy.load_state_dict(model.state_dict())
    hybrid = ours.MuonWithAdamW(model.parameters(), lr=0.5, adamw_lr=0.01)
    adamw = torch.optim.AdamW(copy.parameters(), lr=0.01, weight_decay=0.0, foreach=False)
    assert [g["use_muon"] for g in hybrid.param_groups] == [False]
    x = torch.randn(5, 4, generator=torch.Generator().manual_seed(3))
    for _ in range(5):
        for net, opt in ((model, hybrid), (copy, adamw)):
            opt.zero_grad()
            net(x).pow(2).sum().backward()
            opt.step()
    assert max_diff(list(model.parameters()), list(copy.parameters())) <= 1e-15


def test_muon_with_adamw_ns_dtype_none_runs_the_iteration_in_the_parameters_dtype():
    params = make_params("cpu", [(4, 3), (5, 4), (2, 5)], seed=17)
    copies, in_bf16 = clone(params), clone(params)
    hybrid = ours.MuonWithAdamW(params, lr=0.03, ns_dtype=None)
    bf16 = ours.MuonWithAdamW(in_bf16, lr=0.03)
    momentum = torch.zeros(5, 4, dtype=params[1].dtype)
    for _ in range(4):
        set_grads(params)
        set_grads(copies)
        set_grads(in_bf16)
        hybrid.step()
        bf16.step()
        # the middle matrix by hand: Nesterov momentum as lerps, then 5 float64 Newton-Schulz steps
        g = copies[1].grad
        momentum.lerp_(g, 0.05)
        with torch.no_grad():
            copies[1] -= 0.03 * (5 / 4) ** 0.5 * newton_schulz(g.lerp(momentum, 0.95), dtype=None)  # lr * sqrt(m/n)
    assert params[1].dtype == torch.float64
    assert (params[1] - copies[1]).abs().max().item() <= 1e-14
    # torch's choice, bfloat16, stays the default: its rounding (about 4e-3 relative) shows in the weights
    assert bf16.param_groups[0]["ns_dtype"] == torch.bfloat16
    assert (in_bf16[1] - copies[1]).abs().max().item() > 1e-6


@pytest.mark.parametrize("bad,message", [
    (dict(muon_params="all"), "muon_params must be 'hidden', 'matrices'"),
    (dict(muon_params=[torch.zeros(3, 3)]), "muon_params must be tensors from params"),
    (dict(muon_params="bias"), "muon_params must be 'hidden', 'matrices'"),
    (dict(ns_dtype="float64"), "ns_dtype must be a torch.dtype"),
])
def test_muon_with_adamw_rejects_a_bad_selection(bad, message):
    params = make_params("cpu", [(4, 3), (4,)], seed=18)
    with pytest.raises(ValueError, match=message):
        ours.MuonWithAdamW(params, **bad)
    with pytest.raises(ValueError, match="two or more dimensions"):
        ours.MuonWithAdamW(params, muon_params=[params[1]])


# ----------------------------------------------------------------------------- schedule-free

SF_SHAPES = [(), (7,), (3, 5), (4, 3, 2)]
SF_CASES = {
    "SGD": [
        (ours.ScheduleFreeSGD, schedulefree.SGDScheduleFree, {"lr": 0.1}, {"lr": 0.05}),
        (ours.ScheduleFreeSGD, schedulefree.SGDScheduleFree,
         {"lr": 0.2, "momentum": 0.8, "weight_decay": 0.05, "warmup_steps": 6, "r": 1.0, "weight_lr_power": 1.0},
         {"momentum": 0.95, "weight_decay": 0.0, "warmup_steps": 0}),
    ],
    "AdamW": [
        (ours.ScheduleFreeAdamW, schedulefree.AdamWScheduleFree, {"lr": 0.02}, {"lr": 0.01}),
        (ours.ScheduleFreeAdamW, schedulefree.AdamWScheduleFree,
         {"lr": 0.05, "betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.1, "warmup_steps": 5, "r": 0.5},
         {"betas": (0.95, 0.9), "weight_decay": 0.0, "weight_lr_power": 0.0}),
    ],
}
SF_ALL = [(name, i) for name, cases in SF_CASES.items() for i in range(len(cases))]


@pytest.mark.parametrize("foreach", [False, True], ids=["readable", "foreach"])
@pytest.mark.parametrize("name,index", SF_ALL, ids=[f"{n}-{i}" for n, i in SF_ALL])
def test_schedule_free_equals_the_package_with_train_eval_switches(name, index, foreach, device):
    cls, reference_cls, hp, group2 = SF_CASES[name][index]
    mine = make_params(device, SF_SHAPES)
    theirs = clone(mine)
    groups = lambda ps: [{"params": ps[::2]}, {"params": ps[1::2], **group2}]  # noqa: E731
    a = cls(groups(mine), **hp, foreach=foreach)
    b = reference_cls(groups(theirs), **hp, foreach=False)
    a.train()
    b.train()
    for step in range(1, STEPS + 1):
        used = [1, 2, 3] if step == 4 else None
        set_grads(mine, used=used)
        set_grads(theirs, used=used)
        a.step()
        b.step()
        assert_state_equal(a, mine, b, theirs, f"{name}[{index}] train, step {step}")
        if step % 6 == 0:  # evaluate at x, then go on training
            a.eval()
            b.eval()
            assert_state_equal(a, mine, b, theirs, f"{name}[{index}] eval, step {step}")
            a.train()
            b.train()
    assert [{k: v for k, v in g.items() if k not in ("params", "foreach")} for g in a.param_groups] == \
           [{k: v for k, v in g.items() if k not in ("params", "foreach")} for g in b.param_groups]
    assert all(p.grad is not None for p in mine)  # ours leaves the gradients alone


@pytest.mark.parametrize("name", list(SF_CASES))
def test_schedule_free_defaults_and_arguments_are_the_packages(name):
    cls, reference_cls, _, _ = SF_CASES[name][0]
    ours_params = inspect.signature(cls.__init__).parameters
    ref_params = inspect.signature(reference_cls.__init__).parameters
    assert list(ours_params) == list(ref_params)
    for key in ours_params:
        if key not in ("self", "params", "foreach"):
            assert ours_params[key].default == ref_params[key].default, key
    p = [torch.zeros(3, requires_grad=True)]
    assert {k: v for k, v in cls(p).defaults.items() if k != "foreach"} == \
           {k: v for k, v in reference_cls(p).defaults.items() if k != "foreach"}


@pytest.mark.parametrize("direction", ["ours_to_package", "package_to_ours"])
@pytest.mark.parametrize("name", list(SF_CASES))
def test_schedule_free_state_dict_moves_both_ways(name, direction, device):
    cls, reference_cls, hp, group2 = SF_CASES[name][1]
    make_source, make_loaded = (cls, reference_cls) if direction == "ours_to_package" else (reference_cls, cls)
    params = make_params(device, SF_SHAPES, seed=5)
    source = make_source(params, **hp)
    source.train()
    for _ in range(7):
        set_grads(params)
        source.step()
    source.eval()  # checkpoints are taken in eval mode
    loaded_params = clone(params)
    loaded = make_loaded(loaded_params, lr=123.0)
    loaded.load_state_dict(round_trip(source.state_dict()))
    source.train()
    loaded.train()
    for step in range(8):
        set_grads(params)
        set_grads(loaded_params)
        source.step()
        loaded.step()
        assert_state_equal(source, params, loaded, loaded_params, f"{name} {direction}, step {step}")


@pytest.mark.parametrize("cls", [ours.ScheduleFreeSGD, ours.ScheduleFreeAdamW])
def test_schedule_free_step_needs_train_mode(cls):
    p = torch.ones(3, requires_grad=True)
    p.grad = torch.ones(3)
    opt = cls([p])
    with pytest.raises(RuntimeError, match="not in train mode"):
        opt.step()
    opt.train()
    opt.step()
    opt.eval()
    with pytest.raises(RuntimeError, match="not in train mode"):
        opt.step()


SF_SGD_BAD = [dict(lr=-1.0), dict(weight_decay=-0.1), dict(momentum=0.0), dict(momentum=1.0),
              dict(lr=-1.0, momentum=2.0)]


@pytest.mark.parametrize("bad", SF_SGD_BAD, ids=[str(b) for b in SF_SGD_BAD])
def test_schedule_free_sgd_rejects_what_the_package_rejects(bad):
    p = [torch.zeros(3, requires_grad=True)]
    with pytest.raises(ValueError) as expected:
        schedulefree.SGDScheduleFree(p, **bad)
    with pytest.raises(ValueError) as got:
        ours.ScheduleFreeSGD(p, **bad)
    assert str(got.value) == str(expected.value)


@pytest.mark.parametrize("bad,message", [
    (dict(lr=-1.0), "Invalid learning rate: -1.0"), (dict(eps=-1.0), "Invalid epsilon value: -1.0"),
    (dict(betas=(1.0, 0.9)), "Invalid beta parameter at index 0: 1.0"),
    (dict(betas=(0.0, 0.9)), "Invalid beta parameter at index 0: 0.0"),
    (dict(betas=(0.9, 1.0)), "Invalid beta parameter at index 1: 1.0"),
    (dict(weight_decay=-0.1), "Invalid weight_decay value: -0.1")])
def test_schedule_free_adamw_rejects_bad_hyperparameters(bad, message):
    with pytest.raises(ValueError, match=f"^{message}$".replace("(", r"\(").replace(")", r"\)")):
        ours.ScheduleFreeAdamW([torch.zeros(3, requires_grad=True)], **bad)


def test_schedule_free_sgd_eval_point_is_the_average_of_z():
    """With r=0 and no warmup the t-th step has c = 1/t: x is the running mean of the z's after steps 1..T."""
    p = torch.tensor([1.5, -2.0], requires_grad=True)
    opt = ours.ScheduleFreeSGD([p], lr=0.1, momentum=0.7)
    opt.train()
    zs = [p.detach().clone()]
    for _ in range(12):
        p.grad = 2 * p.detach() + torch.sin(p.detach())
        opt.step()
        zs.append(opt.state[p]["z"].clone())
        opt.eval()
        torch.testing.assert_close(p.detach(), torch.stack(zs[1:]).mean(0), rtol=1e-13, atol=1e-14)
        y = 0.3 * zs[-1] + 0.7 * p.detach()  # y = (1 - beta) z + beta x
        opt.train()
        torch.testing.assert_close(p.detach(), y, rtol=1e-13, atol=1e-14)


# ----------------------------------------------------------------------------- Lion

def paper_lion(values, grads_fn, steps, lr, beta1, beta2, weight_decay):
    """Chen et al. (2023), Algorithm 2, line by line on plain tensors."""
    theta = [v.clone() for v in values]
    m = [torch.zeros_like(v) for v in values]
    for _ in range(steps):
        g = grads_fn(theta)
        for i in range(len(theta)):
            c = beta1 * m[i] + (1 - beta1) * g[i]
            theta[i] = theta[i] - lr * (torch.sign(c) + weight_decay * theta[i])
            m[i] = beta2 * m[i] + (1 - beta2) * g[i]
    return theta, m


def lion_grads(theta):
    return [(1 + 0.25 * i) * (0.1 * t.pow(3) + 0.1 * t + torch.cos(t + 0.3 * i)) for i, t in enumerate(theta)]


LION_CASES = [dict(), dict(lr=0.01), dict(lr=0.02, betas=(0.5, 0.9), weight_decay=0.3)]


@pytest.mark.parametrize("foreach", [False, True], ids=["readable", "foreach"])
@pytest.mark.parametrize("hp", LION_CASES, ids=[str(h) for h in LION_CASES])
def test_lion_follows_the_paper(hp, foreach, device):
    params = make_params(device, SF_SHAPES + [(5, 3)], seed=7)
    params[-1] = params[-1].detach().t().requires_grad_()  # a non-contiguous view
    values = [p.detach().clone() for p in params]
    opt = ours.Lion(params, **hp, foreach=foreach)
    full = {"lr": 1e-4, "betas": (0.9, 0.99), "weight_decay": 0.0, **hp}
    for step in range(1, STEPS + 1):
        set_grads(params)
        opt.step()
        theta, m = paper_lion(values, lion_grads, step, full["lr"], *full["betas"], full["weight_decay"])
        for i, p in enumerate(params):
            torch.testing.assert_close(p.detach(), theta[i], rtol=1e-13, atol=1e-14, msg=f"step {step}, param {i}")
            torch.testing.assert_close(opt.state[p]["exp_avg"], m[i], rtol=1e-13, atol=1e-14)
    assert all(set(opt.state[p]) == {"exp_avg"} for p in params)


def test_lion_moves_every_coordinate_by_lr_and_keeps_half_of_adams_memory():
    params = make_params("cpu", [(4, 3), (6,)], seed=8)
    before = [p.detach().clone() for p in params]
    lion = ours.Lion(params, lr=0.01)
    set_grads(params)
    lion.step()
    for p, b in zip(params, before):
        torch.testing.assert_close((p - b).abs(), torch.full_like(p, 0.01), rtol=0, atol=1e-15)
    adam = ours.Adam(clone(params))
    set_grads(adam.param_groups[0]["params"])
    adam.step()
    state_numel = lambda opt: sum(v.numel() for s in opt.state.values() for v in s.values()  # noqa: E731
                                  if torch.is_tensor(v) and v.dim() > 0)
    assert 2 * state_numel(lion) == state_numel(adam) == 2 * sum(p.numel() for p in params)


def test_lion_maximize_and_state_dict_round_trip():
    params = make_params("cpu", [(3, 2), (4,)], seed=9)
    other = clone(params)
    a = ours.Lion(params, lr=0.01, weight_decay=0.1, maximize=True)
    b = ours.Lion(other, lr=0.01, weight_decay=0.1)
    for _ in range(5):
        set_grads(params)
        set_grads(other, sign=-1.0)
        a.step()
        b.step()
    assert max_diff(params, other) == 0
    resumed_params = clone(params)
    resumed = ours.Lion(resumed_params, lr=1.0)
    resumed.load_state_dict(round_trip(a.state_dict()))
    for step in range(5):
        set_grads(params)
        set_grads(resumed_params)
        a.step()
        resumed.step()
        assert_state_equal(resumed, resumed_params, a, params, f"resumed step {step}", atol=0)


LION_BAD = [(dict(lr=-1.0), "Invalid learning rate: -1.0"),
            (dict(betas=(1.0, 0.99)), "Invalid beta parameter at index 0: 1.0"),
            (dict(betas=(0.9, -0.1)), "Invalid beta parameter at index 1: -0.1"),
            (dict(weight_decay=-1.0), "Invalid weight_decay value: -1.0")]


@pytest.mark.parametrize("bad,message", LION_BAD)
def test_lion_rejects_bad_hyperparameters(bad, message):
    with pytest.raises(ValueError) as raised:
        ours.Lion([torch.zeros(2, requires_grad=True)], **bad)
    assert str(raised.value) == message


# ----------------------------------------------------------------------------- Shampoo

def explicit_shampoo(value, grads, lr, epsilon):
    """Full-matrix computation on vec(W): the preconditioner is the Kronecker product of the per-dimension
    statistics, each to the power -1/(2k), built as an (n x n) matrix and applied to vec(G)."""
    shape = value.shape or (1,)
    stats = [epsilon * torch.eye(d, dtype=value.dtype) for d in shape]
    w = value.reshape(shape).clone()
    k = len(shape)
    for g in grads:
        g = g.reshape(shape)
        for i in range(k):
            unfolded = g.movedim(i, 0).reshape(shape[i], -1)
            stats[i] = stats[i] + unfolded @ unfolded.T
        kron = stats[0]
        for s in stats[1:]:
            kron = torch.kron(kron, s)
        precond = matrix_power_psd(kron, -1.0 / (2 * k))
        w = w - lr * (precond @ g.reshape(-1)).reshape(shape)
    return w.reshape(value.shape)


@pytest.mark.parametrize("shape", [(3, 4), (5, 2), (2, 3, 2), (6,), ()])
def test_shampoo_equals_the_explicit_kronecker_preconditioner(shape, device):
    (param,) = make_params(device, [shape], seed=11)
    value = param.detach().clone()
    opt = ours.Shampoo([param], lr=0.05, epsilon=1e-2)
    grads = []
    for step in range(1, 9):
        set_grads([param])
        grads.append(param.grad.detach().cpu().clone())
        opt.step()
        expected = explicit_shampoo(value.cpu(), grads, 0.05, 1e-2)
        torch.testing.assert_close(param.detach().cpu(), expected, rtol=1e-10, atol=1e-12, msg=f"step {step}")


def test_shampoo_keeps_only_the_diagonal_of_long_dimensions():
    """Dimension 0 (length 5 > max_preconditioner_dim=4) keeps diag(sum G G^T); dimension 1 the full 3x3."""
    p = torch.randn(5, 3, generator=torch.Generator().manual_seed(14), requires_grad=True)
    q = p.detach().clone()
    opt = ours.Shampoo([p], lr=0.05, epsilon=1e-3, max_preconditioner_dim=4)
    left, right = 1e-3 * torch.ones(5), 1e-3 * torch.eye(3)
    for _ in range(5):
        set_grads([p])
        g = (0.1 * q.pow(3) + 0.1 * q + torch.cos(q))
        left = left + (g * g).sum(1)
        right = right + g.T @ g
        q = q - 0.05 * (left.pow(-0.25)[:, None] * g) @ matrix_power_psd(right, -0.25)
        opt.step()
        torch.testing.assert_close(p.detach(), q, rtol=1e-12, atol=1e-13)
    assert opt.state[p]["precond_0"].shape == (5,) and opt.state[p]["precond_1"].shape == (3, 3)


def test_shampoo_on_a_vector_is_full_matrix_adagrad():
    p = torch.tensor([0.5, -1.0, 2.0], requires_grad=True)
    q = p.detach().clone()
    opt = ours.Shampoo([p], lr=0.1, epsilon=1e-3)
    h = 1e-3 * torch.eye(3)
    for _ in range(6):
        g = torch.stack([q[0] * q[1], q[1] ** 2 + q[2], torch.sin(q[2])])
        p.grad = torch.stack([p[0] * p[1], p[1] ** 2 + p[2], torch.sin(p[2])]).detach()
        opt.step()
        h = h + torch.outer(g, g)
        eigenvalues, vectors = torch.linalg.eigh(h)
        q = q - 0.1 * (vectors @ torch.diag(eigenvalues**-0.5) @ vectors.T) @ g
        torch.testing.assert_close(p.detach(), q, rtol=1e-12, atol=1e-13)


def test_shampoo_update_freq_momentum_weight_decay_maximize_and_groups():
    params = make_params("cpu", [(3, 2), (4,)], seed=12)
    copies = clone(params)
    opt = ours.Shampoo([{"params": [params[0]]}, {"params": [params[1]], "lr": 0.02, "momentum": 0.5}],
                       lr=0.05, weight_decay=0.1, update_freq=3, maximize=True)
    inv, stats, buffers = {}, {}, {}
    for step in range(1, 8):
        set_grads(params, sign=-1.0)
        set_grads(copies, sign=-1.0)
        opt.step()
        with torch.no_grad():
            for j, (q, lr, mom) in enumerate(zip(copies, (0.05, 0.02), (0.0, 0.5))):
                g = -q.grad + 0.1 * q  # maximize flips the sign; L2 weight decay
                mats = [g] if g.dim() == 2 else [g[:, None]]
                k = g.dim()
                for i in range(k):
                    unfolded = g.movedim(i, 0).reshape(g.shape[i], -1)
                    key = (j, i)
                    stats[key] = stats.get(key, 1e-4 * torch.eye(g.shape[i])) + unfolded @ unfolded.T
                    if (step - 1) % 3 == 0:
                        inv[key] = matrix_power_psd(stats[key], -1.0 / (2 * k))
                direction = inv[(j, 0)] @ mats[0] @ (inv[(j, 1)] if k == 2 else torch.eye(1))
                direction = direction.reshape(g.shape)
                if mom:
                    buffers[j] = mom * buffers.get(j, torch.zeros_like(g)) + direction
                    direction = buffers[j]
                q -= lr * direction
        for p, q in zip(params, copies):
            torch.testing.assert_close(p.detach(), q.detach(), rtol=1e-12, atol=1e-13, msg=f"step {step}")
    assert set(opt.state[params[0]]) == {"step", "precond_0", "precond_1", "inv_precond_0", "inv_precond_1"}
    assert set(opt.state[params[1]]) == {"step", "precond_0", "inv_precond_0", "momentum_buffer"}
    resumed_params = clone(params)
    resumed = ours.Shampoo([{"params": [resumed_params[0]]}, {"params": [resumed_params[1]]}])
    resumed.load_state_dict(round_trip(opt.state_dict()))
    for _ in range(4):
        set_grads(params)
        set_grads(resumed_params)
        opt.step()
        resumed.step()
    assert max_diff(params, resumed_params) == 0


SHAMPOO_BAD = [(dict(lr=-1.0), "Invalid learning rate: -1.0"), (dict(momentum=-0.5), "Invalid momentum value: -0.5"),
               (dict(weight_decay=-1.0), "Invalid weight_decay value: -1.0"),
               (dict(epsilon=-1.0), "Invalid epsilon value: -1.0"), (dict(update_freq=0), "Invalid update_freq value: 0"),
               (dict(max_preconditioner_dim=0), "Invalid max_preconditioner_dim value: 0")]


@pytest.mark.parametrize("bad,message", SHAMPOO_BAD)
def test_shampoo_rejects_bad_hyperparameters(bad, message):
    with pytest.raises(ValueError) as raised:
        ours.Shampoo([torch.zeros(2, requires_grad=True)], **bad)
    assert str(raised.value) == message


# ----------------------------------------------------------------------------- all of them

@pytest.mark.parametrize("name", ["Lion", "Shampoo", "Muon", "ScheduleFreeSGD", "ScheduleFreeAdamW"])
def test_closure_and_grad_none(name):
    """step(closure) returns the closure's loss; a parameter without gradient neither moves nor gets state."""
    params = make_params("cpu", [(3, 2), (2, 4)], seed=13)
    opt = getattr(ours, name)(params, lr=0.01)
    if hasattr(opt, "train"):
        opt.train()
    frozen = params[1].detach().clone()

    def closure():
        opt.zero_grad()
        loss = (params[0] ** 2).sum() + torch.sin(params[0]).sum()
        loss.backward()
        return loss

    before = params[0].detach().clone()
    with torch.no_grad():
        loss = opt.step(closure)
    assert torch.is_tensor(loss) and loss.requires_grad
    assert not torch.equal(params[0], before)
    assert torch.equal(params[1], frozen) and len(opt.state.get(params[1], {})) == 0


# ----------------------------------------------------------------------------- the race widget

def test_new_racers_race_on_every_surface_without_problems():
    from course_lib.surfaces import SURFACES
    from course_lib.widgets.race import RACERS, race_update
    new = ("lion", "shampoo", "sf_sgd", "sf_adamw")
    assert set(new) <= set(RACERS) and "muon" not in RACERS  # Muon needs matrices: no racer on a 2-D point
    for surface in SURFACES:
        fig = race_update(surface, optimizers=new, steps=30)
        assert not fig.texts, f"{surface}: {[t.get_text() for t in fig.texts]}"
    # a schedule-free racer is put in train mode and records y, the point where it takes gradients
    make = RACERS["sf_sgd"].optimizer
    p = torch.tensor([1.0, 2.0], requires_grad=True)
    opt = make([p], lr=0.1)
    assert opt.param_groups[0]["train_mode"]
