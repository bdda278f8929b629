"""Checks of notebook 01 (the Schrödinger system): the log-domain half-step and the Gaussian closed form."""
from __future__ import annotations

import math

import torch

from ._core import call, compare, register, seeded

_D = torch.float64


def _bridge(m0, v0, m1, v1, sigma):
    from ..schrodinger import GaussianBridge

    return GaussianBridge(m0, v0, m1, v1, sigma)


@register("01.1", "Write one Sinkhorn half-step in the log domain, f0 = −ε log Σ_j exp(log b_j + (f1_j − C_ij)/ε).",
          "use torch.logsumexp over j (dim=1) of log_b[None, :] + (f1[None, :] − C)/eps; never form exp(−C/ε)",
          "equals lsbcore.schrodinger.log_sinkhorn_step at ε = 0.01, 1, 10; alternating it reproduces lsb.sinkhorn's plan")
def _half_step(my_log_half_step):
    from ..schrodinger import log_sinkhorn_step, sinkhorn, squared_distances

    gen = seeded(0)
    x0 = -1.0 + math.sqrt(0.5) * torch.randn(50, 1, generator=gen, dtype=_D)
    x1 = 1.5 + math.sqrt(1.2) * torch.randn(60, 1, generator=gen, dtype=_D)
    C = squared_distances(x0, x1)
    f1 = torch.randn(60, generator=gen, dtype=_D)
    log_a, log_b = torch.full((50,), -math.log(50), dtype=_D), torch.full((60,), -math.log(60), dtype=_D)
    C_far = squared_distances(x0, x1 + 10.0)  # every C_ij > 50: at ε = 0.01, exp(−C/ε) underflows to 0
    for eps, cost, what in ((1.0, C, ""), (10.0, C, ""), (0.01, C, ""), (0.01, C_far, " with the target moved by +10")):
        got = call(my_log_half_step, f1, cost, eps, log_b)
        compare(got, log_sinkhorn_step(f1, cost, eps, log_b), f"f0 at ε = {eps}{what}", atol=1e-9 * float(cost.max()))
    eps, f0 = 1.28, torch.zeros(50, dtype=_D)
    for _ in range(100):  # alternate the two half-steps: Sinkhorn's iteration
        f1 = call(my_log_half_step, f0, C.T, eps, log_a)
        f0 = call(my_log_half_step, f1, C, eps, log_b)
    plan = torch.exp(log_a[:, None] + log_b[None, :] + (f0[:, None] + f1[None, :] - C) / eps)
    compare(plan, sinkhorn(x0, x1, eps, tol=1e-10).plan(), "the plan from 100 alternating half-steps",
            rtol=1e-6, atol=1e-9)
    return "your half-step matches log_sinkhorn_step, and alternating it is Sinkhorn"


@register("01.2", "In 1-D, write the cross-covariance C = Cov(X0, X1) of the Gaussian Schrödinger bridge as a function of v0, v1, σ.",
          "D = (4 S0^{1/2} S1 S0^{1/2} + σ⁴ I)^{1/2} and C = ½(S0^{1/2} D S0^{-1/2} − σ² I); in 1-D everything commutes",
          "equals GaussianBridge(·).cross_cov for σ from 0.05 (Monge limit) to 4 (independence) and several variances")
def _cross_cov(my_cross_cov):
    for v0, v1 in ((0.5, 1.2), (2.0, 0.3), (1.0, 1.0)):
        for sigma in (0.05, 0.5, 0.8, 4.0):
            got = call(my_cross_cov, v0, v1, sigma)
            compare(got, _bridge(0.0, v0, 0.0, v1, sigma).cross_cov.reshape(()),
                    f"C for v0 = {v0}, v1 = {v1}, σ = {sigma}")
    return "C = (√(4 v0 v1 + σ⁴) − σ²)/2: √(v0 v1) as σ → 0 (the Monge map), v0 v1/σ² → 0 as σ → ∞"


@register("01.3", "In 1-D, write the variance Σ_t of the bridge marginal ρ_t as a function of t, v0, v1, σ.",
          "Σ_t = (1−t)² v0 + t² v1 + t(1−t)(2C + σ²), with C the cross-covariance of exercise 01.2",
          "equals GaussianBridge(·).cov(t) at t = 0, 0.1, 0.5, 0.9, 1 for two problems")
def _bridge_var(my_bridge_var):
    for v0, v1, sigma in ((0.5, 1.2, 0.8), (2.0, 0.3, 0.3)):
        bridge = _bridge(0.0, v0, 0.0, v1, sigma)
        for t in (0.0, 0.1, 0.5, 0.9, 1.0):
            compare(call(my_bridge_var, t, v0, v1, sigma), bridge.cov(t).reshape(()),
                    f"Σ_t at t = {t} (v0 = {v0}, v1 = {v1}, σ = {sigma})")
    return "Σ_t matches the closed form along the whole bridge"


@register("01.4", "In 1-D, write the bridge's drift b(x, t) = M_t Σ_t⁻¹ (x − μ_t) + m1 − m0 (derive M_t from Gaussian conditioning).",
          "M_t = t v1 − (1−t) v0 + (1−2t) C − σ² t in 1-D (from E[(X1 − X_t)/(1−t) | X_t = x]); μ_t = (1−t) m0 + t m1",
          "equals GaussianBridge(·).drift(x, t) on 7 points at t = 0, 0.3, 0.7, 0.95 for two problems")
def _drift(my_drift):
    x = torch.linspace(-3.0, 4.0, 7, dtype=_D)[:, None]
    for m0, v0, m1, v1, sigma in ((-1.0, 0.5, 1.5, 1.2, 0.8), (0.5, 2.0, -1.0, 0.3, 0.4)):
        bridge = _bridge(m0, v0, m1, v1, sigma)
        for t in (0.0, 0.3, 0.7, 0.95):
            got = call(my_drift, x.clone(), t, m0, v0, m1, v1, sigma)
            want = bridge.drift(x, t)
            if isinstance(got, torch.Tensor) and got.shape != want.shape and got.numel() == want.numel():
                got = got.reshape(want.shape)
            compare(got, want, f"b(x, t) at t = {t} (m0 = {m0}, m1 = {m1}, σ = {sigma})", atol=1e-12)
    return "your drift is the closed-form Schrödinger-bridge drift"

