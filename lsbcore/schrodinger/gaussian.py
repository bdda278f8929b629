"""The closed-form Schrödinger bridge between two Gaussians (Notebook 01 §"Gaussian closed form").

For ρ0 = N(m0, S0), ρ1 = N(m1, S1) and the reference process σW (theory.md §2; Janati et al. 2020,
Mallasto et al. 2022, Bunne et al. 2023) everything is explicit:

    D   = (4 S0^{1/2} S1 S0^{1/2} + σ⁴ I)^{1/2}
    C   = ½ (S0^{1/2} D S0^{-1/2} − σ² I)                    cross-covariance Cov(X0, X1) of the plan
    μ_t = (1−t) m0 + t m1
    Σ_t = (1−t)² S0 + t² S1 + t(1−t)(C + Cᵀ + σ² I)
    forward drift   b(x, t)  = M_t Σ_t^{-1} (x − μ_t) + (m1 − m0)
                    M_t      = t S1 − (1−t) S0 + (1−t) Cᵀ − t C − σ² t I
    backward drift  b̂(x, t) = σ² ∇log ρ_t(x) − b(x, t) = −(M_t + σ² I) Σ_t^{-1} (x − μ_t) − (m1 − m0)

M_t is theory.md's S_tᵀ. It follows from b(x, t) = E[(X1 − X_t)/(1−t) | X_t = x] for the mixture of
Brownian bridges X_t = (1−t)X0 + tX1 + σ√(t(1−t)) Z, whose law is jointly Gaussian; the formula is
regular at t = 0 and t = 1. Closed-form quantities are computed and stored in float64; ``drift`` and
friends follow the dtype and device of ``x``.
"""
from __future__ import annotations

import math

import torch

from ..bridges.base import Bridge
from ..marginals import Gaussian
from ..utils import Seed, check_int, check_points, check_positive, check_time, generator

_DT = torch.float64


# ------------------------------------------------------------------------------ matrix helpers
def _sym_fn(a: torch.Tensor, fn) -> torch.Tensor:
    """f(A) for a symmetric matrix A through its eigendecomposition."""
    a = 0.5 * (a + a.T)
    w, v = torch.linalg.eigh(a)
    return (v * fn(w)) @ v.T


def sqrtm_spd(a: torch.Tensor) -> torch.Tensor:
    """Symmetric square root of a symmetric positive semi-definite matrix (Notebook 01 §Gaussian)."""
    return _sym_fn(a, lambda w: torch.sqrt(torch.clamp(w, min=0)))


