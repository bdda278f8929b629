"""Bridge matching: targets, the shared loss, couplings and IMF, against Gaussian closed forms and POT."""
import math

import numpy as np
import ot
import pytest
import torch
from torch import nn
from scipy.integrate import quad

from lsbcore.bridges.matching import (EndpointDrift, MatchedBridge, bridge_target, brownian_bridge, couple, fit_bridge,
                                      imf, matching_loss, sample_times)
from lsbcore.marginals import eight_gaussians, moons
from lsbcore.nets import TimeMLP
from lsbcore.sde import sample
from lsbcore.schrodinger._sinkhorn import sinkhorn


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def sb_drift_1d(t, c, sigma, m0, m1):
    """Theory §2 in 1-D with unit variances: b(x, t) = S_t/Σ_t (x − μ_t) + (m1 − m0) for the bridge
    mixture over a Gaussian coupling of cross-covariance c. Returns (slope, intercept)."""
    S = (2 * t - 1) * (1 - c) - sigma**2 * t
    Sig = (1 - t) ** 2 + t**2 + t * (1 - t) * (2 * c + sigma**2)
    mu = (1 - t) * m0 + t * m1
    return S / Sig, (m1 - m0) - S / Sig * mu, Sig


def imf_next(c, sigma):
    """One IMF step in closed form (1-D, unit variances): simulating the Markovian projection of the
    bridge mixture over coupling c gives Cov(X0, X1) = exp(∫_0^1 S_t/Σ_t dt)."""
    return math.exp(quad(lambda t: sb_drift_1d(t, c, sigma, 0.0, 0.0)[0], 0, 1)[0])


def _gaussian_pairs(n, c, m0, m1, gen):
    z0, z1 = torch.randn(n, 1, generator=gen, dtype=torch.float64), torch.randn(n, 1, generator=gen, dtype=torch.float64)
    return m0 + z0, m1 + c * z0 + math.sqrt(1 - c**2) * z1


# ---------------------------------------------------------------------------------- targets
def test_brownian_bridge_moments():
    n, sigma, t = 20000, 0.7, 0.3
    x0 = torch.tensor([[1.0, -1.0]]).expand(n, 2)
    x1 = torch.tensor([[3.0, 2.0]]).expand(n, 2)
    xt = brownian_bridge(x0, x1, torch.full((n, 1), t), sigma, seed=0)
    var = sigma**2 * t * (1 - t)
    torch.testing.assert_close(xt.mean(0), torch.tensor([1.6, -0.1]), atol=5 * math.sqrt(var / n), rtol=0)
    assert ((xt.var(0) / var - 1).abs() < 5 * math.sqrt(2 / n)).all()
    # end points are pinned
    torch.testing.assert_close(brownian_bridge(x0[:3], x1[:3], 0.0, sigma), x0[:3])
    torch.testing.assert_close(brownian_bridge(x0[:3], x1[:3], 1.0, sigma), x1[:3])


@pytest.mark.parametrize("t", [0.2, 0.5, 0.8])
@pytest.mark.parametrize("coupling", ["independent", "sb"])
def test_regression_minimiser_is_the_closed_form_drift(t, coupling):
    """The least-squares fit of the forward target on (1, X_t) — the minimiser of matching_loss over
    affine nets, which is E[target | X_t] for Gaussian endpoints — equals Theory §2's drift;
    forward + backward minimisers equal σ²∇log ρ_t (Nelson). Tolerance: 5 regression s.e."""
    sigma, m0, m1, n = 1.0, -1.0, 1.5, 200_000
    c = 0.0 if coupling == "independent" else (math.sqrt(4 + sigma**4) - sigma**2) / 2
    gen = _gen(1)
    x0, x1 = _gaussian_pairs(n, c, m0, m1, gen)
    tt = torch.full((n, 1), t, dtype=torch.float64)
    xt = brownian_bridge(x0, x1, tt, sigma, seed=gen)
    design = torch.cat([xt, torch.ones_like(xt)], 1)
    slope, icpt, Sig = sb_drift_1d(t, c, sigma, m0, m1)
    fits = {}
    for direction in ("forward", "backward"):
        y = bridge_target(x0, x1, xt, tt, direction)
        coef = torch.linalg.lstsq(design, y).solution[:, 0]
        resid = y[:, 0] - design @ coef
        se = math.sqrt(float(resid.var()) / (n * float(xt.var())))   # s.e. of the slope
        fits[direction] = (coef, se)
        # matching_loss of an affine "net" at the optimum equals the residual mean square
        net = lambda x, s, coef=coef: coef[0] * x + coef[1]
        torch.testing.assert_close(matching_loss(net, xt, tt, y), (resid**2).mean())
    coef, se = fits["forward"]
    assert abs(float(coef[0]) - slope) < 5 * se
    assert abs(float(coef[0] + coef[1] * 0) + 0 - slope) < 5 * se
    mu = (1 - t) * m0 + t * m1
    assert abs(float(coef[0] * mu + coef[1]) - (slope * mu + icpt)) < 5 * se * 3   # drift at the mean
    # Nelson: b + b̂ = σ² ∇log ρ_t = −σ² (x − μ_t)/Σ_t
    (cf, sf), (cb, sb) = fits["forward"], fits["backward"]
    assert abs(float(cf[0] + cb[0]) + sigma**2 / Sig) < 5 * (sf + sb)
    assert abs(float((cf[0] + cb[0]) * mu + cf[1] + cb[1])) < 5 * (sf + sb) * 3


