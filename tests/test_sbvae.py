"""SB as a VAE (lsbcore.bridges.sbvae_exact, lsbcore.bridges.sbvae, lsbcore.linear_sde): exact
linear-Gaussian terms, their identities, Monte Carlo checks, the linear encoder's losses and fit_sbvae."""
import math

import numpy as np
import pytest
import torch
from scipy.integrate import solve_ivp

from lsbcore.bridges.sbvae import (LinearEncoder, SBVAEBridge, decoder_dsm_loss, empirical_prior_loss,
                                   fit_sbvae)
from lsbcore.bridges.sbvae_exact import LinearSBVAE
from lsbcore.linear_sde import gaussian_kl, linear_sde_moments

D64 = torch.float64


CONFIGS = {
    "1d-score-based": dict(data_mean=[1.5], data_cov=[[0.5]], F=-0.5, g=1.0, T=1.0, A=-0.7, a=0.2),
    "2d-controlled": dict(data_mean=[1.0, -0.5], data_cov=[[1.0, 0.3], [0.3, 0.5]], F=-0.5, g=1.0, T=2.0,
                          K=[[-0.3, 0.1], [0.0, -0.2]], k=[0.1, 0.0], A=[[-0.8, 0.1], [0.05, -1.2]], a=[0.2, 0.1]),
    "3d-brownian": dict(data_mean=[2.0, 0.0, -1.0], data_cov=[0.3, 1.0, 2.0], F=0.0, g=0.8, T=1.5,
                        K=-0.9, A=-0.6, prior_var=0.7),
}


def test_linear_sde_moments_match_the_moment_odes():
    rng = np.random.default_rng(0)
    M = torch.tensor(rng.normal(size=(3, 3)) * 0.7, dtype=D64)
    b = torch.tensor(rng.normal(size=3), dtype=D64)
    m0 = torch.tensor(rng.normal(size=3), dtype=D64)
    S0 = torch.tensor(np.diag([0.5, 1.0, 2.0]), dtype=D64)
    g, ts = 0.9, np.array([0.1, 0.5, 1.3])
    mom = linear_sde_moments(M, b, g, m0, S0, torch.tensor(ts, dtype=D64))
    Mn = M.numpy()

    def rhs(_, y):
        m, S = y[:3], y[3:].reshape(3, 3)
        return np.concatenate([Mn @ m + b.numpy(), (Mn @ S + S @ Mn.T + g**2 * np.eye(3)).ravel()])

    sol = solve_ivp(rhs, (0, ts[-1]), np.concatenate([m0.numpy(), S0.numpy().ravel()]), t_eval=ts,
                    rtol=1e-11, atol=1e-13)
    np.testing.assert_allclose(mom.mean.numpy(), sol.y[:3].T, atol=1e-8)
    np.testing.assert_allclose(mom.cov.numpy(), sol.y[3:].T.reshape(-1, 3, 3), atol=1e-8)


def test_gaussian_kl_against_monte_carlo():
    m1, S1 = torch.tensor([0.3, -0.2], dtype=D64), torch.tensor([[1.0, 0.4], [0.4, 0.8]], dtype=D64)
    m2, S2 = torch.tensor([0.0, 0.5], dtype=D64), torch.tensor([[2.0, -0.3], [-0.3, 1.0]], dtype=D64)
    p, q = (torch.distributions.MultivariateNormal(m, S) for m, S in ((m1, S1), (m2, S2)))
    torch.testing.assert_close(gaussian_kl(m1, S1, m2, S2), torch.distributions.kl_divergence(p, q))


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_two_girsanov_decompositions_agree_and_the_inequality_holds(name):
    model = LinearSBVAE(**CONFIGS[name])
    r = model.terms()
    # reverse-time Girsanov (prior loss + drift matching) = forward-time Girsanov (data KL + gap)
    assert r["path_kl"] == pytest.approx(r["path_kl_forward"], rel=1e-9, abs=1e-12)
    assert r["path_kl"] == pytest.approx(r["prior_loss"] + r["drift_matching"], rel=1e-12)
    # data processing inequality, with its slack the forward gap (≥ 0)
    assert r["forward_gap"] >= 0
    assert r["data_kl"] <= r["path_kl"] + 1e-12
    # quadrature is converged
    assert model.replace(n_quad=128).path_kl() == pytest.approx(r["path_kl"], rel=1e-10)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_sbfbsde_likelihood_is_minus_the_path_kl_up_to_the_data_entropy(name):
    """Chen et al.'s L_SB uses divergences and cross terms instead of the score of q_t: a genuinely
    different formula that must agree exactly."""
    model = LinearSBVAE(**CONFIGS[name])
    assert model.sbfbsde_elbo() == pytest.approx(-model.path_kl() - model.data_entropy(), rel=1e-9)


