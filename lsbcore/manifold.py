"""Data on a known low-dimensional manifold in a high-dimensional space (Notebook 04).

The latent SB's claim is about dimensions: data in an ambient space of dimension D that really vary in
only d* ≪ D directions should be learned at a rate set by d*, not D. Real digits hide both the truth
and the intrinsic dimension, so Notebook 04 builds data where both are known:

    z ~ a Gaussian mixture in d* dimensions            (the intrinsic law, known exactly)
    x = Q [z, h(z)] (+ optional noise off the manifold) in R^D,   h_j(z) = a √(d*/m) sin(ω_j · z + φ_j)

h has m components and Q is a random D × (d* + m) matrix with orthonormal columns: the data lie on a
curved d*-dimensional surface (the graph of h, rotated into R^D). ``span="full"`` (default) bends
the surface into all m = D − d* remaining directions, so it is not contained in any smaller linear
subspace and a larger D is a genuinely larger problem; ``span="low"`` bends it into m = d* directions
only, so it lies in a (2d*)-dimensional linear subspace whatever D is (the extra D − 2d* directions
are empty and a linear map can discard them). The factor √(d*/m) keeps the bend's total size
(‖h‖² ≈ a² d*/2) the same for every D. Because Q and h are known, every point can be **read back**:

- its intrinsic coordinates ``u = (Qᵀx)[:d*]`` (exact on the manifold), where errors are measured
  against the true law of z by W2 in d* dimensions (accurate: d* is small);
- its distance off the manifold ``‖(Qᵀx)[d*:] − h(u)‖`` plus the part of x outside Q's columns (the
  vertical distance to the graph of h: zero on the manifold, and at most √(1 + Lip(h)²) times the
  shortest distance to it).

The pre-training law p̃ ≠ p of the paper is the same surface with a **shifted** intrinsic law
(:meth:`ManifoldData.sample` with ``shift > 0``: mixture weights flattened towards uniform, means
moved along a fixed direction, components widened), so an autoencoder pre-trained on p̃ has seen the
surface but with another density. docs/theory.md §4.
"""
from __future__ import annotations

import math

import torch

from .utils import Seed, check_int, check_points, check_positive, check_seed, generator

__all__ = ["ManifoldData", "SPANS"]

#: how many directions the surface bends into (see the module docstring)
SPANS = ("full", "low")
#: weights of the intrinsic mixture's components (unequal on purpose: mass balance is part of the error)
WEIGHTS = (0.4, 0.3, 0.2, 0.1)


