"""VSDM (lsbcore.bridges.vsdm, lsbcore.bridges.vsdm_eval): exact transitions, the VP special case, Gaussian checks of the sampler."""
import math

import numpy as np
import pytest
import torch
from scipy.integrate import solve_ivp

from lsbcore.bridges.vsdm import VSDM, LinearForward, backward_score_loss, update_A
from lsbcore.bridges.vsdm_fit import fit_vsdm
from lsbcore.bridges.vsdm_eval import ou_gaussian_bridge_moments
from lsbcore.bridges.reference import VP
from lsbcore.sde import sample

D64 = torch.float64


def _forward(dim, s, seed=3, **kw):
    f = LinearForward(dim, seed=seed, **kw)
    with torch.no_grad():
        f.s.copy_(torch.as_tensor(s, dtype=D64))
    return f


@pytest.mark.parametrize("dim, s", [(2, [-0.6, 0.3]), (3, [0.4, -0.2, -0.8])])
def test_transitions_match_a_numerical_solution_of_the_lyapunov_ode(dim, s):
    f = _forward(dim, s, beta_max=10.0)
    D = f.D().detach().numpy()
    ts = np.array([0.05, 0.3, 0.7, 1.0])
    Phi, Sig = f.transition(torch.tensor(ts))

    def rhs(t, y):
        S, P = y[: dim * dim].reshape(dim, dim), y[dim * dim:].reshape(dim, dim)
        b = float(f.beta(torch.tensor(t, dtype=D64)))
        return np.concatenate([(b * (-0.5 * (D @ S + S @ D.T) + np.eye(dim))).ravel(), (-0.5 * b * D @ P).ravel()])

    y0 = np.concatenate([np.zeros(dim * dim), np.eye(dim).ravel()])
    sol = solve_ivp(rhs, (0, 1), y0, t_eval=ts, rtol=1e-11, atol=1e-13)
    np.testing.assert_allclose(Sig.detach().numpy(), sol.y[: dim * dim].T.reshape(-1, dim, dim), atol=1e-8)
    np.testing.assert_allclose(Phi.detach().numpy(), sol.y[dim * dim:].T.reshape(-1, dim, dim), atol=1e-8)


def test_A_zero_is_the_vp_sde():
    f = LinearForward(3, beta_min=0.1, beta_max=10.0, beta_r=1.7)
    assert torch.equal(f.A().detach(), torch.zeros(3, 3, dtype=D64))
    vp = VP(0.1, 10.0, 1.7)
    t = torch.tensor([0.01, 0.2, 0.6, 1.0], dtype=D64)
    Phi, Sig = f.transition(t)
    eye = torch.eye(3, dtype=D64)
    torch.testing.assert_close(Phi.detach(), vp.mean_coef(0.0, t)[:, None, None] * eye)
    torch.testing.assert_close(Sig.detach(), vp.transition_var(0.0, t)[:, None, None] * eye)
    x = torch.randn(5, 3)
    torch.testing.assert_close(VSDM(f, torch.nn.Identity()).drift(x, 0.4), vp.drift(x, 0.4))


def test_parametrisation_orthogonal_factors_and_bounded_s():
    f = _forward(3, [2.0, -3.0, 0.2], s_max=1.0)
    f.clamp_()
    assert float(f.s.detach().abs().max()) <= 1.0
    for W in (f.U.weight, f.V.weight):
        torch.testing.assert_close(W.T @ W, torch.eye(3, dtype=D64))
    torch.testing.assert_close(torch.linalg.svdvals(f.A()).sort().values,
                               f.s.detach().abs().sort().values)


def test_table_is_cached_and_refreshed_when_A_changes():
    f = LinearForward(2)
    t1 = f.table(1e-3, 16)
    assert f.table(1e-3, 16) is t1
    opt = torch.optim.SGD(f.parameters(), lr=0.1)
    f.A().sum().backward()
    opt.step()
    t2 = f.table(1e-3, 16)
    assert t2 is not t1
    torch.testing.assert_close(t2[1], f.transition(t2[0])[0].detach())


