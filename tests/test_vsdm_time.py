"""VSDM with a time-varying A_t (lsbcore.bridges.vsdm_time): the Lyapunov solver against scipy, the exact
piecewise transitions, the failure of the commuting-generator closed form, and the bridge plumbing."""
import math

import numpy as np
import pytest
import torch
from scipy.integrate import quad, solve_ivp

from lsbcore.bridges.reference import VP
from lsbcore.bridges.vsdm import VSDM, LinearForward, update_A
from lsbcore.bridges.vsdm_time import TimeVaryingForward, lyapunov_moments
from lsbcore.linear_sde import linear_sde_moments
from lsbcore.nets import TimeMLP

D64 = torch.float64
SCH = VP(0.1, 10.0, 1.7)
A2 = np.array([[0.3, 1.2], [-0.4, -0.5]])
A3 = np.array([[0.3, 1.2, 0.0], [-0.4, -0.5, 0.7], [0.2, 0.0, 0.1]])
TS = np.array([0.7, 0.0, 0.01, 1 / 3, 0.3, 1.0, 0.3])          # unsorted, with a repeat and t = 0


def _beta(t):
    return float(SCH.beta(torch.tensor(float(t), dtype=D64)))


def _scipy_moments(M_np, g2_np, d, ts, breaks=()):
    """Φ, Σ from DOP853 on [0, 1], restarted at each break (where M may jump)."""
    def rhs(t, y):
        S, P, M = y[: d * d].reshape(d, d), y[d * d:].reshape(d, d), M_np(t)
        return np.concatenate([(M @ S + S @ M.T + g2_np(t) * np.eye(d)).ravel(), (M @ P).ravel()])

    out, y = {}, np.concatenate([np.zeros(d * d), np.eye(d).ravel()])
    knots = [0.0, *breaks, 1.0]
    for lo, hi in zip(knots[:-1], knots[1:]):
        ev = sorted({float(t) for t in ts if lo <= t <= hi})
        sol = solve_ivp(rhs, (lo, hi), y, method="DOP853", t_eval=ev, rtol=1e-11, atol=1e-13)
        out.update({t: sol.y[:, i] for i, t in enumerate(ev)})
        y = solve_ivp(rhs, (lo, hi), y, method="DOP853", rtol=1e-11, atol=1e-13).y[:, -1]
    ys = np.stack([out[float(t)] for t in ts])
    return ys[:, d * d:].reshape(-1, d, d), ys[:, : d * d].reshape(-1, d, d)


def _problem(A, a=torch.sin, a_np=math.sin):
    """M(t) = −½β_t(I − 2a(3t)A): torch and numpy versions."""
    d, At = len(A), torch.tensor(A)

    def M_fn(t):
        return -0.5 * SCH.beta(t)[:, None, None] * (torch.eye(d, dtype=D64) - 2 * a(3 * t)[:, None, None] * At)

    return M_fn, lambda t: -0.5 * _beta(t) * (np.eye(d) - 2 * a_np(3 * t) * A)


@pytest.mark.parametrize("A", [A2, A3])
def test_lyapunov_moments_match_scipy_for_a_time_varying_non_normal_generator(A):
    d = len(A)
    M_fn, M_np = _problem(A)
    Phi, Sig = lyapunov_moments(M_fn, SCH.beta, torch.tensor(TS))
    Phi_ref, Sig_ref = _scipy_moments(M_np, _beta, d, TS)
    assert Phi.shape == Sig.shape == (len(TS), d, d) and Phi.dtype == D64
    np.testing.assert_allclose(Phi.numpy(), Phi_ref, atol=1e-10, rtol=0)
    np.testing.assert_allclose(Sig.numpy(), Sig_ref, atol=1e-10, rtol=0)
    assert torch.equal(Phi[1], torch.eye(d, dtype=D64)) and torch.equal(Sig[1], torch.zeros(d, d, dtype=D64))
    # 4th order: 128 steps are already good to ~1e-7 (and 16× better per doubling)
    err = (lyapunov_moments(M_fn, SCH.beta, torch.tensor(TS), substeps=128)[1].numpy() - Sig_ref).max()
    assert abs(err) < 1e-7


