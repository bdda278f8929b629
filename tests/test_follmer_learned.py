"""The learned Föllmer sampler and its path weights against known answers (closed forms, quadrature, Z)."""
import math

import pytest
import torch

from lsbcore.bridges.densities import GaussianMixtureTarget, NealsFunnel, grad_log_density
from lsbcore.bridges.follmer import FollmerMC, gaussian_follmer_drift
from lsbcore.bridges.follmer_learned import (LearnedFollmer, estimate_log_z, fit_follmer_sampler, kl_loss,
                                             log_variance_loss, path_log_weights, summarize_weights)
from lsbcore.marginals import Gaussian
from lsbcore.nets import TimeMLP
from lsbcore.sde import sample

GMM = GaussianMixtureTarget([0.3, 0.3, 0.4], [[-2.0, 0.0], [2.0, 0.0], [0.0, 2.5]], [0.5, 0.5, 0.6], log_z=2.0)


def _gaussian_case(sigma, m, s, c):
    """log ρ = log N(m, s²I) + c (so log Z = c) and its exact Föllmer drift."""
    m = torch.tensor(m, dtype=torch.float64)
    gauss = Gaussian(m, s**2)
    return (lambda x: gauss.log_prob(x) + c), (lambda x, t: gaussian_follmer_drift(x, t, m, s, sigma))


# ---------------------------------------------------------------------------------- (a) exact drift
@pytest.mark.parametrize("sigma, m, s", [(1.0, [1.0, -0.5], 0.6), (0.7, [0.5, 0.5], 1.2)])
def test_exact_follmer_drift_gives_nearly_constant_weights(sigma, m, s):
    """At u = b the weight is Z on every path in continuous time. On the Euler grid Var log w is the
    discretisation's O(h) (the drift varies by O(√h) within a step: a per-step KL of O(h²)), so
    doubling K halves it (measured: Var·K ≈ 1.1–1.2 for K = 25..400), ESS/n → 1, and the estimate is
    consistent at every K: its only error is Monte Carlo, the delta-method s.e. √((1/ESS − 1)/n)."""
    c = 1.3
    ld, u = _gaussian_case(sigma, m, s, c)
    var = {}
    for k in (100, 200):
        x1, lw = path_log_weights(u, ld, 4000, sigma, k, seed=k, dim=2, dtype=torch.float64)
        est = summarize_weights(lw, x1)
        var[k] = float(lw.var())
        assert est.ess > 0.98
        assert abs(est.log_z - c) < 4 * est.stderr + 1e-4
    assert var[100] < 0.02 and 1.6 < var[100] / var[200] < 2.4      # Var log w = O(h)
    # the two losses at the exact drift: Var log w ≈ 0, and E[−log w] = KL − log Z ≈ −log Z (KL ≈
    # ½ Var log w ≈ 0.006). The KL loss drops the mean-zero Σ(u/σ)·ΔW, so its per-path sd is
    # √(E∫‖u/σ‖²dt) ≈ 1.4–1.7 here: s.e. ≈ 0.012 at n = 20 000, hence −c ± 0.05 (+0.01, the KL).
    gen = torch.Generator().manual_seed(0)
    assert float(log_variance_loss(u, ld, 2000, 2, sigma, 100, gen)) < 0.02
    kl = float(kl_loss(u, ld, 20_000, 2, sigma, 100, gen))
    assert -c - 0.05 < kl < -c + 0.06


def test_weights_follow_the_paths_of_the_one_sampler():
    """path_log_weights simulates the same Euler chain as lsb.sample (same grid, same noise order)."""
    net = TimeMLP(2, 16, 2, seed=3)
    bridge = LearnedFollmer(net, 0.8, log_density=GMM)
    x1, _ = path_log_weights(bridge, GMM, 50, 0.8, 10, seed=7)
    torch.testing.assert_close(x1, sample(bridge, torch.zeros(50, 2), steps=10, seed=7).x)


