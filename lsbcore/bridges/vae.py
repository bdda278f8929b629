"""SB-type models as an extension of VAEs (Kaba et al. 2024): prior loss + drift matching.

The **encoder** is a forward SDE that carries data to noise, with a learnable control u_φ,

    dX = [f(X, t) + g u_φ(X, t)] dt + g dW,    X_0 ~ p_data          (path law Q_φ, marginals q_t)

and the **decoder** runs in reverse time from the prior with a learned score s_θ,

    dX = [f + g u_φ − g² s_θ] dt + g dW̄,     X_T ~ p_prior          (path law P_θ).

The latent variable of this "VAE" is the whole path. Mapping a path to its start X_0 can only lose
information (data processing inequality), so KL(p_data ‖ p_θ) ≤ KL(Q_φ ‖ P_θ), and Girsanov's theorem
in reverse time splits the path KL into two parts (theory.md §5):

    KL(Q_φ ‖ P_θ) = KL(q_T ‖ p_prior)                                  prior loss     (encoder)
                  + E_Q ∫_0^T (g²/2) ‖s_θ(X_t, t) − ∇log q_t(X_t)‖² dt    drift matching (decoder)

The same KL computed with Girsanov in *forward* time reads KL(p_data ‖ p_θ) + E_Q ∫ (g²/2)
‖∇log p^θ_t − s_θ‖² dt (p^θ_t: the decoder's marginals), which exhibits the inequality and gives an
independent check of the decomposition. For Gaussian data, a linear reference f = F x, a linear
encoder u_φ = K x + k and a linear decoder s_θ = A x + a every term is exact: :class:`LinearSBVAE`.

The second half of the module trains the model on 2-D toy data (linear encoder, MLP decoder) to
compare training schedules. A nonlinear (MLP) encoder, whose q_t has no closed form, is in the sibling
module :mod:`lsbcore.bridges.vae_fbsde` (the path KL by simulation). Notebook 05 explains all of it.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from ..utils import Seed, check_int, check_points, check_positive, generator
from ..bridge import Bridge

__all__ = ["LinearMoments", "linear_sde_moments", "gaussian_kl", "LinearSBVAE", "LinearEncoder", "SBVAEBridge",
           "ScheduleResult", "empirical_prior_loss", "decoder_dsm_loss", "train_sbvae"]

_DT = torch.float64
_LOG2PI = math.log(2 * math.pi)


# ---------------------------------------------------------------------------------- helpers
def _matrix(value, name: str, d: int) -> torch.Tensor:
    """A float (times I), a vector (diagonal) or a (d, d) matrix, as float64; ValueError names ``name``."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be a number, a vector or a matrix, got bool")
    v = torch.as_tensor(value, dtype=_DT) if not isinstance(value, torch.Tensor) else value.detach().to(_DT)
    if v.ndim == 0:
        v = v * torch.eye(d, dtype=_DT)
    elif v.ndim == 1:
        if v.shape[0] != d:
            raise ValueError(f"{name} must have length {d}, got {v.shape[0]}")
        v = torch.diag(v)
    if v.shape != (d, d):
        raise ValueError(f"{name} must have shape ({d}, {d}), got {tuple(v.shape)}")
    if not bool(torch.isfinite(v).all()):
        raise ValueError(f"{name} contains NaN or inf")
    return v


def _vector(value, name: str, d: int) -> torch.Tensor:
    v = torch.as_tensor(value, dtype=_DT) if not isinstance(value, torch.Tensor) else value.detach().to(_DT)
    if v.ndim == 0:
        v = v * torch.ones(d, dtype=_DT)
    if v.shape != (d,):
        raise ValueError(f"{name} must have shape ({d},), got {tuple(v.shape)}")
    if not bool(torch.isfinite(v).all()):
        raise ValueError(f"{name} contains NaN or inf")
    return v


def _spd(value, name: str, d: int) -> torch.Tensor:
    S = _matrix(value, name, d)
    if not torch.allclose(S, S.T, atol=1e-10):
        raise ValueError(f"{name} must be symmetric")
    if bool((torch.linalg.eigvalsh(S) <= 0).any()):
        raise ValueError(f"{name} must be positive definite")
    return S


def _sym(S: torch.Tensor) -> torch.Tensor:
    return 0.5 * (S + S.transpose(-1, -2))


