"""Schrödinger–Föllmer: the Schrödinger bridge from a point mass δ0 to a target μ (reference σW, t ∈ [0, 1]).

The SF process solves ``dX_t = b(X_t, t) dt + σ dW_t``, ``X_0 = 0``, with the drift

    b(x, t) = σ² ∇ log E_Z[ f(x + σ√(1−t) Z) ],        f = dμ / dN(0, σ² I),  Z ~ N(0, I)

(the heat semigroup of the reference applied to f, then σ²∇log: an h-transform). Equivalently the
path law is "draw X1 ~ μ, join 0 to X1 by a Brownian bridge", so X_t = t X1 + σ√(t(1−t)) Z and

    b(x, t) = E[(X1 − X_t)/(1 − t) | X_t = x].

Three ways to compute it, all exposing the Bridge face (:class:`lsbcore.bridge.Bridge`; data at
t = 1, ``start`` = the origin, no backward drift or probability-flow ODE from a point mass):

- :class:`FollmerMC` — Monte Carlo over Z for a target with a log-density (gradient or Stein form,
  log-sum-exp stabilised).
- :class:`EmpiricalFollmer` — exact, no network, for an empirical target Σ_i a_i δ_{x_i}: a softmax
  average, :func:`softmax_mean` (the one softmax drift of the package; the heat-flow bridges of
  :mod:`lsbcore.bridges.heat` use it too).
- :func:`fit_follmer` — a network regressed on (X_t, t) → (X1 − X_t)/(1 − t) from samples of μ
  (bridge matching with X0 = 0, the shared :func:`~lsbcore.bridges.matching.matching_loss`).

Plus :func:`gaussian_follmer_drift`, the closed form for μ = N(m, s² I) used by tests and notebooks.

End points: at t = 0 every formula here is finite (no division by t). At t → 1 the empirical and
Stein drifts divide by 1 − t (or √(1−t)); they clamp ``1 − t ≥ t_gap`` (default 1e-4), so the drift
is finite at t = 1 and an Euler step of size h ≥ t_gap from 1 − h lands on the target points.
Notebook 02 §"Schrödinger–Föllmer", docs/theory.md §4.
"""
from __future__ import annotations

import math
from typing import Callable, Optional

import torch

from ..bridge import Bridge
from ..utils import (Seed, work_device, check_int, check_points, check_positive, check_same_device, check_scale, check_weights, generator,
                     time_column)
from .matching import MatchedBridge, fit_bridge

__all__ = ["softmax_mean", "POINT_MASS_START", "origin", "follmer_mc_drift", "FollmerMC",
           "empirical_follmer_drift", "EmpiricalFollmer", "gaussian_follmer_drift", "fit_follmer"]

FORMS = ("gradient", "stein")

#: the parts of the face a bridge started from the point mass δ0 cannot give (Föllmer-type bridges)
POINT_MASS_START = {
    "backward_drift": "its law at t=0 is a point mass, which a backward SDE cannot reach with a finite drift",
    "velocity": "its law at t=0 is a point mass: every probability-flow path from it is the same one",
}


def origin(n: int, dim: Optional[int], *, dtype=None, device=None) -> torch.Tensor:
    """``n`` copies of the origin: the start points of a bridge from the point mass δ0 (docs/theory.md §4)."""
    n = check_int(n, "n")
    if dim is None:
        raise ValueError("the bridge does not know its dimension: pass dim= to its constructor")
    return torch.zeros(n, dim, dtype=dtype, device=device)


def softmax_mean(x, points, shift, scale, log_weights=None) -> torch.Tensor:
    """``Σ_i w_i x_i`` with ``w_i ∝ a_i exp((x·x_i − ½ shift ‖x_i‖²) / scale)``: the one softmax drift.

    Every exact drift towards an empirical measure Σ_i a_i δ_{x_i} is this posterior mean of the
    clean point given the noisy one, for some ``shift`` (t or 1) and ``scale`` (a variance):
    :func:`empirical_follmer_drift` (shift t, scale σ²(1−t)), and in :mod:`lsbcore.bridges.heat`
    the reverse heat flow (shift 1, scale σ²(1−t)) and the smoothed Föllmer drift (shift t, scale σ²).
    ``shift`` and ``scale`` are numbers or ``(batch, 1)`` tensors; ``log_weights`` (``(n,)``, None for
    uniform) are the log a_i. Inner code: the arguments are trusted. docs/theory.md §4.
    """
    logits = (x @ points.T - 0.5 * shift * (points * points).sum(-1)) / scale
    if log_weights is not None:
        logits = log_weights + logits
    return torch.softmax(logits, dim=1) @ points


