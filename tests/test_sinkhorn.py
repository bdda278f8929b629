"""Tests of the log-domain Sinkhorn solver against closed forms and POT."""
import math

import numpy as np
import ot
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lsbcore.schrodinger._sinkhorn import (
    SinkhornConvergenceError,
    log_sinkhorn_step,
    sinkhorn,
    sinkhorn_cost,
    squared_distances,
)

DT = torch.float64


def _cloud(n, d, seed, shift=0.0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=gen, dtype=DT) + shift


def _marginal_error(P, a, b):
    return float((P.sum(1) - a).abs().sum() + (P.sum(0) - b).abs().sum())


# ------------------------------------------------------------------- closed form (theory.md §2)
@pytest.mark.parametrize("sigma", [0.5, 1.0, 2.0])
def test_gaussian_cross_covariance(sigma):
    """N(−a, I) → N(a, I) with reference σW: Cov(X0, X1) = c I, c = (√(4 + σ⁴) − σ²)/2, ε = 2σ²."""
    n, d = 800, 2
    m0 = torch.tensor([-1.0, 0.5], dtype=DT)
    x0, x1 = _cloud(n, d, 1) + m0, _cloud(n, d, 2) - m0
    res = sinkhorn(x0, x1, 2 * sigma**2)
    assert res.converged
    P = res.plan()
    c0 = x0 - P.sum(1) @ x0
    c1 = x1 - P.sum(0) @ x1
    cross = c0.T @ P @ c1                      # Σ_ij π_ij (x0_i − m0)(x1_j − m1)ᵀ
    c = (math.sqrt(4 + sigma**4) - sigma**2) / 2
    # Monte-Carlo error: the sample cross-covariance of n pairs with unit variances and correlation c
    # has standard error √((1 + c²)/n); the plan on samples adds a fluctuation of the same order.
    se = math.sqrt((1 + c * c) / n)
    assert torch.allclose(cross, c * torch.eye(d, dtype=DT), atol=5 * se)


# ----------------------------------------------------------------------------------- vs POT
@pytest.mark.parametrize("eps", [0.5, 0.05, 0.01])
def test_matches_pot_sinkhorn_log(eps):
    x0, x1 = _cloud(40, 2, 3), _cloud(30, 2, 4, shift=1.0)
    gen = torch.Generator().manual_seed(5)
    a = torch.rand(40, generator=gen, dtype=DT) + 0.1
    b = torch.rand(30, generator=gen, dtype=DT) + 0.1
    a, b = a / a.sum(), b / b.sum()
    C = squared_distances(x0, x1)
    C = C / C.max()
    res = sinkhorn_cost(C, eps, a, b, tol=1e-11, max_iter=100_000)
    P_pot, log = ot.bregman.sinkhorn_log(a, b, C, eps, stopThr=1e-13, numItermax=100_000, log=True)
    assert res.converged
    # both plans satisfy the marginals to ~1e-11, so they agree to that order (the plan is unique)
    assert (res.plan() - P_pot).abs().sum() < 1e-8
    # POT's log-scalings are f/ε + log a up to a constant shared with f1
    shift = log["log_u"] - (res.f0 / eps + torch.log(a))
    assert float(shift.max() - shift.min()) < 1e-6
    assert math.isclose(res.cost, float((C * P_pot).sum()), rel_tol=1e-8)


@pytest.mark.parametrize("eps", [1e-3, 1e-4])
def test_small_eps_cost_close_to_emd(eps):
    """0 ≤ ⟨C, π_ε⟩ − OT ≤ ε KL(π_OT ‖ a⊗b) ≤ ε log min(n, m) (uniform weights)."""
    n, m = 50, 40
    x0, x1 = _cloud(n, 2, 6), _cloud(m, 2, 7, shift=0.5)
    C = squared_distances(x0, x1)
    C = C / C.max()
    res = sinkhorn_cost(C, eps, tol=1e-9, max_iter=100_000)
    assert res.converged
    u = lambda k: torch.full((k,), 1.0 / k, dtype=DT)  # noqa: E731
    ot_cost = float(ot.emd2(u(n), u(m), C))
    slack = 1e-9 * float(C.max())                # marginal error tol × max cost
    assert -slack <= res.cost - ot_cost <= eps * math.log(min(n, m)) + slack