def test_exact_decoder_on_matched_prior_recovers_the_data():
    """Fitted decoder: drift matching is minimal (perturbing W increases it) and the bound is tight-ish."""
    base = LinearSBVAE(**CONFIGS["2d-controlled"])
    fit = base.fit_decoder()
    dm = fit.drift_matching()
    assert dm < base.drift_matching()
    for dA in (1e-2 * torch.eye(2, dtype=D64), torch.tensor([[0.0, 1e-2], [0.0, 0.0]], dtype=D64)):
        assert fit.replace(A=fit.A + dA).drift_matching() > dm
        assert fit.replace(A=fit.A - dA).drift_matching() > dm
    assert fit.replace(a=fit.a + 1e-2).drift_matching() > dm


def test_score_based_special_case_prior_loss_free_of_theta_and_dsm_differs_by_a_constant():
    cfg = dict(CONFIGS["1d-score-based"])
    m1 = LinearSBVAE(**cfg)                       # u ≡ 0: the score-based model
    m2 = m1.replace(A=-1.3, a=-0.4)
    assert m1.prior_loss() == m2.prior_loss()
    gap1 = m1.dsm_loss(0.01) - m1.drift_matching(0.01)
    gap2 = m2.dsm_loss(0.01) - m2.drift_matching(0.01)
    assert gap1 == pytest.approx(gap2, rel=1e-10)
    assert gap1 > 0


def test_dsm_closed_form_against_monte_carlo():
    """E ∫ (g²/2)‖s_θ(X_t) − ∇log q_{t|0}‖² dt by sampling t, X_0 and X_t: within 5 standard errors."""
    model = LinearSBVAE(**CONFIGS["1d-score-based"])
    t_gap, n = 0.05, 200_000
    gen = torch.Generator().manual_seed(0)
    t = t_gap + (model.T - t_gap) * torch.rand(n, generator=gen, dtype=D64)
    x0 = model.m0 + torch.randn(n, 1, generator=gen, dtype=D64) * model.S0[0, 0].sqrt()
    M, b = model.encoder_matrix
    mom = linear_sde_moments(M, b, model.g, model.m0, model.S0, t)
    xi = torch.randn(n, generator=gen, dtype=D64) * mom.noise_cov[:, 0, 0].sqrt()
    xt = mom.Phi[:, 0, 0] * x0[:, 0] + mom.shift[:, 0] + xi
    s = model.A[0, 0] * xt + model.a[0]
    vals = (model.T - t_gap) * 0.5 * model.g**2 * (s + xi / mom.noise_cov[:, 0, 0]) ** 2
    se = float(vals.std()) / math.sqrt(n)
    assert abs(float(vals.mean()) - model.dsm_loss(t_gap)) < 5 * se


