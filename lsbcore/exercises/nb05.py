"""Checks of notebook 05 (SB as a VAE): the prior loss by hand, the best encoder strength, the encoder's score."""
from __future__ import annotations

import torch

from ._core import Mismatch, call, compare, number, register

_D = torch.float64


@register("05.1", "With f = 0, g = 1, u = −κx and data N(m0, v0), write the prior loss KL(q_T ‖ N(0, 1)) as a function of m0, v0, κ, T.",
          "q_T = N(e^{−κT} m0, e^{−2κT} v0 + (1 − e^{−2κT})/(2κ)) and KL(N(m, v) ‖ N(0, 1)) = ½(v + m² − 1 − log v)",
          "equals LinearSBVAE([m0], [[v0]], F=0, g=1, T=T, K=−κ).prior_loss() for four (m0, v0, κ, T), κ from 0.05 to 3")
def _prior_loss(my_prior_loss):
    from ..bridges.sbvae_exact import LinearSBVAE

    for m0, v0, kappa, T in ((2.0, 0.5, 0.8, 1.5), (0.0, 3.0, 0.05, 1.0), (-1.0, 0.2, 3.0, 0.5), (1.0, 1.0, 0.5, 4.0)):
        got = number(call(my_prior_loss, m0, v0, kappa, T), "prior loss")
        want = LinearSBVAE([m0], [[v0]], F=0.0, g=1.0, T=T, K=-kappa).prior_loss()
        compare(got, want, f"prior loss for m0 = {m0}, v0 = {v0}, κ = {kappa}, T = {T}", rtol=1e-9, atol=1e-12)
    return "the prior loss involves the encoder only: θ does not enter"


def _bound(kappa: float, T: float = 1.0) -> float:
    from ..explore_linear import sbvae_terms

    return sbvae_terms(kappa, T)["path_kl"]


def best_kappa(T: float = 1.0) -> float:
    """The κ ≥ 0 that minimises the bound KL(Q‖P) of §2.4 (data N(2, 0.5), best constant linear decoder)."""
    from scipy.optimize import minimize_scalar

    res = minimize_scalar(lambda k: _bound(k, T), bounds=(0.0, 5.0), method="bounded", options={"xatol": 1e-6})
    return float(res.x)


@register("05.2", "For the §2.4 trade-off at T = 1 (data N(2, 0.5), best constant linear decoder), which κ minimises the bound KL(Q‖P)?",
          "scan κ with lsbcore.explore_linear.sbvae_sweep(kappas, T=1.0)['path_kl'] (or minimise sbvae_terms(κ, 1.0)['path_kl'])",
          "within 0.05 of the minimiser of the package's exact bound (scipy's bounded scalar minimiser on sbvae_terms)")
def _kappa(kappa_star):
    k = number(kappa_star, "κ*")
    best = best_kappa(1.0)
    if abs(k - best) > 0.05:
        side = "larger" if k < best else "smaller"
        raise Mismatch(f"at κ = {k:.3g} the bound is {_bound(max(k, 0.0)) if k >= 0 else float('nan'):.4f} nats; "
                       f"it is lower for a {side} κ (the minimum is {_bound(best):.4f} nats)")
    return f"κ* ≈ {best:.3f}: the prior loss and drift matching balance there"


@register("05.3", "Score-based model (u = 0), OU reference f = −x/2, g = 1, data N(m0, v0): write the score ∇log q_t(x).",
          "q_t = N(e^{−t/2} m0, e^{−t} v0 + 1 − e^{−t}) (mean decays at rate ½, the variance relaxes to 1); the score of N(m, v) is −(x − m)/v",
          "equals −(x − m_t)/v_t with (m_t, v_t) from LinearSBVAE([m0], [[v0]], F=−0.5, g=1, T=2).q(t) at t = 0, 0.3, 1, 2")
def _score(my_score):
    from ..bridges.sbvae_exact import LinearSBVAE

    x = torch.linspace(-3.0, 5.0, 9, dtype=_D)[:, None]
    for m0, v0 in ((1.5, 0.5), (-2.0, 3.0)):
        model = LinearSBVAE([m0], [[v0]], F=-0.5, g=1.0, T=2.0)
        for t in (0.0, 0.3, 1.0, 2.0):
            m, S = model.q(t)
            want = -(x - m[0]) / S[0, 0, 0]
            got = call(my_score, x.clone(), t, m0, v0)
            if isinstance(got, torch.Tensor) and got.numel() == want.numel():
                got = got.reshape(want.shape)
            compare(got, want, f"∇log q_t at t = {t} (m0 = {m0}, v0 = {v0})", atol=1e-12)
    return "drift matching regresses s_θ onto this score, weighted by g²/2"
