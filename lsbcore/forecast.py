"""Probabilistic forecasting with a known answer: processes, the exact forecast, baselines, scores.

A forecaster sees a *history* ``y_1..y_T`` of a d-dimensional series and returns a law for the next
H values. Tensors: histories ``(n_series, T, d_obs)``, futures ``(n_series, H, d_obs)``, ensembles
``(n_series, m, H, d_obs)`` (the sample axis is dim 1). A joint law of a future is written for the
future *flattened row-major*, entry ``h·d_obs + j`` = step h, coordinate j. Models and baselines
compute in float64 on the CPU; every random function takes ``seed`` (an int or a torch.Generator).

* :class:`LinearGaussianSSM` — a seasonal linear-Gaussian state-space model. Its forecast law given
  a history is Gaussian and the Kalman filter computes it exactly (:meth:`~LinearGaussianSSM.predictive`).
* :class:`NonlinearSSM` — a nonlinear seasonal autoregression with heavy-tailed noise; its state is
  observed, so exact conditional simulation gives the reference law (:meth:`~NonlinearSSM.reference_future`).
* Scores (lower is better, proper: minimised in expectation by the true law) —
  :func:`crps_gaussian` (closed form), :func:`crps_ensemble`, :func:`energy_score`.
* Baselines — :func:`seasonal_naive` and :func:`fit_var` (a Gaussian VAR(p) by least squares).

Notebook 07 §2.4–2.6 (conditional forecasting with a known answer, issue 13).
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch

from .utils import Seed, check_int, check_same_device, generator

__all__ = ["LinearGaussianSSM", "NonlinearSSM", "GaussianVAR", "Forecast", "fit_var", "seasonal_naive",
           "crps_gaussian", "crps_ensemble", "energy_score"]

_DT = torch.float64


class Forecast(NamedTuple):
    """A point forecast ``(n, H, d)`` and an ensemble ``(n, m, H, d)`` drawn from the forecast law."""
    point: torch.Tensor
    samples: torch.Tensor


def _check_series(x, name: str, *, d: int | None = None, min_length: int = 1) -> torch.Tensor:
    """A finite floating tensor ``(n_series, length, d)`` with length ≥ ``min_length``, as CPU float64."""
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape (n_series, length, d_obs), got {type(x).__name__}")
    if not torch.is_floating_point(x):
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    if x.ndim != 3 or x.shape[0] == 0:
        raise ValueError(f"{name} must have shape (n_series, length, d_obs) with n_series ≥ 1, got {tuple(x.shape)}")
    if d is not None and x.shape[2] != d:
        raise ValueError(f"{name} must have d_obs = {d} coordinates (last axis), got {x.shape[2]}")
    if x.shape[1] < min_length:
        raise ValueError(f"{name} is too short: length {x.shape[1]}, need at least {min_length}")
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} contains NaN or inf")
    return x.detach().to("cpu", _DT)


class LinearGaussianSSM:
    """A seasonal linear-Gaussian state-space model, stationary, with fixed random parameters.

    Latent state ``x_t = (ℓ_t, b_t, s_t)`` of size ``k = 2 d_obs + 2K``:

    * a mean-reverting local level with cross-series mixing and a damped trend,
      ``ℓ_{t+1} = Φ ℓ_t + b_t + η_t``,  ``b_{t+1} = 0.8 b_t + ζ_t``  (Φ: d×d, spectral radius ≤ 0.95);
    * K trigonometric seasonal factors of period P, one 2-vector per harmonic k = 1..K, turned by the
      angle ω_k = 2πk/P each step and damped by ρ = 0.998: ``s^k_{t+1} = ρ Rot(ω_k) s^k_t + κ^k_t``;
    * observations ``y_t = c + ℓ_t + B s_t + v_t`` (B: d×2K loadings, c a constant level).

    In matrix form ``x_{t+1} = F x_t + w_t``, ``y_t = c + H x_t + v_t``, ``w ~ N(0, Q)``, ``v ~ N(0, R)``
    (R full: correlated observation noise). All eigenvalues of F lie inside the unit circle, so the
    process has a stationary law: ``x_t ~ N(0, P∞)`` with ``P∞ = F P∞ Fᵀ + Q`` (discrete Lyapunov).
    :meth:`simulate` starts there, so any window of a simulated series is a draw of the same law, and
    :meth:`predictive` starts its Kalman filter there too.
    """

    def __init__(self, d_obs: int = 3, period: int = 12, n_harmonics: int = 2, *, seed: Seed = 0):
        self.d_obs = d = check_int(d_obs, "d_obs")
        self.period = P = check_int(period, "period", minimum=3)
        self.n_harmonics = K = check_int(n_harmonics, "n_harmonics", maximum=(P - 1) // 2)
        gen = generator(seed)

        def randn(*shape):
            return torch.randn(*shape, generator=gen, dtype=_DT)

        Phi = 0.85 * torch.eye(d, dtype=_DT) + 0.1 * randn(d, d) / math.sqrt(d)
        Phi = Phi * min(1.0, 0.95 / float(torch.linalg.eigvals(Phi).abs().max()))
        self.k = k = 2 * d + 2 * K
        F = torch.zeros(k, k, dtype=_DT)
        F[:d, :d], F[:d, d:2 * d], F[d:2 * d, d:2 * d] = Phi, torch.eye(d, dtype=_DT), 0.8 * torch.eye(d, dtype=_DT)
        for j in range(K):
            w, i = 2 * math.pi * (j + 1) / P, 2 * d + 2 * j
            rot = torch.tensor([[math.cos(w), -math.sin(w)], [math.sin(w), math.cos(w)]], dtype=_DT)
            F[i:i + 2, i:i + 2] = 0.998 * rot
        Hm = torch.zeros(d, k, dtype=_DT)
        Hm[:, :d], Hm[:, 2 * d:] = torch.eye(d, dtype=_DT), randn(d, 2 * K) / math.sqrt(K)
        q = torch.cat([torch.full((d,), 0.1 ** 2, dtype=_DT), torch.full((d,), 0.02 ** 2, dtype=_DT),
                       torch.full((2 * K,), 0.03 ** 2, dtype=_DT)])
        Lr = randn(d, d)
        self.F, self.H, self.Q = F, Hm, torch.diag(q)
        self.R = 0.125 * torch.eye(d, dtype=_DT) + 0.125 * Lr @ Lr.T / d
        self.c = randn(d)
        # stationary covariance: vec(P∞) = (I − F⊗F)⁻¹ vec(Q) (row-major vec: vec(F P Fᵀ) = (F⊗F) vec(P))
        P_inf = torch.linalg.solve(torch.eye(k * k, dtype=_DT) - torch.kron(F, F), self.Q.reshape(-1)).reshape(k, k)
        self.P_inf = 0.5 * (P_inf + P_inf.T)

    def simulate(self, n_series: int, length: int, seed: Seed = 0) -> torch.Tensor:
        """``n_series`` independent stationary series ``(n_series, length, d_obs)`` (float64)."""
        n, T = check_int(n_series, "n_series"), check_int(length, "length")
        gen = generator(seed)
        LQ, LR = torch.linalg.cholesky(self.Q), torch.linalg.cholesky(self.R)
        x = torch.randn(n, self.k, generator=gen, dtype=_DT) @ torch.linalg.cholesky(self.P_inf).T
        ys = []
        for _ in range(T):
            ys.append(self.c + x @ self.H.T + torch.randn(n, self.d_obs, generator=gen, dtype=_DT) @ LR.T)
            x = x @ self.F.T + torch.randn(n, self.k, generator=gen, dtype=_DT) @ LQ.T
        return torch.stack(ys, 1)

    def filter(self, history) -> tuple[torch.Tensor, torch.Tensor]:
        """Kalman filter: the law ``N(m, P)`` of the next state ``x_{T+1}`` given ``y_1..y_T``.

        Start from the stationary prior ``m = 0, P = P∞`` for ``x_1``; for t = 1..T

        * update with ``y_t``: innovation ``e = y_t − c − H m``, its covariance ``S = H P Hᵀ + R``, gain
          ``K = P Hᵀ S⁻¹``; then ``m ← m + K e``, ``P ← (I − KH) P (I − KH)ᵀ + K R Kᵀ`` (Joseph form,
          the same matrix as (I − KH)P but stays symmetric positive definite in floating point);
        * predict: ``m ← F m``, ``P ← F P Fᵀ + Q``.

        These are Gaussian conditioning and a linear map, so the result is exact. P does not depend on
        the data (only on T), so it is one ``(k, k)`` matrix; ``m`` is ``(n_series, k)``.
        """
        y = _check_series(history, "history", d=self.d_obs)
        m, P = torch.zeros(y.shape[0], self.k, dtype=_DT), self.P_inf.clone()
        eye = torch.eye(self.k, dtype=_DT)
        for t in range(y.shape[1]):
            S = self.H @ P @ self.H.T + self.R
            K = torch.linalg.solve(S, self.H @ P).T          # P Hᵀ S⁻¹ (S and P symmetric)
            m = m + (y[:, t] - self.c - m @ self.H.T) @ K.T
            IKH = eye - K @ self.H
            P = IKH @ P @ IKH.T + K @ self.R @ K.T
            m, P = m @ self.F.T, self.F @ P @ self.F.T + self.Q
        return m, 0.5 * (P + P.T)

    def predictive(self, history, horizon: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The exact forecast law of ``y_{T+1..T+H}`` given the history: ``(mean, cov)``.

        With ``x_{T+1} ~ N(m, P)`` from :meth:`filter`, write ``x_{T+1+i}`` (i = 0..H−1). Its mean is
        ``F^i m`` and its covariance ``P_i`` (``P_0 = P``, ``P_{i+1} = F P_i Fᵀ + Q``); for i ≤ j,
        ``Cov(x_{T+1+i}, x_{T+1+j}) = P_i (F^{j−i})ᵀ`` because the noise added after step i is
        independent of ``x_{T+1+i}``. Hence ``mean_i = c + H F^i m`` and
        ``Cov(y_{T+1+i}, y_{T+1+j}) = H P_i (F^{j−i})ᵀ Hᵀ + [i = j] R``.
        Returns mean ``(n, H, d)`` and the joint covariance of the flattened future ``(n, H·d, H·d)``
        (the same for every series — the filter's P ignores the data — returned as an expanded view).
        """
        H_ = check_int(horizon, "horizon")
        m, P = self.filter(history)
        d, n = self.d_obs, m.shape[0]
        Fp, Ps = [torch.eye(self.k, dtype=_DT)], [P]
        for _ in range(H_ - 1):
            Fp.append(self.F @ Fp[-1])
            Ps.append(self.F @ Ps[-1] @ self.F.T + self.Q)
        mean = torch.stack([self.c + m @ (self.H @ Fp[i]).T for i in range(H_)], 1)
        cov = torch.empty(H_ * d, H_ * d, dtype=_DT)
        for i in range(H_):
            for j in range(i, H_):
                block = self.H @ Ps[i] @ Fp[j - i].T @ self.H.T + (self.R if i == j else 0.0)
                cov[i * d:(i + 1) * d, j * d:(j + 1) * d] = block
                cov[j * d:(j + 1) * d, i * d:(i + 1) * d] = block.T
        return mean, cov.expand(n, H_ * d, H_ * d)

    def sample_future(self, history, horizon: int, n_samples: int, seed: Seed = 0) -> torch.Tensor:
        """``n_samples`` futures per series from the exact predictive: ``mean + L z``, ``L Lᵀ = cov``,
        ``z ~ N(0, I)``. Returns ``(n, n_samples, horizon, d_obs)``."""
        m_ = check_int(n_samples, "n_samples")
        mean, cov = self.predictive(history, horizon)
        n, H_, d = mean.shape
        L = torch.linalg.cholesky(cov[0])
        z = torch.randn(n, m_, H_ * d, generator=generator(seed), dtype=_DT)
        return mean[:, None] + (z @ L.T).reshape(n, m_, H_, d)