# ---------------------------------------------------------------------------------- Monte Carlo
def follmer_mc_drift(x, t, log_density: Callable, sigma: float = 1.0, *, n_mc: int = 1000,
                     form: str = "gradient", seed: Seed = 0, t_gap: float = 1e-4,
                     return_stderr: bool = False):
    """Monte-Carlo SF drift ``σ² ∇ log E_Z f(x + σ√(1−t) Z)`` for a target with ``log_density``.

    With n_mc draws Z_j (shared by the whole batch) and y_j = x + σ√(1−t) Z_j, the weights
    ``w_j = softmax_j log f(y_j)`` (``log f = log μ + ‖y‖²/(2σ²)`` up to a constant; log-sum-exp
    keeps them finite) give

        form="gradient":  b ≈ σ² Σ_j w_j ∇log f(y_j)                  (needs autograd through log μ)
        form="stein":     b ≈ σ/√(1−t) Σ_j w_j Z_j   (Gaussian integration by parts; no ∇ needed)

    The gradient form stays accurate as t → 1 (b(x, 1) = σ²∇log f(x)); the Stein form's variance
    grows like 1/(1−t) and 1 − t is clamped at ``t_gap``. ``log_density`` maps (n, d) → (n,) and
    need not be normalised. ``return_stderr`` also returns the delta-method standard error of the
    self-normalised estimate, ``sqrt(Σ_j w_j² (h_j − b)²)`` per coordinate. It is reliable when the
    weights are light-tailed, i.e. when μ is not far from N(0, σ²); for a narrow target far from the
    origin a few Z_j carry all the weight, the error is larger than this estimate suggests, and
    n_mc must grow (the reason to learn the drift instead). Notebook 02 §"Schrödinger–Föllmer".
    """
    x = check_points(x, "x")
    t = time_column(t, x)
    sigma = check_scale(sigma, "sigma")
    n_mc = check_int(n_mc, "n_mc", minimum=2)
    t_gap = check_positive(t_gap, "t_gap")
    if form not in FORMS:
        raise ValueError(f"form must be one of {FORMS}, got {form!r}")
    if not callable(log_density):
        raise TypeError("log_density must be a callable (n, d) -> (n,)")
    gen = generator(seed, x.device)
    n, d = x.shape
    z = torch.randn(n_mc, d, generator=gen, device=x.device, dtype=x.dtype)
    scale = sigma * torch.sqrt((1 - t).clamp(min=0))                       # (n, 1)
    y = (x[:, None, :] + scale[:, :, None] * z[None]).reshape(n * n_mc, d)
    with torch.enable_grad():
        y = y.detach().requires_grad_(form == "gradient")
        log_mu = log_density(y)
        if not isinstance(log_mu, torch.Tensor) or log_mu.shape != (n * n_mc,):
            raise ValueError(f"log_density must return a tensor of shape (n,), got "
                             f"{getattr(log_mu, 'shape', type(log_mu))}")
        log_f = log_mu + (y * y).sum(-1) / (2 * sigma**2)
        if form == "gradient":
            (grad,) = torch.autograd.grad(log_f.sum(), y)
    log_f = log_f.detach().reshape(n, n_mc)
    if not bool(torch.isfinite(log_f).any(dim=1).all()):
        raise ValueError("log_density is -inf or NaN at every Monte-Carlo point for some x: "
                         "is the target's support reachable from x?")
    w = torch.softmax(torch.nan_to_num(log_f, nan=-math.inf), dim=1)        # (n, n_mc)
    if form == "gradient":
        h = sigma**2 * grad.reshape(n, n_mc, d)
    else:
        h = (sigma / torch.sqrt((1 - t).clamp(min=t_gap)))[:, :, None] * z[None]
    b = torch.einsum("nj,njd->nd", w, h)
    if not return_stderr:
        return b
    se = torch.sqrt(torch.einsum("nj,njd->nd", w**2, (h - b[:, None, :]) ** 2))
    return b, se


