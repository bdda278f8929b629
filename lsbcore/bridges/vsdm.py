"""VSDM: variational Schrödinger diffusion models (Deng et al., ICML 2024), in miniature.

The forward process is a *multivariate* linear SDE with a variance-preserving base (docs/theory.md §6):

    dX = −½ β_t D X dt + √β_t dW,    D = I − 2A,    A = U diag(s) Vᵀ  (U, V orthogonal),

with the schedule β_t = β_min + t^{β_r}(β_max − β_min). At s = 0, A = 0 and this is the VP-SDE of
score-based models. Here A is constant in time, which makes the transitions exact: with
τ = ∫_0^t β (so dX = −½ D X dτ + dW_τ),

    X_t | X_0 ~ N(Φ_t X_0, Σ_t),   Φ_t = exp(−½ τ D),   dΣ/dτ = −½(DΣ + ΣDᵀ) + I  (Lyapunov),

both from matrix exponentials (Van Loan's trick, :func:`lsbcore.linear_sde.linear_sde_moments`).
The backward score is learned simulation-free from X_t = Φ_t X_0 + L_t ε (Σ_t = L_t L_tᵀ):
∇log p(X_t | X_0) = −L_t^{−T} ε. The prior is adaptive, N(0, Σ_1), and A is updated by stochastic
approximation on backward trajectories simulated with the current model (:func:`update_A`), which
lets the forward noise follow the data's shape. Sampling (SDE and probability-flow ODE) goes through
the shared sampler (:func:`lsbcore.generate`: the data sit at t = 0, generation starts from the
prior at t = 1). The Gaussian check and the evaluation at several NFEs are in
:mod:`lsbcore.bridges.vsdm_eval`. Notebook 06 explains all of it.

Reading notes (ours, not the paper's): A is one constant matrix here (the paper's A_t varies with t:
:class:`lsbcore.bridges.vsdm_time.TimeVaryingForward` offers a piecewise-constant A_t through the hooks
``A_at``/``D_at``, with exact transitions; training is in :mod:`lsbcore.bridges.vsdm_fit`), and
the score network predicts the noise ε, i.e. the backward-score loss ‖ẑ_θ − √β(−L^{−T}ε − A x)‖² of
docs/theory.md §6 reweighted by L Lᵀ/β, which has the same minimiser and is well conditioned near t = 0.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn.utils.parametrizations import orthogonal

from ..bridge import Bridge
from ..linear_sde import cholesky, linear_sde_moments, noise_score
from ..utils import Seed, check_int, check_points, check_positive, check_seed, check_time, generator, time_column
from .reference import VP

__all__ = ["LinearForward", "VSDM", "backward_score_loss", "update_A"]

_DT = torch.float64


def _orthogonal_identity(dim: int) -> nn.Module:
    """A d×d orthogonal matrix (``.weight``), parametrised so that gradient steps keep it orthogonal,
    starting at the identity (as upstream): A = U diag(s) Vᵀ then starts symmetric, and rotates only
    as far as the data ask."""
    layer = nn.Linear(dim, dim, bias=False, dtype=_DT)
    with torch.no_grad():
        layer.weight.copy_(torch.eye(dim, dtype=_DT))
    return orthogonal(layer)


class LinearForward(nn.Module):
    """The forward SDE ``dX = −½ β_t (I − 2A) X dt + √β_t dW`` with ``A = U diag(s) Vᵀ``.

    U and V are orthogonal by construction (``torch.nn.utils.parametrizations.orthogonal``) and start
    at the identity, s starts at 0 (the VP-SDE) and is kept in [−s_max, s_max]. Parameters are
    float64; ``seed`` is checked and kept (``self.seed``) for callers that derive other draws from it.
    Notebook 06 §1 "Theory" and §2.1, docs/theory.md §6.
    """

    def __init__(self, dim: int, *, beta_min: float = 0.1, beta_max: float = 10.0, beta_r: float = 1.7,
                 s_max: float = 1.0, seed: int = 0):
        super().__init__()
        self.dim = check_int(dim, "dim")
        self.schedule = VP(beta_min, beta_max, beta_r)   # checks the β's: finite, > 0, β_max ≥ β_min
        self.s_max = check_positive(s_max, "s_max")
        self.seed = check_seed(seed)
        self.U, self.V = _orthogonal_identity(dim), _orthogonal_identity(dim)
        self.s = nn.Parameter(torch.zeros(dim, dtype=_DT))

    # ---------------------------------------------------------------- coefficients
    def A(self) -> torch.Tensor:
        """A = U diag(s) Vᵀ (d, d), float64."""
        return self.U.weight @ torch.diag(self.s) @ self.V.weight.T

    def D(self) -> torch.Tensor:
        """D = I − 2A."""
        return torch.eye(self.dim, dtype=_DT, device=self.s.device) - 2 * self.A()

    def _key(self):
        return tuple(p._version for p in self.parameters()) + (str(self.s.device),)

    def frozen_D(self) -> torch.Tensor:
        """D without gradient, cached until a parameter changes (the sampler calls it at every step)."""
        key = self._key()
        if getattr(self, "_D_key", None) != key:
            with torch.no_grad():
                self._D = self.D()
            self._D_key = key
        return self._D

    def s_pieces(self) -> list:
        """The singular-value parameters s of A (one here; one per piece for a time-varying A_t)."""
        return [self.s]

    def A_at(self, t) -> torch.Tensor:
        """A_t at the times ``t`` (a 1-D float64 tensor of n times): (n, d, d), differentiable.

        Constant here (A_t = A); :class:`lsbcore.bridges.vsdm_time.TimeVaryingForward` overrides it."""
        t = torch.as_tensor(t, dtype=_DT, device=self.s.device).reshape(-1)
        return self.A().expand(t.shape[0], self.dim, self.dim)

    time_varying = False   #: True for forwards whose A depends on t (then D_at differs between times)

    def D_at(self, t) -> torch.Tensor:
        """D_t = I − 2A_t at the times ``t`` (a 1-D tensor of n times), without gradient: (n, d, d), what
        the sampler's drift needs at each step. Constant here: the cached :meth:`frozen_D`, expanded."""
        n = torch.as_tensor(t).reshape(-1).shape[0]
        return self.frozen_D().expand(n, self.dim, self.dim)

    def beta(self, t) -> torch.Tensor:
        """β_t = β_min + t^{β_r}(β_max − β_min), for t in [0, 1] (a float or a tensor, shape kept)."""
        check_time(t.reshape(-1) if isinstance(t, torch.Tensor) else t)
        return self.schedule.beta(t)

    def int_beta(self, t) -> torch.Tensor:
        """τ(t) = ∫_0^t β_u du, for t in [0, 1] (a float or a tensor, shape kept)."""
        check_time(t.reshape(-1) if isinstance(t, torch.Tensor) else t)
        return self.schedule.int_beta(t)

    @torch.no_grad()
    def clamp_(self) -> None:
        """Keep s in [−s_max, s_max] (called after each update of A)."""
        self.s.clamp_(-self.s_max, self.s_max)

    # ---------------------------------------------------------------- transitions
    def transition(self, t):
        """``(Φ_t, Σ_t)`` of X_t | X_0 ~ N(Φ_t X_0, Σ_t) for times t in [0, 1] (a float or a 1-D
        tensor of n times): (n, d, d) each.

        Exact for constant A (matrix exponentials in the time τ = ∫β). Differentiable in A.
        Notebook 06 §2.1 "The transitions in closed form".
        """
        t = check_time(torch.as_tensor(t, dtype=_DT, device=self.s.device).reshape(-1)).reshape(-1)
        D = self.D() if torch.is_grad_enabled() else self.frozen_D()
        z = torch.zeros(self.dim, dtype=_DT, device=D.device)
        mom = linear_sde_moments(-0.5 * D, z, 1.0, z, torch.zeros_like(D), self.int_beta(t))
        return mom.Phi, mom.noise_cov

    def table(self, t_gap: float = 1e-3, n_grid: int = 512):
        """``(t, Φ, L)`` on a uniform grid of ``n_grid`` times in [t_gap, 1] (L: Cholesky factor of Σ_t).

        Cached until a parameter changes (in-place optimiser steps bump the parameters' versions), so
        training draws X_t by table look-up instead of a matrix exponential per sample.
        Notebook 06 §1 "Theory" (backward score, simulation-free).
        """
        t_gap = _check_gap(t_gap)
        n_grid = check_int(n_grid, "n_grid", minimum=2)
        key = (t_gap, n_grid) + self._key()
        if getattr(self, "_table_key", None) != key:
            with torch.no_grad():
                t = torch.linspace(t_gap, 1.0, n_grid, dtype=_DT, device=self.s.device)
                Phi, Sig = self.transition(t)
                self._table = (t, Phi, torch.linalg.cholesky(Sig))
            self._table_key = key
        return self._table

    def prior_cov(self) -> torch.Tensor:
        """Σ_1 = Cov(X_1 | X_0): the covariance of the adaptive prior N(0, Σ_1)."""
        return self.transition(torch.ones(1, dtype=_DT, device=self.s.device))[1][0]

    def sample_xt(self, x0, t, seed: Seed = 0):
        """``(x_t, ε, L_t)``: X_t = Φ_t x0 + L_t ε, one time for all rows or one per row (``t`` a float,
        ``(n,)`` or ``(n, 1)``, in [0, 1]). Notebook 06 §1 "Theory" (backward score, simulation-free)."""
        x0 = check_points(x0, "x0", dim=self.dim)
        if isinstance(t, torch.Tensor) and t.ndim == 2 and t.shape[1] != 1:
            raise ValueError(f"t must be a float, (n,) or (n, 1), got shape {tuple(t.shape)}")
        t = check_time(torch.as_tensor(t).reshape(-1) if isinstance(t, torch.Tensor) else t, batch=x0.shape[0],
                       like=torch.empty(0, dtype=_DT, device=x0.device)).reshape(-1)
        if t.device.type == "cpu" and bool((t == 0).any()):
            raise ValueError("t must be > 0: at t = 0 the transition is a point mass (Σ_0 = 0)")
        Phi, Sig = self.transition(t)
        L = cholesky(Sig)
        eps = torch.randn(x0.shape, generator=generator(seed, x0.device), device=x0.device, dtype=_DT)
        xt = (Phi @ x0.to(_DT)[..., None])[..., 0] + (L @ eps[..., None])[..., 0]
        return xt.to(x0.dtype), eps.to(x0.dtype), L

    def extra_repr(self) -> str:
        sch = self.schedule
        return f"dim={self.dim}, beta_min={sch.beta_min}, beta_max={sch.beta_max}, beta_r={sch.beta_r}"


