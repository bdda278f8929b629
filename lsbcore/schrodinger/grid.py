"""Fortet / IPF for the continuous Schrödinger problem on a 1-D or 2-D grid (Notebook 01 §"Fortet/IPF").

The Schrödinger system with the heat kernel p(x, y) = N(y; x, σ² I) of the reference σW (docs/theory.md §1)

    φ̂0(x) ∫ p(x, y) φ1(y) dy = ρ0(x),        φ1(y) ∫ p(x, y) φ̂0(x) dx = ρ1(y)

is discretised on a uniform grid (Riemann sums) and solved by alternating the two equations — Fortet's
iteration, i.e. IPF / Sinkhorn with the Gibbs kernel K_ij = exp(−‖x_i − x_j‖² / 2σ²) — in the log
domain (f0 = log u, f1 = log v, log-sum-exp), so small σ does not underflow. The dynamics then follow from
the heat semigroup P_s (variance σ² s):

    φ_t = P_{1−t} φ1,   φ̂_t = P_t φ̂0,   ρ_t = φ_t φ̂_t,
    forward drift σ² ∇log φ_t,   backward drift σ² ∇log φ̂_t.

In 2-D the Gaussian kernel factorises over the axes, so every kernel application is two 1-D
log-sum-exp contractions (cost N³ for an N × N grid instead of N⁴). Drifts are computed on the grid
and linearly interpolated at arbitrary points. Everything runs on the grid's device and dtype
(float64 by default: the tests reach 1e-8 agreement with the Gaussian closed form).
"""
from __future__ import annotations

import math
import warnings
from typing import Sequence

import numpy as np
import torch

from ..bridge import Bridge
from ._grid_ops import apply_axis, apply_kernel, categorical, interpolate, log_kernels, mean_displacement
from ..utils import (Seed, as_real_tensor, check_int, check_points, check_positive, check_real, check_scale,
                     check_time, generator)

__all__ = ["Grid", "GridBridge", "fortet"]


# ----------------------------------------------------------------------------------- the grid
class Grid:
    """A uniform tensor-product grid on the box [lo, hi]^d, d ∈ {1, 2}, with ``n`` nodes per axis.

    ``lo``, ``hi`` and ``n`` are numbers or per-axis sequences; ``dim`` defaults to their length.
    Attributes: ``axes`` (list of 1-D tensors), ``spacing`` (tuple), ``shape``, ``dim``,
    ``cell_volume``, and the property ``points`` (all nodes as an (N, d) tensor, C order).
    Notebook 01 §"Fortet/IPF on a grid".
    """

    def __init__(self, lo, hi, n, dim: int | None = None, *, dtype=torch.float64, device=None):
        lens = [len(v) for v in (lo, hi, n) if isinstance(v, (Sequence, np.ndarray, torch.Tensor))]
        if dim is None:
            dim = lens[0] if lens else 1
        dim = check_int(dim, "dim")
        if dim > 2:
            raise ValueError(f"dim must be 1 or 2 (the grid solver is for pictures), got {dim}")
        if any(k != dim for k in lens):
            raise ValueError(f"lo, hi and n must have length dim={dim}")

        def per_axis(v, name):
            v = list(v) if isinstance(v, (Sequence, np.ndarray, torch.Tensor)) else [v] * dim
            return [check_real(a, name) if name != "n" else a for a in v]

        lo, hi, n = per_axis(lo, "lo"), per_axis(hi, "hi"), per_axis(n, "n")
        for k in range(dim):
            check_int(n[k], "n", minimum=3)
            if not (math.isfinite(lo[k]) and math.isfinite(hi[k])):
                raise ValueError("lo and hi must be finite")
            if not hi[k] > lo[k]:
                raise ValueError(f"hi must be > lo on every axis, got lo={lo[k]}, hi={hi[k]}")
            if not math.isfinite(hi[k] - lo[k]):
                raise ValueError(f"hi − lo overflows float64 on axis {k}: shrink the box")
        self.dim, self.lo, self.hi = dim, tuple(lo), tuple(hi)
        self.shape = tuple(int(k) for k in n)
        self.axes = [torch.linspace(lo[k], hi[k], self.shape[k], dtype=dtype, device=device) for k in range(dim)]
        self.spacing = tuple((hi[k] - lo[k]) / (self.shape[k] - 1) for k in range(dim))
        self.cell_volume = float(np.prod(self.spacing))
        self.dtype, self.device = dtype, self.axes[0].device

    @property
    def points(self) -> torch.Tensor:
        """All grid nodes as an (N, d) tensor (C order: the last axis varies fastest)."""
        mesh = torch.meshgrid(*self.axes, indexing="ij")
        return torch.stack([m.reshape(-1) for m in mesh], dim=1)

    def __repr__(self):
        return f"Grid(lo={self.lo}, hi={self.hi}, n={self.shape})"