@dataclass
class LinearMoments:
    """Moments of a linear SDE at times t (leading axis): X_t = Φ X_0 + h + noise, noise ~ N(0, Q)."""

    mean: torch.Tensor      # (n, d)
    cov: torch.Tensor       # (n, d, d)
    Phi: torch.Tensor       # (n, d, d)   mean coefficient e^{Mt}
    shift: torch.Tensor     # (n, d)      ∫_0^t e^{M(t−s)} b ds
    noise_cov: torch.Tensor  # (n, d, d)  ∫_0^t e^{Ms} g² e^{Mᵀs} ds = Cov(X_t | X_0)


def linear_sde_moments(M, b, g, m0, S0, t) -> LinearMoments:
    """Exact moments of ``dX = (M X + b) dt + g dW``, ``X_0 ~ N(m0, S0)``, at the times ``t``.

    The mean solves dm/dt = M m + b and the covariance the Lyapunov ODE dS/dt = M S + S Mᵀ + g² I;
    both are solved exactly with matrix exponentials: ``[Φ, h] = exp([[M, b], [0, 0]] t)`` and Van
    Loan's trick ``exp([[−M, g²I], [0, Mᵀ]] t) = [[·, F12], [0, F22]]``, ``Cov(X_t|X_0) = F22ᵀ F12``.
    Works in the dtype/device of ``M`` (use float64), is differentiable in ``M``, ``b``, ``g``.
    ``g`` may be a scalar or a tensor; ``t`` a 1-D tensor of times. Notebook 05 §"Exact terms".
    """
    d = M.shape[-1]
    t = torch.as_tensor(t, dtype=M.dtype, device=M.device).reshape(-1)
    aug = torch.cat([torch.cat([M, b.reshape(d, 1)], 1), torch.zeros(1, d + 1, dtype=M.dtype, device=M.device)], 0)
    eye = torch.eye(d, dtype=M.dtype, device=M.device)
    vl = torch.cat([torch.cat([-M, g**2 * eye], 1), torch.cat([torch.zeros_like(M), M.T], 1)], 0)
    E, F = _expm(t, aug), _expm(t, vl)
    Phi, h = E[:, :d, :d], E[:, :d, d]
    Q = _sym(F[:, d:, d:].transpose(1, 2) @ F[:, :d, d:])
    mean = Phi @ m0 + h
    cov = _sym(Phi @ S0 @ Phi.transpose(1, 2)) + Q
    return LinearMoments(mean, cov, Phi, h, Q)


