"""Bridge matching: learn a bridge's drift by regression on Brownian-bridge samples; IMF for the full SB.

Given pairs (X0, X1) from a coupling π and the reference σW, the mixture of Brownian bridges

    X_t = (1 − t) X0 + t X1 + σ √(t(1−t)) Z,          Z ~ N(0, I)

has a Markovian projection whose forward drift is the conditional expectation

    b(x, t) = E[(X1 − X_t)/(1 − t) | X_t = x]       (forward target)
    b̂(x, t) = E[(X0 − X_t)/t       | X_t = x]       (backward target, in reverse time)

so a network is fitted by least squares on (X_t, t, target) — ONE loss, :func:`matching_loss`, that
every learned bridge in lsbcore reuses (Föllmer, latent bridges, VSDM, SB-as-VAE). With π the
entropic-OT plan at ε = 2σ² (minibatch Sinkhorn) the result approximates the Schrödinger bridge
(SB-CFM); *iterative Markovian fitting* (IMF, DSBM of Shi et al. 2023) makes it exact in the limit:
simulate the fitted forward SDE to get a new coupling, refit the backward on it, and vice versa.

Time is sampled from [0, 1 − t_gap] (forward) or [t_gap, 1] (backward): the targets have variance
σ² t/(1−t) (resp. (1−t)/t), which is not integrable at the end point.
Notebook 02 §"Bridge matching" and §"Iterative Markovian fitting".
"""
from __future__ import annotations

import copy
from typing import Callable, Optional, Union

import torch
from torch import nn

from ..nets import TimeMLP
from ..train import fit
from ..utils import (Seed, check_device, check_int, check_points, check_positive, check_same_device, check_scale,
                     check_seed, check_state, check_time, generator, on_device_source, time_column, work_device)
from ..bridge import Bridge
from .coupling import COUPLINGS, couple

__all__ = ["brownian_bridge", "bridge_target", "matching_loss", "couple", "COUPLINGS",
           "MatchedBridge", "EndpointDrift", "fit_bridge", "imf", "simulate"]

DIRECTIONS = ("forward", "backward")
Source = Union[torch.Tensor, Callable]


# ---------------------------------------------------------------------------------- the regression
def brownian_bridge(x0, x1, t, sigma: float, seed: Seed = 0) -> torch.Tensor:
    """A sample of ``X_t = (1−t) x0 + t x1 + σ√(t(1−t)) Z`` given its end points (Notebook 02 §"Brownian bridges").

    ``x0, x1``: ``(batch, d)``; ``t``: ``(batch, 1)`` (or anything broadcastable) in [0, 1].
    The same as :func:`lsbcore.reference.brownian_bridge_sample`, and also accepts σ = 0.
    """
    x0, x1, t = _check_pairs(x0, x1, t)
    sigma = check_scale(sigma, "sigma", allow_zero=True)
    if sigma == 0:                                   # flow matching: the straight line, no noise
        return (1 - t) * x0 + t * x1
    from .reference import brownian_bridge_sample

    return brownian_bridge_sample(x0, x1, t, sigma, seed=seed)


def bridge_target(x0, x1, x_t, t, direction: str = "forward") -> torch.Tensor:
    """The regression target: ``(x1 − x_t)/(1 − t)`` (forward) or ``(x0 − x_t)/t`` (backward).

    Its conditional expectation given X_t = x is the drift of the Markovian projection
    (Notebook 02 §"Bridge matching"). ``t`` must stay below 1 (forward) / above 0 (backward), where the
    target is singular; that is checked on the CPU (no device sync on a GPU).
    """
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
    x_t = check_state(x_t, "x_t")
    t = check_time(t, "t", batch=x_t.shape[0], like=x_t)
    end = 1.0 if direction == "forward" else 0.0
    if t.device.type == "cpu" and bool((t == end).any()):
        raise ValueError(f"t = {end:g} makes the {direction} target singular: sample t with a gap t_gap > 0")
    if direction == "forward":
        return (x1 - x_t) / (1 - t)
    return (x0 - x_t) / t


