"""A learned Schrödinger–Föllmer sampler for an unnormalised density, with importance weights and log Z.

**The problem.** We can evaluate log ρ(x) for a density ρ on R^d but not its normaliser Z = ∫ ρ dx,
and we want samples of μ = ρ / Z and the number log Z. No samples of μ are given (so the regression
of :func:`lsbcore.bridges.follmer.fit_follmer` is not available); we learn the drift from ρ alone.

**Reference and target in path space.** The reference Q is the law of the paths of dX = σ dW on
[0, 1] from X_0 = 0, so X_1 ~ N(0, σ² I). Write f(x) = ρ(x) / N(x; 0, σ² I). Then

    E_Q[f(X_1)] = ∫ ρ(x) dx = Z,

and the path law P* with dP*/dQ (X) = f(X_1) / Z is the Schrödinger–Föllmer process: it ends in μ,
and it is the diffusion dX = b(X, t) dt + σ dW with the Föllmer drift b of :mod:`.follmer`.

**Girsanov.** A controlled process P^u, dX = u(X, t) dt + σ dW from X_0 = 0, has the density

    log dP^u/dQ (X) = ∫_0^1 (u/σ) · dW_t + ½ ∫_0^1 ‖u/σ‖² dt,

with W the Brownian motion that drives P^u (dX = u dt + σ dW). So every path X of P^u carries the
**importance weight**  log w(X) = log f(X_1) − log dP^u/dQ (X), and E_{P^u}[w] = E_Q[f(X_1)] = Z:

    Z ≈ (1/n) Σ_i w_i  (unbiased),   log Z ≈ logsumexp_i(log w_i) − log n,   ESS/n = (Σ w)² / (n Σ w²).

At u = b the weight is constant, w ≡ Z: a zero-variance estimator and ESS/n = 1.

**Two losses for u** (Nüsken & Richter 2021; Richter et al. 2020):

- ``"log_variance"``: Var(log w) over paths simulated with a *detached* copy of the current control
  (any sampling process would do). The weight along a fixed path X, for the control u being
  trained, uses the increments ΔX instead of ΔW: log dP^u/dQ = Σ_k [u_k·ΔX_k/σ² − h‖u_k‖²/(2σ²)].
  Var is zero exactly when log w is constant: at the Föllmer drift. No gradient through the SDE.
- ``"kl"``: the relative entropy E_{P^u}[−log w] = KL(P^u ‖ P*) − log Z, minimised by
  differentiating through the simulated paths (reparametrisation; needs ∇ log ρ, by autograd).
  The stochastic integral Σ (u_k/σ)·ΔW_k has mean zero for every u and is dropped from this loss.

**Discretisation.** Euler–Maruyama with K steps on t_k = k/K (h = 1/K), the same grid and noise order
as :func:`lsbcore.sample`: X_{k+1} = X_k + h u_k + σ√h ξ_k. The Girsanov sum above is then the exact
log-ratio of the two Gaussian Markov chains (controlled Euler chain vs the reference chain
X_{k+1} = X_k + σ√h ξ_k), and the reference chain ends exactly in N(0, σ² I). So the weights are
exact importance weights for the Euler chain: **the estimate of Z is unbiased (and of log Z
consistent as n → ∞) at every K**; a coarse K only costs variance (a lower ESS), never bias. The same
holds for a random drift such as :class:`~lsbcore.bridges.follmer.FollmerMC` (condition on its
Monte-Carlo draws), so its paths are weighted the same way. The samples X_1 themselves are those of
the Euler chain: they approach μ as K grows and u → b (or exactly, after reweighting by w).

**Network.** ``TimeMLP(dim)`` with its last layer zeroed: training starts at u ≡ 0, i.e. at plain
importance sampling from N(0, σ² I) (log w = log f(X_1)), a useful and safe start.
Notebook 02 §2.8 "A learned sampler".
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Optional

import torch
from torch import nn

from ..bridge import Bridge
from ..nets import TimeMLP
from ..train import fit
from ..utils import Seed, check_device, check_int, check_positive, check_scale, first_parameter, generator, work_device
from .follmer import POINT_MASS_START, origin

__all__ = ["LOSSES", "LogZEstimate", "LearnedFollmer", "path_log_weights", "estimate_log_z",
           "log_variance_loss", "kl_loss", "fit_follmer_sampler", "summarize_weights"]

LOSSES = ("log_variance", "kl")


# ---------------------------------------------------------------------------------- checks
def _log_density_of(target) -> Callable:
    """A target's unnormalised log-density: its ``.log_density`` if it has one, else the callable itself."""
    f = getattr(target, "log_density", None)
    f = f if callable(f) else target
    if not callable(f):
        raise TypeError(f"log_density must be a callable (n, d) -> (n,) or have .log_density, "
                        f"got {type(target).__name__}")
    return f


