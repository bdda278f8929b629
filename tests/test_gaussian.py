"""The closed-form Gaussian Schrödinger bridge: its own identities, limits, dynamics and checks.

Every expected value below is an independent formula (joint precision, Monge map, Janati's cost vs the
primal objective, Fokker–Planck moment equations, time reversal, POT's Sinkhorn) — not a stored number.
"""
import math

import numpy as np
import ot
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lsbcore.marginals import Gaussian
from lsbcore.schrodinger.gaussian import GaussianBridge, monge_map, sqrtm_spd
from lsbcore.sde import sample

DT = torch.float64


def random_spd(d, seed, lo=0.3):
    gen = torch.Generator().manual_seed(seed)
    a = torch.randn(d, d, generator=gen, dtype=DT)
    return a @ a.T / d + lo * torch.eye(d, dtype=DT)


def problem(d, sigma, seed=0):
    gen = torch.Generator().manual_seed(100 + seed)
    m0, m1 = torch.randn(d, generator=gen, dtype=DT), torch.randn(d, generator=gen, dtype=DT)
    return GaussianBridge(m0, random_spd(d, seed), m1, random_spd(d, seed + 1), sigma)


def sigma_points(mean, cov):
    """2d points whose empirical mean and (1/2d-weighted) covariance equal mean and cov exactly."""
    d = mean.shape[0]
    L = torch.linalg.cholesky(cov)
    offs = math.sqrt(d) * L.T  # rows: √d L e_i
    return torch.cat([mean + offs, mean - offs])


# ------------------------------------------------------------------------------ static plan
@pytest.mark.parametrize("sigma", [0.3, 1.0, 2.5])
@pytest.mark.parametrize("d", [1, 3])
def test_canonical_cross_covariance(sigma, d):
    """N(−a, I) → N(a, I): C = c I with c = (√(4 + σ⁴) − σ²)/2 ((√5 − 1)/2 at σ = 1)."""
    a = torch.linspace(0.5, 1.5, d, dtype=DT)
    b = GaussianBridge(-a, 1.0, a, 1.0, sigma)
    c = (math.sqrt(4 + sigma**4) - sigma**2) / 2
    torch.testing.assert_close(b.cross_cov, c * torch.eye(d, dtype=DT), rtol=0, atol=1e-12)
    if sigma == 1.0:
        assert abs(c - (math.sqrt(5) - 1) / 2) < 1e-15


@pytest.mark.parametrize("sigma", [0.2, 1.0, 3.0])
@pytest.mark.parametrize("d", [1, 2, 4])
def test_joint_precision_off_diagonal_is_minus_identity_over_sigma2(sigma, d):
    """π* ∝ f(x) exp(−‖x−y‖²/2σ²) g(y) ⇒ the x–y block of the joint precision is −I/σ²."""
    b = problem(d, sigma, seed=d)
    prec = torch.linalg.inv(b.joint_cov())
    torch.testing.assert_close(prec[:d, d:], -torch.eye(d, dtype=DT) / sigma**2, rtol=0, atol=1e-8 / sigma**2)
    torch.testing.assert_close(b.joint_cov()[:d, :d], b.S0)
    assert bool((torch.linalg.eigvalsh(b.joint_cov()) > 0).all())


def test_small_sigma_gives_the_monge_coupling():
    """σ → 0: C = S0 T − σ²/2 I + O(σ⁴), T the Monge map; and T pushes S0 to S1 (T S0 T = S1)."""
    d = 3
    S0, S1 = random_spd(d, 1), random_spd(d, 2)
    T = monge_map(S0, S1)
    torch.testing.assert_close(T @ S0 @ T, S1, rtol=1e-10, atol=1e-10)
    for sigma in (1e-2, 1e-3):
        C = GaussianBridge(0.0, S0, 0.0, S1, sigma).cross_cov
        torch.testing.assert_close(C, S0 @ T - sigma**2 / 2 * torch.eye(d, dtype=DT), rtol=0, atol=50 * sigma**4)


