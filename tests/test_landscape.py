"""course_lib.landscape: convexity on a grid, the tiny MLP, interpolation, filter-normalized slices."""

from __future__ import annotations

import torch

from course_lib.landscape import (
    MLP,
    filter_normalized_direction,
    interpolate,
    min_hessian_eigenvalues,
    slice_2d,
    two_spirals,
)
from course_lib.surfaces import get_surface


def test_min_hessian_eigenvalues_matches_closed_forms():
    xs, _, lam = min_hessian_eigenvalues(get_surface("ill_conditioned_quadratic"), ((-1, 1), (-1, 1)), 7)
    assert lam.shape == (7, 7) and torch.allclose(lam, torch.ones_like(lam))
    # x^4 + y^2: lambda_min = min(12 x^2, 2)
    xs, _, lam = min_hessian_eigenvalues(lambda p: p[..., 0] ** 4 + p[..., 1] ** 2, ((-1, 1), (-2, 2)), 9)
    expected = torch.minimum(12 * xs ** 2, torch.tensor(2.0, dtype=torch.float64)).expand(9, 9)
    assert torch.allclose(lam, expected)


def test_spirals_are_balanced_and_seeded():
    X, y = two_spirals(100, seed=3)
    assert X.shape == (100, 2) and y.shape == (100,) and y.sum() == 50
    assert torch.equal(X, two_spirals(100, seed=3)[0])


def test_mlp_matches_torch_nn_and_takes_batches_of_parameters():
    mlp = MLP((2, 5, 3, 1))
    theta = mlp.init(1)
    assert theta.shape == (mlp.n_params,) == (2 * 5 + 5 + 5 * 3 + 3 + 3 + 1,)
    net = torch.nn.Sequential(torch.nn.Linear(2, 5), torch.nn.Tanh(), torch.nn.Linear(5, 3), torch.nn.Tanh(),
                              torch.nn.Linear(3, 1)).double()
    torch.nn.utils.vector_to_parameters(theta, net.parameters())  # same layout: W row-major, then b
    X, y = two_spirals(20)
    assert torch.allclose(mlp.logits(theta, X), net(X).squeeze(-1))
    expected = torch.nn.functional.binary_cross_entropy_with_logits(net(X).squeeze(-1), y)
    assert torch.allclose(mlp.loss(theta, X, y), expected)
    batch = torch.stack([theta, 2 * theta, -theta]).reshape(3, 1, -1)
    assert mlp.loss(batch, X, y).shape == (3, 1)
    assert torch.allclose(mlp.loss(batch, X, y)[1, 0], mlp.loss(2 * theta, X, y))


def test_interpolation_and_slice_hit_their_end_points():
    mlp = MLP((2, 4, 1))
    X, y = two_spirals(30)
    a, b = mlp.init(0), mlp.init(1)
    loss = lambda t: mlp.loss(t, X, y)
    values = interpolate(loss, a, b, [0.0, 0.5, 1.0])
    assert torch.allclose(values, torch.stack([loss(a), loss((a + b) / 2), loss(b)]))
    d1, d2 = filter_normalized_direction(mlp, b, 1), filter_normalized_direction(mlp, b, 2)
    grid = slice_2d(loss, b, d1, d2, [-1.0, 0.0, 1.0], [0.0, 0.5])
    assert grid.shape == (2, 3)
    assert torch.allclose(grid[0, 1], loss(b)) and torch.allclose(grid[1, 2], loss(b + d1 + 0.5 * d2))


def test_filter_normalized_direction_has_the_filter_norms_of_theta():
    mlp = MLP((2, 6, 4, 1))
    theta = mlp.init(2)
    d = filter_normalized_direction(mlp, theta, 7)
    for (Wd, bd), (Wt, _) in zip(mlp.layers(d), mlp.layers(theta)):
        assert torch.allclose(Wd.norm(dim=1), Wt.norm(dim=1))
        assert torch.count_nonzero(bd) == 0
    assert not torch.equal(d, filter_normalized_direction(mlp, theta, 8))
    assert torch.equal(d, filter_normalized_direction(mlp, theta, 7))