class NonlinearSSM:
    """A nonlinear seasonal autoregression with heavy-tailed noise (fixed random parameters):

        y_t = c + a ⊙ (y_{t−P} − c) + W tanh(y_{t−1} − c) + ε_t,    ε_t = L z_t · √(ν / g_t),

    ``z_t ~ N(0, I_d)``, ``g_t ~ χ²_ν`` (so ε is multivariate Student-t with ν = ``df`` degrees of
    freedom, covariance ν/(ν−2) L Lᵀ), ``a ∈ [0.7, 0.9]^d`` the seasonal persistence, W a d×d mixing.
    The tanh and the heavy tails make the forecast law non-Gaussian. It is stable: the tanh term is
    bounded and |a| < 1. As a state-space model its state is the last P observations
    ``x_t = (y_{t−P+1}, …, y_t)``, *observed without noise*, so the process is Markov of order P:
    the future given the whole history depends only on the last P values, and simulating forward from
    them (:meth:`reference_future`) draws from the exact conditional law — no particle filter needed.
    """

    def __init__(self, d_obs: int = 3, period: int = 12, *, df: int = 4, seed: Seed = 0):
        self.d_obs = d = check_int(d_obs, "d_obs")
        self.period = check_int(period, "period", minimum=2)
        self.df = check_int(df, "df")
        gen = generator(seed)
        self.c = torch.randn(d, generator=gen, dtype=_DT)
        self.a = 0.7 + 0.2 * torch.rand(d, generator=gen, dtype=_DT)
        self.W = 0.6 * torch.randn(d, d, generator=gen, dtype=_DT) / math.sqrt(d)
        self.L = 0.3 * torch.linalg.cholesky(0.5 * torch.eye(d, dtype=_DT) + 0.5 * torch.ones(d, d, dtype=_DT))

    def _run(self, window: torch.Tensor, steps: int, gen: torch.Generator) -> torch.Tensor:
        """Continue the series from the last P values ``window (..., P, d)`` for ``steps`` steps."""
        buf, out = list(window.unbind(-2)), []
        for _ in range(steps):
            z = torch.randn(buf[-1].shape, generator=gen, dtype=_DT)
            g = torch.randn(buf[-1].shape[:-1] + (self.df,), generator=gen, dtype=_DT).pow(2).sum(-1, keepdim=True)
            eps = (z @ self.L.T) * torch.sqrt(self.df / g)
            y = self.c + self.a * (buf[-self.period] - self.c) + torch.tanh(buf[-1] - self.c) @ self.W.T + eps
            buf = buf[1:] + [y]
            out.append(y)
        return torch.stack(out, -2)

    def simulate(self, n_series: int, length: int, seed: Seed = 0) -> torch.Tensor:
        """``(n_series, length, d_obs)`` float64 series after a burn-in of 100 periods from y = c (the
        start's influence decays like a^100 ≤ 0.9^100 ≈ 3e-5, so the windows are near-stationary)."""
        n, T = check_int(n_series, "n_series"), check_int(length, "length")
        gen = generator(seed)
        start = self.c.expand(n, self.period, self.d_obs)
        y = self._run(start, 100 * self.period + T, gen)
        return y[:, -T:]

    def reference_future(self, history, horizon: int, n_samples: int, seed: Seed = 0) -> torch.Tensor:
        """Exact draws ``(n, n_samples, horizon, d_obs)`` of the future given each history (length ≥ P),
        by simulating forward from its last P values (see the class docstring for why this is exact)."""
        y = _check_series(history, "history", d=self.d_obs, min_length=self.period)
        H_, m_ = check_int(horizon, "horizon"), check_int(n_samples, "n_samples")
        window = y[:, None, -self.period:].expand(-1, m_, -1, -1)
        return self._run(window, H_, generator(seed))


