"""Marginals: distributions you can sample from and, where known, evaluate.

Every marginal has ``dim`` and ``sample(n, seed=..., device=...)`` returning an ``(n, dim)`` tensor;
Gaussians and Gaussian mixtures also have ``log_prob``, ``mean`` and ``cov``. The toy 2-D sets
(8 gaussians, moons, checkerboard, spiral) are the ones used across the SB literature.
Notebook 01 §2.6 (non-Gaussian marginals) and notebook 02 use them.
"""
from __future__ import annotations

import math

import torch

from .utils import (Seed, as_matrix, as_real_tensor, as_vector, check_device, check_int, check_points,
                    check_positive, check_real, check_weights, generator)

_LOG2PI = math.log(2 * math.pi)


class Marginal:
    """Anything with ``dim`` and ``sample(n, seed, device)``."""

    dim: int

    def sample(self, n: int, seed: Seed = 0, device=None) -> torch.Tensor:  # pragma: no cover - interface
        raise NotImplementedError

    def _prepare(self, n, seed, device):
        return _prepare(n, seed, device)


class Gaussian(Marginal):
    """N(mean, cov). ``cov`` may be a matrix, a vector (diagonal) or a scalar (isotropic)."""

    def __init__(self, mean, cov=1.0):
        floating = isinstance(mean, torch.Tensor) and torch.is_floating_point(mean)
        dtype = mean.dtype if floating else torch.get_default_dtype()
        dev = mean.device if isinstance(mean, torch.Tensor) else None
        shape = tuple(as_real_tensor(mean, "mean").shape)
        if len(shape) != 1:
            raise ValueError(f"mean must be a vector of shape (d,), got {shape}")
        d = shape[0]
        mean = as_vector(mean, "mean", d, dtype=dtype, device=dev)
        cov = as_matrix(cov, "cov", d, dtype=dtype, device=mean.device, kind="sym")
        try:
            self._chol = torch.linalg.cholesky(cov)
        except RuntimeError:
            raise ValueError("cov must be positive definite") from None
        self.mean, self.cov, self.dim = mean, cov, d

    def sample(self, n, seed: Seed = 0, device=None):
        n, dev, gen = self._prepare(n, seed, device if device is not None else self.mean.device)
        z = torch.randn(n, self.dim, generator=gen, device=dev, dtype=self.mean.dtype)
        return self.mean.to(dev) + z @ self._chol.to(dev).T

    def log_prob(self, x):
        x = check_points(x, "x", dim=self.dim)
        diff = (x - self.mean.to(x)).T
        sol = torch.linalg.solve_triangular(self._chol.to(x), diff, upper=False)
        logdet = 2 * torch.log(torch.diagonal(self._chol)).sum().to(x)
        return -0.5 * (sol**2).sum(0) - 0.5 * logdet - 0.5 * self.dim * _LOG2PI


class GaussianMixture(Marginal):
    """Σ_k w_k N(means[k], covs[k]); ``covs`` is (K, d, d), (K,) isotropic variances, or a scalar."""

    def __init__(self, weights, means, covs=1.0):
        means = as_real_tensor(means, "means")
        if not torch.is_floating_point(means):
            means = means.to(torch.get_default_dtype())
        if means.ndim != 2 or means.shape[0] == 0:
            raise ValueError(f"means must have shape (K, d) with K ≥ 1, got {tuple(means.shape)}")
        k, d = means.shape
        self.weights = check_weights(as_real_tensor(weights, "weights").to(means.dtype), "weights", k)
        covs = as_real_tensor(covs, "covs").to(means.dtype)
        if covs.ndim == 0:
            covs = covs.expand(k)
        if covs.ndim == 1:
            covs = covs[:, None, None] * torch.eye(d, dtype=means.dtype)
        if covs.shape != (k, d, d):
            raise ValueError(f"covs must have shape ({k}, {d}, {d}), got {tuple(covs.shape)}")
        self.components = [Gaussian(means[i], covs[i]) for i in range(k)]
        self.means, self.covs, self.dim = means, covs, d

    @property
    def mean(self):
        return self.weights @ self.means

    @property
    def cov(self):
        m = self.mean
        diffs = self.means - m
        return torch.einsum("k,kij->ij", self.weights, self.covs) + torch.einsum("k,ki,kj->ij", self.weights, diffs, diffs)

    def sample(self, n, seed: Seed = 0, device=None):
        n, dev, gen = self._prepare(n, seed, device)
        idx = torch.multinomial(self.weights.to(dev), n, replacement=True, generator=gen)
        z = torch.randn(n, self.dim, generator=gen, device=dev, dtype=self.means.dtype)
        chols = torch.stack([c._chol for c in self.components]).to(dev)
        return self.means.to(dev)[idx] + torch.einsum("nij,nj->ni", chols[idx], z)

    def log_prob(self, x):
        x = check_points(x, "x", dim=self.dim)
        comps = torch.stack([c.log_prob(x) for c in self.components], dim=1)
        return torch.logsumexp(comps + torch.log(self.weights.to(x)), dim=1)