def test_large_sigma_gives_independence():
    """σ → ∞: σ² C → S0 S1 (so C → 0, the independent coupling), relative error O(σ⁻⁴)."""
    S0, S1 = random_spd(2, 3), random_spd(2, 4)
    sigma = 30.0
    C = GaussianBridge(0.0, S0, 0.0, S1, sigma).cross_cov
    torch.testing.assert_close(sigma**2 * C, S0 @ S1, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("sigma", [0.4, 1.0, 2.0])
def test_entropic_cost_closed_form_equals_primal_objective(sigma):
    """Janati's closed form = E‖X0−X1‖² + 2σ² KL(π* ‖ ρ0⊗ρ1) evaluated from the plan itself."""
    b = problem(3, sigma, seed=7)
    primal = b.transport_cost() + 2 * sigma**2 * b.plan_kl()
    assert abs(b.entropic_cost() - primal) < 1e-10 * max(1.0, abs(primal))


@pytest.mark.parametrize("sigma", [0.7, 1.2])
def test_entropic_cost_against_pot_sinkhorn_on_a_fine_grid(sigma):
    """1-D: POT's log-domain Sinkhorn (ε = 2σ²) on a fine grid gives the same value and covariance."""
    m0, v0, m1, v1 = -0.5, 0.6, 1.0, 1.5
    b = GaussianBridge(m0, v0, m1, v1, sigma)
    x = np.linspace(-9, 10, 300)
    a = np.exp(-(x - m0) ** 2 / (2 * v0)); a /= a.sum()
    c = np.exp(-(x - m1) ** 2 / (2 * v1)); c /= c.sum()
    M = (x[:, None] - x[None, :]) ** 2
    eps = 2 * sigma**2
    P = ot.sinkhorn(a, c, M, reg=eps, method="sinkhorn_log", stopThr=1e-12, numItermax=5000)
    pos = P > 0
    kl = (P[pos] * np.log(P[pos] / np.outer(a, c)[pos])).sum()
    value = (P * M).sum() + eps * kl
    cross = (P * np.outer(x - m0, x - m1)).sum()
    # discretisation error of a smooth Gaussian integrand on this grid is far below 1e-8
    assert abs(value - b.entropic_cost()) < 1e-7
    assert abs(cross - float(b.cross_cov)) < 1e-7


def test_sample_plan_moments_and_seed():
    b = problem(2, 0.8, seed=3)
    n = 40_000
    x0, x1 = b.sample_plan(n, seed=5, dtype=DT)
    xy = torch.cat([x0, x1], 1)
    emp = torch.cov(xy.T)
    scale = torch.sqrt(torch.diagonal(b.joint_cov()))
    # each covariance entry has standard error ≤ scale_i scale_j √(2/n): allow 5 of them
    tol = 5 * math.sqrt(2 / n) * scale[:, None] * scale[None, :]
    assert bool(((emp - b.joint_cov()).abs() <= tol).all())
    assert bool(((xy.mean(0) - torch.cat([b.m0, b.m1])).abs() <= 5 * scale / math.sqrt(n)).all())
    y0, _ = b.sample_plan(n, seed=5, dtype=DT)
    assert torch.equal(x0, y0)
    assert b.sample_plan(3, seed=1)[0].dtype == torch.get_default_dtype()


# ------------------------------------------------------------------------------ marginals
def test_marginals_at_the_ends_and_midpoint():
    b = problem(3, 0.7, seed=11)
    torch.testing.assert_close(b.cov(0.0), b.S0)
    torch.testing.assert_close(b.cov(1.0), b.S1)
    torch.testing.assert_close(b.mean(0.0), b.m0)
    torch.testing.assert_close(b.mean(1.0), b.m1)
    # Σ_t is the covariance of (1−t)X0 + tX1 + σ√(t(1−t))Z under π*
    t = 0.3
    A = torch.cat([(1 - t) * torch.eye(3, dtype=DT), t * torch.eye(3, dtype=DT)], 1)
    torch.testing.assert_close(b.cov(t), A @ b.joint_cov() @ A.T + 0.49 * t * (1 - t) * torch.eye(3, dtype=DT))
    ts = torch.tensor([0.0, 0.3, 1.0], dtype=DT)
    torch.testing.assert_close(b.cov(ts)[1], b.cov(0.3))
    assert b.mean(ts).shape == (3, 3)
    rho = b.marginal(0.3)
    assert isinstance(rho, Gaussian)
    torch.testing.assert_close(rho.cov, b.cov(0.3))


def test_sample_path_endpoints_and_midpoint_covariance():
    b = problem(2, 1.0, seed=2)
    n = 20_000
    paths = b.sample_path(n, n_steps=10, seed=0, dtype=DT)
    assert paths.shape == (11, n, 2)
    x0, x1 = b.sample_plan(n, seed=0, dtype=DT)
    assert torch.equal(paths[0], x0) and torch.equal(paths[-1], x1)
    emp = torch.cov(paths[5].T)
    s = torch.sqrt(torch.diagonal(b.cov(0.5)))
    assert bool(((emp - b.cov(0.5)).abs() <= 5 * math.sqrt(2 / n) * s[:, None] * s[None, :]).all())


# ------------------------------------------------------------------------------ dynamics
@pytest.mark.parametrize("t", [0.0, 0.2, 0.5, 0.9, 1.0])
@pytest.mark.parametrize("d", [1, 3])
def test_drift_satisfies_the_moment_equations_of_fokker_planck(t, d):
    """For dX = b dt + σ dW: dμ/dt = E[b], dΣ/dt = E[b (x−μ)ᵀ] + E[(x−μ) bᵀ] + σ² I.

    b is affine in x, so expectations over N(μ_t, Σ_t) are exact on sigma points; d/dt by central
    finite differences (error O(h²) ≈ 1e-10)."""
    sigma = 0.8
    b = problem(d, sigma, seed=d + 20)
    mu, cov = b.mean(t), b.cov(t)
    pts = sigma_points(mu, cov)
    drift = b.drift(pts, t)
    xc = pts - mu
    h = 1e-5
    t_lo, t_hi = max(t - h, 0.0), min(t + h, 1.0)
    dmu = (b.mean(t_hi) - b.mean(t_lo)) / (t_hi - t_lo)
    dcov = (b.cov(t_hi) - b.cov(t_lo)) / (t_hi - t_lo)
    torch.testing.assert_close(drift.mean(0), dmu, rtol=0, atol=1e-8)
    rhs = (drift.T @ xc + xc.T @ drift) / pts.shape[0] + sigma**2 * torch.eye(d, dtype=DT)
    # one-sided differences at the ends are O(h)
    torch.testing.assert_close(rhs, dcov, rtol=0, atol=1e-8 if 0 < t < 1 else 1e-4)


def test_drift_fokker_planck_by_monte_carlo():
    """The same identity with plain samples: |E_n[b] − dμ/dt| within 5 standard errors."""
    b = problem(2, 1.0, seed=4)
    n, t = 20_000, 0.4
    x = b.marginal(t).sample(n, seed=1)
    drift = b.drift(x, t)
    se = drift.std(0) / math.sqrt(n)
    assert bool(((drift.mean(0) - (b.m1 - b.m0)).abs() <= 5 * se).all())


@pytest.mark.parametrize("t", [0.1, 0.5, 0.95])
def test_nelson_relation_and_time_reversal(t):
    """drift + backward_drift = σ² ∇log ρ_t, and the backward drift of ρ0 → ρ1 at t is the forward
    drift of the reversed problem ρ1 → ρ0 at 1 − t (its cross-covariance is Cᵀ)."""
    sigma = 0.6
    b = problem(3, sigma, seed=8)
    rev = GaussianBridge(b.m1, b.S1, b.m0, b.S0, sigma)
    torch.testing.assert_close(rev.cross_cov, b.cross_cov.T, rtol=0, atol=1e-10)
    x = b.marginal(t).sample(64, seed=3).to(DT)
    torch.testing.assert_close(b.drift(x, t) + b.backward_drift(x, t), sigma**2 * b.score(x, t))
    torch.testing.assert_close(b.backward_drift(x, t), rev.drift(x, 1 - t), rtol=1e-9, atol=1e-9)
    rho = b.marginal(t)
    xr = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(rho.log_prob(xr).sum(), xr)
    torch.testing.assert_close(b.score(x, t), grad)


def test_probability_flow_ode_pushes_rho0_to_rho1():
    """velocity is affine in x, so RK4 on the 2d sigma points of ρ0 tracks mean and covariance exactly
    (up to the O(h⁴) integration error)."""
    b = problem(2, 0.9, seed=5)
    x = sigma_points(b.m0, b.S0)
    n = 200
    h = 1.0 / n
    for k in range(n):
        t = k * h
        k1 = b.velocity(x, t)
        k2 = b.velocity(x + h / 2 * k1, t + h / 2)
        k3 = b.velocity(x + h / 2 * k2, t + h / 2)
        k4 = b.velocity(x + h * k3, t + h)
        x = x + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    torch.testing.assert_close(x.mean(0), b.m1, rtol=0, atol=1e-9)
    xc = x - x.mean(0)
    torch.testing.assert_close(xc.T @ xc / x.shape[0], b.S1, rtol=0, atol=1e-8)


def test_euler_maruyama_with_the_drift_reaches_rho1():
    """Simulating dX = b dt + σ dW from ρ0 ends at ρ1 (Monte Carlo + Euler bias O(h) tolerance)."""
    b = problem(2, 0.7, seed=6)
    n, steps = 20_000, 100
    gen = torch.Generator().manual_seed(0)
    x = b.marginal(0.0).sample(n, seed=gen).to(DT)
    x = sample(b, x, steps=steps, seed=gen).x                  # Euler–Maruyama with the closed-form drift
    h = 1.0 / steps
    s = torch.sqrt(torch.diagonal(b.S1))
    tol = (5 * math.sqrt(2 / n) + 2 * h) * s[:, None] * s[None, :]
    assert bool(((torch.cov(x.T) - b.S1).abs() <= tol).all())
    assert bool(((x.mean(0) - b.m1).abs() <= 5 * s / math.sqrt(n) + 2 * h).all())


def test_drift_shapes_dtypes_and_per_row_times():
    b = problem(2, 1.0, seed=9)
    x = torch.randn(5, 2)
    assert b.drift(x, 0.5).dtype == torch.float32
    t = torch.linspace(0, 1, 5)[:, None]
    rows = torch.stack([b.drift(x[i:i + 1].to(DT), float(t[i])) [0] for i in range(5)])
    torch.testing.assert_close(b.drift(x.to(DT), t.to(DT)), rows)
    torch.testing.assert_close(b.drift(x.to(DT), t.to(DT).reshape(-1)), rows)
    assert b.velocity(x, 0.2).shape == (5, 2)


# ------------------------------------------------------------------------------ validation
@pytest.mark.parametrize("kwargs, exc, word", [
    (dict(sigma=0.0), ValueError, "sigma"),
    (dict(sigma=-1.0), ValueError, "sigma"),
    (dict(sigma=float("nan")), ValueError, "sigma"),
    (dict(sigma="1"), TypeError, "sigma"),
    (dict(S0=[[1.0, 2.0], [2.0, 1.0]]), ValueError, "S0"),        # indefinite
    (dict(S1=[[1.0, 0.5], [0.0, 1.0]]), ValueError, "S1"),        # not symmetric
    (dict(S0=-1.0), ValueError, "S0"),
    (dict(m0=[0.0, 0.0, 0.0]), ValueError, "dimension"),          # mismatched dims
    (dict(m1=[0.0, float("nan")]), ValueError, "m1"),
    (dict(S1=[[[1.0]]]), ValueError, "S1"),
    (dict(m0="a"), TypeError, "m0"),
])
def test_bad_arguments_are_named(kwargs, exc, word):
    args = dict(m0=[0.0, 1.0], S0=[[1.0, 0.2], [0.2, 1.0]], m1=[1.0, 0.0], S1=1.0, sigma=1.0)
    args.update(kwargs)
    with pytest.raises(exc, match=word):
        GaussianBridge(**args)


def test_bad_call_arguments_are_named():
    b = problem(2, 1.0)
    with pytest.raises(ValueError, match="x"):
        b.drift(torch.zeros(4, 3), 0.5)
    with pytest.raises(ValueError, match="t"):
        b.drift(torch.zeros(4, 2), 1.5)
    with pytest.raises(ValueError, match="t"):
        b.drift(torch.zeros(4, 2), torch.zeros(3, 1))
    with pytest.raises(ValueError, match="x"):
        b.drift(torch.full((4, 2), float("nan")), 0.5)
    with pytest.raises(ValueError, match="n"):
        b.sample_plan(0)
    with pytest.raises(ValueError, match="t"):
        b.marginal(torch.tensor([0.1, 0.2]))


# ------------------------------------------------------------------------------ properties
spd2 = st.tuples(st.floats(0.2, 3.0), st.floats(0.2, 3.0), st.floats(-0.9, 0.9)).map(
    lambda v: torch.tensor([[v[0], v[2] * math.sqrt(v[0] * v[1])], [v[2] * math.sqrt(v[0] * v[1]), v[1]]], dtype=DT))


@settings(max_examples=25, deadline=None)
@given(sigma=st.floats(0.05, 5.0), S0=spd2, S1=spd2, t=st.floats(0.0, 1.0))
def test_property_random_problems_are_consistent(sigma, S0, S1, t):
    b = GaussianBridge([0.0, 1.0], S0, [1.0, -1.0], S1, sigma)
    prec = torch.linalg.inv(b.joint_cov())
    scale = float(torch.linalg.matrix_norm(prec, ord=2))
    assert float((prec[:2, 2:] + torch.eye(2, dtype=DT) / sigma**2).abs().max()) <= 1e-8 * scale
    assert bool((torch.linalg.eigvalsh(b.cov(t)) > 0).all())
    x = b.marginal(t).sample(16, seed=0).to(DT)
    for f in (b.drift, b.backward_drift, b.velocity, b.score):
        assert bool(torch.isfinite(f(x, t)).all())
    assert math.isfinite(b.entropic_cost())
    # symmetric square root really is one
    r = sqrtm_spd(S0)
    torch.testing.assert_close(r @ r, S0)


# ------------------------------------------------------------------------------ OU reference
def test_ou_reference_tends_to_the_brownian_one_as_c_goes_to_zero():
    b0 = problem(2, 0.8, seed=12)
    bc = GaussianBridge(b0.m0, b0.S0, b0.m1, b0.S1, 0.8, c=1e-7)
    torch.testing.assert_close(bc.cross_cov, b0.cross_cov, rtol=0, atol=1e-6)
    x = b0.marginal(0.4).sample(32, seed=0).to(DT)
    for t in (0.0, 0.3, 0.7, 1.0):
        torch.testing.assert_close(bc.cov(t), b0.cov(t), rtol=0, atol=1e-6)
        torch.testing.assert_close(bc.drift(x, t), b0.drift(x, t), rtol=0, atol=1e-5)
        torch.testing.assert_close(bc.backward_drift(x, t), b0.backward_drift(x, t), rtol=0, atol=1e-5)


@pytest.mark.parametrize("c", [-2.0, 0.7])
def test_ou_joint_precision_and_endpoints(c):
    """With the OU kernel N(y; e^c x, ξ) the plan is ∝ f(x) exp(e^c x·y / ξ) g(y): off-diagonal precision
    block −(e^c/ξ) I, ξ = σ²(e^{2c} − 1)/(2c)."""
    sigma = 2.0 if c == -2.0 else 0.6
    b = GaussianBridge([0.5, -1.0], [[1.0, 0.3], [0.3, 0.7]], [-1.0, 2.0], [[0.5, -0.1], [-0.1, 1.5]], sigma, c=c)
    xi = sigma**2 * math.expm1(2 * c) / (2 * c)
    prec = torch.linalg.inv(b.joint_cov())
    torch.testing.assert_close(prec[:2, 2:], -math.exp(c) / xi * torch.eye(2, dtype=DT), rtol=0, atol=1e-8 * math.exp(c) / xi)
    torch.testing.assert_close(b.cov(0.0), b.S0)
    torch.testing.assert_close(b.cov(1.0), b.S1)
    torch.testing.assert_close(b.mean(1.0), b.m1)
    with pytest.raises(NotImplementedError):
        b.entropic_cost()


@pytest.mark.parametrize("t", [0.0, 0.2, 0.5, 0.8, 1.0])
@pytest.mark.parametrize("c", [-2.0, 1.0])
def test_ou_drift_satisfies_the_fokker_planck_moment_equations(c, t):
    """Same identities as for σW: the drift b includes the reference's c x, the noise is σ dW."""
    sigma = 2.0 if c == -2.0 else 0.8
    b = GaussianBridge([0.5, -1.0], [[1.0, 0.3], [0.3, 0.7]], [-1.0, 2.0], [[0.5, -0.1], [-0.1, 1.5]], sigma, c=c)
    mu, cov = b.mean(t), b.cov(t)
    pts = sigma_points(mu, cov)
    drift = b.drift(pts, t)
    xc = pts - mu
    h = 1e-5
    t_lo, t_hi = max(t - h, 0.0), min(t + h, 1.0)
    dmu = (b.mean(t_hi) - b.mean(t_lo)) / (t_hi - t_lo)
    dcov = (b.cov(t_hi) - b.cov(t_lo)) / (t_hi - t_lo)
    atol = 1e-7 if 0 < t < 1 else 1e-3
    torch.testing.assert_close(drift.mean(0), dmu, rtol=0, atol=atol)
    rhs = (drift.T @ xc + xc.T @ drift) / pts.shape[0] + sigma**2 * torch.eye(2, dtype=DT)
    torch.testing.assert_close(rhs, dcov, rtol=0, atol=atol)
    # the two closed forms (forward for t ≤ ½, backward + Nelson for t > ½) meet continuously
    x = pts[:3]
    torch.testing.assert_close(b.drift(x, 0.5 - 1e-9), b.drift(x, 0.5 + 1e-9), rtol=0, atol=1e-6)


def test_ou_plan_against_pot_with_the_ou_cost():
    """1-D: the static problem with kernel N(y; τx, ξ) is entropic OT with cost (y − τx)² and ε = 2ξ."""
    c, sigma, m0, v0, m1, v1 = -1.0, 1.2, 0.5, 0.6, -0.5, 0.9
    b = GaussianBridge(m0, v0, m1, v1, sigma, c=c)
    tau, xi = math.exp(c), sigma**2 * math.expm1(2 * c) / (2 * c)
    x = np.linspace(-7, 7, 300)
    a = np.exp(-(x - m0) ** 2 / (2 * v0)); a /= a.sum()
    q = np.exp(-(x - m1) ** 2 / (2 * v1)); q /= q.sum()
    P = ot.sinkhorn(a, q, (x[None, :] - tau * x[:, None]) ** 2, reg=2 * xi, method="sinkhorn_log",
                    stopThr=1e-12, numItermax=5000)
    cross = (P * np.outer(x - m0, x - m1)).sum()
    assert abs(cross - float(b.cross_cov)) < 1e-7


def test_ou_euler_maruyama_and_exact_paths_reach_rho1():
    """VSDM's check (c = −2, g = 2): simulating the drift from ρ0 ends at ρ1; the exact OU-bridge paths
    have the marginal Σ_½ (Monte-Carlo tolerances)."""
    b = GaussianBridge([0.5, -1.0], [[1.0, 0.3], [0.3, 0.7]], [-1.0, 2.0], [[0.5, -0.1], [-0.1, 1.5]], 2.0, c=-2.0)
    n, steps = 20_000, 200
    gen = torch.Generator().manual_seed(0)
    x = b.marginal(0.0).sample(n, seed=gen).to(DT)
    x = sample(b, x, steps=steps, seed=gen).x                  # Euler–Maruyama with the closed-form drift
    h = 1.0 / steps
    s = torch.sqrt(torch.diagonal(b.S1))
    # Euler bias O(h · ‖drift Jacobian‖) with a Jacobian up to ~σ²/ξ near the ends: allow 10 h
    tol = (5 * math.sqrt(2 / n) + 10 * h) * s[:, None] * s[None, :]
    assert bool(((torch.cov(x.T) - b.S1).abs() <= tol).all())
    paths = b.sample_path(n, n_steps=10, seed=1, dtype=DT)
    s5 = torch.sqrt(torch.diagonal(b.cov(0.5)))
    emp = torch.cov(paths[5].T)
    assert bool(((emp - b.cov(0.5)).abs() <= 5 * math.sqrt(2 / n) * s5[:, None] * s5[None, :]).all())
    assert bool(((paths[5].mean(0) - b.mean(0.5)).abs() <= 5 * s5 / math.sqrt(n)).all())


def test_ou_bad_rate_is_named():
    with pytest.raises(ValueError, match="c"):
        GaussianBridge(0.0, 1.0, 1.0, 1.0, 1.0, c=float("nan"))
    with pytest.raises(TypeError, match="c"):
        GaussianBridge(0.0, 1.0, 1.0, 1.0, 1.0, c=True)
