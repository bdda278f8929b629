"""Schrödinger–Föllmer drifts against closed forms and independent derivations."""
import math

import pytest
import torch

from lsbcore.bridges.follmer import (EmpiricalFollmer, FollmerMC, empirical_follmer_drift, fit_follmer,
                                     follmer_mc_drift, gaussian_follmer_drift)
from lsbcore.marginals import GaussianMixture
from lsbcore.sde import sample


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def gmm_sf_drift(x, t, pis, means, variances, sigma):
    """Oracle: SF drift for Σ_k π_k N(m_k, s_k² I), from X_t | k ~ N(t m_k, (t² s_k² + σ² t(1−t)) I)
    and E[X1 | X_t = x, k] (Gaussian conditioning); valid for 0 < t < 1."""
    d = x.shape[1]
    v = t**2 * variances + sigma**2 * t * (1 - t)                                   # (K,)
    sq = ((x[:, None, :] - t * means[None]) ** 2).sum(-1)                           # (n, K)
    w = torch.softmax(torch.log(pis) - 0.5 * d * torch.log(v) - sq / (2 * v), dim=1)
    bk = (sigma**2 * means[None] + (variances[None, :, None] - sigma**2) * x[:, None, :]) \
        / (sigma**2 * (1 - t) + variances[None, :, None] * t)                        # (n, K, d)
    return torch.einsum("nk,nkd->nd", w, bk)


# ---------------------------------------------------------------------------------- exact empirical
@pytest.mark.parametrize("t", [0.0, 0.3, 0.9])
@pytest.mark.parametrize("sigma", [0.5, 1.0])
def test_empirical_drift_equals_general_sf_formula(t, sigma):
    """softmax formula == σ² ∇_x log E_Z f(x + σ√(1−t)Z), with E_Z f from the heat kernel (autograd)."""
    gen = _gen(0)
    pts = 2 * torch.randn(6, 2, generator=gen, dtype=torch.float64)
    a = torch.rand(6, generator=gen, dtype=torch.float64) + 0.1
    a = a / a.sum()
    x = torch.randn(9, 2, generator=gen, dtype=torch.float64)
    xr = x.clone().requires_grad_()
    # f = dμ/dN(0, σ²): E_Z f(x + σ√(1−t) Z) = Σ_i a_i N(x_i; x, σ²(1−t)) / N(x_i; 0, σ²)  (+ consts)
    log_terms = (torch.log(a) - ((pts[None] - xr[:, None]) ** 2).sum(-1) / (2 * sigma**2 * (1 - t))
                 + (pts**2).sum(-1) / (2 * sigma**2))
    (grad,) = torch.autograd.grad(torch.logsumexp(log_terms, 1).sum(), xr)
    torch.testing.assert_close(empirical_follmer_drift(x, t, pts, sigma, a), sigma**2 * grad)
    torch.testing.assert_close(EmpiricalFollmer(pts, sigma, a).drift(x, t), sigma**2 * grad)


def test_empirical_drift_is_the_thin_mixture_limit():
    """Point masses = Gaussian mixture with s → 0: the GMM oracle converges to the empirical drift."""
    gen = _gen(1)
    pts = 2 * torch.randn(5, 2, generator=gen, dtype=torch.float64)
    x = torch.randn(8, 2, generator=gen, dtype=torch.float64)
    for t in (0.2, 0.5, 0.8):
        exact = empirical_follmer_drift(x, t, pts, 0.7)
        thin = gmm_sf_drift(x, t, torch.full((5,), 0.2, dtype=torch.float64), pts,
                            torch.full((5,), 1e-8, dtype=torch.float64), 0.7)
        torch.testing.assert_close(exact, thin, atol=1e-5, rtol=1e-5)


def test_empirical_end_points_are_finite():
    pts = torch.tensor([[1.0, 2.0], [-3.0, 0.5]])
    # at t = 0 from the origin the drift is the target's mean (E[X1 − 0]/1)
    torch.testing.assert_close(empirical_follmer_drift(torch.zeros(3, 2), 0.0, pts), pts.mean(0).expand(3, 2))
    assert torch.isfinite(empirical_follmer_drift(torch.randn(4, 2, generator=_gen(0)), 1.0, pts)).all()