def test_decoder_marginal_and_drift_matching_against_euler_maruyama():
    """Simulate both SDEs with small steps (an independent implementation) and compare."""
    model = LinearSBVAE(**CONFIGS["2d-controlled"])
    n, steps = 2000, 100
    h = model.T / steps
    gen = torch.Generator().manual_seed(1)
    M, b = model.encoder_matrix
    # encoder paths: drift matching integrand along the way (score of q_t from the closed form)
    x = model.m0 + torch.randn(n, 2, generator=gen, dtype=D64) @ torch.linalg.cholesky(model.S0).T
    ts = torch.arange(steps, dtype=D64) * h
    m, S = model.q(ts + 0.5 * h)
    Si = torch.linalg.inv(S)
    acc = torch.zeros(n, dtype=D64)
    for j in range(steps):
        x_mid = x + 0.5 * h * (x @ M.T + b)       # midpoint in time for the integrand (≈ X at t + h/2)
        diff = x_mid @ model.A.T + model.a + (x_mid - m[j]) @ Si[j].T
        acc += h * 0.5 * model.g**2 * (diff**2).sum(1)
        x = x + h * (x @ M.T + b) + model.g * math.sqrt(h) * torch.randn(n, 2, generator=gen, dtype=D64)
    mT, ST = model.q(torch.tensor([model.T], dtype=D64))
    se = float(acc.std()) / math.sqrt(n)
    assert abs(float(acc.mean()) - model.drift_matching()) < 5 * se + 0.03   # + Euler bias O(h) = O(0.02)
    torch.testing.assert_close(x.mean(0), mT[0], atol=5 * float(ST[0].diagonal().max().sqrt()) / math.sqrt(n) + 0.01, rtol=0)
    # decoder: reverse-time SDE from the prior, dY = (N Y + n) ds + g dW
    N = -M + model.g**2 * model.A
    nv = -b + model.g**2 * model.a
    y = math.sqrt(model.prior_var) * torch.randn(n, 2, generator=gen, dtype=D64)
    for _ in range(steps):
        y = y + h * (y @ N.T + nv) + model.g * math.sqrt(h) * torch.randn(n, 2, generator=gen, dtype=D64)
    mu, Sig = model.p_theta()
    sd = Sig.diagonal().sqrt()
    assert bool(((y.mean(0) - mu).abs() < 5 * sd / math.sqrt(n) + 0.01).all())
    # the sample covariance's standard error is ≈ √(2/n)·var ≈ 0.02·var: allow 4 of them plus Euler bias
    torch.testing.assert_close(torch.cov(y.T), Sig, atol=0.1 * float(Sig.diagonal().max()), rtol=0)


@pytest.mark.parametrize("bad, err", [
    (dict(data_cov=[[1.0, 2.0], [2.0, 1.0]]), "data_cov"),
    (dict(g=0.0), "g"),
    (dict(T=float("nan")), "T"),
    (dict(K=torch.zeros(3, 3)), "K"),
    (dict(a=[0.0, float("inf")]), "a"),
])
def test_linear_sbvae_rejects_bad_arguments(bad, err):
    cfg = dict(CONFIGS["2d-controlled"])
    cfg.update(bad)
    with pytest.raises((ValueError, TypeError), match=err):
        LinearSBVAE(**cfg)


# ------------------------------------------------------------------------------- 2-D training parts
class ExactEps(torch.nn.Module):
    """ε*(x, t) = L_tᵀ S_t⁻¹ (x − m_t): the exact noise predictor for Gaussian data and a linear encoder."""

    def __init__(self, model: LinearSBVAE, encoder: LinearEncoder):
        super().__init__()
        self.model, self.encoder = model, encoder

    def forward(self, x, t):
        t = t.reshape(-1)[:1].to(D64)
        m, S = self.model.q(t)
        L = torch.linalg.cholesky(self.encoder.transition(t).noise_cov[0])
        return ((x.to(D64) - m[0]) @ torch.linalg.solve(S[0], L)).to(x.dtype)