class ExactEps(torch.nn.Module):
    """ε*(x, t) = L_tᵀ C_t⁻¹ (x − Φ_t m): exact noise predictor for N(m, S) data (C_t = Φ S Φᵀ + Σ_t)."""

    def __init__(self, forward: LinearForward, m, S):
        super().__init__()
        self.f, self.m, self.S = forward, m, S
        self.dummy = torch.nn.Parameter(torch.zeros(1, dtype=D64))

    @torch.no_grad()
    def moments(self, t):
        Phi, Sig = self.f.transition(t)
        return Phi @ self.m, Phi @ self.S @ Phi.transpose(1, 2) + Sig, Sig

    def forward(self, x, t):
        tt = t.reshape(-1)[:1].to(D64) if t.stride(0) == 0 or t.numel() == 1 else t.reshape(-1).to(D64)
        with torch.no_grad():
            mu, C, Sig = self.moments(tt)
            L = torch.linalg.cholesky(Sig)
            W = torch.linalg.solve(C, L)       # C⁻¹ L, so ε = (x − μ)ᵀ C⁻¹ L = Lᵀ C⁻¹ (x − μ)
        return torch.einsum("bi,bij->bj", x.to(D64) - mu, W.expand(x.shape[0], -1, -1)).to(x.dtype)


M0 = torch.tensor([1.0, -2.0], dtype=D64)
S0 = torch.tensor([[0.6, 0.25], [0.25, 0.4]], dtype=D64)


def test_ou_gaussian_bridge_moments_endpoints_and_self_consistency():
    c, g = -2.0, 2.0
    # marginal of the OU process itself at t = 1
    m1 = math.exp(c) * M0
    S1 = math.exp(2 * c) * S0 + (1 - math.exp(2 * c)) * torch.eye(2, dtype=D64)
    t = torch.tensor([0.0, 0.3, 1.0], dtype=D64)
    mu, cov = ou_gaussian_bridge_moments(M0, S0, m1, S1, c, g, t)
    torch.testing.assert_close(mu[0], M0)
    torch.testing.assert_close(cov[2], S1)
    # the reference already joins its own marginals, so the bridge is the OU process
    e = math.exp(c * 0.3)
    torch.testing.assert_close(mu[1], e * M0)
    torch.testing.assert_close(cov[1], e**2 * S0 + (1 - e**2) * torch.eye(2, dtype=D64))
    with pytest.raises(ValueError, match="c"):
        ou_gaussian_bridge_moments(M0, S0, m1, S1, 0.0, g, t)


def test_pf_ode_marginals_match_the_gaussian_bridge_with_ou_reference():
    """β ≡ 4, A = 0: dX = −2X dt + 2 dW (docs/theory.md §3's OU check, c = −2, g = 2). The PF-ODE with the
    exact score, started from q_1, must reproduce the bridge's marginals at intermediate times.
    Tolerance: Monte Carlo SE of the mean ≈ √(0.6/n) ≈ 0.017 and of a covariance entry
    ≈ √(2/n)·0.6 ≈ 0.02 at n = 2000 (5 SE), plus Heun's error (steps of 0.01, negligible)."""
    f = LinearForward(2, beta_min=4.0, beta_max=4.0)
    bridge = VSDM(f, ExactEps(f, M0, S0), t_gap=1e-3)
    n = 2000
    _, C1, _ = ExactEps(f, M0, S0).moments(torch.ones(1, dtype=D64))
    m1 = math.exp(-2.0) * M0
    x1 = m1 + torch.randn(n, 2, generator=torch.Generator().manual_seed(0), dtype=D64) @ torch.linalg.cholesky(C1[0]).T
    res = sample(bridge, x1, method="ode", steps=100, t0=1e-3, t1=1.0, direction="backward", keep_traj=True)
    idx = [25, 50, 75, 100]
    times = res.times[idx]
    mu, cov = ou_gaussian_bridge_moments(M0, S0, m1, C1[0], -2.0, 2.0, times)
    for j, k in enumerate(idx):
        xk = res.traj[k]
        assert float((xk.mean(0) - mu[j]).abs().max()) < 5 * 0.017
        assert float((torch.cov(xk.T) - cov[j]).abs().max()) < 5 * 0.02


