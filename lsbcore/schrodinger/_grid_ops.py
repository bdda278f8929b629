"""Kernel contractions, sampling and interpolation on a uniform grid (private helpers of
:mod:`lsbcore.schrodinger.grid`; Notebook 01 §"Fortet/IPF on a grid", docs/theory.md §1).

The Gaussian kernel factorises over the axes, so every contraction is a 1-D log-sum-exp along one
axis: a fast matrix product, redone by exact log-sum-exp where the sum underflowed. Inputs are trusted.
"""
from __future__ import annotations

import numpy as np
import torch

# ----------------------------------------------------------------------- kernel contractions
TINY = 1e-280  # below this a kernel sum may have lost precision to underflow: redo it by log-sum-exp


def log_kernels(grid, var: float):
    """Per-axis Gibbs kernels as pairs (log K, K), log K_ij = −(x_i − x_j)² / (2 var)."""
    out = []
    for a in grid.axes:
        logk = -((a[:, None] - a[None, :]) ** 2) / (2 * var)
        k = logk.exp()
        # subnormal entries (below finfo.tiny) are ~0 for every sum but slow every product down
        out.append((logk, k.masked_fill_(k < torch.finfo(k.dtype).tiny, 0.0)))
    return out


def stable_sums(h: torch.Tensor, ker, weights=None):
    """(Σ_j K_ij e^{h_j − m} w_j, Σ_j K_ij e^{h_j − m}, m) over the last axis of h, m = max_j h_j.

    A matrix product (fast); the caller falls back to log-sum-exp where the second sum is tiny."""
    m = h.amax(-1, keepdim=True)
    m = torch.where(torch.isfinite(m), m, torch.zeros_like(m))
    e = torch.exp(h - m)
    den = e @ ker[1].T
    num = (e * weights) @ ker[1].T if weights is not None else None
    return num, den, m


def apply_axis(logf: torch.Tensor, ker, axis: int) -> torch.Tensor:
    """out[..i..] = log Σ_j K[i, j] exp(logf[..j..]) along ``axis`` (stabilised, log domain)."""
    h = logf.movedim(axis, -1)
    _, den, m = stable_sums(h, ker)
    out = torch.log(den) + m
    bad = ~(den > TINY)
    if bool(bad.any()):  # underflow: redo those entries by exact log-sum-exp
        rows, cols = bad_rows(h, bad)
        out = out.clone()
        out[bad] = torch.logsumexp(ker[0][cols] + rows, dim=-1)
    return out.movedim(-1, axis)


def bad_rows(h: torch.Tensor, bad: torch.Tensor):
    """For each flagged output entry (..., i): the input row h[..., :] and the kernel row index i."""
    idx = bad.nonzero()
    return h[tuple(idx[:, :-1].T)], idx[:, -1]


def apply_kernel(logf: torch.Tensor, kers, skip: int | None = None) -> torch.Tensor:
    """Apply the separable kernel along every axis (except ``skip``)."""
    for axis, ker in enumerate(kers):
        if axis != skip:
            logf = apply_axis(logf, ker, axis)
    return logf


def mean_displacement(logf: torch.Tensor, kers, grid, axis: int) -> torch.Tensor:
    """Σ_j w_ij (y_j − x_i) along ``axis`` with w ∝ K(x_i, y) e^{logf(y)} (the other axes summed out)."""
    h = apply_kernel(logf, kers, skip=axis).movedim(axis, -1)  # (..., N_j)
    a = grid.axes[axis]
    num, den, _ = stable_sums(h, kers[axis], a)
    out = num / den - a
    bad = ~(den > TINY)
    if bool(bad.any()):
        rows, cols = bad_rows(h, bad)
        w = torch.softmax(kers[axis][0][cols] + rows, dim=-1)
        out = out.clone()
        out[bad] = (w * a).sum(-1) - a[cols]
    return out.movedim(-1, axis)



def categorical(logits: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """One index per row of (n, K) logits, by inverting the cumulative distribution (vectorised)."""
    cdf = torch.cumsum(torch.softmax(logits, -1), -1)
    u = torch.rand(logits.shape[0], 1, generator=gen, dtype=cdf.dtype, device=cdf.device) * cdf[:, -1:]
    return torch.searchsorted(cdf, u)[:, 0].clamp(max=logits.shape[1] - 1)


def interpolate(grid, fields: torch.Tensor, tidx: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Multilinear interpolation of fields (T, N, d) (flattened grid) at points x (B, d); row b uses
    field tidx[b]. Points outside the box are clamped to it."""
    base, weights = [], []
    for k in range(grid.dim):
        n = grid.shape[k]
        u = ((x[:, k] - grid.lo[k]) / grid.spacing[k]).clamp(0, n - 1)
        i0 = torch.clamp(torch.floor(u).long(), max=n - 2)
        base.append(i0)
        weights.append(u - i0)
    strides = [int(np.prod(grid.shape[k + 1:])) for k in range(grid.dim)]
    out = 0
    for corner in range(2 ** grid.dim):
        flat = torch.zeros_like(base[0])
        w = torch.ones_like(weights[0])
        for k in range(grid.dim):
            bit = (corner >> k) & 1
            flat = flat + (base[k] + bit) * strides[k]
            w = w * (weights[k] if bit else 1 - weights[k])
        out = out + w[:, None] * fields[tidx, flat]
    return out
