"""Fortet / IPF on a grid, checked against the Gaussian closed form, POT, and the Fokker–Planck equation.

Grids and boxes are chosen so that the discretisation error is negligible: the Riemann sum of a smooth
Gaussian integrand with width w on spacing Δ errs by ~exp(−2π² w²/Δ²), and the box reaches ≥ 8
standard deviations past every mean, so the remaining error is the IPF tolerance.
"""
import math
import warnings

import numpy as np
import ot
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lsbcore.marginals import Gaussian, GaussianMixture
from lsbcore.schrodinger.gaussian import GaussianBridge
from lsbcore.schrodinger.grid import Grid, fortet

DT = torch.float64


def gauss(m, S):
    return Gaussian(torch.as_tensor(m, dtype=DT), torch.as_tensor(S, dtype=DT))


def mixture64(weights, means, covs):
    """A GaussianMixture in float64 (it builds its tensors in the default dtype)."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(DT)
    try:
        return GaussianMixture(weights, means, covs)
    finally:
        torch.set_default_dtype(old)


@pytest.fixture(scope="module")
def one_d():
    m0, v0, m1, v1, sigma = -1.0, 0.5, 1.5, 1.2, 0.8
    grid = Grid(-9.0, 11.0, 301)
    gb = fortet(gauss([m0], [[v0]]), gauss([m1], [[v1]]), sigma, grid)
    return gb, GaussianBridge(m0, v0, m1, v1, sigma)


@pytest.fixture(scope="module")
def two_d():
    m0, S0 = [-1.0, 0.5], [[1.0, 0.3], [0.3, 0.5]]
    m1, S1 = [1.0, -0.5], [[0.6, -0.2], [-0.2, 1.2]]
    sigma = 1.0
    grid = Grid(-10.0, 10.0, 56, dim=2)
    gb = fortet(gauss(m0, S0), gauss(m1, S1), sigma, grid)
    return gb, GaussianBridge(m0, S0, m1, S1, sigma)


@pytest.mark.parametrize("case", ["one_d", "two_d"])
def test_grid_reproduces_the_gaussian_bridge(case, request):
    gb, b = request.getfixturevalue(case)
    assert gb.converged and gb.errors[-1] <= 1e-11
    err0, err1 = gb.marginal_errors()
    assert err0 <= 1e-10 and err1 <= 1e-12
    torch.testing.assert_close(gb.cross_cov(), b.cross_cov, rtol=0, atol=1e-8)
    for t in (0.0, 0.25, 0.5, 0.75, 1.0):
        m, c = gb.moments(t)
        assert float(torch.linalg.matrix_norm(c - b.cov(t)) / torch.linalg.matrix_norm(b.cov(t))) <= 1e-6, t
        torch.testing.assert_close(m, b.mean(t), rtol=0, atol=1e-6)
    assert abs(gb.entropic_cost() - b.entropic_cost()) <= 1e-7 * abs(b.entropic_cost())


@pytest.mark.parametrize("case", ["one_d", "two_d"])
def test_grid_drifts_match_the_closed_form(case, request):
    """Forward/backward drifts at off-grid points: exact kernel sums on the grid + linear interpolation
    (error ≤ ‖∇²b‖ Δ²/8; for these linear drifts only the quadrature and boundary errors remain)."""
    gb, b = request.getfixturevalue(case)
    for t in (0.0, 0.3, 0.5, 0.7):
        x = b.marginal(t).sample(200, seed=1).to(DT)
        torch.testing.assert_close(gb.drift(x, t), b.drift(x, t), rtol=0, atol=1e-6)
        torch.testing.assert_close(gb.backward_drift(x, 1 - t), b.backward_drift(x, 1 - t), rtol=0, atol=1e-6)
        torch.testing.assert_close(gb.score(x, 0.5), b.score(x, 0.5), rtol=0, atol=1e-6)


def test_plan_matches_pot_and_its_own_cross_covariance(one_d):
    """The grid plan equals POT's log-domain Sinkhorn on the same masses and cost, ε = 2σ²."""
    gb, b = one_d
    x = gb.grid.points[:, 0].numpy()
    a, c = gb.log_a.exp().numpy(), gb.log_b.exp().numpy()
    P = ot.sinkhorn(a, c, (x[:, None] - x[None, :]) ** 2, reg=2 * b.sigma**2, method="sinkhorn_log",
                    stopThr=1e-13, numItermax=5000)
    plan = gb.plan()
    assert float(np.abs(plan.numpy() - P).sum()) <= 1e-9
    m0, m1 = a @ x, c @ x
    cross = float((plan * torch.outer(torch.as_tensor(x - m0), torch.as_tensor(x - m1))).sum())
    assert abs(cross - float(gb.cross_cov())) <= 1e-12


