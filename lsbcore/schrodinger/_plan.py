"""The entropic plan found by Sinkhorn, held by its two dual potentials (Notebook 01 §Sinkhorn,
docs/theory.md §1): :class:`SinkhornResult` rebuilds the plan, its cost and samples from it;
:class:`SinkhornConvergenceError` is what a failed solve raises. Created by
:mod:`lsbcore.schrodinger._sinkhorn` (``lsb.sinkhorn``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

import torch

from ..utils import Seed, check_int, generator


def flush_exp_(x: torch.Tensor, floor: float = 1.0) -> torch.Tensor:
    """``exp(x)`` in place, with results below ``finfo.tiny ** floor`` set to exactly 0.

    ``floor = 1`` drops the subnormal numbers (below ``finfo.tiny``, exp(−87) in float32), far below
    the precision of any sum they enter; subnormal arithmetic runs in microcode on most CPUs, so a
    Gibbs kernel at ε ≪ max C, largely subnormal, made every Sinkhorn matrix-vector product up to
    ~15× slower. ``floor = ½`` also drops entries whose *products* with numbers ≥ √tiny would be
    subnormal (the kernel, see ``_sinkhorn._kernel``). The exponent is set to −inf first, so
    ``exp`` itself never produces a subnormal either.
    """
    return x.masked_fill_(x < floor * math.log(torch.finfo(x.dtype).tiny), -math.inf).exp_()

__all__ = ["SinkhornConvergenceError", "SinkhornResult"]


class SinkhornConvergenceError(RuntimeError):
    """Sinkhorn did not reach ``tol`` within ``max_iter`` (or stalled, or overflowed); ``.error`` is the
    marginal error reached and ``.result`` the unconverged :class:`SinkhornResult`.

    Raised with ``on_fail="raise"``, and always when the returned plan would not be finite."""

    def __init__(self, message: str, result: "SinkhornResult"):
        super().__init__(message)
        self.result = result
        self.error = result.error


@dataclass
class SinkhornResult:
    """The output of :func:`sinkhorn` / :func:`sinkhorn_cost` (Notebook 01 §Sinkhorn).

    ``π_ij = a_i b_j exp((f0_i + f1_j − C_ij) / eps)`` where ``C`` is the cost the solver used
    (divided by ``cost_scale`` when ``normalize=True``; ``f0``, ``f1``, ``eps`` are in the same units).
    ``errors`` holds the marginal error ``‖π1 − a‖₁ + ‖πᵀ1 − b‖₁`` at every check (every
    ``check_every`` iterations, across all ε-scaling stages); ``errors[-1]`` is the final one, that of
    the plan :meth:`plan` returns. docs/theory.md §1.
    """

    f0: torch.Tensor
    f1: torch.Tensor
    eps: float
    n_iter: int
    errors: list
    converged: bool
    C: torch.Tensor = field(repr=False)
    a: torch.Tensor = field(repr=False)
    b: torch.Tensor = field(repr=False)
    x0: Optional[torch.Tensor] = field(default=None, repr=False)
    x1: Optional[torch.Tensor] = field(default=None, repr=False)
    cost_scale: float = 1.0

    @property
    def error(self) -> float:
        """The final marginal error (L1 violation of both marginals)."""
        return self.errors[-1] if self.errors else float("nan")

    def log_plan(self) -> torch.Tensor:
        """``log π_ij = log a_i + log b_j + (f0_i + f1_j − C_ij)/eps`` (−inf where a weight is zero)."""
        return torch.log(self.a)[:, None] + torch.log(self.b)[None, :] + (
            self.f0[:, None] + self.f1[None, :] - self.C) / self.eps

    def plan(self) -> torch.Tensor:
        """The coupling π as an ``(n, m)`` matrix whose entries sum to 1, in the cost's dtype."""
        return flush_exp_(self.log_plan()).to(self.C.dtype)

    @property
    def cost(self) -> float:
        """The transport cost ``⟨C, π⟩`` in the solver's cost units (times ``cost_scale`` for raw units)."""
        return float((self.C * self.plan()).sum())

    def sample_indices(self, n: int, seed: Seed = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` index pairs ``(i, j)`` drawn independently from the plan π (Notebook 01 §Sinkhorn).

        Inverse-CDF sampling on the flattened plan: exact, and no entry of zero mass is ever drawn.
        """
        n = check_int(n, "n")
        p = self.plan().reshape(-1).to(torch.float64)
        cdf = torch.cumsum(p, 0)
        gen = generator(seed, p.device)
        u = torch.rand(n, generator=gen, device=p.device, dtype=torch.float64) * cdf[-1]
        flat = torch.searchsorted(cdf, u, right=True).clamp_(max=p.numel() - 1)
        m = self.C.shape[1]
        return flat // m, flat % m

    def sample_pairs(self, n: int, seed: Seed = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` pairs ``(X0, X1)`` drawn from the plan: rows of ``x0`` and ``x1`` (Notebook 01 §Sinkhorn).

        Only for results of :func:`sinkhorn` (which stores the points); for :func:`sinkhorn_cost`
        use :meth:`sample_indices`.
        """
        if self.x0 is None or self.x1 is None:
            raise ValueError("this result has no points (it came from sinkhorn_cost): use sample_indices")
        i, j = self.sample_indices(n, seed)
        return self.x0[i], self.x1[j]