def test_constant_generator_equals_the_matrix_exponential():
    M = torch.tensor(A2 - 0.8 * np.eye(2))
    ts = torch.tensor([0.0, 0.25, 0.5, 1.0], dtype=D64)
    Phi, Sig = lyapunov_moments(lambda t: M.expand(len(t), 2, 2), lambda t: torch.full_like(t, 2.5), ts)
    z = torch.zeros(2, dtype=D64)
    ref = linear_sde_moments(M, z, math.sqrt(2.5), z, torch.zeros(2, 2, dtype=D64), ts)
    torch.testing.assert_close(Phi, ref.Phi, atol=1e-9, rtol=0)
    torch.testing.assert_close(Sig, ref.noise_cov, atol=1e-9, rtol=0)
    # constant A with the VSDM schedule (commuting generators): the closed form of LinearForward
    f = LinearForward(2, seed=1)
    with torch.no_grad():
        f.s.copy_(torch.tensor([0.7, -0.4], dtype=D64))
    D = f.D().detach()
    Phi, Sig = lyapunov_moments(lambda t: -0.5 * f.beta(t)[:, None, None] * D, f.beta, ts)
    P_ref, S_ref = f.transition(ts)
    torch.testing.assert_close(Phi, P_ref.detach(), atol=1e-9, rtol=0)
    torch.testing.assert_close(Sig, S_ref.detach(), atol=1e-9, rtol=0)


def test_the_commuting_generator_closed_form_is_wrong_for_a_varying_a_t():
    """Upstream VSDM: Σ from exp(∫G) with the Van Loan block generator G_t; wrong once a(t) varies."""
    M_fn, M_np = _problem(A2, torch.cos, math.cos)             # A_t = cos(3t) A
    ts = np.array([0.5, 1.0])
    Phi_ref, Sig_ref = _scipy_moments(M_np, _beta, 2, ts)
    _, Sig = lyapunov_moments(M_fn, SCH.beta, torch.tensor(ts))
    for t, S_ref, S in zip(ts, Sig_ref, Sig.numpy()):
        ib = quad(_beta, 0, t, epsabs=1e-13)[0]
        iba = quad(lambda u: _beta(u) * math.cos(3 * u), 0, t, epsabs=1e-13)[0]
        iM = -0.5 * ib * np.eye(2) + iba * A2                  # ∫_0^t M
        G = torch.tensor(np.block([[-iM, ib * np.eye(2)], [np.zeros((2, 2)), iM.T]]))
        F = torch.linalg.matrix_exp(G).numpy()
        naive = F[2:, 2:].T @ F[:2, 2:]
        np.testing.assert_allclose(S, S_ref, atol=1e-8, rtol=0)
        if t == 1.0:
            assert abs(naive - S_ref).max() > 0.1
            assert abs(naive[0, 0] - S_ref[0, 0]) > 0.7          # Σ₁₁: 1.206 instead of 1.935
            np.testing.assert_allclose(F[2:, 2:].T, Phi_ref[-1], atol=1e-8)  # Φ is right (M_t commute)


def _tv(dim=2, pieces=3, seed=0, s=None, **kw):
    f = TimeVaryingForward(dim, pieces=pieces, seed=seed, **kw)
    g = torch.Generator().manual_seed(seed + 7)
    with torch.no_grad():
        for sk in f.s_pieces():
            sk.copy_(torch.rand(dim, generator=g, dtype=D64) * 1.6 - 0.8 if s is None else torch.tensor(s, dtype=D64))
    return f


