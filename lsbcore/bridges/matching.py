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

Time is sampled from [0, 1 − t_eps] (forward) or [t_eps, 1] (backward): the targets have variance
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
from ..utils import Seed, check_int, check_points, check_positive, check_same_device, generator
from ..bridge import Bridge

__all__ = ["brownian_bridge", "bridge_target", "matching_loss", "couple", "COUPLINGS",
           "MatchedBridge", "EndpointDrift", "fit_bridge", "imf", "simulate"]

COUPLINGS = ("independent", "sinkhorn", "ot")
DIRECTIONS = ("forward", "backward")
Source = Union[torch.Tensor, Callable]


# ---------------------------------------------------------------------------------- the regression
def brownian_bridge(x0, x1, t, sigma: float, seed: Seed = 0) -> torch.Tensor:
    """A sample of ``X_t = (1−t) x0 + t x1 + σ√(t(1−t)) Z`` given its end points (Notebook 02 §"Brownian bridges").

    ``x0, x1``: ``(batch, d)``; ``t``: ``(batch, 1)`` (or anything broadcastable) in [0, 1].
    The same as :func:`lsbcore.reference.brownian_bridge_sample`, and also accepts σ = 0.
    """
    x0, x1, t = _check_pairs(x0, x1, t)
    sigma = check_positive(sigma, "sigma", allow_zero=True)
    if sigma == 0:                                   # flow matching: the straight line, no noise
        return (1 - t) * x0 + t * x1
    from .reference import brownian_bridge_sample

    return brownian_bridge_sample(x0, x1, t, sigma, seed=seed)


def bridge_target(x0, x1, x_t, t, direction: str = "forward") -> torch.Tensor:
    """The regression target: ``(x1 − x_t)/(1 − t)`` (forward) or ``(x0 − x_t)/t`` (backward).

    Its conditional expectation given X_t = x is the drift of the Markovian projection
    (Notebook 02 §"Bridge matching"). The caller keeps t away from 1 (forward) / 0 (backward).
    """
    if direction == "forward":
        return (x1 - x_t) / (1 - t)
    if direction == "backward":
        return (x0 - x_t) / t
    raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")


def matching_loss(net: Callable, x_t: torch.Tensor, t: torch.Tensor, target: torch.Tensor,
                  weight: Optional[torch.Tensor] = None) -> torch.Tensor:
    """THE regression loss of every learned bridge: ``mean_batch w · ‖net(x_t, t) − target‖²``.

    Minimised over all functions, it gives ``net(x, t) = E[target | X_t = x, t]``: the drift.
    ``weight`` (batch,) or (batch, 1) reweights times (e.g. the λ(t) of score matching); the squared
    norm is summed over dimensions, averaged over the batch. Notebook 02 §"Bridge matching".
    """
    pred = net(x_t, t)
    if pred.shape != target.shape:
        raise ValueError(f"net output has shape {tuple(pred.shape)} but target has {tuple(target.shape)}")
    sq = ((pred - target) ** 2).sum(-1)
    if weight is not None:
        sq = sq * weight.reshape(-1)
    return sq.mean()


def sample_times(n: int, direction: str, t_eps: float, like: torch.Tensor, gen) -> torch.Tensor:
    """Times for the regression: U[0, 1 − t_eps] (forward) or U[t_eps, 1] (backward), shape (n, 1)."""
    u = torch.rand(n, 1, generator=gen, device=like.device, dtype=like.dtype) * (1 - t_eps)
    return u if direction == "forward" else u + t_eps