def test_learned_vsdm_pf_ode_matches_the_ou_gaussian_bridge():
    """The same check with a trained network (600 steps, tiny MLP): a learned score is only as good
    as its training, so the stated tolerance is looser: every mean and covariance entry within 0.15
    at t ∈ {0.25, 0.5, 0.75} and at the end (Monte Carlo SE ≈ 0.02 at n = 2000)."""
    data = (M0 + torch.randn(4000, 2, generator=torch.Generator().manual_seed(5), dtype=D64)
            @ torch.linalg.cholesky(S0).T).float()
    res = fit_vsdm(data, adaptive=False, steps=600, batch_size=256, beta_min=4.0, beta_max=4.0, width=32,
                     lr=3e-3, seed=0)
    bridge = res.bridge
    _, C1, _ = ExactEps(bridge.forward, M0, S0).moments(torch.ones(1, dtype=D64))
    m1 = math.exp(-2.0) * M0
    x1 = (m1 + torch.randn(2000, 2, generator=torch.Generator().manual_seed(6), dtype=D64)
          @ torch.linalg.cholesky(C1[0]).T).float()
    out = sample(bridge, x1, method="ode", steps=100, t0=1e-3, t1=1.0, direction="backward", keep_traj=True)
    idx = [25, 50, 75, 100]
    mu, cov = ou_gaussian_bridge_moments(M0, S0, m1, C1[0], -2.0, 2.0, out.times[idx].double())
    for j, k in enumerate(idx):
        xk = out.traj[k].double()
        assert float((xk.mean(0) - mu[j]).abs().max()) < 0.15
        assert float((torch.cov(xk.T) - cov[j]).abs().max()) < 0.15


@pytest.mark.parametrize("method", ["ode", "sde"])
def test_vsdm_with_nonzero_A_and_exact_score_recovers_the_data(method):
    """Any A: with the exact score, sampling from the adaptive prior... here from the exact q_1, gives
    back N(M0, S0) (SE ≈ 0.017 / 0.02 at n = 2000; allow 5 SE + the samplers' O(h) bias)."""
    f = _forward(2, [-0.5, 0.3], beta_max=10.0)
    net = ExactEps(f, M0, S0)
    bridge = VSDM(f, net, t_gap=1e-3)
    mu1, C1, _ = net.moments(torch.ones(1, dtype=D64))
    x1 = mu1[0] + torch.randn(2000, 2, generator=torch.Generator().manual_seed(1), dtype=D64) @ torch.linalg.cholesky(C1[0]).T
    x0 = sample(bridge, x1, method=method, steps=100, t0=1e-3, t1=1.0, direction="backward", seed=2).x
    tol_bias = 0.0 if method == "ode" else 0.05
    assert float((x0.mean(0) - M0).abs().max()) < 5 * 0.017 + tol_bias
    assert float((torch.cov(x0.T) - S0).abs().max()) < 5 * 0.02 + tol_bias


def test_bridge_face_velocity_is_half_drift_minus_backward_drift():
    f = _forward(2, [-0.5, 0.3])
    bridge = VSDM(f, ExactEps(f, M0, S0))
    x = torch.randn(7, 2, dtype=D64)
    t = torch.full((7, 1), 0.4, dtype=D64)
    torch.testing.assert_close(bridge.velocity(x, t), 0.5 * (bridge.drift(x, t) - bridge.backward_drift(x, t)))
    torch.testing.assert_close(bridge.diffusion(torch.tensor(0.4)), f.beta(torch.tensor(0.4)).sqrt())


def test_backward_score_loss_is_minimal_at_the_exact_noise_predictor():
    f = _forward(2, [-0.5, 0.3])
    data = M0 + torch.randn(4000, 2, generator=torch.Generator().manual_seed(0), dtype=D64) @ torch.linalg.cholesky(S0).T
    exact = ExactEps(f, M0, S0)

    class PerRow(torch.nn.Module):
        def __init__(self, scale):
            super().__init__()
            self.scale = scale

        def forward(self, x, t):
            mu, C, Sig = exact.moments(t.reshape(-1).to(D64))
            W = torch.linalg.solve(C, torch.linalg.cholesky(Sig))
            return self.scale * torch.einsum("bi,bij->bj", x - mu, W)

    loss = {s: float(backward_score_loss(f, PerRow(s), data, seed=4)) for s in (0.9, 1.0, 1.1)}
    assert loss[1.0] < loss[0.9] and loss[1.0] < loss[1.1]


