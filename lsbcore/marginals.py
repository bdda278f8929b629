"""Marginals: distributions you can sample from and, where known, evaluate.

Every marginal has ``dim`` and ``sample(n, seed=..., device=...)`` returning an ``(n, dim)`` tensor;
Gaussians and Gaussian mixtures also have ``log_prob``, ``mean`` and ``cov``. The toy 2-D sets
(8 gaussians, moons, checkerboard, spiral) are the ones used across the SB literature.
Notebook 01 §2.6 (non-Gaussian marginals) and notebook 02 use them.
"""
from __future__ import annotations

import math

import torch

from .utils import Seed, check_int, check_points, check_weights, generator

_LOG2PI = math.log(2 * math.pi)


class Marginal:
    """Anything with ``dim`` and ``sample(n, seed, device)``."""

    dim: int

    def sample(self, n: int, seed: Seed = 0, device=None) -> torch.Tensor:  # pragma: no cover - interface
        raise NotImplementedError

    def _prepare(self, n, seed, device):
        n = check_int(n, "n", minimum=1)
        dev = torch.device(device) if device is not None else (
            seed.device if isinstance(seed, torch.Generator) else torch.device("cpu"))
        return n, dev, generator(seed, dev)


class Gaussian(Marginal):
    """N(mean, cov). ``cov`` may be a matrix, a vector (diagonal) or a scalar (isotropic)."""

    def __init__(self, mean, cov=1.0):
        mean = torch.as_tensor(mean, dtype=torch.get_default_dtype()) if not isinstance(mean, torch.Tensor) else mean
        if mean.ndim != 1:
            raise ValueError(f"mean must be a vector of shape (d,), got {tuple(mean.shape)}")
        if not torch.is_floating_point(mean):
            mean = mean.to(torch.get_default_dtype())
        d = mean.shape[0]
        cov = torch.as_tensor(cov, dtype=mean.dtype, device=mean.device)
        if cov.ndim == 0:
            cov = cov * torch.eye(d, dtype=mean.dtype, device=mean.device)
        elif cov.ndim == 1:
            if cov.shape[0] != d:
                raise ValueError(f"cov must have length {d}, got {cov.shape[0]}")
            cov = torch.diag(cov)
        if cov.shape != (d, d):
            raise ValueError(f"cov must have shape ({d}, {d}), got {tuple(cov.shape)}")
        if not (bool(torch.isfinite(mean).all()) and bool(torch.isfinite(cov).all())):
            raise ValueError("mean and cov must be finite")
        if not torch.allclose(cov, cov.T, atol=1e-10, rtol=1e-8):
            raise ValueError("cov must be symmetric")
        try:
            self._chol = torch.linalg.cholesky(cov)
        except RuntimeError:
            raise ValueError("cov must be positive definite") from None
        self.mean, self.cov, self.dim = mean, cov, d

    def sample(self, n, seed: Seed = 0, device=None):
        n, dev, g = self._prepare(n, seed, device if device is not None else self.mean.device)
        z = torch.randn(n, self.dim, generator=g, device=dev, dtype=self.mean.dtype)
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
        means = torch.as_tensor(means)
        if not torch.is_floating_point(means):
            means = means.to(torch.get_default_dtype())
        if means.ndim != 2:
            raise ValueError(f"means must have shape (K, d), got {tuple(means.shape)}")
        k, d = means.shape
        self.weights = check_weights(torch.as_tensor(weights, dtype=means.dtype), "weights", k)
        covs = torch.as_tensor(covs, dtype=means.dtype)
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
        n, dev, g = self._prepare(n, seed, device)
        idx = torch.multinomial(self.weights.to(dev), n, replacement=True, generator=g)
        z = torch.randn(n, self.dim, generator=g, device=dev, dtype=self.means.dtype)
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
        n, dev, g = self._prepare(n, seed, device if device is not None else self.points.device)
        idx = torch.multinomial(self.weights.to(dev), n, replacement=True, generator=g)
        return self.points.to(dev)[idx]


