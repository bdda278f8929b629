"""The SB-as-VAE objective in closed form: Gaussian data, a linear reference, encoder and decoder.

The encoder is the forward SDE ``dX = [F X + g (K X + k)] dt + g dW`` started at the data
``N(data_mean, data_cov)``; the decoder runs back from the prior ``N(0, prior_var I)`` with the score
``s_θ(x) = A x + a``. Every term of the bound (docs/theory.md §5)

    KL(p_data ‖ p_θ) ≤ KL(Q_φ ‖ P_θ) = KL(q_T ‖ p_prior) + E_Q ∫_0^T (g²/2) ‖s_θ − ∇log q_t‖² dt

is a Gaussian integral: the encoder's marginals q_t and the decoder's p^θ_t come from
:func:`lsbcore.linear_sde.linear_sde_moments`, and the time integrals from Gauss–Legendre quadrature of
smooth closed-form integrands. Girsanov in forward time gives the same KL as KL(p_data ‖ p_θ) plus a
non-negative gap, an independent check. Notebook 05 §2.1–2.4 uses all of it.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from ..linear_sde import gaussian_kl, linear_sde_moments
from ..utils import as_matrix, as_vector, check_int, check_positive, check_scale

__all__ = ["LinearSBVAE"]

_DT = torch.float64
_LOG2PI = math.log(2 * math.pi)


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

    ``terms()`` returns every quantity at once. Notebook 05 §2.1 "Exact terms" to §2.3 "Special cases",
    docs/theory.md §5.
    """

    def __init__(self, data_mean, data_cov, *, F=0.0, g: float = 1.0, T: float = 1.0, K=0.0, k=0.0,
                 A=0.0, a=0.0, prior_var: float = 1.0, n_quad: int = 64):
        if isinstance(data_mean, (bool, str)):
            raise TypeError(f"data_mean must be a vector (d,), got {type(data_mean).__name__}")
        m0 = data_mean.detach() if isinstance(data_mean, torch.Tensor) else torch.as_tensor(data_mean, dtype=_DT)
        if m0.ndim > 1:
            raise ValueError(f"data_mean must be a vector (d,), got shape {tuple(m0.shape)}")
        d = max(m0.numel(), 1) if m0.ndim == 1 else 1
        self.dim = d
        self.m0 = as_vector(m0, "data_mean", d)
        self.S0 = as_matrix(data_cov, "data_cov", d, kind="pd")
        self.F, self.K, self.A = (as_matrix(v, name, d) for v, name in ((F, "F"), (K, "K"), (A, "A")))
        self.k, self.a = as_vector(k, "k", d), as_vector(a, "a", d)
        self.g = check_scale(g, "g")
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
        mom = linear_sde_moments(M, b, self.g, self.m0, self.S0, self._times(t))
        return mom.mean, mom.cov

    def _times(self, t) -> torch.Tensor:
        """Times in [0, T] as a 1-D float64 tensor; a ValueError names ``t`` otherwise."""
        t = torch.as_tensor(t, dtype=_DT).reshape(-1)
        if not bool((torch.isfinite(t) & (t >= 0) & (t <= self.T)).all()):
            raise ValueError(f"t must hold finite times in [0, T] = [0, {self.T}]")
        return t

    def p(self, t):
        """Decoder marginal p^θ_t = N(μ_t, Σ_t) at forward times ``t``: the reverse SDE
        dY = (N Y + n) ds + g dW, N = −M + g² A, n = −b + g² a, run for s = T − t from the prior."""
        M, b = self.encoder_matrix
        N = -M + self.g**2 * self.A
        nn_ = -b + self.g**2 * self.a
        s = self.T - self._times(t)
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

    def _quad(self, t_gap: float = 0.0, *, allow_zero: bool = True):
        """Gauss–Legendre nodes and weights on [t_gap, T] (t_gap: the distance kept from the data end)."""
        t_gap = check_positive(t_gap, "t_gap", allow_zero=allow_zero)
        if t_gap >= self.T:
            raise ValueError(f"t_gap must be < T = {self.T}, got {t_gap}")
        return _legendre(t_gap, self.T, self.n_quad)

    def drift_matching(self, t_gap: float = 0.0) -> float:
        """E_Q ∫_{t_gap}^T (g²/2) ‖s_θ(X_t) − ∇log q_t(X_t)‖² dt with ∇log q_t(x) = −S_t⁻¹(x − m_t)."""
        t, w = self._quad(t_gap)
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
        −(prior loss + drift matching) − H(p_data) (Notebook 05 §2.3 "Special cases").
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

    def dsm_loss(self, t_gap: float) -> float:
        """Likelihood-weighted denoising score matching E ∫_{t_gap}^T (g²/2)‖s_θ(X_t) − ∇log q_{t|0}(X_t|X_0)‖² dt
        in closed form: ∫ (g²/2)[E‖A x + a‖² + 2 tr A + tr Cov(X_t|X_0)⁻¹] dt. It differs from
        ``drift_matching(t_gap)`` by a constant that does not depend on θ (it diverges as t_gap → 0)."""
        t, w = self._quad(t_gap, allow_zero=False)
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
