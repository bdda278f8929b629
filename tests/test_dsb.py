"""DSB (IPF in path space) against the Gaussian closed forms: the exact IPF recursion and the SB coupling.

p0 = N(−a, 1), p1 = N(a, 1) in 1-D, σ = 1. The SB coupling has Cov(X0, X1) = c = (√(4 + σ⁴) − σ²)/2
≈ 0.618; the reference started at p0 has Cov = Var X0 = 1 and X1 ~ N(−a, 2). Exact IPF on Gaussians
is Sinkhorn on jointly Gaussian couplings (:func:`gaussian_ipf_iterates`): after n rounds Cov ≈ 0.667, 0.625,
0.619, 0.618 and E X1 ≈ 0.333, 0.75, 0.905, 0.964 (the mean error contracts by c² ≈ 0.38 a round).

Tolerances. Monte Carlo with 20 000 paths: s.e. ≈ 0.007 (mean), 0.01 (variance, covariance). Method
bias: with exact per-time-step linear regression instead of networks, the DSB mean-matching target
on a K = 20 Euler grid leaves E X1 short by ≈ 0.09 (an O(h) bias: 0.18 at K = 10, 0.035 at K = 50)
and the covariance within 0.005; the small networks add ≈ 0.05 to E X1 and ≈ 0.04 to the covariance
(seeds 0, 1, 2 measured: final Cov 0.638 / 0.607 / 0.637, E X1 0.832 / 0.921 / 0.833, Var X1
1.075 / 1.002 / 1.083; run backwards from p1, E X0 −0.80 / −0.90 / −0.81). Hence: Cov within 0.07
of the exact IPF iterate and |Cov − c| < 0.05 at the end; E X1 within 0.25 of a (the reference is
2a = 2 off); Var X1 within 0.15 of 1 (the reference: 1 off); E X0 within 0.3 of −a (exact IPF:
−0.94 after 4 rounds, plus the same O(h) and network errors).
"""
import math

import pytest
import torch

from lsbcore.bridges.dsb import DSBResult, dsb, gaussian_ipf_iterates, ipf_step, mean_matching_pairs
from lsbcore.bridges.matching import MatchedBridge
from lsbcore.schrodinger.gaussian import GaussianBridge
from lsbcore.sde import generate, sample

torch.set_num_threads(1)

A, SIGMA, K = 1.0, 1.0, 20
FAST = dict(steps=400, sim_steps=K, width=32, depth=2, n_paths=1000, batch_size=512, lr=3e-3, ema=0.99,
            schedule="cosine", progress=False)


def s0(n, gen):
    return -A + torch.randn(n, 1, generator=gen)


def s1(n, gen):
    return A + torch.randn(n, 1, generator=gen)


def ipf_exact(rounds, a=A, s2=SIGMA**2):
    """Exact IPF in 1-D (unit variances): (Cov(X0, X1), E X1, Var X1) after each forward half-step."""
    return gaussian_ipf_iterates(-a, 1.0, a, 1.0, math.sqrt(s2), rounds)


def coupling_stats(n, bridge):
    gen = torch.Generator().manual_seed(123)
    x0 = s0(20000, gen)
    x1 = sample(bridge, x0, steps=K, seed=gen).x
    cov = ((x0 - x0.mean(0)) * (x1 - x1.mean(0))).mean()
    return {"cov": float(cov), "m1": float(x1.mean()), "v1": float(x1.var())}


@pytest.fixture(scope="module")
def run():
    return dsb(s0, s1, SIGMA, iterations=4, seed=0, callback=coupling_stats, **FAST)


def test_closed_forms_agree():
    c = (math.sqrt(4 + SIGMA**4) - SIGMA**2) / 2
    gb = GaussianBridge(-A, 1.0, A, 1.0, SIGMA)
    assert float(gb.cross_cov) == pytest.approx(c, abs=1e-12)
    assert ipf_exact(30)[-1] == pytest.approx((c, A, 1.0), abs=1e-6)   # IPF converges to the SB



def test_gaussian_ipf_iterates_general_variances():
    # the round-1 values by hand for unit variances, then convergence to the SB with unequal ones
    hand = [(2 / 3, 1 / 3, 10 / 9), (0.625, 0.75, 1.015625), (13 / 21, 19 / 21, 1.002268),
            (0.618182, 0.963636, 1.000331)]
    for got, want in zip(ipf_exact(4), hand, strict=True):
        assert got == pytest.approx(want, abs=1e-6)
    m0, v0, m1, v1, sigma = 0.3, 2.0, -1.0, 0.5, 0.7
    c = float(GaussianBridge(m0, v0, m1, v1, sigma).cross_cov)
    assert gaussian_ipf_iterates(m0, v0, m1, v1, sigma, 60)[-1] == pytest.approx((c, m1, v1), abs=1e-9)
    for kwargs, exc in ((dict(v0=0.0), ValueError), (dict(sigma=-1.0), ValueError),
                        (dict(iterations=0), ValueError), (dict(iterations=2.0), TypeError)):
        args = dict(m0=0.0, v0=1.0, m1=1.0, v1=1.0, sigma=1.0, iterations=3)
        args.update(kwargs)
        name = next(iter(kwargs))
        with pytest.raises(exc, match=name):
            gaussian_ipf_iterates(**args)