@pytest.mark.parametrize("method", ["sde", "ode"])
def test_sbvae_bridge_with_exact_score_samples_the_data(method):
    enc = LinearEncoder(2, c=0.0, g=1.0)
    with torch.no_grad():
        enc.K.copy_(torch.tensor([[-1.5, 0.2], [0.0, -1.0]], dtype=D64))
    mean, cov = torch.tensor([1.0, -1.0], dtype=D64), torch.tensor([[0.5, 0.2], [0.2, 0.4]], dtype=D64)
    model = LinearSBVAE(mean, cov, F=0.0, g=1.0, T=1.0, K=enc.K.detach())
    mT, ST = model.q(torch.tensor([1.0], dtype=D64))
    bridge = SBVAEBridge(enc, ExactEps(model, enc), prior_var=1.0)
    # start from the exact q_1 so the only errors are the sampler's and Monte Carlo's
    n = 2000
    gen = torch.Generator().manual_seed(3)
    x1 = mT[0] + torch.randn(n, 2, generator=gen, dtype=D64) @ torch.linalg.cholesky(ST[0]).T
    from lsbcore.sde import sample
    x0 = sample(bridge, x1, method=method, steps=50, t0=1e-3, t1=1.0, direction="backward", seed=4).x
    # Monte Carlo: SE(mean) ≈ √(0.5/n) ≈ 0.016, SE(cov) ≈ √(2/n)·0.5 ≈ 0.016; steps h = 0.02 add O(h)
    assert bool(((x0.mean(0) - mean).abs() < 5 * 0.016 + 0.02).all())
    torch.testing.assert_close(torch.cov(x0.T), cov, atol=5 * 0.016 + 0.02, rtol=0)


def test_empirical_prior_loss_approaches_the_gaussian_kl_for_gaussian_data():
    enc = LinearEncoder(2, c=0.0, g=1.0)
    with torch.no_grad():
        enc.K.fill_(0.0)
        enc.K.diagonal().fill_(-0.7)
    mean, cov = torch.tensor([1.0, 0.0], dtype=D64), torch.tensor([[0.3, 0.0], [0.0, 0.2]], dtype=D64)
    data = mean + torch.randn(4000, 2, generator=torch.Generator().manual_seed(0), dtype=D64) @ cov.sqrt().T
    exact = LinearSBVAE(mean, cov, K=enc.K.detach()).prior_loss()
    est = float(empirical_prior_loss(enc, data[:1000], n_mc=2000, seed=1).detach())
    assert est == pytest.approx(exact, abs=0.05)      # MC error ≈ 0.02 at n_mc = 2000, + 1000-point mixture bias


def test_dsm_loss_is_minimal_at_the_exact_noise_predictor():
    enc = LinearEncoder(1, c=-0.5, g=1.0)
    model = LinearSBVAE([0.5], [[0.4]], F=-0.5)
    data = 0.5 + 0.4**0.5 * torch.randn(5000, 1, generator=torch.Generator().manual_seed(0), dtype=D64)

    class ScaledEps(torch.nn.Module):
        """scale × the exact ε-predictor, one time per row."""

        def __init__(self, scale):
            super().__init__()
            self.scale = scale

        def forward(self, x, t):
            tt = t.reshape(-1).to(D64)
            m, S = model.q(tt)
            L = torch.linalg.cholesky(enc.transition(tt).noise_cov)
            return self.scale * (L[:, 0, 0] / S[:, 0, 0] * (x[:, 0] - m[:, 0]))[:, None]

    losses = {}
    for scale in (0.9, 1.0, 1.1):
        losses[scale] = float(decoder_dsm_loss(ScaledEps(scale), enc, data, seed=5).detach())
    assert losses[1.0] < losses[0.9] and losses[1.0] < losses[1.1]


def test_fit_sbvae_schedules_are_reproducible_and_validated():
    from lsbcore.marginals import eight_gaussians
    x = eight_gaussians(256, seed=0, radius=3.0)
    kw = dict(schedule="staged", steps=5, max_encoder_steps=40, plateau_window=10, batch_size=64,
              n_mc=64, width=16, seed=0, progress=False)
    r1, r2 = fit_sbvae(x, **kw), fit_sbvae(x, **kw)
    assert r1.prior_losses == r2.prior_losses and r1.losses == r2.losses
    assert r1.encoder_steps <= 40 and len(r1.losses) == 5 and r1.decoder_steps == 5
    assert r1.prior_losses[-1] < r1.prior_losses[0]           # the encoder learned to contract
    assert not any(p.requires_grad for p in r1.bridge.encoder.parameters())
    rj = fit_sbvae(x, schedule="joint", steps=5, batch_size=64, n_mc=64, width=16, seed=0, progress=False)
    assert rj.encoder_steps == 5 and len(rj.prior_losses) == 5
    with pytest.raises(ValueError, match="schedule"):
        fit_sbvae(x, schedule="alternating")
    with pytest.raises(ValueError, match="data"):
        fit_sbvae(torch.full((10, 2), float("nan")))


