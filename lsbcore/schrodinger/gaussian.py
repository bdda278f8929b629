"""The closed-form Schrödinger bridge between two Gaussians (Notebook 01 §"Gaussian closed form").

For ρ0 = N(m0, S0), ρ1 = N(m1, S1) and the reference process σW (docs/theory.md §3; Janati et al. 2020,
Mallasto et al. 2022, Bunne et al. 2023) everything is explicit:

    D   = (4 S0^{1/2} S1 S0^{1/2} + σ⁴ I)^{1/2}
    C   = ½ (S0^{1/2} D S0^{-1/2} − σ² I)                    cross-covariance Cov(X0, X1) of the plan
    μ_t = (1−t) m0 + t m1
    Σ_t = (1−t)² S0 + t² S1 + t(1−t)(C + Cᵀ + σ² I)
    forward drift   b(x, t)  = M_t Σ_t^{-1} (x − μ_t) + (m1 − m0)
                    M_t      = t S1 − (1−t) S0 + (1−t) Cᵀ − t C − σ² t I
    backward drift  b̂(x, t) = σ² ∇log ρ_t(x) − b(x, t) = −(M_t + σ² I) Σ_t^{-1} (x − μ_t) − (m1 − m0)

M_t is the S_tᵀ of docs/theory.md §3. It follows from b(x, t) = E[(X1 − X_t)/(1−t) | X_t = x] for the mixture of
Brownian bridges X_t = (1−t)X0 + tX1 + σ√(t(1−t)) Z, whose law is jointly Gaussian; the formula is
regular at t = 0 and t = 1. Closed-form quantities are computed and stored in float64; ``drift`` and
friends follow the dtype and device of ``x``.
"""
from __future__ import annotations

import math

import torch

from ..bridge import Bridge
from ..marginals import Gaussian
from ..utils import Seed, as_matrix, as_vector, check_device, check_int, check_scale, check_state, check_time, generator

_DT = torch.float64
_C_MAX = 15.0  # |c| beyond which the OU-reference closed form loses digits (float64)


# ------------------------------------------------------------------------------ matrix helpers
def _sym_fn(a: torch.Tensor, fn) -> torch.Tensor:
    """f(A) for a symmetric matrix A through its eigendecomposition."""
    a = 0.5 * (a + a.T)
    w, v = torch.linalg.eigh(a)
    return (v * fn(w)) @ v.T


def sqrtm_spd(a: torch.Tensor) -> torch.Tensor:
    """Symmetric square root of a symmetric positive semi-definite matrix (Notebook 01 §Gaussian)."""
    return _sym_fn(a, lambda w: torch.sqrt(torch.clamp(w, min=0)))


def _infer_dim(**values) -> int:
    """The common dimension of the non-scalar arguments (1 when all are scalars)."""
    dims = {}
    for name, v in values.items():
        if isinstance(v, torch.Tensor):
            shape = tuple(v.shape)
        elif isinstance(v, bool) or isinstance(v, str):
            raise TypeError(f"{name} must be a number, vector or matrix, got {type(v).__name__}")
        elif isinstance(v, (int, float)):
            shape = ()
        else:
            try:
                shape = tuple(torch.as_tensor(v, dtype=_DT).shape)
            except (TypeError, ValueError, RuntimeError):
                raise TypeError(f"{name} must be a number, vector or matrix, got {type(v).__name__}") from None
        if len(shape) >= 1:
            dims[name] = shape[0]
    if len(set(dims.values())) > 1:
        raise ValueError(f"mismatched dimensions: {dims}")
    return next(iter(dims.values())) if dims else 1


def monge_map(S0, S1) -> torch.Tensor:
    """The linear Monge map T = S0^{-1/2} (S0^{1/2} S1 S0^{1/2})^{1/2} S0^{-1/2} pushing N(0, S0) to
    N(0, S1) at least quadratic cost; the σ → 0 limit of the bridge has Cov(X0, X1) = S0 T
    (Notebook 01 §"Gaussian closed form")."""
    d = _infer_dim(S0=S0, S1=S1)
    S0 = as_matrix(S0, "S0", d, kind="pd")
    S1 = as_matrix(S1, "S1", d, device=S0.device, kind="pd")
    r = sqrtm_spd(S0)
    ri = torch.linalg.inv(r)
    return ri @ sqrtm_spd(r @ S1 @ r) @ ri


