"""Checks of notebook 07 (VSDM on data): the diagonal transition, the Gaussian CRPS, a scalar Kalman forecast."""
from __future__ import annotations

import torch

from ._core import Mismatch, call, compare, number, register

_D = torch.float64


@register("07.1", "For a diagonal A = diag(s), give the per-coordinate transition (φ, σ²) of X_t | X_0 at time t, for s (shape (d,)), t and β_max.",
          "each coordinate is an OU process in the clock τ(t) = ∫_0^t β = β_min t + (β_max − β_min) t^{β_r+1}/(β_r + 1) (β_min = 0.1, β_r = 1.7): with k = 1 − 2s, φ = e^{−τk/2} and σ² = (1 − e^{−τk})/k",
          "equals DiagonalForward(d, beta_max).diag_transition(t) for s = (−0.5, 0, 0.3, 0.62), t = 0.1, 0.5, 1 and β_max = 10, 20")
def _diag_transition(my_diag_transition):
    from ..bridges.vsdm_diag import DiagonalForward

    s = torch.tensor([-0.5, 0.0, 0.3, 0.62], dtype=_D)
    for beta_max in (10.0, 20.0):
        fwd = DiagonalForward(4, beta_max=beta_max)
        with torch.no_grad():
            fwd.s.copy_(s)
            for t in (0.1, 0.5, 1.0):
                phi, var = (v[0] for v in fwd.diag_transition(t))
                got = call(my_diag_transition, s.clone(), t, beta_max)
                if not isinstance(got, (tuple, list)) or len(got) != 2:
                    raise Mismatch(f"expected a pair (phi, var), got {type(got).__name__}")
                compare(got[0], phi, f"φ at t = {t}, β_max = {beta_max}", rtol=1e-9)
                compare(got[1], var, f"σ² at t = {t}, β_max = {beta_max}", rtol=1e-9)
    return "at s = 0.62 (what VSDM learned on the digits) k < 0: φ_1 > 1, the forward *expands* the data"


@register("07.2", "Give the CRPS of the Gaussian forecast N(μ, σ²) at the outcome y in closed form (tensors, elementwise).",
          "with u = (y − μ)/σ, CRPS = σ [u (2Φ(u) − 1) + 2φ(u) − 1/√π] (Φ, φ: the standard normal cdf and density; Φ(u) = ½ erfc(−u/√2))",
          "equals lsbcore.forecast.crps_gaussian on 200 random (μ, σ, y) and at y = μ (where it is σ (√2 − 1)/√π)")
def _crps(my_crps_gaussian):
    from ..forecast import crps_gaussian

    gen = torch.Generator().manual_seed(7)
    mu = torch.randn(200, generator=gen, dtype=_D)
    sd = 0.1 + torch.rand(200, generator=gen, dtype=_D) * 3
    y = mu + sd * 2 * torch.randn(200, generator=gen, dtype=_D)
    compare(call(my_crps_gaussian, mu.clone(), sd.clone(), y.clone()), crps_gaussian(mu, sd, y),
            "CRPS on 200 random (μ, σ, y)", rtol=1e-9, atol=1e-12)
    compare(call(my_crps_gaussian, mu.clone(), sd.clone(), mu.clone()), crps_gaussian(mu, sd, mu),
            "CRPS at y = μ", rtol=1e-9, atol=1e-12)
    return "a proper score: in expectation over y ~ F it is smallest when the forecast is F itself"


def _scalar_ssm(a: float, q: float, r: float):
    """A 1-D LinearGaussianSSM: x_{t+1} = a x_t + w, y_t = x_t + v (w ~ N(0, q), v ~ N(0, r)), c = 0."""
    from ..forecast import LinearGaussianSSM

    ssm = LinearGaussianSSM.__new__(LinearGaussianSSM)
    ssm.d_obs, ssm.period, ssm.n_harmonics, ssm.k = 1, 3, 1, 1
    ssm.F, ssm.H = torch.tensor([[a]], dtype=_D), torch.ones(1, 1, dtype=_D)
    ssm.Q, ssm.R, ssm.c = torch.tensor([[q]], dtype=_D), torch.tensor([[r]], dtype=_D), torch.zeros(1, dtype=_D)
    ssm.P_inf = torch.tensor([[q / (1 - a * a)]], dtype=_D)
    return ssm


@register("07.3", "For the AR(1) plus noise x_{t+1} = a x_t + w, y_t = x_t + v (w ~ N(0, q), v ~ N(0, r)), started stationary, give the variance of y_{T+1} given y_1..y_T.",
          "the Kalman recursion on the variance only (it does not depend on the data): P = q/(1 − a²); T times: P ← P − P²/(P + r) (update), P ← a²P + q (predict); the answer is P + r",
          "equals the predictive variance of lsbcore's LinearGaussianSSM.predictive (Kalman filter) on a 1-D model for (a, q, r, T) = (0.9, 0.1, 0.5, 1), (0.9, 0.1, 0.5, 30), (0.5, 1, 0.1, 5), (0.99, 0.01, 1, 200)")
def _kalman(my_predictive_var):
    for a, q, r, T in ((0.9, 0.1, 0.5, 1), (0.9, 0.1, 0.5, 30), (0.5, 1.0, 0.1, 5), (0.99, 0.01, 1.0, 200)):
        ssm = _scalar_ssm(a, q, r)
        _, cov = ssm.predictive(torch.zeros(1, T, 1, dtype=_D), 1)
        got = number(call(my_predictive_var, a, q, r, T), "predictive variance")
        compare(got, float(cov[0, 0, 0]), f"Var(y_(T+1) | y_1..y_T) for a = {a}, q = {q}, r = {r}, T = {T}",
                rtol=1e-9)
    return "it falls with T from the stationary q/(1 − a²) + r to a floor ≥ q + r: no history removes the next step's noise"