def _expm(t: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
    """exp(t_i X) for each t_i, shape (n, k, k). A single time takes the unbatched path: batched
    CPU linear algebra on a batch of one can cost milliseconds of thread start-up on a busy machine."""
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

    Batched over leading axes. Notebook 05 §"Exact terms".
    """
    d = m1.shape[-1]
    L2 = torch.linalg.cholesky(S2)
    diff = (m2 - m1)[..., None]
    tr = torch.cholesky_solve(S1, L2).diagonal(dim1=-2, dim2=-1).sum(-1)
    quad = (diff * torch.cholesky_solve(diff, L2)).sum((-2, -1))
    ld2 = 2 * torch.log(L2.diagonal(dim1=-2, dim2=-1)).sum(-1)
    ld1 = torch.linalg.slogdet(S1)[1]
    return 0.5 * (tr + quad - d + ld2 - ld1)


def _sq(B, c, m, S):
    """E‖B x + c‖² for x ~ N(m, S), batched: tr(B S Bᵀ) + ‖B m + c‖²."""
    v = (B @ m[..., None])[..., 0] + c
    return (B @ S @ B.transpose(-1, -2)).diagonal(dim1=-2, dim2=-1).sum(-1) + (v**2).sum(-1)


def _dot(P, p, Q, q, m, S):
    """E[(P x + p)·(Q x + q)] for x ~ N(m, S): tr(P S Qᵀ) + (P m + p)·(Q m + q)."""
    u = (P @ m[..., None])[..., 0] + p
    v = (Q @ m[..., None])[..., 0] + q
    return (P @ S @ Q.transpose(-1, -2)).diagonal(dim1=-2, dim2=-1).sum(-1) + (u * v).sum(-1)


def _legendre(a: float, b: float, n: int):
    x, w = np.polynomial.legendre.leggauss(n)
    return (torch.tensor(0.5 * (b - a) * x + 0.5 * (b + a), dtype=_DT),
            torch.tensor(0.5 * (b - a) * w, dtype=_DT))


# ---------------------------------------------------------------------------------- exact terms
class LinearSBVAE:
    """The SB-as-VAE objective with every term in closed form (Gaussian data, linear everything).

    Reference drift ``f(x) = F x`` and constant diffusion ``g`` on [0, T]; encoder control
    ``u_φ(x) = K x + k``; decoder score ``s_θ(x) = A x + a`` (constant in time); prior
    ``N(0, prior_var I)``; data ``N(data_mean, data_cov)``. Matrices may be given as floats (times I),
    vectors (diagonals) or (d, d) arrays. Time integrals use ``n_quad``-point Gauss–Legendre
    quadrature of closed-form integrands (smooth, so the error falls exponentially with ``n_quad``).

    ``terms()`` returns every quantity at once. Notebook 05 §"Exact terms" and §"Special cases".
    """

    def __init__(self, data_mean, data_cov, *, F=0.0, g: float = 1.0, T: float = 1.0, K=0.0, k=0.0,
                 A=0.0, a=0.0, prior_var: float = 1.0, n_quad: int = 64):
        m0 = torch.as_tensor(data_mean, dtype=_DT) if not isinstance(data_mean, torch.Tensor) else data_mean.detach().to(_DT)
        if m0.ndim == 0:
            m0 = m0.reshape(1)
        if m0.ndim != 1:
            raise ValueError(f"data_mean must be a vector (d,), got shape {tuple(m0.shape)}")
        d = m0.shape[0]
        self.dim = d
        self.m0 = _vector(m0, "data_mean", d)
        self.S0 = _spd(data_cov, "data_cov", d)
        self.F, self.K, self.A = _matrix(F, "F", d), _matrix(K, "K", d), _matrix(A, "A", d)
        self.k, self.a = _vector(k, "k", d), _vector(a, "a", d)
        self.g = check_positive(g, "g")
        self.T = check_positive(T, "T")
        self.prior_var = check_positive(prior_var, "prior_var")
        self.n_quad = check_int(n_quad, "n_quad", minimum=2)
        self._eye = torch.eye(d, dtype=_DT)

    def replace(self, **changes) -> "LinearSBVAE":
        """A copy with some arguments changed (e.g. ``replace(K=-1.0)``)."""
        kw = dict(data_mean=self.m0, data_cov=self.S0, F=self.F, g=self.g, T=self.T, K=self.K, k=self.k,
                  A=self.A, a=self.a, prior_var=self.prior_var, n_quad=self.n_quad)
        kw.update(changes)
        return LinearSBVAE(**kw)

    # ---------------------------------------------------------------- the two processes
    @property
    def encoder_matrix(self):
        """(M, b) of the encoder drift f + g u_φ = M x + b."""
        return self.F + self.g * self.K, self.g * self.k

    def q(self, t):
        """Encoder marginal q_t = N(m_t, S_t) at times ``t`` (1-D): returns ``(m (n, d), S (n, d, d))``."""
        M, b = self.encoder_matrix
        mom = linear_sde_moments(M, b, self.g, self.m0, self.S0, t)
        return mom.mean, mom.cov

    def p(self, t):
        """Decoder marginal p^θ_t = N(μ_t, Σ_t) at forward times ``t``: the reverse SDE
        dY = (N Y + n) ds + g dW, N = −M + g² A, n = −b + g² a, run for s = T − t from the prior."""
        M, b = self.encoder_matrix
        N = -M + self.g**2 * self.A
        nn_ = -b + self.g**2 * self.a
        s = self.T - torch.as_tensor(t, dtype=_DT).reshape(-1)
        mom = linear_sde_moments(N, nn_, self.g, torch.zeros(self.dim, dtype=_DT), self.prior_var * self._eye, s)
        return mom.mean, mom.cov

    def p_theta(self):
        """The model's data distribution p_θ = p^θ_0 as ``(mean (d,), cov (d, d))``."""
        mu, S = self.p(torch.zeros(1, dtype=_DT))
        return mu[0], S[0]

    # ---------------------------------------------------------------- the terms
    def prior_loss(self) -> float:
        """KL(q_T ‖ N(0, prior_var I)), the encoder's objective (θ does not enter)."""
        m, S = self.q(torch.tensor([self.T], dtype=_DT))
        return float(gaussian_kl(m[0], S[0], torch.zeros(self.dim, dtype=_DT), self.prior_var * self._eye))

    def _quad(self, t_min: float = 0.0):
        t_min = check_positive(t_min, "t_min", allow_zero=True)
        if t_min >= self.T:
            raise ValueError(f"t_min must be < T = {self.T}, got {t_min}")
        t, w = _legendre(t_min, self.T, self.n_quad)
        return t, w

    def drift_matching(self, t_min: float = 0.0) -> float:
        """E_Q ∫_{t_min}^T (g²/2) ‖s_θ(X_t) − ∇log q_t(X_t)‖² dt with ∇log q_t(x) = −S_t⁻¹(x − m_t)."""
        t, w = self._quad(t_min)
        m, S = self.q(t)
        Si = torch.linalg.inv(S)
        B = self.A + Si
        c = self.a - (Si @ m[..., None])[..., 0]
        return float((w * 0.5 * self.g**2 * _sq(B, c, m, S)).sum())

    def path_kl(self) -> float:
        """KL(Q_φ ‖ P_θ) = prior loss + drift matching (Girsanov in reverse time)."""
        return self.prior_loss() + self.drift_matching()

    def data_kl(self) -> float:
        """KL(p_data ‖ p_θ), both Gaussian: the quantity a likelihood model wants small."""
        mu, S = self.p_theta()
        return float(gaussian_kl(self.m0, self.S0, mu, S))

    def forward_gap(self) -> float:
        """E_Q ∫_0^T (g²/2) ‖∇log p^θ_t(X_t) − s_θ(X_t)‖² dt ≥ 0: the slack of the data processing
        inequality (Girsanov in forward time: KL(Q‖P) = KL(p_data‖p_θ) + this)."""
        t, w = self._quad()
        m, S = self.q(t)
        mu, Sig = self.p(t)
        Si = torch.linalg.inv(Sig)
        B = -Si - self.A
        c = (Si @ mu[..., None])[..., 0] - self.a
        return float((w * 0.5 * self.g**2 * _sq(B, c, m, S)).sum())

    def path_kl_forward(self) -> float:
        """KL(Q_φ ‖ P_θ) computed the other way: KL(p_data ‖ p_θ) + forward_gap()."""
        return self.data_kl() + self.forward_gap()

    def data_entropy(self) -> float:
        """H(p_data) = ½ log det(2πe S0)."""
        return float(0.5 * (self.dim * (1 + _LOG2PI) + torch.linalg.slogdet(self.S0)[1]))

    def sbfbsde_elbo(self) -> float:
        """E_{p_data}[L_SB(x0)], the SB-FBSDE likelihood bound of Chen, Liu and Theodorou (2022),

            L_SB = E[log p_T(X_T)] − ∫_0^T E[½‖Z‖² + ½‖Ẑ‖² + ∇·(g Ẑ − f) + Ẑᵀ Z] dt,

        with Z = u_φ and Ẑ = g s_θ − u_φ, computed in closed form under Q_φ. It equals
        −(prior loss + drift matching) − H(p_data) (Notebook 05 §"Special cases").
        """
        g, K, k, A, a = self.g, self.K, self.k, self.A, self.a
        mT, ST = self.q(torch.tensor([self.T], dtype=_DT))
        log_prior = (-0.5 * (torch.trace(ST[0]) + (mT[0] ** 2).sum()) / self.prior_var
                     - 0.5 * self.dim * math.log(2 * math.pi * self.prior_var))
        t, w = self._quad()
        m, S = self.q(t)
        P, p = g * A - K, g * a - k                      # Ẑ = P x + p
        Kb = K.expand(len(t), -1, -1)
        Pb = P.expand(len(t), -1, -1)
        integrand = (0.5 * _sq(Kb, k, m, S) + 0.5 * _sq(Pb, p, m, S)
                     + torch.trace(g * P - self.F) + _dot(Pb, p, Kb, k, m, S))
        return float(log_prior - (w * integrand).sum())

    def dsm_loss(self, t_min: float) -> float:
        """Likelihood-weighted denoising score matching E ∫_{t_min}^T (g²/2)‖s_θ(X_t) − ∇log q_{t|0}(X_t|X_0)‖² dt
        in closed form: ∫ (g²/2)[E‖A x + a‖² + 2 tr A + tr Cov(X_t|X_0)⁻¹] dt. It differs from
        ``drift_matching(t_min)`` by a constant that does not depend on θ (it diverges as t_min → 0)."""
        t_min = check_positive(t_min, "t_min")
        if t_min >= self.T:
            raise ValueError(f"t_min must be < T = {self.T}, got {t_min}")
        t, w = self._quad(t_min)
        M, b = self.encoder_matrix
        mom = linear_sde_moments(M, b, self.g, self.m0, self.S0, t)
        Ab = self.A.expand(len(t), -1, -1)
        integrand = (_sq(Ab, self.a, mom.mean, mom.cov) + 2 * torch.trace(self.A)
                     + torch.linalg.inv(mom.noise_cov).diagonal(dim1=-2, dim2=-1).sum(-1))
        return float((w * 0.5 * self.g**2 * integrand).sum())

    def fit_decoder(self) -> "LinearSBVAE":
        """The best constant-in-time linear decoder: argmin over (A, a) of the drift-matching term.

        Drift matching is quadratic in W = [A, a]: with z = [x; 1], G_t = E_q[z zᵀ] and
        E_q[z (∇log q_t)ᵀ] = −[I; 0], the minimiser is W = −T [I, 0] (∫_0^T G_t dt)⁻¹.
        """
        t, w = self._quad()
        m, S = self.q(t)
        d = self.dim
        G = torch.zeros(len(t), d + 1, d + 1, dtype=_DT)
        G[:, :d, :d] = S + m[:, :, None] * m[:, None, :]
        G[:, :d, d] = m
        G[:, d, :d] = m
        G[:, d, d] = 1.0
        Gbar = (w[:, None, None] * G).sum(0)
        W = -self.T * torch.linalg.solve(Gbar.T, torch.cat([self._eye, torch.zeros(d, 1, dtype=_DT)], 1).T).T
        return self.replace(A=W[:, :d], a=W[:, d])

    def terms(self) -> dict:
        """Every quantity as floats: prior_loss, drift_matching, path_kl, data_kl, forward_gap,
        path_kl_forward, sbfbsde_elbo, data_entropy."""
        return {name: getattr(self, name)() for name in
                ("prior_loss", "drift_matching", "path_kl", "data_kl", "forward_gap", "path_kl_forward",
                 "sbfbsde_elbo", "data_entropy")}

    def __repr__(self):
        return f"LinearSBVAE(dim={self.dim}, g={self.g}, T={self.T}, prior_var={self.prior_var})"


# ---------------------------------------------------------------------------------- 2-D training
def encoder_reference(dim, c, g) -> tuple:
    """Check an encoder's size and reference SDE ``dX = c X dt + g dW``; return ``(dim, c, g)``."""
    dim = check_int(dim, "dim")
    if isinstance(c, bool) or not isinstance(c, (int, float)) or not math.isfinite(c):
        raise ValueError(f"c must be a finite real number, got {c!r}")
    return dim, float(c), check_positive(g, "g")


class LinearEncoder(nn.Module):
    """The encoder SDE ``dX = [c X + g (K X + k)] dt + g dW`` with learnable K (d, d) and k (d,).

    The reference drift is ``f = c x`` (c = 0: Brownian motion); K = 0, k = 0 at the start, so the
    encoder starts as the plain reference. Because it is linear, X_t | X_0 is Gaussian with exact,
    differentiable moments (:meth:`transition`) whatever the data. Notebook 05 §"Training schedules".
    """

    def __init__(self, dim: int, *, c: float = 0.0, g: float = 1.0):
        super().__init__()
        self.dim, self.c, self.g = encoder_reference(dim, c, g)
        self.K = nn.Parameter(torch.zeros(dim, dim, dtype=_DT))
        self.k = nn.Parameter(torch.zeros(dim, dtype=_DT))

    def transition(self, t) -> LinearMoments:
        """X_t = Φ_t X_0 + h_t + N(0, Q_t) at the times ``t`` (1-D tensor), float64, differentiable."""
        M = self.c * torch.eye(self.dim, dtype=_DT, device=self.K.device) + self.g * self.K
        z = torch.zeros(self.dim, dtype=_DT, device=self.K.device)
        return linear_sde_moments(M, self.g * self.k, self.g, z, torch.zeros_like(M), t)

    def control(self, x, t=None):
        """u_φ(x) = K x + k. ``t`` is accepted and ignored (the same face as :class:`MLPEncoder`)."""
        return x @ self.K.to(x.dtype).T + self.k.to(x.dtype)

    def drift(self, x, t=None):
        """f + g u_φ = c x + g (K x + k). ``t`` is accepted and ignored."""
        return self.c * x + self.g * self.control(x)


def prior_log_density(x, prior_var: float) -> torch.Tensor:
    """log N(x; 0, prior_var I) per row of ``x`` (the prior p_prior of the decoder)."""
    return -0.5 * (x**2).sum(-1) / prior_var - 0.5 * x.shape[1] * math.log(2 * math.pi * prior_var)


def empirical_prior_loss(encoder: LinearEncoder, data, *, T: float = 1.0, prior_var: float = 1.0,
                         n_mc: int = 512, seed: Seed = 0) -> torch.Tensor:
    """Monte Carlo estimate of the prior loss KL(q_T ‖ N(0, prior_var I)) for the empirical data set.

    With a linear encoder, q_T = (1/n) Σ_i N(Φ_T x_i + h_T, Q_T) is a Gaussian mixture with an exact
    log-density (log-sum-exp over the n data points), so KL = E_{y~q_T}[log q_T(y) − log prior(y)]
    needs only samples y (drawn by reparametrisation: differentiable in K, k). Notebook 05 §"Training schedules".
    """
    if not isinstance(encoder, LinearEncoder):
        raise TypeError(f"encoder must be a LinearEncoder, got {type(encoder).__name__}")
    data = check_points(data, "data", dim=encoder.dim)
    T = check_positive(T, "T")
    prior_var = check_positive(prior_var, "prior_var")
    n_mc = check_int(n_mc, "n_mc")
    gen = generator(seed, data.device)
    x = data.to(_DT)
    mom = encoder.transition(torch.tensor([T], dtype=_DT, device=data.device))
    Phi, h, L = mom.Phi[0], mom.shift[0], torch.linalg.cholesky(mom.noise_cov[0])  # unbatched: fast
    centres = x @ Phi.T + h
    idx = torch.randint(0, x.shape[0], (n_mc,), generator=gen, device=data.device)
    xi = torch.randn(n_mc, encoder.dim, generator=gen, device=data.device, dtype=_DT)
    y = centres[idx] + xi @ L.T
    Linv = torch.linalg.inv(L)
    r = y @ Linv.T                                   # whitened samples and centres: ‖L⁻¹(y − c)‖²
    rc = centres @ Linv.T
    sq = (r**2).sum(-1, keepdim=True) - 2 * r @ rc.T + (rc**2).sum(-1)
    logdet = 2 * torch.log(torch.diagonal(L)).sum()
    log_comp = -0.5 * sq - 0.5 * logdet - 0.5 * encoder.dim * _LOG2PI
    log_q = torch.logsumexp(log_comp, dim=1) - math.log(x.shape[0])
    log_prior = prior_log_density(y, prior_var)
    return (log_q - log_prior).mean()


def decoder_dsm_loss(score_net: nn.Module, encoder: LinearEncoder, x0, *, t_min: float = 1e-3,
                     T: float = 1.0, n_grid: int = 256, seed: Seed = 0) -> torch.Tensor:
    """Denoising score matching for the decoder, in noise-prediction form.

    X_t = Φ_t X_0 + h_t + L_t ξ (exact, the encoder is linear) with t uniform on a grid of ``n_grid``
    times in [t_min, T] (one batched transition per step instead of one per sample); the network ε_θ(X_t, t) predicts ξ and
    the decoder score is s_θ = −L_t^{−T} ε_θ. The loss E‖ε_θ − ξ‖² has the same minimiser as drift
    matching (it weights the times differently). The encoder is held fixed (no gradient reaches K, k).
    Notebook 05 §"Training schedules".
    """
    x0 = check_points(x0, "x0", dim=encoder.dim)
    gen = generator(seed, x0.device)
    n = x0.shape[0]
    n_grid = check_int(n_grid, "n_grid", minimum=2)
    grid = torch.linspace(t_min, T, n_grid, dtype=_DT, device=x0.device)
    with torch.no_grad():
        mom = encoder.transition(grid)
        Lg = torch.linalg.cholesky(mom.noise_cov)
    idx = torch.randint(0, n_grid, (n,), generator=gen, device=x0.device)
    t, L = grid[idx], Lg[idx]
    xi = torch.randn(n, encoder.dim, generator=gen, device=x0.device, dtype=_DT)
    xt = (mom.Phi[idx] @ x0.to(_DT)[..., None])[..., 0] + mom.shift[idx] + (L @ xi[..., None])[..., 0]
    eps = score_net(xt.to(x0.dtype), (t / T).to(x0.dtype)[:, None])
    return ((eps - xi.to(x0.dtype)) ** 2).sum(-1).mean()


def _single_time(t, like):
    """The sampler passes a stride-0 (batch, 1) tensor of equal times: use one row (no host sync)."""
    if isinstance(t, torch.Tensor):
        if t.ndim == 2 and t.shape[0] > 1 and t.stride(0) == 0:
            return t[:1, 0].to(_DT), True
        return t.reshape(-1).to(_DT), t.numel() == 1
    return torch.tensor([float(t)], dtype=_DT, device=like.device), True


def score_from_noise(net, x, t, L, single: bool) -> torch.Tensor:
    """∇log ρ_t(x) ≈ −L_t^{−T} ε_θ(x, t) for a noise-predicting network ε_θ, with Σ_t = L_t L_tᵀ the
    transition covariance (one L for the whole batch when ``single``, else one per row)."""
    tcol = t if isinstance(t, torch.Tensor) else torch.full((x.shape[0], 1), float(t), dtype=x.dtype, device=x.device)
    eps = net(x, tcol)
    if single:
        return -torch.linalg.solve_triangular(L[0].T, eps.T, upper=True).T
    return -torch.linalg.solve_triangular(L.transpose(1, 2), eps[..., None], upper=True)[..., 0]


class SBVAEBridge(Bridge):
    """Encoder + decoder of the SB-as-VAE model on [0, 1], with the Bridge face.

    drift = f + g u_φ (the encoder), backward_drift = g² s_θ − drift (the decoder, in reverse time),
    velocity = f + g u_φ − ½ g² s_θ (the probability-flow ODE). ``sample`` draws from the prior at t = 1
    and runs the decoder to ``t_min`` through :func:`lsbcore.sde.sample`.

    ``param`` says what the network predicts. ``"noise"`` (a :class:`LinearEncoder` only): ε_θ, and
    s_θ = −L_t^{−T} ε_θ with L_t the encoder's exact transition covariance factor (Notebook 05
    §"Training schedules"). ``"score"`` (any encoder, e.g. :class:`~lsbcore.bridges.vae_fbsde.MLPEncoder`,
    whose transitions are unknown): the network is s_θ(x, t) itself (Notebook 05 §"A nonlinear encoder").
    """

    def __init__(self, encoder: nn.Module, score_net: nn.Module, *, prior_var: float = 1.0, param: str = "noise"):
        if param not in ("noise", "score"):
            raise ValueError(f"param must be 'noise' or 'score', got {param!r}")
        if not (isinstance(encoder, nn.Module) and callable(getattr(encoder, "drift", None))
                and hasattr(encoder, "g") and hasattr(encoder, "dim")):
            raise TypeError(f"encoder must be a LinearEncoder or an MLPEncoder, got {type(encoder).__name__}")
        if param == "noise" and not isinstance(encoder, LinearEncoder):
            raise TypeError(f"param='noise' needs a LinearEncoder (exact transitions), got {type(encoder).__name__}; "
                            "use param='score'")
        if not callable(score_net):
            raise TypeError(f"score_net must be callable (x, t) -> score, got {type(score_net).__name__}")
        self.encoder, self.net, self.param = encoder, score_net, param
        self.prior_var = check_positive(prior_var, "prior_var")
        self.sigma, self.dim = encoder.g, encoder.dim

    def _device(self):
        return next(self.encoder.parameters()).device

    def drift(self, x, t):
        return self.encoder.drift(x, t)

    def score(self, x, t):
        """s_θ(x, t): the network itself (``param="score"``) or −L_t^{−T} ε_θ(x, t) (``"noise"``)."""
        if self.param == "score":
            tcol = t if isinstance(t, torch.Tensor) else torch.full((x.shape[0], 1), float(t), dtype=x.dtype,
                                                                       device=x.device)
            return self.net(x, tcol)
        tt, single = _single_time(t, x)
        L = cholesky(self.encoder.transition(tt).noise_cov).to(x.dtype)
        return score_from_noise(self.net, x, t, L, single)

    def backward_drift(self, x, t):
        return self.sigma**2 * self.score(x, t) - self.drift(x, t)

    def prior_sample(self, n: int, seed: Seed = 0, device=None) -> torch.Tensor:
        n = check_int(n, "n")
        dev = torch.device(device) if device is not None else self._device()
        z = torch.randn(n, self.dim, generator=generator(seed, dev), device=dev)
        return math.sqrt(self.prior_var) * z

    @torch.no_grad()
    def sample(self, n: int, *, method: str = "sde", steps: int = 100, t_min: float = 1e-3, seed: Seed = 0):
        """n decoder samples (prior at t = 1 → t_min) by Euler–Maruyama (``"sde"``) or Heun PF-ODE (``"ode"``)."""
        from ..sde import sample as run
        g = generator(seed, self._device())
        x1 = self.prior_sample(n, g)
        return run(self, x1, method=method, steps=steps, t0=t_min, t1=1.0, direction="backward", seed=g).x


@dataclass
class ScheduleResult:
    """What :func:`train_sbvae` returns."""

    bridge: SBVAEBridge
    schedule: str
    encoder_steps: int
    decoder_steps: int
    seconds: float
    prior_losses: list = field(default_factory=list)
    decoder_losses: list = field(default_factory=list)


def train_sbvae(data, *, schedule: str = "staged", decoder_steps: int = 2000, max_encoder_steps: int = 500,
                batch: int = 256, c: float = 0.0, g: float = 1.0, prior_var: float = 1.0, width: int = 64,
                lr_encoder: float = 0.05, lr_decoder: float = 2e-3, plateau_window: int = 25,
                plateau_tol: float = 0.01, n_mc: int = 256, seed: int = 0) -> ScheduleResult:
    """Train encoder (linear) and decoder (TimeMLP) on 2-D data with one of two schedules.

    - ``"joint"``: every step updates the encoder on the prior loss AND the decoder on denoising
      score matching under the current encoder (the decoder chases a moving target);
      ``decoder_steps`` steps of each.
    - ``"staged"``: the encoder alone on the prior loss until it stops falling (the mean loss over
      ``plateau_window`` steps improves by less than ``plateau_tol`` nats, or ``max_encoder_steps``),
      then it is frozen and the decoder trains for ``decoder_steps`` steps.

    Each prior-loss step uses the empirical mixture of a random batch of ``batch`` data points.
    Compute spent is reported as step counts and wall time. Notebook 05 §"Training schedules".
    For a nonlinear (MLP) encoder use :func:`lsbcore.bridges.vae_fbsde.train_sbvae_fbsde`.
    """
    from ..nets import TimeMLP

    if schedule not in ("joint", "staged"):
        raise ValueError(f"schedule must be 'joint' or 'staged', got {schedule!r}")
    data = check_points(data, "data")
    decoder_steps = check_int(decoder_steps, "decoder_steps", minimum=0)
    max_encoder_steps = check_int(max_encoder_steps, "max_encoder_steps", minimum=0)
    batch = check_int(batch, "batch")
    plateau_window = check_int(plateau_window, "plateau_window")
    check_positive(plateau_tol, "plateau_tol", allow_zero=True)
    d = data.shape[1]
    gen = generator(seed, data.device)
    encoder = LinearEncoder(d, c=c, g=g).to(data.device)
    net = TimeMLP(d, width=width, depth=3, seed=seed).to(data.device)
    opt_e = torch.optim.Adam(encoder.parameters(), lr=lr_encoder)
    opt_d = torch.optim.Adam(net.parameters(), lr=lr_decoder)
    prior_losses, dec_losses = [], []
    tic = time.perf_counter()

    def encoder_step():
        idx = torch.randint(0, data.shape[0], (batch,), generator=gen, device=data.device)
        loss = empirical_prior_loss(encoder, data[idx], prior_var=prior_var, n_mc=n_mc, seed=gen)
        opt_e.zero_grad(set_to_none=True)
        loss.backward()
        opt_e.step()
        prior_losses.append(loss.detach())

    def decoder_step():
        idx = torch.randint(0, data.shape[0], (batch,), generator=gen, device=data.device)
        loss = decoder_dsm_loss(net, encoder, data[idx], seed=gen)
        opt_d.zero_grad(set_to_none=True)
        loss.backward()
        opt_d.step()
        dec_losses.append(loss.detach())

    enc_steps = 0
    if schedule == "staged":
        best = math.inf
        while enc_steps < max_encoder_steps:
            encoder_step()
            enc_steps += 1
            if enc_steps % plateau_window == 0:
                cur = float(torch.stack(prior_losses[-plateau_window:]).mean())
                if best - cur < plateau_tol:
                    break
                best = min(best, cur)
        encoder.requires_grad_(False)
        for _ in range(decoder_steps):
            decoder_step()
    else:
        for _ in range(decoder_steps):
            encoder_step()
            decoder_step()
        enc_steps = decoder_steps
        encoder.requires_grad_(False)
    seconds = time.perf_counter() - tic
    return ScheduleResult(SBVAEBridge(encoder, net.eval(), prior_var=prior_var), schedule, enc_steps,
                          decoder_steps, seconds, [float(v) for v in prior_losses], [float(v) for v in dec_losses])
