"""One sampler for every bridge: Euler–Maruyama for the SDE, Heun for the probability-flow ODE.

Any object with the :class:`~lsbcore.bridges.Bridge` face works (``drift``, ``backward_drift``,
``velocity``, ``diffusion(t)`` or a constant ``sigma``). On the uniform grid t_k = t0 + k h:

    SDE, forward  (t: t0 → t1):  x_{k+1} = x_k + h · drift(x_k, t_k) + g(t_k) √h ξ_k
    SDE, backward (t: t1 → t0):  x_{k+1} = x_k + h · backward_drift(x_k, t_k) + g(t_k) √h ξ_k
    ODE (either direction):     Heun's method on dx/dt = velocity(x, t)  (2 evaluations per step)

The whole batch moves at once on the tensors' device; the time grid is precomputed as a tensor and
the loop does no host synchronisation (no ``.item()``/``.cpu()``) and no per-sample Python work.

**Time convention.** The drift is called as ``drift(x, t)`` with ``t`` a ``(batch, 1)`` tensor of
equal entries (a stride-0 ``expand`` of the time grid, not a copy), on ``x``'s device and dtype —
the shape a time-conditioned network concatenates to ``x`` and that closed-form drifts broadcast.

Notebook 02 §"SDE vs ODE sampling" explains the schemes and their error (weak order 1 for
Euler–Maruyama, order 2 for Heun).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import torch

from .bridge import Bridge
from .utils import Seed, check_device, check_int, check_points, check_real, generator

_METHODS = ("sde", "ode")
_DIRECTIONS = ("forward", "backward")


@dataclass
class SampleResult:
    """What a sampler returns.

    x: final states ``(batch, dim)``; traj: ``(steps + 1, batch, dim)`` states on the grid (or None);
    times: the grid ``(steps + 1,)`` in the order visited; nfe: drift/velocity evaluations per sample.
    """

    x: torch.Tensor
    traj: Optional[torch.Tensor]
    times: torch.Tensor
    nfe: int

    def cpu(self) -> "SampleResult":
        """The same result with its tensors on the CPU (for metrics, NumPy and plots); no copy on the CPU."""
        return SampleResult(self.x.cpu(), None if self.traj is None else self.traj.cpu(), self.times.cpu(), self.nfe)


def _check_bridge(bridge, method: str, direction: str) -> None:
    need = "velocity" if method == "ode" else ("drift" if direction == "forward" else "backward_drift")
    if isinstance(bridge, Bridge):
        if not bridge.provides(need):
            raise bridge._unavailable(need)
        return
    if not callable(getattr(bridge, need, None)):
        raise TypeError(f"bridge must have a callable .{need}(x, t) for method={method!r}, "
                        f"direction={direction!r}; got {type(bridge).__name__}")
    if method == "sde" and not (callable(getattr(bridge, "diffusion", None)) or hasattr(bridge, "sigma")):
        raise TypeError("bridge must have .diffusion(t) or a constant .sigma for method='sde'")


def _grid(t0, t1, steps: int, direction: str, like: torch.Tensor):
    t0, t1 = check_real(t0, "t0"), check_real(t1, "t1")
    for v, name in ((t0, "t0"), (t1, "t1")):
        if not 0.0 <= v <= 1.0:
            raise ValueError(f"{name} must lie in [0, 1], got {v}")
    if not t0 < t1:
        raise ValueError(f"t0 must be < t1 (the interval is [t0, t1]; set direction= for reverse time), "
                         f"got t0={t0}, t1={t1}")
    grid = torch.linspace(float(t0), float(t1), steps + 1, dtype=torch.float64)
    if direction == "backward":
        grid = grid.flip(0)
    hs = (grid[1:] - grid[:-1]).tolist()  # signed steps, as Python floats (computed on the host once)
    times = grid.to(device=like.device, dtype=like.dtype)
    return times, hs


def sample(bridge, x, *, method: str = "sde", steps: int = 100, t0: float = 0.0, t1: float = 1.0,
           direction: str = "forward", seed: Seed = 0, keep_traj: bool = False,
           check_finite: bool = True) -> SampleResult:
    """Integrate a bridge from ``x`` over [t0, t1]: ``method="sde"`` (Euler–Maruyama) or ``"ode"`` (Heun).

    Args:
        bridge: anything with the Bridge face (``drift``/``backward_drift``/``velocity``, ``diffusion``).
        x: starting states ``(batch, dim)``: samples of the t0 marginal (forward) or t1 marginal (backward).
        steps: number of time steps; NFE = steps (SDE) or 2·steps (ODE).
        t0, t1: the time interval, 0 ≤ t0 < t1 ≤ 1 (e.g. t1 = 1 − δ for early stopping).
        direction: ``"forward"`` runs t0 → t1 with ``drift``; ``"backward"`` runs t1 → t0 with
            ``backward_drift`` (SDE) or the velocity in reverse time (ODE).
        seed: int or ``torch.Generator`` on ``x``'s device, for the Brownian increments. If ``x`` was
            drawn with ``torch.randn`` from the same integer seed, the first increments *equal* its
            noise and the paths are biased: use another seed, or pass the same generator on.
        keep_traj: also return the states at every grid time.
        check_finite: after the loop (one host sync), raise if the samples contain NaN/inf.

    Notebook 02 §"SDE vs ODE sampling".
    """
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}, got {method!r}")
    if direction not in _DIRECTIONS:
        raise ValueError(f"direction must be one of {_DIRECTIONS}, got {direction!r}")
    _check_bridge(bridge, method, direction)
    x = check_points(x, "x", dim=bridge.dim if isinstance(bridge, Bridge) else None)
    steps = check_int(steps, "steps", minimum=1)
    for flag, name in ((keep_traj, "keep_traj"), (check_finite, "check_finite")):
        if not isinstance(flag, bool):
            raise TypeError(f"{name} must be True or False, got {type(flag).__name__}")
    if isinstance(seed, torch.Generator) and seed.device.type != x.device.type:
        raise ValueError(f"seed is a generator on {seed.device} but x is on {x.device}")
    times, hs = _grid(t0, t1, steps, direction, x)
    # (steps+1, batch, 1) view of the grid: t_full[k] is a stride-0 (batch, 1) tensor, no copy
    t_full = times.view(-1, 1, 1).expand(-1, x.shape[0], 1)
    traj = None
    if keep_traj:
        traj = torch.empty((steps + 1,) + tuple(x.shape), dtype=x.dtype, device=x.device)
        traj[0] = x
    if method == "sde":
        f = _method(bridge, "drift" if direction == "forward" else "backward_drift")
        diffusion = bridge.diffusion if callable(getattr(bridge, "diffusion", None)) else (lambda t: bridge.sigma)
        gen = generator(seed, x.device)
        x = _euler_maruyama(f, diffusion, x, t_full, hs, gen, traj)
        nfe = steps
    else:
        x = _heun(_method(bridge, "velocity"), x, t_full, hs, traj)
        nfe = 2 * steps
    if check_finite and not bool(torch.isfinite(x).all()):
        raise FloatingPointError(
            f"the {method.upper()} sampler produced NaN/inf: the drift blew up (a drift singular at the "
            f"end point? use t1 < 1 or t0 > 0), or steps={steps} is too few for a stiff drift")
    return SampleResult(x=x, traj=traj, times=times, nfe=nfe)


def _method(bridge, name: str):
    """The bridge's method ``name``; for a :class:`Bridge`, without the per-call checks of x and t
    (the sampler checked them once, before the loop)."""
    return bridge.unchecked(name) if isinstance(bridge, Bridge) else getattr(bridge, name)


def _euler_maruyama(f, diffusion, x, t_full, hs, gen, traj):
    shape, dev, dt = x.shape, x.device, x.dtype
    for k, h in enumerate(hs):
        h = abs(h)  # each direction's drift is written in its own (forward-running) time
        t = t_full[k]
        sd = diffusion(t)
        noise = torch.randn(shape, generator=gen, device=dev, dtype=dt)
        x = torch.add(x, f(x, t), alpha=h)
        if isinstance(sd, torch.Tensor):
            x = x + (sd * math.sqrt(h)) * noise
        elif sd != 0:
            x = torch.add(x, noise, alpha=float(sd) * math.sqrt(h))
        if traj is not None:
            traj[k + 1] = x
    return x


def _heun(v, x, t_full, hs, traj):
    for k, h in enumerate(hs):
        t, t_next = t_full[k], t_full[k + 1]
        v0 = v(x, t)
        x_pred = torch.add(x, v0, alpha=h)
        x = torch.add(x, v0 + v(x_pred, t_next), alpha=0.5 * h)
        if traj is not None:
            traj[k + 1] = x
    return x


def generate(bridge: Bridge, n: int, *, method: str = "sde", steps: int = 100, t_gap: float = 0.0,
             seed: Seed = 0, device=None, keep_traj: bool = False) -> SampleResult:
    """Generate ``n`` samples of a bridge's data marginal: draw start points with ``bridge.start`` and
    integrate towards ``bridge.data_end`` (forward if the data sit at t = 1, backward if at t = 0).

    ``t_gap`` stops that far from the data end (e.g. 1e-3 where the drift is singular there). One
    generator, seeded once, draws the start points and then the Brownian increments, so the two never
    share noise. Notebook 02 §1 (the bridge explorer).
    """
    if not isinstance(bridge, Bridge):
        raise TypeError(f"bridge must be an lsbcore Bridge, got {type(bridge).__name__}")
    n = check_int(n, "n")
    gap = check_real(t_gap, "t_gap")
    if not 0.0 <= gap < 1.0:
        raise ValueError(f"t_gap must lie in [0, 1), got {gap}")
    dev = check_device(device)
    gen = generator(seed, dev)
    x = bridge.start(n, seed=gen, device=dev)
    if bridge.data_end == 1:
        return sample(bridge, x, method=method, steps=steps, t0=0.0, t1=1.0 - gap, direction="forward",
                      seed=gen, keep_traj=keep_traj)
    return sample(bridge, x, method=method, steps=steps, t0=gap, t1=1.0, direction="backward",
                  seed=gen, keep_traj=keep_traj)


def sample_sde(bridge, x, **kwargs) -> SampleResult:
    """Euler–Maruyama for ``dX = drift dt + g dW`` (``sample(..., method="sde")``). Notebook 02 §"SDE vs ODE sampling"."""
    return sample(bridge, x, method="sde", **kwargs)


def sample_ode(bridge, x, **kwargs) -> SampleResult:
    """Heun's method for the probability-flow ODE ``dx/dt = velocity`` (``sample(..., method="ode")``).

    Notebook 02 §"SDE vs ODE sampling". ``seed`` is accepted and ignored (the ODE is deterministic).
    """
    return sample(bridge, x, method="ode", **kwargs)
