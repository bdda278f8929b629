"""Unnormalised target densities with a known normaliser: test beds for samplers that estimate log Z.

A sampler for an *unnormalised* density ρ (known only up to the constant Z = ∫ ρ(x) dx) is judged by
three numbers: how well it estimates log Z, its effective sample size, and how close its samples are
to the normalised law μ = ρ / Z. That needs targets whose Z and exact samples we know:

- :class:`GaussianMixtureTarget` — ρ(x) = e^{c} Σ_k π_k N(x; m_k, s_k² I): a Gaussian mixture scaled
  by the known constant e^{c}, so log Z = c (``log_z``, default 2: a test of "log Z ≈ 0" would not
  notice a sampler that forgets the constant).
- :class:`NealsFunnel` — Neal's funnel in d dimensions, v ~ N(0, scale²), x_i | v ~ N(0, e^v) for
  i = 1..d−1, written as code usually writes it, with every constant dropped:

      log ρ(v, x) = −v²/(2 scale²) − ½ e^{−v} ‖x‖² − (d−1) v / 2,   log Z = (d/2) log 2π + log scale

  (the neck, v ≪ 0, is narrow and the mouth, v ≫ 0, is wide: a hard target for any sampler).

Each target has ``dim``, ``log_z``, ``log_density(x)`` (the unnormalised log ρ, ``(n, d) → (n,)``,
differentiable), ``log_prob(x)`` (= log ρ − log Z, the normalised log-density), an exact sampler
``sample(n, seed)``, and is callable as its own ``log_density``: so ``lsb.FollmerMC(target)`` (which
uses ``log_prob``: a constant does not change a drift) and the learned sampler of
:mod:`lsbcore.bridges.follmer_learned` (which uses ``log_density``) both take it.
:func:`grad_log_density` gives ∇ log ρ by autograd. Notebook 02 §2.8 "A learned sampler".
"""
from __future__ import annotations

import math
from typing import Callable

import torch

from ..utils import Seed, as_real_tensor, check_int, check_points, check_real, check_scale, generator

__all__ = ["GaussianMixtureTarget", "NealsFunnel", "grad_log_density"]

_LOG2PI = math.log(2 * math.pi)