def test_one_piece_reproduces_linear_forward():
    ts = torch.tensor([0.0, 1e-3, 0.2, 0.5, 1.0], dtype=D64)
    lin, tv = LinearForward(2, seed=4), _tv(pieces=1, seed=4, s=[0.6, -0.3])
    with torch.no_grad():
        lin.s.copy_(torch.tensor([0.6, -0.3], dtype=D64))
        P0, S0 = lin.transition(ts)
        P1, S1 = tv.transition(ts)
        torch.testing.assert_close(P1, P0, atol=1e-12, rtol=0)
        torch.testing.assert_close(S1, S0, atol=1e-12, rtol=0)
        torch.testing.assert_close(tv.A(), lin.A(), atol=1e-15, rtol=0)
        # two equal pieces: the composition across the boundary t = ½ is exact
        two = _tv(pieces=2, seed=4, s=[0.6, -0.3])
        two.U_rest[0].weight, two.V_rest[0].weight = tv.U.weight, tv.V.weight
        P3, S3 = two.transition(ts)
        torch.testing.assert_close(P3, P0, atol=1e-12, rtol=0)
        torch.testing.assert_close(S3, S0, atol=1e-12, rtol=0)
        # the same through the ODE solver (a profile ≡ 1)
        P2, S2 = _tv(pieces=1, seed=4, s=[0.6, -0.3], profile=torch.ones_like).transition(ts)
        torch.testing.assert_close(P2, P0, atol=1e-10, rtol=0)
        torch.testing.assert_close(S2, S0, atol=1e-10, rtol=0)


@pytest.mark.parametrize("profile", [None, "cos"])
def test_piecewise_transitions_match_scipy_including_piece_boundaries(profile):
    prof = (lambda t: torch.cos(2 * t)) if profile else None
    f = _tv(dim=2, pieces=3, seed=2, profile=prof)
    ts = np.array([0.0, 0.05, 1 / 3, 0.5, 2 / 3, 0.9, 1.0, 1 / 3])
    with torch.no_grad():
        Phi, Sig = f.transition(torch.tensor(ts))
        Ak = f.A_pieces().numpy()
    a = (lambda t: math.cos(2 * t)) if profile else (lambda t: 1.0)

    def M_np(t):
        return -0.5 * _beta(t) * (np.eye(2) - 2 * a(t) * Ak[min(int(t * 3), 2)])

    Phi_ref, Sig_ref = _scipy_moments(M_np, _beta, 2, ts, breaks=(1 / 3, 2 / 3))
    np.testing.assert_allclose(Phi.numpy(), Phi_ref, atol=1e-8, rtol=0)
    np.testing.assert_allclose(Sig.numpy(), Sig_ref, atol=1e-8, rtol=0)
    assert torch.linalg.eigvalsh(Sig[1:]).min() > 0
    # the pieces really differ: a constant A (piece 0 everywhere) gives another Σ_1
    assert abs(Sig[-1].numpy() - _scipy_moments(lambda t: -0.5 * _beta(t) * (np.eye(2) - 2 * a(t) * Ak[0]),
                                                _beta, 2, [1.0])[1][0]).max() > 1e-2


def test_A_at_D_at_gradients_and_clamp():
    f = _tv(dim=2, pieces=3, seed=1)
    Ak = f.A_pieces().detach()
    ts = torch.tensor([0.0, 0.2, 1 / 3, 0.5, 2 / 3, 1.0], dtype=D64)
    A = f.A_at(ts)
    assert A.shape == (6, 2, 2) and A.requires_grad
    assert f.piece(ts).tolist() == [0, 0, 1, 1, 2, 2]
    torch.testing.assert_close(A.detach(), Ak[[0, 0, 1, 1, 2, 2]])
    D = f.D_at(ts)
    assert D.shape == (6, 2, 2) and not D.requires_grad
    torch.testing.assert_close(D, torch.eye(2, dtype=D64) - 2 * Ak[[0, 0, 1, 1, 2, 2]])
    torch.testing.assert_close(f.A(), Ak.mean(0), check_stride=False)
    f.A_at(ts).sum().backward()
    assert all(s.grad is not None and float(s.grad.abs().sum()) > 0 for s in f.s_pieces())
    # a profile scales A_t and D_t
    g = _tv(dim=2, pieces=3, seed=1, profile=lambda t: 1 - t)
    scaled = (1 - ts)[:, None, None] * Ak[[0, 0, 1, 1, 2, 2]]
    torch.testing.assert_close(g.A_at(ts).detach(), scaled)
    torch.testing.assert_close(g.D_at(ts), torch.eye(2, dtype=D64) - 2 * scaled)
    with torch.no_grad():
        for k, s in enumerate(f.s_pieces()):
            s.fill_(5.0 * (-1) ** k)
    f.clamp_()
    assert all(float(s.detach().abs().max()) <= f.s_max for s in f.s_pieces())
    assert "pieces=3" in repr(f)