def _as_matrix(value, name: str, d: int | None, device) -> torch.Tensor:
    """A float64 SPD matrix from a scalar (isotropic), a vector (diagonal) or a matrix."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be a number, vector or matrix, got bool")
    try:
        a = torch.as_tensor(value, dtype=_DT, device=device) if not isinstance(value, torch.Tensor) else value
    except (TypeError, ValueError, RuntimeError):
        raise TypeError(f"{name} must be a number, vector or matrix, got {type(value).__name__}") from None
    if not (torch.is_floating_point(a) or a.dtype in (torch.int32, torch.int64)):
        raise TypeError(f"{name} must be real, got dtype {a.dtype}")
    a = a.to(device=device, dtype=_DT)
    if a.ndim == 0:
        a = a * torch.eye(d or 1, dtype=_DT, device=device)
    elif a.ndim == 1:
        a = torch.diag(a)
    if a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise ValueError(f"{name} must be a square matrix, got shape {tuple(a.shape)}")
    if d is not None and a.shape[0] != d:
        raise ValueError(f"{name} has dimension {a.shape[0]} but the problem has dimension {d}")
    if not bool(torch.isfinite(a).all()):
        raise ValueError(f"{name} contains NaN or inf")
    if not torch.allclose(a, a.T, rtol=1e-8, atol=1e-10):
        raise ValueError(f"{name} must be symmetric")
    if bool((torch.linalg.eigvalsh(a) <= 0).any()):
        raise ValueError(f"{name} must be positive definite (symmetric positive definite covariance)")
    return 0.5 * (a + a.T)


def _as_vector(value, name: str, d: int, device) -> torch.Tensor:
    if isinstance(value, bool):
        raise TypeError(f"{name} must be a number or a vector, got bool")
    try:
        m = torch.as_tensor(value, dtype=_DT, device=device) if not isinstance(value, torch.Tensor) else value
    except (TypeError, ValueError, RuntimeError):
        raise TypeError(f"{name} must be a number or a vector, got {type(value).__name__}") from None
    m = m.to(device=device, dtype=_DT)
    if m.ndim == 0:
        m = m * torch.ones(d, dtype=_DT, device=device)
    if m.ndim != 1:
        raise ValueError(f"{name} must be a vector of shape ({d},), got {tuple(m.shape)}")
    if m.shape[0] != d:
        raise ValueError(f"{name} has dimension {m.shape[0]} but the problem has dimension {d}")
    if not bool(torch.isfinite(m).all()):
        raise ValueError(f"{name} contains NaN or inf")
    return m


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
    S0 = _as_matrix(S0, "S0", None, None)
    S1 = _as_matrix(S1, "S1", S0.shape[0], S0.device)
    r = sqrtm_spd(S0)
    ri = torch.linalg.inv(r)
    return ri @ sqrtm_spd(r @ S1 @ r) @ ri


# ------------------------------------------------------------------------------- the bridge
class GaussianBridge(Bridge):
    """The Schrödinger bridge from N(m0, S0) to N(m1, S1) with reference σW, in closed form.

    ``m0``, ``m1``: floats or vectors (d,); ``S0``, ``S1``: a float (isotropic variance), a vector
    (diagonal) or an SPD matrix (d, d); ``sigma`` > 0 (entropic OT with ε = 2σ²). Notebook 01
    §"Gaussian closed form" derives every formula and checks it against Sinkhorn and the grid solver.
    """

    def __init__(self, m0, S0, m1, S1, sigma):
        self.sigma = check_positive(sigma, "sigma")
        dev = next((v.device for v in (m0, S0, m1, S1) if isinstance(v, torch.Tensor)), torch.device("cpu"))
        d = _infer_dim(m0=m0, m1=m1, S0=S0, S1=S1)
        self.dim = d
        self.m0, self.m1 = _as_vector(m0, "m0", d, dev), _as_vector(m1, "m1", d, dev)
        self.S0, self.S1 = _as_matrix(S0, "S0", d, dev), _as_matrix(S1, "S1", d, dev)
        s2 = self.sigma**2
        eye = torch.eye(d, dtype=_DT, device=dev)
        r0 = sqrtm_spd(self.S0)
        self.D = sqrtm_spd(4 * r0 @ self.S1 @ r0 + s2**2 * eye)
        #: Cov(X0, X1) under the optimal static plan π* (not symmetric in general)
        self.cross_cov = 0.5 * (r0 @ self.D @ torch.linalg.inv(r0) - s2 * eye)

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
        ‖m0−m1‖² + tr S0 + tr S1 − tr D + dσ²(1 − log 2σ²) + σ² log det(D + σ² I)."""
        s2, d = self.sigma**2, self.dim
        eye = torch.eye(d, dtype=_DT, device=self.D.device)
        return float(((self.m0 - self.m1) ** 2).sum() + torch.trace(self.S0) + torch.trace(self.S1)
                     - torch.trace(self.D) + d * s2 * (1 - math.log(2 * s2))
                     + s2 * torch.linalg.slogdet(self.D + s2 * eye)[1])

    def sample_plan(self, n: int, seed: Seed = 0, *, dtype=None, device=None):
        """n pairs (X0, X1) ~ π*, each (n, d). Notebook 01 §"three solvers"."""
        n = check_int(n, "n")
        dev = torch.device(device) if device is not None else self.m0.device
        g = generator(seed, dev)
        chol = torch.linalg.cholesky(self.joint_cov()).to(dev)
        z = torch.randn(n, 2 * self.dim, generator=g, device=dev, dtype=_DT)
        xy = torch.cat([self.m0, self.m1]).to(dev) + z @ chol.T
        xy = xy.to(dtype or torch.get_default_dtype())
        return xy[:, : self.dim], xy[:, self.dim:]

    # ---------------------------------------------------------------- marginals
    def _coeffs(self, t: torch.Tensor):
        """μ_t (B, d), Σ_t (B, d, d), M_t (B, d, d) for times t of shape (B, 1), in t's dtype/device."""
        dt, dev = t.dtype, t.device
        m0, m1, S0, S1, C = (a.to(device=dev, dtype=dt) for a in (self.m0, self.m1, self.S0, self.S1, self.cross_cov))
        eye = torch.eye(self.dim, dtype=dt, device=dev)
        s2 = self.sigma**2
        tt = t[:, :, None]
        mu = (1 - t) * m0 + t * m1
        cov = (1 - tt) ** 2 * S0 + tt**2 * S1 + tt * (1 - tt) * (C + C.T + s2 * eye)
        M = tt * S1 - (1 - tt) * S0 + (1 - tt) * C.T - tt * C - s2 * tt * eye
        return mu, cov, M

    def mean(self, t):
        """μ_t = (1−t) m0 + t m1: (d,) for a float t, (B, d) for a tensor t of shape (B,) or (B, 1)."""
        tt = check_time(_time_tensor(t, _DT, self.m0.device), "t", like=self.m0)
        mu = self._coeffs(tt)[0]
        return mu[0] if _is_scalar(t) else mu

    def cov(self, t):
        """Σ_t: (d, d) for a float t, (B, d, d) for a tensor t."""
        tt = check_time(_time_tensor(t, _DT, self.m0.device), "t", like=self.m0)
        cov = self._coeffs(tt)[1]
        return cov[0] if _is_scalar(t) else cov

    def marginal(self, t: float) -> Gaussian:
        """The bridge marginal ρ_t = N(μ_t, Σ_t) as an lsbcore :class:`~lsbcore.marginals.Gaussian`."""
        if not _is_scalar(t):
            raise ValueError("t must be a single time for marginal(t)")
        c = self.cov(t)
        return Gaussian(self.mean(t), 0.5 * (c + c.T))

    # ---------------------------------------------------------------- dynamics
    def _prepare(self, x, t):
        x = _check_x(x, self.dim)
        t = _check_t(t, x)
        mu, cov, M = self._coeffs(t)
        return x - mu, cov, M

    def drift(self, x, t):
        """Forward drift b(x, t) = M_t Σ_t^{-1}(x − μ_t) + (m1 − m0) of dX = b dt + σ dW (Notebook 01)."""
        xc, cov, M = self._prepare(x, t)
        # rows: (x−μ)ᵀ Σ^{-1} Mᵀ, and Σ^{-1} Mᵀ = solve(Σ, Mᵀ)
        A = torch.linalg.solve(cov, M.transpose(-1, -2))
        return torch.einsum("bi,bij->bj", xc, A.expand(xc.shape[0], -1, -1)) + (self.m1 - self.m0).to(xc)

    def backward_drift(self, x, t):
        """Backward drift b̂ = σ²∇log ρ_t − b (the drift of the time-reversed process, Notebook 01)."""
        xc, cov, M = self._prepare(x, t)
        eye = torch.eye(self.dim, dtype=xc.dtype, device=xc.device)
        A = torch.linalg.solve(cov, (M + self.sigma**2 * eye).transpose(-1, -2))
        return -torch.einsum("bi,bij->bj", xc, A.expand(xc.shape[0], -1, -1)) - (self.m1 - self.m0).to(xc)

    def score(self, x, t):
        """∇log ρ_t(x) = −Σ_t^{-1}(x − μ_t)."""
        xc, cov, _ = self._prepare(x, t)
        return -torch.linalg.solve(cov.expand(xc.shape[0], -1, -1), xc[..., None])[..., 0]

    def sample_path(self, n: int, n_steps: int = 100, seed: Seed = 0, *, dtype=None, device=None):
        """Exact bridge paths on the uniform time grid t_k = k / n_steps: a tensor (n_steps + 1, n, d).

        (X0, X1) ~ π*, then the Brownian bridge from X0 to X1 is sampled step by step:
        X_{t+h} | X_t, X1 ~ N(X_t + h (X1 − X_t)/(1−t), σ² h (1−t−h)/(1−t)). Notebook 01 §dynamics.
        """
        n, n_steps = check_int(n, "n"), check_int(n_steps, "n_steps")
        dev = torch.device(device) if device is not None else self.m0.device
        g = generator(seed, dev)
        x0, x1 = self.sample_plan(n, g, dtype=_DT, device=dev)
        h = 1.0 / n_steps
        out, x = [x0], x0
        for k in range(n_steps - 1):
            t = k * h
            var = self.sigma**2 * h * (1 - t - h) / (1 - t)
            x = x + h * (x1 - x) / (1 - t) + math.sqrt(var) * torch.randn(x.shape, generator=g, device=dev, dtype=_DT)
            out.append(x)
        out.append(x1)
        return torch.stack(out).to(dtype or torch.get_default_dtype())

    def __repr__(self):
        return f"GaussianBridge(dim={self.dim}, sigma={self.sigma})"