def test_potentials_solve_the_continuous_schrodinger_system(one_d):
    """φ̂0 · P_1 φ1 = ρ0 and φ1 · P_1 φ̂0 = ρ1 with Riemann sums for P_1 (heat kernel of variance σ²)."""
    gb, b = one_d
    x = gb.grid.points[:, 0]
    dx = gb.grid.spacing[0]
    sig2 = b.sigma**2
    logp = -(x[:, None] - x[None, :]) ** 2 / (2 * sig2) - 0.5 * math.log(2 * math.pi * sig2)
    lhs0 = gb.log_phi_hat0 + torch.logsumexp(logp + gb.log_phi1[None, :] + math.log(dx), 1)
    lhs1 = gb.log_phi1 + torch.logsumexp(logp + gb.log_phi_hat0[:, None] + math.log(dx), 0)
    bulk = (x > -4) & (x < 6)
    rho0, rho1 = b.marginal(0.0).log_prob(x[:, None]), b.marginal(1.0).log_prob(x[:, None])
    torch.testing.assert_close(lhs0[bulk], rho0[bulk], rtol=0, atol=1e-9)
    torch.testing.assert_close(lhs1[bulk], rho1[bulk], rtol=0, atol=1e-9)


def test_mixture_target_satisfies_the_fokker_planck_equation():
    """Non-Gaussian ρ1 (a two-bump mixture): ∂ρ/∂t = −∂(ρ b)/∂x + σ²/2 ∂²ρ/∂x² on the grid, with
    central differences (errors O(Δ²) and O(h²) ≈ 1e-4 of the size of the terms)."""
    sigma = 0.7
    grid = Grid(-7.0, 7.0, 561)
    mix = mixture64([0.4, 0.6], [[-1.5], [1.5]], [0.25, 0.4])
    gb = fortet(gauss([0.0], [[1.0]]), mix, sigma, grid)
    assert gb.converged
    torch.testing.assert_close(gb.log_density(1.0), mix.log_prob(grid.points), rtol=0, atol=1e-8)
    dx = grid.spacing[0]
    for t in (0.3, 0.6):
        h = 1e-4
        drho = (gb.density(t + h) - gb.density(t - h)) / (2 * h)
        rho = gb.density(t)
        flux = rho * gb.drift_field(t)[:, 0]
        rhs = -torch.gradient(flux, spacing=dx)[0] + 0.5 * sigma**2 * torch.gradient(
            torch.gradient(rho, spacing=dx)[0], spacing=dx)[0]
        assert float((drho - rhs).abs().max()) <= 1e-3 * float(drho.abs().max())
        # Nelson: forward + backward drift = σ² ∂ log ρ_t / ∂x
        # (fourth-order central differences: error Δ⁴/30 · |∂⁵ log ρ| ≈ 1e-8 · 1e3)
        nelson = (gb.drift_field(t)[:, 0] + gb.backward_drift_field(t)[:, 0])[2:-2]
        lr = gb.log_density(t)
        dlog = sigma**2 * (-lr[4:] + 8 * lr[3:-1] - 8 * lr[1:-3] + lr[:-4]) / (12 * dx)
        bulk = rho[2:-2] > 1e-3
        assert float((nelson - dlog)[bulk].abs().max()) <= 1e-4