def test_empirical_sampler_reaches_the_points_with_their_weights():
    pts = torch.tensor([[2.0, 0.0], [-1.0, 1.5], [0.0, -2.0]])
    a = torch.tensor([0.5, 0.3, 0.2])
    n = 3000
    out = sample(EmpiricalFollmer(pts, 1.0, a), torch.zeros(n, 2), steps=200, seed=0).x
    dist = torch.cdist(out, pts)
    # the last Euler step from t = 1 − h moves x exactly onto a point (h · (x_i − x)/h), then adds
    # the noise σ√h ξ: squared distances average d σ² h (chi-square, relative s.e. 1/√n)
    h = 1 / 200
    ratio = (dist.min(1).values ** 2).mean() / (2 * h)
    assert abs(ratio - 1) < 5 / math.sqrt(n), float(ratio)
    freq = torch.bincount(dist.argmin(1), minlength=3).double() / n
    se = torch.sqrt(a.double() * (1 - a.double()) / n)
    # 4 binomial standard errors + O(h) Euler bias (h = 1/200)
    assert ((freq - a.double()).abs() < 4 * se + 1 / 200).all(), freq


# ---------------------------------------------------------------------------------- Monte Carlo
GMM = dict(pis=torch.tensor([0.5, 0.3, 0.2]), means=torch.tensor([[2.0, 0.0], [-1.0, 1.5], [0.0, -2.0]]),
           variances=torch.tensor([0.3, 0.5, 0.2]))


@pytest.mark.parametrize("form", ["gradient", "stein"])
@pytest.mark.parametrize("t", [0.0, 0.3, 0.8])
def test_mc_drift_matches_mixture_closed_form(form, t):
    """MC estimate within 5 of its own (delta-method) standard errors of the exact GMM drift."""
    target = GaussianMixture(GMM["pis"], GMM["means"], GMM["variances"])
    sigma = 1.0
    x = 1.5 * torch.randn(6, 2, generator=_gen(2))
    b, se = follmer_mc_drift(x, t, target.log_prob, sigma, n_mc=20000, form=form, seed=3, return_stderr=True)
    if t == 0.0:   # the oracle's formula needs t > 0; use its limit at a tiny t
        exact = gmm_sf_drift(x.double(), 1e-7, GMM["pis"].double(), GMM["means"].double(),
                             GMM["variances"].double(), sigma).float()
    else:
        exact = gmm_sf_drift(x, t, GMM["pis"], GMM["means"], GMM["variances"], sigma)
    assert ((b - exact).abs() <= 5 * se + 1e-3).all(), ((b - exact) / se)
    assert se.max() < 0.5          # the test is meaningful: errors are small compared to |b| ~ 1


@pytest.mark.parametrize("t", [0.0, 0.5, 1.0])
def test_mc_drift_gaussian_target(t):
    # a target close to the reference N(0, σ²): the importance weights f(y) are light-tailed and the
    # delta-method standard error is trustworthy (far targets make them heavy-tailed: see the docstring)
    m, s, sigma = torch.tensor([0.5, -0.5], dtype=torch.float64), 0.9, 1.0
    log_density = lambda y: -((y - m) ** 2).sum(-1) / (2 * s**2)   # unnormalised is fine
    x = torch.randn(5, 2, generator=_gen(4), dtype=torch.float64)
    b, se = follmer_mc_drift(x, t, log_density, sigma, n_mc=20000, seed=5, return_stderr=True)
    exact = gaussian_follmer_drift(x, t, m, s, sigma)
    # at t = 1 the gradient form is exact (all y = x): only float64 rounding remains
    assert ((b - exact).abs() <= 5 * se + 1e-9).all()


def test_follmer_mc_bridge_is_reproducible():
    target = GaussianMixture(GMM["pis"], GMM["means"], GMM["variances"])
    x = torch.randn(4, 2, generator=_gen(0))
    b1 = [FollmerMC(target, n_mc=64, seed=7).drift(x, 0.5) for _ in range(2)]
    br = FollmerMC(target, n_mc=64, seed=7)
    c1, c2 = br.drift(x, 0.5), br.drift(x, 0.5)     # fresh Monte-Carlo draws on each call
    torch.testing.assert_close(b1[0], b1[1])
    torch.testing.assert_close(b1[0], c1)
    assert not torch.equal(c1, c2)


# ---------------------------------------------------------------------------------- Gaussian closed form
@pytest.mark.parametrize("s,sigma", [(0.5, 1.0), (2.0, 1.0), (1.0, 0.5)])
def test_gaussian_drift_transports_the_right_marginals(s, sigma):
    """The linear drift b = a_t x + c_t must evolve N(0, 0) through N(t m, t² s² + σ² t(1−t)):
    d mean/dt = a mean + c,  d var/dt = 2 a var + σ² (moment equations of the linear SDE)."""
    m = torch.tensor([1.5], dtype=torch.float64)
    for t in (0.0, 0.25, 0.5, 0.9, 1.0):
        c = gaussian_follmer_drift(torch.zeros(1, 1, dtype=torch.float64), t, m, s, sigma)[0, 0]
        a = gaussian_follmer_drift(torch.ones(1, 1, dtype=torch.float64), t, m, s, sigma)[0, 0] - c
        mean, var = t * m[0], t**2 * s**2 + sigma**2 * t * (1 - t)
        dmean, dvar = m[0], 2 * t * s**2 + sigma**2 * (1 - 2 * t)
        assert abs(a * mean + c - dmean) < 1e-12
        assert abs(2 * a * var + sigma**2 - dvar) < 1e-12
    # equals E[(X1 − x)/(1 − t) | X_t = x] from the mixture oracle with one component
    x = torch.randn(5, 1, generator=_gen(6), dtype=torch.float64)
    torch.testing.assert_close(gaussian_follmer_drift(x, 0.4, m, s, sigma),
                               gmm_sf_drift(x, 0.4, torch.ones(1, dtype=torch.float64), m[None],
                                            torch.tensor([s**2], dtype=torch.float64), sigma))


