"""VSDM with a time-dependent A_t: exact (or solver-accurate) transitions (notebook 06 §"Time-varying A_t").

The forward SDE of :mod:`lsbcore.bridges.vsdm` with A depending on time (docs/theory.md §6):

    dX = M_t X dt + √β_t dW,   M_t = −½ β_t (I − 2A_t),   A_t = a(t) · A_{k(t)}.

**Why the constant-A closed form fails.** Its moments come from one matrix exponential: with
Van Loan's block generator G_t = [[−M_t, β_t I], [0, M_tᵀ]], the block matrix Y_t with Y_t' = Y_t G_t,
Y_0 = I, holds Φ_t = (Y_t)₂₂ᵀ and Σ_t = (Y_t)₂₂ᵀ (Y_t)₁₂. For constant G, Y_t = exp(tG). For a varying
G, Y_t = exp(∫_0^t G) only if the G_s at different times *commute* (exp(X)exp(Y) = exp(X + Y) needs
XY = YX); the closed form used for A_t upstream (VSDM's code) is exp(∫G) all the same. For A_t = a(t)A,
write G_t = β_t B + β_t a(t) C with B = [[½I, I], [0, −½I]], C = [[−A, 0], [0, Aᵀ]]; then
[G_s, G_u] = β_s β_u (a(u) − a(s)) [[0, A + Aᵀ], [0, 0]], not zero once a varies (unless A is skew).
Φ is still right (the M_t are polynomials in one A), but Σ is not: with a(t) = cos 3t and a 2×2 A,
Σ₁₁ at t = 1 comes out 1.206 instead of 1.935 (tests/test_vsdm_time.py).

**What we do instead.** Σ_t = Cov(X_t | X_0) solves the *Lyapunov ODE* dΣ/dt = M_t Σ + Σ M_tᵀ + β_t I,
Σ_0 = 0 (differentiate E[X Xᵀ] with Itô's rule), and Φ solves dΦ/dt = M_t Φ, Φ_0 = I.

* Piecewise-constant A_k, no profile (a ≡ 1): in τ = ∫β the generator is constant within a piece, so
  each piece is one Van Loan exponential and pieces compose as (Φ, Σ) ↦ (F Φ, F Σ Fᵀ + S): EXACT (up
  to round-off: two equal pieces reproduce one constant A to ~5e-15).
* With a profile a(t): :func:`lyapunov_moments` integrates the ODE with the 4th-order Magnus method in
  Van Loan form (two Gauss points per step: exact for constant M, no evaluation at step ends, so a jump
  of M at a piece boundary costs no accuracy). Accurate to solver tolerance: ≤ 1e-11 against
  scipy's DOP853 on the tests' examples (β_max = 10) with the default 1024 steps; the error falls like
  substeps⁻⁴ (≈ 1e-8 at 128, 5e-11 at 512).
"""
from __future__ import annotations

import math
from typing import Callable, Optional

import torch
from torch import nn

from ..linear_sde import symmetrise
from ..utils import check_int, check_time
from .vsdm import LinearForward, _orthogonal_identity

__all__ = ["lyapunov_moments", "TimeVaryingForward"]

_DT = torch.float64
SUBSTEPS = 1024   # default number of grid steps on [0, 1] of lyapunov_moments


def _van_loan(M: torch.Tensor, g2: torch.Tensor) -> torch.Tensor:
    """The block generators [[−M, g² I], [0, Mᵀ]]: (m, d, d), (m,) → (m, 2d, 2d)."""
    m, d = M.shape[0], M.shape[-1]
    eye = torch.eye(d, dtype=M.dtype, device=M.device).expand(m, d, d)
    top = torch.cat([-M, g2[:, None, None] * eye], -1)
    return torch.cat([top, torch.cat([torch.zeros_like(M), M.transpose(1, 2)], -1)], 1)


def _expm(X: torch.Tensor) -> torch.Tensor:
    """exp of a batch (m, k, k): degree-12 Taylor after scaling to 1-norm ≤ ¼ (truncation < 1e-17),
    then squaring. Plain batched matmuls: torch's batched matrix_exp took ~8 ms even for a few 4×4 on a busy CPU."""
    norm = float(X.detach().abs().sum(-2).amax()) if X.numel() else 0.0
    sq = max(0, math.ceil(math.log2(norm / 0.25))) if norm > 0.25 else 0
    X = X / 2**sq
    eye = torch.eye(X.shape[-1], dtype=X.dtype, device=X.device)
    E = eye + X / 12
    for k in range(11, 0, -1):                                 # Horner: I + X(I + X/2(I + …))
        E = eye + (X @ E) / k
    for _ in range(sq):
        E = E @ E
    return E