def _check_log_density(log_density: Callable, dim: int, dtype=torch.float32, device=None) -> None:
    """Call ``log_density`` once on a few points: shape (n,), no NaN, no +inf (once, at the door)."""
    probe = torch.linspace(-1.0, 1.0, 3 * dim, dtype=dtype, device=device).reshape(3, dim)
    out = log_density(probe)
    if not isinstance(out, torch.Tensor) or out.shape != (3,):
        raise ValueError(f"log_density must return a tensor of shape (n,) for x of shape (n, {dim}), got "
                         f"{tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__}")
    if bool(torch.isnan(out).any()) or bool((out == math.inf).any()):
        raise ValueError("log_density returned NaN or +inf")


def _dim_of(target, dim) -> int:
    own = getattr(target, "dim", None)
    if dim is not None and own is not None and dim != own:
        raise ValueError(f"dim={dim} but the target's dim is {own}")
    dim = dim if dim is not None else own
    if dim is None:
        raise ValueError("dim is needed: pass dim= (the target has no .dim)")
    return check_int(dim, "dim")


def log_f(log_density: Callable, x: torch.Tensor, sigma: float) -> torch.Tensor:
    """log f(x) = log ρ(x) − log N(x; 0, σ² I) = log ρ(x) + ‖x‖²/(2σ²) + (d/2) log(2πσ²); inner code."""
    d = x.shape[1]
    return log_density(x) + (x * x).sum(-1) / (2 * sigma**2) + 0.5 * d * math.log(2 * math.pi * sigma**2)


# ---------------------------------------------------------------------------------- the Euler chain
def _euler(drift: Callable, n: int, dim: int, sigma: float, steps: int, gen, dtype, device,
           keep_path: bool = False, check_first: bool = False, ito: bool = True):
    """Controlled Euler chain from 0 with the Girsanov log-ratio log dP^u/dQ accumulated on it.

    Returns (X_K, log dP^u/dQ (n,), states (K+1, n, d) or None). Noise is drawn per step before
    the drift is called, as :func:`lsbcore.sde.sample` does, so the paths equal that sampler's.
    ``ito=False`` leaves the mean-zero stochastic integral Σ (u/σ)·ΔW out of the log-ratio: what is
    accumulated is then the control's energy Σ h‖u‖²/(2σ²) (the KL loss's running cost)."""
    h = 1.0 / steps
    sqrt_h = math.sqrt(h)
    x = torch.zeros(n, dim, dtype=dtype, device=device)
    log_rn = torch.zeros(n, dtype=dtype, device=device)
    states = [x] if keep_path else None
    for k in range(steps):
        t = torch.full((n, 1), k * h, dtype=dtype, device=device)
        dw = sqrt_h * torch.randn(n, dim, generator=gen, dtype=dtype, device=device)
        u = drift(x, t)
        if check_first and k == 0 and (not isinstance(u, torch.Tensor) or u.shape != x.shape):
            raise ValueError(f"drift must return a tensor of shape {tuple(x.shape)}, got "
                             f"{tuple(u.shape) if isinstance(u, torch.Tensor) else type(u).__name__}")
        if ito:
            log_rn = log_rn + (u * dw).sum(-1) / sigma + 0.5 * h * (u * u).sum(-1) / sigma**2
        else:
            log_rn = log_rn + 0.5 * h * (u * u).sum(-1) / sigma**2
        x = x + h * u + sigma * dw
        if keep_path:
            states.append(x)
    return x, log_rn, (torch.stack(states) if keep_path else None)