def test_matching_loss_weights_and_shapes():
    x, t = torch.randn(5, 2, generator=_gen(0)), torch.rand(5, 1, generator=_gen(1))
    target = torch.randn(5, 2, generator=_gen(2))
    net = lambda x, t: 2 * x
    w = torch.arange(5.0)
    expected = (w * ((2 * x - target) ** 2).sum(-1)).mean()
    torch.testing.assert_close(matching_loss(net, x, t, target, weight=w), expected)
    with pytest.raises(ValueError, match="shape"):
        matching_loss(net, x, t, target[:, :1])
    with pytest.raises(ValueError, match="direction"):
        bridge_target(x, x, x, t, "sideways")


# ---------------------------------------------------------------------------------- couplings
def test_couplings_lower_the_transport_cost():
    x0 = eight_gaussians(256, seed=0)
    x1 = moons(256, seed=1)
    cost = lambda a, b: float(((a - b) ** 2).sum(-1).mean())
    indep = cost(*couple(x0, x1, "independent"))
    a0, a1 = couple(x0, x1, "ot")
    exact = float(ot.emd2(np.full(256, 1 / 256), np.full(256, 1 / 256), ot.dist(x0.double().numpy(), x1.double().numpy())))
    assert abs(cost(a0, a1) - exact) < 1e-4 * exact            # the permutation is POT's optimum
    assert torch.equal(torch.sort(a1, 0).values, torch.sort(x1, 0).values)   # x1 only reordered
    s0, s1 = couple(x0, x1, "sinkhorn", sigma=0.3, seed=0)
    sk = cost(s0, s1)
    plan_cost = sinkhorn(x0, x1, 2 * 0.3**2).cost      # ⟨C, π⟩ of the entropic plan ≥ OT cost
    assert exact <= plan_cost < 0.5 * indep, (exact, plan_cost, indep)
    # the drawn pairs (with replacement) estimate the plan's cost: cost s.d. / √n with n = 256
    sd = float(((s0 - s1) ** 2).sum(-1).std())
    assert abs(sk - plan_cost) < 5 * sd / math.sqrt(256)
    # σ → large: the entropic plan tends to independence
    big = cost(*couple(x0, x1, "sinkhorn", sigma=20.0, seed=0))
    assert abs(big - indep) < 0.15 * indep


def test_couple_bad_inputs():
    x = torch.randn(4, 2)
    with pytest.raises(ValueError, match="coupling"):
        couple(x, x, "magic")
    with pytest.raises(ValueError, match="sigma"):
        couple(x, x, "sinkhorn")
    with pytest.raises(ValueError, match="rows"):
        couple(x, torch.randn(5, 2), "ot")
    with pytest.raises(ValueError, match="dimension"):
        couple(x, torch.randn(4, 3), "independent")
    with pytest.raises(ValueError, match="NaN"):
        couple(x, torch.full((4, 2), float("nan")), "independent")
    with pytest.raises(ValueError, match="sigma"):
        fit_bridge(x, x, -1.0, steps=1, progress=False)
    with pytest.raises(ValueError, match="t_gap"):
        fit_bridge(x, x, 1.0, t_gap=1.5, steps=1, progress=False)
    with pytest.raises(NotImplementedError):
        MatchedBridge(TimeMLP(2), 1.0).backward_drift(x, 0.5)