def matching_loss(net: Callable, x_t: torch.Tensor, t: torch.Tensor, target: torch.Tensor,
                  weight: Optional[torch.Tensor] = None) -> torch.Tensor:
    """THE regression loss of every learned bridge: ``mean_batch w · ‖net(x_t, t) − target‖²``.

    Minimised over all functions, it gives ``net(x, t) = E[target | X_t = x, t]``: the drift.
    ``weight`` (batch,) or (batch, 1) reweights times (e.g. the λ(t) of score matching); the squared
    norm is summed over dimensions, averaged over the batch. ``t`` is checked like every time (in
    [0, 1], one per row or one for all; values on the CPU only). Notebook 02 §"Bridge matching".
    """
    if not callable(net):
        raise TypeError(f"net must be callable as net(x_t, t), got {type(net).__name__}")
    x_t = check_state(x_t, "x_t")
    check_time(t, "t", batch=x_t.shape[0], like=x_t)
    if weight is not None and (not isinstance(weight, torch.Tensor) or weight.numel() not in (1, x_t.shape[0])):
        raise ValueError(f"weight must be a tensor with 1 or {x_t.shape[0]} entries (one per row)")
    pred = net(x_t, t)
    if pred.shape != target.shape:
        raise ValueError(f"net output has shape {tuple(pred.shape)} but target has {tuple(target.shape)}")
    sq = ((pred - target) ** 2).sum(-1)
    if weight is not None:
        sq = sq * weight.reshape(-1)
    return sq.mean()


#: the largest minibatch plan fit_bridge solves: a 2¹⁵-point plan is a 4 GiB float32 cost matrix
MAX_PLAN = 2**15


def sample_times(n: int, direction: str, t_gap: float, like: torch.Tensor, gen,
                 time_power: float = 1.0) -> torch.Tensor:
    """Times for the regression, shape (n, 1): U[0, 1 − t_gap] (forward) or U[t_gap, 1] (backward).

    ``time_power`` p > 1 draws the time left to the end point the net is fitted towards (1 − t
    forward, t backward) as r = t_gap + (1 − t_gap)·vᵖ with v ~ U[0, 1]: its density grows like
    r^(1/p − 1) near the end point, where the drift is steepest and the regression noisiest. Every
    time keeps a positive density, so the minimiser of the loss, E[target | X_t, t], is unchanged;
    only the effort is spread differently. p = 1 is the uniform law (the same draws as before).
    """
    u = torch.rand(n, 1, generator=gen, device=like.device, dtype=like.dtype)
    if time_power == 1:
        u = u * (1 - t_gap)
        return u if direction == "forward" else u + t_gap
    remaining = t_gap + (1 - t_gap) * u.pow_(time_power)
    return 1 - remaining if direction == "forward" else remaining


def check_time_power(time_power) -> float:
    """The ``time_power`` of :func:`sample_times` as a trainer takes it: a real number ≥ 1, else a
    TypeError/ValueError naming it."""
    time_power = check_positive(time_power, "time_power")
    if time_power < 1:
        raise ValueError(f"time_power must be ≥ 1 (1: uniform times; p > 1: more near the data end), got {time_power}")
    return time_power


