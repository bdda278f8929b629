"""Checks of notebook 06 (VSDM): the prior covariance, what the VP-SDE keeps at t = 1, the score from ε."""
from __future__ import annotations

import torch

from ._core import call, compare, number, register, seeded

_D = torch.float64


def _forward(s, beta_max: float, *, identity: bool):
    from ..bridges.vsdm import LinearForward

    fwd = LinearForward(len(s), beta_max=beta_max)     # U = V = I at the start
    with torch.no_grad():
        if not identity:                                # a fixed rotation: A = U diag(s) Vᵀ not symmetric
            fwd.U.weight = torch.tensor([[0.8, -0.6], [0.6, 0.8]], dtype=_D)
        fwd.s.copy_(torch.tensor(s, dtype=_D))
    return fwd


@register("06.1", "With U = V = I, A = diag(s) and D = I − 2A, give the diagonal of the prior covariance Σ_1 as a function of s and β_max.",
          "the Lyapunov equation decouples: Σ_ii = (1 − e^{−τ d_i})/d_i with d_i = 1 − 2s_i and τ = ∫_0^1 β = β_min + (β_max − β_min)/(β_r + 1), β_min = 0.1, β_r = 1.7",
          "equals LinearForward(2, beta_max).prior_cov().diagonal() with U = V = I for s = (−0.5, 0.25), (0, 0), (0.4, −0.3) and β_max = 10, 20")
def _prior(my_prior_var):
    for beta_max in (10.0, 20.0):
        for s in ((-0.5, 0.25), (0.0, 0.0), (0.4, -0.3)):
            want = _forward(s, beta_max, identity=True).prior_cov().detach().diagonal()
            got = call(my_prior_var, torch.tensor(s, dtype=_D), beta_max)
            compare(got, want, f"diag Σ_1 for s = {s}, β_max = {beta_max}", rtol=1e-9)
    return "a negative s_i (d_i > 1) contracts faster: the prior's variance along i drops below 1"


@register("06.2", "What fraction of the data's scale does the VP-SDE (A = 0) keep at t = 1? Write it as a function of β_max.",
          "X_1 = e^{−τ/2} X_0 + noise with τ = ∫_0^1 β_t dt = β_min + (β_max − β_min)/(β_r + 1) (β_min = 0.1, β_r = 1.7)",
          "equals Φ_1 of LinearForward(2, beta_max) at A = 0 (its transition) for β_max = 5, 10, 20")
def _kept(vp_kept):
    for beta_max in (5.0, 10.0, 20.0):
        Phi = _forward((0.0, 0.0), beta_max, identity=False).transition(1.0)[0][0].detach()
        compare(number(call(vp_kept, beta_max), "kept fraction"), Phi[0, 0], f"e^(−τ/2) at β_max = {beta_max}",
                rtol=1e-9)
    return "≈ 0.15 at β_max = 10: a long axis of scale 8 keeps a standard deviation over 1 at t = 1 — the prior mismatch"


@register("06.3", "From a predicted noise ε̂ (rows) and Σ_t = L Lᵀ, write the score −L^{−⊤} ε̂ (row form: −ε̂ L^{−1}).",
          "X_t = Φ x0 + L ε, so ∇log p(X_t | x0) = −Σ_t⁻¹(X_t − Φ x0) = −L^{−⊤} ε; use torch.linalg.cholesky and solve_triangular, not an explicit inverse",
          "equals −Σ_t⁻¹(x_t − Φ_t x0) computed from LinearForward.transition (A ≠ 0) at t = 0.05, 0.5, 1")
def _score(my_score_from_eps):
    fwd = _forward((-0.6, 0.3), 10.0, identity=False)
    gen = seeded(8)
    x0 = torch.randn(64, 2, generator=gen, dtype=_D) * torch.tensor([1.0, 8.0], dtype=_D)
    eps = torch.randn(64, 2, generator=gen, dtype=_D)
    for t in (0.05, 0.5, 1.0):
        with torch.no_grad():
            Phi, Sigma = (v[0] for v in fwd.transition(t))
        L = torch.linalg.cholesky(Sigma)
        xt = x0 @ Phi.T + eps @ L.T
        want = -torch.linalg.solve(Sigma, (xt - x0 @ Phi.T).T).T
        compare(call(my_score_from_eps, eps.clone(), Sigma.clone()), want, f"score at t = {t}", rtol=1e-7,
                atol=1e-9 * float(want.abs().max()))
    return "a network that predicts ε gives the score without ever dividing by a small Σ_t directly"
