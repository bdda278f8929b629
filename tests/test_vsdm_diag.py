"""VSDM with a diagonal A (lsbcore.bridges.vsdm_diag) and the digits experiment (lsbcore.vsdm_digits)."""
import math

import pytest
import torch
from torch import nn

from lsbcore.bridges.vsdm import VSDM, LinearForward, backward_score_loss, update_A
from lsbcore.bridges.vsdm_diag import DiagonalForward, diag_score_loss, fit_vsdm_diag
from lsbcore.nets import TimeMLP
from lsbcore.vsdm_digits import diag_image, run

S_VALUES = [[-0.9, -0.3, 0.0, 0.2, 0.5, 0.5 + 1e-9, 0.95], [0.0] * 7]
TIMES = torch.tensor([1e-3, 0.05, 0.3, 0.7, 1.0], dtype=torch.float64)


def _forward(cls, s, **kw):
    fwd = cls(len(s), **kw)
    with torch.no_grad():
        fwd.s.copy_(torch.tensor(s, dtype=torch.float64))
    return fwd


@pytest.mark.parametrize("s", S_VALUES)
@pytest.mark.parametrize("beta_max", [10.0, 20.0])
def test_moments_match_linear_forward(s, beta_max):
    """Same diagonal A by hand in LinearForward (U = V = I): the same Φ, Σ (float64, 1e-10)."""
    d, l = _forward(DiagonalForward, s, beta_max=beta_max), _forward(LinearForward, s, beta_max=beta_max)
    torch.testing.assert_close(d.A(), l.A().detach(), atol=0, rtol=0)
    for (Pd, Sd), (Pl, Sl) in [(d.transition(TIMES), l.transition(TIMES))]:
        torch.testing.assert_close(Pd, Pl, atol=1e-10, rtol=0)
        torch.testing.assert_close(Sd, Sl, atol=1e-10, rtol=0)
    torch.testing.assert_close(d.prior_cov(), l.prior_cov(), atol=1e-10, rtol=0)
    _, Pt, Lt = d.table(n_grid=16)
    _, Pl, Ll = l.table(n_grid=16)
    torch.testing.assert_close(Pt, Pl, atol=1e-10, rtol=0)
    torch.testing.assert_close(Lt, Ll, atol=1e-10, rtol=0)


def test_moments_match_euler_maruyama():
    """One coordinate per s, simulated in the time τ = ∫β (dX = −½(1 − 2s) X dτ + dW_τ) from x0 = 1.
    Tolerance: 4 Monte Carlo standard errors + the O(h) bias of Euler–Maruyama (relative ≈ τk²h/8 ≤ 0.7 % for the mean, kh/4 ≤ 0.2 % for Σ)."""
    s = torch.tensor([-0.8, 0.0, 0.5, 0.9], dtype=torch.float64)
    fwd = _forward(DiagonalForward, s.tolist())
    phi, var = (v[0] for v in fwd.diag_transition(1.0))
    tau, n, N = float(fwd.schedule.int_beta(torch.tensor(1.0))), 20_000, 2_000
    h, k = tau / N, 1 - 2 * s
    gen = torch.Generator().manual_seed(0)
    x = torch.ones(n, 4, dtype=torch.float64)
    for _ in range(N):
        x = x - 0.5 * k * x * h + math.sqrt(h) * torch.randn(n, 4, generator=gen, dtype=torch.float64)
    se_mean, se_var = (var / n).sqrt(), var * math.sqrt(2 / n)
    assert ((x.mean(0) - phi).abs() < 4 * se_mean + 0.01 * phi.abs()).all()
    assert ((x.var(0) - var).abs() < 4 * se_var + 0.01 * var).all()


def test_s_zero_is_the_vp_sde():
    fwd = DiagonalForward(3, beta_max=20.0)
    phi, var = fwd.diag_transition(TIMES)
    alpha = torch.exp(-0.5 * fwd.schedule.int_beta(TIMES))[:, None].expand(-1, 3)
    torch.testing.assert_close(phi, alpha, atol=1e-14, rtol=0)
    torch.testing.assert_close(var, 1 - alpha**2, atol=1e-14, rtol=0)


def test_gradient_through_the_half_limit():
    """σ² is smooth in s at s = ½ (k = 0): the gradient there is finite and matches a central difference."""
    fwd = _forward(DiagonalForward, [0.5])
    var = fwd.diag_transition(1.0)[1].sum()
    var.backward()
    g = float(fwd.s.grad)
    f = lambda s: float(_forward(DiagonalForward, [s]).diag_transition(1.0)[1].detach())  # noqa: E731
    assert math.isfinite(g) and abs(g - (f(0.5 + 1e-5) - f(0.5 - 1e-5)) / 2e-5) < 1e-5 * abs(g)