def test_euler_maruyama_with_the_grid_drift_reaches_the_mixture():
    """Simulate dX = b dt + σ dW with the interpolated grid drift: ρ1's mean and variance within
    Monte-Carlo (5 standard errors) + Euler (O(h)) tolerance."""
    sigma = 0.7
    grid = Grid(-7.0, 7.0, 281)
    mix = mixture64([0.4, 0.6], [[-1.5], [1.5]], [0.25, 0.4])
    gb = fortet(gauss([0.0], [[1.0]]), mix, sigma, grid)
    n, steps = 8000, 50
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(n, 1, generator=gen, dtype=DT)
    h = 1.0 / steps
    for k in range(steps):
        x = x + h * gb.drift(x, k * h) + sigma * math.sqrt(h) * torch.randn(x.shape, generator=gen, dtype=DT)
    m, v = float(mix.mean), float(mix.cov)
    assert abs(float(x.mean()) - m) <= 5 * math.sqrt(v / n) + 0.05
    assert abs(float(x.var()) - v) <= 5 * v * math.sqrt(2 / n) + 0.1


def test_per_row_times_interpolate_between_time_nodes(two_d):
    gb, b = two_d
    x = b.marginal(0.5).sample(12, seed=2).to(DT)
    k = torch.randint(0, gb.n_time, (12,), generator=torch.Generator().manual_seed(0))
    t_nodes = (k.to(DT) / gb.n_time)[:, None]
    rows = torch.stack([gb.drift(x[i:i + 1], float(t_nodes[i])) [0] for i in range(12)])
    torch.testing.assert_close(gb.drift(x, t_nodes), rows, rtol=0, atol=1e-12)
    t_mid = t_nodes * 0.5 + 0.25  # off the nodes: linear-in-t interpolation error O(Δt²)
    torch.testing.assert_close(gb.drift(x, t_mid), b.drift(x, t_mid), rtol=0, atol=1e-3)
    same = torch.full((12, 1), 0.4, dtype=DT)
    torch.testing.assert_close(gb.drift(x, same), gb.drift(x, 0.4))


def test_sample_plan_cross_covariance_and_seed(one_d):
    gb, b = one_d
    n = 20_000
    x0, x1 = gb.sample_plan(n, seed=3)
    emp = float(((x0 - x0.mean()) * (x1 - x1.mean())).mean())
    s = math.sqrt(float(b.S0) * float(b.S1))
    assert abs(emp - float(b.cross_cov)) <= 5 * s * math.sqrt(2 / n)
    y0, y1 = gb.sample_plan(n, seed=3)
    assert torch.equal(x0, y0) and torch.equal(x1, y1)


def test_two_d_sample_plan_moments(two_d):
    gb, b = two_d
    n = 20_000
    x0, x1 = gb.sample_plan(n, seed=1, jitter=True)
    emp = torch.cov(torch.cat([x0, x1], 1).T)
    # jitter adds Δ²/12 per coordinate to the marginal variances (not the cross terms)
    scale = torch.sqrt(torch.diagonal(b.joint_cov()))
    tol = 5 * math.sqrt(2 / n) * scale[:, None] * scale[None, :] + gb.grid.spacing[0] ** 2 / 12
    assert bool(((emp - b.joint_cov()).abs() <= tol).all())


def test_ends_with_zero_density_stay_finite():
    """ρ1 with exact zeros (a box density): no NaN anywhere; zero-mass nodes get drift 0 at t = 1."""
    grid = Grid(-4.0, 4.0, 161)
    x = grid.points[:, 0]
    rho1 = ((x > -1) & (x < 1)).to(DT)
    gb = fortet(gauss([0.0], [[1.0]]), rho1, 0.6, grid)
    assert gb.converged
    for t in (0.0, 0.5, 0.99, 1.0):
        assert bool(torch.isfinite(gb.drift_field(t)).all())
        assert bool(torch.isfinite(gb.backward_drift_field(t)).all())
        assert bool(torch.isfinite(gb.density(t)).all())
    assert float(gb.density(1.0)[x.abs() > 1.01].abs().max()) == 0.0