class _Target:
    """Shared face: ``log_prob`` from ``log_density`` and ``log_z``; callable as ``log_density``."""

    dim: int
    log_z: float

    def log_density(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - interface
        raise NotImplementedError

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """The normalised log-density log μ(x) = log ρ(x) − log Z."""
        return self.log_density(x) - self.log_z

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.log_density(x)

    def _sample_args(self, n, seed):
        n = check_int(n, "n")
        gen = generator(seed)
        return n, gen


class GaussianMixtureTarget(_Target):
    """ρ(x) = e^{log_z} Σ_k π_k N(x; m_k, s_k² I): a Gaussian mixture times a known constant.

    ``weights`` (K,) non-negative, normalised here to π; ``means`` (K, d); ``stds`` a number or (K,)
    positive standard deviations (isotropic per component); ``log_z`` the log normaliser of the
    exposed ρ (any finite number). ``sample(n, seed)`` draws exactly from μ = ρ / Z (a component k ~ π,
    then m_k + s_k ξ). float64 throughout (the means/weights' dtype is promoted).
    Notebook 02 §2.8 "A learned sampler".
    """

    def __init__(self, weights, means, stds=1.0, *, log_z: float = 2.0):
        means = as_real_tensor(means, "means").to(torch.float64)
        if means.ndim != 2 or means.shape[0] == 0 or means.shape[1] == 0:
            raise ValueError(f"means must have shape (K, d) with K, d ≥ 1, got {tuple(means.shape)}")
        if not bool(torch.isfinite(means).all()):
            raise ValueError("means contains NaN or inf")
        k, d = means.shape
        w = as_real_tensor(weights, "weights").to(torch.float64)
        if w.shape != (k,):
            raise ValueError(f"weights must have shape ({k},), got {tuple(w.shape)}")
        if not bool(torch.isfinite(w).all()) or bool((w < 0).any()) or not float(w.sum()) > 0:
            raise ValueError("weights must be finite, non-negative and not all zero")
        s = as_real_tensor(stds, "stds").to(torch.float64)
        s = s.expand(k).clone() if s.ndim == 0 else s
        if s.shape != (k,):
            raise ValueError(f"stds must be a number or have shape ({k},), got {tuple(s.shape)}")
        if not bool(torch.isfinite(s).all()) or bool((s <= 0).any()):
            raise ValueError("stds must be finite and > 0")
        self.weights, self.means, self.stds = w / w.sum(), means, s
        self.dim, self.log_z = d, check_real(log_z, "log_z")

    def log_density(self, x: torch.Tensor) -> torch.Tensor:
        """log ρ(x) = log_z + log Σ_k π_k N(x; m_k, s_k² I); ``(n, d) → (n,)`` in x's dtype."""
        m, s2 = self.means.to(x), (self.stds**2).to(x)
        sq = ((x[:, None, :] - m[None]) ** 2).sum(-1)                              # (n, K)
        comp = -0.5 * sq / s2 - 0.5 * self.dim * (torch.log(s2) + _LOG2PI)
        return torch.logsumexp(comp + torch.log(self.weights.to(x)), dim=1) + self.log_z

    def sample(self, n: int, seed: Seed = 0) -> torch.Tensor:
        """``n`` exact draws from μ = ρ / Z, float64, on the CPU."""
        n, gen = self._sample_args(n, seed)
        idx = torch.multinomial(self.weights, n, replacement=True, generator=gen)
        z = torch.randn(n, self.dim, generator=gen, dtype=torch.float64)
        return self.means[idx] + self.stds[idx, None] * z

    def __repr__(self):
        return f"GaussianMixtureTarget(K={self.means.shape[0]}, dim={self.dim}, log_z={self.log_z:g})"


class NealsFunnel(_Target):
    """Neal's funnel in ``dim`` ≥ 2 dimensions: v = x[:, 0] ~ N(0, scale²), x[:, i] | v ~ N(0, e^v).

    The exposed log ρ drops every constant (see the module docstring), so
    log Z = (dim/2) log 2π + log scale. ``sample(n, seed)`` is exact: v = scale ξ_0, x_i = e^{v/2} ξ_i.
    Notebook 02 §2.8 "A learned sampler".
    """

    def __init__(self, dim: int, scale: float = 3.0):
        self.dim = check_int(dim, "dim", minimum=2)
        self.scale = check_scale(scale, "scale")
        self.log_z = 0.5 * self.dim * _LOG2PI + math.log(self.scale)

    def log_density(self, x: torch.Tensor) -> torch.Tensor:
        """log ρ(v, x) = −v²/(2 scale²) − ½ e^{−v} ‖x‖² − (dim−1) v / 2; ``(n, dim) → (n,)``."""
        v, rest = x[:, 0], x[:, 1:]
        return -0.5 * v**2 / self.scale**2 - 0.5 * torch.exp(-v) * (rest**2).sum(-1) - 0.5 * (self.dim - 1) * v

    def sample(self, n: int, seed: Seed = 0) -> torch.Tensor:
        """``n`` exact draws from the funnel, float64, on the CPU."""
        n, gen = self._sample_args(n, seed)
        z = torch.randn(n, self.dim, generator=gen, dtype=torch.float64)
        v = self.scale * z[:, :1]
        return torch.cat([v, torch.exp(0.5 * v) * z[:, 1:]], dim=1)

    def __repr__(self):
        return f"NealsFunnel(dim={self.dim}, scale={self.scale:g})"


def grad_log_density(log_density: Callable, x: torch.Tensor) -> torch.Tensor:
    """∇ log ρ(x) by autograd, ``(n, d) → (n, d)``, detached (the score of the target; a drift such as
    σ²∇log ρ at t = 1 is where the Föllmer drift ends). ``log_density`` maps (n, d) → (n,)."""
    if not callable(log_density):
        raise TypeError(f"log_density must be a callable (n, d) -> (n,), got {type(log_density).__name__}")
    x = check_points(x, "x")
    with torch.enable_grad():
        y = x.detach().requires_grad_(True)
        out = log_density(y)
        if not isinstance(out, torch.Tensor) or out.shape != (x.shape[0],):
            raise ValueError(f"log_density must return a tensor of shape ({x.shape[0]},), got "
                             f"{tuple(getattr(out, 'shape', ())) or type(out).__name__}")
        (g,) = torch.autograd.grad(out.sum(), y)
    return g.detach()