def test_bad_inputs_name_the_argument():
    f = _tv()
    for bad in (torch.tensor([0.5, float("nan")], dtype=D64), torch.tensor([1.5], dtype=D64), torch.tensor([-0.1])):
        for call in (f.transition, f.A_at, f.D_at):
            with pytest.raises(ValueError, match="t "):
                call(bad)
    M_fn = lambda t: torch.zeros(len(t), 2, 2, dtype=D64)   # noqa: E731
    with pytest.raises(ValueError, match="times"):
        lyapunov_moments(M_fn, torch.ones_like, torch.tensor([0.2, float("nan")]))
    with pytest.raises(ValueError, match="times"):
        lyapunov_moments(M_fn, torch.ones_like, torch.tensor([0.2, 1.5]))
    with pytest.raises(ValueError, match="times"):
        lyapunov_moments(M_fn, torch.ones_like, torch.zeros(2, 2))
    with pytest.raises(TypeError, match="M_fn"):
        lyapunov_moments(None, torch.ones_like, torch.tensor([0.5]))
    with pytest.raises(ValueError, match="g2_fn"):
        lyapunov_moments(M_fn, lambda t: torch.ones(1), torch.tensor([0.5]))
    with pytest.raises(ValueError, match="substeps"):
        lyapunov_moments(M_fn, torch.ones_like, torch.tensor([0.5]), substeps=0)
    with pytest.raises(ValueError, match="pieces"):
        TimeVaryingForward(2, pieces=0)
    with pytest.raises(TypeError, match="pieces"):
        TimeVaryingForward(2, pieces=1.5)
    with pytest.raises(TypeError, match="profile"):
        TimeVaryingForward(2, profile=3.0)
    with pytest.raises(ValueError, match="profile"):
        TimeVaryingForward(2, profile=lambda t: t[:2])


def test_vsdm_bridge_with_a_time_varying_forward():
    fwd = _tv(dim=2, pieces=2, seed=0)
    bridge = VSDM(fwd, TimeMLP(2, width=16))
    for method in ("ode", "sde"):
        x = bridge.sample(64, method=method, steps=4).x
        assert x.shape == (64, 2) and bool(torch.isfinite(x).all())
    # table() follows every piece's parameters
    t1 = fwd.table(n_grid=16)[2].clone()
    with torch.no_grad():
        fwd.s_rest[0].mul_(0.5)
    assert not torch.equal(fwd.table(n_grid=16)[2], t1)
    before = [s.detach().clone() for s in fwd.s_pieces()]
    update_A(bridge, torch.optim.Adam(fwd.parameters(), lr=0.01), n=16, steps=4)
    assert sum(not torch.equal(b, s.detach()) for b, s in zip(before, fwd.s_pieces())) >= 2
    # a per-row time column spanning both pieces == row-by-row evaluation
    x = torch.randn(6, 2, generator=torch.Generator().manual_seed(0))
    tcol = torch.tensor([0.1, 0.3, 0.49, 0.5, 0.7, 0.95])[:, None]
    rows = torch.cat([bridge.drift(x[i:i + 1], tcol[i:i + 1]) for i in range(6)])
    torch.testing.assert_close(bridge.drift(x, tcol), rows)
    rows = torch.cat([bridge.velocity(x[i:i + 1], tcol[i:i + 1]) for i in range(6)])
    torch.testing.assert_close(bridge.velocity(x, tcol), rows)
    # and with a profile (transitions through the ODE solver)
    bridge = VSDM(_tv(dim=2, pieces=2, seed=0, profile=lambda t: 1 + t), TimeMLP(2, width=16))
    x = bridge.sample(32, method="ode", steps=3).x
    assert x.shape == (32, 2) and bool(torch.isfinite(x).all())