class Empirical(Marginal):
    """A weighted point cloud Σ_i w_i δ_{x_i}; sampling draws points with replacement."""

    def __init__(self, points, weights=None):
        self.points = check_points(points, "points")
        self.weights = check_weights(weights, "weights", self.points.shape[0], like=self.points)
        self.dim = self.points.shape[1]

    @property
    def mean(self):
        return self.weights @ self.points

    @property
    def cov(self):
        c = self.points - self.mean
        return (c * self.weights[:, None]).T @ c

    def sample(self, n, seed: Seed = 0, device=None):
        n, dev, gen = self._prepare(n, seed, device if device is not None else self.points.device)
        idx = torch.multinomial(self.weights.to(dev), n, replacement=True, generator=gen)
        return self.points.to(dev)[idx]


# -------------------------------------------------------------------------------- toy 2-D sets
def eight_gaussians(n, seed: Seed = 0, device=None, *, radius: float = 5.0, std: float = math.sqrt(0.1)):
    """Eight Gaussian blobs of standard deviation ``std`` evenly spaced on a circle of ``radius``."""
    radius, std = check_positive(radius, "radius"), check_positive(std, "std", allow_zero=True)
    n, dev, gen = _prepare(n, seed, device)
    angles = torch.arange(8, device=dev, dtype=torch.get_default_dtype()) * (2 * math.pi / 8)
    centres = radius * torch.stack([torch.cos(angles), torch.sin(angles)], dim=1)
    idx = torch.randint(0, 8, (n,), generator=gen, device=dev)
    return _finite(centres[idx] + std * torch.randn(n, 2, generator=gen, device=dev), "radius and std")


def moons(n, seed: Seed = 0, device=None, *, noise: float = 0.2, scale: float = 3.0, shift: float = -1.0):
    """Two interleaving half circles (as ``sklearn.datasets.make_moons``), then ``x * scale + shift``.

    As in sklearn, the points sit on an even grid along the arcs, exactly n/2 per arc, before the
    Gaussian noise: two samples are a little more alike than two i.i.d. samples would be, so the W2
    noise floor between two of them is optimistic (n = 2000: 0.18 against 0.20 for an i.i.d. sample
    of the same law; for torchcfm's variant, whose only noise is one shift per point, the i.i.d.
    sample scores 2.3 × the floor: bench/training.py).
    """
    noise, scale = check_positive(noise, "noise", allow_zero=True), check_positive(scale, "scale")
    shift = check_real(shift, "shift")
    n, dev, gen = _prepare(n, seed, device)
    n_out = n // 2
    n_in = n - n_out
    s_out = torch.linspace(0, math.pi, n_out, device=dev)
    s_in = torch.linspace(0, math.pi, n_in, device=dev)
    outer = torch.stack([torch.cos(s_out), torch.sin(s_out)], 1)
    inner = torch.stack([1 - torch.cos(s_in), 1 - torch.sin(s_in) - 0.5], 1)
    x = torch.cat([outer, inner])
    x = x[torch.randperm(n, generator=gen, device=dev)]
    x = x + noise * torch.randn(n, 2, generator=gen, device=dev)
    return _finite(x * scale + shift, "noise, scale and shift")


