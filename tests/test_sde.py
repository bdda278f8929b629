"""The sampler: Euler–Maruyama against its exact moment recursion and the continuous closed forms
(weak order 1), Heun at order 2, both directions, NFE, the time convention, devices, validation."""
import math

import numpy as np
import pytest
import torch

from lsbcore.bridge import Bridge
from lsbcore.bridges.reference import OU, VP, BrownianBridge
from lsbcore.sde import SampleResult, sample, sample_ode, sample_sde


class OUFlow(Bridge):
    """OU reference dX = cX dt + g dW started from N(0, var0): marginals N(0, s_t), s_t closed form,
    so the backward drift (Nelson) and the probability-flow velocity are closed form too."""

    def __init__(self, c, g, var0):
        self.ou, self.c, self.sigma, self.var0 = OU(c, g), c, g, var0

    def s(self, t):
        t = torch.as_tensor(t, dtype=torch.float64)
        return self.ou.mean_coef(torch.zeros_like(t), t) ** 2 * self.var0 + self.ou.transition_var(torch.zeros_like(t), t)

    def drift(self, x, t):
        return self.c * x

    def backward_drift(self, x, t):  # g² ∇log ρ_t − drift
        return -self.sigma**2 * x / self.s(t).to(x) - self.c * x


def _f(v):
    return float(v)


def test_pinned_bridge_matches_em_recursion_and_closed_form():
    # EM on drift (x1 − x)/(1 − t) has mean recursion exact and variance recursion
    # v_{k+1} = (1 − h/(1 − t_k))² v_k + σ² h; the sampler must match it to Monte-Carlo error,
    # and the recursion is within O(h) of the bridge variance σ² t(1 − t).
    sigma, n, steps = 0.8, 40_000, 20
    b = BrownianBridge([2.0], sigma=sigma, x0=[-1.0])
    r = sample_sde(b, torch.full((n, 1), -1.0, dtype=torch.float64), steps=steps, keep_traj=True, seed=0)
    h, v = 1.0 / steps, [0.0]
    for k in range(steps):
        v.append((1 - h / (1 - k * h)) ** 2 * v[-1] + sigma**2 * h)
    for k in (5, 10, 15):
        tk = k * h
        xs = r.traj[k, :, 0]
        assert _f(r.times[k]) == pytest.approx(tk)
        assert abs(_f(xs.mean()) - (-1.0 + 3.0 * tk)) < 4 * math.sqrt(v[k] / n)
        assert abs(_f(xs.var()) - v[k]) < 4 * v[k] * math.sqrt(2 / n)
        assert abs(v[k] - sigma**2 * tk * (1 - tk)) < 2 * sigma**2 * h


def test_backward_direction_reaches_the_start():
    # the pinned bridge run backward from x1 with backward_drift (x0 − x)/t has the same marginals
    sigma, n = 0.5, 40_000
    b = BrownianBridge([1.0, 2.0], sigma=sigma, x0=[0.0, 0.0])
    r = sample(b, torch.tensor([[1.0, 2.0]]).expand(n, 2), steps=200, direction="backward", keep_traj=True, seed=1)
    assert _f(r.times[0]) == 1.0 and _f(r.times[-1]) == 0.0
    k = 50  # t = 0.75
    var = sigma**2 * 0.75 * 0.25
    assert torch.allclose(r.traj[k].mean(0), torch.tensor([0.75, 1.5]), atol=4 * math.sqrt(var / n))
    assert torch.allclose(r.traj[k].var(0), torch.full((2,), var), atol=4 * var * math.sqrt(2 / n) + 2 * sigma**2 / 200)
    assert r.x.abs().max() < 4 * sigma * math.sqrt(1 / 200) * 3  # lands at x0 = 0 up to one step of noise


def test_euler_maruyama_weak_error_is_first_order():
    # OU c = −2, g = 2 from x0 = 10: E X_1 = 10 e^{−2}; EM's mean is 10 (1 − 2h)^n, error ∝ h.
    # x0 large makes the bias dominate the Monte-Carlo error (std ≈ 1/√n ≈ 0.004 ≪ bias ≥ 0.08).
    ou, n = OU(-2.0, 2.0), 60_000
    steps = [4, 8, 16, 32]
    err = []
    for s in steps:
        x = sample(ou, torch.full((n, 1), 10.0, dtype=torch.float64), steps=s, seed=s).x
        err.append(abs(_f(x.mean()) - 10 * math.exp(-2.0)))
    slope = np.polyfit(np.log(1 / np.array(steps)), np.log(err), 1)[0]
    assert 0.85 < slope < 1.15, (err, slope)
    assert all(e1 > e2 for e1, e2 in zip(err, err[1:]))