class FollmerMC(Bridge):
    """SF bridge δ0 → μ with the Monte-Carlo drift of :func:`follmer_mc_drift` (Notebook 02 §"Schrödinger–Föllmer").

    Each ``drift`` call draws fresh Z from an internal generator seeded with ``seed`` (so a whole
    sampler run is reproducible). ``target`` is a callable log-density or an object with
    ``.log_prob`` (e.g. :class:`lsbcore.GaussianMixture`). Generation starts at the origin
    (``start``; needs ``dim``, taken from ``target.dim`` when it has one) and runs forward to μ at
    t = 1; there is no backward drift and no probability-flow ODE (the law at t = 0 is a point mass).
    """

    data_end = 1
    unavailable = POINT_MASS_START

    def __init__(self, target, sigma: float = 1.0, *, n_mc: int = 1000, form: str = "gradient",
                 seed: Seed = 0, t_gap: float = 1e-4, dim: Optional[int] = None):
        self.log_density = target.log_prob if callable(getattr(target, "log_prob", None)) else target
        if not callable(self.log_density):
            raise TypeError("target must be a callable log-density or have .log_prob")
        self.sigma = check_scale(sigma, "sigma")
        self.n_mc = check_int(n_mc, "n_mc", minimum=2)
        if form not in FORMS:
            raise ValueError(f"form must be one of {FORMS}, got {form!r}")
        self.form, self.t_gap = form, check_positive(t_gap, "t_gap")
        self.dim = dim if dim is not None else getattr(target, "dim", None)
        self._seed = seed
        self._gens: dict = {}

    def drift(self, x, t):
        key = str(x.device)
        if key not in self._gens:   # one generator per device, created on first use
            self._gens[key] = generator(self._seed, x.device)
        return follmer_mc_drift(x, t, self.log_density, self.sigma, n_mc=self.n_mc, form=self.form,
                                seed=self._gens[key], t_gap=self.t_gap)

    def start(self, n: int, *, seed: Seed = 0, device=None) -> torch.Tensor:
        """``n`` copies of the origin (the point mass δ0 at t = 0). A new run begins: the Monte-Carlo
        generator is rewound to the bridge's own ``seed``, so ``lsbcore.generate`` is reproducible."""
        self._gens.clear()
        return origin(n, self.dim, device=device)


# ---------------------------------------------------------------------------------- exact, empirical
def empirical_follmer_drift(x, t, points, sigma: float = 1.0, weights=None, *,
                            t_gap: float = 1e-4) -> torch.Tensor:
    """Exact SF drift for an empirical target μ = Σ_i a_i δ_{x_i}: no network, no Monte Carlo.

    Given X1 = x_i the path is a Brownian bridge, X_t ~ N(t x_i, σ² t(1−t) I), so

        b(x, t) = Σ_i w_i (x_i − x)/(1 − t),   w_i ∝ a_i exp(−‖x − t x_i‖² / (2σ² t(1−t)))
                                                  ∝ a_i exp((2 x·x_i − t‖x_i‖²) / (2σ²(1−t)))

    (the two weights differ by a factor free of i). It equals σ²∇log E_Z f(x + σ√(1−t)Z): the
    heat kernel gives E_Z f(·) ∝ Σ_i a_i N(x_i; x, σ²(1−t)) / N(x_i; 0, σ²), whose log-gradient is
    the same softmax. The second form is finite at t = 0 (b(0, 0) = Σ a_i x_i); 1 − t is clamped at
    ``t_gap``. Cost O(batch × n) memory and time. Notebook 02 §"Schrödinger–Föllmer".
    """
    x = check_points(x, "x")
    t = time_column(t, x)
    points = check_points(points, "points", dim=x.shape[1])
    check_same_device(x=x, points=points)
    sigma = check_scale(sigma, "sigma")
    t_gap = check_positive(t_gap, "t_gap")
    a = check_weights(weights, "weights", points.shape[0], like=points)
    gap = (1 - t).clamp(min=t_gap)
    return (softmax_mean(x, points.to(x.dtype), t, sigma**2 * gap, torch.log(a).to(x.dtype)) - x) / gap


class EmpiricalFollmer(Bridge):
    """SF bridge δ0 → Σ_i a_i δ_{x_i} with the exact drift of :func:`empirical_follmer_drift`.

    Simulated to t = 1 it reproduces the training points (the exact drift memorises them): the
    reason one learns a smooth drift instead. Generation starts at the origin (``start``) and runs
    forward to the data at t = 1. Its marginal is the mixture ρ_t = Σ_i a_i N(t x_i, σ² t(1−t) I),
    whose score ``(t m(x) − x) / (σ² t(1−t))`` uses the drift's own posterior mean m(x) (t and 1 − t
    are clamped at ``t_gap``: the score is singular at both ends). No backward drift and no
    probability-flow ODE: the law at t = 0 is a point mass. Notebook 02 §"Schrödinger–Föllmer".
    """

    data_end = 1
    unavailable = POINT_MASS_START

    def __init__(self, points, sigma: float = 1.0, weights=None, *, t_gap: float = 1e-4):
        self.points = check_points(points, "points")
        self.sigma = check_scale(sigma, "sigma")
        self.t_gap = check_positive(t_gap, "t_gap")
        self.log_a = torch.log(check_weights(weights, "weights", self.points.shape[0], like=self.points))
        self.dim = self.points.shape[1]

    def _mean(self, x, t):
        """(t as a checked column, 1 − t clamped, the posterior mean m(x) = E[X1 | X_t = x])."""
        check_same_device(x=x, points=self.points)
        t = time_column(t, x)
        gap = (1 - t).clamp(min=self.t_gap)
        m = softmax_mean(x, self.points.to(x.dtype), t, self.sigma**2 * gap, self.log_a.to(x.dtype))
        return t, gap, m

    def drift(self, x, t):
        _, gap, m = self._mean(x, t)
        return (m - x) / gap

    def score(self, x, t):
        t, gap, m = self._mean(x, t)
        return (t * m - x) / (self.sigma**2 * t.clamp(min=self.t_gap) * gap)

    def start(self, n: int, *, seed: Seed = 0, device=None) -> torch.Tensor:
        """``n`` copies of the origin (the point mass δ0 at t = 0); ``seed`` is not used."""
        return origin(n, self.dim, dtype=self.points.dtype, device=device or self.points.device)