class VSDM(Bridge):
    """The VSDM bridge: forward ``LinearForward`` + an ε-network for the backward score.

    Bridge face on [0, 1] (data at t = 0, ``data_end = 0``; prior at t = 1):
    drift = −½ β_t D x, diffusion = √β_t, score = −L_t^{−T} ε_θ(x, t),
    backward_drift = β_t score − drift, velocity = −½ β_t (D x + score) (the PF-ODE).
    :meth:`start` draws from the adaptive prior N(0, Σ_1); generation (:func:`lsbcore.generate`, or
    :meth:`sample`) integrates back to ``t_gap``. Notebook 06 §1 "Theory" (sampling), docs/theory.md §6.
    """

    data_end = 0

    def __init__(self, forward: LinearForward, net: nn.Module, *, t_gap: float = 1e-3):
        if not isinstance(forward, LinearForward):
            raise TypeError(f"forward must be a LinearForward, got {type(forward).__name__}")
        if not isinstance(net, nn.Module):
            raise TypeError(f"net must be a torch.nn.Module, got {type(net).__name__}")
        self.forward, self.net = forward, net
        self.t_gap = _check_gap(t_gap)
        self.dim = forward.dim
        self.sigma = math.sqrt(forward.schedule.beta_min)

    def diffusion(self, t):
        """g(t) = √β_t."""
        return self.forward.beta(t).sqrt()

    def _noise_cov(self, times):
        with torch.no_grad():
            return self.forward.transition(times.to(self.forward.s.device))[1]

    def _Dx(self, x, tcol):
        # D_t x; one D for the whole batch unless A varies in time and the rows have different times
        # (the sampler passes one time for all rows: a stride-0 column)
        if not self.forward.time_varying or tcol.stride(0) == 0 or tcol.shape[0] == 1:
            return x @ self.forward.D_at(tcol[:1, 0])[0].to(x.dtype).T
        return (self.forward.D_at(tcol[:, 0]).to(x.dtype) @ x[..., None])[..., 0]

    def _drift(self, x, tcol, beta):
        return -0.5 * beta * self._Dx(x, tcol)

    def drift(self, x, t):
        """−½ β_t D x: the forward (noising) drift."""
        tcol = time_column(t, x)
        return self._drift(x, tcol, self.forward.beta(tcol).to(x.dtype))

    def score(self, x, t):
        """∇log ρ_t(x) ≈ −L_t^{−T} ε_θ(x, t) (:func:`lsbcore.linear_sde.noise_score`)."""
        return noise_score(self.net, x, t, self._noise_cov)

    def backward_drift(self, x, t):
        """β_t score − drift: the generative drift in reverse time."""
        tcol = time_column(t, x)
        beta = self.forward.beta(tcol).to(x.dtype)
        return beta * noise_score(self.net, x, tcol, self._noise_cov) - self._drift(x, tcol, beta)

    def velocity(self, x, t):
        """−½ β_t (D x + score): the probability-flow ODE (one expression, cheaper than the default)."""
        tcol = time_column(t, x)
        beta = self.forward.beta(tcol).to(x.dtype)
        return -0.5 * beta * (self._Dx(x, tcol) + noise_score(self.net, x, tcol, self._noise_cov))

    def start(self, n: int, *, seed: Seed = 0, device=None) -> torch.Tensor:
        """n draws from the adaptive prior N(0, Σ_1) at t = 1 (float32 unless the net is float64)."""
        n = check_int(n, "n")
        dev = torch.device(device) if device is not None else self.forward.s.device
        with torch.no_grad():
            L = torch.linalg.cholesky(self.forward.prior_cov())
        z = torch.randn(n, self.dim, generator=generator(seed, dev), device=dev, dtype=_DT)
        param = next(self.net.parameters(), None)
        return (z @ L.to(dev).T).to(param.dtype if param is not None else torch.get_default_dtype())

    @torch.no_grad()
    def sample(self, n: int, *, method: str = "ode", steps: int = 50, seed: Seed = 0, keep_traj: bool = False):
        """Prior → data (t = 1 → t_gap): :func:`lsbcore.generate` on the model's device, ``method="ode"``
        (Heun, NFE = 2·steps) or ``"sde"`` (Euler–Maruyama, NFE = steps).

        Returns the :class:`lsbcore.sde.SampleResult` (``.x``, ``.traj``, ``.nfe``). Notebook 06 §2.3–2.4.
        """
        from ..sde import generate

        return generate(self, n, method=method, steps=steps, t_gap=self.t_gap, seed=seed,
                        device=self.forward.s.device, keep_traj=keep_traj)

    def __repr__(self):
        return f"VSDM(dim={self.dim}, {self.forward.extra_repr()}, t_gap={self.t_gap})"