# ---------------------------------------------------------------------------- input densities
def _log_density(rho, grid: Grid, name: str) -> torch.Tensor:
    """log of a density on the grid from values (tensor/array), a marginal with ``log_prob`` or a
    callable returning log densities of (n, d) points; checked and returned with grid.shape."""
    if hasattr(rho, "log_prob"):
        if getattr(rho, "dim", grid.dim) != grid.dim:
            raise ValueError(f"{name} has dimension {rho.dim} but the grid has dimension {grid.dim}")
        logp = rho.log_prob(grid.points)
    elif isinstance(rho, (torch.Tensor, np.ndarray)):
        vals = torch.as_tensor(rho)
        if not torch.is_floating_point(vals):
            raise TypeError(f"{name} must be floating-point density values, got dtype {vals.dtype}")
        vals = vals.to(device=grid.device, dtype=grid.dtype)
        if vals.numel() != int(np.prod(grid.shape)):
            raise ValueError(f"{name} must have the grid's shape {grid.shape}, got {tuple(vals.shape)}")
        if not bool(torch.isfinite(vals).all()):
            raise ValueError(f"{name} contains NaN or inf")
        if bool((vals < 0).any()):
            raise ValueError(f"{name} must be non-negative (a density)")
        logp = torch.log(vals.reshape(grid.shape))
    elif callable(rho):
        logp = as_real_tensor(rho(grid.points), f"{name}(points)")
    else:
        raise TypeError(f"{name} must be density values on the grid, a marginal with log_prob, or a "
                        f"callable returning log densities; got {type(rho).__name__}")
    if logp.numel() != int(np.prod(grid.shape)):
        raise ValueError(f"{name} gave {logp.numel()} log densities for the {int(np.prod(grid.shape))} grid points")
    logp = logp.to(device=grid.device, dtype=grid.dtype).reshape(grid.shape)
    if bool(torch.isnan(logp).any()) or bool((logp == math.inf).any()):
        raise ValueError(f"{name} gives NaN or +inf log densities on the grid")
    if not bool(torch.isfinite(logp).any()):
        raise ValueError(f"{name} has no mass on the grid: enlarge the box")
    return logp


