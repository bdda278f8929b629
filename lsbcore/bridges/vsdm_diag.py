"""VSDM with a diagonal A (issue 13): one scalar OU process per coordinate, as upstream's image branch.

The forward SDE of :mod:`lsbcore.bridges.vsdm` with ``A = diag(s)`` (docs/theory.md §6):

    dX = −½ β_t (I − 2A) X dt + √β_t dW,   A = diag(s),   s ∈ [−s_max, s_max].

Every coordinate is then its own OU process in the time τ = ∫_0^t β: with k = 1 − 2s,

    Φ_t = exp(−½ τ k),   Σ_t = (1 − exp(−τ k)) / k   (→ τ as s → ½: no drift, plain Brownian motion),

exact, elementwise, O(d) instead of a 2d×2d matrix exponential. At s = 0 it is the VP-SDE (Φ² + Σ = 1).
Upstream's image branch (``DiagLinear`` in ``training/networks_vsdm.py``) keeps one weight w per pixel and
uses A = −w² (only faster noising than the base, s ≤ 0); ``nonpositive=True`` clamps s to [−s_max, 0]
the same way. The default keeps the symmetric clamp of :class:`LinearForward`.

:class:`DiagonalForward` is a :class:`LinearForward` (same face: ``A``, ``D``, ``frozen_D``, ``A_at``,
``D_at``, ``s_pieces``, ``clamp_``, ``transition``, ``table``, ``prior_cov``, ``sample_xt``), so
:class:`VSDM`, :func:`backward_score_loss` and :func:`update_A` take it unchanged: where they need
matrices it hands them dense diagonal ones. :meth:`DiagonalForward.diag_transition` and
:meth:`DiagonalForward.diag_table` are the elementwise fast path, used by :func:`diag_score_loss` (the same
loss as :func:`backward_score_loss`, same random draws, without the (batch, d, d) gathers).
:func:`fit_vsdm_diag` trains it: the loop of :func:`lsbcore.bridges.vsdm_fit.fit_vsdm`, which builds
its own LinearForward and so cannot take this one yet (it would with a ``forward=`` argument).
"""
from __future__ import annotations

import torch
from torch import nn

from ..utils import Seed, check_int, check_points, check_positive, check_seed, check_time, generator
from .reference import VP
from .vsdm import LinearForward, _check_gap

__all__ = ["DiagonalForward", "diag_score_loss", "fit_vsdm_diag"]

_DT = torch.float64


def _one_minus_exp_over(z: torch.Tensor) -> torch.Tensor:
    """(1 − e^{−z}) / z, with the limit 1 at z = 0 (and a gradient there: 1 − z/2 near 0)."""
    small = z.abs() < 1e-8
    safe = torch.where(small, torch.ones_like(z), z)
    return torch.where(small, 1 - z / 2, -torch.expm1(-safe) / safe)


