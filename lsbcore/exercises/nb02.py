"""Checks of notebook 02 (dynamic bridges): bridge samples, the Föllmer drift, Euler–Maruyama's bias."""
from __future__ import annotations

import math

import torch

from ._core import Mismatch, call, compare, number, register, seeded


@register("02.1", "Write the Brownian-bridge sample X_t = (1−t)x0 + t x1 + σ√(t(1−t)) Z with Z = torch.randn(x0.shape, generator=lsb.generator(seed)).",
          "draw Z with exactly that call (same seed → same Z), then combine; the noise term is σ·√(t(1−t))·Z",
          "equals lsb.brownian_bridge_sample bit for bit (same seed) at t = 0.3 and 0.8")
def _bridge_sample(my_bridge_sample):
    from ..bridges.reference import brownian_bridge_sample

    gen = seeded(1)
    x0 = torch.randn(200, 2, generator=gen).to(torch.get_default_dtype())
    x1 = (3.0 + torch.randn(200, 2, generator=gen)).to(torch.get_default_dtype())
    for t, sigma, seed in ((0.3, 0.7, 5), (0.8, 1.5, 11)):
        got = call(my_bridge_sample, x0, x1, t, sigma, seed=seed)
        compare(got, brownian_bridge_sample(x0, x1, t, sigma=sigma, seed=seed), f"X_t at t = {t}, σ = {sigma}",
                atol=1e-6)
    return "your bridge samples are lsbcore's, draw for draw"


@register("02.2", "Write the exact Schrödinger–Föllmer drift δ0 → N(m, s²I): b(x, t) = (σ²m + (s² − σ²)x)/(σ²(1−t) + s²t).",
          "X_t = t X1 + σ√(t(1−t))Z is Gaussian; E[X1 | X_t = x] by Gaussian conditioning, then b = (E[X1|x] − x)/(1 − t)",
          "equals lsbcore.bridges.follmer.gaussian_follmer_drift at t = 0, 0.5, 0.99, 1 for two targets")
def _follmer(my_follmer_drift):
    from ..bridges.follmer import gaussian_follmer_drift

    x = torch.randn(100, 2, generator=seeded(2), dtype=torch.float64)
    for m, s, sigma in ((torch.tensor([2.0, -1.0], dtype=torch.float64), 0.6, 1.0),
                        (torch.tensor([-0.5, 0.5], dtype=torch.float64), 1.7, 0.5)):
        for t in (0.0, 0.5, 0.99, 1.0):
            compare(call(my_follmer_drift, x, t, m, s, sigma), gaussian_follmer_drift(x, t, m, s, sigma),
                    f"b(x, t) at t = {t}, s = {s}, σ = {sigma}", atol=1e-12)
    return "the drift is linear in x and finite on all of [0, 1]"


def _em_variance_mc(steps: int, sigma: float, n: int = 100_000, seed: int = 0) -> float:
    """Var X_{1/2} of Euler–Maruyama on the pinned bridge 0 → 0, from lsb.sample (n paths)."""
    from ..bridges.reference import BrownianBridge
    from ..sde import sample

    bridge = BrownianBridge(x1=[0.0], sigma=sigma, x0=[0.0])
    run = sample(bridge, torch.zeros(n, 1, dtype=torch.float64), steps=steps, keep_traj=True, seed=seed)
    return float(run.traj[steps // 2, :, 0].var())


@register("02.3", "Give Var X_{1/2} of the Euler–Maruyama chain (steps = 1/h, even) for the pinned Brownian bridge dX = −X/(1−t) dt + σ dW, X_0 = 0.",
          "with t_k = kh the step multiplies the deviation by (1 − t_{k+1})/(1 − t_k) and adds variance σ²h, so "
          "V_k/(1−t_k)² = Σ_{j≤k} σ²h/(1−t_j)²; the exact SDE gives σ²/4, EM is off by O(h)",
          "agrees with lsb.sample's Euler–Maruyama paths (100,000 of them) at 4, 10 and 20 steps within 5 Monte-Carlo "
          "standard errors (V·√(2/n)); σ²/4 itself fails")
def _em_bias(em_bridge_var):
    sigma, n = 0.8, 100_000
    for steps in (4, 10, 20):
        got = number(call(em_bridge_var, steps, sigma), f"Var X_1/2 with {steps} steps")
        mc = _em_variance_mc(steps, sigma, n)
        tol = 5 * mc * math.sqrt(2 / n)
        if abs(got - mc) > tol:
            raise Mismatch(f"with {steps} steps (σ = {sigma}) the simulated chain has Var X_1/2 = {mc:.5f} "
                           f"(± {tol / 5:.5f}), you gave {got:.5f}; the SDE's own value is σ²/4 = {sigma**2 / 4:.5f}")
    return "Euler–Maruyama's variance error falls like h: slope 1 on a log–log plot"