class ManifoldData:
    """A population sampler for x = Q [z, h(z)] ∈ R^D with z from a known law in d* dimensions.

    Args:
        ambient_dim: D, at least 2·intrinsic_dim.
        intrinsic_dim: d*.
        curvature: amplitude a of the bending h (0: a flat d*-plane in R^D).
        span: ``"full"`` (h bends into all D − d* other directions) or ``"low"`` (into d* of them).
        noise: root-mean-square size of the Gaussian noise added *off* the manifold (in the D − d*
            directions orthogonal to the intrinsic ones); 0 (default) puts the data exactly on it.
        seed: fixes the family: the mixture's means, the frequencies of h and Q. Two families with the
            same (D, d*, seed) are identical; the *samples* take their own seed.

    The intrinsic law is a mixture of four Gaussians N(μ_k, 0.5² I) with weights 0.4, 0.3, 0.2, 0.1
    and means of norm 2 in random directions. Notebook 04 §2.
    """

    def __init__(self, ambient_dim: int, intrinsic_dim: int, *, curvature: float = 1.0, span: str = "full",
                 noise: float = 0.0, seed: int = 0):
        self.ambient_dim = check_int(ambient_dim, "ambient_dim")
        self.intrinsic_dim = check_int(intrinsic_dim, "intrinsic_dim")
        if self.ambient_dim < 2 * self.intrinsic_dim:
            raise ValueError(f"ambient_dim must be ≥ 2·intrinsic_dim = {2 * self.intrinsic_dim} "
                             f"(room for z and h(z)), got {self.ambient_dim}")
        self.curvature = check_positive(curvature, "curvature", allow_zero=True)
        self.noise = check_positive(noise, "noise", allow_zero=True)
        if span not in SPANS:
            raise ValueError(f"span must be one of {SPANS}, got {span!r}")
        self.span = span
        self.seed = check_seed(seed)
        d, D = self.intrinsic_dim, self.ambient_dim
        m = D - d if span == "full" else d              # the number of bent coordinates
        gen = generator(self.seed)
        dirs = torch.randn(len(WEIGHTS), d, generator=gen, dtype=torch.float64)
        self.means = 2.0 * dirs / dirs.norm(dim=1, keepdim=True)
        self.std = 0.5
        self.weights = torch.tensor(WEIGHTS, dtype=torch.float64)
        self.shift_dir = torch.nn.functional.normalize(torch.randn(d, generator=gen, dtype=torch.float64), dim=0)
        self.freq = torch.randn(m, d, generator=gen, dtype=torch.float64)        # ω_j, rows
        self.phase = 2 * math.pi * torch.rand(m, generator=gen, dtype=torch.float64)
        self.amplitude = self.curvature * math.sqrt(d / m)
        self.basis = torch.linalg.qr(torch.randn(D, d + m, generator=gen, dtype=torch.float64)).Q  # Q, (D, d* + m)

    def __repr__(self) -> str:
        return (f"ManifoldData(ambient_dim={self.ambient_dim}, intrinsic_dim={self.intrinsic_dim}, "
                f"curvature={self.curvature}, span={self.span!r}, noise={self.noise}, seed={self.seed})")

    # ----------------------------------------------------------------------------- the laws
    def _law(self, shift: float):
        """(weights, means, std) of the intrinsic mixture, shifted by ``shift`` ≥ 0 (0: the target p)."""
        s = min(shift, 1.0)
        w = (1 - s) * self.weights + s / len(WEIGHTS)
        return w, self.means + shift * self.shift_dir, self.std * (1 + 0.5 * shift)

    def sample_intrinsic(self, n: int, *, seed: Seed = 0, shift: float = 0.0) -> torch.Tensor:
        """``n`` draws of z, shape (n, d*), float64: the target law (``shift = 0``) or the shifted p̃."""
        n = check_int(n, "n")
        shift = check_positive(shift, "shift", allow_zero=True)
        w, mu, std = self._law(shift)
        gen = generator(seed)
        k = torch.multinomial(w, n, replacement=True, generator=gen)
        return mu[k] + std * torch.randn(n, self.intrinsic_dim, generator=gen, dtype=torch.float64)

    def bend(self, z: torch.Tensor) -> torch.Tensor:
        """h(z) = a √(d*/m) · sin(z ωᵀ + φ), shape (n, m) (a = ``curvature``)."""
        return self.amplitude * torch.sin(z @ self.freq.to(z).T + self.phase.to(z))

    def embed(self, z) -> torch.Tensor:
        """x = Q [z, h(z)]: intrinsic coordinates (n, d*) → points on the manifold (n, D), z's dtype."""
        z = check_points(z, "z", dim=self.intrinsic_dim)
        return torch.cat([z, self.bend(z)], dim=1) @ self.basis.to(z).T

    def sample(self, n: int, *, seed: Seed = 0, shift: float = 0.0, dtype=torch.float32) -> torch.Tensor:
        """``n`` points x ∈ R^D of the population (``shift = 0``) or of the shifted pre-training law.

        Returns an (n, D) tensor of ``dtype`` (float32 by default, the networks' precision).
        """
        gen = generator(seed)
        z = self.sample_intrinsic(n, seed=gen, shift=shift)
        x = self.embed(z)
        if self.noise > 0:
            eps = torch.randn(n, self.ambient_dim, generator=gen, dtype=torch.float64)
            q = self.basis[:, : self.intrinsic_dim]
            eps = eps - (eps @ q) @ q.T                   # no component along the intrinsic directions
            x = x + self.noise * eps / math.sqrt(self.ambient_dim - self.intrinsic_dim)
        return x.to(dtype)

    # ---------------------------------------------------------------------------- read back
    def intrinsic(self, x) -> torch.Tensor:
        """The intrinsic coordinates u = (Qᵀx)[:d*] of points x (n, D), float64 (exact on the manifold)."""
        x = check_points(x, "x", dim=self.ambient_dim).double()
        return x @ self.basis[:, : self.intrinsic_dim].to(x.device)

    def off_manifold(self, x) -> torch.Tensor:
        """Distance of each point to the manifold, per point (n,), float64.

        ``√(‖y₂ − h(y₁)‖² + ‖x − Q y‖²)`` with y = Qᵀx split into y₁ (d*) and y₂ (m): the vertical
        distance to the graph of h inside Q's span plus the part of x outside it. 0 on the manifold.
        """
        x = check_points(x, "x", dim=self.ambient_dim).double()
        basis = self.basis.to(x.device)
        y = x @ basis
        d = self.intrinsic_dim
        inside = (y[:, d:] - self.bend(y[:, :d])).pow(2).sum(1)
        outside = (x - y @ basis.T).pow(2).sum(1)
        return (inside + outside).sqrt()