def test_gaussian_drift_simulated_end_to_end():
    """Euler–Maruyama from 0 with the closed-form drift reaches N(m, s²) (MC error ~ 1/√n, EM bias O(h))."""
    m, s, n = torch.tensor([1.0, -1.0]), 0.5, 4000

    class G:
        sigma = 1.0

        def drift(self, x, t):
            return gaussian_follmer_drift(x, t, m, s, 1.0)

    out = sample(G(), torch.zeros(n, 2), steps=100, seed=1).x
    assert ((out.mean(0) - m).abs() < 4 * s / math.sqrt(n) + 0.01).all()
    assert ((out.var(0) - s**2).abs() < 4 * s**2 * math.sqrt(2 / n) + 0.01).all()


# ---------------------------------------------------------------------------------- learned
def test_learned_drift_approaches_exact_drift():
    """Regression on (X_t, t) → (X1 − X_t)/(1−t) from an empirical target converges towards the exact
    softmax drift: 10× below the error of a zero drift (loose: 600 steps of a small MLP reach ~40×)."""
    from lsbcore.nets import TimeMLP

    pts = torch.tensor([[2.0, 1.0], [-2.0, 1.0], [0.0, -2.0]])
    bridge = fit_follmer(pts, 1.0, net=TimeMLP(2, width=32, depth=2), steps=600, batch_size=256,
                         lr=1e-2, seed=0, ema=0.98, progress=False)
    # evaluate on SF marginals: X_t = t X1 + √(t(1−t)) Z, t in [0.1, 0.8]
    gen = _gen(9)
    n = 2000
    t = 0.1 + 0.7 * torch.rand(n, 1, generator=gen)
    x1 = pts[torch.randint(0, 3, (n,), generator=gen)]
    x = t * x1 + torch.sqrt(t * (1 - t)) * torch.randn(n, 2, generator=gen)
    exact = empirical_follmer_drift(x, t, pts, 1.0)
    err = ((bridge.drift(x, t) - exact) ** 2).sum(-1).mean()
    base = (exact**2).sum(-1).mean()
    assert err < 0.1 * base, (float(err), float(base))


# ---------------------------------------------------------------------------------- bad inputs
def test_bad_inputs():
    pts = torch.randn(4, 2, generator=_gen(0))
    x = torch.zeros(3, 2)
    with pytest.raises(ValueError, match="sigma"):
        empirical_follmer_drift(x, 0.5, pts, sigma=0.0)
    with pytest.raises(ValueError, match="points"):
        empirical_follmer_drift(x, 0.5, torch.randn(4, 3))
    with pytest.raises(ValueError, match="t"):
        empirical_follmer_drift(x, 1.5, pts)
    with pytest.raises(ValueError, match="x"):
        empirical_follmer_drift(torch.full((3, 2), float("nan")), 0.5, pts)
    with pytest.raises(ValueError, match="weights"):
        EmpiricalFollmer(pts, weights=torch.tensor([1.0, -1.0, 0.5, 0.5]))
    with pytest.raises(ValueError, match="form"):
        follmer_mc_drift(x, 0.5, lambda y: -y.pow(2).sum(-1), form="magic")
    with pytest.raises(ValueError, match="shape"):
        follmer_mc_drift(x, 0.5, lambda y: -y.pow(2), n_mc=8)
    with pytest.raises(ValueError, match="n_mc"):
        follmer_mc_drift(x, 0.5, lambda y: -y.pow(2).sum(-1), n_mc=1)
    with pytest.raises(ValueError, match="every Monte-Carlo point"):
        follmer_mc_drift(x, 0.5, lambda y: torch.full(y.shape[:1], -math.inf), n_mc=8)
    with pytest.raises(TypeError):
        FollmerMC(3.0)
    with pytest.raises(ValueError, match="std"):
        gaussian_follmer_drift(x, 0.5, [0.0, 0.0], std=-1.0)
    with pytest.raises(ValueError, match="mean"):
        gaussian_follmer_drift(x, 0.5, [0.0, 0.0, 0.0], std=1.0)