# ---------------------------------------------------------------------------------- couplings
def couple(x0, x1, coupling: str = "sinkhorn", *, sigma: Optional[float] = None,
           eps: Optional[float] = None, seed: Seed = 0, **sinkhorn_kwargs) -> tuple[torch.Tensor, torch.Tensor]:
    """Pair the rows of two equally sized batches: ``(x0[i_k], x1[j_k])`` for k = 1..n.

    - ``"independent"``: the product coupling (the pairs as given; shuffle beforehand if needed).
    - ``"sinkhorn"``: n pairs drawn from the entropic-OT plan with ``eps = 2σ²`` (the static SB of
      σW), computed by :func:`lsbcore.schrodinger.sinkhorn.sinkhorn` on the minibatch (SB-CFM).
    - ``"ot"``: exact OT (``ot.emd``): for uniform equal-size batches a permutation, used as is.

    Notebook 02 §"Couplings". Extra keyword arguments go to ``sinkhorn`` (e.g. ``tol``, ``max_iter``).
    """
    x0 = check_points(x0, "x0")
    x1 = check_points(x1, "x1", dim=x0.shape[1])
    check_same_device(x0=x0, x1=x1)
    if x0.shape[0] != x1.shape[0]:
        raise ValueError(f"x0 and x1 must have the same number of rows, got {x0.shape[0]} and {x1.shape[0]}")
    if coupling == "independent":
        return x0, x1
    if coupling == "ot":
        return x0, x1[_emd_permutation(x0, x1)]
    if coupling == "sinkhorn":
        if eps is None:
            if sigma is None:
                raise ValueError("the sinkhorn coupling needs sigma (eps = 2σ²) or eps")
            eps = 2 * check_positive(sigma, "sigma") ** 2
        from ..schrodinger import sinkhorn

        res = sinkhorn(x0, x1, check_positive(eps, "eps"), **sinkhorn_kwargs)
        i, j = res.sample_indices(x0.shape[0], seed=generator(seed, x0.device))
        return x0[i], x1[j]
    raise ValueError(f"coupling must be one of {COUPLINGS}, got {coupling!r}")