def test_heun_probability_flow_is_second_order_and_exact_in_the_limit():
    # the PF-ODE of a Gaussian flow is linear, x_1 = Φ x_0; Φ² var0 must equal s_1 (closed form)
    flow = OUFlow(-2.0, 2.0, var0=0.25)
    target = _f(flow.s(1.0))
    err = []
    steps = (20, 40, 80, 160)
    for s in steps:
        r = sample_ode(flow, torch.tensor([[1.0]], dtype=torch.float64), steps=s)
        assert r.nfe == 2 * s and r.traj is None
        err.append(abs(_f(r.x) ** 2 * 0.25 - target))
    assert err[-1] < 1e-3 * target
    slope = np.polyfit(np.log(1 / np.array(steps)), np.log(err), 1)[0]
    assert 1.8 < slope < 2.2, (err, slope)
    # backward ODE undoes the forward one
    back = sample_ode(flow, r.x, steps=160, direction="backward").x
    assert abs(_f(back) - 1.0) < 1e-4


def test_backward_sde_with_nelson_drift_recovers_the_initial_marginal():
    flow, n = OUFlow(-2.0, 2.0, var0=0.25), 40_000
    s1 = _f(flow.s(1.0))
    x1 = torch.randn(n, 2, generator=torch.Generator().manual_seed(5), dtype=torch.float64) * math.sqrt(s1)
    x0 = sample_sde(flow, x1, steps=200, direction="backward", seed=6).x
    assert abs(_f(x0.var()) - 0.25) < 4 * 0.25 * math.sqrt(2 / (2 * n)) + 0.01  # + O(h) bias


def test_vp_forward_reaches_its_closed_form_marginal():
    vp, n = VP(0.1, 10.0, 1.7), 40_000
    x = sample_sde(vp, torch.full((n, 1), 3.0), steps=200, t1=0.5, seed=2).x
    a = _f(vp.mean_coef(0.0, 0.5))
    v = 1 - a**2
    assert abs(_f(x.mean()) - 3 * a) < 4 * math.sqrt(v / n) + 0.01
    assert abs(_f(x.var()) - v) < 4 * v * math.sqrt(2 / n) + 0.01


class Spy(Bridge):
    """Counts calls and records what t looks like."""

    sigma = 0.3

    def __init__(self):
        self.calls, self.ts = 0, []

    def drift(self, x, t):
        self.calls += 1
        self.ts.append(t)
        return -x

    def backward_drift(self, x, t):
        return x

    def velocity(self, x, t):
        self.calls += 1
        return -x


