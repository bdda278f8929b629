"""The latent bridges of Notebook 03: the reverse heat flow p̂ ∗ N(0, σ²I) → p̂ and its Föllmer start.

For an empirical code distribution p̂ = (1/n) Σ_i δ_{z_i} both drifts are exact softmax averages
(:func:`lsbcore.bridges.follmer.softmax_mean`), so they need no network:

- :class:`HeatFlowBridge` — the time reversal of the heat flow, from μ0 = p̂ ∗ N(0, σ²I) at t = 0 to
  p̂ at t = 1, drift ``σ² ∇log(p̂ ∗ N(0, σ²(1−t)I))`` (exact, or learned by :func:`fit_heat_flow`);
- :class:`SmoothedFollmer` — the Schrödinger–Föllmer bridge δ0 → p̂ ∗ N(0, σ²I): the first stage of
  the two-stage sampler, which draws the heat flow's start points.

docs/theory.md §4 derives both; Notebook 03 §3 "Theory: latent bridges" checks them.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from ..bridge import Bridge
from ..nets import TimeMLP
from ..train import fit
from ..utils import Seed, work_device, check_int, check_points, check_positive, check_same_device, check_scale, generator, time_column
from .follmer import POINT_MASS_START, origin, softmax_mean
from .matching import check_time_power, matching_loss, sample_times

__all__ = ["heat_flow_drift", "smoothed_follmer_drift", "SmoothedFollmer", "HeatFlowBridge", "fit_heat_flow"]


def _heat(x, t, points, sigma, t_gap):
    """The reverse-heat-flow drift (m(x) − x)/(1 − t), 1 − t clamped at t_gap (inputs trusted)."""
    gap = (1 - t).clamp(min=t_gap)
    return (softmax_mean(x, points, 1.0, sigma**2 * gap) - x) / gap


def _checked(x, t, points, sigma):
    """The arguments of the public drift functions, checked once."""
    x = check_points(x, "x")
    points = check_points(points, "points", dim=x.shape[1])
    check_same_device(x=x, points=points)
    return x, time_column(t, x), points.to(x.dtype), check_scale(sigma, "sigma")


def heat_flow_drift(x, t, points, sigma: float = 1.0, *, t_gap: float = 1e-4) -> torch.Tensor:
    """Exact drift of the reverse heat flow from p̂ ∗ N(0, σ²I) to p̂ = (1/n) Σ δ_{z_i} (Notebook 03 §3).

    ``b(z, t) = σ² ∇ log (p̂ ∗ N(0, σ²(1−t) I))(z) = Σ_i w_i (z_i − z)/(1 − t)``,
    ``w_i ∝ exp(−‖z − z_i‖² / (2σ²(1−t)))``: the posterior mean of the clean code given the noisy one,
    minus z, over the remaining time. It is also the minimiser of the regression loss of
    ``fit_heat_flow``. 1 − t is clamped at ``t_gap`` (the drift is singular at t = 1: stop at 1 − t_gap).
    docs/theory.md §4.
    """
    x, t, points, sigma = _checked(x, t, points, sigma)
    return _heat(x, t, points, sigma, check_positive(t_gap, "t_gap"))


def smoothed_follmer_drift(x, t, points, sigma: float = 1.0) -> torch.Tensor:
    """Exact Schrödinger–Föllmer drift from δ0 to the smoothed target p̂ ∗ N(0, σ²I) (Notebook 03 §3).

    With X1 = z_i + σ ε the path is X_t = t z_i + σ W_t, so X_t | i ~ N(t z_i, σ² t I) and
    E[X1 | X_t = x, i] = x + (1 − t) z_i; hence

        b(x, t) = E[(X1 − X_t)/(1 − t) | X_t = x] = Σ_i w_i z_i,   w_i ∝ exp((x·z_i − t‖z_i‖²/2)/σ²),

    finite on all of [0, 1] (no division by 1 − t): the first stage of the two-stage latent sampler.
    docs/theory.md §4.
    """
    x, t, points, sigma = _checked(x, t, points, sigma)
    return softmax_mean(x, points, t, sigma**2)


class SmoothedFollmer(Bridge):
    """SF bridge δ0 → p̂ ∗ N(0, σ²I) with the exact drift :func:`smoothed_follmer_drift` (Notebook 03 §3).

    Generation starts at the origin and runs forward to the smoothed codes at t = 1. Its marginal is
    ρ_t = (1/n) Σ_i N(t z_i, σ² t I), with score ``(t m(x) − x)/(σ² t)`` from the drift's own
    posterior mean m(x) (t clamped at ``t_gap``: singular at t = 0, where the law is a point mass,
    so there is no backward drift and no probability-flow ODE). docs/theory.md §4.
    """

    data_end = 1
    unavailable = POINT_MASS_START

    def __init__(self, points, sigma: float = 1.0, *, t_gap: float = 1e-4):
        self.points = check_points(points, "points")
        self.sigma = check_scale(sigma, "sigma")
        self.t_gap = check_positive(t_gap, "t_gap")
        self.dim = self.points.shape[1]

    def drift(self, x, t):
        return softmax_mean(x, self.points.to(x), time_column(t, x), self.sigma**2)

    def score(self, x, t):
        t = time_column(t, x)
        m = softmax_mean(x, self.points.to(x), t, self.sigma**2)
        return (t * m - x) / (self.sigma**2 * t.clamp(min=self.t_gap))

    def start(self, n: int, *, seed: Seed = 0, device=None) -> torch.Tensor:
        """``n`` copies of the origin (the point mass δ0 at t = 0); ``seed`` is not used."""
        return origin(n, self.dim, dtype=self.points.dtype, device=device or self.points.device)


class HeatFlowBridge(Bridge):
    """Reverse heat flow from μ0 = p̂ ∗ N(0, σ²I) to p̂ (Notebook 03 §3, *reconstructed*).

    ``drift`` is the exact empirical drift :func:`heat_flow_drift`, or a network ``net(z, t)``
    fitted by :func:`fit_heat_flow` (shipped for Notebook 03's codes: :func:`lsbcore.shipped.shipped_heat_drift`).
    Read forward in time the heat flow is pure Brownian motion,
    so ``backward_drift`` is 0, the score of ρ_t = p̂ ∗ N(0, σ²(1−t)I) is drift/σ² and the
    probability-flow velocity is ½ drift (both from the face's defaults). The data are at t = 1.
    ``start(n, how=...)`` draws the initial codes:

    * ``"follmer"`` (default): a first SF stage δ0 → p̂ ∗ N(0, σ²I) simulated with ``follmer_steps`` steps;
    * ``"gaussian"``: the Gaussian approximation N(mean(p̂), cov(p̂) + σ² I) (good for large σ);
    * ``"exact"``: z_i + σ ε with z_i drawn from p̂ (possible because p̂ is a finite sample).

    docs/theory.md §4.
    """

    STARTS = ("follmer", "gaussian", "exact")
    data_end = 1

    def __init__(self, points, sigma: float = 1.0, *, net: Optional[nn.Module] = None, t_gap: float = 1e-4):
        self.points = check_points(points, "points")
        self.sigma = check_scale(sigma, "sigma")
        self.t_gap = check_positive(t_gap, "t_gap")
        if net is not None and not isinstance(net, nn.Module):
            raise TypeError(f"net must be a torch.nn.Module net(z, t) → drift, got {type(net).__name__}")
        self.net = net
        self.dim = self.points.shape[1]

    def drift(self, x, t):
        if self.net is not None:
            with torch.no_grad():
                return self.net(x, t)
        return _heat(x, time_column(t, x), self.points.to(x), self.sigma, self.t_gap)

    def backward_drift(self, x, t):
        return torch.zeros_like(x)

    def start(self, n: int, *, seed: Seed = 0, device=None, how: str = "follmer",
              follmer_steps: int = 50) -> torch.Tensor:
        """``n`` draws of (an approximation of) μ0 = p̂ ∗ N(0, σ²I); see the class docstring."""
        from ..sde import sample

        n = check_int(n, "n")
        if how not in self.STARTS:
            raise ValueError(f"how must be one of {self.STARTS}, got {how!r}")
        pts = self.points
        gen = generator(seed, pts.device)
        if how == "follmer":
            x0 = origin(n, self.dim, dtype=pts.dtype, device=pts.device)
            x = sample(SmoothedFollmer(pts, self.sigma), x0, steps=check_int(follmer_steps, "follmer_steps"),
                       seed=gen).x
        else:
            eps = torch.randn(n, self.dim, generator=gen, device=pts.device, dtype=pts.dtype)
            if how == "exact":
                idx = torch.randint(0, pts.shape[0], (n,), generator=gen, device=pts.device)
                x = pts[idx] + self.sigma * eps
            else:
                cov = torch.atleast_2d(torch.cov(pts.T)) + self.sigma**2 * torch.eye(self.dim, device=pts.device,
                                                                                    dtype=pts.dtype)
                x = pts.mean(0) + eps @ torch.linalg.cholesky(cov).T
        return x if device is None else x.to(device)


def fit_heat_flow(points, sigma: float = 1.0, *, t_gap: float = 0.01, steps: int = 2000, batch_size: int = 256,
                  net: Optional[nn.Module] = None, lr: float = 2e-3, seed: int = 0, progress: bool = True,
                  checkpoint=None, time_power: float = 1.0) -> HeatFlowBridge:
    """Learn the reverse-heat-flow drift by regression (Notebook 03 §3, *reconstructed*).

    Minimises ``E ‖b(z1 + σ√(1−t) ε, t) + σ ε/√(1−t)‖²`` over t ~ U[0, 1 − t_gap], z1 ~ p̂, ε ~ N(0, I)
    with the shared ``matching_loss`` and training loop ``lsbcore.train.fit``; the target
    −σε/√(1−t) equals (z1 − z_t)/(1 − t), so the minimiser over *all* functions is
    :func:`heat_flow_drift`, which memorises p̂; a network trained for finitely many steps is smoother
    than it (Notebook 03 §4b measures how much it copies). ``net`` defaults to a TimeMLP of width 128 and
    depth 3 (seeded by ``seed``). The returned bridge keeps the loss of every step in ``.history``.
    ``time_power`` p ≥ 1 packs the training times towards t = 1 (1 − t = t_gap + (1 − t_gap)·vᵖ,
    :func:`lsbcore.bridges.matching.sample_times`; p = 1: uniform); the minimiser is the same.
    Device: the work happens where ``points`` live (``points.to(dev)`` to train on a GPU); a ``net``
    on another device raises a ValueError.
    docs/theory.md §4.
    """
    points = check_points(points, "points")
    work_device(net=net, points=points)
    sigma, t_gap = check_scale(sigma, "sigma"), check_positive(t_gap, "t_gap")
    if t_gap >= 1:
        raise ValueError(f"t_gap must be < 1, got {t_gap}")
    batch_size = check_int(batch_size, "batch_size")
    time_power = check_time_power(time_power)
    net = net if net is not None else TimeMLP(points.shape[1], width=128, depth=3, seed=seed).to(points.device)

    def loss_fn(model, step, gen):
        idx = torch.randint(0, points.shape[0], (batch_size,), generator=gen, device=points.device)
        t = sample_times(batch_size, "forward", t_gap, points, gen, time_power)
        eps = torch.randn(batch_size, points.shape[1], generator=gen, device=points.device, dtype=points.dtype)
        z_t = points[idx] + sigma * torch.sqrt(1 - t) * eps
        return matching_loss(model, z_t, t, -sigma * eps / torch.sqrt(1 - t))

    hist = fit(net, loss_fn, check_int(steps, "steps"), lr=check_positive(lr, "lr"), seed=seed, ema=0.995,
               progress=progress, checkpoint=checkpoint, desc="heat-flow drift")
    bridge = HeatFlowBridge(points, sigma, net=hist.ema.eval())
    bridge.history = hist.losses
    return bridge