def checkerboard(n, seed: Seed = 0, device=None, *, scale=(1.0, 1.0)):
    """Uniform on the 8 dark squares of a 4×4 board on [-4, 4]², then each axis times ``scale``."""
    scale = _axis_scale(scale)
    n, dev, gen = _prepare(n, seed, device)
    x1 = torch.rand(n, generator=gen, device=dev) * 4 - 2
    x2 = torch.rand(n, generator=gen, device=dev) - torch.randint(0, 2, (n,), generator=gen, device=dev) * 2.0
    x2 = x2 + torch.floor(x1) % 2
    x = torch.stack([x1, x2], 1) * 2
    return _finite(x * scale.to(device=dev, dtype=x.dtype), "scale")


def spiral(n, seed: Seed = 0, device=None, *, scale=(1.0, 1.0), noise: float = 0.1, turns: float = 1.5):
    """A noisy Archimedean spiral roughly in [-4, 4]², then each axis times ``scale``
    (VSDM's anisotropic test stretches y by 8: ``scale=(1, 8)``)."""
    scale = _axis_scale(scale)
    noise, turns = check_positive(noise, "noise", allow_zero=True), check_positive(turns, "turns")
    n, dev, gen = _prepare(n, seed, device)
    u = torch.sqrt(torch.rand(n, generator=gen, device=dev))
    theta = u * turns * 2 * math.pi + 0.5
    r = 4.0 * theta / (turns * 2 * math.pi + 0.5)
    x = torch.stack([r * torch.cos(theta), r * torch.sin(theta)], 1)
    x = x + noise * torch.randn(n, 2, generator=gen, device=dev)
    return _finite(x * scale.to(device=dev, dtype=x.dtype), "scale, noise and turns")


# -------------------------------------------------------------------------------- argument checks
def _prepare(n, seed, device):
    """(n, device, generator) for a sampler: the device is ``device``, else the generator's, else the CPU."""
    n = check_int(n, "n", minimum=1)
    if device is None and isinstance(seed, torch.Generator):
        dev = seed.device
    else:
        dev = check_device(device)
    gen = generator(seed, dev)
    if gen.device.type != dev.type:
        raise ValueError(f"seed is a generator on {gen.device} but device is {dev}")
    return n, dev, gen


def _finite(x: torch.Tensor, names: str) -> torch.Tensor:
    """The samples, if finite; a ValueError naming the parameters that made them overflow otherwise."""
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"the samples overflow {x.dtype}: {names} are too large")
    return x


def _axis_scale(scale) -> torch.Tensor:
    """A per-axis scale of a 2-D toy set: a positive number or two, as a float64 (2,) tensor."""
    scale = as_vector(scale, "scale", 2, device="cpu")
    if bool((scale <= 0).any()):
        raise ValueError(f"scale must be > 0 on both axes, got {scale.tolist()}")
    return scale


TOY_SETS = {"8gaussians": eight_gaussians, "moons": moons, "checkerboard": checkerboard, "spiral": spiral}


class Toy2D(Marginal):
    """One of the toy sets by name (``"8gaussians"``, ``"moons"``, ``"checkerboard"``, ``"spiral"``)."""

    dim = 2

    def __init__(self, name: str, **kwargs):
        if not isinstance(name, str) or name not in TOY_SETS:
            raise ValueError(f"name must be one of {sorted(TOY_SETS)}, got {name!r}")
        TOY_SETS[name](1, 0, **kwargs)          # checks the keyword arguments now, not at sampling time
        self.name, self.kwargs = name, kwargs

    def sample(self, n, seed: Seed = 0, device=None):
        return TOY_SETS[self.name](n, seed, device, **self.kwargs)

    def __repr__(self):
        return f"Toy2D({self.name!r}, **{self.kwargs})"