# ---------------------------------------------------------------------------------- the learned bridge
class MatchedBridge(Bridge):
    """A bridge whose drifts are networks: ``drift = forward_net``, ``backward_drift = backward_net``.

    ``velocity`` (probability-flow ODE) is ½(drift − backward_drift) and ``score`` (σ > 0)
    (drift + backward_drift)/σ² (Nelson), so both need both nets. ``source0`` (optional: points, a
    marginal or a callable ``(n, gen)``, as :func:`fit_bridge` takes) is the law at t = 0 that
    :meth:`start` draws from; :func:`fit_bridge` and :func:`imf` keep theirs. ``history`` keeps the
    training losses. Data sit at t = 1 (``data_end = 1``). Notebook 02 §"Bridge matching".
    """

    data_end = 1

    def __init__(self, forward_net: Optional[nn.Module], sigma: float,
                 backward_net: Optional[nn.Module] = None, *, dim: Optional[int] = None, source0=None):
        self.sigma = check_scale(sigma, "sigma", allow_zero=True)
        for name, net in (("forward_net", forward_net), ("backward_net", backward_net)):
            if net is not None and not callable(net):
                raise TypeError(f"{name} must be callable as net(x, t), got {type(net).__name__}")
        self.forward_net = forward_net
        self.backward_net = backward_net
        self.dim = dim if dim is not None else getattr(forward_net or backward_net, "dim", None)
        self._source0 = None if source0 is None else _as_source(source0, "source0")
        self.unavailable = {}
        if forward_net is None:
            self.unavailable["drift"] = "it has no forward net: fit it with direction='forward' (or use imf)"
        if backward_net is None:
            self.unavailable["backward_drift"] = "it has no backward net: fit it with direction='backward' (or use imf)"
        if self._source0 is None:
            self.unavailable["start"] = "it keeps no source at t=0: build it with source0=... or pass start points"
        self.history: dict = {}

    @torch.no_grad()
    def drift(self, x, t):
        if self.forward_net is None:
            raise self._unavailable("drift")
        x = _net_input(self.forward_net, x, self.dim)
        return self.forward_net(x, time_column(t, x))

    @torch.no_grad()
    def backward_drift(self, x, t):
        if self.backward_net is None:
            raise self._unavailable("backward_drift")
        x = _net_input(self.backward_net, x, self.dim)
        return self.backward_net(x, time_column(t, x))

    def start(self, n: int, *, seed: Seed = 0, device=None) -> torch.Tensor:
        """``n`` draws from the source at t = 0 (the one the bridge was fitted from)."""
        if self._source0 is None:
            raise self._unavailable("start")
        n = check_int(n, "n")
        dev = check_device(device)
        x0 = self._source0(n, generator(seed, dev))
        return x0 if device is None else x0.to(dev)

    def __repr__(self):
        return (f"MatchedBridge(sigma={self.sigma}, forward={self.forward_net is not None}, "
                f"backward={self.backward_net is not None})")


def _net_input(net, x, dim):
    """``x`` checked for a network's drift, on the device of the network's parameters."""
    x = check_state(x, "x", dim=dim)
    p = next(net.parameters(), None) if isinstance(net, nn.Module) else None
    if p is not None and p.device != x.device:
        raise ValueError(f"x is on {x.device} but the network is on {p.device}: move one of them")
    return x


def simulate(bridge: Bridge, x0: torch.Tensor, *, steps: int = 100, seed: Seed = 0,
             denoise_last: bool = True) -> torch.Tensor:
    """Forward Euler–Maruyama from ``x0`` to t = 1, with a noise-free last step by default.

    The drift of a matched bridge is ``b(x, t) = E[(X1 − x)/(1 − t) | X_t = x]``, so one Euler step
    of size h = 1 − t from t = 1 − h lands on ``x + h b = E[X1 | X_{1−h} = x]``: the posterior mean
    of the end point. Adding σ√h noise after it (plain Euler–Maruyama) only blurs the samples by
    σ√h, so ``denoise_last=True`` skips it. Uses :func:`lsbcore.sde.sample` for the first
    ``steps − 1`` steps. Notebook 02 §"SDE vs ODE sampling".
    """
    from ..sde import sample as sde_sample

    steps = check_int(steps, "steps", minimum=1)
    if not denoise_last:
        return sde_sample(bridge, x0, steps=steps, seed=seed).x
    h = 1.0 / steps
    x = x0 if steps == 1 else sde_sample(bridge, x0, steps=steps - 1, t1=1.0 - h, seed=seed).x
    x = check_points(x, "x0")
    return x + h * bridge.drift(x, torch.full((x.shape[0], 1), 1.0 - h, dtype=x.dtype, device=x.device))


