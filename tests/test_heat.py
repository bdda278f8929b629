"""The latent bridges (bridges/heat.py): drifts against closed forms and autograd, the two-stage sampler."""
import math

import pytest
import torch

from lsbcore import autoencoder as A
from lsbcore import latent as L
from lsbcore.bridges import heat as H
from lsbcore.bridges.follmer import gaussian_follmer_drift


# ----------------------------------------------------------------------------- latent drifts
def _mixture_score(x, t, points, sigma):
    """Independent implementation: σ² ∇ log Σ_i N(x; z_i, σ²(1−t)) by autograd."""
    x = x.clone().requires_grad_(True)
    var = sigma**2 * (1 - t)
    logp = torch.logsumexp(-((x[:, None] - points[None]) ** 2).sum(-1) / (2 * var), 1).sum()
    (grad,) = torch.autograd.grad(logp, x)
    return sigma**2 * grad


@pytest.mark.parametrize("t", [0.0, 0.5, 0.95])
@pytest.mark.parametrize("sigma", [0.5, 1.0, 2.0])
def test_heat_flow_drift_is_the_score_of_the_smoothed_codes(t, sigma):
    gen = torch.Generator().manual_seed(0)
    points = torch.randn(7, 3, generator=gen, dtype=torch.float64)
    x = 2 * torch.randn(11, 3, generator=gen, dtype=torch.float64)
    torch.testing.assert_close(H.heat_flow_drift(x, t, points, sigma), _mixture_score(x, t, points, sigma))


def test_heat_flow_drift_for_one_code_is_the_brownian_bridge_drift():
    m = torch.tensor([[1.0, -2.0]], dtype=torch.float64)
    x = torch.randn(5, 2, dtype=torch.float64)
    torch.testing.assert_close(H.heat_flow_drift(x, 0.3, m, 1.7), (m - x) / 0.7)
    torch.testing.assert_close(H.smoothed_follmer_drift(x, 0.3, m, 1.7), m.expand(5, 2))


def test_drifts_for_a_gaussian_cloud_match_the_closed_forms():
    """p̂ = many samples of N(m, s²I): the heat-flow drift → −σ²(z − m)/(s² + σ²(1−t)) and the
    smoothed Föllmer drift → the SF drift to N(m, (s² + σ²) I). Tolerance: 5 standard errors of the
    self-normalised weighted mean, computed from the weights themselves."""
    gen = torch.Generator().manual_seed(1)
    n, d, s, sigma, t = 20000, 2, 0.8, 1.0, 0.5
    m = torch.tensor([0.5, -0.3], dtype=torch.float64)
    pts = m + s * torch.randn(n, d, generator=gen, dtype=torch.float64)
    x = m + 0.7 * torch.randn(8, d, generator=gen, dtype=torch.float64)
    var = sigma**2 * (1 - t)
    w = torch.softmax(-((x[:, None] - pts[None]) ** 2).sum(-1) / (2 * var), 1)
    se = torch.sqrt((w**2) @ (pts**2) - ((w**2).sum(1, keepdim=True)) * (w @ pts) ** 2).clamp_min(0)
    closed = -sigma**2 * (x - m) / (s**2 + var)
    err = (H.heat_flow_drift(x, t, pts, sigma) - closed).abs()
    assert bool((err <= 5 * se / (1 - t) + 1e-9).all()), (err, se)
    sf = gaussian_follmer_drift(x, t, m, math.sqrt(s**2 + sigma**2), sigma)
    wf = torch.softmax((x @ pts.T - 0.5 * t * (pts**2).sum(-1)) / sigma**2, 1)
    se_f = torch.sqrt((wf**2) @ (pts**2) - (wf**2).sum(1, keepdim=True) * (wf @ pts) ** 2).clamp_min(0)
    assert bool(((H.smoothed_follmer_drift(x, t, pts, sigma) - sf).abs() <= 5 * se_f + 1e-9).all())