def backward_score_loss(forward: LinearForward, net: nn.Module, x0, *, t_gap: float = 1e-3,
                        n_grid: int = 512, seed: Seed = 0) -> torch.Tensor:
    """The simulation-free backward-score loss in noise-prediction form: E‖ε_θ(X_t, t) − ε‖².

    t uniform on a grid of ``n_grid`` times in [t_gap, 1] (:meth:`LinearForward.table`),
    X_t = Φ_t x0 + L_t ε (exact transition); A is held fixed (no gradient).
    Notebook 06 §1 "Theory" (backward score, simulation-free), docs/theory.md §6.
    """
    if not isinstance(forward, LinearForward):
        raise TypeError(f"forward must be a LinearForward, got {type(forward).__name__}")
    if not callable(net):
        raise TypeError(f"net must be callable (x, t) -> noise, got {type(net).__name__}")
    x0 = check_points(x0, "x0", dim=forward.dim)
    gen = generator(seed, x0.device)
    grid, Phi, L = forward.table(t_gap, n_grid)
    idx = torch.randint(0, grid.shape[0], (x0.shape[0],), generator=gen, device=x0.device)
    eps = torch.randn(x0.shape, generator=gen, device=x0.device, dtype=_DT)
    xt = (Phi[idx] @ x0.to(_DT)[..., None])[..., 0] + (L[idx] @ eps[..., None])[..., 0]
    pred = net(xt.to(x0.dtype), grid[idx].to(x0.dtype)[:, None])
    eps = eps.to(x0.dtype)
    return ((pred - eps) ** 2).sum(-1).mean()