class EndpointDrift(nn.Module):
    """A drift parametrised by an end-point predictor: ``b(x, t) = (D(x, t) − x)/(1 − t)``.

    ``D`` estimates E[X1 | X_t = x] (forward) — or E[X0 | X_t = x] with ``b̂ = (D − x)/t``
    (backward) — a bounded target, whereas the drift grows like 1/(1 − t) near the end point.
    With the weight (1 − t)² (resp. t²) the shared ``matching_loss`` on the drift target becomes
    ‖D − X1‖², a regression with bounded noise. ``t_gap`` clamps the divisor away from 0.
    Notebook 02 §"Bridge matching".
    """

    def __init__(self, net: nn.Module, direction: str = "forward", t_gap: float = 1e-4):
        super().__init__()
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
        if not callable(net):
            raise TypeError(f"net must be callable as net(x, t), got {type(net).__name__}")
        t_gap = check_positive(t_gap, "t_gap")
        if t_gap >= 1:
            raise ValueError(f"t_gap must be < 1, got {t_gap}")
        self.net, self.direction, self.t_gap = net, direction, t_gap
        self.dim = getattr(net, "dim", None)

    def remaining(self, t: torch.Tensor) -> torch.Tensor:
        """1 − t (forward) or t (backward): the time left to the end point, clamped at ``t_gap``."""
        return ((1 - t) if self.direction == "forward" else t).clamp(min=self.t_gap)

    def forward(self, x, t):
        x = check_state(x, "x", dim=self.dim)
        t = time_column(t, x)
        return (self.net(x, t) - x) / self.remaining(t)


def _as_source(source, name: str, device=None) -> Callable:
    """A sampler ``(n, generator) → (n, d)`` from a tensor of points (rows drawn with replacement)
    or from anything with ``.sample(n, seed=...)`` (a lsbcore marginal) or a callable ``f(n, gen)``.

    Points are drawn where the tensor lives; a callable gets the training generator (on the net's
    device) and must answer on its device. A marginal samples with that generator on the CPU; with a
    non-CPU ``device`` it samples on the CPU from a seed taken from the generator and the points move
    to ``device`` (:func:`lsbcore.utils.on_device_source`)."""
    if isinstance(source, torch.Tensor):
        pts = check_points(source, name)
        return lambda n, gen: pts[torch.randint(0, pts.shape[0], (n,), generator=gen, device=gen.device).to(pts.device)]
    if callable(getattr(source, "sample", None)):
        draw = lambda n, gen: source.sample(n, seed=gen)  # noqa: E731
        dev = None if device is None else torch.device(device)
        return draw if dev is None or dev.type == "cpu" else on_device_source(draw, dev)
    if callable(source):
        return source
    raise TypeError(f"{name} must be a (n, d) tensor, a marginal with .sample(n, seed) or a callable (n, gen)")