def path_log_weights(drift, log_density, n: int, sigma: float = 1.0, steps: int = 100, seed: Seed = 0, *,
                     dim: Optional[int] = None, dtype=torch.float32, device=None):
    """Simulate n Euler paths of dX = u dt + σ dW from 0 and return ``(x1, log_w)``.

    ``drift``: a :class:`~lsbcore.bridge.Bridge` (its ``drift``) or a callable ``u(x, t)`` with x
    ``(n, d)`` and t ``(n, 1)``; ``log_density``: the unnormalised log ρ, a callable ``(n, d) → (n,)`` or
    an object with ``.log_density`` (e.g. :class:`~lsbcore.bridges.densities.NealsFunnel`).
    ``log_w = log f(X_1) − Σ_k [(u_k/σ)·ΔW_k + (h/2)‖u_k/σ‖²]`` is the exact importance weight of the
    Euler chain against the discretised reference (module docstring), so ``mean(exp(log_w))`` is an
    unbiased estimate of Z at every ``steps``. ``dim`` defaults to the bridge's or target's ``dim``.
    Deterministic for a seed on the CPU. Notebook 02 §2.8 "A learned sampler".
    """
    ld = _log_density_of(log_density)
    if isinstance(drift, Bridge):
        dim = dim if dim is not None else drift.dim
        u = drift.unchecked("drift")
    elif callable(drift):
        u = drift
    else:
        raise TypeError(f"drift must be a Bridge or a callable u(x, t), got {type(drift).__name__}")
    dim = _dim_of(log_density, dim)
    n = check_int(n, "n", minimum=2)
    sigma = check_scale(sigma, "sigma")
    steps = check_int(steps, "steps")
    if not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise TypeError(f"dtype must be a floating torch.dtype, got {dtype!r}")
    dev = check_device(device)
    _check_log_density(ld, dim, dtype, dev)
    gen = generator(seed, dev)
    with torch.no_grad():
        x1, log_rn, _ = _euler(u, n, dim, sigma, steps, gen, dtype, dev, check_first=True)
        if not bool(torch.isfinite(x1).all()):
            raise FloatingPointError("the Euler paths blew up (NaN/inf): the drift is too large for "
                                     f"steps={steps}")
        lf = log_f(ld, x1, sigma)
    log_w = lf - log_rn
    if bool(torch.isnan(log_w).any()) or bool((log_w == math.inf).any()):
        raise ValueError("log_density returned NaN or +inf at a simulated end point")
    return x1, log_w


@dataclass
class LogZEstimate:
    """What :func:`estimate_log_z` returns.

    log_z: logsumexp(log_w) − log n;  stderr: its delta-method standard error √((n/ESS − 1)/n)
    (reliable only when the ESS is not tiny);  ess: ESS/n = (Σw)²/(nΣw²) ∈ (0, 1];
    log_weights: (n,); samples: the Euler end points X_1, (n, d) (unweighted: reweight by w for μ).
    """

    log_z: float
    stderr: float
    ess: float
    log_weights: torch.Tensor
    samples: torch.Tensor

    @property
    def n(self) -> int:
        return int(self.log_weights.shape[0])

    def cpu(self) -> "LogZEstimate":
        """The same estimate with its tensors on the CPU (for metrics and plots); no copy on the CPU."""
        return LogZEstimate(self.log_z, self.stderr, self.ess, self.log_weights.cpu(), self.samples.cpu())

    def __str__(self):
        return f"log Z ≈ {self.log_z:.4f} ± {self.stderr:.4f}, ESS/n = {self.ess:.3f} (n = {self.n})"