# ---------------------------------------------------------------------------- scores
def _check_ensemble(samples, y):
    """``samples (n, m, *event)`` with m ≥ 2 and ``y (n, *event)``, finite floating tensors, as float64."""
    for name, v in (("samples", samples), ("y", y)):
        if not isinstance(v, torch.Tensor) or not torch.is_floating_point(v):
            raise TypeError(f"{name} must be a floating-point torch.Tensor, got "
                            f"{v.dtype if isinstance(v, torch.Tensor) else type(v).__name__}")
    check_same_device(samples=samples, y=y)
    if samples.ndim < 2 or samples.shape[:1] + samples.shape[2:] != y.shape:
        raise ValueError(f"samples must have shape (n, m, *y.shape[1:]) = (n, m, ...) for y of shape "
                         f"{tuple(y.shape)}, got {tuple(samples.shape)}")
    if samples.shape[1] < 2:
        raise ValueError(f"samples must hold n_samples ≥ 2 ensemble members (axis 1), got {samples.shape[1]}")
    for name, v in (("samples", samples), ("y", y)):
        if not bool(torch.isfinite(v).all()):
            raise ValueError(f"{name} contains NaN or inf")
    return samples.to(_DT), y.to(_DT)


def crps_gaussian(mean, std, y) -> torch.Tensor:
    """CRPS of ``N(mean, std²)`` at ``y``, elementwise (broadcast), in closed form:

        CRPS(F, y) = ∫ (F(z) − 1{z ≥ y})² dz = σ [ u (2Φ(u) − 1) + 2 φ(u) − 1/√π ],  u = (y − μ)/σ,

    with Φ, φ the standard normal cdf and density. It has the units of y; for a point mass it is |y − μ|.
    """
    vals = []
    for name, v in (("mean", mean), ("std", std), ("y", y)):
        v = v if isinstance(v, torch.Tensor) else torch.as_tensor(v, dtype=_DT)   # no float32 round trip
        if v.dtype == torch.bool or v.is_complex():
            raise TypeError(f"{name} must be real numbers, got dtype {v.dtype}")
        if not bool(torch.isfinite(v).all()):
            raise ValueError(f"{name} contains NaN or inf")
        vals.append(v.to(_DT))
    mu, sd, yy = vals
    check_same_device(mean=mu, std=sd, y=yy)
    if not bool((sd > 0).all()):
        raise ValueError("std must be > 0")
    try:
        mu, sd, yy = torch.broadcast_tensors(mu, sd, yy)
    except RuntimeError:
        raise ValueError(f"mean, std and y must broadcast, got shapes {tuple(mu.shape)}, {tuple(sd.shape)}, "
                         f"{tuple(yy.shape)}") from None
    u = (yy - mu) / sd
    cdf, pdf = 0.5 * torch.erfc(-u / math.sqrt(2)), torch.exp(-0.5 * u * u) / math.sqrt(2 * math.pi)
    return sd * (u * (2 * cdf - 1) + 2 * pdf - 1 / math.sqrt(math.pi))


