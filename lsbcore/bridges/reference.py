"""Reference processes: the "prior" dynamics a Schrödinger bridge stays close to.

Every reference here is a scalar linear SDE (the same coefficients in each coordinate)

    dX_t = a(t) X_t dt + g(t) dW_t,

so its transition kernels are Gaussian in closed form (docs/theory.md §1, §2, §4):

    X_t | X_s = x  ~  N( α(s, t) x,  v(s, t) I ),   α(s, t) = exp(∫_s^t a),
                                                    v(s, t) = ∫_s^t α(u, t)² g(u)² du.

* :class:`Brownian` — ``dX = σ dW``: α = 1, v = σ² (t − s).
* :class:`OU` — ``dX = c X dt + g dW``: α = e^{c(t−s)}, v = g² (e^{2c(t−s)} − 1) / (2c).
* :class:`VP` — ``dX = −½ β_t X dt + √β_t dW`` with β_t = β_min + t^{β_r} (β_max − β_min):
  α = exp(−½ ∫_s^t β), v = 1 − α² (the variance-preserving SDE of score-based models and VSDM).

Pinning both ends gives the reference *bridge* ``X_t | X_0, X_1``, Gaussian as well; for Brownian
motion it is the Brownian bridge ``X_t = (1−t) X0 + t X1 + σ √(t(1−t)) Z`` (:func:`brownian_bridge_sample`).
The references expose the :class:`~lsbcore.bridges.Bridge` face (``drift``, ``diffusion``), so the
sampler of :mod:`lsbcore.sde` runs them; :class:`BrownianBridge` is the bridge pinned at ``x1``
(and optionally started at ``x0``), with drift ``(x1 − x)/(1 − t)`` and exact marginals.

Notebook 02 §"Brownian bridges" explains all of this.
"""
from __future__ import annotations

import math
from numbers import Real

import torch

from ..bridge import Bridge
from ..utils import Seed, as_real_tensor, check_int, check_points, check_positive, check_scale, check_same_device, check_state, check_time, generator

_LOG2PI = math.log(2 * math.pi)
_C_MAX = 20.0  # OU: e^(4|c|) (a product of two transition variances) must stay a float32


def _coef_time(t, name: str = "t") -> torch.Tensor:
    """A time for the coefficient functions (α, v, β, ∫β): checked by :func:`~lsbcore.utils.check_time`,
    returned in its own shape (a float → a 0-d tensor of the default dtype, a tensor keeps its dtype)."""
    shape = t.shape if isinstance(t, torch.Tensor) else ()
    return check_time(t, name).reshape(shape)


def _check_order(s: torch.Tensor, t: torch.Tensor) -> None:
    if bool((s > t).any()):
        raise ValueError("s must be ≤ t: the transition X_t | X_s runs forward in time")


