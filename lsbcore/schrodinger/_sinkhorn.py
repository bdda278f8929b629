"""Entropic optimal transport on samples: log-domain Sinkhorn (IPF) on weighted point clouds.

Notebook 01 §Sinkhorn explains everything here. Given weighted point clouds ``x0`` (weights ``a``)
and ``x1`` (weights ``b``) and the cost ``C_ij = ‖x0_i − x1_j‖²``, the static Schrödinger problem
(entropic OT) with regularisation ε has the solution

    π_ij = a_i b_j exp((f_i + g_j − C_ij) / ε)

for two *dual potentials* f, g (in cost units). Sinkhorn / IPF finds them by making one marginal
right at a time. With ``K = exp(−C/ε)``, ``u = exp(f/ε)``, ``v = exp(g/ε)`` (weights kept apart):

    u ← 1 / (K (b·v)),        v ← 1 / (Kᵀ (a·u))

(the textbook form ``u ← a / (K v)``, ``v ← b / (Kᵀ u)`` with ``π = diag(u) K diag(v)`` is the
same iteration with the weights folded into u and v),
or, in the log domain that never under- or overflows,

    f_i ← −ε log Σ_j b_j exp((g_j − C_ij) / ε),     g_j ← −ε log Σ_i a_i exp((f_i − C_ij) / ε)

(:func:`log_sinkhorn_step` is one such half-step). A log-sum-exp over the whole ``n × m`` matrix
costs several passes per half-step, so the solver here uses the *stabilised* scaling form
(Schmitzer 2019): it keeps the large part of the potentials in a stored kernel
``K̃_ij = exp((f_i + g_j − C_ij)/ε)`` and iterates small scalings ``û, v̂`` with two matrix-vector
products per iteration; when a scaling grows past a threshold it is *absorbed* into ``f, g`` and
``K̃`` is rebuilt. For small ε it anneals ε geometrically from the cost's scale down to the target
(ε-scaling), warm-starting each stage, and it accelerates the last stage by over-relaxation
(``u ← u^{1−ω} (1/K̃v)^ω`` with ω estimated from the observed convergence rate), which cuts the
iterations at small ε by an order of magnitude. If the last stage is still not done after a few
hundred iterations (the slow, sublinear phase of Sinkhorn at ε ≲ 1e-4 × max C), it switches to
Newton steps on the dual solved by conjugate gradients (Brauer et al. 2017), each made of the same
matrix-vector products. The result is as stable as the log-domain iteration and costs about as
much per iteration as the plain one.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Optional, Union

import torch

from ..utils import Seed, check_int, check_points, check_positive, check_same_device, check_weights, generator

__all__ = [
    "SinkhornConvergenceError",
    "SinkhornResult",
    "log_sinkhorn_step",
    "sinkhorn",
    "sinkhorn_cost",
    "squared_distances",
]


class SinkhornConvergenceError(RuntimeError):
    """Sinkhorn did not reach ``tol`` within ``max_iter``; ``.error`` is the marginal error reached
    and ``.result`` the (finite, unconverged) :class:`SinkhornResult`."""

    def __init__(self, message: str, result: "SinkhornResult"):
        super().__init__(message)
        self.result = result
        self.error = result.error


@dataclass
class SinkhornResult:
    """The output of :func:`sinkhorn` / :func:`sinkhorn_cost` (Notebook 01 §Sinkhorn).

    ``π_ij = a_i b_j exp((f_i + g_j − C_ij) / eps)`` where ``C`` is the cost the solver used
    (divided by ``cost_scale`` when ``normalize=True``; ``f``, ``g``, ``eps`` are in the same units).
    ``errors`` holds the marginal error ``‖π1 − a‖₁ + ‖πᵀ1 − b‖₁`` at every check (every
    ``check_every`` iterations, across all ε-scaling stages); ``errors[-1]`` is the final one.
    """

    f: torch.Tensor
    g: torch.Tensor
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
        """``log π_ij = log a_i + log b_j + (f_i + g_j − C_ij)/eps`` (−inf where a weight is zero)."""
        return torch.log(self.a)[:, None] + torch.log(self.b)[None, :] + (
            self.f[:, None] + self.g[None, :] - self.C) / self.eps

    def plan(self) -> torch.Tensor:
        """The coupling π as an ``(n, m)`` matrix whose entries sum to 1."""
        return torch.exp(self.log_plan())

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


def squared_distances(x0: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
    """The cost matrix ``C_ij = ‖x0_i − x1_j‖²`` (n, m), computed with one matrix product."""
    x0 = check_points(x0, "x0")
    x1 = check_points(x1, "x1", dim=x0.shape[1])
    check_same_device(x0=x0, x1=x1)
    dtype = torch.promote_types(x0.dtype, x1.dtype)
    x0, x1 = x0.to(dtype), x1.to(dtype)
    C = (x0 * x0).sum(1)[:, None] + (x1 * x1).sum(1)[None, :] - 2 * (x0 @ x1.T)
    return C.clamp_(min=0)


def log_sinkhorn_step(potential: torch.Tensor, C: torch.Tensor, eps: float, log_weights: torch.Tensor) -> torch.Tensor:
    """One log-domain Sinkhorn half-step (Notebook 01 §Sinkhorn, exercise "one half-step").

    Given the potential ``g`` (m,) on the other side, the cost ``C`` (n, m) and ``log b`` (m,)::

        f_i = −eps · log Σ_j exp(log b_j + (g_j − C_ij) / eps)

    which makes the rows of ``π = a bᵀ exp((f + g − C)/eps)`` sum to ``a``. For the other
    half-step pass ``f``, ``C.T`` and ``log a``. Uses log-sum-exp, so it never overflows.
    """
    eps = check_positive(eps, "eps")
    if not isinstance(C, torch.Tensor) or C.ndim != 2:
        raise TypeError("C must be a 2-D torch.Tensor")
    for name, t in (("potential", potential), ("log_weights", log_weights)):
        if not isinstance(t, torch.Tensor) or t.ndim != 1 or t.shape[0] != C.shape[1]:
            raise ValueError(f"{name} must be a tensor of shape ({C.shape[1]},) to match C's columns")
    check_same_device(C=C, potential=potential, log_weights=log_weights)
    return -eps * torch.logsumexp(log_weights[None, :] + (potential[None, :] - C) / eps, dim=1)


# ------------------------------------------------------------------------------------ solver
def sinkhorn(x0, x1, eps, a=None, b=None, *, normalize: bool = False, tol: float = 1e-6,
             max_iter: int = 10_000, eps_scaling: Union[None, bool, float] = None,
             overrelax: bool = True, check_every: int = 10, on_fail: str = "warn") -> SinkhornResult:
    """Entropic OT between weighted point clouds with the squared-Euclidean cost (Notebook 01 §Sinkhorn).

    Args:
        x0: (n, d) points of the source, x1: (m, d) points of the target (same device, float dtype).
        eps: entropic regularisation ε > 0. For the Schrödinger bridge with reference σW on [0, 1],
            ``eps = 2σ²`` on the raw cost ``‖x − y‖²``.
        a, b: non-negative weights (n,), (m,) (normalised to sum 1); ``None`` means uniform.
        normalize: divide the cost by its maximum first (``eps`` is then relative to it).
        tol: stop when the L1 marginal error ``‖π1 − a‖₁ + ‖πᵀ1 − b‖₁ ≤ tol``.
        max_iter: budget of iterations (one iteration = both half-steps = two matrix-vector
            products; a conjugate-gradient step of the Newton phase counts as one), over all stages.
        eps_scaling: ``None`` anneals ε only when it is small (ε < 0.002 × max C); ``True``/``False``
            force it on/off; a float q in (0, 1) sets the annealing factor (default 0.1): stages
            ε = max C, q·max C, q²·max C, … down to ``eps``.
        overrelax: accelerate the final stage by over-relaxation with a safeguarded ω (Newton
            steps take over if the final stage is slow either way).
        check_every: compute the marginal error every this many iterations (no host sync between).
        on_fail: ``"warn"`` (warn with the error reached, ``converged=False``) or ``"raise"``
            (:class:`SinkhornConvergenceError`). The result is never NaN and never silently the
            independent plan.

    Returns:
        :class:`SinkhornResult` with potentials ``f``, ``g``, ``plan()``, ``errors``, ``n_iter``,
        ``converged`` and ``sample_pairs``.
    """
    check_same_device(x0=x0, x1=x1, a=a, b=b)
    x0 = check_points(x0, "x0")
    x1 = check_points(x1, "x1")
    if x1.shape[1] != x0.shape[1]:
        raise ValueError(f"x1 must have dimension {x0.shape[1]} like x0, got {x1.shape[1]}")
    C = squared_distances(x0, x1)
    res = sinkhorn_cost(C, eps, a, b, normalize=normalize, tol=tol, max_iter=max_iter,
                        eps_scaling=eps_scaling, overrelax=overrelax, check_every=check_every,
                        on_fail=on_fail)
    res.x0, res.x1 = x0, x1
    return res


def sinkhorn_cost(C, eps, a=None, b=None, *, normalize: bool = False, tol: float = 1e-6,
                  max_iter: int = 10_000, eps_scaling: Union[None, bool, float] = None,
                  overrelax: bool = True, check_every: int = 10, on_fail: str = "warn") -> SinkhornResult:
    """Entropic OT on a given cost matrix ``C`` (n, m); same arguments as :func:`sinkhorn`
    (Notebook 01 §Sinkhorn). ``sample_indices`` draws index pairs from the plan."""
    if not isinstance(C, torch.Tensor):
        raise TypeError(f"C must be a torch.Tensor of shape (n, m), got {type(C).__name__}")
    if not torch.is_floating_point(C):
        raise TypeError(f"C must be a floating-point tensor, got dtype {C.dtype}")
    check_same_device(C=C, a=a, b=b)
    if C.ndim != 2:
        raise ValueError(f"C must have shape (n, m), got {tuple(C.shape)}")
    if C.shape[0] == 0 or C.shape[1] == 0:
        raise ValueError(f"C is empty (shape {tuple(C.shape)}): need at least one point on each side")
    if not bool(torch.isfinite(C).all()):
        raise ValueError("C contains NaN or inf")
    eps = check_positive(eps, "eps")
    tol = check_positive(tol, "tol")
    max_iter = check_int(max_iter, "max_iter")
    check_every = check_int(check_every, "check_every")
    if on_fail not in ("warn", "raise"):
        raise ValueError(f"on_fail must be 'warn' or 'raise', got {on_fail!r}")
    if eps_scaling is None or isinstance(eps_scaling, bool):
        q = 0.1
    else:
        q = check_positive(eps_scaling, "eps_scaling")
        if q >= 1:
            raise ValueError(f"eps_scaling must be a factor in (0, 1) or a bool, got {q}")
    n, m = C.shape
    a = check_weights(a, "a", n, like=C)
    b = check_weights(b, "b", m, like=C)

    scale = 1.0
    cmax = float(C.max())
    if normalize and cmax > 0:
        scale = cmax
        C = C / scale
        cmax = 1.0
    # ε-scaling schedule: ε_k = cmax · q^k down to eps (a single stage when eps is large).
    use_scaling = (eps < 0.002 * cmax) if eps_scaling is None else bool(eps_scaling is not False)
    schedule = [eps]
    if use_scaling and cmax > 0:
        e = cmax
        schedule = []
        while e > eps:
            schedule.append(e)
            e *= q
        schedule.append(eps)
    f, g, n_iter, errors, ok = _solve(C, a, b, schedule, tol, max_iter, check_every, overrelax)
    res = SinkhornResult(f=f, g=g, eps=eps, n_iter=n_iter, errors=errors, converged=ok,
                         C=C, a=a, b=b, cost_scale=scale)
    if not ok:
        msg = (f"Sinkhorn did not converge: marginal error {res.error:.3g} > tol {tol:g} after "
               f"{n_iter} iterations (eps={eps:g}); increase max_iter or eps")
        if on_fail == "raise":
            raise SinkhornConvergenceError(msg, res)
        warnings.warn(msg, RuntimeWarning, stacklevel=3)
    return res


def _solve(C, a, b, schedule, tol, max_iter, check_every, overrelax):
    """Stabilised Sinkhorn with absorption, ε-scaling and safeguarded over-relaxation.

    State: absorbed potentials f, g, kernel K̃ = exp((f + g − C)/ε), scalings û, v̂ so that the
    current potentials are ``f + ε log û`` and ``g + ε log v̂``. Returns (f, g, n_iter, errors, ok).
    """
    n, m = C.shape
    dt = C.dtype
    tau = 100.0 if dt == torch.float64 else 20.0     # absorb when |log scaling| exceeds tau
    newton_after, newton_cg = 300, 50                  # final-stage iterations before Newton; CG steps
    log_a, log_b = torch.log(a), torch.log(b)
    f = torch.zeros(n, dtype=dt, device=C.device)
    g = torch.zeros(m, dtype=dt, device=C.device)
    errors: list[float] = []
    it = 0
    ok = False
    for stage, eps in enumerate(schedule):
        last = stage == len(schedule) - 1
        stage_tol = tol if last else max(tol, 1e-2)
        if stage == 0 and eps < 0.05 * float(C.max()):
            # small ε from a cold start: the c-transforms f_i = min_j C_ij, g_j = min_i (C_ij − f_i)
            # make the largest entry of every row and column of K̃ equal to 1 (no row underflows)
            f = C.amin(1)
            g = (C - f[:, None]).amin(0)
        K = _kernel(C, f, g, eps)
        u = torch.ones(n, dtype=dt, device=C.device)
        v = torch.ones(m, dtype=dt, device=C.device)
        Ku = K.T @ (a * u)
        relax = _Relaxation(check_every, enabled=overrelax and last)
        omega = 1.0
        good = (f, g, u, v)
        k = 0 if stage == 0 else 1           # first check of a later stage after a few iterations
        while True:
            Kv = K @ (b * v)
            if k % check_every == 0 or it >= max_iter:
                # marginal error of the plan a_i b_j û_i K̃_ij v̂_j: rows from Kv, columns from Ku
                err = (a * (u * Kv - 1)).abs().sum() + (b * (v * Ku - 1)).abs().sum()
                big = torch.maximum(u.log().abs().max(), v.log().abs().max())
                err, big = torch.stack([err, big]).tolist()      # the only host sync
                if not math.isfinite(err):
                    # numerical trouble (a scaling overflowed): back to the last good state, then
                    # re-absorb with exact log-domain half-steps and go on without over-relaxation
                    f, g, u, v = good
                    if it >= max_iter:
                        break
                    f = log_sinkhorn_step(g + eps * v.log(), C, eps, log_b)
                    g = log_sinkhorn_step(f, C.T, eps, log_a)
                    K = _kernel(C, f, g, eps)
                    u, v = torch.ones_like(u), torch.ones_like(v)
                    Ku, omega, relax.enabled = K.T @ (a * u), 1.0, False
                    k = 1
                    continue
                errors.append(err)
                good = (f, g, u, v)
                if err <= stage_tol:
                    ok = last
                    break
                if it >= max_iter:
                    break
                omega = relax.update(err)
                if last and k >= newton_after:
                    # slow (sublinear) phase at small ε: Newton steps on the dual, solved by CG
                    u, v, n_cg = _newton_step(K, a, b, u, v, err, newton_cg)
                    it, omega, relax.enabled = it + n_cg, 1.0, False
                    Ku = K.T @ (a * u)
                    Kv = K @ (b * v)
                if big > tau:                # absorb the scalings into the potentials
                    f, g = f + eps * u.log(), g + eps * v.log()
                    K = _kernel(C, f, g, eps)
                    u, v = torch.ones_like(u), torch.ones_like(v)
                    Ku = K.T @ (a * u)
                    Kv = K @ (b * v)
            if omega == 1.0:
                u = 1.0 / Kv
                Ku = K.T @ (a * u)
                v = 1.0 / Ku
            else:
                u = u.pow(1 - omega) * Kv.pow(-omega)
                Ku = K.T @ (a * u)
                v = v.pow(1 - omega) * Ku.pow(-omega)
            it += 1
            k += 1
        f, g = f + eps * u.log(), g + eps * v.log()
        if it >= max_iter:
            break
    if eps != schedule[-1] or not errors:
        # out of budget during ε-scaling: move the potentials to the requested ε with one exact
        # half-step (rows right) and report the column error there, so the result is honest
        eps = schedule[-1]
        f = log_sinkhorn_step(g, C, eps, log_b)
        g_star = log_sinkhorn_step(f, C.T, eps, log_a)
        errors.append(float((b * (torch.exp((g - g_star) / eps) - 1)).abs().sum()))
    return f, g, it, errors, ok


class _Relaxation:
    """Over-relaxation factor ω for the last stage (Thibault et al. 2017; Lehmann et al. 2021).

    Near the solution Sinkhorn converges linearly, err_k ≈ κᵏ. Over-relaxed updates
    ``u ← u^{1−ω} (1/K̃v)^ω`` with ``ω* = 2 / (1 + √(1 − κ))`` contract like ``ω* − 1`` instead,
    much faster when κ ≈ 1 (small ε). κ is estimated from the observed rate r under the current ω
    with Young's SOR relation ``κ = (r + ω − 1)² / (r ω²)``; ω only grows towards ω*, and is halved
    towards 1 when the error stops improving (the safeguard), which also lowers the cap ω_max.
    """

    def __init__(self, check_every: int, enabled: bool, omega_max: float = 1.98, window: int = 3):
        self.k, self.enabled, self.omega_max, self.window = check_every, enabled, omega_max, window
        self.omega, self.hist, self.best, self.n_bad = 1.0, [], math.inf, 0

    def update(self, err: float) -> float:
        if not self.enabled:
            return 1.0
        self.hist.append(err)
        if err < self.best:
            self.best, self.n_bad = err, 0
        elif err > 1.5 * self.best:
            self.n_bad += 1
            if self.n_bad >= 10:                      # worse for 10 checks: damp ω
                w = self.omega                        # and lower the cap a little each time
                self.omega_max = 1.0 + 0.9 * (self.omega_max - 1.0)
                self.omega = 1.0 if w < 1.1 else 1.0 + (w - 1.0) / 2
                self.hist, self.best, self.n_bad = [err], err, 0
                return self.omega
        if len(self.hist) > self.window:
            r = (err / self.hist[-1 - self.window]) ** (1.0 / (self.window * self.k))
            if 0 < r < 1:
                w = self.omega
                kappa = min((r + w - 1) ** 2 / (r * w * w), 1.0)
                new = min(self.omega_max, 2.0 / (1.0 + math.sqrt(1.0 - kappa)))
                if new > w + 1e-3:
                    self.omega, self.hist = new, [err]  # measure the new ω from here
        return self.omega


def _newton_step(K, a, b, u, v, err, n_cg):
    """One Newton step on the dual problem (Sinkhorn–Newton, Brauer et al. 2017), inexact by CG.

    With the plan ``P = diag(a û) K̃ diag(b v̂)``, row sums r and column sums c, the Newton
    direction (z_f, z_g) for the potentials in units of ε solves the Laplacian-like system
    ``[[diag r, P], [Pᵀ, diag c]] [z_f; z_g] = [a − r; b − c]``; we run ``n_cg`` steps of
    Jacobi-preconditioned conjugate gradients (two matrix-vector products each), then take the
    largest step t ∈ {1, ½, ¼, …} that lowers the marginal error: ``û ← û e^{t z_f}``, ``v̂ ← v̂ e^{t z_g}``.
    Returns (û, v̂, matrix-vector pairs used).
    """
    au, bv = a * u, b * v

    def mat(x, y):                       # [[diag r, P], [Pᵀ, diag c]] applied to (x, y)
        return r * x + au * (K @ (bv * y)), bv * (K.T @ (au * x)) + c * y

    r, c = au * (K @ bv), bv * (K.T @ au)
    rx, ry = a - r, b - c
    dr = torch.where(r > 0, 1.0 / r, torch.zeros_like(r))
    dc = torch.where(c > 0, 1.0 / c, torch.zeros_like(c))
    x, y = torch.zeros_like(r), torch.zeros_like(c)
    zx, zy = dr * rx, dc * ry
    px, py = zx, zy
    rz = (rx * zx).sum() + (ry * zy).sum()
    tiny = torch.finfo(r.dtype).tiny
    for _ in range(n_cg):
        mx, my = mat(px, py)
        alpha = rz / ((px * mx).sum() + (py * my).sum()).clamp(min=tiny)
        x, y = x + alpha * px, y + alpha * py
        rx, ry = rx - alpha * mx, ry - alpha * my
        zx, zy = dr * rx, dc * ry
        rz_new = (rx * zx).sum() + (ry * zy).sum()
        beta = rz_new / rz.clamp(min=tiny)
        px, py, rz = zx + beta * px, zy + beta * py, rz_new
    used = n_cg + 1
    t = 1.0
    for _ in range(8):                   # backtracking on the marginal error
        u2, v2 = u * torch.exp(t * x), v * torch.exp(t * y)
        e = (a * (u2 * (K @ (b * v2)) - 1)).abs().sum() + (b * (v2 * (K.T @ (a * u2)) - 1)).abs().sum()
        used += 1
        e = float(e)
        if math.isfinite(e) and e < err:
            return u2, v2, used
        t /= 2
    return u, v, used


def _kernel(C, f, g, eps):
    """K̃_ij = exp((f_i + g_j − C_ij)/ε), built in place in one buffer (three passes over C)."""
    K = torch.add((f / eps)[:, None], C, alpha=-1.0 / eps)
    return K.add_((g / eps)[None, :]).exp_()
