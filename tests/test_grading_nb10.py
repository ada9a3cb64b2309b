"""Notebook 10's checks: the correct code passes with one fixed line; each planted bug is caught."""

import math

import pytest
import torch

from course_lib.grading import check_select_learning_rate, check_swats, check_wilson_features
from course_lib.optim.swats import SWATS as RefSWATS
from course_lib.tuning import select_best
from course_lib.wilson import wilson_features as ref_features


# --- selection rule -------------------------------------------------------------------------------------------

def select_ok(acc, loss):
    return select_best(acc, loss)


def select_best_seed(acc, loss):  # the max over seeds instead of the mean
    return int(acc.max(1).values.argmax())


def select_by_loss(acc, loss):  # lowest mean loss only
    return int(torch.where(torch.isfinite(loss), loss, torch.full_like(loss, math.inf)).mean(1).argmin())


def select_ignores_divergence(acc, loss):
    return select_best(acc, torch.where(torch.isfinite(loss), loss, torch.zeros_like(loss)))


def select_no_tiebreak(acc, loss):  # first maximum of the mean accuracy, ignoring the loss
    bad = ~torch.isfinite(loss)
    return int(torch.where(bad, torch.zeros_like(acc), acc).mean(1).argmax())


def select_tie_to_last(acc, loss):
    n = acc.shape[0]
    return n - 1 - select_best(acc.flip(0), loss.flip(0))


def select_returns_lr_tensor(acc, loss):
    return torch.tensor(select_best(acc, loss), dtype=torch.float64)


def test_select_rule_correct_passes(capsys):
    check_select_learning_rate(select_ok)
    assert capsys.readouterr().out == "Learning-rate selection: all 14 checks passed\n"


@pytest.mark.parametrize("bug", [select_best_seed, select_by_loss, select_ignores_divergence, select_no_tiebreak,
                                 select_tie_to_last, select_returns_lr_tensor])
def test_select_rule_bugs_caught(bug):
    with pytest.raises(AssertionError, match="Learning-rate selection, case"):
        check_select_learning_rate(bug)


def test_select_rule_unsolved_raises_not_implemented():
    def stub(acc, loss):
        raise NotImplementedError()

    with pytest.raises(NotImplementedError):
        check_select_learning_rate(stub)


# --- Wilson features ------------------------------------------------------------------------------------------

def features_ok(y):
    return ref_features(y)


def features_block_of_5_for_positives(y):
    return ref_features(-y) * torch.cat([torch.tensor([-1.0]), torch.ones(ref_features(y).shape[1] - 1)]).to(y.dtype)


def features_no_label_column(y):
    X = ref_features(y)
    X[:, 0] = 1.0
    return X


def features_one_always_on(y):
    X = ref_features(y)
    X[:, 2] = 0.0
    return X


def features_blocks_of_width_3(y):  # 2(1 - y) + 1 columns read as 1 or 3
    X = ref_features(y)
    for i in range(len(y)):
        if y[i] < 0:
            X[i, 3 + 5 * i + 3: 3 + 5 * i + 5] = 0.0
    return X


def features_shared_block(y):  # every sample writes into the same block
    n = len(y)
    X = torch.zeros(n, 3 + 5 * n, dtype=y.dtype)
    X[:, 0], X[:, 1:3] = y, 1.0
    for i in range(n):
        X[i, 3: 3 + (1 if y[i] > 0 else 5)] = 1.0
    return X


def features_float32(y):
    return ref_features(y).float()


def test_wilson_correct_passes(capsys):
    check_wilson_features(features_ok)
    assert capsys.readouterr().out == "Wilson features: all 6 checks passed\n"


@pytest.mark.parametrize("bug", [features_block_of_5_for_positives, features_no_label_column, features_one_always_on,
                                 features_blocks_of_width_3, features_shared_block])
def test_wilson_bugs_caught(bug):
    with pytest.raises(AssertionError, match="Wilson features, case"):
        check_wilson_features(bug)


def test_wilson_float32_is_still_the_same_matrix(capsys):
    # exact 0/1/-1 entries: float32 is the same matrix, and the check accepts it
    check_wilson_features(features_float32)
    assert "all 6 checks passed" in capsys.readouterr().out


# --- SWATS ----------------------------------------------------------------------------------------------------

