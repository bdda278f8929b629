"""Notebook 01 widgets in plain pytest: build each box, move every control across its range, check the
state and the figure change and agree with lsbcore computed directly."""
import matplotlib

matplotlib.use("Agg")

import math  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

from lsbcore import widgets as W  # noqa: E402
from lsbcore.marginals import Gaussian, GaussianMixture  # noqa: E402
from lsbcore.schrodinger.gaussian import GaussianBridge  # noqa: E402
from lsbcore.schrodinger.grid import Grid, fortet  # noqa: E402

DT = torch.float64


def gauss(m, v):
    return Gaussian(torch.tensor([m], dtype=DT), torch.tensor([[v]], dtype=DT))


@pytest.fixture(scope="module")
def grid():
    return Grid(-7.0, 7.0, 121)


def lines(fig):
    return [line.get_ydata().copy() for ax in fig.axes for line in ax.get_lines()]


def test_schrodinger_explorer_sigma_and_t(grid):
    box = W.schrodinger_explorer(gauss(-1.0, 0.5), gauss(1.0, 1.0), grid, sigma=1.0, t=0.5)
    assert set(box.controls) == {"sigma", "t"}
    assert "lsb-sigma" in box.controls["sigma"]._dom_classes and "lsb-t" in box.controls["t"]._dom_classes
    b = GaussianBridge(-1.0, 0.5, 1.0, 1.0, 1.0)
    assert abs(box.state["cost"] - b.entropic_cost()) < 1e-6
    seen_plans, seen_curves = [], []
    w = box.controls["sigma"]
    for s in (w.min, 0.6, w.max):
        w.value = s
        assert box.state["sigma"] == pytest.approx(s)
        assert box.state["converged"]
        plan = box.state["plan"]
        assert bool(torch.isfinite(plan).all()) and abs(float(plan.sum()) - 1) < 1e-9
        seen_plans.append(plan)
        seen_curves.append(lines(box.figure))
    # the coupling and the drawn ρ_t change with σ; a larger σ spreads the coupling (smaller correlation)
    assert not torch.allclose(seen_plans[0], seen_plans[-1])
    assert not all((a == b).all() for a, b in zip(seen_curves[0], seen_curves[-1]))
    x = grid.axes[0]
    corr = []
    for plan in seen_plans:
        m0, m1 = plan.sum(1) @ x, plan.sum(0) @ x
        c = ((x - m0)[:, None] * (x - m1)[None, :] * plan).sum()
        corr.append(float(c / torch.sqrt((plan.sum(1) @ (x - m0) ** 2) * (plan.sum(0) @ (x - m1) ** 2))))
    assert corr[0] > corr[1] > corr[2]
    w_t = box.controls["t"]
    previous = None
    for t in (0.0, 0.35, 1.0):
        w_t.value = t
        rho = box.state["rho_t"]
        assert abs(float(rho.sum()) * grid.cell_volume - 1) < 1e-9
        if previous is not None:
            assert not torch.allclose(rho, previous)
        previous = rho
    # at the ends the marginals are the given ones
    torch.testing.assert_close(torch.log(box.state["rho_t"]), gauss(1.0, 1.0).log_prob(grid.points), atol=1e-8, rtol=0)
    assert box.figure.axes[0].get_title() and box.figure.axes[1].get_xlabel()


def test_ipf_explorer_error_falls(grid):
    r0 = GaussianMixture(torch.tensor([0.5, 0.5], dtype=DT), torch.tensor([[-2.0], [1.0]], dtype=DT), 0.3)
    box = W.ipf_explorer(r0, gauss(1.0, 0.6), grid, 0.6, max_iter=15)
    w = box.controls["iteration"]
    assert "lsb-iteration" in w._dom_classes
    errs = []
    for k in range(w.min, w.max + 1, 2):
        w.value = k
        assert box.state["iteration"] == k
        errs.append(box.state["error"])
        # the k-th iterate's error is the k-th entry of the history of one long run
        assert box.state["error"] == pytest.approx(box.state["history"][k], rel=1e-6)
        assert box.state["error_rho1"] < 1e-12
    assert all(b < a for a, b in zip(errs, errs[1:]))
    assert errs[-1] < 0.1 * errs[0]
    assert math.isclose(float(box.state["marginal"].sum()) * grid.cell_volume, 1.0, rel_tol=1e-9)


def test_grid_bridge_explorer_t():
    grid2 = Grid(-5.0, 5.0, 32, dim=2)
    mix = GaussianMixture(torch.tensor([0.5, 0.5], dtype=DT), torch.tensor([[-2.0, 0.0], [2.0, 0.0]], dtype=DT), 0.3)
    br = fortet(Gaussian(torch.zeros(2, dtype=DT), torch.eye(2, dtype=DT)), mix, 0.7, grid2)
    box = W.grid_bridge_explorer(br, t=0.5)
    w = box.controls["t"]
    prev = box.state["density"]
    for t in (w.min, 0.3, w.max):
        w.value = t
        d = box.state["density"]
        assert bool(torch.isfinite(d).all()) and bool(torch.isfinite(box.state["drift"]).all())
        assert not torch.allclose(d, prev)
        prev = d
    torch.testing.assert_close(box.state["density"], br.density(1.0))
    assert "t = 1.00" in box.figure.axes[0].get_title()


def test_bad_widget_arguments(grid):
    with pytest.raises(ValueError, match="grid"):
        W.schrodinger_explorer(gauss(0.0, 1.0), gauss(0.0, 1.0), Grid(-1.0, 1.0, 5, dim=2))
    with pytest.raises(ValueError, match="sigma"):
        W.ipf_explorer(gauss(0.0, 1.0), gauss(0.0, 1.0), grid, -1.0)
    with pytest.raises(ValueError, match="bridge"):
        W.grid_bridge_explorer(fortet(gauss(0.0, 1.0), gauss(0.0, 1.0), 1.0, grid))


def test_the_package_re_exports_every_explorer():
    """`from lsbcore import widgets as W; W.<name>` keeps working for every explorer, loaded on first use."""
    import importlib

    names = [n for n in W.__all__ if n.endswith("_explorer")]
    assert len(names) == 16 and set(names) <= set(dir(W))
    for name in names:
        fn = getattr(W, name)
        assert callable(fn) and fn.__module__.startswith("lsbcore.widgets.nb")
        assert fn is getattr(importlib.import_module(fn.__module__), name)
    with pytest.raises(AttributeError, match="dashboard_notebook"):
        W.dashboard_notebook  # a build tool now: lsbcore.build.dashboard_notebook
