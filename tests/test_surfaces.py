"""course_lib.surfaces: the catalogue, batched evaluation, closed-form gradients, and every listed
critical point checked by its gradient and its Hessian's eigenvalues."""

import math

import pytest
import torch

from course_lib.surfaces import SURFACES, Surface, classify_point, get_surface, hessian, quadratic_surface

REQUIRED = ["quadratic", "ill_conditioned_quadratic", "rotated_ill_conditioned_quadratic", "rosenbrock", "himmelblau",
            "rastrigin", "beale", "saddle", "monkey_saddle", "quartic_saddle"]
TOL = 1e-7


def test_catalogue_has_the_designed_surfaces():
    assert set(REQUIRED) <= set(SURFACES)
    for name in REQUIRED:
        surface = get_surface(name)
        assert isinstance(surface, Surface) and surface.name == name and get_surface(surface) is surface
        assert surface.description and surface.formula and surface.reference and surface.kind
    with pytest.raises(KeyError, match="known: quadratic"):
        get_surface("nope")


@pytest.mark.parametrize("name", REQUIRED)
def test_batched_on_any_shape_device_and_dtype(name, device):
    surface = SURFACES[name]
    for dtype in (torch.float32, torch.float64):
        xy = torch.randn(3, 5, 2, dtype=dtype, device=device)
        values = surface(xy)
        assert values.shape == (3, 5) and values.dtype == dtype and values.device == xy.device
        assert torch.allclose(values[1, 2], surface(xy[1, 2]))
        grad = surface.gradient(xy)
        assert grad.shape == (3, 5, 2) and grad.dtype == dtype and grad.device == xy.device
    assert surface([0.5, -0.25]).dtype == torch.float64  # plain numbers: float64
    with pytest.raises(ValueError, match=r"\(\.\.\., 2\)"):
        surface(torch.zeros(3))


@pytest.mark.parametrize("name", REQUIRED)
def test_closed_form_gradient_and_hessian_agree_with_autograd(name):
    surface = SURFACES[name]
    (x0, x1), (y0, y1) = surface.bounds
    points = torch.rand(20, 2, dtype=torch.float64) * torch.tensor([x1 - x0, y1 - y0]) + torch.tensor([x0, y0])
    xy = points.clone().requires_grad_(True)
    (expected,) = torch.autograd.grad(surface(xy).sum(), xy)
    assert torch.allclose(surface.gradient(points), expected, rtol=1e-10, atol=1e-9)
    for point, H in zip(points[:4], surface.hessian(points[:4])):
        reference = torch.autograd.functional.hessian(lambda p: surface(p), point)
        assert torch.allclose(H, reference, rtol=1e-10, atol=1e-8)
        assert torch.allclose(H, H.T)
    assert torch.equal(hessian(surface, points[:2]), surface.hessian(points[:2]))


def _gradient_norm(surface, point):
    p = torch.tensor(point, dtype=torch.float64)
    return float(surface.gradient(p).norm()), torch.linalg.eigvalsh(surface.hessian(p))


@pytest.mark.parametrize("name", REQUIRED)
def test_every_listed_point_is_what_it_claims(name):
    surface = SURFACES[name]
    assert surface.minima or surface.saddles
    (x0, x1), (y0, y1) = surface.bounds
    for point, kind in surface.critical_points():
        assert x0 < point[0] < x1 and y0 < point[1] < y1, f"{name}: {point} outside the bounds"
        grad_norm, eigenvalues = _gradient_norm(surface, point)
        assert grad_norm < TOL, f"{name}: gradient {grad_norm:.3g} at the {kind} {point}"
        scale = max(1.0, float(eigenvalues.abs().max()))
        if kind == "minimum":
            assert eigenvalues[0] > -TOL * scale, f"{name}: Hessian not PSD at the minimum {point}"
        elif kind == "maximum":
            assert eigenvalues[-1] < TOL * scale
        elif name == "monkey_saddle":  # degenerate: the Hessian is zero, yet it is a saddle
            assert eigenvalues.abs().max() < TOL
            assert classify_point(surface, point) == "degenerate saddle"
        else:  # a strict saddle: one direction of negative curvature, one of positive
            assert eigenvalues[0] < -1e-3 and eigenvalues[-1] > 1e-3, f"{name}: {point} is not a strict saddle"
        expected = {"minimum": "minimum", "maximum": "maximum"}.get(
            kind, "degenerate saddle" if name == "monkey_saddle" else "strict saddle")
        assert classify_point(surface, point) == expected


