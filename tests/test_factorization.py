"""course_lib.factorization: effective rank, singular value thresholding, deep factorization, nuclear norm."""

import math

import pytest
import torch

from course_lib import factorization as fz

F64 = torch.float64


def _orthogonal(n, seed):
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=torch.Generator().manual_seed(seed), dtype=F64))
    return q


def test_effective_rank_of_known_spectra():
    assert fz.effective_rank(torch.eye(5, dtype=F64)) == pytest.approx(5.0)
    assert fz.effective_rank(torch.diag(torch.tensor([2.0, 2.0, 0.0, 0.0], dtype=F64))) == pytest.approx(2.0)
    u, v = torch.randn(6, 1, dtype=F64), torch.randn(4, 1, dtype=F64)
    assert fz.effective_rank(u @ v.T) == pytest.approx(1.0, abs=1e-12)
    p = [0.75, 0.25]
    assert fz.effective_rank(torch.diag(torch.tensor([3.0, 1.0], dtype=F64))) == pytest.approx(
        math.exp(-sum(q * math.log(q) for q in p)))
    values = torch.tensor([[3.0, 1.0, 0.0], [1.0, 1.0, 1.0]], dtype=F64)
    batch = fz.effective_rank(values, singular_values=True)
    assert batch.shape == (2,) and batch[1].item() == pytest.approx(3.0)


def test_effective_rank_is_scale_invariant_and_rotation_invariant():
    a = torch.randn(5, 3, generator=torch.Generator().manual_seed(0), dtype=F64)
    e = fz.effective_rank(a)
    assert 1.0 < e < 3.0
    assert fz.effective_rank(1e4 * _orthogonal(5, 1) @ a @ _orthogonal(3, 2)) == pytest.approx(e, rel=1e-10)


def test_effective_rank_bad_input():
    with pytest.raises(ValueError, match="zero matrix"):
        fz.effective_rank(torch.zeros(3, 3, dtype=F64))
    with pytest.raises(ValueError, match="non-negative"):
        fz.effective_rank(torch.tensor([1.0, -1.0], dtype=F64), singular_values=True)


def test_svt_of_a_diagonal_matrix_is_soft_thresholding():
    d = torch.diag(torch.tensor([5.0, -2.0, 0.5], dtype=F64))
    torch.testing.assert_close(fz.svt(d, 1.0), torch.diag(torch.tensor([4.0, -1.0, 0.0], dtype=F64)))
    torch.testing.assert_close(fz.svt(d, 0.0), d)
    torch.testing.assert_close(fz.svt(d, 6.0), torch.zeros(3, 3, dtype=F64))
    with pytest.raises(ValueError, match="tau"):
        fz.svt(d, -1.0)


def test_svt_is_the_proximal_operator_of_the_nuclear_norm():
    x = torch.randn(6, 4, generator=torch.Generator().manual_seed(3), dtype=F64)
    tau = 0.8
    y = fz.svt(x, tau)

    def objective(z):
        return 0.5 * (z - x).pow(2).sum() + tau * torch.linalg.svdvals(z).sum()

    best = objective(y)
    g = torch.Generator().manual_seed(4)
    for _ in range(20):  # a convex objective: every nearby point is worse
        assert objective(y + 1e-3 * torch.randn(6, 4, generator=g, dtype=F64)) > best


def test_low_rank_matrix_and_mask():
    m = fz.low_rank_matrix(30, 3, seed=0)
    s = torch.linalg.svdvals(m)
    assert s[2] > 0.1 and s[3] < 1e-12 * s[0]
    assert torch.linalg.matrix_norm(m).item() == pytest.approx(math.sqrt(3))  # Frobenius norm sqrt(rank)
    wide = fz.low_rank_matrix(6, 2, seed=1, cols=9)
    assert wide.shape == (6, 9) and torch.linalg.matrix_rank(wide).item() == 2
    assert (torch.linalg.svdvals(wide) ** 2).sum().item() == pytest.approx(2.0)
    mask = fz.random_mask((30, 30), 0.4, seed=1)
    assert mask.sum().item() == 360 and set(mask.unique().tolist()) == {0.0, 1.0}
    with pytest.raises(ValueError, match="rank"):
        fz.low_rank_matrix(4, 5)
    with pytest.raises(ValueError, match="fraction"):
        fz.random_mask((3, 3), 0.0)