def test_small_eps_newton_phase_converges(monkeypatch):
    """8-gaussians → moons at ε = 1e-4: Sinkhorn's slow phase, finished by the Newton steps."""
    import lsbcore.schrodinger._sinkhorn as sk
    from lsbcore.marginals import eight_gaussians, moons

    calls = []
    newton = sk.newton_step
    monkeypatch.setattr(sk, "newton_step", lambda *args: calls.append(1) or newton(*args))
    n, eps = 300, 1e-4
    x0 = eight_gaussians(n, seed=1).double()
    x1 = moons(n, seed=2).double()
    res = sk.sinkhorn(x0, x1, eps, normalize=True, max_iter=20_000)
    assert res.converged and calls                 # the Newton phase ran and finished the job
    u = torch.full((n,), 1.0 / n, dtype=DT)
    assert _marginal_error(res.plan(), u, u) <= 1e-6
    ot_cost = float(ot.emd2(u, u, res.C))
    assert -1e-6 <= res.cost - ot_cost <= eps * math.log(n) + 1e-6


def test_log_sinkhorn_step_matches_formula_and_fixes_rows():
    x0, x1 = _cloud(7, 2, 8), _cloud(5, 2, 9)
    C, eps = squared_distances(x0, x1), 0.3
    f1 = torch.randn(5, dtype=DT, generator=torch.Generator().manual_seed(1))
    a, b = torch.full((7,), 1 / 7, dtype=DT), torch.full((5,), 1 / 5, dtype=DT)
    f0 = log_sinkhorn_step(f1, C, eps, torch.log(b))
    naive = -eps * torch.log((b * torch.exp((f1 - C) / eps)).sum(1))
    torch.testing.assert_close(f0, naive)
    P = a[:, None] * b[None, :] * torch.exp((f0[:, None] + f1[None, :] - C) / eps)
    torch.testing.assert_close(P.sum(1), a)
    # at the solution each potential is the half-step of the other
    res = sinkhorn_cost(C, eps, tol=1e-12)
    torch.testing.assert_close(log_sinkhorn_step(res.f1, C, eps, torch.log(b)), res.f0, atol=1e-10, rtol=0)


# ------------------------------------------------------------------------ properties
@settings(max_examples=25, deadline=None, derandomize=True)
@given(n=st.integers(1, 30), m=st.integers(1, 30), d=st.integers(1, 3),
       log_eps=st.floats(-4, 1), seed=st.integers(0, 2**16), zero_weight=st.booleans())
def test_property_marginals_and_no_nan(n, m, d, log_eps, seed, zero_weight):
    eps = 10.0**log_eps
    x0, x1 = _cloud(n, d, seed), _cloud(m, d, seed + 1, shift=0.3)
    gen = torch.Generator().manual_seed(seed)
    a = torch.rand(n, generator=gen, dtype=DT) + 0.05
    b = torch.rand(m, generator=gen, dtype=DT) + 0.05
    if zero_weight and n > 1:
        a[0] = 0.0
    try:
        res = sinkhorn(x0, x1, eps, a, b, normalize=True, max_iter=50_000, on_fail="raise")
    except SinkhornConvergenceError as err:
        # allowed only at the smallest ε (e.g. a 4×4 plan in 1-D whose blocks are joined by an entry of
        # 1e-74: no scaling or Newton step moves it), and then it says so, with the plan's true error
        assert eps < 1e-3 and "beyond this solver" in str(err)
        res = err.result
        P = res.plan()
        assert torch.isfinite(P).all()
        assert math.isclose(_marginal_error(P, a / a.sum(), b / b.sum()), res.error, rel_tol=1e-6, abs_tol=1e-15)
        return
    P = res.plan()
    assert torch.isfinite(P).all() and torch.isfinite(res.f0).all() and torch.isfinite(res.f1).all()
    assert res.converged and res.errors[-1] <= 1e-6
    assert _marginal_error(P, a / a.sum(), b / b.sum()) <= 1e-6 * (1 + 1e-6) + 1e-13


@pytest.mark.parametrize("eps", [1e-2, 1e-3])
def test_same_plan_with_and_without_acceleration(eps):
    x0, x1 = _cloud(60, 2, 10), _cloud(50, 2, 11, shift=0.5)
    kw = dict(normalize=True, tol=1e-8, max_iter=100_000)
    fast = sinkhorn(x0, x1, eps, **kw)
    plain = sinkhorn(x0, x1, eps, eps_scaling=False, overrelax=False, **kw)
    assert fast.converged and plain.converged
    # two plans with marginal errors ≤ 1e-8 of the same strictly convex problem
    assert (fast.plan() - plain.plan()).abs().sum() < 1e-5


def test_raw_cost_small_eps_stays_finite():
    """Far-apart clouds with a tiny ε on the raw cost: exp(−C/ε) underflows, the solver does not."""
    x0, x1 = 10 * _cloud(80, 2, 12), 10 * _cloud(70, 2, 13, shift=1.0)
    eps = 5.0
    C = squared_distances(x0, x1)
    assert float(C.max()) / eps > 1000 and float(torch.exp(-C / eps).min()) == 0.0   # underflow
    res = sinkhorn(x0, x1, eps, max_iter=50_000)
    assert torch.isfinite(res.plan()).all()
    assert res.converged and res.cost_scale == 1.0