# ---------------------------------------------------------------------------------- the solver
def fortet(rho0, rho1, sigma: float, grid: Grid, *, tol: float = 1e-11, max_iter: int = 20_000,
           on_fail: str = "warn") -> "GridBridge":
    """Solve the Schrödinger system on ``grid`` by Fortet / IPF iterations in the log domain.

    ``rho0``, ``rho1``: density values on the grid (tensor of the grid's shape), a marginal with
    ``log_prob`` (e.g. :class:`lsbcore.Gaussian`, :class:`lsbcore.GaussianMixture`), or a callable
    mapping (n, d) points to log densities. They are renormalised to probability masses on the grid.
    Iterates ``f0 ← log a − log K e^f1``, ``f1 ← log b − log Kᵀ e^f0`` until the L1 error of the first
    marginal is ≤ ``tol`` (the second holds exactly after each f1 update). ``on_fail``: "warn",
    "raise" or "ignore" when ``max_iter`` is reached first. Returns a :class:`GridBridge`.
    Notebook 01 §"Fortet/IPF on a grid".
    """
    if not isinstance(grid, Grid):
        raise TypeError(f"grid must be an lsbcore Grid, got {type(grid).__name__}")
    sigma = check_scale(sigma, "sigma")
    tol = check_positive(tol, "tol")
    max_iter = check_int(max_iter, "max_iter")
    if on_fail not in ("warn", "raise", "ignore"):
        raise ValueError(f"on_fail must be 'warn', 'raise' or 'ignore', got {on_fail!r}")
    loga = _log_density(rho0, grid, "rho0")
    logb = _log_density(rho1, grid, "rho1")
    loga = loga - torch.logsumexp(loga.reshape(-1), 0)
    logb = logb - torch.logsumexp(logb.reshape(-1), 0)
    a = loga.exp()
    logks = log_kernels(grid, sigma**2)
    f0 = torch.zeros_like(loga)
    f1 = logb - apply_kernel(f0, logks)
    errors, converged = [], False
    for _ in range(max_iter):
        f0_new = loga - apply_kernel(f1, logks)
        # first-marginal error of the previous iterate: its row sums are a · exp(f0 − f0_new)
        ratio = torch.where(a > 0, torch.exp(f0 - f0_new), torch.ones_like(a))
        err = float((a * (ratio - 1).abs()).sum())
        errors.append(err)
        f0 = f0_new
        f1 = logb - apply_kernel(f0, logks)
        if err <= tol:
            converged = True
            break
    if not converged:
        msg = f"Fortet/IPF did not reach tol={tol} in {max_iter} iterations (last error {errors[-1]:.3g})"
        if on_fail == "raise":
            raise RuntimeError(msg)
        if on_fail == "warn":
            warnings.warn(msg, RuntimeWarning, stacklevel=2)
    return GridBridge(grid, sigma, f0, f1, loga, logb, errors, converged)