def summarize_weights(log_w: torch.Tensor, samples: torch.Tensor) -> LogZEstimate:
    """log Z, its standard error and ESS/n from the log-weights of n paths and their end points, e.g.
    the ``(x1, log_w)`` of :func:`path_log_weights` (float64 log-sum-exp). Notebook 02 §2.8."""
    if not isinstance(log_w, torch.Tensor) or log_w.ndim != 1 or log_w.shape[0] < 2:
        raise ValueError("log_w must be a tensor of shape (n,) with n ≥ 2")
    if not isinstance(samples, torch.Tensor) or samples.shape[0] != log_w.shape[0]:
        raise ValueError(f"samples must be a tensor with {log_w.shape[0]} rows (one per weight)")
    lw = log_w.detach().double()
    n = lw.shape[0]
    lse = torch.logsumexp(lw, 0)
    ess = float(torch.exp(2 * lse - torch.logsumexp(2 * lw, 0)) / n) if torch.isfinite(lse) else 0.0
    se = math.sqrt(max(1.0 / ess - 1.0, 0.0) / n) if ess > 0 else math.inf
    return LogZEstimate(log_z=float(lse - math.log(n)), stderr=se, ess=ess, log_weights=log_w.detach(),
                        samples=samples.detach())


def estimate_log_z(bridge: Bridge, log_density=None, n: int = 1000, steps: Optional[int] = None,
                   seed: Seed = 0, *, dtype=None) -> LogZEstimate:
    """Run a Föllmer-type bridge from the origin and estimate log Z from its path weights.

    ``bridge``: any :class:`~lsbcore.bridge.Bridge` that starts at the origin (``start`` = δ0):
    :class:`LearnedFollmer`, :class:`~lsbcore.bridges.follmer.FollmerMC`, the exact Gaussian one.
    ``log_density``: the unnormalised log ρ (default: the bridge's own ``log_density``). ``steps``
    defaults to the bridge's ``sim_steps`` (the training grid) or 100. ``bridge.start`` is called
    first, so a Monte-Carlo bridge rewinds its generator (reproducible); the paths take its start
    points' dtype and device unless ``dtype`` is given. Notebook 02 §2.8.
    """
    if not isinstance(bridge, Bridge):
        raise TypeError(f"bridge must be an lsbcore Bridge, got {type(bridge).__name__}")
    if log_density is None:
        log_density = getattr(bridge, "log_density", None)
        if log_density is None:
            raise ValueError("log_density is needed: the bridge keeps none")
    if steps is None:
        steps = getattr(bridge, "sim_steps", None) or 100
    n = check_int(n, "n", minimum=2)
    x0 = bridge.start(n, seed=seed)
    if bool((x0 != 0).any()):
        raise ValueError("bridge must start at the origin (the weights assume X_0 = 0)")
    x1, log_w = path_log_weights(bridge, log_density, n, bridge.sigma, steps, seed, dim=x0.shape[1],
                                 dtype=dtype if dtype is not None else x0.dtype, device=x0.device)
    return summarize_weights(log_w, x1)


# ---------------------------------------------------------------------------------- the bridge
class LearnedFollmer(Bridge):
    """SF bridge δ0 → μ = ρ/Z whose drift is a network ``net(x, t)`` (Notebook 02 §2.8).

    Built by :func:`fit_follmer_sampler`; keeps the ``log_density`` it was trained on (for
    :func:`estimate_log_z`), the training grid ``sim_steps`` and the losses (``history["loss"]``).
    Generation starts at the origin and runs forward to μ at t = 1 (``lsb.generate``); no backward
    drift and no probability-flow ODE: the law at t = 0 is a point mass.
    """

    data_end = 1
    unavailable = POINT_MASS_START

    def __init__(self, net: nn.Module, sigma: float = 1.0, *, dim: Optional[int] = None,
                 log_density: Optional[Callable] = None, sim_steps: Optional[int] = None):
        if not callable(net):
            raise TypeError(f"net must be callable as net(x, t), got {type(net).__name__}")
        self.net = net
        self.sigma = check_scale(sigma, "sigma")
        self.dim = _dim_of(net, dim)
        self.log_density = None if log_density is None else _log_density_of(log_density)
        self.sim_steps = None if sim_steps is None else check_int(sim_steps, "sim_steps")
        self.history: dict = {}

    @torch.no_grad()
    def drift(self, x, t):
        return self.net(x, t)

    def start(self, n: int, *, seed: Seed = 0, device=None) -> torch.Tensor:
        """``n`` copies of the origin (the point mass δ0 at t = 0), in the net's dtype and on its device
        (unless ``device`` is given); ``seed`` is not used."""
        p = first_parameter(self.net)
        return origin(n, self.dim, dtype=p.dtype if p is not None else None,
                      device=device if device is not None else (p.device if p is not None else None))

    def __repr__(self):
        return f"LearnedFollmer(dim={self.dim}, sigma={self.sigma}, sim_steps={self.sim_steps})"