def crps_ensemble(samples, y, *, fair: bool = True) -> torch.Tensor:
    """CRPS of an ensemble ``samples (n, m, ...)`` at ``y (n, ...)``, per element ``(n, ...)``.

    Energy form: ``CRPS(F, y) = E|X − y| − ½ E|X − X'|`` with X, X' independent draws of F. With m
    members, ``fair=True`` (default) uses ``(1/m) Σ|x_i − y| − Σ_{i≠j}|x_i − x_j| / (2m(m−1))``, an
    *unbiased* estimate of the CRPS of the law the members were drawn from (so ensembles of different
    sizes compare fairly); ``fair=False`` divides by 2m² instead: the exact CRPS of the empirical law.
    The pair sum costs O(m log m): with the members sorted, ``Σ_{i,j}|x_i − x_j| = 2 Σ_i (2i − m − 1) x_(i)``.
    """
    x, yy = _check_ensemble(samples, y)
    m = x.shape[1]
    xs = torch.sort(x, dim=1).values
    w = (2 * torch.arange(1, m + 1, dtype=_DT, device=x.device) - m - 1).reshape((1, m) + (1,) * (x.ndim - 2))
    pairs = 2 * (w * xs).sum(1)
    return (x - yy[:, None]).abs().mean(1) - pairs / (2 * m * ((m - 1) if fair else m))