# ---------------------------------------------------------------------------------- training and IMF
class AffineInX(nn.Module):
    """b(x, t) = a(t) x + c(t) with a, c from a small TimeMLP: the exact family of Gaussian drifts."""

    def __init__(self):
        super().__init__()
        self.f = TimeMLP(1, width=16, depth=2, out_dim=2)

    def forward(self, x, t):
        ac = self.f(torch.zeros_like(x), t)
        return ac[:, :1] * x + ac[:, 1:]


def test_fit_bridge_and_imf_follow_the_closed_form_iteration():
    """1-D N(−1, 1) → N(1, 1), σ = 1. Bridge matching on the independent coupling, then simulating
    the learned forward SDE, gives the coupling of the Markovian projection: Cov(X0, X̂1) = c1 =
    exp(∫ S_t/Σ_t dt) ≈ 0.546 (not 0, not the SB's 0.618); one IMF refit (backward) then gives
    c2 ≈ 0.611. Marginals are preserved. Tolerance 0.04 = 4 MC s.e. (≈ 0.008 at n = 20000) + Euler
    bias (~0.005) + a loose allowance for a 300-step fit; c2 − c1 ≈ 0.065 stays resolvable."""
    sigma, n = 1.0, 20000
    c1, c2 = imf_next(0.0, sigma), imf_next(imf_next(0.0, sigma), sigma)
    src0 = lambda k, g: torch.randn(k, 1, generator=g) - 1.0
    src1 = lambda k, g: torch.randn(k, 1, generator=g) + 1.0
    bridge = imf(src0, src1, sigma, iterations=1, coupling="independent", pool=4096, sample_steps=50,
                 net=AffineInX(), steps=300, batch_size=256, lr=1e-2, ema=0.98, seed=0, progress=False)
    x0 = src0(n, _gen(5))
    x1 = sample(bridge, x0, steps=100, seed=6).x
    assert abs(float(x1.mean()) - 1.0) < 0.05 and abs(float(x1.std()) - 1.0) < 0.05
    assert abs(float(torch.cov(torch.cat([x0, x1], 1).T)[0, 1]) - c1) < 0.04
    y1 = src1(n, _gen(7))
    y0 = sample(bridge, y1, steps=100, seed=8, direction="backward").x
    assert abs(float(y0.mean()) + 1.0) < 0.05 and abs(float(y0.std()) - 1.0) < 0.05
    assert abs(float(torch.cov(torch.cat([y0, y1], 1).T)[0, 1]) - c2) < 0.04
    assert set(bridge.history) == {"forward_0", "backward_1"}


@pytest.mark.parametrize("coupling", ["independent", "ot", "sinkhorn"])
def test_fit_bridge_builds_its_default_net_for_every_coupling(coupling):
    """With no net given, fit_bridge sizes a TimeMLP from two points of the source, whatever the
    coupling (a regression test: with plan_size the probe once went through the plan path)."""
    x0, x1 = eight_gaussians(64, seed=0), moons(64, seed=1)
    bridge = fit_bridge(x0, x1, 0.5, coupling=coupling, steps=2, batch_size=16, progress=False)
    assert isinstance(bridge.forward_net, TimeMLP) and len(bridge.history["forward"]) == 2


def test_fit_bridge_default_net_and_sinkhorn_coupling_run():
    x0, x1 = eight_gaussians(64, seed=0), moons(64, seed=1)
    bridge = fit_bridge(x0, x1, 0.5, coupling="sinkhorn", steps=3, batch_size=16, progress=False)
    assert isinstance(bridge.forward_net, TimeMLP) and len(bridge.history["forward"]) == 3
    assert bridge.drift(x0[:5], 0.5).shape == (5, 2)


@pytest.mark.parametrize("direction", ["forward", "backward"])
def test_endpoint_parametrization_is_the_reweighted_loss(direction):
    """matching_loss(EndpointDrift(D), …, weight=(1−t)²) = mean ‖D(X_t, t) − X1‖² (forward), and
    the analogous identity with t² and X0 backward: same minimiser, bounded regression noise."""
    gen = _gen(3)
    x0, x1 = torch.randn(64, 2, generator=gen), torch.randn(64, 2, generator=gen) + 2
    t = 0.05 + 0.9 * torch.rand(64, 1, generator=gen)
    xt = brownian_bridge(x0, x1, t, 0.7, seed=gen)
    D = TimeMLP(2, width=8, depth=1)
    wrapped = EndpointDrift(D, direction)
    w = wrapped.remaining(t) ** 2
    end = x1 if direction == "forward" else x0
    torch.testing.assert_close(matching_loss(wrapped, xt, t, bridge_target(x0, x1, xt, t, direction), w),
                               ((D(xt, t) - end) ** 2).sum(-1).mean())
    bridge = fit_bridge(x0, x1, 0.7, coupling="independent", direction=direction, net=TimeMLP(2, width=8, depth=1),
                        parametrization="endpoint", steps=2, batch_size=8, progress=False)
    net = bridge.forward_net if direction == "forward" else bridge.backward_net
    assert isinstance(net, EndpointDrift)