def _split(F: torch.Tensor, d: int):
    """(Φ, Σ) of a Van Loan propagator F = [[·, F12], [0, F22]]: Φ = F22ᵀ, Σ = F22ᵀ F12."""
    P = F[:, d:, d:].transpose(1, 2)
    return P, symmetrise(P @ F[:, :d, d:])


def _compose(P2, S2, P1, S1):
    """Run (P1, S1) then (P2, S2): X ↦ P2 (P1 X + N(0, S1)) + N(0, S2)."""
    return P2 @ P1, symmetrise(P2 @ S1 @ P2.transpose(-1, -2) + S2)


def lyapunov_moments(M_fn: Callable, g2_fn: Callable, times, *, substeps: int = SUBSTEPS):
    """``(Φ, Σ)`` of the linear SDE ``dX = M(t) X dt + √g²(t) dW`` at ``times``: (n, d, d) each, float64.

    Φ solves dΦ/dt = M Φ, Φ(0) = I, and Σ = Cov(X_t | X_0) the Lyapunov ODE dΣ/dt = M Σ + Σ Mᵀ + g² I,
    Σ(0) = 0. ``M_fn`` maps a 1-D float64 tensor of m times to (m, d, d), ``g2_fn`` to (m,). ``times``:
    a 1-D tensor in [0, 1], any order, repeats allowed.

    Scheme: the steps are the gaps between the requested times merged with a grid graded near t = 0
    (t = u²(2 − u), u uniform with ``substeps`` steps on [0, 1], so the kink of β_t = β_min + t^{β_r}(…)
    at 0 costs no order for β_r ≥ 1). A step [t, t+h] is the 4th-order Magnus step of the Van Loan
    block ODE Y' = Y G: Ω = h/2 (G₁ + G₂) + (√3/12) h² [G₁, G₂] with G at the Gauss points
    t + (½ ∓ √3/6) h, one matrix exponential (exact for constant M); the steps are composed by a parallel
    prefix scan. M is never evaluated at a requested time, so it may jump there. Error O(substeps⁻⁴):
    ≤ 1e-11 against DOP853 on the tests' examples (β_max = 10) with the default 1024 (~1e-8 at 128).
    Plain torch ops (differentiable); memory ~ (substeps + n)·(2d)². Notebook 06 §"Time-varying A_t",
    docs/theory.md §6.
    """
    if not callable(M_fn):
        raise TypeError(f"M_fn must be callable (times -> (n, d, d)), got {type(M_fn).__name__}")
    if not callable(g2_fn):
        raise TypeError(f"g2_fn must be callable (times -> (n,)), got {type(g2_fn).__name__}")
    substeps = check_int(substeps, "substeps")
    t = torch.as_tensor(times, dtype=_DT)
    if t.ndim != 1 or t.shape[0] == 0:
        raise ValueError(f"times must be a non-empty 1-D tensor, got shape {tuple(t.shape)}")
    if t.device.type == "cpu" and not bool((torch.isfinite(t) & (t >= 0) & (t <= 1)).all()):
        raise ValueError("times must hold finite values in [0, 1]")
    u = torch.linspace(0, 1, substeps + 1, dtype=_DT, device=t.device)
    grid = u * u * (2 - u)                                     # graded near t = 0: steps ~ 4u/substeps
    edges = torch.sort(torch.cat([grid[grid < t.max()], t])).values
    h = torch.diff(edges)
    start = edges[:-1]
    N = h.shape[0]
    if N == 0:                                                 # one time, t = 0
        d = M_fn(t).shape[-1]
        return torch.eye(d, dtype=_DT, device=t.device)[None], torch.zeros(1, d, d, dtype=_DT, device=t.device)
    c = math.sqrt(3) / 6
    tg = torch.cat([start + (0.5 - c) * h, start + (0.5 + c) * h])
    M, g2 = M_fn(tg), g2_fn(tg)
    if not isinstance(M, torch.Tensor) or M.ndim != 3 or M.shape[0] != 2 * N or M.shape[1] != M.shape[2]:
        raise ValueError(f"M_fn must return (n, d, d) for n times, got {getattr(M, 'shape', type(M))}")
    if not isinstance(g2, torch.Tensor) or tuple(g2.shape) != (2 * N,):
        raise ValueError(f"g2_fn must return (n,) for n times, got {getattr(g2, 'shape', type(g2))}")
    d = M.shape[-1]
    G = _van_loan(M.to(_DT), g2.to(_DT))
    G1, G2 = G[:N], G[N:]
    hh = h[:, None, None]
    Om = 0.5 * hh * (G1 + G2) + (math.sqrt(3) / 12) * hh**2 * (G1 @ G2 - G2 @ G1)
    P, S = _split(_expm(Om), d)                                # one step each, (N, d, d)
    shift = 1                                                  # Hillis–Steele scan: P[i] ← steps 0..i
    while shift < N:
        Pn, Sn = _compose(P[shift:], S[shift:], P[:-shift], S[:-shift])
        P, S = torch.cat([P[:shift], Pn]), torch.cat([S[:shift], Sn])
        shift *= 2
    eye = torch.eye(d, dtype=_DT, device=P.device)[None]
    P = torch.cat([eye, P])                                    # P[i]: from 0 to edges[i]
    S = torch.cat([torch.zeros_like(eye), S])
    idx = torch.searchsorted(edges, t, right=True) - 1
    return P[idx], S[idx]