# ------------------------------------------------------------------------------ properties
@settings(max_examples=12, deadline=None)
@given(sigma=st.floats(0.3, 2.0), shift=st.floats(-1.0, 1.0), t=st.floats(0.0, 1.0))
def test_property_marginals_hold_and_nothing_is_nan(sigma, shift, t):
    grid = Grid(-6.0, 6.0, 41, dim=2)
    mix = GaussianMixture([0.5, 0.5], [[-1.0, shift], [1.0, -shift]], 0.3)
    gb = fortet(gauss([0.0, 0.0], [[1.0, 0.0], [0.0, 1.0]]), mix, sigma, grid, tol=1e-10)
    assert gb.converged
    err0, err1 = gb.marginal_errors()
    assert err0 <= 1e-9 and err1 <= 1e-12
    for f in (gb.drift_field, gb.backward_drift_field, gb.density):
        assert bool(torch.isfinite(f(t)).all())
    assert abs(float(gb.density(t).sum()) * grid.cell_volume - 1) <= 1e-12
    assert math.isfinite(gb.entropic_cost())


# ------------------------------------------------------------------------------ validation
def test_bad_grids_are_named():
    with pytest.raises(ValueError, match="hi"):
        Grid(1.0, 0.0, 10)
    with pytest.raises(ValueError, match="dim"):
        Grid(0.0, 1.0, 10, dim=3)
    with pytest.raises(ValueError, match="n"):
        Grid(0.0, 1.0, 2)
    with pytest.raises(TypeError, match="n"):
        Grid(0.0, 1.0, 10.5)
    with pytest.raises(ValueError, match="lo"):
        Grid([0.0, 0.0], [1.0, 1.0, 1.0], 10)
    with pytest.raises(ValueError, match="finite"):
        Grid(float("nan"), 1.0, 10)


def test_bad_solver_arguments_are_named():
    grid = Grid(-3.0, 3.0, 31)
    good = gauss([0.0], [[1.0]])
    vals = torch.ones(31, dtype=DT)
    with pytest.raises(ValueError, match="sigma"):
        fortet(good, good, 0.0, grid)
    with pytest.raises(ValueError, match="rho0"):
        fortet(-vals, good, 1.0, grid)
    with pytest.raises(ValueError, match="rho1"):
        fortet(good, torch.full((31,), float("nan"), dtype=DT), 1.0, grid)
    with pytest.raises(ValueError, match="rho1"):
        fortet(good, torch.ones(30, dtype=DT), 1.0, grid)
    with pytest.raises(ValueError, match="rho0"):
        fortet(gauss([0.0, 0.0], [[1.0, 0.0], [0.0, 1.0]]), good, 1.0, grid)
    with pytest.raises(TypeError, match="rho0"):
        fortet("gaussian", good, 1.0, grid)
    with pytest.raises(TypeError, match="grid"):
        fortet(good, good, 1.0, (-3, 3, 31))
    with pytest.raises(ValueError, match="on_fail"):
        fortet(good, good, 1.0, grid, on_fail="maybe")
    with pytest.raises(ValueError, match="rho1"):
        fortet(good, torch.zeros(31, dtype=DT), 1.0, grid)
    far = gauss([0.0], [[1.0]])
    with pytest.raises(RuntimeError, match="did not reach"):
        fortet(far, gauss([1.0], [[0.5]]), 0.3, grid, max_iter=2, on_fail="raise")
    with pytest.warns(RuntimeWarning, match="did not reach"):
        fortet(far, gauss([1.0], [[0.5]]), 0.3, grid, max_iter=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gb = fortet(far, gauss([1.0], [[0.5]]), 0.3, grid, max_iter=2, on_fail="ignore")
    assert not gb.converged and len(gb.errors) == 2
    gb = fortet(good, good, 1.0, grid)
    with pytest.raises(ValueError, match="x"):
        gb.drift(torch.zeros(3, 2, dtype=DT), 0.5)
    with pytest.raises(ValueError, match="t"):
        gb.drift(torch.zeros(3, 1, dtype=DT), 1.5)
    with pytest.raises(ValueError, match="t"):
        gb.density(-0.1)
