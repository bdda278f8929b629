"""Checks of notebook 03 (the latent SB): the two exact empirical drifts and the Fréchet distance."""
from __future__ import annotations

import torch

from ._core import call, compare, number, register, seeded

_D = torch.float64


def _codes(n=40, d=3, seed=3):
    gen = seeded(seed)
    return 2.0 * torch.randn(n, d, generator=gen, dtype=_D), torch.randn(25, d, generator=gen, dtype=_D)


@register("03.1", "Write the exact reverse-heat-flow drift b(z, t) = Σ_i w_i (z_i − z)/(1 − t), w_i ∝ exp(−‖z − z_i‖²/(2σ²(1−t))).",
          "the weights are a softmax over i of −‖z − z_i‖²/(2σ²(1−t)) (torch.softmax over dim=1 never underflows); "
          "then (w @ points − z)/(1 − t)",
          "equals lsbcore.bridges.heat.heat_flow_drift for σ = 1 and σ = 0.05 (where exp underflows) at t = 0, 0.5, 0.9")
def _heat(my_heat_flow_drift):
    from ..bridges.heat import heat_flow_drift

    points, z = _codes()
    for sigma in (1.0, 0.05):
        for t in (0.0, 0.5, 0.9):
            want = heat_flow_drift(z, t, points, sigma)
            compare(call(my_heat_flow_drift, z, t, points, sigma), want, f"b(z, t) at t = {t}, σ = {sigma}",
                    rtol=1e-7, atol=1e-9 * float(want.abs().max()))
    return "your drift is the posterior mean of the clean code, minus z, over the remaining time"


@register("03.2", "Write the exact Föllmer drift δ0 → p̂ ∗ N(0, σ²I) of the first stage: b(x, t) = Σ_i w_i z_i, w_i ∝ exp((x·z_i − t‖z_i‖²/2)/σ²).",
          "X_t | i ~ N(t z_i, σ² t I), so the posterior weight of z_i is a softmax of (x·z_i − t‖z_i‖²/2)/σ² (the ‖x‖² term cancels)",
          "equals lsbcore.bridges.heat.smoothed_follmer_drift for σ = 1 and 0.2 at t = 0, 0.5, 1")
def _smoothed(my_smoothed_follmer_drift):
    from ..bridges.heat import smoothed_follmer_drift

    points, z = _codes(seed=4)
    for sigma in (1.0, 0.2):
        for t in (0.0, 0.5, 1.0):
            want = smoothed_follmer_drift(z, t, points, sigma)
            compare(call(my_smoothed_follmer_drift, z, t, points, sigma), want, f"b(x, t) at t = {t}, σ = {sigma}",
                    rtol=1e-7, atol=1e-9 * float(want.abs().max()))
    return "finite on all of [0, 1]: no division by 1 − t, unlike the heat flow"


@register("03.3", "Write the Fréchet distance between two feature sets: ‖m_x − m_y‖² + tr S_x + tr S_y − 2 tr (S_x^{1/2} S_y S_x^{1/2})^{1/2}.",
          "m, S are the sample mean and covariance (torch.cov, i.e. 1/(n−1)); take matrix square roots from "
          "torch.linalg.eigh (clamp tiny negative eigenvalues at 0); tr(S_x^{1/2} S_y^{1/2}) is right only when they commute",
          "equals lsbcore.metrics.frechet_distance on two 8-D feature sets with different covariances, and again "
          "when both have a constant coordinate (singular covariances)")
def _frechet(my_frechet):
    from ..metrics import frechet_distance

    gen = seeded(5)
    a = torch.randn(400, 8, generator=gen, dtype=_D) @ torch.randn(8, 8, generator=gen, dtype=_D)
    b = 0.5 + torch.randn(300, 8, generator=gen, dtype=_D) @ torch.randn(8, 8, generator=gen, dtype=_D)
    want = frechet_distance(a, b)
    compare(number(call(my_frechet, a, b), "FD"), want, "FD between the two Gaussian feature sets", rtol=1e-7)
    a[:, 0], b[:, 0] = 1.0, 1.0   # a coordinate without variance: a singular covariance
    compare(number(call(my_frechet, a, b), "FD"), frechet_distance(a, b),
            "FD when both sets have a constant coordinate (singular covariances)", rtol=1e-6, atol=1e-9)
    return "this is the FDD of the notebook's tables (on the classifier's 32-D features)"