# ------------------------------------------------------------------------------- the boundary
def test_times_are_checked_at_every_verb():
    enc = LinearEncoder(2, c=-0.5)
    bridge = SBVAEBridge(enc, ExactEps(LinearSBVAE([0.0, 0.0], 1.0, F=-0.5), enc))
    x = torch.zeros(4, 2, dtype=D64)
    for bad in (1.5, -0.1, float("nan"), torch.full((4, 1), 1.5), torch.full((4,), -0.5)):
        for method in ("drift", "score", "backward_drift", "velocity"):
            with pytest.raises(ValueError, match="t"):
                getattr(bridge, method)(x, bad)
        with pytest.raises(ValueError, match="t"):
            enc.drift(x, bad)
    with pytest.raises(ValueError, match="t"):
        enc.transition(torch.tensor([-1.0], dtype=D64))
    model = LinearSBVAE(**CONFIGS["2d-controlled"])          # T = 2: times in [0, 2]
    model.q(torch.tensor([2.0], dtype=D64))
    for bad in ([2.5], [-0.1], [float("nan")]):
        with pytest.raises(ValueError, match="t"):
            model.q(bad)
        with pytest.raises(ValueError, match="t"):
            model.p(bad)
    with pytest.raises(ValueError, match="t_gap"):
        model.drift_matching(3.0)
    with pytest.raises(ValueError, match="t_gap"):
        model.dsm_loss(0.0)


def test_sbvae_bridge_face_and_start():
    enc = LinearEncoder(2, c=-0.5)
    bridge = SBVAEBridge(enc, lambda x, t: -x, param="score", prior_var=2.0)
    assert bridge.data_end == 0 and bridge.provides("start") and bridge.provides("velocity")
    z = bridge.start(20000, seed=1)
    assert z.shape == (20000, 2) and abs(float(z.var()) - 2.0) < 0.1
    for bad, exc in ((2**70, ValueError), ("a", TypeError), (1.5, TypeError)):
        with pytest.raises(exc, match="seed"):
            bridge.start(3, seed=bad)
    from lsbcore.sde import generate
    torch.testing.assert_close(bridge.sample(10, steps=5, seed=4),
                               generate(bridge, 10, steps=5, t_gap=1e-3, seed=4).x, rtol=0, atol=0)


@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(objective="elbo"), ValueError, "objective"),
    (dict(objective="path_kl", schedule="staged"), ValueError, "schedule"),
    (dict(encoder="mlp"), ValueError, "encoder"),
    (dict(batch_size=0), ValueError, "batch_size"),
    (dict(steps=0), ValueError, "steps"),
    (dict(lr_encoder=-1.0), ValueError, "lr_encoder"),
    (dict(lr_decoder=float("nan")), ValueError, "lr_decoder"),
    (dict(prior_var=0.0), ValueError, "prior_var"),
    (dict(seed=2**70), ValueError, "seed"),
    (dict(g=float("inf")), ValueError, "g"),
])
def test_fit_sbvae_rejects_bad_arguments(kwargs, exc, match):
    from lsbcore.marginals import eight_gaussians
    with pytest.raises(exc, match=match):
        fit_sbvae(eight_gaussians(32, seed=0), **kwargs)


@pytest.mark.parametrize("kwargs, err", [(dict(dim=0), "dim"), (dict(c=float("nan")), "c"), (dict(g=-1.0), "g")])
def test_linear_encoder_validates(kwargs, err):
    with pytest.raises((ValueError, TypeError), match=err):
        LinearEncoder(**{"dim": 2, **kwargs})