# ---------------------------------------------------------------------------------- (b) unbiased Z
@pytest.mark.parametrize("steps", [5, 50])
@pytest.mark.parametrize("drift", ["zero", "tilted"])
def test_importance_weights_are_unbiased_for_z(drift, steps):
    """E_{P^u}[w] = Z for ANY drift and at every K (exact weights of the Euler chain): the sample mean
    of w over 20 000 paths is within 4 standard errors sd(w)/√n of Z = e² (the GMM's known normaliser)."""
    u = (lambda x, t: torch.zeros_like(x)) if drift == "zero" else \
        (lambda x, t: torch.tensor([0.5, 1.5]) - (1 - t) * x)
    _, lw = path_log_weights(u, GMM, 20_000, 1.0, steps, seed=11, dtype=torch.float64)
    w = torch.exp(lw - GMM.log_z)                                  # w / Z: mean 1
    assert abs(float(w.mean()) - 1) < 4 * float(w.std()) / math.sqrt(w.numel())


def test_follmer_mc_paths_are_weighted_the_same_way():
    """A Monte-Carlo drift is random, but given its draws it is a drift: its weights estimate log Z too."""
    mc = FollmerMC(GMM, 1.0, n_mc=200, seed=0, dim=2)
    est = estimate_log_z(mc, GMM, n=1000, steps=20, seed=1)
    assert est.ess > 0.3 and abs(est.log_z - GMM.log_z) < 4 * est.stderr + 0.02
    again = estimate_log_z(mc, GMM, n=1000, steps=20, seed=1)      # start() rewinds the MC generator
    torch.testing.assert_close(est.log_weights, again.log_weights)


# ---------------------------------------------------------------------------------- (c) training
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_training_lowers_the_loss_and_estimates_log_z(seed):
    """300 steps (~2–4 s) on the 2-D mixture: the loss falls, ESS/n rises from ≈ 0.06 (u = 0) to ≥ 0.5 and
    |log Z error| < 0.1 (measured 0.00–0.03 at n = 2000, s.e. ≈ 0.015, over seeds 0–4)."""
    untrained = estimate_log_z(LearnedFollmer(lambda x, t: torch.zeros_like(x), 1.0, dim=2), GMM, n=2000,
                               steps=20, seed=123)
    bridge = fit_follmer_sampler(GMM, sigma=1.0, steps=300, batch_size=256, sim_steps=20, lr=3e-3,
                                 seed=seed, progress=False)
    loss = bridge.history["loss"]
    assert sum(loss[-30:]) / 30 < 0.3 * sum(loss[:10]) / 10
    est = estimate_log_z(bridge, n=2000, seed=123)
    assert est.ess > max(0.5, 5 * untrained.ess)
    assert float(est.log_weights.var()) < 0.5 * float(untrained.log_weights.var())
    assert abs(est.log_z - GMM.log_z) < 0.1


def test_kl_loss_trains_too():
    """The relative-entropy loss (through the paths) also moves the sampler off u = 0 towards μ."""
    bridge = fit_follmer_sampler(GMM, sigma=1.0, loss="kl", steps=150, batch_size=128, sim_steps=10, lr=3e-3,
                                 seed=0, progress=False)
    loss = bridge.history["loss"]
    assert sum(loss[-20:]) / 20 < sum(loss[:10]) / 10 - 1.0     # E[−log w] falls (its floor is −log Z = −2)
    assert sum(loss[-20:]) / 20 > -GMM.log_z - 0.15              # … and cannot go below it (up to noise)


# ---------------------------------------------------------------------------------- (d) the targets
def _quadrature_log_z(log_density, lo, hi, n=801):
    g = torch.linspace(lo, hi, n, dtype=torch.float64)
    xx, yy = torch.meshgrid(g, g, indexing="ij")
    vals = torch.exp(log_density(torch.stack([xx.reshape(-1), yy.reshape(-1)], 1))).reshape(n, n)
    return math.log(float(torch.trapezoid(torch.trapezoid(vals, g, dim=1), g)))