# ---------------------------------------------------------------------------------- closed form
def gaussian_follmer_drift(x, t, mean, std: float, sigma: float = 1.0) -> torch.Tensor:
    """Closed-form SF drift for μ = N(m, s² I): ``b(x, t) = (σ² m + (s² − σ²) x) / (σ²(1−t) + s² t)``.

    Derivation: X_t = t X1 + σ√(t(1−t)) Z with X1 ~ N(m, s²I) is Gaussian, X_t ~ N(t m, v_t I),
    v_t = t² s² + σ² t(1−t); Gaussian conditioning gives E[X1 | X_t = x] = m + k_t (x − t m) with
    k_t = s² / (t s² + σ²(1−t)), and b = (E[X1|x] − x)/(1 − t) simplifies to the formula above:
    linear in x, finite on all of [0, 1], zero when μ = N(0, σ²) (the reference's own marginal).
    Notebook 02 §"Schrödinger–Föllmer".
    """
    x = check_points(x, "x")
    t = time_column(t, x)
    mean = torch.as_tensor(mean, dtype=x.dtype, device=x.device)
    if mean.ndim > 1 or (mean.ndim == 1 and mean.shape[0] != x.shape[1]):
        raise ValueError(f"mean must be a scalar or have shape ({x.shape[1]},), got {tuple(mean.shape)}")
    s2 = check_positive(std, "std") ** 2
    sigma2 = check_scale(sigma, "sigma") ** 2
    return (sigma2 * mean + (s2 - sigma2) * x) / (sigma2 * (1 - t) + s2 * t)


# ---------------------------------------------------------------------------------- learned
def fit_follmer(samples, sigma: float = 1.0, *, steps: int = 2000, batch_size: int = 256,
                net=None, lr: float = 1e-3, t_gap: float = 1e-2, seed: int = 0, ema: float = 0.999,
                progress: bool = True, checkpoint=None, device=None, **fit_kwargs) -> MatchedBridge:
    """Learn the SF drift from samples of μ: regress ``(X1 − X_t)/(1−t)`` on ``(X_t, t)``.

    ``X_t = t X1 + σ√(t(1−t)) Z`` is bridge matching with X0 = 0, so this is
    :func:`~lsbcore.bridges.matching.fit_bridge` with the point mass at the origin as source and
    the shared ``matching_loss``; its minimiser is the exact SF drift of the sampling distribution
    (for a finite sample set: :func:`empirical_follmer_drift`). ``samples`` is an (n, d) tensor,
    a marginal or a callable ``(n, gen) → points``. t ~ U[0, 1 − t_gap].
    Device: where a ``samples`` tensor lives; for a marginal or callable, ``device`` (None: the CPU,
    or a given ``net``'s device). A ``net`` elsewhere raises a ValueError.
    Notebook 02 §"Schrödinger–Föllmer".
    """
    where = work_device(device, net=net, samples=samples)
    if isinstance(samples, torch.Tensor):
        samples = check_points(samples, "samples")
        dim, dev, dtype = samples.shape[1], samples.device, samples.dtype
    else:
        probe = (samples.sample(2, seed=0) if callable(getattr(samples, "sample", None))
                 else samples(2, generator(0)))
        dim, dev, dtype = probe.shape[1], (probe.device if where is None else where), probe.dtype

    return fit_bridge(lambda n, gen: origin(n, dim, dtype=dtype, device=dev), samples, sigma, coupling="independent", direction="forward", net=net,
                      steps=steps, batch_size=batch_size, lr=lr, t_gap=t_gap, seed=seed, ema=ema,
                      progress=progress, checkpoint=checkpoint, device=where, **fit_kwargs)