def test_normalize_is_cost_over_max():
    x0, x1 = _cloud(20, 2, 14), _cloud(25, 2, 15)
    C = squared_distances(x0, x1)
    r1 = sinkhorn(x0, x1, 0.05, normalize=True)
    r2 = sinkhorn_cost(C / C.max(), 0.05)
    torch.testing.assert_close(r1.plan(), r2.plan())
    assert math.isclose(r1.cost_scale, float(C.max()))


def test_float32_supported():
    x0, x1 = _cloud(100, 2, 16).float(), _cloud(90, 2, 17).float()
    res = sinkhorn(x0, x1, 0.01, normalize=True, tol=1e-5)
    assert res.converged and res.f0.dtype == torch.float32 and res.plan().dtype == torch.float32
    ref = sinkhorn(x0.double(), x1.double(), 0.01, normalize=True, tol=1e-9)
    assert (res.plan().double() - ref.plan()).abs().sum() < 1e-4


# ------------------------------------------------------------------------ failure is loud
def test_unconverged_warns_or_raises_with_error():
    x0, x1 = _cloud(60, 2, 18), _cloud(60, 2, 19, shift=2.0)
    with pytest.warns(RuntimeWarning, match="marginal error"):
        res = sinkhorn(x0, x1, 1e-4, normalize=True, max_iter=3)
    assert not res.converged and res.error > 1e-6 and res.eps == 1e-4
    P = res.plan()
    assert torch.isfinite(P).all()
    # the error reported is the one of the returned plan, at the requested ε
    a = torch.full((60,), 1 / 60, dtype=DT)
    assert math.isclose(_marginal_error(P, a, a), res.error, rel_tol=1e-6)
    with pytest.raises(SinkhornConvergenceError) as info:
        sinkhorn(x0, x1, 1e-4, normalize=True, max_iter=3, on_fail="raise")
    assert info.value.error > 1e-6 and not info.value.result.converged


def test_errors_history_and_iterations():
    x0, x1 = _cloud(50, 2, 20), _cloud(40, 2, 21)
    res = sinkhorn(x0, x1, 0.5, check_every=1, overrelax=False, eps_scaling=False)
    assert res.converged and len(res.errors) == res.n_iter + 1
    assert res.errors[-1] <= 1e-6 < res.errors[0]


# --------------------------------------------------------------------------------- sampling
def test_sample_indices_follow_the_plan():
    C = torch.tensor([[0.0, 1.0, 2.0, 0.5], [1.0, 0.0, 0.3, 2.0], [0.2, 2.0, 0.0, 1.0]], dtype=DT)
    res = sinkhorn_cost(C, 0.5, tol=1e-10)
    N = 40_000
    i, j = res.sample_indices(N, seed=3)
    counts = torch.zeros(3, 4, dtype=DT).index_put_((i, j), torch.ones(N, dtype=DT), accumulate=True)
    p = res.plan()
    se = torch.sqrt(p * (1 - p) / N)
    assert ((counts / N - p).abs() <= 5 * se).all()
    i2, j2 = res.sample_indices(N, seed=3)
    assert torch.equal(i, i2) and torch.equal(j, j2)
    with pytest.raises(ValueError, match="sample_indices"):
        res.sample_pairs(5)


def test_sample_pairs_are_rows_of_the_clouds():
    x0, x1 = _cloud(30, 3, 22), _cloud(20, 3, 23)
    res = sinkhorn(x0, x1, 0.1, normalize=True)
    X0, X1 = res.sample_pairs(100, seed=torch.Generator().manual_seed(0))
    assert X0.shape == (100, 3) and X1.shape == (100, 3)
    assert (X0[:, None, :] == x0[None]).all(-1).any(1).all()
    assert (X1[:, None, :] == x1[None]).all(-1).any(1).all()