def update_A(bridge: VSDM, optimizer: torch.optim.Optimizer, *, n: int = 256, steps: int = 20,
             zeta: float = 1.0, seed: Seed = 0) -> float:
    """One stochastic-approximation step on A from simulated backward trajectories.

    Simulate the backward SDE of the current model from the prior (``steps`` Euler–Maruyama steps,
    ``n`` paths, no gradient), then take one optimiser step on

        Σ_j Δt · mean[ ½‖z_f‖² + z_f·ẑ + ζ β_j tr A_j ],   z_f = √β_j A_j x_j,   A_j = A_{t_j},
        ẑ = √β_j (score(x_j, t_j) − A_j x_j)   (held fixed),

    the forward part of the SB-FBSDE objective with ∇·z_f = √β tr A (docs/theory.md §6). With ζ = 1 the
    minimiser in A is the one whose forward score matches the backward model on its own trajectories.
    Returns the objective's value. Notebook 06 §1 "Theory" (updating A).
    """
    if not isinstance(bridge, VSDM):
        raise TypeError(f"bridge must be a VSDM, got {type(bridge).__name__}")
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}")
    n = check_int(n, "n")
    steps = check_int(steps, "steps")
    zeta = check_positive(zeta, "zeta", allow_zero=True)
    fwd = bridge.forward
    res = bridge.sample(n, method="sde", steps=steps, seed=seed, keep_traj=True)
    xs = res.traj[:-1].to(_DT)                    # states at t_j (t from 1 down to t_gap + h)
    ts = res.times[:-1].to(_DT)
    dt = float(1 - bridge.t_gap) / steps
    beta = fwd.beta(ts)                           # (J,)
    with torch.no_grad():
        A0 = fwd.A_at(ts)                         # (J, d, d): A_t at each step's time
        tcol = ts.to(res.x.dtype)[:, None, None].expand(-1, n, 1)
        sc = torch.stack([bridge.score(xs[j].to(res.x.dtype), tcol[j]) for j in range(len(ts))]).to(_DT)
        zhat = beta.sqrt()[:, None, None] * (sc - xs @ A0.transpose(1, 2))
    A = fwd.A_at(ts)
    zf = beta.sqrt()[:, None, None] * (xs @ A.transpose(1, 2))
    trace = A.diagonal(dim1=-2, dim2=-1).sum(-1)
    obj = (0.5 * (zf**2).sum(-1) + (zf * zhat).sum(-1)).mean(-1) + zeta * beta * trace
    loss = dt * obj.sum()
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    fwd.clamp_()
    return float(loss.detach())


def _check_gap(t_gap) -> float:
    """The distance kept from the data end t = 0, in (0, 1): Σ_0 = 0 has no Cholesky factor."""
    t_gap = check_positive(t_gap, "t_gap")
    if t_gap >= 1:
        raise ValueError(f"t_gap must be < 1, got {t_gap}")
    return t_gap
