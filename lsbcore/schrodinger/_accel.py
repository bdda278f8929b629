"""The accelerations of Sinkhorn's last stage (Notebook 01 §Sinkhorn, docs/theory.md §1).

- :class:`Relaxation`: over-relaxation with a safeguarded factor ω estimated from the observed rate;
- :func:`newton_step`: Newton steps on the dual, solved inexactly by conjugate gradients, for the slow
  sublinear phase at small ε;
- :func:`is_stalled`: the honest stop when neither makes the error fall fast enough.

Private helpers of :mod:`lsbcore.schrodinger._sinkhorn`; they trust their inputs.
"""
from __future__ import annotations

import math

import torch


def is_stalled(hist: list, tol: float, max_iter: int) -> bool:
    """True when the error, judged over the last ``max(2000, max_iter / 10)`` iterations of
    ``hist`` = [(it, err), …], would not reach ``tol`` by 2 × ``max_iter`` at its observed geometric
    rate (or did not fall at all)."""
    it, _ = hist[-1]
    window = max(2000, max_iter // 10)
    past = [e for i, e in hist if i <= it - window]
    if not past:
        return False
    then, now = min(past), min(e for _, e in hist)
    if now >= 0.999 * then:
        return True
    rate = math.log(now / then) / (it - max(i for i, _ in hist if i <= it - window))
    return it + math.log(tol / now) / rate > 2 * max_iter


class Relaxation:
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


def newton_step(K, a, b, u, v, err, n_cg):
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