def test_gaussian_ipf_tracks_the_exact_recursion_and_reaches_the_sb(run):
    c = float(GaussianBridge(-A, 1.0, A, 1.0, SIGMA).cross_cov)
    assert isinstance(run, DSBResult) and len(run.history) == 4 and run.seconds > 0
    for h, (c_n, m_n, _) in zip(run.history, ipf_exact(4)):
        assert abs(h["cov"] - c_n) < 0.07, (h, c_n)
        assert abs(h["m1"] - m_n) < 0.25, (h, m_n)
        assert math.isfinite(h["backward_loss"]) and math.isfinite(h["forward_loss"])
    last = run.history[-1]
    assert abs(last["cov"] - c) < 0.05 < abs(1.0 - c)            # far closer than the reference's 1
    assert abs(last["m1"] - A) < 0.25
    assert abs(last["v1"] - 1.0) < 0.15
    # Q^N starts at p1 exactly; run backwards it must land near p0
    gen = torch.Generator().manual_seed(5)
    x0 = sample(run.bridge, s1(20000, gen), steps=K, direction="backward", seed=gen).x
    assert abs(float(x0.mean()) + A) < 0.3 and abs(float(x0.var()) - 1.0) < 0.15


def test_iteration_zero_learns_the_reversal_of_brownian_motion():
    # reference from p0 = N(−1, 1): ρ_t = N(−1, 1 + σ²t),
    # backward drift σ² ∇log ρ_t = −σ²(x + 1)/(1 + σ²t)
    zero = lambda x, t: torch.zeros_like(x)  # noqa: E731
    fast = {k: v for k, v in FAST.items() if k not in ("width", "depth")}
    half = ipf_step(zero, s0, SIGMA, direction="backward", seed=3, **fast)
    assert half.forward_net is None and half.backward_net is not None
    t = torch.tensor([0.25, 0.5, 0.75, 1.0]).repeat_interleave(41)[:, None]
    x = -A + torch.linspace(-2, 2, 41).repeat(4)[:, None] * torch.sqrt(1 + SIGMA**2 * t)
    rms = float(((half.backward_drift(x, t) + SIGMA**2 * (x + A) / (1 + SIGMA**2 * t)) ** 2).mean().sqrt())
    assert rms < 0.3, rms
    gen = torch.Generator().manual_seed(11)
    x1 = -A + math.sqrt(1 + SIGMA**2) * torch.randn(20000, 1, generator=gen)   # the forward endpoint law
    x0 = sample(half, x1, steps=K, direction="backward", seed=gen).x
    assert abs(float(x0.mean()) + A) < 0.1 and abs(float(x0.var()) - 1.0) < 0.15


def test_mean_matching_targets_have_the_right_conditional_mean():
    # zero forward drift: the DSB target is (x_k − x_{k+1})/h, whose regression on x_{k+1} is the
    # backward drift above; check the least-squares slope at the last grid time in closed form
    zero = MatchedBridge(lambda x, t: torch.zeros_like(x), SIGMA, dim=1)
    gen = torch.Generator().manual_seed(0)
    x, t, y = mean_matching_pairs(zero, s0(40000, gen), direction="backward", steps=10, seed=gen)
    assert x.shape == t.shape == y.shape == (400000, 1)
    last = (t[:, 0] - 1.0).abs() < 1e-6
    xs, ys = x[last, 0], y[last, 0]
    slope = float(((xs - xs.mean()) * (ys - ys.mean())).mean() / xs.var())
    # E[X_k | X_{k+1}] − X_{k+1} = −h (x + 1)/(1 + σ² t_{k+1}) exactly for the Gaussian chain
    assert slope == pytest.approx(-1 / (1 + SIGMA**2), abs=0.08)


def test_warm_start_at_the_sb_stays_there():
    gb = GaussianBridge(-A, 1.0, A, 1.0, SIGMA)
    res = dsb(s0, s1, SIGMA, iterations=1, seed=1, init_forward=gb, callback=coupling_stats, **FAST)
    h = res.history[0]
    assert abs(h["cov"] - float(gb.cross_cov)) < 0.05 and abs(h["m1"] - A) < 0.15