class TimeVaryingForward(LinearForward):
    """The VSDM forward with ``A_t = a(t) · A_{k(t)}``: ``dX = −½ β_t (I − 2A_t) X dt + √β_t dW``.

    ``pieces`` factorised matrices A_k = U_k diag(s_k) V_kᵀ on equal intervals of [0, 1] (k(t) =
    min(⌊t·pieces⌋, pieces − 1); a boundary time k/pieces belongs to piece k), times an optional fixed
    scalar ``profile`` a(t) (a callable on 1-D float64 tensors; None: a ≡ 1). Piece 0 is the parent's
    ``U, V, s``; the others are in ``U_rest, V_rest, s_rest``. All s_k start at 0 (the VP-SDE).
    ``pieces=1, profile=None`` is :class:`LinearForward`. :meth:`A` (and so ``D``, ``frozen_D``) is the
    piece average (1/pieces) Σ A_k: the time average of A_t when there is no profile.
    Transitions: exact without a profile, :func:`lyapunov_moments` (``substeps``) with one.
    Notebook 06 §"Time-varying A_t", docs/theory.md §6.
    """

    time_varying = True

    def __init__(self, dim: int, *, pieces: int = 1, profile: Optional[Callable] = None,
                 beta_min: float = 0.1, beta_max: float = 10.0, beta_r: float = 1.7, s_max: float = 1.0,
                 seed: int = 0, substeps: int = SUBSTEPS):
        super().__init__(dim, beta_min=beta_min, beta_max=beta_max, beta_r=beta_r, s_max=s_max, seed=seed)
        self.pieces = check_int(pieces, "pieces", maximum=4096)
        self.substeps = check_int(substeps, "substeps")
        if profile is not None:
            if not callable(profile):
                raise TypeError(f"profile must be None or a callable a(t), got {type(profile).__name__}")
            probe = torch.linspace(0, 1, 5, dtype=_DT)
            a = profile(probe)
            if not isinstance(a, torch.Tensor) or tuple(a.shape) != (5,) or not bool(torch.isfinite(a).all()):
                raise ValueError("profile must map a 1-D float64 tensor of n times to n finite values")
        self.profile = profile
        self.U_rest, self.V_rest = nn.ModuleList(), nn.ModuleList()
        self.s_rest = nn.ParameterList()
        for _ in range(self.pieces - 1):             # every piece starts at U = V = I, s = 0 (as piece 0)
            self.U_rest.append(_orthogonal_identity(dim))
            self.V_rest.append(_orthogonal_identity(dim))
            self.s_rest.append(nn.Parameter(torch.zeros(dim, dtype=_DT)))

    # ---------------------------------------------------------------- coefficients
    def s_pieces(self) -> list:
        """[s_0, …, s_{pieces−1}]: the singular-value parameters of the pieces (s_0 is ``self.s``).
        Notebook 06 §"Time-varying A_t", docs/theory.md §6."""
        return [self.s, *self.s_rest]

    def A_pieces(self) -> torch.Tensor:
        """The factorised matrices A_k = U_k diag(s_k) V_kᵀ: (pieces, d, d), differentiable.
        Notebook 06 §"Time-varying A_t", docs/theory.md §6."""
        Us = [self.U.weight] + [u.weight for u in self.U_rest]
        Vs = [self.V.weight] + [v.weight for v in self.V_rest]
        return torch.stack([U @ torch.diag(s) @ V.T for U, s, V in zip(Us, self.s_pieces(), Vs)])

    def A(self) -> torch.Tensor:
        """The piece average (1/pieces) Σ_k A_k (d, d): A_0 when pieces = 1 (``D``, ``frozen_D`` use it).
        Notebook 06 §"Time-varying A_t", docs/theory.md §6."""
        return self.A_pieces().mean(0)

    def _frozen(self):
        """(A_k, D_k = I − 2A_k) stacks without gradient, cached until a parameter changes."""
        key = self._key()
        if getattr(self, "_pieces_key", None) != key:
            with torch.no_grad():
                A = self.A_pieces()
                self._pieces = (A, torch.eye(self.dim, dtype=_DT, device=A.device) - 2 * A)
            self._pieces_key = key
        return self._pieces

    def _times(self, t) -> torch.Tensor:
        t = torch.as_tensor(t, dtype=_DT, device=self.s.device).reshape(-1)
        return check_time(t).reshape(-1)

    def edges(self) -> torch.Tensor:
        """The piece boundaries k/pieces, k = 0 … pieces (float64). Notebook 06 §"Time-varying A_t"."""
        return torch.arange(self.pieces + 1, dtype=_DT, device=self.s.device) / self.pieces

    def piece(self, t) -> torch.Tensor:
        """k(t): the piece of each time (long); boundary k/pieces → piece k, t = 1 → the last piece.
        Notebook 06 §"Time-varying A_t", docs/theory.md §6."""
        return self._piece(self._times(t))

    def _piece(self, t):
        P, e = self.pieces, self.edges()
        k = torch.floor(t * P).long().clamp(0, P - 1)          # then fix round-off: t = fl(k/P) → piece k
        return (k - (t < e[k]).long() + (t >= e[k + 1]).long()).clamp(0, P - 1)

    def _scale(self, t, X):
        return X if self.profile is None else self.profile(t).to(_DT)[:, None, None] * X

    def A_at(self, t) -> torch.Tensor:
        """A_t = a(t) A_{k(t)} at the 1-D tensor of times ``t``: (n, d, d), differentiable in all s_k,
        U_k, V_k. Notebook 06 §"Time-varying A_t", docs/theory.md §6."""
        t = self._times(t)
        return self._scale(t, self.A_pieces()[self._piece(t)])

    def D_at(self, t) -> torch.Tensor:
        """D_t = I − 2A_t at the times ``t``, without gradient (cached per piece): (n, d, d).
        Notebook 06 §"Time-varying A_t", docs/theory.md §6."""
        t = self._times(t)
        A, D = self._frozen()
        k = self._piece(t)
        if self.profile is None:
            return D[k]
        with torch.no_grad():
            return torch.eye(self.dim, dtype=_DT, device=A.device) - 2 * self._scale(t, A[k])

    @torch.no_grad()
    def clamp_(self) -> None:
        """Keep every s_k in [−s_max, s_max] (after each update of A). Notebook 06 §"Time-varying A_t"."""
        for s in self.s_pieces():
            s.clamp_(-self.s_max, self.s_max)

    # ---------------------------------------------------------------- transitions
    def transition(self, t):
        """``(Φ_t, Σ_t)`` of X_t | X_0 ~ N(Φ_t X_0, Σ_t) at times in [0, 1]: (n, d, d) each, float64.

        Without a profile: exact, one Van Loan exponential per piece in τ = ∫β (constant generator
        −½(I − 2A_k) there), composed across pieces. With a profile: :func:`lyapunov_moments`, piece
        boundaries added as requested times. Differentiable when grad is on.
        Notebook 06 §"Time-varying A_t", docs/theory.md §6.
        """
        t = self._times(t)
        if self.pieces == 1 and self.profile is None:
            return super().transition(t)
        A = self.A_pieces() if torch.is_grad_enabled() else self._frozen()[0]
        eye = torch.eye(self.dim, dtype=_DT, device=A.device)
        if self.profile is not None:
            def M_fn(u):
                return -0.5 * self.beta(u)[:, None, None] * (eye - 2 * self._scale(u, A[self._piece(u)]))

            allt = torch.cat([t, self.edges()[1:-1]])
            Phi, Sig = lyapunov_moments(M_fn, self.beta, allt, substeps=self.substeps)
            return Phi[: t.shape[0]], Sig[: t.shape[0]]
        d, P = self.dim, self.pieces
        VL = _van_loan(-0.5 * (eye - 2 * A), torch.ones(P, dtype=_DT, device=A.device))
        tau_e = self.int_beta(self.edges())
        Pf, Sf = _split(_expm((tau_e[1:] - tau_e[:-1])[:, None, None] * VL), d)
        Pe, Se = [eye], [torch.zeros_like(eye)]                # (Φ, Σ) at the left edge of each piece
        for k in range(P - 1):
            p, s = _compose(Pf[k], Sf[k], Pe[-1], Se[-1])
            Pe.append(p)
            Se.append(s)
        k = self._piece(t)
        dtau = (self.int_beta(t) - tau_e[k]).clamp(min=0)
        Pl, Sl = _split(_expm(dtau[:, None, None] * VL[k]), d)
        return _compose(Pl, Sl, torch.stack(Pe)[k], torch.stack(Se)[k])

    def extra_repr(self) -> str:
        prof = "None" if self.profile is None else getattr(self.profile, "__name__", type(self.profile).__name__)
        return f"{super().extra_repr()}, pieces={self.pieces}, profile={prof}"