class OwnSWATS(torch.optim.Optimizer):
    """A learner's SWATS written from scratch (the lesson's constructor; the update in _swats_variant below):
    the planted bugs subclass it, since the check refuses classes built on the course's own SWATS."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-9, switch_tol=1e-9):
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, switch_tol=switch_tol, phase="adam",
                        proj_lr_avg=0.0, sgd_lr=None, switched_at=None)
        super().__init__(params, defaults)

    @property
    def switched_at(self):
        steps = [g["switched_at"] for g in self.param_groups if g["switched_at"] is not None]
        return min(steps) if steps else None

    @torch.no_grad()
    def step(self, closure=None):
        return _swats_variant(self, closure)


class SwatsNoBiasCorrection(OwnSWATS):
    """gamma compared with the raw average lambda_k instead of lambda_k / (1 - beta2^k)."""

    @torch.no_grad()
    def step(self, closure=None):
        return _swats_variant(self, closure, corrected=False)


class SwatsPerTensor(OwnSWATS):
    """projection per tensor (and the last tensor's gamma decides) instead of over the whole group."""

    @torch.no_grad()
    def step(self, closure=None):
        return _swats_variant(self, closure, per_tensor=True)


class SwatsKeepsMomentum(OwnSWATS):
    """the SGD phase starts from Adam's m instead of a zero buffer."""

    @torch.no_grad()
    def step(self, closure=None):
        return _swats_variant(self, closure, keep_m=True)


class SwatsNoDamping(OwnSWATS):
    """the SGD phase steps by Lambda v instead of (1 - beta1) Lambda v."""

    @torch.no_grad()
    def step(self, closure=None):
        return _swats_variant(self, closure, sgd_scale=1.0)


class SwatsTorchEps(OwnSWATS):
    """eps added to sqrt(a_hat) (torch's Adam) instead of sqrt(a_k) before the bias correction."""

    @torch.no_grad()
    def step(self, closure=None):
        return _swats_variant(self, closure, torch_eps=True)


class SwatsSwitchAtStepOne(OwnSWATS):
    """the test is allowed at k = 1 as well."""

    @torch.no_grad()
    def step(self, closure=None):
        return _swats_variant(self, closure, min_k=1)


class SwatsNeverSwitches(OwnSWATS):
    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            group["switch_tol"] = -1.0
        return super().step(closure)


def _swats_variant(opt, closure, *, corrected=True, per_tensor=False, keep_m=False, sgd_scale=None, torch_eps=False,
                   min_k=2):
    loss = None
    if closure is not None:
        with torch.enable_grad():
            loss = closure()
    for group in opt.param_groups:
        params = [p for p in group["params"] if p.grad is not None]
        beta1, beta2 = group["betas"]
        if group["phase"] == "sgd":
            scale = (1 - beta1) if sgd_scale is None else sgd_scale
            for p in params:
                st = opt.state[p]
                st["step"] += 1
                st["momentum_buffer"].mul_(beta1).add_(p.grad)
                p.add_(st["momentum_buffer"], alpha=-scale * group["sgd_lr"])
            continue
        pp, pg, k = 0.0, 0.0, 0
        for p in params:
            st = opt.state[p]
            if not st:
                st["step"] = torch.tensor(0.0, dtype=torch.float64)
                st["exp_avg"] = torch.zeros_like(p)
                st["exp_avg_sq"] = torch.zeros_like(p)
            st["step"] += 1
            k = int(st["step"].item())
            g = p.grad
            st["exp_avg"].mul_(beta1).add_(g, alpha=1 - beta1)
            st["exp_avg_sq"].mul_(beta2).addcmul_(g, g, value=1 - beta2)
            if torch_eps:
                denom = (st["exp_avg_sq"] / (1 - beta2 ** k)).sqrt() + group["eps"]
                upd = -group["lr"] / (1 - beta1 ** k) * st["exp_avg"] / denom
            else:
                upd = -group["lr"] * math.sqrt(1 - beta2 ** k) / (1 - beta1 ** k) * st["exp_avg"] / (
                    st["exp_avg_sq"].sqrt() + group["eps"])
            p.add_(upd)
            if per_tensor:
                pp, pg = float((upd * upd).sum()), float((upd * g).sum())
            else:
                pp += float((upd * upd).sum())
                pg += float((upd * g).sum())
        if pg != 0.0:
            gamma = pp / -pg
            group["proj_lr_avg"] = beta2 * group["proj_lr_avg"] + (1 - beta2) * gamma
            avg = group["proj_lr_avg"] / (1 - beta2 ** k) if corrected else group["proj_lr_avg"]
            if k >= min_k and abs(avg - gamma) < group["switch_tol"]:
                group["phase"], group["sgd_lr"], group["switched_at"] = "sgd", avg, k
                for p in params:
                    opt.state[p]["momentum_buffer"] = (opt.state[p]["exp_avg"].clone() if keep_m
                                                       else torch.zeros_like(p))
    return loss


def test_swats_correct_passes(capsys):
    state = torch.get_rng_state()
    check_swats(OwnSWATS)
    assert capsys.readouterr().out == "SWATS: all 9 checks passed\n"
    assert torch.equal(state, torch.get_rng_state())


def test_swats_course_class_itself_is_refused():
    with pytest.raises(AssertionError, match="an existing implementation"):
        check_swats(RefSWATS)


@pytest.mark.parametrize("bug", [SwatsNoBiasCorrection, SwatsPerTensor, SwatsKeepsMomentum, SwatsNoDamping,
                                 SwatsTorchEps, SwatsSwitchAtStepOne, SwatsNeverSwitches])
def test_swats_bugs_caught(bug):
    with pytest.raises(AssertionError, match="SWATS, case"):
        check_swats(bug)


def test_swats_unsolved_raises_not_implemented():
    class Stub(OwnSWATS):
        def step(self, closure=None):
            raise NotImplementedError()

    with pytest.raises(NotImplementedError):
        check_swats(Stub)