# -------------------------------------------------------------------------------- toy 2-D sets
def eight_gaussians(n, seed: Seed = 0, device=None, *, radius: float = 5.0, std: float = math.sqrt(0.1)):
    """Eight Gaussian blobs of standard deviation ``std`` evenly spaced on a circle of ``radius``."""
    n = check_int(n, "n")
    dev = torch.device(device) if device is not None else torch.device("cpu")
    g = generator(seed, dev)
    angles = torch.arange(8, device=dev, dtype=torch.get_default_dtype()) * (2 * math.pi / 8)
    centres = radius * torch.stack([torch.cos(angles), torch.sin(angles)], dim=1)
    idx = torch.randint(0, 8, (n,), generator=g, device=dev)
    return centres[idx] + std * torch.randn(n, 2, generator=g, device=dev)


def moons(n, seed: Seed = 0, device=None, *, noise: float = 0.2, scale: float = 3.0, shift: float = -1.0):
    """Two interleaving half circles (as ``sklearn.datasets.make_moons``), then ``x * scale + shift``.

    As in sklearn, the points sit on an even grid along the arcs, exactly n/2 per arc, before the
    Gaussian noise: two samples are a little more alike than two i.i.d. samples would be, so the W2
    noise floor between two of them is optimistic (n = 2000: 0.18 against 0.20 for an i.i.d. sample
    of the same law; for torchcfm's variant, whose only noise is one shift per point, the i.i.d.
    sample scores 2.3 × the floor: bench/training.py).
    """
    n = check_int(n, "n")
    dev = torch.device(device) if device is not None else torch.device("cpu")
    g = generator(seed, dev)
    n_out = n // 2
    n_in = n - n_out
    s_out = torch.linspace(0, math.pi, n_out, device=dev)
    s_in = torch.linspace(0, math.pi, n_in, device=dev)
    outer = torch.stack([torch.cos(s_out), torch.sin(s_out)], 1)
    inner = torch.stack([1 - torch.cos(s_in), 1 - torch.sin(s_in) - 0.5], 1)
    x = torch.cat([outer, inner])
    x = x[torch.randperm(n, generator=g, device=dev)]
    x = x + noise * torch.randn(n, 2, generator=g, device=dev)
    return x * scale + shift


def checkerboard(n, seed: Seed = 0, device=None, *, scale=(1.0, 1.0)):
    """Uniform on the 8 dark squares of a 4×4 board on [-4, 4]², then each axis times ``scale``."""
    n = check_int(n, "n")
    dev = torch.device(device) if device is not None else torch.device("cpu")
    g = generator(seed, dev)
    x1 = torch.rand(n, generator=g, device=dev) * 4 - 2
    x2 = torch.rand(n, generator=g, device=dev) - torch.randint(0, 2, (n,), generator=g, device=dev) * 2.0
    x2 = x2 + torch.floor(x1) % 2
    x = torch.stack([x1, x2], 1) * 2
    return x * torch.as_tensor(scale, device=dev, dtype=x.dtype)


def spiral(n, seed: Seed = 0, device=None, *, scale=(1.0, 1.0), noise: float = 0.1, turns: float = 1.5):
    """A noisy Archimedean spiral roughly in [-4, 4]², then each axis times ``scale``
    (VSDM's anisotropic test stretches y by 8: ``scale=(1, 8)``)."""
    n = check_int(n, "n")
    dev = torch.device(device) if device is not None else torch.device("cpu")
    g = generator(seed, dev)
    u = torch.sqrt(torch.rand(n, generator=g, device=dev))
    theta = u * turns * 2 * math.pi + 0.5
    r = 4.0 * theta / (turns * 2 * math.pi + 0.5)
    x = torch.stack([r * torch.cos(theta), r * torch.sin(theta)], 1)
    x = x + noise * torch.randn(n, 2, generator=g, device=dev)
    return x * torch.as_tensor(scale, device=dev, dtype=x.dtype)


TOY_SETS = {"8gaussians": eight_gaussians, "moons": moons, "checkerboard": checkerboard, "spiral": spiral}


class Toy2D(Marginal):
    """One of the toy sets by name (``"8gaussians"``, ``"moons"``, ``"checkerboard"``, ``"spiral"``)."""

    dim = 2

    def __init__(self, name: str, **kwargs):
        if name not in TOY_SETS:
            raise ValueError(f"name must be one of {sorted(TOY_SETS)}, got {name!r}")
        self.name, self.kwargs = name, kwargs

    def sample(self, n, seed: Seed = 0, device=None):
        return TOY_SETS[self.name](n, seed, device, **self.kwargs)

    def __repr__(self):
        return f"Toy2D({self.name!r}, **{self.kwargs})"