def test_update_A_moves_A_keeps_it_valid_and_is_seeded():
    def run():
        f = LinearForward(2, seed=0)
        bridge = VSDM(f, ExactEps(f, M0, S0))
        opt = torch.optim.Adam(f.parameters(), lr=0.05)
        vals = [update_A(bridge, opt, n=64, steps=5, seed=7) for _ in range(3)]
        return f, vals

    f1, v1 = run()
    f2, v2 = run()
    assert v1 == v2
    assert float(f1.A().detach().abs().max()) > 0
    assert float(f1.s.detach().abs().max()) <= f1.s_max
    torch.testing.assert_close(f1.U.weight.T @ f1.U.weight, torch.eye(2, dtype=D64))
    with pytest.raises(TypeError, match="bridge"):
        update_A(object(), torch.optim.SGD([f1.s], lr=0.1))


def test_fit_vsdm_smoke_and_vp_keeps_A_zero():
    x = M0.float() + torch.randn(256, 2, generator=torch.Generator().manual_seed(0)) * 0.5
    vp = fit_vsdm(x, adaptive=False, steps=10, batch_size=32, width=16, seed=0)
    assert torch.equal(vp.bridge.forward.A(), torch.zeros(2, 2, dtype=D64))
    ad = fit_vsdm(x, adaptive=True, steps=10, batch_size=32, width=16, warmup=2, a_every=4, a_paths=16,
                    a_steps=4, seed=0)
    assert len(ad.A_history) == 1 + 2                # updates at steps 2 and 6
    assert float(ad.bridge.forward.A().abs().max()) > 0
    out = ad.bridge.sample(50, method="ode", steps=4)
    assert out.x.shape == (50, 2) and out.nfe == 8
    with pytest.raises(ValueError, match="data"):
        fit_vsdm(torch.full((4, 2), float("nan")))
    with pytest.raises(ValueError, match="steps"):
        fit_vsdm(x, steps=0)


# ------------------------------------------------------------------------------- the boundary
def _bad_times(n):
    return (1.5, -0.1, float("nan"), torch.full((n, 1), 1.5), torch.full((n,), -0.2), torch.full((n, 1), float("inf")))


def test_every_verb_that_takes_a_time_rejects_times_outside_0_1():
    f = _forward(2, [-0.5, 0.3])
    bridge = VSDM(f, ExactEps(f, M0, S0))
    x = torch.randn(4, 2, dtype=D64)
    for bad in _bad_times(4):
        with pytest.raises(ValueError, match="t"):
            f.sample_xt(x, bad)
        for method in ("drift", "score", "backward_drift", "velocity"):
            with pytest.raises(ValueError, match="t"):
                getattr(bridge, method)(x, bad)
        with pytest.raises(ValueError, match="t"):
            bridge.diffusion(bad)
    with pytest.raises(ValueError, match="t"):
        f.transition(torch.tensor([0.5, 1.5], dtype=D64))
    with pytest.raises(ValueError, match="t must be > 0"):
        f.sample_xt(x, 0.0)
    with pytest.raises(ValueError, match="t"):
        ou_gaussian_bridge_moments(M0, S0, M0, S0, -2.0, 2.0, torch.tensor([[1.5]], dtype=D64))
    with pytest.raises(ValueError, match="rows"):
        f.sample_xt(x, torch.full((3, 1), 0.5))
    xt, eps, L = f.sample_xt(x, torch.full((4, 1), 0.5), seed=1)          # (batch, 1) is accepted
    torch.testing.assert_close(xt, f.sample_xt(x, torch.full((4,), 0.5), seed=1)[0])