def test_fit_heat_flow_runs_through_the_shared_loop():
    pts = torch.randn(64, 2, generator=torch.Generator().manual_seed(0))
    bridge = H.fit_heat_flow(pts, 1.0, steps=10, batch_size=64, progress=False)
    assert len(bridge.history) == 10
    assert bridge.drift(pts[:4], torch.full((4, 1), 0.5)).shape == (4, 2)


def test_fit_heat_flow_time_power_draws_its_times_from_sample_times(monkeypatch):
    """time_power reaches the shared time sampler; 1 (the default) is the uniform law, bit for bit;
    a power below 1 or a non-number is refused, naming the argument."""
    import lsbcore.bridges.matching as M

    pts = torch.randn(64, 2, generator=torch.Generator().manual_seed(0))
    ref = H.fit_heat_flow(pts, 1.0, steps=5, batch_size=32, progress=False)
    assert H.fit_heat_flow(pts, 1.0, steps=5, batch_size=32, progress=False, time_power=1.0).history == ref.history
    seen = []
    real = M.sample_times

    def spy(n, direction, t_gap, like, gen, time_power=1.0):
        seen.append((direction, t_gap, time_power))
        return real(n, direction, t_gap, like, gen, time_power)

    monkeypatch.setattr(H, "sample_times", spy)
    packed = H.fit_heat_flow(pts, 1.0, t_gap=0.05, steps=5, batch_size=32, progress=False, time_power=2.0)
    assert seen == [("forward", 0.05, 2.0)] * 5 and packed.history != ref.history
    for bad, err in ((0.5, ValueError), (float("inf"), ValueError), (None, TypeError)):
        with pytest.raises(err, match="time_power"):
            H.fit_heat_flow(pts, 1.0, steps=1, progress=False, time_power=bad)


def test_two_stage_sampler_lands_on_the_smoothed_then_the_clean_codes():
    """1-D codes p̂ (300 Gaussian points): the Föllmer stage ends at p̂ ∗ N(0, σ²), variance
    var(p̂) + σ²; the heat flow stopped at 1 − δ at p̂ ∗ N(0, σ²δ), variance var(p̂) + σ²δ.
    Tolerance: 4 standard errors of a variance from n draws (√(2/n) relative) plus 0.05 for Euler."""
    gen = torch.Generator().manual_seed(2)
    sigma, delta, n = 1.0, 0.05, 1200
    pts = 0.5 * torch.randn(300, 1, generator=gen, dtype=torch.float64)
    v = float(pts.var(unbiased=False))
    tol = 4 * math.sqrt(2 / n) + 0.05
    x0 = H.HeatFlowBridge(pts, sigma).start(n, how="follmer", seed=0, follmer_steps=40)
    assert abs(float(x0.var()) / (v + sigma**2) - 1) < tol
    out = L.sample_codes("heat-follmer", pts, n, sigma=sigma, t_gap=delta, steps=80, seed=0).x
    assert abs(float(out.var()) / (v + sigma**2 * delta) - 1) < tol
    assert abs(float(out.mean() - pts.mean())) < 4 * math.sqrt((v + sigma**2 * delta) / n) + 0.02


def test_bad_bridge_arguments():
    pts = torch.randn(10, 2)
    with pytest.raises(ValueError, match="method"):
        L.sample_codes("diffusion", pts, 5)
    with pytest.raises(ValueError, match="t_gap"):
        L.sample_codes("follmer", pts, 5, t_gap=1.0)
    with pytest.raises(ValueError, match="sigma"):
        H.heat_flow_drift(pts, 0.5, pts, sigma=0.0)
    with pytest.raises(ValueError, match="points must have dimension 2"):
        H.heat_flow_drift(pts, 0.5, torch.randn(4, 3))
    with pytest.raises(ValueError, match="t must lie in"):
        H.smoothed_follmer_drift(pts, 1.5, pts)
    with pytest.raises(ValueError, match="how"):
        H.HeatFlowBridge(pts).start(3, how="uniform")
    with pytest.raises(ValueError, match="kind"):
        A.Autoencoder(2, kind="gan")