class LinearReference(Bridge):
    """``dX = a(t) X dt + g(t) dW`` with closed-form Gaussian transitions (base of the references).

    Subclasses define ``a(t)``, ``diffusion(t)`` (= g(t)), ``log_mean_coef(s, t)`` (= ∫_s^t a) and
    ``transition_var(s, t)``; everything else (kernels, bridge sampling) follows. Notebook 02
    §"Brownian bridges". As a Bridge a reference has only its forward ``drift``: its time reversal
    and its score depend on a law at t = 0, which a reference does not fix.
    """

    unavailable = {
        "backward_drift": "a reference process fixes no law at t=0, and its time reversal depends on one",
        "score": "a reference process fixes no law at t=0, so its marginals (and their score) are unknown",
        "start": "a reference process has no law of its own at t=0: pass start points to lsbcore.sample",
    }

    def a(self, t):
        raise NotImplementedError

    def log_mean_coef(self, s, t) -> torch.Tensor:
        """∫_s^t a(u) du, so that the mean coefficient is α(s, t) = exp of it."""
        raise NotImplementedError

    def transition_var(self, s, t) -> torch.Tensor:
        """v(s, t): the per-coordinate variance of X_t given X_s."""
        raise NotImplementedError

    def mean_coef(self, s, t) -> torch.Tensor:
        """α(s, t) = exp(∫_s^t a): ``E[X_t | X_s = x] = α(s, t) x``."""
        return torch.exp(self.log_mean_coef(_coef_time(s, "s"), _coef_time(t)))

    # ------------------------------------------------------------------ Bridge face
    def drift(self, x: torch.Tensor, t) -> torch.Tensor:
        """The reference drift a(t) x (x and t are checked at the door by the Bridge face)."""
        return self.a(check_time(t, "t", batch=x.shape[0], like=x)) * x

    # ------------------------------------------------------------------ transition kernels
    def _st(self, x, s, t):
        x = check_points(x, "x")
        s = check_time(s, "s", batch=x.shape[0], like=x)
        t = check_time(t, "t", batch=x.shape[0], like=x)
        _check_order(s, t)
        return x, s, t

    def transition_mean(self, x, s, t) -> torch.Tensor:
        """E[X_t | X_s = x] = α(s, t) x, shape ``(batch, dim)``."""
        x, s, t = self._st(x, s, t)
        return self.mean_coef(s, t) * x

    def transition_sample(self, x, s, t, seed: Seed = 0) -> torch.Tensor:
        """One draw of X_t given X_s = x (row by row): α(s, t) x + √v(s, t) Z."""
        x, s, t = self._st(x, s, t)
        z = torch.randn(x.shape, generator=generator(seed, x.device), device=x.device, dtype=x.dtype)
        return self.mean_coef(s, t) * x + self.transition_var(s, t).sqrt() * z

    def transition_log_prob(self, y, x, s, t) -> torch.Tensor:
        """log p(X_t = y | X_s = x), shape ``(batch,)``; needs s < t (v > 0)."""
        x, s, t = self._st(x, s, t)
        y = check_points(y, "y", dim=x.shape[1])
        check_same_device(x=x, y=y)
        if y.shape[0] != x.shape[0]:
            raise ValueError(f"y has {y.shape[0]} rows but x has {x.shape[0]}")
        v = self.transition_var(s, t)
        if bool((v <= 0).any()):
            raise ValueError("the transition variance is 0 (s = t): log_prob needs s < t")
        d = x.shape[1]
        r = y - self.mean_coef(s, t) * x
        return (-0.5 * (r**2).sum(1, keepdim=True) / v - 0.5 * d * (torch.log(v) + _LOG2PI)).squeeze(1)

    # ------------------------------------------------------------------ the reference bridge
    def bridge_mean(self, x0, x1, t) -> torch.Tensor:
        """E[X_t | X_0 = x0, X_1 = x1] = α(0,t) x0 + α(t,1) v(0,t)/v(0,1) (x1 − α(0,1) x0)."""
        x0, x1, t = self._pins(x0, x1, t)
        return self._bridge_mean(x0, x1, t)

    def bridge_var(self, t) -> torch.Tensor:
        """Var[X_t | X_0, X_1] = v(0,t) v(t,1) / v(0,1) per coordinate (σ² t(1−t) for Brownian)."""
        t = check_time(t, "t")
        return self._bridge_var(t)

    def bridge_sample(self, x0, x1, t, seed: Seed = 0) -> torch.Tensor:
        """X_t drawn from the reference bridge pinned at X_0 = x0 and X_1 = x1 (row by row).

        For Brownian motion: ``(1−t) x0 + t x1 + σ √(t(1−t)) Z``. ``t`` may be one time or one per row.
        """
        x0, x1, t = self._pins(x0, x1, t)
        z = torch.randn(x0.shape, generator=generator(seed, x0.device), device=x0.device, dtype=x0.dtype)
        return self._bridge_mean(x0, x1, t) + self._bridge_var(t).sqrt() * z

    def _pins(self, x0, x1, t):
        x0 = check_points(x0, "x0")
        x1 = check_points(x1, "x1", dim=x0.shape[1])
        check_same_device(x0=x0, x1=x1)
        if x1.shape[0] != x0.shape[0]:
            raise ValueError(f"x1 has {x1.shape[0]} rows but x0 has {x0.shape[0]}")
        return x0, x1.to(x0.dtype), check_time(t, "t", batch=x0.shape[0], like=x0)

    def _bridge_mean(self, x0, x1, t):
        zero, one = torch.zeros_like(t), torch.ones_like(t)
        w = self.mean_coef(t, one) * self.transition_var(zero, t) / self.transition_var(zero, one)
        return self.mean_coef(zero, t) * x0 + w * (x1 - self.mean_coef(zero, one) * x0)

    def _bridge_var(self, t):
        zero, one = torch.zeros_like(t), torch.ones_like(t)
        return self.transition_var(zero, t) * self.transition_var(t, one) / self.transition_var(zero, one)


class Brownian(LinearReference):
    """Brownian motion ``dX = σ dW`` (the reference of the classical Schrödinger problem, ε = 2σ²).

    Transition ``X_t | X_s ~ N(x, σ²(t−s) I)``; bridge ``(1−t) x0 + t x1 + σ√(t(1−t)) Z``.
    Notebook 02 §"Brownian bridges".
    """

    def __init__(self, sigma: float = 1.0):
        self.sigma = check_scale(sigma, "sigma")

    def a(self, t):
        return torch.zeros_like(t)

    def drift(self, x, t):
        return torch.zeros_like(x)

    def log_mean_coef(self, s, t):
        return torch.zeros_like(t - s)

    def transition_var(self, s, t):
        return self.sigma**2 * (t - s)