class DiagonalForward(LinearForward):
    """The forward SDE ``dX = −½ β_t (I − 2A) X dt + √β_t dW`` with a diagonal ``A = diag(s)``.

    s starts at 0 (the VP-SDE) and is kept in [−s_max, s_max] (``nonpositive=True``: [−s_max, 0], as
    upstream's A = −w²). No rotations: ``parameters()`` is just s, float64. Transitions are exact and
    elementwise (:meth:`diag_transition`); the :class:`LinearForward` methods return the same moments as
    dense diagonal matrices. Notebook 07 §2.1–2.3 (issue 13), docs/theory.md §6.
    """

    def __init__(self, dim: int, *, beta_min: float = 0.1, beta_max: float = 10.0, beta_r: float = 1.7,
                 s_max: float = 1.0, nonpositive: bool = False, seed: int = 0):
        nn.Module.__init__(self)        # not LinearForward.__init__: no orthogonal U, V to build
        self.dim = check_int(dim, "dim")
        self.schedule = VP(beta_min, beta_max, beta_r)
        self.s_max = check_positive(s_max, "s_max")
        if not isinstance(nonpositive, bool):
            raise TypeError(f"nonpositive must be a bool, got {type(nonpositive).__name__}")
        self.nonpositive = nonpositive
        self.seed = check_seed(seed)
        self.s = nn.Parameter(torch.zeros(dim, dtype=_DT))

    # ---------------------------------------------------------------- coefficients
    def A(self) -> torch.Tensor:
        """A = diag(s) (d, d), float64, differentiable in s."""
        return torch.diag(self.s)

    def D(self) -> torch.Tensor:
        """D = I − 2A = diag(1 − 2s)."""
        return torch.diag(1 - 2 * self.s)

    @torch.no_grad()
    def clamp_(self) -> None:
        """Keep s in [−s_max, s_max] ([−s_max, 0] with ``nonpositive``)."""
        self.s.clamp_(-self.s_max, 0.0 if self.nonpositive else self.s_max)

    # ---------------------------------------------------------------- transitions
    def diag_transition(self, t):
        """``(φ, σ²)``, each (n, d): X_t | X_0 ~ N(φ ⊙ X_0, diag σ²) for n times t in [0, 1] (a float or
        a 1-D tensor). φ = exp(−½ τ k), σ² = τ (1 − e^{−τk}) / (τk), k = 1 − 2s, τ = ∫_0^t β.
        Differentiable in s. Notebook 07 §2.1–2.3."""
        t = check_time(torch.as_tensor(t, dtype=_DT, device=self.s.device).reshape(-1)).reshape(-1)
        s = self.s if torch.is_grad_enabled() else self.s.detach()
        tau = self.schedule.int_beta(t)[:, None]
        z = tau * (1 - 2 * s)
        return torch.exp(-0.5 * z), tau * _one_minus_exp_over(z)

    def transition(self, t):
        """``(Φ_t, Σ_t)`` as dense diagonal matrices (n, d, d): the :class:`LinearForward` face."""
        phi, var = self.diag_transition(t)
        return torch.diag_embed(phi), torch.diag_embed(var)

    def diag_table(self, t_gap: float = 1e-3, n_grid: int = 512):
        """``(t, φ, σ)`` on ``n_grid`` uniform times in [t_gap, 1], each row (d,): the elementwise
        :meth:`LinearForward.table` (σ = √σ², the diagonal Cholesky factor). Cached until s changes."""
        t_gap = _check_gap(t_gap)
        n_grid = check_int(n_grid, "n_grid", minimum=2)
        key = (t_gap, n_grid) + self._key()
        if getattr(self, "_diag_table_key", None) != key:
            with torch.no_grad():
                t = torch.linspace(t_gap, 1.0, n_grid, dtype=_DT, device=self.s.device)
                phi, var = self.diag_transition(t)
                self._diag_table = (t, phi, var.sqrt())
            self._diag_table_key = key
        return self._diag_table

    def table(self, t_gap: float = 1e-3, n_grid: int = 512):
        """``(t, Φ, L)`` with dense diagonal Φ, L (n_grid, d, d): what :func:`backward_score_loss` reads."""
        t, phi, sd = self.diag_table(t_gap, n_grid)
        return t, torch.diag_embed(phi), torch.diag_embed(sd)

    def score_loss(self, net, x0, *, t_gap: float = 1e-3, seed: Seed = 0) -> torch.Tensor:
        """The backward-score loss in its elementwise form, :func:`diag_score_loss` (used by ``fit_vsdm``)."""
        return diag_score_loss(self, net, x0, t_gap=t_gap, seed=seed)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", diagonal, s_max={self.s_max}, nonpositive={self.nonpositive}"


def diag_score_loss(forward: DiagonalForward, net: nn.Module, x0, *, t_gap: float = 1e-3, n_grid: int = 512,
                    seed: Seed = 0) -> torch.Tensor:
    """:func:`lsbcore.bridges.vsdm.backward_score_loss` for a :class:`DiagonalForward`, elementwise:
    X_t = φ_t ⊙ x0 + σ_t ⊙ ε, loss E‖ε_θ(X_t, t) − ε‖². The same random draws in the same order, so the
    same value for the same seed (tests/test_vsdm_diag.py). Notebook 07 §2.1–2.3."""
    if not isinstance(forward, DiagonalForward):
        raise TypeError(f"forward must be a DiagonalForward, got {type(forward).__name__}")
    if not callable(net):
        raise TypeError(f"net must be callable (x, t) -> noise, got {type(net).__name__}")
    x0 = check_points(x0, "x0", dim=forward.dim)
    gen = generator(seed, x0.device)
    grid, phi, sd = forward.diag_table(t_gap, n_grid)
    idx = torch.randint(0, grid.shape[0], (x0.shape[0],), generator=gen, device=x0.device)
    eps = torch.randn(x0.shape, generator=gen, device=x0.device, dtype=_DT)
    xt = phi[idx] * x0.to(_DT) + sd[idx] * eps
    pred = net(xt.to(x0.dtype), grid[idx].to(x0.dtype)[:, None])
    return ((pred - eps.to(x0.dtype)) ** 2).sum(-1).mean()


def fit_vsdm_diag(data, *, adaptive: bool = True, s_max: float = 1.0, nonpositive: bool = False,
                  beta_min: float = 0.1, beta_max: float = 10.0, beta_r: float = 1.7, seed: int = 0, **kwargs):
    """Train VSDM with a diagonal A (``adaptive=True``) or the VP-SDE (``adaptive=False``: s stays 0).

    :func:`lsbcore.bridges.vsdm_fit.fit_vsdm` (the same phases, recipe arguments, checkpoints and
    result) on a :class:`DiagonalForward` with ``s_max``/``nonpositive``, trained with the elementwise
    :func:`diag_score_loss` (the same value as the dense loss from the same draws, ~4× cheaper at
    d = 64). ``A_history`` holds the dense diagonal A after each update. Notebook 07 §2.1–2.3,
    docs/theory.md §6.
    """
    from .vsdm_fit import fit_vsdm

    data = check_points(data, "data")
    fwd = DiagonalForward(data.shape[1], beta_min=beta_min, beta_max=beta_max, beta_r=beta_r, s_max=s_max,
                          nonpositive=nonpositive, seed=seed)
    return fit_vsdm(data, adaptive=adaptive, seed=seed, forward=fwd, **kwargs)