def test_coupling_every_reuses_one_plan_and_resumes_bit_exactly(tmp_path):
    """coupling_every=k: one Sinkhorn plan per k steps (fresh pairs drawn from it in between); a run
    stopped at its checkpoints and resumed equals an uninterrupted one; misuse is a ValueError."""
    from lsbcore.train import TimeLimitReached

    x0, x1 = eight_gaussians(256, seed=0), moons(256, seed=1)
    kw = dict(coupling="sinkhorn", steps=12, batch_size=32, progress=False, coupling_every=3,
              net=None, seed=4, checkpoint_every=6)
    calls = []
    import lsbcore.schrodinger as sch

    real = sch.sinkhorn

    def counting(*a, **k):
        calls.append(1)
        return real(*a, **k)

    sch.sinkhorn = counting
    try:
        ref = fit_bridge(x0, x1, 0.5, **kw)
    finally:
        sch.sinkhorn = real
    assert len(calls) == 12 // 3                          # one plan per 3 steps (the net's size needs none)
    ckpt, stops = tmp_path / "bm.pt", []
    while True:
        try:
            out = fit_bridge(x0, x1, 0.5, checkpoint=ckpt, deadline=0.0, **kw)
            break
        except TimeLimitReached as err:
            stops.append(err.step)
    assert stops == [6] and out.history["forward"] == ref.history["forward"]
    with pytest.raises(ValueError, match="multiple of coupling_every"):
        fit_bridge(x0, x1, 0.5, checkpoint=tmp_path / "x.pt", **{**kw, "checkpoint_every": 4})
    with pytest.raises(ValueError, match="coupling='sinkhorn'"):
        fit_bridge(x0, x1, 0.5, **{**kw, "coupling": "independent"})
    with pytest.raises(ValueError, match="coupling_every"):
        fit_bridge(x0, x1, 0.5, **{**kw, "coupling_every": 0})


def test_couple_draws_more_pairs_from_one_plan_when_asked():
    """pairs=m draws m pairs from the one Sinkhorn plan (rows of the two batches); only for Sinkhorn."""
    x0, x1 = eight_gaussians(40, seed=0), moons(40, seed=1)
    a, b = couple(x0, x1, "sinkhorn", sigma=0.5, seed=2, pairs=120)
    assert a.shape == b.shape == (120, 2)
    assert all(bool((x0 == r).all(1).any()) for r in a) and all(bool((x1 == r).all(1).any()) for r in b)
    assert couple(x0, x1, "sinkhorn", sigma=0.5, seed=2)[0].shape == (40, 2)   # default: n pairs
    with pytest.raises(ValueError, match="pairs"):
        couple(x0, x1, "independent", pairs=80)
    with pytest.raises(ValueError, match="pairs"):
        couple(x0, x1, "sinkhorn", sigma=0.5, pairs=0)