@pytest.mark.parametrize("name", REQUIRED)
def test_minimum_value_start_and_flags(name):
    surface = SURFACES[name]
    (x0, x1), (y0, y1) = surface.bounds
    assert x0 < surface.default_start[0] < x1 and y0 < surface.default_start[1] < y1
    assert surface.convex is (name.endswith("quadratic"))
    assert surface.bounded_below is (name not in ("saddle", "monkey_saddle"))
    if surface.minima:
        values = surface(torch.tensor(surface.minima, dtype=torch.float64))
        assert float(values.min()) == pytest.approx(surface.min_value, abs=1e-10)
        assert float(values[0]) == pytest.approx(surface.min_value, abs=1e-10)  # the global minimum comes first
        grid = torch.stack(torch.meshgrid(torch.linspace(x0, x1, 101, dtype=torch.float64),
                                          torch.linspace(y0, y1, 101, dtype=torch.float64), indexing="xy"), -1)
        assert float(surface(grid).min()) >= surface.min_value - 1e-12
    else:
        assert surface.min_value is None


def test_known_values_and_references():
    assert float(SURFACES["rosenbrock"]([1.0, 1.0])) == 0.0 and float(SURFACES["rosenbrock"]([0.0, 0.0])) == 1.0
    assert float(SURFACES["himmelblau"]([0.0, 0.0])) == 170.0
    assert float(SURFACES["beale"]([0.0, 0.0])) == pytest.approx(1.5 ** 2 + 2.25 ** 2 + 2.625 ** 2)
    assert float(SURFACES["rastrigin"]([1.0, 0.0])) == pytest.approx(1.0)
    assert float(SURFACES["quartic_saddle"]([0.0, 1.0])) == -0.25
    assert float(SURFACES["monkey_saddle"]([1.0, 1.0])) == -2.0
    for name, year in [("rosenbrock", "1960"), ("himmelblau", "1972"), ("rastrigin", "1974"), ("beale", "1958")]:
        assert year in SURFACES[name].reference
    assert len(SURFACES["himmelblau"].minima) == 4 and len(SURFACES["himmelblau"].saddles) == 4
    assert len(SURFACES["rastrigin"].minima) == 25 and SURFACES["rastrigin"].minima[0] == (0.0, 0.0)


def test_quadratics_have_the_stated_hessians():
    origin = torch.zeros(2, dtype=torch.float64)
    H = SURFACES["ill_conditioned_quadratic"].hessian(origin)
    assert torch.allclose(H, torch.diag(torch.tensor([1.0, 25.0], dtype=torch.float64)))
    H = SURFACES["rotated_ill_conditioned_quadratic"].hessian(origin)
    assert torch.allclose(torch.linalg.eigvalsh(H), torch.tensor([1.0, 25.0], dtype=torch.float64))
    assert abs(float(H[0, 1])) == pytest.approx(12.0)  # 45 degrees: (25 - 1) / 2 off the diagonal
    saddle = quadratic_surface((1.0, -1.0), 30.0, name="tilted")
    assert saddle.convex is False and saddle.saddles == ((0.0, 0.0),) and not saddle.bounded_below
    assert classify_point(saddle, (0.0, 0.0)) == "strict saddle"


