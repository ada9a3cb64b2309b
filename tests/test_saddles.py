"""course_lib.saddles: classification, linear-net derivatives, escape times, perturbed GD, chains, the race panel."""

import math

import pytest
import torch

from course_lib import saddles
from figure_helpers import check_course_style, data_axes


@pytest.mark.parametrize("eigs, kind", [((1.0, 2.0), "minimum"), ((-1.0, -2.0), "maximum"), ((-1.0, 1.0), "strict saddle"),
                                        ((0.0, 0.0), "degenerate"), ((-1.0, 0.0), "degenerate"), ((-1.0, 0.0, 1.0), "strict saddle")])
def test_classify_critical_point(eigs, kind):
    q, _ = torch.linalg.qr(torch.randn(len(eigs), len(eigs), generator=torch.Generator().manual_seed(0), dtype=torch.float64))
    assert saddles.classify_critical_point(q @ torch.diag(torch.tensor(eigs, dtype=torch.float64)) @ q.T) == kind


def test_linear_net_origin():
    two, three = saddles.derivatives_at_origin(2), saddles.derivatives_at_origin(3)
    assert torch.allclose(two["eigenvalues"], torch.tensor([-1.0, 1.0], dtype=torch.float64))
    assert three["gradient"].abs().max() == 0 and three["hessian"].abs().max() == 0
    assert three["third"].item() == pytest.approx(-1.0)


def test_escape_time_slope_matches_prediction():
    grad = lambda x: torch.stack([x[0], -x[1] + x[1] ** 3])  # noqa: E731
    steps = [saddles.gd_escape_steps(grad, [1.0, 10.0 ** -k], 0.1, lambda x: x[1].abs() >= 0.5) for k in (2, 6)]
    slope = (steps[1] - steps[0]) / math.log(1e4)
    assert slope == pytest.approx(saddles.predicted_escape_slope(0.1, -1.0), rel=0.02)
    assert saddles.gd_escape_steps(grad, [1.0, 0.0], 0.1, lambda x: x[1].abs() >= 0.5, max_steps=500) is None


def test_perturbed_gd_escapes_and_is_reproducible():
    grad = lambda x: torch.stack([x[0], -x[1] + x[1] ** 3])  # noqa: E731
    a = saddles.perturbed_gd(grad, [1.0, 0.0], 0.1, 1e-2, 1e-3, 300, torch.Generator().manual_seed(0))
    b = saddles.perturbed_gd(grad, [1.0, 0.0], 0.1, 1e-2, 1e-3, 300, torch.Generator().manual_seed(0))
    assert a.shape == (301, 2) and torch.equal(a, b)
    assert a[-1, 1].abs() > 0.9  # near one of the minima (0, +-1)


def test_ball_sample_stays_in_the_ball():
    gen = torch.Generator().manual_seed(1)
    norms = torch.stack([torch.linalg.vector_norm(saddles.ball_sample(3, 0.5, gen)) for _ in range(200)])
    assert norms.max() <= 0.5 and norms.min() > 0


@pytest.mark.parametrize("delta", [1e-3, 3.7e-2])
def test_chain_closed_form_equals_iteration(delta):
    d, lr = 3, 0.1
    x = torch.full((d,), delta, dtype=torch.float64)
    times, current, count = [], 0, 0
    while current < d and count < 10_000:
        x = x - lr * saddles.chain_gradient(x)
        count += 1
        while current < d and x[current].abs() >= 1:
            times.append(count - sum(times))
            current += 1
    assert saddles.chain_escape_times(d, lr, delta) == times


def test_chain_times_grow_geometrically():
    times = saddles.chain_escape_times(8)
    ratio = 1 + (-math.log(0.9)) / math.log(1.1)
    assert times[-1] / times[-2] == pytest.approx(ratio, rel=0.01)


def test_saddle_race_update_and_panel():
    fig = saddles.saddle_race_update(10, steps=30)
    assert len(data_axes(fig)) == 2 and len(fig.axes[1].get_legend().get_texts()) == 7
    assert saddles.saddle_race_update(-5, steps=30).axes[0].get_title().endswith("step 0")
    assert saddles.saddle_race_update("x", steps=30).axes[0].get_title().endswith("step 30")
    panel = saddles.saddle_race_panel(steps=30)
    assert panel.error is None and panel.figure is not None
    panel.controls["step"].value = 30
    assert panel.error is None and panel.figure.axes[0].get_title().endswith("step 30")