def test_the_bridge_samples_forward_backward_and_generates(run):
    b = run.bridge
    x = torch.zeros(7, 1)
    for direction in ("forward", "backward"):
        out = sample(b, x, method="sde", steps=5, direction=direction, seed=0).x
        assert out.shape == (7, 1) and bool(torch.isfinite(out).all())
    assert sample(b, x, method="ode", steps=5).x.shape == (7, 1)
    assert generate(b, 9, steps=5).x.shape == (9, 1)
    assert b.history["iterations"] is run.history


def test_same_seed_same_result():
    tiny = dict(iterations=1, steps=15, n_paths=20, sim_steps=4, width=8, depth=1, progress=False)
    r1, r2 = dsb(s0, s1, SIGMA, seed=4, **tiny), dsb(s0, s1, SIGMA, seed=4, **tiny)
    for n1, n2 in ((r1.bridge.forward_net, r2.bridge.forward_net), (r1.bridge.backward_net, r2.bridge.backward_net)):
        for p1, p2 in zip(n1.state_dict().values(), n2.state_dict().values()):
            assert torch.equal(p1, p2)
    assert [h["backward_loss"] for h in r1.history] == [h["backward_loss"] for h in r2.history]
    r3 = dsb(s0, s1, SIGMA, seed=5, **tiny)
    assert not torch.equal(next(r1.bridge.forward_net.parameters()), next(r3.bridge.forward_net.parameters()))


@pytest.mark.parametrize("kwargs, exc, name", [
    (dict(sigma=0.0), ValueError, "sigma"),
    (dict(sigma=-1.0), ValueError, "sigma"),
    (dict(iterations=0), ValueError, "iterations"),
    (dict(iterations=1.5), TypeError, "iterations"),
    (dict(steps=0), ValueError, "steps"),
    (dict(sim_steps=0), ValueError, "sim_steps"),
    (dict(batch_size=1), ValueError, "batch_size"),
    (dict(n_paths=1), ValueError, "n_paths"),
    (dict(lr=0.0), ValueError, "lr"),
    (dict(ema=1.0), ValueError, "ema"),
    (dict(source0=torch.tensor([[0.0], [float("nan")]])), ValueError, "source0"),
    (dict(source1=torch.zeros(5, 2)), ValueError, "dimension"),
    (dict(source0="data"), TypeError, "source0"),
    (dict(init_forward=3), TypeError, "init_forward"),
    (dict(init_forward=MatchedBridge(None, 1.0, torch.nn.Linear(1, 1))), ValueError, "init_forward"),
    (dict(callback=3), TypeError, "callback"),
    (dict(target="exact"), ValueError, "target"),
    (dict(progress=1), TypeError, "progress"),
])
def test_bad_input_names_the_argument(kwargs, exc, name):
    args = dict(source0=torch.zeros(5, 1), source1=torch.ones(5, 1), sigma=1.0, steps=2, n_paths=4,
                sim_steps=2, progress=False)
    args.update(kwargs)
    with pytest.raises(exc, match=name):
        dsb(args.pop("source0"), args.pop("source1"), args.pop("sigma"), **args)


def test_ipf_step_rejects_bad_direction():
    with pytest.raises(ValueError, match="direction"):
        ipf_step(lambda x, t: x, s0, 1.0, direction="sideways")


def test_shipped_comparison_reads_the_bench_table(tmp_path):
    """data/ipf_imf_bench.json (bench/ipf_imf.py --ship): grouped per method and iteration over seeds;
    a file that is not such a table is a ValueError."""
    import json

    from lsbcore.bridges.dsb import shipped_comparison

    cmp = shipped_comparison()
    assert {"IPF", "IMF"} <= set(cmp) and cmp["IPF"]["seeds"] == cmp["IMF"]["seeds"]
    assert len(cmp["IPF"]["seeds"]) >= 3
    for m in ("IPF", "IMF"):
        means, sds = cmp[m]["fwd"]
        assert len(means) == len(cmp[m]["iteration"]) == len(sds) and all(v > 0 for v in means)
        assert cmp[m]["train_s"][0] == sorted(cmp[m]["train_s"][0])   # cumulative time
    rows = [dict(method="IPF", seed=s, iteration=1, fwd=1.0 + s, bwd=2.0, fwd_floor=0.5, bwd_floor=1.0, train_s=3.0)
            for s in range(2)]
    (tmp_path / "ipf_imf_bench.json").write_text(json.dumps({"steps": 5, "rows": rows}))
    small = shipped_comparison(data_dir=tmp_path)
    assert small["IPF"]["fwd"] == ([1.5], [pytest.approx(0.7071, abs=1e-4)])
    (tmp_path / "ipf_imf_bench.json").write_text(json.dumps([1, 2]))
    with pytest.raises(ValueError, match="not a table"):
        shipped_comparison(data_dir=tmp_path)
