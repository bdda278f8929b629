"""Reference processes: closed-form kernels checked against quadrature, Chapman–Kolmogorov,
Gaussian conditioning and Monte Carlo (tolerances ~ a few standard errors)."""
import math

import pytest
import torch
from scipy.integrate import quad

from lsbcore.bridges.reference import OU, VP, Brownian, BrownianBridge, brownian_bridge_sample


@pytest.fixture(autouse=True)
def _float64():
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


REFS = [Brownian(0.7), OU(-2.0, 2.0), OU(1.5, 0.5), OU(0.0, 1.3),
        VP(0.1, 20.0, 1.0), VP(0.1, 10.0, 1.7)]


def _f(v):
    return float(v)


@pytest.mark.parametrize("ref", REFS, ids=repr)
def test_transition_var_matches_quadrature(ref):
    # v(s, t) = ∫_s^t α(u, t)² g(u)² du, α from the closed-form ∫a
    s, t = 0.2, 0.9
    g2 = lambda u: _f(torch.as_tensor(ref.diffusion(torch.tensor(u)))) ** 2
    alpha = lambda u: _f(ref.mean_coef(torch.tensor(u), torch.tensor(t)))
    expected = quad(lambda u: alpha(u) ** 2 * g2(u), s, t, epsabs=1e-12)[0]
    assert _f(ref.transition_var(torch.tensor(s), torch.tensor(t))) == pytest.approx(expected, rel=1e-8)
    # and α itself is exp ∫ a
    ia = quad(lambda u: _f(ref.a(torch.tensor(u))), s, t, epsabs=1e-12)[0]
    assert _f(ref.mean_coef(s, t)) == pytest.approx(math.exp(ia), rel=1e-8)


@pytest.mark.parametrize("ref", REFS, ids=repr)
def test_chapman_kolmogorov(ref):
    s, u, t = torch.tensor(0.1), torch.tensor(0.45), torch.tensor(0.8)
    torch.testing.assert_close(ref.mean_coef(s, u) * ref.mean_coef(u, t), ref.mean_coef(s, t))
    torch.testing.assert_close(ref.mean_coef(u, t) ** 2 * ref.transition_var(s, u) + ref.transition_var(u, t),
                               ref.transition_var(s, t))


@pytest.mark.parametrize("beta_r", [1.0, 1.7])
def test_vp_schedule_closed_forms(beta_r):
    vp = VP(0.1, 20.0, beta_r)
    t = 0.63
    assert _f(vp.beta(t)) == pytest.approx(0.1 + t**beta_r * 19.9)
    assert _f(vp.int_beta(t)) == pytest.approx(quad(lambda u: _f(vp.beta(u)), 0, t)[0], rel=1e-10)
    # variance preserving: α² + v = 1, so N(0, I) stays N(0, I)
    assert _f(vp.mean_coef(0.0, t) ** 2 + vp.transition_var(torch.tensor(0.0), torch.tensor(t))) == pytest.approx(1.0)
    x = torch.full((3, 2), 2.0)
    torch.testing.assert_close(vp.drift(x, torch.tensor(t)), -0.5 * vp.beta(t) * x)


def test_brownian_kernel_log_prob_matches_torch_normal():
    ref = Brownian(0.5)
    x, y = torch.randn(6, 3, generator=torch.Generator().manual_seed(1)), torch.randn(6, 3)
    lp = ref.transition_log_prob(y, x, 0.2, 0.6)
    expected = torch.distributions.Normal(x, 0.5 * math.sqrt(0.4)).log_prob(y).sum(1)
    torch.testing.assert_close(lp, expected)
    torch.testing.assert_close(ref.transition_mean(x, 0.2, 0.6), x)


@pytest.mark.parametrize("ref", [Brownian(1.3), OU(-2.0, 2.0), VP(0.1, 10.0, 1.7)], ids=repr)
def test_transition_sample_moments(ref):
    n = 40_000
    x = torch.full((n, 2), 1.5)
    y = ref.transition_sample(x, 0.1, 0.7, seed=3)
    m = _f(ref.mean_coef(0.1, 0.7)) * 1.5
    v = _f(ref.transition_var(torch.tensor(0.1), torch.tensor(0.7)))
    assert abs(_f(y.mean()) - m) < 4 * math.sqrt(v / (2 * n))
    assert abs(_f(y.var()) - v) < 4 * v * math.sqrt(2 / (2 * n))