def test_vsdm_machinery_runs_and_keeps_A_diagonal():
    data = torch.randn(256, 4) * torch.tensor([0.2, 1.0, 3.0, 6.0])
    fwd = _forward(DiagonalForward, [0.1, -0.2, 0.3, 0.0])
    net = TimeMLP(4, width=16, depth=2, seed=0)
    # the dense LinearForward loss and the elementwise one: same draws, same value
    a, b = backward_score_loss(fwd, net, data[:64], seed=7), diag_score_loss(fwd, net, data[:64], seed=7)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    xt, eps, L = fwd.sample_xt(data[:8], 0.5, seed=1)
    phi, var = fwd.diag_transition(0.5)
    torch.testing.assert_close(xt, (phi[0] * data[:8].double() + var[0].sqrt() * eps.double()).float())
    bridge = VSDM(fwd, net)
    for method in ("ode", "sde"):
        assert bridge.sample(16, method=method, steps=3).x.shape == (16, 4)
    update_A(bridge, torch.optim.Adam(fwd.s_pieces(), lr=0.05), n=32, steps=5)
    assert [p is fwd.s for p in fwd.parameters()] == [True]
    res = fit_vsdm_diag(data, steps=30, batch_size=64, width=16, depth=2, a_every=3, warmup=3, freeze=3,
                        a_paths=32, a_steps=5, progress=False, seed=1)
    As = torch.stack(res.A_history)
    assert len(res.A_history) == 9 and not torch.equal(As[-1], As[0])
    assert torch.equal(As, torch.diag_embed(As.diagonal(dim1=-2, dim2=-1)))
    assert res.bridge.forward.s.abs().max() <= 1.0
    frozen = fit_vsdm_diag(data, adaptive=False, steps=10, batch_size=64, width=16, depth=2, progress=False)
    assert torch.equal(frozen.bridge.forward.s, torch.zeros(4, dtype=torch.float64))


class _ExactNoise(nn.Module):
    """ε(x, t) = σ_t x / v_t: the exact noise of N(0, diag var) data under the forward (v_t = φ² var + σ²)."""

    def __init__(self, fwd, var):
        super().__init__()
        self.fwd, self.var = fwd, var

    def forward(self, x, t):
        phi, sig2 = self.fwd.diag_transition(t.reshape(-1).double())
        return (sig2.sqrt() * x.double() / (phi**2 * self.var + sig2)).to(x.dtype)


def test_update_A_direction_on_anisotropic_gaussian():
    """With the exact score, the gradient of update_A's objective in s_i at the current s is
    Σ_j Δt β_j (ζ + E_q[x_i ∂_i log p_t]) over backward paths q. Stein: E_p[x ∂ log p] = −1, so only where
    the paths' law q differs from the forward marginal p does ζ = 1 move s. Here q starts from the prior
    N(0, Σ_1) while p_1 = N(0, φ² var + Σ_1): the var = 100 coordinate is mismatched (E_q[x ŝ] ≈ −0.3 at
    t = 1), the var = 0.01 one is not. So at ζ = 1 s_high falls (faster noising) and s_low barely moves;
    ζ < 1 adds (1 − ζ) Σ Δt β_j to the descent direction of every coordinate (s_low rises: what the
    pixels do in lsbcore.vsdm_digits)."""
    var = torch.tensor([0.01, 100.0], dtype=torch.float64)
    moves = {}
    for zeta in (1.0, 0.85):
        fwd = DiagonalForward(2)
        bridge = VSDM(fwd, _ExactNoise(fwd, var))
        update_A(bridge, torch.optim.SGD([fwd.s], lr=0.01), n=4000, steps=200, zeta=zeta, seed=0)
        moves[zeta] = fwd.s.detach().clone()
    low, high = moves[1.0]
    assert high < 0 and abs(low) < 0.2 * abs(high)
    ts = torch.linspace(1.0, 1e-3, 201, dtype=torch.float64)[:-1]
    shift = 0.01 * 0.15 * (1 - 1e-3) / 200 * float(fwd.beta(ts).sum())
    torch.testing.assert_close(moves[0.85] - moves[1.0], torch.full((2,), shift, dtype=torch.float64))
    assert moves[0.85][0] > 0 > moves[0.85][1]