def test_factor_gradients_match_autograd_for_odd_shapes_and_a_batch():
    g = torch.Generator().manual_seed(5)
    for shapes, batch in (([(2, 4), (5, 2), (3, 5)], None), ([(3, 3)] * 4, 2), ([(3, 3)], None)):
        lead = () if batch is None else (batch,)
        factors = [torch.randn(*lead, *s, generator=g, dtype=F64) for s in shapes]
        out = (shapes[-1][0], shapes[0][1])
        mask = (torch.rand(*lead, *out, generator=g, dtype=F64) > 0.5).to(F64)
        target = torch.randn(*lead, *out, generator=g, dtype=F64)
        ws = [w.clone().requires_grad_(True) for w in factors]
        loss = 0.5 * (mask * (fz.end_to_end_product(ws) - target)).pow(2).sum()
        expected = torch.autograd.grad(loss, ws)
        for got, want in zip(fz.factor_gradients(factors, mask, target), expected):
            torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)


def test_depth_one_never_moves_the_unobserved_entries():
    m = fz.low_rank_matrix(10, 2, seed=1)
    mask = fz.random_mask(m.shape, 0.5, seed=2)
    start = fz.init_factors(10, 1, 1e-3, seed=3)
    run = fz.train_factorization(m, mask, 1, 1e-3, 0.5, 200, factors=start)
    hidden = mask == 0
    torch.testing.assert_close(run.product[hidden], start[0][hidden], rtol=0, atol=0)
    assert run.train_loss[-1] < 1e-12 * run.train_loss[0]


def test_init_factors_scale_and_depth_three_recovers_from_half_the_entries():
    for depth in (1, 2, 4):
        product = fz.end_to_end_product(fz.init_factors(30, depth, 1e-3, seed=0))
        assert 1e-5 < torch.linalg.svdvals(product)[0].item() < 1e-1  # the same order for every depth
    m = fz.low_rank_matrix(20, 2, seed=4)
    mask = fz.random_mask(m.shape, 0.5, seed=5)
    run = fz.train_factorization(m, mask, 3, 1e-4, 0.2, 3000, record_every=1000)
    assert run.steps == [0, 1000, 2000, 3000] and run.singular_values.shape == (4, 20)
    assert run.test_error[-1] < 0.05 and fz.effective_rank(run.product) < 2.5
    with pytest.raises(ValueError, match="depth"):
        fz.init_factors(3, 0, 1e-3)


def test_nuclear_norm_completion_is_feasible_and_no_larger_than_the_truth():
    m = fz.low_rank_matrix(20, 2, seed=6)
    masks = torch.stack([fz.random_mask(m.shape, f, seed=7 + i) for i, f in enumerate((0.3, 0.7))])
    x = fz.nuclear_norm_completion(m, masks, iters=400)
    torch.testing.assert_close(masks * x, masks * m)  # the constraint holds exactly
    nuclear = torch.linalg.svdvals(x).sum(-1)
    assert (nuclear <= torch.linalg.svdvals(m).sum() * (1 + 1e-6)).all()  # M itself is feasible
    # here the minimum nuclear norm is below M's: the convex surrogate does not recover M even from 70%
    assert (nuclear[1] < torch.linalg.svdvals(m).sum() * (1 - 1e-3)) and fz.unobserved_error(x, m, masks)[1] > 0.05
    m3 = fz.low_rank_matrix(30, 3, seed=0)  # the notebook's matrix, 60% observed: recovered
    mask3 = fz.random_mask(m3.shape, 0.6, seed=5)
    assert fz.unobserved_error(fz.nuclear_norm_completion(m3, mask3, iters=300), m3, mask3) < 1e-8
    full = fz.nuclear_norm_completion(m, torch.ones_like(m), iters=5)
    torch.testing.assert_close(full, m)
