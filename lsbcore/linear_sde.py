"""Moments of linear SDEs in closed form: the toolkit shared by SB-as-VAE (notebook 05) and VSDM (notebook 06).

A linear SDE ``dX = (M X + b) dt + g dW`` started at ``X_0 ~ N(m0, S0)`` stays Gaussian. Its mean
solves dm/dt = M m + b and its covariance the Lyapunov ODE dS/dt = M S + S Mᵀ + g² I; both are solved
exactly by matrix exponentials (docs/theory.md §5, §6):

    X_t = Φ_t X_0 + h_t + N(0, Q_t),   [Φ_t, h_t] = exp(t [[M, b], [0, 0]]),   Q_t = Cov(X_t | X_0),

with Q_t from Van Loan's trick. A network that predicts the noise ε of ``X_t = Φ_t X_0 + h_t + L_t ε``
(``Q_t = L_t L_tᵀ``) gives the score ``∇log ρ_t ≈ −L_t^{−T} ε_θ`` (:func:`noise_score`).
Everything here works in the dtype and device of its inputs (use float64) and is differentiable.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from .utils import time_column

__all__ = ["LinearMoments", "linear_sde_moments", "expm_times", "cholesky", "gaussian_kl", "symmetrise",
           "noise_score"]


@dataclass
class LinearMoments:
    """Moments of a linear SDE at times t (leading axis): X_t = Φ X_0 + h + noise, noise ~ N(0, Q)."""

    mean: torch.Tensor       # (n, d)
    cov: torch.Tensor        # (n, d, d)
    Phi: torch.Tensor        # (n, d, d)   mean coefficient e^{Mt}
    shift: torch.Tensor      # (n, d)      ∫_0^t e^{M(t−s)} b ds
    noise_cov: torch.Tensor  # (n, d, d)   ∫_0^t e^{Ms} g² e^{Mᵀs} ds = Cov(X_t | X_0)


def symmetrise(S: torch.Tensor) -> torch.Tensor:
    """½(S + Sᵀ) over the last two axes: removes the round-off asymmetry of a computed covariance."""
    return 0.5 * (S + S.transpose(-1, -2))


def _times(t, like: torch.Tensor) -> torch.Tensor:
    t = torch.as_tensor(t, dtype=like.dtype, device=like.device).reshape(-1)
    if t.device.type == "cpu" and not bool((torch.isfinite(t) & (t >= 0)).all()):  # no GPU sync
        raise ValueError("t must hold finite times ≥ 0")
    return t


def linear_sde_moments(M, b, g, m0, S0, t) -> LinearMoments:
    """Exact moments of ``dX = (M X + b) dt + g dW``, ``X_0 ~ N(m0, S0)``, at the times ``t``.

    The mean solves dm/dt = M m + b and the covariance the Lyapunov ODE dS/dt = M S + S Mᵀ + g² I;
    both are solved exactly with matrix exponentials: ``[Φ, h] = exp([[M, b], [0, 0]] t)`` and Van
    Loan's trick ``exp([[−M, g²I], [0, Mᵀ]] t) = [[·, F12], [0, F22]]``, ``Cov(X_t|X_0) = F22ᵀ F12``.
    Works in the dtype/device of ``M`` (use float64), is differentiable in ``M``, ``b``, ``g``.
    ``g`` may be a scalar or a tensor; ``t`` holds times ≥ 0 (any shape, flattened).
    Notebook 05 §2.1 "Exact terms", docs/theory.md §5.
    """
    d = M.shape[-1]
    t = _times(t, M)
    aug = torch.cat([torch.cat([M, b.reshape(d, 1)], 1), torch.zeros(1, d + 1, dtype=M.dtype, device=M.device)], 0)
    eye = torch.eye(d, dtype=M.dtype, device=M.device)
    vl = torch.cat([torch.cat([-M, g**2 * eye], 1), torch.cat([torch.zeros_like(M), M.T], 1)], 0)
    E, F = expm_times(t, aug), expm_times(t, vl)
    Phi, h = E[:, :d, :d], E[:, :d, d]
    Q = symmetrise(F[:, d:, d:].transpose(1, 2) @ F[:, :d, d:])
    mean = Phi @ m0 + h
    cov = symmetrise(Phi @ S0 @ Phi.transpose(1, 2)) + Q
    return LinearMoments(mean, cov, Phi, h, Q)


def expm_times(t: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
    """exp(t_i X) for each entry of the 1-D tensor ``t``, shape (n, k, k). A single time takes the
    unbatched path: batched CPU linear algebra on a batch of one can cost milliseconds of thread
    start-up on a busy machine."""
    if t.shape[0] == 1:
        return torch.linalg.matrix_exp(t[0] * X)[None]
    return torch.linalg.matrix_exp(t[:, None, None] * X)


def cholesky(S: torch.Tensor) -> torch.Tensor:
    """Cholesky factor of an SPD matrix or batch (n, d, d); a batch of one takes the unbatched path.

    Used by the samplers of notebooks 05 and 06 at every step."""
    if S.ndim == 3 and S.shape[0] == 1:
        return torch.linalg.cholesky(S[0])[None]
    return torch.linalg.cholesky(S)


def gaussian_kl(m1, S1, m2, S2) -> torch.Tensor:
    """KL(N(m1, S1) ‖ N(m2, S2)) = ½[tr(S2⁻¹S1) + (m2−m1)ᵀS2⁻¹(m2−m1) − d + log det S2 − log det S1].

    Batched over leading axes. Notebook 05 §2.1 "Exact terms", docs/theory.md §5.
    """
    d = m1.shape[-1]
    L2 = torch.linalg.cholesky(S2)
    diff = (m2 - m1)[..., None]
    tr = torch.cholesky_solve(S1, L2).diagonal(dim1=-2, dim2=-1).sum(-1)
    quad = (diff * torch.cholesky_solve(diff, L2)).sum((-2, -1))
    ld2 = 2 * torch.log(L2.diagonal(dim1=-2, dim2=-1)).sum(-1)
    ld1 = torch.linalg.slogdet(S1)[1]
    return 0.5 * (tr + quad - d + ld2 - ld1)


def noise_score(net: Callable, x: torch.Tensor, t, noise_cov: Callable) -> torch.Tensor:
    """∇log ρ_t(x) ≈ −L_t^{−T} ε_θ(x, t) for a noise-predicting network ε_θ (the score of the samplers
    of notebooks 05 and 06; docs/theory.md §6).

    ``t``: a float or a tensor broadcastable to ``(batch, 1)`` in [0, 1] (checked by
    :func:`lsbcore.utils.time_column`). ``noise_cov(times)`` maps a 1-D float64 tensor of times to the
    transition covariances Σ = L Lᵀ, shape (n, d, d). When all rows share one time (a float, a (1, 1)
    tensor or the sampler's stride-0 column) one factor serves the whole batch, with no host sync.
    """
    tcol = time_column(t, x)
    single = tcol.stride(0) == 0 or tcol.shape[0] == 1
    times = (tcol[:1, 0] if single else tcol[:, 0]).to(torch.float64)
    L = cholesky(noise_cov(times)).to(x.dtype)
    eps = net(x, tcol)
    if single:
        return -torch.linalg.solve_triangular(L[0].T, eps.T, upper=True).T
    return -torch.linalg.solve_triangular(L.transpose(1, 2), eps[..., None], upper=True)[..., 0]