def fit_bridge(source0: Source, source1: Source, sigma: float, *, coupling: str = "sinkhorn",
               direction: str = "forward", net: Optional[nn.Module] = None, steps: int = 2000,
               batch_size: int = 256, lr: float = 1e-3, t_gap: float = 1e-2, seed: int = 0,
               ema: float = 0.999, progress: bool = True, checkpoint=None, pair_fn: Optional[Callable] = None,
               sinkhorn_kwargs: Optional[dict] = None, parametrization: str = "drift",
               coupling_every: int = 1, plan_size: Optional[int] = None, time_power: float = 1.0,
               device=None, **fit_kwargs) -> MatchedBridge:
    """Bridge matching: fit one direction's drift on minibatches coupled by ``coupling``.

    Each step draws ``batch_size`` points from each source, pairs them (``couple``), samples
    ``t`` ~ U[0, 1 − t_gap] (forward; U[t_gap, 1] backward) and the Brownian bridge ``X_t``, and takes
    an Adam step on :func:`matching_loss`.
    Sources are point tensors, marginals or callables ``(n, gen) → points``; ``pair_fn(n, gen) →
    (x0, x1)`` replaces the two sources and the coupling (IMF uses it to feed simulated pairs).
    ``net`` defaults to ``TimeMLP(dim)`` (pass your own to train on another device; it is trained in
    place). The Sinkhorn coupling runs with ``tol=1e-3, max_iter=500`` unless ``sinkhorn_kwargs``
    says otherwise (a minibatch plan need not be more exact than the minibatch itself); other
    keyword arguments go to :func:`lsbcore.train.fit` (e.g. ``checkpoint_every``, ``grad_clip``).
    ``parametrization="endpoint"`` wraps the net in :class:`EndpointDrift` and weights the loss by
    (1 − t)² (forward) / t² (backward): the same minimiser, a better-conditioned regression.
    ``coupling_every=k`` (Sinkhorn coupling only) solves the minibatch plan every k steps and, in
    between, draws fresh pairs from the same plan (with fresh t and noise): the plan costs ~4× a
    width-64 network step, so k = 2 buys ~1.6× the steps in the same time (``bench/training.py``).
    The pairs of one plan are still exact draws of the minibatch SB coupling; only consecutive
    steps share their points. With a checkpoint, ``checkpoint_every`` must be a multiple of k
    (so that a resumed run equals an uninterrupted one).
    ``plan_size=m`` (Sinkhorn coupling only; default ``batch_size``) solves each plan between m points
    of each source and draws the ``batch_size`` pairs of a step from it. The regression's noise is
    mostly the bridge's (its t and Brownian noise, large near t = 1), and a row costs far less than a
    plan: a width-64 step on 1024 rows costs ~1.8× one on 256, a 256-point plan ~4×. So
    ``batch_size=1024, plan_size=256, coupling_every=4`` averages 4× the bridge draws per step at
    about the cost of ``batch_size=256, coupling_every=2`` (``bench/training.py``).
    ``time_power=p`` (≥ 1) draws more training times near the data end (:func:`sample_times`); the
    minimiser is the same drift. p = 2 fitted the moons' edges and the gap between them better
    (``bench/training.py``).
    Device: the work (the default net, minibatches, the returned bridge) happens where the point
    tensors live; with marginals or callables as sources, ``device`` (default None: the CPU, or the
    device of a given ``net``) says where; a given ``net`` must already be there (ValueError otherwise).
    Returns a :class:`MatchedBridge` using the EMA weights (its ``start`` draws from ``source0``).
    Notebook 02 §"Bridge matching".
    """
    dev = work_device(device, net=net, source0=source0, source1=source1)
    sigma = check_scale(sigma, "sigma", allow_zero=True)
    seed = check_seed(seed)
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
    if coupling not in COUPLINGS:
        raise ValueError(f"coupling must be one of {COUPLINGS}, got {coupling!r}")
    batch_size = check_int(batch_size, "batch_size", minimum=2)
    t_gap = check_positive(t_gap, "t_gap")
    if t_gap >= 1:
        raise ValueError(f"t_gap must be < 1, got {t_gap}")
    time_power = check_time_power(time_power)
    if sinkhorn_kwargs is not None and not isinstance(sinkhorn_kwargs, dict):
        raise TypeError(f"sinkhorn_kwargs must be a dict, got {type(sinkhorn_kwargs).__name__}")
    sk = dict(tol=1e-3, max_iter=500, on_fail="warn")
    sk.update(sinkhorn_kwargs or {})
    coupling_every = check_int(coupling_every, "coupling_every")
    plan_size = batch_size if plan_size is None else check_int(plan_size, "plan_size", minimum=2)
    if coupling in ("sinkhorn", "ot") and plan_size > MAX_PLAN:
        name = "plan_size" if plan_size != batch_size else "batch_size"
        raise ValueError(f"{name}={plan_size} would couple through a {plan_size} × {plan_size} cost matrix "
                         f"({plan_size**2 * 4 / 2**30:.3g} GiB in float32); keep the plan at ≤ {MAX_PLAN} points "
                         f"(draw a larger batch from a smaller plan with plan_size)")
    if plan_size != batch_size and (coupling != "sinkhorn" or pair_fn is not None):
        raise ValueError(f"plan_size={plan_size} (≠ batch_size={batch_size}) draws the pairs from a minibatch "
                         f"Sinkhorn plan: it needs coupling='sinkhorn' and no pair_fn")
    if coupling_every > 1:
        if coupling != "sinkhorn" or pair_fn is not None:
            raise ValueError("coupling_every > 1 reuses a minibatch Sinkhorn plan: it needs "
                             "coupling='sinkhorn' and no pair_fn")
        if checkpoint is not None and fit_kwargs.get("checkpoint_every", 1000) % coupling_every:
            raise ValueError(f"checkpoint_every must be a multiple of coupling_every={coupling_every} "
                             f"(a resumed run must start at a fresh plan)")
    s0 = None
    plan: dict = {}
    reuse = coupling_every > 1 or plan_size != batch_size      # pairs drawn from a kept plan
    if pair_fn is None:
        s0, s1 = _as_source(source0, "source0", dev), _as_source(source1, "source1", dev)

        def pair_fn(n, gen, step=0):
            if not reuse:
                return couple(s0(n, gen), s1(n, gen), coupling, sigma=sigma, seed=gen,
                              **(sk if coupling == "sinkhorn" else {}))
            if step % coupling_every == 0 or "x0" not in plan:
                # the pairs of all k steps at once: k·n independent draws from one plan
                x0, x1 = couple(s0(plan_size, gen), s1(plan_size, gen), coupling, sigma=sigma, seed=gen,
                                pairs=n * coupling_every, **sk)
                plan.update(x0=x0.view(coupling_every, n, -1), x1=x1.view(coupling_every, n, -1))
            k = step % coupling_every
            return plan["x0"][k], plan["x1"][k]
    elif not callable(pair_fn):
        raise TypeError(f"pair_fn must be callable as pair_fn(n, gen), got {type(pair_fn).__name__}")

    if parametrization not in ("drift", "endpoint"):
        raise ValueError(f"parametrization must be 'drift' or 'endpoint', got {parametrization!r}")
    if net is None:
        # the net's input size from two points (our own sources need no coupling for that)
        probe = s0(2, generator(seed, dev)) if s0 is not None else pair_fn(2, generator(seed, dev))[0]
        net = TimeMLP(probe.shape[1], seed=seed).to(probe.device if dev is None else dev)
    if parametrization == "endpoint" and not isinstance(net, EndpointDrift):
        net = EndpointDrift(net, direction)
    endpoint = isinstance(net, EndpointDrift)

    def loss_fn(model, step, gen):
        x0, x1 = pair_fn(batch_size, gen, step) if reuse else pair_fn(batch_size, gen)
        t = sample_times(batch_size, direction, t_gap, x0, gen, time_power)
        z = torch.randn(x0.shape, generator=gen, device=x0.device, dtype=x0.dtype)
        x_t = (1 - t) * x0 + t * x1 + sigma * torch.sqrt(t * (1 - t)) * z
        weight = model.remaining(t) ** 2 if endpoint else None
        return matching_loss(model, x_t, t, bridge_target(x0, x1, x_t, t, direction), weight)

    hist = fit(net, loss_fn, steps, lr=lr, seed=seed, ema=ema, progress=progress, checkpoint=checkpoint,
               desc=f"bridge matching ({direction})", **fit_kwargs)
    trained = (hist.ema if hist.ema is not None else net).eval()
    fwd, bwd = (trained, None) if direction == "forward" else (None, trained)
    bridge = MatchedBridge(fwd, sigma, bwd, dim=getattr(net, "dim", None), source0=s0)
    bridge.history = {direction: hist.losses}
    return bridge