# ------------------------------------------------------------------------------ shared checks
def _time_tensor(t, dtype, device):
    """A Python number as a 0-d tensor of ``dtype`` without a float32 round trip."""
    if isinstance(t, bool) or not isinstance(t, (int, float)):
        return t
    return torch.tensor(float(t), dtype=dtype, device=device)


def _is_scalar(t) -> bool:
    return not isinstance(t, torch.Tensor) or t.ndim == 0


def _check_x(x, dim: int) -> torch.Tensor:
    """(batch, dim) floating tensor. Values are checked for NaN/inf only on CPU (no device sync)."""
    if isinstance(x, torch.Tensor) and x.device.type != "cpu":
        if not torch.is_floating_point(x) or x.ndim != 2 or x.shape[1] != dim:
            raise ValueError(f"x must be a floating tensor of shape (batch, {dim}), got {tuple(x.shape)}")
        return x
    return check_points(x, "x", dim=dim)


def _check_t(t, x: torch.Tensor) -> torch.Tensor:
    """Time as an (B or 1, 1) tensor in x's dtype/device; values checked on CPU only (no sync)."""
    if not isinstance(t, torch.Tensor):
        check_time(t, "t")  # a Python number: range-checked on the host
        t = _time_tensor(t, x.dtype, x.device)
    if x.device.type != "cpu":
        t = t.to(dtype=x.dtype, device=x.device)
        t = t.reshape(1, 1) if t.ndim == 0 else (t[:, None] if t.ndim == 1 else t)
        if t.ndim != 2 or t.shape[1] != 1 or t.shape[0] not in (1, x.shape[0]):
            raise ValueError(f"t must broadcast to ({x.shape[0]}, 1), got shape {tuple(t.shape)}")
        return t
    t = check_time(t, "t", batch=x.shape[0], like=x)
    if t.ndim != 2 or t.shape[1] != 1:
        raise ValueError(f"t must broadcast to ({x.shape[0]}, 1), got shape {tuple(t.shape)}")
    return t