# ------------------------------------------------------------------------------ bad input
def _bad_cases():
    x, y = _cloud(5, 2, 0), _cloud(4, 2, 1)
    nan = x.clone()
    nan[0, 0] = float("nan")
    inf = y.clone()
    inf[1, 1] = float("inf")
    return [
        (dict(x0=nan, x1=y, eps=0.1), ValueError, "x0"),
        (dict(x0=x, x1=inf, eps=0.1), ValueError, "x1"),
        (dict(x0=x, x1=_cloud(4, 3, 1), eps=0.1), ValueError, "x1"),
        (dict(x0=x, x1=y, eps=0.1, a=torch.tensor([1, -1, 1, 1, 1], dtype=DT)), ValueError, "a"),
        (dict(x0=x, x1=y, eps=0.1, b=torch.ones(5, dtype=DT)), ValueError, "b"),
        (dict(x0=x, x1=y, eps=0.0), ValueError, "eps"),
        (dict(x0=x, x1=y, eps=-1.0), ValueError, "eps"),
        (dict(x0=x, x1=y, eps=float("nan")), ValueError, "eps"),
        (dict(x0=x, x1=y, eps="0.1"), TypeError, "eps"),
        (dict(x0=x[:0], x1=y, eps=0.1), ValueError, "x0"),
        (dict(x0=x, x1=y[:0], eps=0.1), ValueError, "x1"),
        (dict(x0=x, x1=torch.zeros(4, 2, device="meta"), eps=0.1), ValueError, "x1"),
        (dict(x0=x, x1=y, eps=0.1, a=torch.ones(5, device="meta")), ValueError, "a"),
        (dict(x0=x.long(), x1=y, eps=0.1), TypeError, "x0"),
        (dict(x0=[[0.0]], x1=y, eps=0.1), TypeError, "x0"),
        (dict(x0=x, x1=y, eps=0.1, on_fail="ignore"), ValueError, "on_fail"),
        (dict(x0=x, x1=y, eps=0.1, tol=0.0), ValueError, "tol"),
        (dict(x0=x, x1=y, eps=0.1, max_iter=0), ValueError, "max_iter"),
        (dict(x0=x, x1=y, eps=0.1, eps_scaling=1.5), ValueError, "eps_scaling"),
    ]


@pytest.mark.parametrize("kwargs,exc,name", _bad_cases())
def test_bad_input_names_the_argument(kwargs, exc, name):
    with pytest.raises(exc, match=name):
        sinkhorn(**kwargs)


@pytest.mark.parametrize("C,exc,name", [
    (np.zeros((3, 3)), TypeError, "C"),
    (torch.zeros(3), ValueError, "C"),
    (torch.zeros(0, 3, dtype=DT), ValueError, "C"),
    (torch.tensor([[0.0, float("inf")]], dtype=DT), ValueError, "C"),
])
def test_bad_cost_names_the_argument(C, exc, name):
    with pytest.raises(exc, match=name):
        sinkhorn_cost(C, 0.1)


def test_log_sinkhorn_step_rejects_bad_shapes():
    C = torch.zeros(3, 4, dtype=DT)
    with pytest.raises(ValueError, match="potential"):
        log_sinkhorn_step(torch.zeros(3, dtype=DT), C, 0.1, torch.zeros(4, dtype=DT))
    with pytest.raises(ValueError, match="eps"):
        log_sinkhorn_step(torch.zeros(4, dtype=DT), C, 0.0, torch.zeros(4, dtype=DT))


# ------------------------------------------------------------------- subnormal numbers (speed, not value)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_kernel_and_plan_hold_no_subnormal_numbers(dtype, monkeypatch):
    """At ε ≪ max C most of the Gibbs kernel is below the smallest normal number; such entries are
    stored as exact zeros (subnormal arithmetic is ~15× slower on CPUs), and the plan is the same as
    the one the solver finds when it keeps them, to the tolerance it was asked for."""
    import lsbcore.schrodinger._sinkhorn as sk

    gen = torch.Generator().manual_seed(0)
    x0 = 5 * torch.randn(64, 2, generator=gen, dtype=dtype)
    x1 = torch.randn(64, 2, generator=gen, dtype=dtype)
    eps = 0.5 if dtype == torch.float32 else 0.05      # exp(−max C/ε) far below finfo.tiny
    tiny = torch.finfo(dtype).tiny
    assert float(squared_distances(x0, x1).max()) / eps > -math.log(tiny)
    res = sinkhorn(x0, x1, eps, tol=1e-5, max_iter=5000)
    assert res.converged
    K = sk._kernel(res.C, res.f0, res.f1, eps)
    assert bool(((K == 0) | (K >= math.sqrt(tiny))).all())       # nothing subnormal, nor close to it
    assert bool((K == 0).any())                                   # the case this test is about
    P = res.plan()
    assert bool(((P == 0) | (P >= tiny)).all())
    monkeypatch.setattr(sk, "flush_exp_", lambda x, floor=1.0: x.exp_())   # keep every entry
    ref = sinkhorn(x0, x1, eps, tol=1e-5, max_iter=5000)
    assert ref.converged
    assert float((P.double() - ref.plan().double()).abs().sum()) < 2e-5
