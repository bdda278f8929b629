"""VSDM: variational Schrödinger diffusion models (Deng et al., ICML 2024), in miniature.

The forward process is a *multivariate* linear SDE with a variance-preserving base (theory.md §4):

    dX = −½ β_t D X dt + √β_t dW,    D = I − 2A,    A = U diag(s) Vᵀ  (U, V orthogonal),

with the schedule β_t = β_min + t^{β_r}(β_max − β_min). At s = 0, A = 0 and this is the VP-SDE of
score-based models. Here A is constant in time, which makes the transitions exact: with
τ = ∫_0^t β (so dX = −½ D X dτ + dW_τ),

    X_t | X_0 ~ N(Φ_t X_0, Σ_t),   Φ_t = exp(−½ τ D),   dΣ/dτ = −½(DΣ + ΣDᵀ) + I  (Lyapunov),

both from matrix exponentials (Van Loan's trick, :func:`lsbcore.bridges.vae.linear_sde_moments`).
The backward score is learned simulation-free from X_t = Φ_t X_0 + L_t ε (Σ_t = L_t L_tᵀ):
∇log p(X_t | X_0) = −L_t^{−T} ε. The prior is adaptive, N(0, Σ_1), and A is updated by stochastic
approximation on backward trajectories simulated with the current model (:func:`update_A`), which
lets the forward noise follow the data's shape. Sampling (SDE and probability-flow ODE) goes through
the shared sampler :func:`lsbcore.sde.sample`. Notebook 06 explains all of it.

Reading notes (ours, not the paper's): A is one constant matrix (the paper's A_t varies with t), and
the score network predicts the noise ε, i.e. the backward-score loss ‖ẑ_θ − √β(−L^{−T}ε − A x)‖² of
theory.md §4 reweighted by L Lᵀ/β, which has the same minimiser and is well conditioned near t = 0.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn.utils.parametrizations import orthogonal

from .reference import VP
from ..metrics import histogram_error
from ..utils import Seed, check_int, check_points, check_positive, generator
from ..bridge import Bridge
from .vae import _single_time, cholesky, linear_sde_moments, score_from_noise

__all__ = ["LinearForward", "VSDM", "VSDMResult", "backward_score_loss", "update_A", "train_vsdm",
           "ou_gaussian_bridge_moments", "histogram_error", "evaluate"]

_DT = torch.float64


class LinearForward(nn.Module):
    """The forward SDE ``dX = −½ β_t (I − 2A) X dt + √β_t dW`` with ``A = U diag(s) Vᵀ``.

    U and V are orthogonal by construction (``torch.nn.utils.parametrizations.orthogonal``), s starts
    at 0 (the VP-SDE) and is kept in [−s_max, s_max]. Parameters are float64; ``seed`` fixes the
    random initial U, V. Notebook 06 §"The forward process".
    """

    def __init__(self, dim: int, *, beta_min: float = 0.1, beta_max: float = 10.0, beta_r: float = 1.7,
                 s_max: float = 1.0, seed: int = 0):
        super().__init__()
        self.dim = check_int(dim, "dim")
        self.schedule = VP(beta_min, beta_max, beta_r)
        self.s_max = check_positive(s_max, "s_max")
        check_int(seed, "seed", minimum=0)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.U = orthogonal(nn.Linear(dim, dim, bias=False, dtype=_DT))
            self.V = orthogonal(nn.Linear(dim, dim, bias=False, dtype=_DT))
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

    def beta(self, t) -> torch.Tensor:
        """β_t = β_min + t^{β_r}(β_max − β_min)."""
        return self.schedule.beta(t)

    def int_beta(self, t) -> torch.Tensor:
        """τ(t) = ∫_0^t β_u du."""
        return self.schedule.int_beta(t)

    @torch.no_grad()
    def clamp_(self) -> None:
        """Keep s in [−s_max, s_max] (called after each update of A)."""
        self.s.clamp_(-self.s_max, self.s_max)

    # ---------------------------------------------------------------- transitions
    def transition(self, t):
        """``(Φ_t, Σ_t)`` of X_t | X_0 ~ N(Φ_t X_0, Σ_t) for a 1-D tensor of times: (n, d, d) each.

        Exact for constant A (matrix exponentials in the time τ = ∫β). Differentiable in A.
        """
        t = torch.as_tensor(t, dtype=_DT, device=self.s.device).reshape(-1)
        D = self.D() if torch.is_grad_enabled() else self.frozen_D()
        z = torch.zeros(self.dim, dtype=_DT, device=D.device)
        mom = linear_sde_moments(-0.5 * D, z, 1.0, z, torch.zeros_like(D), self.int_beta(t))
        return mom.Phi, mom.noise_cov

    def table(self, t_min: float = 1e-3, n_grid: int = 512):
        """``(t, Φ, L)`` on a uniform grid of ``n_grid`` times in [t_min, 1] (L: Cholesky factor of Σ_t).

        Cached until a parameter changes (in-place optimiser steps bump the parameters' versions), so
        training draws X_t by table look-up instead of a matrix exponential per sample. Notebook 06 §"Training".
        """
        key = (float(t_min), int(n_grid)) + self._key()
        if getattr(self, "_table_key", None) != key:
            with torch.no_grad():
                t = torch.linspace(float(t_min), 1.0, int(n_grid), dtype=_DT, device=self.s.device)
                Phi, Sig = self.transition(t)
                self._table = (t, Phi, torch.linalg.cholesky(Sig))
            self._table_key = key
        return self._table

    def prior_cov(self) -> torch.Tensor:
        """Σ_1 = Cov(X_1 | X_0): the covariance of the adaptive prior N(0, Σ_1)."""
        return self.transition(torch.ones(1, dtype=_DT, device=self.s.device))[1][0]

    def sample_xt(self, x0, t, seed: Seed = 0):
        """``(x_t, ε, L_t)``: X_t = Φ_t x0 + L_t ε, one time per row (``t`` of shape (n,)). Notebook 06."""
        x0 = check_points(x0, "x0", dim=self.dim)
        t = torch.as_tensor(t, dtype=_DT, device=x0.device).reshape(-1)
        if t.shape[0] not in (1, x0.shape[0]):
            raise ValueError(f"t must have 1 or {x0.shape[0]} entries, got {t.shape[0]}")
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

    Bridge face on [0, 1] (data at t = 0, prior at t = 1):
    drift = −½ β_t D x, diffusion = √β_t, score = −L_t^{−T} ε_θ(x, t),
    backward_drift = β_t score − drift, velocity = −½ β_t (D x + score) (the PF-ODE).
    ``sample`` draws from the adaptive prior N(0, Σ_1) and integrates back to ``t_min``.
    Notebook 06 §"Sampling".
    """

    def __init__(self, forward: LinearForward, net: nn.Module, *, t_min: float = 1e-3):
        if not isinstance(forward, LinearForward):
            raise TypeError(f"forward must be a LinearForward, got {type(forward).__name__}")
        if not isinstance(net, nn.Module):
            raise TypeError(f"net must be a torch.nn.Module, got {type(net).__name__}")
        self.forward, self.net = forward, net
        self.t_min = check_positive(t_min, "t_min")
        self.dim = forward.dim
        self.sigma = math.sqrt(forward.schedule.beta_min)

    def _beta(self, t, x):
        tt = t if isinstance(t, torch.Tensor) else torch.tensor(float(t), dtype=x.dtype, device=x.device)
        return self.forward.beta(tt).to(x.dtype)

    def diffusion(self, t):
        return self.forward.beta(t).sqrt()

    def drift(self, x, t):
        D = self.forward.frozen_D().to(x.dtype)
        return -0.5 * self._beta(t, x) * (x @ D.T)

    def score(self, x, t):
        """∇log ρ_t(x) ≈ −L_t^{−T} ε_θ(x, t)."""
        tt, single = _single_time(t, x)
        with torch.no_grad():
            L = cholesky(self.forward.transition(tt.to(self.forward.s.device))[1]).to(x.dtype)
        return score_from_noise(self.net, x, t, L, single)

    def backward_drift(self, x, t):
        return self._beta(t, x) * self.score(x, t) - self.drift(x, t)

    def velocity(self, x, t):
        D = self.forward.frozen_D().to(x.dtype)
        return -0.5 * self._beta(t, x) * (x @ D.T + self.score(x, t))

    def prior_sample(self, n: int, seed: Seed = 0, device=None) -> torch.Tensor:
        """n draws from the adaptive prior N(0, Σ_1) (float32 unless the net is float64)."""
        n = check_int(n, "n")
        dev = torch.device(device) if device is not None else self.forward.s.device
        with torch.no_grad():
            L = torch.linalg.cholesky(self.forward.prior_cov())
        z = torch.randn(n, self.dim, generator=generator(seed, dev), device=dev, dtype=_DT)
        dtype = next(self.net.parameters()).dtype
        return (z @ L.to(dev).T).to(dtype)

    @torch.no_grad()
    def sample(self, n: int, *, method: str = "ode", steps: int = 50, seed: Seed = 0, keep_traj: bool = False):
        """Prior → data: ``method="ode"`` (Heun, NFE = 2·steps) or ``"sde"`` (Euler–Maruyama, NFE = steps).

        Returns the :class:`lsbcore.sde.SampleResult` (``.x``, ``.traj``, ``.nfe``). Notebook 06 §"Sampling".
        """
        from ..sde import sample as run
        g = generator(seed, self.forward.s.device)
        x1 = self.prior_sample(n, g)
        return run(self, x1, method=method, steps=steps, t0=self.t_min, t1=1.0, direction="backward",
                   seed=g, keep_traj=keep_traj)

    def __repr__(self):
        return f"VSDM(dim={self.dim}, {self.forward.extra_repr()}, t_min={self.t_min})"


def backward_score_loss(forward: LinearForward, net: nn.Module, x0, *, t_min: float = 1e-3,
                        n_grid: int = 512, seed: Seed = 0) -> torch.Tensor:
    """The simulation-free backward-score loss in noise-prediction form: E‖ε_θ(X_t, t) − ε‖².

    t uniform on a grid of ``n_grid`` times in [t_min, 1] (:meth:`LinearForward.table`),
    X_t = Φ_t x0 + L_t ε (exact transition); A is held fixed (no gradient).
    Notebook 06 §"Training".
    """
    x0 = check_points(x0, "x0", dim=forward.dim)
    gen = generator(seed, x0.device)
    grid, Phi, L = forward.table(t_min, n_grid)
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

        Σ_j Δt · mean[ ½‖z_f‖² + z_f·ẑ + ζ β_j tr A ],   z_f = √β_j A x_j,
        ẑ = √β_j (score(x_j, t_j) − A x_j)   (held fixed),

    the forward part of the SB-FBSDE objective with ∇·z_f = √β tr A (theory.md §4). With ζ = 1 the
    minimiser in A is the one whose forward score matches the backward model on its own trajectories.
    Returns the objective's value. Notebook 06 §"Adapting A".
    """
    if not isinstance(bridge, VSDM):
        raise TypeError(f"bridge must be a VSDM, got {type(bridge).__name__}")
    n = check_int(n, "n")
    steps = check_int(steps, "steps")
    zeta = check_positive(zeta, "zeta", allow_zero=True)
    fwd = bridge.forward
    res = bridge.sample(n, method="sde", steps=steps, seed=seed, keep_traj=True)
    xs = res.traj[:-1].to(_DT)                    # states at t_j (t from 1 down to t_min + h)
    ts = res.times[:-1].to(_DT)
    dt = float(1 - bridge.t_min) / steps
    beta = fwd.beta(ts)                           # (J,)
    with torch.no_grad():
        A0 = fwd.A()
        tcol = ts.to(res.x.dtype)[:, None, None].expand(-1, n, 1)
        sc = torch.stack([bridge.score(xs[j].to(res.x.dtype), tcol[j]) for j in range(len(ts))]).to(_DT)
        zhat = beta.sqrt()[:, None, None] * (sc - xs @ A0.T)
    A = fwd.A()
    zf = beta.sqrt()[:, None, None] * (xs @ A.T)
    obj = (0.5 * (zf**2).sum(-1) + (zf * zhat).sum(-1)).mean(-1) + zeta * beta * torch.trace(A)
    loss = dt * obj.sum()
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    fwd.clamp_()
    return float(loss.detach())


@dataclass
class VSDMResult:
    """What :func:`train_vsdm` returns: the bridge (EMA network), losses, A's history, wall time."""

    bridge: VSDM
    losses: list
    A_history: list = field(default_factory=list)
    seconds: float = 0.0


def train_vsdm(data, *, adaptive: bool = True, steps: int = 2000, batch: int = 256, beta_min: float = 0.1,
               beta_max: float = 10.0, beta_r: float = 1.7, width: int = 128, depth: int = 3, lr: float = 2e-3,
               warmup: int | None = None, a_every: int = 50, a_lr: float = 0.02, a_paths: int = 256,
               a_steps: int = 20, zeta: float = 1.0, t_min: float = 1e-3, seed: int = 0) -> VSDMResult:
    """Train VSDM (``adaptive=True``) or the plain VP-SDE (``adaptive=False``: A stays 0) on samples.

    The network is a :class:`lsbcore.nets.TimeMLP` trained by :func:`lsbcore.train.fit` on
    :func:`backward_score_loss`; with ``adaptive=True``, after ``warmup`` steps (default steps // 4)
    A takes one :func:`update_A` step (Adam, ``a_lr``) every ``a_every`` network steps. Both variants use
    the same network, the same budget and the same seed. Notebook 06 §"Training".
    """
    from ..nets import TimeMLP
    from ..train import fit

    data = check_points(data, "data")
    steps = check_int(steps, "steps")
    batch = check_int(batch, "batch")
    a_every = check_int(a_every, "a_every")
    warmup = steps // 4 if warmup is None else check_int(warmup, "warmup", minimum=0)
    d = data.shape[1]
    fwd = LinearForward(d, beta_min=beta_min, beta_max=beta_max, beta_r=beta_r, seed=seed).to(data.device)
    net = TimeMLP(d, width=width, depth=depth, seed=seed).to(data.device)
    bridge = VSDM(fwd, net, t_min=t_min)
    opt_A = torch.optim.Adam(fwd.parameters(), lr=a_lr)
    A_hist = [fwd.A().detach().clone()]
    a_gen = generator(seed + 1, data.device)

    def loss_fn(model, step, gen):
        if adaptive and step >= warmup and (step - warmup) % a_every == 0:
            update_A(bridge, opt_A, n=a_paths, steps=a_steps, zeta=zeta, seed=a_gen)
            A_hist.append(fwd.A().detach().clone())
        idx = torch.randint(0, data.shape[0], (batch,), generator=gen, device=data.device)
        return backward_score_loss(fwd, model, data[idx], t_min=t_min, seed=gen)

    tic = time.perf_counter()
    hist = fit(net, loss_fn, steps, lr=lr, seed=seed, ema=0.995, progress=False, log_every=max(1, steps))
    seconds = time.perf_counter() - tic
    fwd.requires_grad_(False)
    out = VSDM(fwd, hist.ema.eval(), t_min=t_min)
    return VSDMResult(out, hist.losses, A_hist, seconds)


def ou_gaussian_bridge_moments(m0, S0, m1, S1, c: float, g: float, t):
    """Marginal mean and covariance at times t of the Schrödinger bridge from N(m0, S0) to N(m1, S1)
    with the OU reference ``dY = c Y dt + g dW``, through the Brownian closed form.

    Y_t = e^{ct} B_{s(t)} turns the OU reference into Brownian motion σB on [0, 1] run at the clock
    s(t) = ξ(t)/ξ(1), ξ(t) = g²(1 − e^{−2ct})/(2c), σ² = ξ(1); the bridge between N(m0, S0) and
    N(e^{−c} m1, e^{−2c} S1) for σB is :class:`lsbcore.schrodinger.gaussian.GaussianBridge`.
    Returns ``(means (n, d), covs (n, d, d))`` in float64. Notebook 06 §"A Gaussian check".
    """
    from ..schrodinger.gaussian import GaussianBridge

    if isinstance(c, bool) or not isinstance(c, (int, float)) or not math.isfinite(c) or c == 0:
        raise ValueError(f"c must be a finite non-zero real number, got {c!r}")
    g = check_positive(g, "g")
    t = torch.as_tensor(t, dtype=_DT).reshape(-1)
    if bool((t < 0).any()) or bool((t > 1).any()):
        raise ValueError("t must lie in [0, 1]")
    xi = lambda u: g**2 * (1 - torch.exp(-2 * c * torch.as_tensor(u, dtype=_DT))) / (2 * c)  # noqa: E731
    xi1 = float(xi(1.0))
    m0, S0 = (torch.as_tensor(v, dtype=_DT).detach() for v in (m0, S0))   # closed form: no autograd
    m1, S1 = (torch.as_tensor(v, dtype=_DT).detach() for v in (m1, S1))
    gb = GaussianBridge(m0, S0, math.exp(-c) * m1, math.exp(-2 * c) * S1, math.sqrt(xi1))
    s = (xi(t) / xi1).clamp(0, 1)
    mu, cov = gb.mean(s), gb.cov(s)
    e = torch.exp(c * t)
    return e[:, None] * mu, e[:, None, None] ** 2 * cov


# ---------------------------------------------------------------------------------- evaluation
def evaluate(bridge: VSDM, target, *, nfes=(6, 8, 16, 50), n: int = 1000, seed: int = 0) -> dict:
    """Quality of PF-ODE (Heun) samples at each NFE: W2 (with its noise floor), histogram error and
    path straightness (:func:`lsbcore.metrics.straightness` of the ODE trajectories, in squared
    units of x, and relative to the mean squared chord E‖x_end − x_start‖², which makes models whose
    paths have different lengths comparable).

    ``target``: at least 2n target points (the noise floor splits them). Returns a dict
    NFE → {"w2", "floor", "hist", "straightness", "rel_straightness"}. Notebook 06 §"Anisotropic shapes".
    """
    from ..metrics import straightness, w2_report

    if not isinstance(bridge, VSDM):
        raise TypeError(f"bridge must be a VSDM, got {type(bridge).__name__}")
    target = check_points(target, "target", dim=bridge.dim)
    n = check_int(n, "n")
    out = {}
    for nfe in nfes:
        nfe = check_int(nfe, "nfe", minimum=2)
        res = bridge.sample(n, method="ode", steps=max(1, nfe // 2), seed=seed, keep_traj=True)
        rep = w2_report(res.x, target, seed=seed)
        st = straightness(res)
        chord = float(((res.traj[-1] - res.traj[0]) ** 2).sum(-1).mean())
        out[nfe] = {"w2": rep.w2, "floor": rep.floor, "hist": histogram_error(res.x, target),
                    "straightness": st, "rel_straightness": st / chord}
    return out
