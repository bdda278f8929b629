"""Checks of notebook 04 (why latent): the log–log fit, the memorisation ratio, the cost of early stopping."""
from __future__ import annotations

import math

import numpy as np
import torch

from ._core import Mismatch, call, compare, number, register, seeded

_D = torch.float64


@register("04.1", "Fit log err = a + b log n by least squares over all seeds pooled; return (slope b, intercept a).",
          "regress log(err) on log(n) (natural logs), all rows together: np.polyfit(np.log(n).ravel(), np.log(err).ravel(), 1)",
          "equals lsbcore.latent.loglog_fit's pooled slope and intercept on an exact power law and on noisy 3-seed data")
def _loglog(my_loglog_fit):
    from ..latent import loglog_fit

    ns = np.array([25.0, 50, 100, 200, 400, 700])
    rng = np.random.default_rng(0)
    cases = {"an exact power law 3 n^(−0.4)": (np.tile(ns, (1, 1)), 3.0 * ns[None] ** -0.4),
             "three noisy seeds": (np.tile(ns, (3, 1)), 2.0 * ns[None] ** -0.25 * np.exp(0.1 * rng.standard_normal((3, 6))))}
    for name, (n, err) in cases.items():
        out = call(my_loglog_fit, n.copy(), err.copy())
        try:
            slope, intercept = (number(v, "slope/intercept") for v in out)
        except (TypeError, ValueError):
            raise Mismatch(f"return a pair (slope, intercept), got {type(out).__name__}") from None
        ref = loglog_fit(n, err)
        compare(slope, ref["slope"], f"slope for {name}", rtol=1e-9, atol=1e-12)
        compare(intercept, ref["intercept"], f"intercept for {name}", rtol=1e-9, atol=1e-12)
    return "slope −1/k would be the W2 rate of an empirical measure in intrinsic dimension k > 4"


@register("04.2", "Write the memorisation ratio r = median_i min_j ‖x_i − train_j‖ / median_k min_j ‖ref_k − train_j‖.",
          "torch.cdist(x, train).min(dim=1).values gives each point's distance to its nearest training point; take medians, not means",
          "equals lsb.memorisation_ratio for copies + noise (r ≪ 1), fresh data (r ≈ 1) and a set with far outliers")
def _memo(my_memorisation_ratio):
    from ..metrics import memorisation_ratio

    gen = seeded(6)
    train = torch.randn(50, 4, generator=gen, dtype=_D)
    ref = torch.randn(61, 4, generator=gen, dtype=_D)  # odd sizes: torch and numpy medians agree
    copies = train[torch.randint(0, 50, (81,), generator=gen)] + 0.05 * torch.randn(81, 4, generator=gen, dtype=_D)
    fresh = torch.randn(81, 4, generator=gen, dtype=_D)
    outliers = fresh.clone()
    outliers[:20] += 50.0
    for name, x in (("noisy copies", copies), ("fresh samples", fresh), ("fresh samples with 20 far outliers", outliers)):
        got = number(call(my_memorisation_ratio, x, train, ref), "r")
        compare(got, memorisation_ratio(x, train, ref), f"r for {name}", rtol=1e-9)
    return "r → 0 for copies, ≈ 1 for new data; medians ignore a few outliers"


@register("04.3", "Early stopping blurs p by N(0, τ²I), τ = σ√t_gap: give W2(N(0, S), N(0, S + τ²I)) for a covariance S (≤ τ√d).",
          "S and S + τ²I commute: with the eigenvalues λ_i of S, W2² = Σ_i (√(λ_i + τ²) − √λ_i)²",
          "equals lsb.bures_w2(0, S, 0, S + τ²I) for three covariances (one degenerate) and τ = 0.1, 1; the coupling "
          "bound τ√d fails where S has large eigenvalues")
def _blur(blur_w2):
    from ..metrics import bures_w2

    gen = seeded(7)
    B = torch.randn(4, 4, generator=gen, dtype=_D)
    covs = {"a full 4×4 covariance": B @ B.T, "diag(0, 1, 100)": torch.diag(torch.tensor([0.0, 1.0, 100.0], dtype=_D)),
            "0.01 I (2-D)": 0.01 * torch.eye(2, dtype=_D)}
    for name, S in covs.items():
        d = S.shape[0]
        for tau in (0.1, 1.0):
            got = number(call(blur_w2, S.clone(), tau), "W2")
            want = bures_w2(torch.zeros(d), S, torch.zeros(d), S + tau**2 * torch.eye(d, dtype=_D))
            compare(got, want, f"W2 for S = {name}, τ = {tau}", rtol=1e-7, atol=1e-9)
            if got > tau * math.sqrt(d) * (1 + 1e-9):
                raise Mismatch(f"your W2 {got:.4g} exceeds the coupling bound τ√d = {tau * math.sqrt(d):.4g}")
    return "directions with large variance barely move: W2 ≈ τ²/(2√λ) there, and τ only where λ ≈ 0"