def test_mixture_log_z_and_sampler():
    assert abs(_quadrature_log_z(GMM.log_density, -8, 8) - GMM.log_z) < 1e-6
    x = GMM.sample(40_000, seed=0)
    w, m, s = GMM.weights, GMM.means, GMM.stds
    mean = w @ m
    cov = torch.einsum("k,ki,kj->ij", w, m - mean, m - mean) + (w * s**2).sum() * torch.eye(2, dtype=torch.float64)
    sd = torch.sqrt(torch.diagonal(cov))
    assert torch.all((x.mean(0) - mean).abs() < 4 * sd / math.sqrt(40_000))
    assert torch.allclose(torch.cov(x.T), cov, atol=4 * float(cov.max()) * math.sqrt(2 / 40_000))
    torch.testing.assert_close(GMM.log_prob(x[:5]), GMM.log_density(x[:5]) - 2.0)


def test_funnel_log_z_and_sampler():
    f = NealsFunnel(2)
    # quadrature in (v, y) with x = e^{v/2} y (Jacobian e^{v/2}), v ∈ [−24, 24] (8 sd), y ∈ [−12, 12]
    g_v = torch.linspace(-24, 24, 1201, dtype=torch.float64)
    g_y = torch.linspace(-12, 12, 1201, dtype=torch.float64)
    vv, yy = torch.meshgrid(g_v, g_y, indexing="ij")
    pts = torch.stack([vv.reshape(-1), (torch.exp(vv / 2) * yy).reshape(-1)], 1)
    vals = torch.exp(f.log_density(pts)).reshape(vv.shape) * torch.exp(vv / 2)
    quad = math.log(float(torch.trapezoid(torch.trapezoid(vals, g_y, dim=1), g_v)))
    assert abs(quad - f.log_z) < 1e-6
    x = NealsFunnel(4, scale=2.0).sample(40_000, seed=1)
    white = torch.cat([x[:, :1] / 2.0, x[:, 1:] * torch.exp(-x[:, :1] / 2)], 1)   # N(0, I) exactly
    tol = 4 / math.sqrt(40_000)
    assert torch.all(white.mean(0).abs() < tol)
    assert torch.allclose(torch.cov(white.T), torch.eye(4, dtype=torch.float64), atol=4 * math.sqrt(2 / 40_000))


def test_grad_log_density_matches_the_funnel_by_hand():
    f = NealsFunnel(3)
    x = torch.tensor([[0.5, 1.0, -2.0], [-1.0, 0.3, 0.1]], dtype=torch.float64)
    v, r = x[:, 0], x[:, 1:]
    dv = -v / 9 + 0.5 * torch.exp(-v) * (r**2).sum(1) - 1.0
    torch.testing.assert_close(grad_log_density(f, x), torch.cat([dv[:, None], -torch.exp(-v)[:, None] * r], 1))