class OU(LinearReference):
    """Ornstein–Uhlenbeck ``dX = c X dt + g dW`` (docs/theory.md §2; VSDM's Gaussian check uses c = −2, g = 2).

    α(s, t) = e^{c(t−s)}, v(s, t) = g² (e^{2c(t−s)} − 1)/(2c) (→ g²(t−s) as c → 0).
    Notebook 02 §"Brownian bridges".
    """

    def __init__(self, c: float = -1.0, g: float = 1.0):
        if isinstance(c, bool) or not isinstance(c, Real):
            raise TypeError(f"c must be a real number (the OU rate), got {type(c).__name__}")
        if not (math.isfinite(c) and abs(c) <= _C_MAX):
            raise ValueError(f"c must be a finite rate with |c| ≤ {_C_MAX:g}, got {c}: beyond it e^(4|c|) (a product "
                             f"of two transition variances of the bridge) leaves float32")
        self.c = float(c)
        self.sigma = check_scale(g, "g")

    def a(self, t):
        return torch.full_like(t, self.c)

    def log_mean_coef(self, s, t):
        return self.c * (t - s)

    def transition_var(self, s, t):
        dt = t - s
        if self.c == 0.0:
            return self.sigma**2 * dt
        return self.sigma**2 * torch.expm1(2 * self.c * dt) / (2 * self.c)

    def __repr__(self):
        return f"OU(c={self.c}, g={self.sigma})"


class VP(LinearReference):
    """The variance-preserving SDE ``dX = −½ β_t X dt + √β_t dW`` (score-based models, VSDM, SB-as-VAE).

    Schedule ``β_t = β_min + t^{β_r} (β_max − β_min)`` with closed-form integral
    ``∫_0^t β = β_min t + (β_max − β_min) t^{β_r+1}/(β_r+1)``; mean coefficient
    ``α(s, t) = exp(−½ ∫_s^t β)`` and variance ``v(s, t) = 1 − α(s, t)²``, so N(0, I) is invariant.
    Notebook 02 §"Brownian bridges" (and notebooks 05–06 use it as their forward process).
    """

    def __init__(self, beta_min: float = 0.1, beta_max: float = 20.0, beta_r: float = 1.0):
        self.beta_min = check_positive(beta_min, "beta_min")
        self.beta_max = check_positive(beta_max, "beta_max")
        if self.beta_max > 1e6:
            raise ValueError(f"beta_max must be ≤ 1e6 (the drift −½β x must stay a float32), got {self.beta_max:g}")
        self.beta_r = check_positive(beta_r, "beta_r")
        if self.beta_max < self.beta_min:
            raise ValueError(f"beta_max must be ≥ beta_min, got {beta_max} < {beta_min}")
        self.sigma = math.sqrt(self.beta_min)  # g(0); the sampler calls diffusion(t)

    def beta(self, t) -> torch.Tensor:
        """β_t = β_min + t^{β_r} (β_max − β_min)."""
        t = _coef_time(t)
        return self.beta_min + t.clamp(min=0) ** self.beta_r * (self.beta_max - self.beta_min)

    def int_beta(self, t) -> torch.Tensor:
        """∫_0^t β_u du in closed form."""
        t = _coef_time(t)
        r = self.beta_r
        return self.beta_min * t + (self.beta_max - self.beta_min) * t.clamp(min=0) ** (r + 1) / (r + 1)

    def a(self, t):
        return -0.5 * self.beta(t)

    def diffusion(self, t):
        return self.beta(t).sqrt()

    def log_mean_coef(self, s, t):
        return -0.5 * (self.int_beta(t) - self.int_beta(s))

    def transition_var(self, s, t):
        return -torch.expm1(2 * self.log_mean_coef(_coef_time(s, "s"), _coef_time(t)))

    def __repr__(self):
        return f"VP(beta_min={self.beta_min}, beta_max={self.beta_max}, beta_r={self.beta_r})"


def brownian_bridge_sample(x0, x1, t, sigma: float = 1.0, seed: Seed = 0) -> torch.Tensor:
    """``X_t = (1−t) X0 + t X1 + σ √(t(1−t)) Z``: one point on the Brownian bridge per pair (X0, X1).

    ``t`` is one time or one per row (shape ``(batch,)`` or ``(batch, 1)``). With pairs drawn from a
    coupling π this samples the mixture of bridges ∫ BB(x0, x1) dπ (docs/theory.md §1, §2).
    Notebook 02 §"Brownian bridges".
    """
    return Brownian(sigma).bridge_sample(x0, x1, t, seed=seed)