# ---------------------------------------------------------------------------------- the losses
def log_variance_loss(net: Callable, log_density: Callable, batch_size: int, dim: int, sigma: float,
                      steps: int, gen, explore: float = 0.0) -> torch.Tensor:
    """Var over ``batch_size`` paths of log w^u, paths simulated with the detached ``net``.

    One no-grad simulation, then ONE batched evaluation of ``net`` on all (K·n) visited states with
    gradients: log dP^u/dQ = Σ_k [u_k·ΔX_k/σ² − h‖u_k‖²/(2σ²)] along the fixed path. A fraction
    ``explore`` of the paths is simulated with u = 0 (the reference) instead: any sampling law keeps
    the minimum at the Föllmer drift, and these paths keep visiting modes the current drift has lost
    (on-policy paths alone collapsed onto fewer modes on 2 of 3 seeds of the bench's mixture).
    Inner code (arguments trusted)."""
    p = first_parameter(net)
    dtype, dev = (p.dtype, p.device) if p is not None else (torch.float32, None)
    n_ref = int(round(explore * batch_size))
    keep = torch.ones(batch_size, 1, dtype=dtype, device=dev)
    keep[:n_ref] = 0.0                    # these paths follow the reference (u = 0): exploration

    def sampling_drift(x, t):
        return net(x, t) * keep

    with torch.no_grad():
        x1, _, states = _euler(sampling_drift, batch_size, dim, sigma, steps, gen, dtype, dev, keep_path=True)
        lf = log_f(log_density, x1, sigma)
    h = 1.0 / steps
    t = (torch.arange(steps, dtype=dtype, device=dev) * h).repeat_interleave(batch_size)[:, None]
    u = net(states[:-1].reshape(-1, dim), t).reshape(steps, batch_size, dim)
    dx = states[1:] - states[:-1]
    log_rn = ((u * dx).sum(-1) / sigma**2 - 0.5 * h * (u * u).sum(-1) / sigma**2).sum(0)
    return (lf - log_rn).var()


def kl_loss(net: Callable, log_density: Callable, batch_size: int, dim: int, sigma: float, steps: int,
            gen, explore: float = 0.0) -> torch.Tensor:
    """E_{P^u}[½∫‖u/σ‖² dt − log f(X_1)] = KL(P^u ‖ P*) − log Z, by differentiating through the paths.

    The mean-zero stochastic integral is left out (it adds variance, not signal). ``explore`` is
    accepted for a common signature and must be 0: these paths must be the model's own. Inner code."""
    p = first_parameter(net)
    dtype, dev = (p.dtype, p.device) if p is not None else (torch.float32, None)
    x, cost, _ = _euler(net, batch_size, dim, sigma, steps, gen, dtype, dev, ito=False)
    return (cost - log_f(log_density, x, sigma)).mean()


_LOSS_FNS = {"log_variance": log_variance_loss, "kl": kl_loss}