@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(dim=0), ValueError, "dim"), (dict(dim=2.5), TypeError, "dim"),
    (dict(beta_min=float("nan")), ValueError, "beta_min"), (dict(beta_max=float("inf")), ValueError, "beta_max"),
    (dict(beta_min=-1.0), ValueError, "beta_min"), (dict(beta_min=5.0, beta_max=1.0), ValueError, "beta_max"),
    (dict(beta_r="fast"), TypeError, "beta_r"), (dict(s_max=0.0), ValueError, "s_max"),
    (dict(seed=2**70), ValueError, "seed"), (dict(seed="a"), TypeError, "seed"), (dict(seed=1.5), TypeError, "seed"),
])
def test_linear_forward_validates_its_numbers(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        LinearForward(**{"dim": 2, **kwargs})


def test_vsdm_face_data_at_zero_start_from_the_prior_and_validation():
    f = _forward(2, [-0.5, 0.3])
    bridge = VSDM(f, ExactEps(f, M0, S0), t_gap=0.01)
    assert bridge.data_end == 0 and bridge.provides("start")
    z = bridge.start(4000, seed=3)
    assert z.dtype == D64 and z.shape == (4000, 2)
    torch.testing.assert_close(torch.cov(z.T), f.prior_cov().detach(), atol=0.15, rtol=0)
    from lsbcore.sde import generate
    torch.testing.assert_close(bridge.sample(20, steps=4, seed=5).x,
                               generate(bridge, 20, method="ode", steps=4, t_gap=0.01, seed=5).x, rtol=0, atol=0)
    for bad, exc in ((0.0, ValueError), (1.0, ValueError), (float("nan"), ValueError), ("x", TypeError)):
        with pytest.raises(exc, match="t_gap"):
            VSDM(f, ExactEps(f, M0, S0), t_gap=bad)
    with pytest.raises(ValueError, match="seed"):
        bridge.start(3, seed=2**70)
    with pytest.raises(TypeError, match="seed"):
        bridge.start(3, seed="zero")
    with pytest.raises(ValueError, match="n"):
        bridge.start(0)
    x = M0.float() + torch.randn(64, 2, generator=torch.Generator().manual_seed(0)) * 0.5
    for kw, exc, match in ((dict(batch_size=0), ValueError, "batch_size"), (dict(t_gap=-1.0), ValueError, "t_gap"),
                           (dict(a_lr=-0.1), ValueError, "a_lr"), (dict(seed=2**70), ValueError, "seed"),
                           (dict(zeta=float("nan")), ValueError, "zeta"), (dict(a_paths=0), ValueError, "a_paths")):
        with pytest.raises(exc, match=match):
            fit_vsdm(x, steps=2, **kw)


def test_fit_vsdm_resumes_bit_exact_after_a_crash(tmp_path, monkeypatch):
    """A run that dies after its step-30 checkpoint and is rerun equals an uninterrupted one: the network,
    A, both optimizers and both generators come back from the checkpoint (train.fit's extra_state)."""
    import lsbcore.bridges.vsdm as V
    import lsbcore.bridges.vsdm_fit as F

    x = torch.randn(256, 2, generator=torch.Generator().manual_seed(0)) * torch.tensor([1.0, 3.0])
    kw = dict(steps=60, batch_size=32, warmup=10, a_every=10, a_paths=16, a_steps=4, width=16, progress=False)
    full = F.fit_vsdm(x, **kw)
    ck = tmp_path / "vsdm.pt"
    real, calls = V.backward_score_loss, [0]

    def dying(*args, **kwargs):
        calls[0] += 1
        if calls[0] > 45:
            raise KeyboardInterrupt("simulated crash")
        return real(*args, **kwargs)

    monkeypatch.setattr(V, "backward_score_loss", dying)
    with pytest.raises(KeyboardInterrupt):
        F.fit_vsdm(x, checkpoint=ck, checkpoint_every=30, **kw)
    monkeypatch.setattr(V, "backward_score_loss", real)
    resumed = F.fit_vsdm(x, checkpoint=ck, checkpoint_every=30, **kw)
    assert resumed.losses == full.losses
    assert len(resumed.A_history) == len(full.A_history)
    torch.testing.assert_close(resumed.A_history[-1], full.A_history[-1], rtol=0, atol=0)
    for p, q in zip(resumed.bridge.net.parameters(), full.bridge.net.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=0)