def test_bad_inputs_name_the_argument():
    with pytest.raises(ValueError, match="dim"):
        DiagonalForward(0)
    with pytest.raises(ValueError, match="s_max"):
        DiagonalForward(2, s_max=-1.0)
    with pytest.raises(TypeError, match="nonpositive"):
        DiagonalForward(2, nonpositive="yes")
    with pytest.raises(ValueError, match="beta_max"):
        DiagonalForward(2, beta_min=1.0, beta_max=0.5)
    with pytest.raises(ValueError, match="t"):
        DiagonalForward(2).diag_transition(1.5)
    with pytest.raises(TypeError, match="forward"):
        diag_score_loss(LinearForward(2), TimeMLP(2), torch.zeros(4, 2))
    with pytest.raises(ValueError, match="x0"):
        diag_score_loss(DiagonalForward(2), TimeMLP(2), torch.zeros(4, 3))
    with pytest.raises(ValueError, match="a_decay"):
        fit_vsdm_diag(torch.zeros(8, 2), a_decay=2.0)
    with pytest.raises(ValueError, match="forward"):
        diag_image(DiagonalForward(8))
    with pytest.raises(TypeError, match="forward"):
        diag_image("s")
    with pytest.raises(ValueError, match="space"):
        run(0, "voxel")
    with pytest.raises(ValueError, match="model"):
        run(0, "pixel", "DDPM")
    with pytest.raises(ValueError, match="unknown"):
        run(0, "pixel", "VP", stpes=10)


def test_nonpositive_clamp_as_upstream():
    fwd = _forward(DiagonalForward, [-2.0, 0.3], nonpositive=True)
    fwd.clamp_()
    assert fwd.s.tolist() == [-1.0, 0.0]


def test_tiny_digits_run_is_deterministic():
    kw = dict(steps=20, width=16, depth=2, batch_size=64, a_paths=32, a_steps=5, a_every=5, nfes=(6, 8), n_eval=64)
    a, b = run(3, "pixel", "VSDM", return_bridge=True, **kw), run(3, "pixel", "VSDM", **kw)
    assert a["n_A_updates"] == 3 and a["s"] == b["s"] and a["eval"] == b["eval"]
    for ev in a["eval"].values():
        assert {"fdd", "tv_classes", "class_hist", "memorisation", "confidence"} <= set(ev)
        assert math.isfinite(ev["fdd"]) and 0 <= ev["tv_classes"] <= 1 and abs(sum(ev["class_hist"]) - 1) < 1e-9
    img = diag_image(a["bridge"].forward)
    assert img.shape == (8, 8) and img.flatten().tolist() == a["s"]
    lat = run(0, "latent", "VP", **kw)
    assert lat["s"] == [0.0] * 8 and lat["eval"][6]["nfe"] == 6


def test_fit_vsdm_takes_a_forward_process_and_checks_it():
    """fit_vsdm(forward=...) trains the given process (its own score_loss if it has one); a forward of
    another kind or dimension, or one combined with pieces, is an error naming the argument."""
    from lsbcore.bridges.vsdm_fit import fit_vsdm

    data = torch.randn(64, 3, generator=torch.Generator().manual_seed(0))
    res = fit_vsdm(data, forward=DiagonalForward(3), steps=4, batch_size=16, a_every=1, warmup=0, freeze=0,
                   width=8, depth=1, a_paths=8, a_steps=2, progress=False)
    assert isinstance(res.bridge.forward, DiagonalForward) and len(res.A_history) == 5
    A = res.A_history[-1]
    assert torch.equal(A, torch.diag(torch.diagonal(A)))            # A stays diagonal
    with pytest.raises(TypeError, match="forward"):
        fit_vsdm(data, forward="diag", steps=1, progress=False)
    with pytest.raises(ValueError, match="dimension"):
        fit_vsdm(data, forward=DiagonalForward(2), steps=1, progress=False)
    with pytest.raises(ValueError, match="pieces"):
        fit_vsdm(data, forward=DiagonalForward(3), pieces=2, steps=1, progress=False)


def test_shipped_data_bench_holds_both_tables(tmp_path):
    """data/vsdm_data_bench.json (bench/vsdm_data.py): 3 seeds × 2 spaces × 2 models of digits rows with
    every NFE, 3 seeds × 2 processes of forecasting rows with the oracle; another file is a ValueError."""
    import json

    from lsbcore.vsdm_digits import NFES, shipped_data_bench

    table = shipped_data_bench()
    assert len(table["digits"]) == 12 and len(table["forecast"]) == 6
    assert {(r["space"], r["model"]) for r in table["digits"]} == {(s, m) for s in ("pixel", "latent") for m in ("VP", "VSDM")}
    assert all(set(r["eval"]) == {str(k) for k in NFES} for r in table["digits"])
    assert all({"oracle", "VSDM", "VP-SDE"} <= set(r["scores"]) for r in table["forecast"])
    assert table["digits_floors"]["train"] < table["digits_floors"]["halves"]
    (tmp_path / "vsdm_data_bench.json").write_text(json.dumps({"digits": []}))
    with pytest.raises(ValueError, match="bench/vsdm_data.py"):
        shipped_data_bench(data_dir=tmp_path)