@pytest.mark.parametrize("method", ["sde", "ode"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_nfe_time_convention_and_shapes(method, dtype):
    spy, x = Spy(), torch.randn(7, 3, dtype=dtype)
    r = sample(spy, x, method=method, steps=6, t0=0.1, t1=0.7, keep_traj=True)
    assert isinstance(r, SampleResult)
    assert r.nfe == spy.calls == (6 if method == "sde" else 12)
    assert r.traj.shape == (7, 7, 3) and r.x.dtype == dtype
    torch.testing.assert_close(r.traj[0], x)
    torch.testing.assert_close(r.traj[-1], r.x)
    torch.testing.assert_close(r.times, torch.linspace(0.1, 0.7, 7, dtype=dtype))
    if method == "sde":
        t = spy.ts[3]
        assert t.shape == (7, 1) and t.dtype == dtype and t.stride(0) == 0  # expanded, not copied
        assert torch.all(t == r.times[3])


def test_seed_reproducibility():
    b = BrownianBridge([0.0, 1.0], sigma=1.0)
    x = torch.zeros(100, 2)
    a = sample_sde(b, x, steps=10, t1=0.9, seed=3).x
    torch.testing.assert_close(a, sample_sde(b, x, steps=10, t1=0.9, seed=3).x)
    torch.testing.assert_close(a, sample_sde(b, x, steps=10, t1=0.9, seed=torch.Generator().manual_seed(3)).x)
    assert not torch.equal(a, sample_sde(b, x, steps=10, t1=0.9, seed=4).x)


def test_gradients_flow_through_the_sampler():
    flow = OUFlow(-2.0, 2.0, var0=0.25)
    x0 = torch.tensor([[1.0]], dtype=torch.float64, requires_grad=True)
    x1 = sample_ode(flow, x0, steps=10).x
    x1.sum().backward()
    torch.testing.assert_close(x0.grad, x1.detach())  # linear flow: dx1/dx0 = Φ = x1 / x0


def test_duck_typed_bridge_without_base_class():
    class Drift:
        sigma = 0.0

        def drift(self, x, t):
            return torch.ones_like(x)

    r = sample_sde(Drift(), torch.zeros(4, 2), steps=5)
    torch.testing.assert_close(r.x, torch.ones(4, 2))


def test_argument_validation():
    b, x = Spy(), torch.zeros(3, 2)
    with pytest.raises(ValueError, match="steps"):
        sample(b, x, steps=0)
    with pytest.raises(TypeError, match="steps"):
        sample(b, x, steps=2.5)
    with pytest.raises(ValueError, match="method"):
        sample(b, x, method="rk4")
    with pytest.raises(ValueError, match="direction"):
        sample(b, x, direction="up")
    with pytest.raises(ValueError, match="t0 must be < t1"):
        sample(b, x, t0=0.5, t1=0.5)
    with pytest.raises(ValueError, match="t1"):
        sample(b, x, t1=1.5)
    with pytest.raises(ValueError, match="x contains NaN"):
        sample(b, torch.full((3, 2), float("nan")))
    with pytest.raises(TypeError, match="backward_drift"):
        sample(object(), x, direction="backward")
    with pytest.raises(TypeError, match="seed"):
        sample(b, x, seed="x")
    with pytest.raises(ValueError, match="singular"):  # Heun would evaluate (x1 − x)/(1 − t) at t = 1
        sample_ode(BrownianBridge([1.0, 1.0], x0=[0.0, 0.0]), torch.ones(3, 2) * 0.5, steps=4, t0=0.1)
    with pytest.raises(FloatingPointError, match="NaN/inf"):   # a drift that blows up is caught after the loop
        sample(Spy(), torch.full((3, 2), 3e38), steps=2, t1=0.1, method="ode", direction="backward")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_runs_on_cuda():
    dev = torch.device("cuda")
    b = BrownianBridge(torch.tensor([1.0, 2.0], device=dev), sigma=0.5, x0=torch.zeros(2, device=dev))
    r = sample(b, torch.zeros(20_000, 2, device=dev), steps=50, keep_traj=True, seed=0)
    assert r.x.device.type == "cuda" and r.traj.device.type == "cuda" and r.times.device.type == "cuda"
    var = 0.25 * 0.5 * 0.5
    assert abs(float(r.traj[25].var(0).mean()) - var) < 4 * var * math.sqrt(1 / 20_000) + 0.25 / 50
    ro = sample_ode(OUFlow(-2.0, 2.0, 0.25), torch.ones(5, 1, device=dev, dtype=torch.float64), steps=20)
    assert ro.x.device.type == "cuda"


def _cov_tol(S, n, h):
    # sd of a sample covariance entry √((S_ii S_jj + S_ij²)/n), 4 sd, plus an O(h) discretisation allowance
    d = torch.diagonal(S)
    return 4 * torch.sqrt((d[:, None] * d[None, :] + S**2) / n) + 2 * h * S.abs().max()


@pytest.mark.parametrize("method", ["sde", "ode"])
def test_gaussian_bridge_marginals_match_closed_form(method):
    # the closed-form Gaussian Schrödinger bridge (theory.md §2): sampled Σ_t must match its formula
    GaussianBridge = pytest.importorskip("lsbcore.schrodinger.gaussian").GaussianBridge
    S0 = torch.tensor([[1.0, 0.3], [0.3, 0.5]], dtype=torch.float64)
    S1 = torch.tensor([[0.6, -0.2], [-0.2, 1.5]], dtype=torch.float64)
    gb = GaussianBridge(torch.tensor([-1.0, 0.0]), S0, torch.tensor([2.0, 1.0]), S1, sigma=0.8)
    n, steps = 10_000, 50
    x0 = torch.randn(n, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64) @ torch.linalg.cholesky(S0).T
    x0 = x0 + torch.tensor([-1.0, 0.0], dtype=torch.float64)
    r = sample(gb, x0, method=method, steps=steps, keep_traj=True, seed=1)
    for k in (25, 50):
        t = k / steps
        xs = r.traj[k]
        S = gb.cov(t)
        assert torch.allclose(xs.mean(0), gb.mean(t), atol=float(4 * torch.sqrt(torch.diagonal(S).max() / n) + 0.02))
        assert (torch.cov(xs.T) - S).abs().le(_cov_tol(S, n, 1 / steps)).all(), (t, torch.cov(xs.T), S)