def test_plan_size_draws_a_larger_batch_from_a_smaller_plan():
    """plan_size=m: every plan is solved between m points of each source, and the batch_size pairs of
    a step are rows of those m-point batches; plan_size = batch_size is the default, bit for bit."""
    x0, x1 = eight_gaussians(256, seed=0), moons(256, seed=1)
    kw = dict(coupling="sinkhorn", steps=6, batch_size=48, progress=False, seed=3,
              net=TimeMLP(2, width=8, depth=1, seed=0))
    import lsbcore.schrodinger as sch

    real, sizes = sch.sinkhorn, []

    def recording(a, b, *args, **k):
        sizes.append((a.shape[0], b.shape[0]))
        return real(a, b, *args, **k)

    sch.sinkhorn = recording
    try:
        fit_bridge(x0, x1, 0.5, plan_size=16, coupling_every=2, **kw)
    finally:
        sch.sinkhorn = real
    assert sizes == [(16, 16)] * (6 // 2)                  # one plan per 2 steps, of 16 points a side
    ref = fit_bridge(x0, x1, 0.5, **{**kw, "net": TimeMLP(2, width=8, depth=1, seed=0)})
    same = fit_bridge(x0, x1, 0.5, plan_size=48, **{**kw, "net": TimeMLP(2, width=8, depth=1, seed=0)})
    assert same.history["forward"] == ref.history["forward"]
    with pytest.raises(ValueError, match="plan_size"):
        fit_bridge(x0, x1, 0.5, plan_size=16, **{**kw, "coupling": "independent"})
    with pytest.raises(ValueError, match="plan_size"):
        fit_bridge(x0, x1, 0.5, plan_size=1, **kw)
    with pytest.raises(TypeError, match="plan_size"):
        fit_bridge(x0, x1, 0.5, plan_size=16.5, **kw)
    with pytest.raises(ValueError, match="plan_size=1000000000 would couple"):   # refused before any draw
        fit_bridge(x0, x1, 0.5, plan_size=10**9, **kw)
    with pytest.raises(ValueError, match="batch_size=100000 would couple"):
        fit_bridge(x0, x1, 0.5, **{**kw, "batch_size": 10**5})


@pytest.mark.parametrize("plan_size, time_power", [(64, 1.0), (512, 2.0)])
def test_plan_size_and_time_power_learn_the_schrodinger_bridge_in_closed_form(plan_size, time_power):
    """1-D N(−1, 1) → N(1, 1), σ = 1: bridge matching on pairs drawn 512 at a time from Sinkhorn
    plans (ε = 2σ²) of ``plan_size`` points, times drawn with ``time_power``, learns the SB, whose
    coupling has Cov(X0, X1) = (√(4 + σ⁴) − σ²)/2 ≈ 0.618 (the independent coupling's projection gives
    0.546). Tolerance 0.04: 4 MC s.e. (≈ 0.008 at n = 20000), the minibatch plan's bias (64 points:
    ≈ −0.015 measured) and a 400-step affine fit."""
    sigma, n = 1.0, 20000
    c_sb = (math.sqrt(4 + sigma**4) - sigma**2) / 2
    src0 = lambda k, g: torch.randn(k, 1, generator=g) - 1.0
    src1 = lambda k, g: torch.randn(k, 1, generator=g) + 1.0
    bridge = fit_bridge(src0, src1, sigma, coupling="sinkhorn", net=AffineInX(), steps=400, batch_size=512,
                        plan_size=plan_size, time_power=time_power, coupling_every=2, lr=1e-2, ema=0.98,
                        seed=0, progress=False)
    x0 = src0(n, _gen(5))
    x1 = sample(bridge, x0, steps=100, seed=6).x
    assert abs(float(x1.mean()) - 1.0) < 0.06 and abs(float(x1.std()) - 1.0) < 0.05
    assert abs(float(torch.cov(torch.cat([x0, x1], 1).T)[0, 1]) - c_sb) < 0.04


@pytest.mark.parametrize("direction", ["forward", "backward"])
@pytest.mark.parametrize("p", [1.0, 2.0, 3.5])
def test_sample_times_follow_their_law(direction, p):
    """The time left to the data end, r = 1 − t (forward) or t (backward), has the law
    t_gap + (1 − t_gap)·vᵖ, v ~ U[0, 1]: P(r ≤ x) = ((x − t_gap)/(1 − t_gap))^(1/p) (KS test, n = 20000)."""
    t_gap, n = 0.02, 20000
    t = sample_times(n, direction, t_gap, torch.zeros(1, dtype=torch.float64), _gen(3), time_power=p)
    assert t.shape == (n, 1) and float(t.min()) >= 0 and float(t.max()) <= 1
    r = (1 - t if direction == "forward" else t).flatten().sort().values
    assert float(r.min()) >= t_gap - 1e-12
    cdf = ((r - t_gap) / (1 - t_gap)).clamp(0, 1) ** (1 / p)
    ecdf = torch.arange(1, n + 1, dtype=torch.float64) / n
    assert float((cdf - ecdf).abs().max()) < 1.63 / math.sqrt(n)          # KS at the 1% level


def test_time_power_bad_inputs():
    x0, x1 = eight_gaussians(64, seed=0), moons(64, seed=1)
    for bad, err in ((0.5, ValueError), (0.0, ValueError), (float("nan"), ValueError), ("2", TypeError)):
        with pytest.raises(err, match="time_power"):
            fit_bridge(x0, x1, 0.5, time_power=bad, steps=1, progress=False)