# ------------------------------------------------------------------------------- the bridge
def _brownian_plan(S0: torch.Tensor, S1: torch.Tensor, s2: float):
    """(D, C) of the Brownian-reference bridge with diffusion variance s2 (docs/theory.md §3)."""
    eye = torch.eye(S0.shape[0], dtype=S0.dtype, device=S0.device)
    r0 = sqrtm_spd(S0)
    D = sqrtm_spd(4 * r0 @ S1 @ r0 + s2**2 * eye)
    return D, 0.5 * (r0 @ D @ torch.linalg.inv(r0) - s2 * eye)


class GaussianBridge(Bridge):
    """The Schrödinger bridge from N(m0, S0) to N(m1, S1) with reference σW, in closed form.

    ``m0``, ``m1``: floats or vectors (d,); ``S0``, ``S1``: a float (isotropic variance), a vector
    (diagonal) or an SPD matrix (d, d); ``sigma`` > 0 (entropic OT with ε = 2σ²). Notebook 01
    §"Gaussian closed form" derives every formula and checks it against Sinkhorn and the grid solver.

    ``c`` ≠ 0 switches the reference to the Ornstein–Uhlenbeck process dY = cY dt + σ dW
    (Bunne et al. 2023): its transition is Y_1 | Y_0 = x ~ N(τx, ξ) with τ = e^c,
    ξ = σ²(e^{2c} − 1)/(2c), so the static problem is the Brownian one between N(τm0, τ²S0) and
    N(m1, S1) with variance ξ (C = C'/τ); given its ends the path is an OU bridge. The drifts are
    the conditional expectations of the OU-bridge drifts, evaluated in the form that is regular at t
    (forward for t ≤ ½, backward and Nelson's relation for t > ½). ``entropic_cost`` is Brownian-only.
    """

    data_end = 1

    def __init__(self, m0, S0, m1, S1, sigma, *, c: float = 0.0):
        self.sigma = check_scale(sigma, "sigma")
        if isinstance(c, bool) or not isinstance(c, (int, float)):
            raise TypeError(f"c must be a real number (the OU rate of the reference), got {type(c).__name__}")
        if not (math.isfinite(c) and abs(c) <= _C_MAX):
            raise ValueError(f"c must be a finite rate with |c| ≤ {_C_MAX:g}, got {c}: beyond it the OU reference "
                             f"forgets its start (e^(-|c|) < 3e-7) and the closed form loses its precision")
        self.c = float(c)
        dev = next((v.device for v in (m0, S0, m1, S1) if isinstance(v, torch.Tensor)), torch.device("cpu"))
        d = _infer_dim(m0=m0, m1=m1, S0=S0, S1=S1)
        self.dim = d
        self.m0, self.m1 = as_vector(m0, "m0", d, device=dev), as_vector(m1, "m1", d, device=dev)
        self.S0, self.S1 = as_matrix(S0, "S0", d, device=dev, kind="pd"), as_matrix(S1, "S1", d, device=dev, kind="pd")
        if self.c == 0.0:
            self.D, C = _brownian_plan(self.S0, self.S1, self.sigma**2)
        else:
            tau = math.exp(self.c)
            self.D, C = _brownian_plan(tau**2 * self.S0, self.S1, self._xi(1.0))
            C = C / tau
        if not (bool(torch.isfinite(self.D).all()) and bool(torch.isfinite(C).all())):
            raise ValueError(f"sigma = {self.sigma:g} is out of scale with the covariances: σ⁴ over- or "
                             f"underflows float64 in the closed form; rescale the problem")
        #: Cov(X0, X1) under the optimal static plan π* (not symmetric in general)
        self.cross_cov = C

    def _xi(self, s):
        """Variance σ²(e^{2cs} − 1)/(2c) of the reference transition over a time s (σ²s when c = 0)."""
        if self.c == 0.0:
            return self.sigma**2 * s
        if isinstance(s, torch.Tensor):
            return self.sigma**2 * torch.expm1(2 * self.c * s) / (2 * self.c)
        return self.sigma**2 * math.expm1(2 * self.c * s) / (2 * self.c)

    def _pin(self, h, L):
        """Reference bridge over a time L pinned at x and y: X_h = A x + B y + √ν Z; returns (A, B, ν)."""
        if self.c == 0.0:
            r = h / L
            return 1 - r, r, self.sigma**2 * h * (1 - r)
        c = self.c
        ex = torch.exp if isinstance(h, torch.Tensor) else math.exp
        em = torch.expm1 if isinstance(h, torch.Tensor) else math.expm1
        r = em(-2 * c * h) / math.expm1(-2 * c * L)  # κ_h / κ_L with κ_s = σ²(1 − e^{−2cs})/(2c)
        kappa = -self.sigma**2 * em(-2 * c * h) / (2 * c)
        return ex(c * h) * (1 - r), ex(c * (h - L)) * r, ex(2 * c * h) * kappa * (1 - r)

    # ---------------------------------------------------------------- static plan
    def joint_cov(self) -> torch.Tensor:
        """Covariance (2d, 2d) of the optimal static plan π* = N([m0; m1], [[S0, C], [Cᵀ, S1]])."""
        C = self.cross_cov
        return torch.cat([torch.cat([self.S0, C], 1), torch.cat([C.T, self.S1], 1)], 0)

    def transport_cost(self) -> float:
        """E‖X0 − X1‖² under π*: ‖m0 − m1‖² + tr S0 + tr S1 − 2 tr C."""
        return float(((self.m0 - self.m1) ** 2).sum() + torch.trace(self.S0) + torch.trace(self.S1)
                     - 2 * torch.trace(self.cross_cov))

    def plan_kl(self) -> float:
        """KL(π* ‖ ρ0 ⊗ ρ1) = ½ (log det S0 + log det S1 − log det Γ), Γ the joint covariance."""
        ld = lambda a: torch.linalg.slogdet(a)[1]  # noqa: E731
        return float(0.5 * (ld(self.S0) + ld(self.S1) - ld(self.joint_cov())))

    def entropic_cost(self) -> float:
        """OT_ε(ρ0, ρ1) = min_π E‖X0−X1‖² + ε KL(π ‖ ρ0⊗ρ1), ε = 2σ², in closed form (Janati et al. 2020):
        ‖m0−m1‖² + tr S0 + tr S1 − tr D + dσ²(1 − log 2σ²) + σ² log det(D + σ² I). Brownian reference only."""
        if self.c != 0.0:
            raise NotImplementedError("entropic_cost is the Brownian-reference (c = 0) closed form")
        s2, d = self.sigma**2, self.dim
        eye = torch.eye(d, dtype=_DT, device=self.D.device)
        return float(((self.m0 - self.m1) ** 2).sum() + torch.trace(self.S0) + torch.trace(self.S1)
                     - torch.trace(self.D) + d * s2 * (1 - math.log(2 * s2))
                     + s2 * torch.linalg.slogdet(self.D + s2 * eye)[1])

    def sample_plan(self, n: int, seed: Seed = 0, *, dtype=None, device=None):
        """n pairs (X0, X1) ~ π*, each (n, d). Notebook 01 §"three solvers"."""
        n = check_int(n, "n")
        dev = check_device(device) if device is not None else self.m0.device
        gen = generator(seed, dev)
        chol = torch.linalg.cholesky(self.joint_cov()).to(dev)
        z = torch.randn(n, 2 * self.dim, generator=gen, device=dev, dtype=_DT)
        xy = torch.cat([self.m0, self.m1]).to(dev) + z @ chol.T
        xy = xy.to(dtype or torch.get_default_dtype())
        return xy[:, : self.dim], xy[:, self.dim:]

    def start(self, n: int, *, seed: Seed = 0, device=None) -> torch.Tensor:
        """``n`` samples of ρ0 = N(m0, S0), the start law of generation (``data_end = 1``), in the
        default dtype. Notebook 01 §"Gaussian closed form"."""
        n = check_int(n, "n")
        dev = check_device(device) if device is not None else self.m0.device
        gen = generator(seed, dev)
        z = torch.randn(n, self.dim, generator=gen, device=dev, dtype=_DT)
        x0 = self.m0.to(dev) + z @ torch.linalg.cholesky(self.S0).to(dev).T
        return x0.to(torch.get_default_dtype())

    # ---------------------------------------------------------------- marginals
    def _coeffs(self, t: torch.Tensor):
        """μ_t (B, d), Σ_t (B, d, d) and the forward drift b = (x − μ_t) Fᵀ + f0 as (Fᵀ, f0), for times
        t of shape (B, 1), in t's dtype/device."""
        dt, dev = t.dtype, t.device
        m0, m1, S0, S1, C = (a.to(device=dev, dtype=dt) for a in (self.m0, self.m1, self.S0, self.S1, self.cross_cov))
        eye = torch.eye(self.dim, dtype=dt, device=dev)
        s2 = self.sigma**2
        A, B, nu = self._pin(t, 1.0)
        mu = A * m0 + B * m1
        A, B, nu, tt = A[:, :, None], B[:, :, None], nu[:, :, None], t[:, :, None]
        cov = A**2 * S0 + B**2 * S1 + A * B * (C + C.T) + nu * eye
        if self.c == 0.0:
            M = tt * S1 - (1 - tt) * S0 + (1 - tt) * C.T - tt * C - s2 * tt * eye
            return mu, cov, torch.linalg.solve(cov, M.transpose(-1, -2)), (m1 - m0).expand_as(mu)
        c = self.c
        # forward form (regular for t < 1): b = c x + σ² e^{c(1−t)} (E[X1 | x] − e^{c(1−t)} x) / ξ_{1−t}
        e1 = torch.exp(c * (1 - t))
        k = s2 * e1 / self._xi(torch.clamp(1 - t, min=1e-12))
        G = A * C.T + B * S1                                     # Cov(X1, X_t)
        Ff = c * eye + k[:, :, None] * (torch.linalg.solve(cov, G.transpose(-1, -2)) - e1[:, :, None] * eye)
        ff = c * mu + k * (m1 - e1 * mu)
        # backward form (regular for t > 0): b̂ = −c x − σ² (x − e^{ct} E[X0 | x]) / ξ_t, then b = σ²∇log ρ − b̂
        e0 = torch.exp(c * t)
        kb = s2 / self._xi(torch.clamp(t, min=1e-12))
        H = A * S0 + B * C                                       # Cov(X0, X_t)
        Fb = -c * eye - kb[:, :, None] * (eye - e0[:, :, None] * torch.linalg.solve(cov, H.transpose(-1, -2)))
        fb = -c * mu - kb * (mu - e0 * m0)
        Fb_fwd = -s2 * torch.linalg.inv(cov) - Fb
        first = (t <= 0.5)
        return mu, cov, torch.where(first[:, :, None], Ff, Fb_fwd), torch.where(first, ff, -fb)

    def mean(self, t):
        """μ_t = (1−t) m0 + t m1: (d,) for a float t, (B, d) for a tensor t of shape (B,) or (B, 1)."""
        mu = self._coeffs(check_time(t, "t", like=self.m0))[0]
        return mu[0] if _is_scalar(t) else mu

    def cov(self, t):
        """Σ_t: (d, d) for a float t, (B, d, d) for a tensor t."""
        cov = self._coeffs(check_time(t, "t", like=self.m0))[1]
        return cov[0] if _is_scalar(t) else cov

    def marginal(self, t: float) -> Gaussian:
        """The bridge marginal ρ_t = N(μ_t, Σ_t) as an lsbcore :class:`~lsbcore.marginals.Gaussian`."""
        if not _is_scalar(t):
            raise ValueError("t must be a single time for marginal(t)")
        c = self.cov(t)
        return Gaussian(self.mean(t), 0.5 * (c + c.T))

    # ---------------------------------------------------------------- dynamics
    def _prepare(self, x, t):
        x = check_state(x, "x", dim=self.dim)
        t = check_time(t, "t", batch=x.shape[0], like=x)
        if t.shape[0] > 1 and t.stride(0) == 0:
            # one time for the whole batch, as the sampler passes it (an expanded view): compute the
            # d×d coefficients once instead of once per row, without looking at the values (no sync)
            t = t[:1]
        if x.dtype in (torch.float16, torch.bfloat16):
            x, t = x.float(), t.float()   # no linear solves in half precision: compute in float32
        mu, cov, Ft, f0 = self._coeffs(t)
        return x - mu, cov, Ft, f0

    def drift(self, x, t):
        """Forward drift of dX = b dt + σ dW. Brownian reference: b(x, t) = M_t Σ_t^{-1}(x − μ_t) + (m1 − m0)
        (Notebook 01 §"Gaussian closed form")."""
        xc, _, Ft, f0 = self._prepare(x, t)
        return (torch.einsum("bi,bij->bj", xc, Ft.expand(xc.shape[0], -1, -1)) + f0).to(x.dtype)

    def backward_drift(self, x, t):
        """Backward drift b̂ = σ²∇log ρ_t − b (the drift of the time-reversed process, Notebook 01)."""
        xc, cov, Ft, f0 = self._prepare(x, t)
        eye = torch.eye(self.dim, dtype=xc.dtype, device=xc.device)
        Bt = -self.sigma**2 * torch.linalg.solve(cov, eye.expand_as(cov)) - Ft
        return (torch.einsum("bi,bij->bj", xc, Bt.expand(xc.shape[0], -1, -1)) - f0).to(x.dtype)

    def score(self, x, t):
        """∇log ρ_t(x) = −Σ_t^{-1}(x − μ_t)."""
        xc, cov, _, _ = self._prepare(x, t)
        precision = torch.linalg.inv(cov).expand(xc.shape[0], -1, -1)
        return (-torch.einsum("bij,bj->bi", precision, xc)).to(x.dtype)

    def sample_path(self, n: int, n_steps: int = 100, seed: Seed = 0, *, dtype=None, device=None):
        """Exact bridge paths on the uniform time grid t_k = k / n_steps: a tensor (n_steps + 1, n, d).

        (X0, X1) ~ π*, then the reference bridge from X0 to X1 is sampled step by step; for σW,
        X_{t+h} | X_t, X1 ~ N(X_t + h (X1 − X_t)/(1−t), σ² h (1−t−h)/(1−t)). Notebook 01 §dynamics.
        """
        n, n_steps = check_int(n, "n"), check_int(n_steps, "n_steps")
        dev = check_device(device) if device is not None else self.m0.device
        gen = generator(seed, dev)
        x0, x1 = self.sample_plan(n, gen, dtype=_DT, device=dev)
        h = 1.0 / n_steps
        out, x = [x0], x0
        for k in range(n_steps - 1):
            A, B, var = self._pin(h, 1 - k * h)
            x = A * x + B * x1 + math.sqrt(var) * torch.randn(x.shape, generator=gen, device=dev, dtype=_DT)
            out.append(x)
        out.append(x1)
        return torch.stack(out).to(dtype or torch.get_default_dtype())

    def __repr__(self):
        ref = f", c={self.c}" if self.c else ""
        return f"GaussianBridge(dim={self.dim}, sigma={self.sigma}{ref})"


# ------------------------------------------------------------------------------ shared checks
def _is_scalar(t) -> bool:
    return not isinstance(t, torch.Tensor) or t.ndim == 0