def _emd_permutation(x0: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
    """j = perm[i]: the exact OT matching of two uniform point sets of equal size (POT's emd)."""
    import numpy as np
    import ot

    a = x0.detach().double().cpu().numpy()
    b = x1.detach().double().cpu().numpy()
    M = ot.dist(a, b)  # squared Euclidean
    n = a.shape[0]
    plan = ot.emd(np.full(n, 1.0 / n), np.full(n, 1.0 / n), M)
    return torch.as_tensor(plan.argmax(axis=1), device=x0.device)


# ---------------------------------------------------------------------------------- the learned bridge
class MatchedBridge(Bridge):
    """A bridge whose drifts are networks: ``drift = forward_net``, ``backward_drift = backward_net``.

    ``velocity`` (probability-flow ODE) is ½(drift − backward_drift) and needs both.
    ``history`` keeps the training losses. Notebook 02 §"Bridge matching".
    """

    def __init__(self, forward_net: Optional[nn.Module], sigma: float,
                 backward_net: Optional[nn.Module] = None, *, dim: Optional[int] = None):
        self.sigma = check_positive(sigma, "sigma", allow_zero=True)
        self.forward_net = forward_net
        self.backward_net = backward_net
        self.dim = dim if dim is not None else getattr(forward_net or backward_net, "dim", None)
        self.history: dict = {}

    @torch.no_grad()
    def drift(self, x, t):
        if self.forward_net is None:
            raise NotImplementedError("this MatchedBridge has no forward net (train direction='forward')")
        return self.forward_net(x, t)

    @torch.no_grad()
    def backward_drift(self, x, t):
        if self.backward_net is None:
            raise NotImplementedError("this MatchedBridge has no backward net (train direction='backward' or use imf)")
        return self.backward_net(x, t)

    def __repr__(self):
        return (f"MatchedBridge(sigma={self.sigma}, forward={self.forward_net is not None}, "
                f"backward={self.backward_net is not None})")


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
    ‖D − X1‖², a regression with bounded noise. ``gap`` clamps the divisor away from 0.
    Notebook 02 §"Bridge matching".
    """

    def __init__(self, net: nn.Module, direction: str = "forward", gap: float = 1e-4):
        super().__init__()
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
        self.net, self.direction, self.gap = net, direction, check_positive(gap, "gap")
        self.dim = getattr(net, "dim", None)

    def remaining(self, t: torch.Tensor) -> torch.Tensor:
        """1 − t (forward) or t (backward): the time left to the end point, clamped at ``gap``."""
        return ((1 - t) if self.direction == "forward" else t).clamp(min=self.gap)

    def forward(self, x, t):
        if not isinstance(t, torch.Tensor):
            t = torch.full((x.shape[0], 1), float(t), dtype=x.dtype, device=x.device)
        elif t.ndim < 2:
            t = t.reshape(-1, 1)
        return (self.net(x, t) - x) / self.remaining(t)


def _as_source(source, name: str) -> Callable:
    """A sampler ``(n, generator) → (n, d)`` from a tensor of points (rows drawn with replacement)
    or from anything with ``.sample(n, seed=...)`` (a lsbcore marginal) or a callable ``f(n, gen)``."""
    if isinstance(source, torch.Tensor):
        pts = check_points(source, name)
        return lambda n, g: pts[torch.randint(0, pts.shape[0], (n,), generator=g, device=g.device).to(pts.device)]
    if callable(getattr(source, "sample", None)):
        return lambda n, g: source.sample(n, seed=g)
    if callable(source):
        return source
    raise TypeError(f"{name} must be a (n, d) tensor, a marginal with .sample(n, seed) or a callable (n, gen)")


def fit_bridge(source0: Source, source1: Source, sigma: float, *, coupling: str = "sinkhorn",
               direction: str = "forward", net: Optional[nn.Module] = None, steps: int = 2000,
               batch_size: int = 256, lr: float = 1e-3, t_eps: float = 1e-2, seed: int = 0,
               ema: float = 0.999, progress: bool = True, checkpoint=None, pair_fn: Optional[Callable] = None,
               sinkhorn_kwargs: Optional[dict] = None, parametrization: str = "drift",
               **fit_kwargs) -> MatchedBridge:
    """Bridge matching: fit one direction's drift on minibatches coupled by ``coupling``.

    Each step draws ``batch_size`` points from each source, pairs them (``couple``), samples
    ``t`` and the Brownian bridge ``X_t``, and takes an Adam step on :func:`matching_loss`.
    Sources are point tensors, marginals or callables ``(n, gen) → points``; ``pair_fn(n, gen) →
    (x0, x1)`` replaces the two sources and the coupling (IMF uses it to feed simulated pairs).
    ``net`` defaults to ``TimeMLP(dim)`` (pass your own to train on another device; it is trained in
    place). The Sinkhorn coupling runs with ``tol=1e-3, max_iter=500`` unless ``sinkhorn_kwargs``
    says otherwise (a minibatch plan need not be more exact than the minibatch itself); other
    keyword arguments go to :func:`lsbcore.train.fit` (e.g. ``checkpoint_every``, ``grad_clip``).
    ``parametrization="endpoint"`` wraps the net in :class:`EndpointDrift` and weights the loss by
    (1 − t)² (forward) / t² (backward): the same minimiser, a better-conditioned regression.
    Returns a :class:`MatchedBridge` using the EMA weights. Notebook 02 §"Bridge matching".
    """
    sigma = check_positive(sigma, "sigma", allow_zero=True)
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
    if coupling not in COUPLINGS:
        raise ValueError(f"coupling must be one of {COUPLINGS}, got {coupling!r}")
    batch_size = check_int(batch_size, "batch_size", minimum=2)
    t_eps = check_positive(t_eps, "t_eps")
    if t_eps >= 1:
        raise ValueError(f"t_eps must be < 1, got {t_eps}")
    sk = dict(tol=1e-3, max_iter=500, on_fail="warn")
    sk.update(sinkhorn_kwargs or {})
    if pair_fn is None:
        s0, s1 = _as_source(source0, "source0"), _as_source(source1, "source1")

        def pair_fn(n, g):
            x0, x1 = s0(n, g), s1(n, g)
            return couple(x0, x1, coupling, sigma=sigma, seed=g, **(sk if coupling == "sinkhorn" else {}))

    if parametrization not in ("drift", "endpoint"):
        raise ValueError(f"parametrization must be 'drift' or 'endpoint', got {parametrization!r}")
    if net is None:
        probe = pair_fn(2, generator(seed))[0]
        net = TimeMLP(probe.shape[1], seed=seed)
    if parametrization == "endpoint" and not isinstance(net, EndpointDrift):
        net = EndpointDrift(net, direction)
    endpoint = isinstance(net, EndpointDrift)

    def loss_fn(model, step, g):
        x0, x1 = pair_fn(batch_size, g)
        t = sample_times(batch_size, direction, t_eps, x0, g)
        z = torch.randn(x0.shape, generator=g, device=x0.device, dtype=x0.dtype)
        x_t = (1 - t) * x0 + t * x1 + sigma * torch.sqrt(t * (1 - t)) * z
        weight = model.remaining(t) ** 2 if endpoint else None
        return matching_loss(model, x_t, t, bridge_target(x0, x1, x_t, t, direction), weight)

    hist = fit(net, loss_fn, steps, lr=lr, seed=seed, ema=ema, progress=progress, checkpoint=checkpoint,
               desc=f"bridge matching ({direction})", **fit_kwargs)
    trained = (hist.ema if hist.ema is not None else net).eval()
    fwd, bwd = (trained, None) if direction == "forward" else (None, trained)
    bridge = MatchedBridge(fwd, sigma, bwd, dim=getattr(net, "dim", None))
    bridge.history = {direction: hist.losses}
    return bridge


def imf(source0: Source, source1: Source, sigma: float, *, iterations: int = 4, steps: int = 1000,
        batch_size: int = 256, pool: int = 2048, sample_steps: int = 50, coupling: str = "independent",
        net: Optional[nn.Module] = None, lr: float = 1e-3, t_eps: float = 1e-2, seed: int = 0,
        ema: float = 0.999, progress: bool = True, sinkhorn_kwargs: Optional[dict] = None) -> MatchedBridge:
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
    Notebook 02 §"Iterative Markovian fitting".
    """
    from ..sde import sample as sde_sample

    iterations = check_int(iterations, "iterations", minimum=0)
    pool = check_int(pool, "pool", minimum=2)
    s0, s1 = _as_source(source0, "source0"), _as_source(source1, "source1")
    common = dict(batch_size=batch_size, lr=lr, t_eps=t_eps, ema=ema, progress=progress)
    if net is None:
        net = TimeMLP(s0(2, generator(seed)).shape[1], seed=seed)
    template = copy.deepcopy(net)
    bridge = fit_bridge(s0, s1, sigma, coupling=coupling, net=net, steps=steps, seed=seed,
                        sinkhorn_kwargs=sinkhorn_kwargs, **common)
    histories = {"forward_0": bridge.history["forward"]}
    fwd_net, bwd_net = bridge.forward_net, None
    g = generator(seed + 1)
    for k in range(1, iterations + 1):
        direction = "backward" if k % 2 == 1 else "forward"
        if direction == "backward":   # pairs (X0, X̂1) from the forward SDE
            x0 = s0(pool, g)
            x1 = sde_sample(MatchedBridge(fwd_net, sigma), x0, steps=sample_steps, seed=g).x
        else:                          # pairs (X̂0, X1) from the backward SDE
            x1 = s1(pool, g)
            x0 = sde_sample(MatchedBridge(None, sigma, bwd_net), x1, steps=sample_steps,
                            direction="backward", seed=g).x
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
    out = MatchedBridge(fwd_net, sigma, bwd_net, dim=bridge.dim)
    out.history = histories
    return out


def _check_pairs(x0, x1, t):
    x0 = check_points(x0, "x0")
    x1 = check_points(x1, "x1", dim=x0.shape[1])
    if x0.shape[0] != x1.shape[0]:
        raise ValueError(f"x0 and x1 must have the same number of rows, got {x0.shape[0]} and {x1.shape[0]}")
    check_same_device(x0=x0, x1=x1)
    from ..utils import check_time

    t = check_time(t, "t", batch=x0.shape[0], like=x0)
    return x0, x1, t