def energy_score(samples, y, *, fair: bool = True) -> torch.Tensor:
    """Energy score (β = 1) of an ensemble ``samples (n, m, ...)`` at ``y (n, ...)``: one value per series.

    The trailing axes are flattened into one vector (a whole future, horizon × coordinates), and
    ``ES = E‖X − y‖ − ½ E‖X − X'‖`` (Euclidean norm), estimated like :func:`crps_ensemble`
    (``fair``: pairs over 2m(m−1), else 2m²). In one dimension it *is* the CRPS. O(m²) per series,
    in blocks of series so memory stays ~ 2²² pair distances.
    """
    x, yy = _check_ensemble(samples, y)
    n, m = x.shape[:2]
    x, yy = x.reshape(n, m, -1), yy.reshape(n, 1, -1)
    step = max(1, 2 ** 22 // (m * m))
    exact = "donot_use_mm_for_euclid_dist"                             # no ‖a‖² + ‖b‖² − 2ab cancellation
    pairs = torch.cat([torch.cdist(x[i:i + step], x[i:i + step], compute_mode=exact).sum((1, 2))
                       for i in range(0, n, step)])
    return (x - yy).norm(dim=-1).mean(1) - pairs / (2 * m * ((m - 1) if fair else m))


# ---------------------------------------------------------------------------- baselines
def seasonal_naive(history, horizon: int, period: int, n_samples: int = 100, seed: Seed = 0) -> Forecast:
    """Seasonal-naive forecast: "next season repeats the last one", ``ŷ_{T+h} = y_{T+h−P⌈h/P⌉}``.

    The ensemble treats the series as a seasonal random walk ``y_t = y_{t−P} + e_t`` and draws each
    e_t with replacement from that series' own seasonal differences ``r_t = y_t − y_{t−P}``
    (t = P+1..T; whole d-vectors, so cross-series correlation is kept), simulating recursively:
    ``Y_{T+h} = Y_{T+h−P} + e*`` (Y = y inside the history). So beyond one season the spread grows
    like a sum of ⌈h/P⌉ differences. Needs a history of length ≥ P + 1.
    """
    P = check_int(period, "period")
    y = _check_series(history, "history", min_length=P + 1)
    H_, m_ = check_int(horizon, "horizon"), check_int(n_samples, "n_samples")
    n, T, d = y.shape
    resid = y[:, P:] - y[:, :-P]                                         # (n, T−P, d)
    idx = torch.randint(0, T - P, (n, m_ * H_), generator=generator(seed))
    draws = torch.gather(resid, 1, idx[..., None].expand(-1, -1, d)).reshape(n, m_, H_, d)
    point, paths = list(y.unbind(1)), list(y[:, None].expand(-1, m_, -1, -1).unbind(2))
    for h in range(H_):
        point.append(point[-P])
        paths.append(paths[-P] + draws[:, :, h])
    return Forecast(torch.stack(point[T:], 1), torch.stack(paths[T:], 2))


class GaussianVAR:
    """A Gaussian VAR(p): ``y_t = c + Σ_{k=1}^p A_k y_{t−k} + e_t``, ``e_t ~ N(0, Σ)``, from :func:`fit_var`.

    ``intercept`` (d,), ``coefs`` (p, d, d) with ``coefs[k−1] = A_k``, ``noise_cov`` Σ (d, d).
    """

    def __init__(self, intercept: torch.Tensor, coefs: torch.Tensor, noise_cov: torch.Tensor):
        self.intercept, self.coefs, self.noise_cov = intercept, coefs, noise_cov
        self.order, self.d_obs = coefs.shape[0], coefs.shape[1]

    def _mean_step(self, lags: torch.Tensor) -> torch.Tensor:          # lags (..., p, d), most recent last
        return self.intercept + torch.einsum("kij,...kj->...i", self.coefs, lags.flip(-2))

    def forecast(self, history, horizon: int, n_samples: int = 100, seed: Seed = 0) -> Forecast:
        """Recursive forecast from the last p values of each history (length ≥ p): the point forecast
        iterates the mean map (noise 0, the conditional mean of a linear model); each ensemble member
        adds ``e ~ N(0, Σ)`` at every step and feeds its own draws back in. Returns a :class:`Forecast`."""
        y = _check_series(history, "history", d=self.d_obs, min_length=self.order)
        H_, m_ = check_int(horizon, "horizon"), check_int(n_samples, "n_samples")
        gen, L = generator(seed), torch.linalg.cholesky(self.noise_cov)
        lp, ls = y[:, -self.order:], y[:, None, -self.order:].expand(-1, m_, -1, -1)
        point, paths = [], []
        for _ in range(H_):
            p_next = self._mean_step(lp)
            s_next = self._mean_step(ls) + torch.randn(ls.shape[:2] + (self.d_obs,), generator=gen, dtype=_DT) @ L.T
            lp, ls = torch.cat([lp[:, 1:], p_next[:, None]], 1), torch.cat([ls[:, :, 1:], s_next[:, :, None]], 2)
            point.append(p_next)
            paths.append(s_next)
        return Forecast(torch.stack(point, 1), torch.stack(paths, 2))


def fit_var(histories, order: int) -> GaussianVAR:
    """Least-squares VAR(p) on all windows of all series (pooled: one model for every series).

    Rows t = p+1..T of every series: regress ``y_t`` on ``(1, y_{t−1}, …, y_{t−p})`` by least squares
    (the Gaussian maximum-likelihood estimate given the first p values). Σ is the residual covariance
    ``EᵀE / (N − 1 − p·d)`` over the N rows (divided by the residual degrees of freedom).
    """
    p = check_int(order, "order")
    y = _check_series(histories, "histories", min_length=p + 1)
    n, T, d = y.shape
    n_rows, n_feat = n * (T - p), 1 + p * d
    if n_rows <= n_feat + d:
        raise ValueError(f"histories give {n_rows} regression rows but a VAR({p}) in {d} dims needs more than "
                         f"{n_feat + d}: give more or longer series, or lower order")
    lags = torch.cat([y[:, p - k:T - k] for k in range(1, p + 1)], -1).reshape(n_rows, p * d)
    X = torch.cat([torch.ones(n_rows, 1, dtype=_DT), lags], 1)
    target = y[:, p:].reshape(n_rows, d)
    beta = torch.linalg.lstsq(X, target).solution                     # (1 + p d, d)
    resid = target - X @ beta
    cov = resid.T @ resid / (n_rows - n_feat)
    coefs = beta[1:].reshape(p, d, d).transpose(1, 2)                  # A_k[i, j]: effect of y_{t−k, j} on y_{t, i}
    return GaussianVAR(beta[0], coefs.contiguous(), 0.5 * (cov + cov.T))