def test_classify_point_beyond_the_catalogue():
    assert classify_point(SURFACES["rosenbrock"], (0.0, 0.0)) == "not critical"
    flat_bottom = Surface("x4", lambda x, y: x ** 4 + y ** 2, lambda x, y: (4 * x ** 3, 2 * y), ((-1, 1), (-1, 1)))
    assert classify_point(flat_bottom, (0.0, 0.0)) == "degenerate minimum"
    cubic_ridge = Surface("x3", lambda x, y: x ** 3 + y ** 2, lambda x, y: (3 * x ** 2, 2 * y), ((-1, 1), (-1, 1)))
    assert classify_point(cubic_ridge, (0.0, 0.0)) == "degenerate saddle"
    cap = Surface("cap", lambda x, y: -x ** 4 - y ** 2, lambda x, y: (-4 * x ** 3, -2 * y), ((-1, 1), (-1, 1)))
    assert classify_point(cap, (0.0, 0.0)) == "degenerate maximum"


def test_a_surface_with_a_constant_gradient_component():
    tilt = Surface("tilt", lambda x, y: x + 0 * y, lambda x, y: (1.0, 0.0), ((-1, 1), (-1, 1)))
    grad = tilt.gradient(torch.zeros(4, 2))
    assert grad.shape == (4, 2) and torch.equal(grad[:, 0], torch.ones(4))
    assert math.isclose(float(tilt([0.5, 3.0])), 0.5)


# --------------------------------------------------------------------------- pictures (course_lib.surface_plots)

def test_surface_plots_take_ax_and_return_it():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from course_lib import optim, plotting, surface_plots
    from course_lib.trajectories import basins, run_trajectory

    assert plotting.basin_map is surface_plots.basin_map  # reachable from course_lib.plotting too
    surface = SURFACES["quartic_saddle"]
    runs = {"GD": run_trajectory(optim.SGD, surface, (-1.5, 0.01), 50, lr=0.1),
            "too fast": run_trajectory(optim.SGD, surface, (-1.5, 0.01), 50, lr=3.0)}
    assert runs["too fast"].diverged_at is not None
    fig, axes = plotting.new_figure(3, 2)
    assert surface_plots.surface_contour(surface, ax=axes[0]) is axes[0]
    assert surface_plots.surface_trajectories(surface, runs, ax=axes[1]) is axes[1]
    legend = " | ".join(t.get_text() for t in axes[1].get_legend().get_texts())
    assert "GD" in legend and "too fast: diverged at step" in legend
    assert surface_plots.surface_trajectories(surface, runs, ax=axes[2], raster=True) is axes[2]
    assert surface_plots.hessian_directions(surface, (0.0, 0.0), ax=axes[3]) is axes[3]
    assert {"λ = -1", "λ = 1"} <= {t.get_text() for t in axes[3].texts}
    result = basins(optim.SGD, "himmelblau", 200, resolution=12, lr=0.01)
    assert result.labels.shape == (12, 12) and set(result.fractions()) <= {-1, 0, 1, 2, 3}
    assert surface_plots.basin_map(SURFACES["himmelblau"], result, ax=axes[4]) is axes[4]
    assert surface_plots.critical_points(SURFACES["rastrigin"], ax=axes[5], max_per_kind=12) is axes[5]
    fig.savefig(__import__("io").BytesIO(), format="png")
    fig3d = plotting.new_figure()[0]
    ax3d = fig3d.add_subplot(projection="3d")
    assert surface_plots.surface_3d(SURFACES["beale"], ax=ax3d, log=True, trajectories=runs) is ax3d
    for make in (lambda: surface_plots.surface_contour(SURFACES["monkey_saddle"]),  # ax=None: a pyplot figure
                 lambda: surface_plots.surface_3d(SURFACES["saddle"], resolution=10),
                 lambda: surface_plots.basin_map(SURFACES["quartic_saddle"], resolution=8, steps=20, lr=0.1)):
        ax = make()
        assert ax.figure is not fig
        plt.close(ax.figure)


def test_hessian_directions_of_the_monkey_saddle_are_flat():
    import matplotlib

    matplotlib.use("Agg")
    from course_lib import plotting, surface_plots

    fig, ax = plotting.new_figure()
    surface_plots.hessian_directions(SURFACES["monkey_saddle"], (0.0, 0.0), ax=ax)
    assert [t.get_text() for t in ax.texts if t.get_text()] == ["λ = 0", "λ = 0"]