def _pin(v, name: str, dim: int | None = None) -> torch.Tensor:
    """A pin point: a vector ``(dim,)`` becomes ``(1, dim)``; a matrix ``(batch, dim)`` is one pin per row."""
    v = as_real_tensor(v, name)
    if not torch.is_floating_point(v):
        v = v.to(torch.get_default_dtype())
    if v.ndim == 1:
        v = v.reshape(1, -1)
    return check_points(v, name, dim=dim)


class BrownianBridge(Bridge):
    """σW conditioned to hit ``x1`` at t = 1 (optionally started at ``x0``): a closed-form test bridge.

    Forward drift ``(x1 − x)/(1 − t)``; with ``x0`` given, the backward drift ``(x0 − x)/t`` and the
    marginals ``N((1−t) x0 + t x1, σ² t(1−t) I)`` (:meth:`mean`, :meth:`var`). ``x0``/``x1`` are
    vectors ``(dim,)`` or one pin per row ``(batch, dim)``. The drifts are singular at t = 1 and t = 0
    respectively: sample on [0, 1) forward (Euler–Maruyama never evaluates the end point).
    Notebook 02 §"Brownian bridges".
    """

    data_end = 1

    def __init__(self, x1, sigma: float = 1.0, x0=None):
        self.sigma = check_scale(sigma, "sigma")
        self.x1 = _pin(x1, "x1")
        self.dim = self.x1.shape[1]
        self.x0 = None
        if x0 is not None:
            self.x0 = _pin(x0, "x0", dim=self.dim).to(self.x1.dtype)
            check_same_device(x0=self.x0, x1=self.x1)
            if self.x0.shape[0] not in (1, self.x1.shape[0]) and self.x1.shape[0] != 1:
                raise ValueError(f"x0 has {self.x0.shape[0]} pins but x1 has {self.x1.shape[0]}")
        else:
            why = "its start is not pinned, so its law at t=0 is unknown: pass x0=..."
            self.unavailable = {"backward_drift": why, "score": why, "start": why}

    def _prepare(self, x, t, singular: float):
        """x and t checked; t = ``singular`` (1 forward, 0 backward) is refused where it can be seen
        without a device sync (a float, or a CPU tensor)."""
        x = check_state(x, "x", dim=self.dim)
        t = check_time(t, "t", batch=x.shape[0], like=x)
        if t.device.type == "cpu" and bool((t == singular).any()):
            raise ValueError(f"t = {singular:g} is where this drift is singular (it divides by "
                             f"{'1 − t' if singular else 't'}): stop short of it, e.g. t_gap > 0")
        return x, t

    def drift(self, x, t):
        """(x1 − x)/(1 − t), singular at t = 1."""
        x, t = self._prepare(x, t, 1.0)
        return (self.x1.to(x) - x) / (1 - t)

    def backward_drift(self, x, t):
        """(x0 − x)/t, singular at t = 0 (needs ``x0``)."""
        if self.x0 is None:
            raise self._unavailable("backward_drift")
        x, t = self._prepare(x, t, 0.0)
        return (self.x0.to(x) - x) / t

    def start(self, n: int, *, seed: Seed = 0, device=None) -> torch.Tensor:
        """``n`` copies of the pinned start ``x0`` (a point mass; ``n`` = the number of pins if one per row)."""
        if self.x0 is None:
            raise self._unavailable("start")
        n = check_int(n, "n")
        if self.x0.shape[0] not in (1, n):
            raise ValueError(f"n must be {self.x0.shape[0]} (one start per pinned row), got {n}")
        x0 = self.x0.expand(n, self.dim).clone()
        return x0 if device is None else x0.to(device)

    def mean(self, t) -> torch.Tensor:
        """(1−t) x0 + t x1 (needs ``x0``)."""
        if self.x0 is None:
            raise self._unavailable("start")
        t = check_time(t, "t", like=self.x1)
        return (1 - t) * self.x0 + t * self.x1

    def var(self, t) -> torch.Tensor:
        """σ² t(1−t), the per-coordinate variance of X_t."""
        t = check_time(t, "t", like=self.x1)
        return self.sigma**2 * t * (1 - t)

    def __repr__(self):
        return f"BrownianBridge(dim={self.dim}, sigma={self.sigma}, pinned_start={self.x0 is not None})"