def imf(source0: Source, source1: Source, sigma: float, *, iterations: int = 4, steps: int = 1000,
        batch_size: int = 256, pool: int = 2048, sample_steps: int = 50, coupling: str = "independent",
        net: Optional[nn.Module] = None, lr: float = 1e-3, t_gap: float = 1e-2, seed: int = 0,
        ema: float = 0.999, progress: bool = True, sinkhorn_kwargs: Optional[dict] = None,
        time_power: float = 1.0, device=None) -> MatchedBridge:
    """Iterative Markovian fitting (DSBM, Shi et al. 2023): alternate backward and forward refits.

    Iteration 0 fits the forward drift by bridge matching on ``coupling``. Then, alternately:
    simulate the current forward SDE from ``pool`` fresh X0 to get pairs (X0, X̂1), fit the
    backward drift on them; simulate the backward SDE from fresh X1 to get (X̂0, X1), fit the
    forward drift. Each refit is a Markovian projection of a bridge mixture, each new coupling a
    reciprocal projection; the fixed point is the Schrödinger bridge. ``iterations`` counts the
    refits after the first fit; each refit warm-starts from the previous net of its direction.
    ``net`` (default ``TimeMLP(dim)``) is the untrained template both directions start from.
    Simulation uses lsbcore.sde's Euler–Maruyama with ``sample_steps`` steps over [0, 1] (the drift
    is never evaluated at the singular end point: the last forward step uses t = 1 − h).
    Device: as :func:`fit_bridge` — where the point tensors live, else ``device`` (None: the CPU or
    the device of a given ``net``); the simulated pairs stay there.
    ``time_power`` (every fit) packs the training times towards each fit's data end, as in
    :func:`fit_bridge`.
    Notebook 02 §"Iterative Markovian fitting".
    """
    from ..sde import sample as sde_sample

    dev = work_device(device, net=net, source0=source0, source1=source1)
    iterations = check_int(iterations, "iterations", minimum=0)
    pool = check_int(pool, "pool", minimum=2)
    sample_steps = check_int(sample_steps, "sample_steps")
    seed = check_seed(seed)
    s0, s1 = _as_source(source0, "source0", dev), _as_source(source1, "source1", dev)
    common = dict(batch_size=batch_size, lr=lr, t_gap=t_gap, ema=ema, progress=progress, time_power=time_power)
    if net is None:
        probe = s0(2, generator(seed, dev))
        net = TimeMLP(probe.shape[1], seed=seed).to(probe.device if dev is None else dev)
    template = copy.deepcopy(net)
    bridge = fit_bridge(s0, s1, sigma, coupling=coupling, net=net, steps=steps, seed=seed,
                        sinkhorn_kwargs=sinkhorn_kwargs, **common)
    histories = {"forward_0": bridge.history["forward"]}
    fwd_net, bwd_net = bridge.forward_net, None
    gen = generator(seed + 1, next(net.parameters()).device)
    for k in range(1, iterations + 1):
        direction = "backward" if k % 2 == 1 else "forward"
        if direction == "backward":   # pairs (X0, X̂1) from the forward SDE
            x0 = s0(pool, gen)
            x1 = sde_sample(MatchedBridge(fwd_net, sigma), x0, steps=sample_steps, seed=gen).x
        else:                          # pairs (X̂0, X1) from the backward SDE
            x1 = s1(pool, gen)
            x0 = sde_sample(MatchedBridge(None, sigma, bwd_net), x1, steps=sample_steps,
                            direction="backward", seed=gen).x
        pairs = (x0.detach(), x1.detach())

        def pair_fn(n, gen, pairs=pairs):
            idx = torch.randint(0, pairs[0].shape[0], (n,), generator=gen, device=gen.device)
            idx = idx.to(pairs[0].device)
            return pairs[0][idx], pairs[1][idx]

        warm = bwd_net if direction == "backward" else fwd_net
        start = copy.deepcopy(warm if warm is not None else template).train().requires_grad_(True)
        new = fit_bridge(None, None, sigma, direction=direction, net=start, steps=steps, seed=seed + k,
                         pair_fn=pair_fn, **common)
        histories[f"{direction}_{k}"] = new.history[direction]
        if direction == "backward":
            bwd_net = new.backward_net
        else:
            fwd_net = new.forward_net
    out = MatchedBridge(fwd_net, sigma, bwd_net, dim=bridge.dim, source0=s0)
    out.history = histories
    return out


def _check_pairs(x0, x1, t):
    x0 = check_points(x0, "x0")
    x1 = check_points(x1, "x1", dim=x0.shape[1])
    if x0.shape[0] != x1.shape[0]:
        raise ValueError(f"x0 and x1 must have the same number of rows, got {x0.shape[0]} and {x1.shape[0]}")
    check_same_device(x0=x0, x1=x1)
    t = check_time(t, "t", batch=x0.shape[0], like=x0)
    return x0, x1, t

