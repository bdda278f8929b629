"""What the explorers of notebooks 05 and 06 compute, all in closed form because every process is
linear and Gaussian: the exact terms of the SB-as-VAE objective against the encoder strength κ, and
the forward noising of VSDM for a chosen β_max and strength of A. The widgets only draw these
(tests/test_explore.py checks them). docs/theory.md §5–§6.
"""
from __future__ import annotations

import copy

import torch

from .bridges.sbvae_exact import LinearSBVAE
from .bridges.vsdm import LinearForward
from .utils import Seed, check_points, check_positive, check_time

__all__ = ["SBVAE_TERMS", "sbvae_terms", "sbvae_sweep", "forward_noising"]

#: the four exact terms, in the order the explorer shows them: name → label
SBVAE_TERMS = {"prior_loss": "prior loss", "drift_matching": "drift matching", "path_kl": "KL(Q‖P)",
               "data_kl": "KL(p_data‖p_θ)"}


def sbvae_terms(kappa: float, T: float, *, data_mean: float = 2.0, data_var: float = 0.5,
                prior_var: float = 1.0) -> dict:
    """The exact SB-as-VAE terms in 1-D: data N(data_mean, data_var), reference Brownian motion on
    [0, T] (F = 0, g = 1), encoder u(x) = −κ x and the best constant linear decoder for it
    (:meth:`LinearSBVAE.fit_decoder`). Returns ``prior_loss``, ``drift_matching``, ``path_kl`` (their
    sum, KL(Q‖P)) and ``data_kl`` (KL(p_data‖p_θ) ≤ KL(Q‖P), the data processing inequality), in nats.
    Notebook 05 §"Trade-off"; docs/theory.md §5."""
    check_positive(kappa, "kappa", allow_zero=True)
    model = LinearSBVAE([data_mean], [[data_var]], F=0.0, g=1.0, T=T, K=-kappa, prior_var=prior_var).fit_decoder()
    return {name: getattr(model, name)() for name in SBVAE_TERMS}


def sbvae_sweep(kappas, T: float, **kwargs) -> dict:
    """:func:`sbvae_terms` for each κ of ``kappas``: name → list of values (one per κ). Notebook 05."""
    rows = [sbvae_terms(float(k), T, **kwargs) for k in kappas]
    return {name: [r[name] for r in rows] for name in SBVAE_TERMS}


def forward_noising(forward: LinearForward, x0, t: float, *, beta_max: float, strength: float = 1.0,
                    seed: Seed = 0) -> dict:
    """The VSDM forward process X_t | X_0 in closed form, with β_max and A replaced by λA
    (λ = ``strength``; λ = 0 is the VP-SDE) on a copy of ``forward`` (left untouched).

    Returns ``xt`` (one X_t per row of ``x0``), ``prior_cov`` Σ_1 (the adaptive prior N(0, Σ_1)) and
    ``data_left`` = tr(Φ_1 Cov(x0) Φ_1ᵀ) / tr Σ_1: how much of the data's spread is left at t = 1
    relative to the noise (0 = forgotten). Notebook 06 §"What A does"; docs/theory.md §6.
    """
    if not isinstance(forward, LinearForward):
        raise TypeError(f"forward must be a LinearForward, got {type(forward).__name__}")
    x0 = check_points(x0, "x0", dim=forward.dim)
    if x0.shape[0] < 2:
        raise ValueError("x0 needs at least 2 points for a covariance")
    check_positive(beta_max, "beta_max")
    check_positive(strength, "strength", allow_zero=True)
    check_time(t, "t")
    f = copy.deepcopy(forward)
    f.schedule.beta_max = float(max(beta_max, f.schedule.beta_min))
    with torch.no_grad():
        f.s.mul_(strength)
        xt, _, _ = f.sample_xt(x0, torch.full((x0.shape[0],), float(t), dtype=torch.float64), seed=seed)
        Phi1, Sig1 = f.transition(torch.ones(1, dtype=torch.float64))
    cov = torch.cov(x0.double().T)
    left = float(torch.trace(Phi1[0] @ cov @ Phi1[0].T) / torch.trace(Sig1[0]))
    return {"xt": xt, "prior_cov": Sig1[0], "data_left": left}