def zero_last_layer(net: nn.Module) -> nn.Module:
    """Zero the last ``nn.Linear`` of ``net`` (weights and bias): the drift starts at u ≡ 0."""
    last = [m for m in net.modules() if isinstance(m, nn.Linear)]
    if not last:
        raise ValueError("net has no nn.Linear layer to zero")
    with torch.no_grad():
        last[-1].weight.zero_()
        if last[-1].bias is not None:
            last[-1].bias.zero_()
    return net


def fit_follmer_sampler(log_density, dim: Optional[int] = None, sigma: float = 1.0, *,
                        loss: str = "log_variance", steps: int = 500, batch_size: int = 256,
                        sim_steps: int = 50, net: Optional[nn.Module] = None, width: int = 64,
                        depth: int = 3, lr: float = 1e-3, seed: int = 0, ema: float = 0.999,
                        explore: Optional[float] = None, progress: bool = True, checkpoint=None,
                        device=None, **fit_kwargs) -> LearnedFollmer:
    """Learn the Schrödinger–Föllmer drift to μ = ρ/Z from log ρ alone (no samples of μ).

    ``log_density``: the unnormalised log ρ, a callable ``(n, d) → (n,)`` (differentiable for
    ``loss="kl"``) or a target with ``.log_density`` (and ``.dim``); ``loss``: ``"log_variance"``
    (default) or ``"kl"`` (module docstring); ``sim_steps``: Euler steps of the training paths (use
    the same number to sample and to estimate log Z); ``net``: a module ``(x, t) → (n, d)``, default
    ``TimeMLP(dim, width, depth, seed=seed)`` with its last layer zeroed (u ≡ 0 at the start);
    ``explore``: the fraction of each log-variance batch simulated along the reference (default 0.25
    for "log_variance", 0 and nothing else for "kl"; see :func:`log_variance_loss`). Training is
    :func:`lsbcore.fit` (seeded, EMA, progress bar, checkpoints; ``fit_kwargs`` such as
    ``grad_clip`` or ``schedule`` go to it); the returned bridge holds the EMA net when ``ema`` > 0.
    Device: there are no data, so ``device`` (None: the CPU, or a given ``net``'s device) says where the
    net, the simulated paths and log ρ are evaluated; a ``net`` elsewhere raises a ValueError.
    Notebook 02 §2.8 "A learned sampler".
    """
    if net is not None and not isinstance(net, nn.Module):
        raise TypeError(f"net must be a torch.nn.Module, got {type(net).__name__}")
    dev = work_device(device, net=net)
    ld = _log_density_of(log_density)
    dim = _dim_of(log_density, dim)
    sigma = check_scale(sigma, "sigma")
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
    batch_size = check_int(batch_size, "batch_size", minimum=2)
    sim_steps = check_int(sim_steps, "sim_steps")
    if net is None:
        net = zero_last_layer(TimeMLP(dim, check_int(width, "width"), check_int(depth, "depth"), seed=seed))
        if dev is not None:
            net = net.to(dev)
    p = first_parameter(net)
    _check_log_density(ld, dim, p.dtype if p is not None else torch.float32, p.device if p is not None else None)
    if explore is None:
        explore = 0.25 if loss == "log_variance" else 0.0
    explore = check_positive(explore, "explore", allow_zero=True)
    if explore > 1 or (loss == "kl" and explore > 0):
        raise ValueError(f"explore must lie in [0, 1] (and be 0 for loss='kl': its paths are the "
                         f"model's own), got {explore}")
    loss_of = _LOSS_FNS[loss]

    def loss_fn(model, step, gen):
        return loss_of(model, ld, batch_size, dim, sigma, sim_steps, gen, explore)

    hist = fit(net, loss_fn, steps, lr=lr, seed=seed, ema=ema, progress=progress, checkpoint=checkpoint,
               desc=f"Föllmer sampler ({loss})", **fit_kwargs)
    trained = (hist.ema if hist.ema is not None else net).eval()
    bridge = LearnedFollmer(trained, sigma, dim=dim, log_density=ld, sim_steps=sim_steps)
    bridge.history = {"loss": hist.losses, "seconds": hist.seconds}
    return bridge