# ----------------------------------------------------------------------------- the Bridge face
def _mixture_log_density_grad(x, centres, var):
    """∇ log Σ_i N(x; c_i, var I) by autograd (centres (n, d), var a number)."""
    x = x.clone().requires_grad_(True)
    logp = torch.logsumexp(-((x[:, None] - centres[None]) ** 2).sum(-1) / (2 * var), 1).sum()
    return torch.autograd.grad(logp, x)[0]


@pytest.mark.parametrize("t", [0.2, 0.6])
def test_scores_are_the_gradients_of_the_mixture_marginals(t):
    """SmoothedFollmer: ρ_t = mean_i N(t z_i, σ²t); EmpiricalFollmer: ρ_t = mean_i N(t z_i, σ²t(1−t))."""
    from lsbcore.bridges.follmer import EmpiricalFollmer

    gen = torch.Generator().manual_seed(5)
    pts = torch.randn(12, 2, generator=gen, dtype=torch.float64)
    x = torch.randn(6, 2, generator=gen, dtype=torch.float64)
    sigma = 0.8
    torch.testing.assert_close(H.SmoothedFollmer(pts, sigma).score(x, t),
                               _mixture_log_density_grad(x, t * pts, sigma**2 * t))
    torch.testing.assert_close(EmpiricalFollmer(pts, sigma).score(x, t),
                               _mixture_log_density_grad(x, t * pts, sigma**2 * t * (1 - t)))
    heat = H.HeatFlowBridge(pts, sigma)
    torch.testing.assert_close(heat.score(x, t), _mixture_log_density_grad(x, pts, sigma**2 * (1 - t)))
    torch.testing.assert_close(heat.velocity(x, t), 0.5 * heat.drift(x, t))


def test_follmer_type_bridges_start_at_the_origin_and_have_no_backward_drift():
    from lsbcore import MethodUnavailable
    from lsbcore.bridges.follmer import EmpiricalFollmer

    pts = torch.randn(5, 3, dtype=torch.float64)
    for bridge in (H.SmoothedFollmer(pts), EmpiricalFollmer(pts)):
        assert bridge.data_end == 1
        assert torch.equal(bridge.start(4, seed=0), torch.zeros(4, 3, dtype=torch.float64))
        for part in ("backward_drift", "velocity"):
            with pytest.raises(MethodUnavailable, match="point mass"):
                getattr(bridge, part)(pts, 0.5)
    heat = H.HeatFlowBridge(pts)
    assert heat.data_end == 1 and heat.provides("backward_drift") and heat.provides("velocity")
    assert heat.start(6, seed=1).shape == (6, 3)
    torch.testing.assert_close(heat.start(6, seed=1, how="exact"), heat.start(6, seed=1, how="exact"))


@pytest.mark.parametrize("t", [1.5, -0.1, float("nan")])
def test_time_is_checked_in_every_form(t):
    """A (batch, 1) tensor t outside [0, 1] is refused like a float t (it used to slip through)."""
    from lsbcore.bridges.follmer import EmpiricalFollmer, empirical_follmer_drift

    pts = torch.randn(5, 2)
    x = torch.randn(4, 2)
    column = torch.full((4, 1), t)
    calls = [lambda tt: H.heat_flow_drift(x, tt, pts), lambda tt: H.smoothed_follmer_drift(x, tt, pts),
             lambda tt: H.HeatFlowBridge(pts).drift(x, tt), lambda tt: H.SmoothedFollmer(pts).drift(x, tt),
             lambda tt: EmpiricalFollmer(pts).drift(x, tt), lambda tt: empirical_follmer_drift(x, tt, pts)]
    for call in calls:
        for tt in (t, column):
            with pytest.raises(ValueError, match="t "):
                call(tt)