# ---------------------------------------------------------------------------------- (e) bad input
def test_bad_inputs_name_the_argument():
    u0 = lambda x, t: torch.zeros_like(x)                           # noqa: E731
    with pytest.raises(ValueError, match="sigma"):
        fit_follmer_sampler(GMM, sigma=0.0, steps=1)
    with pytest.raises(ValueError, match="sigma"):
        path_log_weights(u0, GMM, 10, float("nan"))
    with pytest.raises(TypeError, match="log_density"):
        fit_follmer_sampler("not a density", dim=2, steps=1)
    with pytest.raises(ValueError, match="dim"):
        fit_follmer_sampler(lambda x: -(x**2).sum(1), steps=1)     # no .dim, none given
    with pytest.raises(ValueError, match="dim"):
        path_log_weights(u0, GMM, 10, dim=3)                        # the target is 2-D
    with pytest.raises(ValueError, match="log_density"):
        path_log_weights(u0, lambda x: -(x**2), 10, dim=2)          # (n, d) instead of (n,)
    with pytest.raises(ValueError, match="log_density"):
        path_log_weights(u0, lambda x: x[:, 0] * float("nan"), 10, dim=2)
    with pytest.raises(ValueError, match="log_density"):
        path_log_weights(u0, lambda x: torch.where(x[:, 0] > 2, float("nan"), 0.0), 500, steps=5, dim=2)
    with pytest.raises(ValueError, match="drift"):
        path_log_weights(lambda x, t: x[:, :1], GMM, 10)
    with pytest.raises(TypeError, match="drift"):
        path_log_weights(3.0, GMM, 10)
    with pytest.raises(ValueError, match="loss"):
        fit_follmer_sampler(GMM, loss="elbo", steps=1)
    with pytest.raises(ValueError, match="explore"):
        fit_follmer_sampler(GMM, explore=1.5, steps=1)
    with pytest.raises(ValueError, match="explore"):
        fit_follmer_sampler(GMM, loss="kl", explore=0.5, steps=1)
    with pytest.raises(ValueError, match="steps"):
        path_log_weights(u0, GMM, 10, steps=0)
    with pytest.raises(TypeError, match="bridge"):
        estimate_log_z(u0, GMM)
    with pytest.raises(ValueError, match="log_density"):
        estimate_log_z(LearnedFollmer(u0, dim=2), None, n=10)       # the bridge keeps none
    with pytest.raises(ValueError, match="stds"):
        GaussianMixtureTarget([1.0], [[0.0, 0.0]], [-1.0])
    with pytest.raises(ValueError, match="weights"):
        GaussianMixtureTarget([1.0, 2.0], [[0.0, 0.0]])
    with pytest.raises(ValueError, match="dim"):
        NealsFunnel(1)
    with pytest.raises(ValueError, match="scale"):
        NealsFunnel(3, scale=0.0)


# ---------------------------------------------------------------------------------- (f) determinism
def test_deterministic_for_a_seed():
    runs = [fit_follmer_sampler(GMM, steps=20, batch_size=64, sim_steps=5, width=16, depth=2, seed=4,
                                progress=False) for _ in range(2)]
    assert runs[0].history["loss"] == runs[1].history["loss"]
    a, b = (estimate_log_z(r, n=200, seed=9) for r in runs)
    assert torch.equal(a.log_weights, b.log_weights) and torch.equal(a.samples, b.samples)
    c = estimate_log_z(runs[0], n=200, seed=10)
    assert not torch.equal(a.log_weights, c.log_weights)


# ---------------------------------------------------------------------------------- the explorer
def test_sampler_explorer_follows_its_controls():
    from lsbcore.widgets.nb02 import follmer_sampler_explorer

    funnel = NealsFunnel(3)
    learned = fit_follmer_sampler(GMM, steps=10, batch_size=32, sim_steps=5, width=16, depth=2, progress=False)
    box = follmer_sampler_explorer({"gmm": GMM, "funnel": funnel}, {"gmm": learned}, n=100, steps=5, n_mc=20)
    c = box.controls
    assert box.state["drift"] == "learned" and box.state["estimate"].n == 100
    torch.testing.assert_close(box.state["estimate"].log_weights,
                               estimate_log_z(learned, GMM, n=100, steps=5, seed=0).log_weights)
    assert "true log Z = 2.0000" in box.children[2].value
    c["drift"].value = "u = 0"
    c["steps"].value = 8
    assert box.state["steps"] == 8 and box.state["estimate"].samples.shape == (100, 2)
    c["target"].value = "funnel"                   # u = 0 is offered for every target
    assert box.state["estimate"].samples.shape == (100, 3) and box.state["log_z"] == funnel.log_z
    c["drift"].value = "learned"                   # … the learned drift only where one was given
    assert box.state["estimate"] is None and "no learned sampler" in box.children[2].value
    c["drift"].value = "Monte Carlo"
    assert box.state["estimate"].ess > 0
    with pytest.raises(ValueError, match="learned"):
        follmer_sampler_explorer({"gmm": GMM}, {"other": learned})