@pytest.mark.parametrize("ref", [Brownian(0.8), OU(-2.0, 2.0), VP(0.1, 20.0, 1.0)], ids=repr)
def test_bridge_moments_match_gaussian_conditioning(ref):
    # joint of (X_t, X_1) given X_0 = x0 from the kernels, conditioned by generic linear algebra
    x0, x1, t = 0.7, -1.2, 0.35
    T, one, zero = torch.tensor(t), torch.tensor(1.0), torch.tensor(0.0)
    vt, v1t = ref.transition_var(zero, T), ref.transition_var(T, one)
    a_t, a_1t = ref.mean_coef(zero, T), ref.mean_coef(T, one)
    mu = torch.stack([a_t * x0, a_1t * a_t * x0])
    cov = torch.stack([torch.stack([vt, a_1t * vt]), torch.stack([a_1t * vt, a_1t**2 * vt + v1t])])
    cond_mean = mu[0] + cov[0, 1] / cov[1, 1] * (x1 - mu[1])
    cond_var = cov[0, 0] - cov[0, 1] ** 2 / cov[1, 1]
    bm = ref.bridge_mean(torch.tensor([[x0]]), torch.tensor([[x1]]), t)
    assert _f(bm) == pytest.approx(_f(cond_mean), rel=1e-10)
    assert _f(ref.bridge_var(t)) == pytest.approx(_f(cond_var), rel=1e-10)


def test_brownian_bridge_formula_and_sampling():
    sigma, n = 0.9, 50_000
    x0 = torch.randn(n, 2, generator=torch.Generator().manual_seed(0))
    x1 = x0 + 3.0
    t = torch.rand(n, generator=torch.Generator().manual_seed(1)) * 0.8 + 0.1
    xt = brownian_bridge_sample(x0, x1, t, sigma=sigma, seed=2)
    z = (xt - (1 - t[:, None]) * x0 - t[:, None] * x1) / (sigma * (t * (1 - t)).sqrt()[:, None])
    assert abs(_f(z.mean())) < 4 / math.sqrt(2 * n)
    assert abs(_f(z.var()) - 1) < 4 * math.sqrt(2 / (2 * n))
    # the ends are pinned exactly; same seed, same numbers
    torch.testing.assert_close(brownian_bridge_sample(x0, x1, 0.0, sigma=sigma), x0)
    torch.testing.assert_close(brownian_bridge_sample(x0, x1, 1.0, sigma=sigma), x1)
    torch.testing.assert_close(brownian_bridge_sample(x0, x1, 0.5, seed=7), brownian_bridge_sample(x0, x1, 0.5, seed=7))
    assert not torch.equal(brownian_bridge_sample(x0, x1, 0.5, seed=7), brownian_bridge_sample(x0, x1, 0.5, seed=8))
    torch.testing.assert_close(Brownian(sigma).bridge_var(t[:, None]), sigma**2 * (t * (1 - t))[:, None])


def test_pinned_brownian_bridge_face_and_nelson_relation():
    sigma = 0.6
    b = BrownianBridge([1.0, -2.0], sigma=sigma, x0=[0.5, 0.5])
    x = torch.randn(5, 2, generator=torch.Generator().manual_seed(4))
    t = torch.full((5, 1), 0.3)
    torch.testing.assert_close(b.drift(x, t), (torch.tensor([[1.0, -2.0]]) - x) / 0.7)
    torch.testing.assert_close(b.backward_drift(x, t), (torch.tensor([[0.5, 0.5]]) - x) / 0.3)
    # Nelson: drift + backward_drift = σ² ∇ log ρ_t with ρ_t = N(mean(t), var(t) I)
    score = -(x - b.mean(0.3)) / b.var(0.3)
    torch.testing.assert_close(b.drift(x, t) + b.backward_drift(x, t), sigma**2 * score)
    with pytest.raises(NotImplementedError, match="x0"):
        BrownianBridge([1.0]).backward_drift(x[:, :1], t)


def test_argument_validation_names_the_argument():
    with pytest.raises(ValueError, match="sigma"):
        Brownian(0.0)
    with pytest.raises(ValueError, match="beta_max"):
        VP(1.0, 0.5)
    with pytest.raises(ValueError, match="c"):
        OU(float("nan"))
    ref = Brownian(1.0)
    x = torch.zeros(3, 2)
    with pytest.raises(ValueError, match="s must be"):
        ref.transition_mean(x, 0.8, 0.2)
    with pytest.raises(ValueError, match="x contains NaN"):
        ref.transition_mean(torch.full((3, 2), float("nan")), 0.0, 0.5)
    with pytest.raises(ValueError, match="t must lie"):
        ref.bridge_sample(x, x, 1.5)
    with pytest.raises(ValueError, match="x1 has 2 rows"):
        ref.bridge_sample(x, x[:2], 0.5)
    with pytest.raises(ValueError, match="s < t"):
        ref.transition_log_prob(x, x, 0.3, 0.3)
    with pytest.raises(TypeError, match="seed"):
        ref.bridge_sample(x, x, 0.5, seed="a")