# ---------------------------------------------------------------------------------- the bridge
class GridBridge(Bridge):
    """The solved Schrödinger bridge on a grid (built by :func:`fortet`; Notebook 01 §"Fortet/IPF").

    Holds the discrete potentials ``f0 = log u``, ``f1 = log v`` (plan π_ij = u_i K_ij v_j), the
    continuous log potentials ``log_phi_hat0``, ``log_phi1`` on the grid, the IPF error history
    ``errors`` and ``converged``. Implements the :class:`~lsbcore.bridge.Bridge` face:
    ``drift``, ``backward_drift``; ``score`` and ``velocity`` follow from Nelson's relation; ``start``
    samples ρ0 (generation runs forward, ``data_end = 1``). Points outside the box get the drift of
    the nearest boundary node. Times given as one value per row are interpolated
    linearly between ``n_time`` + 1 uniform time nodes; a single time is evaluated exactly.
    """

    data_end = 1

    def __init__(self, grid: Grid, sigma: float, f0, f1, loga, logb, errors, converged, n_time: int = 200):
        self.grid, self.sigma, self.dim = grid, float(sigma), grid.dim
        self.f0, self.f1, self.log_a, self.log_b = f0, f1, loga, logb
        self.errors, self.converged, self.n_iter = list(errors), bool(converged), len(errors)
        self.n_time = n_time
        d, dv = grid.dim, math.log(grid.cell_volume)
        #: log φ̂0 and log φ1 on the grid (continuous potentials: ρ0 = φ̂0 · P_1 φ1, ρ1 = φ1 · P_1 φ̂0)
        self.log_phi_hat0 = f0 - dv + 0.5 * d * math.log(2 * math.pi * self.sigma**2)
        self.log_phi1 = f1 - dv
        self._cache: dict = {}

    # ------------------------------------------------------------ potentials and marginals
    def _smoothed(self, logf, s: float):
        """log P_s of a log-potential on the grid (up to a constant), s = variance fraction of σ².
        A variance that underflows to 0 (t ≈ 5e-324) is the identity, as at s = 0."""
        var = self.sigma**2 * s
        return logf if var == 0 else apply_kernel(logf, log_kernels(self.grid, var))

    def log_phi(self, t: float) -> torch.Tensor:
        """log φ_t = log P_{1−t} φ1 on the grid (up to an additive constant)."""
        t = _one_time(t)
        return self.f1 if t >= 1 else self._smoothed(self.f1, 1 - t)

    def log_phi_hat(self, t: float) -> torch.Tensor:
        """log φ̂_t = log P_t φ̂0 on the grid (up to an additive constant)."""
        t = _one_time(t)
        return self.f0 if t <= 0 else self._smoothed(self.f0, t)

    def log_density(self, t: float) -> torch.Tensor:
        """log ρ_t on the grid (grid.shape), normalised so that Σ ρ_t · cell_volume = 1.

        ρ0 and ρ1 are the given marginals; in between ρ_t = φ_t φ̂_t. Notebook 01 §2.2 "The bridge in time"."""
        t = _one_time(t)
        if t <= 0:
            logp = self.log_a
        elif t >= 1:
            logp = self.log_b
        else:
            logp = self.log_phi(t) + self.log_phi_hat(t)
        return logp - torch.logsumexp(logp.reshape(-1), 0) - math.log(self.grid.cell_volume)

    def density(self, t: float) -> torch.Tensor:
        """ρ_t on the grid (grid.shape)."""
        return self.log_density(t).exp()

    def moments(self, t: float):
        """Mean (d,) and covariance (d, d) of ρ_t by Riemann sums on the grid (Notebook 01 §2.2)."""
        w = (self.log_density(t) + math.log(self.grid.cell_volume)).exp().reshape(-1)
        x = self.grid.points
        m = w @ x
        xc = x - m
        return m, (xc * w[:, None]).T @ xc

    def marginal_errors(self):
        """L1 errors (‖π 1 − a‖₁, ‖πᵀ 1 − b‖₁) of the current plan's two marginals (Notebook 01 §2.3)."""
        logks = log_kernels(self.grid, self.sigma**2)
        row = (self.f0 + apply_kernel(self.f1, logks)).exp()
        col = (self.f1 + apply_kernel(self.f0, logks)).exp()
        return float((row - self.log_a.exp()).abs().sum()), float((col - self.log_b.exp()).abs().sum())

    # ------------------------------------------------------------ static plan
    def plan(self) -> torch.Tensor:
        """The discrete plan π_ij = u_i K_ij v_j as an (N, N) matrix over grid.points (N ≤ 4096).
        Notebook 01 §2.1 "three solvers"."""
        n = int(np.prod(self.grid.shape))
        if n > 4096:
            raise ValueError(f"the plan would be {n}×{n}; use cross_cov() or sample_plan() instead")
        x = self.grid.points
        logk = -torch.cdist(x, x) ** 2 / (2 * self.sigma**2)
        return (self.f0.reshape(-1, 1) + logk + self.f1.reshape(1, -1)).exp()

    def cross_cov(self) -> torch.Tensor:
        """Cov(X0, X1) under the grid plan, without forming it: X1 − X0 | X0 = x has mean
        Σ_j w_j (y_j − x), w ∝ K(x, y_j) v_j (one kernel contraction per axis). Notebook 01 §2.1."""
        logks = log_kernels(self.grid, self.sigma**2)
        b0 = torch.stack([mean_displacement(self.f1, logks, self.grid, k) for k in range(self.dim)], -1)
        a = self.log_a.exp().reshape(-1)
        x = self.grid.points
        b0 = b0.reshape(-1, self.dim)
        m0 = a @ x
        m1 = a @ (x + b0)
        return ((x - m0) * a[:, None]).T @ (x + b0 - m1)

    def entropic_cost(self) -> float:
        """OT_ε = Σ π‖x−y‖² + ε KL(π ‖ a⊗b), ε = 2σ², by duality: ε (⟨a, f0 − log a⟩ + ⟨b, f1 − log b⟩).
        Notebook 01 §2.1."""
        a, b = self.log_a.exp(), self.log_b.exp()
        fa = torch.where(a > 0, a * (self.f0 - self.log_a), torch.zeros_like(a)).sum()
        fb = torch.where(b > 0, b * (self.f1 - self.log_b), torch.zeros_like(b)).sum()
        return float(2 * self.sigma**2 * (fa + fb))

    def sample_plan(self, n: int, seed: Seed = 0, *, jitter: bool = False):
        """n pairs (X0, X1) drawn from the grid plan (grid nodes; ``jitter`` adds a uniform offset
        within the cell). Returns two (n, d) tensors in the grid's dtype. Notebook 01 §2.1."""
        n = check_int(n, "n")
        gen = generator(seed, self.grid.device)
        logks = log_kernels(self.grid, self.sigma**2)
        i = torch.multinomial(self.log_a.exp().reshape(-1), n, replacement=True, generator=gen)
        ii = (i,) if self.dim == 1 else (i // self.grid.shape[1], i % self.grid.shape[1])
        if self.dim == 1:
            logits = logks[0][0][ii[0]] + self.f1[None, :]
            jj = (categorical(logits, gen),)
        else:
            # j0 from its conditional (axis 1 summed out), then j1 given j0
            h = apply_axis(self.f1, logks[1], 1)  # h[j0, i1]
            j0 = categorical(logks[0][0][ii[0]] + h[:, ii[1]].T, gen)
            j1 = categorical(logks[1][0][ii[1]] + self.f1[j0], gen)
            jj = (j0, j1)
        x0 = torch.stack([self.grid.axes[k][ii[k]] for k in range(self.dim)], 1)
        x1 = torch.stack([self.grid.axes[k][jj[k]] for k in range(self.dim)], 1)
        if jitter:
            h = torch.tensor(self.grid.spacing, dtype=x0.dtype, device=x0.device)
            x0 = x0 + (torch.rand(x0.shape, generator=gen, dtype=x0.dtype, device=x0.device) - 0.5) * h
            x1 = x1 + (torch.rand(x1.shape, generator=gen, dtype=x1.dtype, device=x1.device) - 0.5) * h
        return x0, x1

    def start(self, n: int, *, seed: Seed = 0, device=None) -> torch.Tensor:
        """``n`` samples of ρ0, the start law of generation: grid nodes drawn with their mass, each
        spread uniformly over its cell. ``(n, d)`` in the grid's dtype. Notebook 01 §2.6."""
        n = check_int(n, "n")
        gen = generator(seed, self.grid.device)
        if gen.device.type != self.grid.device.type:
            raise ValueError(f"seed is a generator on {gen.device} but the grid is on {self.grid.device}")
        i = torch.multinomial(self.log_a.exp().reshape(-1), n, replacement=True, generator=gen)
        x0 = self.grid.points[i]
        h = torch.tensor(self.grid.spacing, dtype=x0.dtype, device=x0.device)
        x0 = x0 + (torch.rand(x0.shape, generator=gen, dtype=x0.dtype, device=x0.device) - 0.5) * h
        return x0 if device is None else x0.to(device)

    # ------------------------------------------------------------ drifts on the grid
    def _grad_field(self, logpot, s: float) -> torch.Tensor:
        """σ² ∇log P_s(e^logpot) on the grid, shape grid.shape + (d,).

        Wide kernels (σ√s ≥ the spacing): the exact kernel form Σ_j w_j (y_j − x)/s, w ∝ K_s(x, y_j) e^{logpot_j}.
        Narrow ones (near the ends): central finite differences of log P_s; at s = 0 the potential's own."""
        grid = self.grid
        if s > 0 and self.sigma * math.sqrt(s) >= max(grid.spacing):
            logks = log_kernels(grid, self.sigma**2 * s)
            return torch.stack([mean_displacement(logpot, logks, grid, k) / s for k in range(self.dim)], -1)
        logp = self._smoothed(logpot, s) if s > 0 else logpot
        grads = torch.gradient(logp, spacing=list(grid.spacing))
        field = self.sigma**2 * torch.stack(list(grads), -1)
        return torch.nan_to_num(field, nan=0.0, posinf=0.0, neginf=0.0)  # zero-density nodes at t ∈ {0, 1}

    def drift_field(self, t: float) -> torch.Tensor:
        """Forward drift σ² ∇log φ_t on the grid nodes, shape grid.shape + (d,) (Notebook 01 §2.6)."""
        return self._field("fwd", _one_time(t))

    def backward_drift_field(self, t: float) -> torch.Tensor:
        """Backward drift σ² ∇log φ̂_t on the grid nodes, shape grid.shape + (d,) (Notebook 01 §2.6)."""
        return self._field("bwd", _one_time(t))

    def _field(self, kind: str, t: float) -> torch.Tensor:
        key = (kind, t)
        if key not in self._cache:
            if len(self._cache) >= 512:
                self._cache.pop(next(iter(self._cache)))
            self._cache[key] = self._grad_field(self.f1, 1 - t) if kind == "fwd" else self._grad_field(self.f0, t)
        return self._cache[key]

    def _evaluate(self, kind: str, x, t) -> torch.Tensor:
        x = check_points(x, "x", dim=self.dim)
        if x.device != self.grid.device:
            raise ValueError(f"x is on {x.device} but the grid is on {self.grid.device}")
        if isinstance(t, torch.Tensor) and t.numel() > 1:
            tt = check_time(t, "t", batch=x.shape[0], like=self.grid.axes[0]).reshape(-1)
            if bool((tt == tt[0]).all()):
                t = float(tt[0])
            else:
                return self._evaluate_many(kind, x, tt.expand(x.shape[0]))
        else:
            t = _one_time(t)
        field = self._field(kind, t).reshape(1, -1, self.dim)
        idx = torch.zeros(x.shape[0], dtype=torch.long, device=x.device)
        return interpolate(self.grid, field, idx, x.to(self.grid.dtype)).to(x.dtype)

    def _evaluate_many(self, kind, x, tt):
        """Per-row times: linear interpolation between uniform time nodes k / n_time."""
        u = tt * self.n_time
        k0 = torch.clamp(torch.floor(u).long(), max=self.n_time - 1)
        w = (u - k0).to(x.dtype)[:, None]
        nodes = torch.unique(torch.cat([k0, k0 + 1]))
        fields = torch.stack([self._field(kind, int(k) / self.n_time) for k in nodes.tolist()]).reshape(len(nodes), -1, self.dim)
        pos = torch.searchsorted(nodes, torch.stack([k0, k0 + 1]))
        xg = x.to(self.grid.dtype)
        lo = interpolate(self.grid, fields, pos[0], xg).to(x.dtype)
        hi = interpolate(self.grid, fields, pos[1], xg).to(x.dtype)
        return (1 - w) * lo + w * hi

    def drift(self, x, t):
        """Forward drift σ² ∇log φ_t(x), linearly interpolated from the grid (Notebook 01 §dynamics)."""
        return self._evaluate("fwd", x, t)

    def backward_drift(self, x, t):
        """Backward drift σ² ∇log φ̂_t(x); drift + backward_drift = σ² ∇log ρ_t (Nelson)."""
        return self._evaluate("bwd", x, t)

    def __repr__(self):
        return (f"GridBridge(grid={self.grid}, sigma={self.sigma}, n_iter={self.n_iter}, "
                f"converged={self.converged})")


# ---------------------------------------------------------------------------------- helpers
_HOST64 = torch.empty(0, dtype=torch.float64)


def _one_time(t) -> float:
    """One time in [0, 1] as an exact Python float (checked by utils.check_time; the field cache's key)."""
    tt = check_time(t, "t", like=_HOST64)
    if tt.numel() != 1:
        raise ValueError(f"t must be a single time here, got {tt.numel()} values")
    return float(tt)
