"""Diffusion Schrödinger Bridge (DSB): iterative proportional fitting (IPF) in path space.

The Schrödinger bridge is the path law P closest in KL to the reference R (dX = σ dW on [0, 1]) among
those with P_0 = p0 and P_1 = p1. IPF (De Bortoli et al., NeurIPS 2021) reaches it by *alternating
half-bridge projections*: start from P⁰ = R started at p0, then

    Q^n     = argmin KL(Q ‖ P^n)  over Q with Q_1 = p1     (keep P^n's conditional law given X_1)
    P^{n+1} = argmin KL(P ‖ Q^n)  over P with P_0 = p0     (keep Q^n's conditional law given X_0)

Each projection only swaps one end's marginal, so it is *time reversal*: Q^n is "run P^n backwards,
but start from p1", i.e. the SDE dY = b_n(Y, 1−s) ds + σ dW with b_n the backward drift of P^n.
Learning b_n is a regression on paths simulated from P^n (the *mean matching* below); P^{n+1} is
then the forward SDE with the drift f_{n+1} of Q^n's reversal, learnt on paths simulated from Q^n.

**Mean matching (the targets used here).** On the grid t_k = k h (h = 1/K) the forward Euler chain is
X_{k+1} = F(X_k) + σ√h ξ with F(x) = x + h f(x, t_k). Its reversal steps X_k ≈ B(X_{k+1}) + σ√h ξ' with
B(x) = x + h b(x, t_{k+1}) (how ``lsbcore.sample`` runs a backward drift). Tweedie's formula for the
Gaussian kernel gives E[F(X_k) | X_{k+1} = x] = x + σ²h ∇log p_{k+1}(x), hence

    E[X_{k+1} + F(X_k) − F(X_{k+1}) | X_{k+1} = x] = x + h (σ² ∇log p_{k+1} − f)(x) = B(x)

(Nelson: backward drift = σ² score − forward drift). Dividing by h, the backward drift is the
least-squares fit of  b(X_{k+1}, t_{k+1}) ≈ (X_k − X_{k+1})/h + f(X_k, t_k) − f(X_{k+1}, t_k)
on pairs of consecutive points of simulated forward paths (DSB, Prop. 3). Symmetrically, on backward
paths (X_k = B(X_{k+1}) + noise) the forward drift fits
f(X_k, t_k) ≈ (X_{k+1} − X_k)/h + b(X_{k+1}, t_{k+1}) − b(X_k, t_{k+1}). The target noise has variance
σ²/h per coordinate (it is denoising score matching at noise level σ√h), so many pairs are needed.

**IPF vs IMF** (:func:`lsbcore.bridges.matching.imf`). Each IPF half-step matches ONE end exactly
(the one it starts from) while the other end drifts: P^n has the right p0 but only approximately p1,
and the error shrinks only as n → ∞ (Sinkhorn's iteration, in path space). IMF instead keeps both
marginals at every step (bridge mixtures over a coupling with the right ends) and iterates the
*coupling* towards the SB. Both fixed points are the Schrödinger bridge.

The returned bridge is Q^N: ``backward_drift`` = b_N (from p1 it reaches ≈ p0), ``drift`` = f_N,
its reversal (from p0 it reaches ≈ p1). Reconstructed from the paper; no code copied.
"""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

import torch
from torch import nn

from ..bridge import Bridge
from ..nets import TimeMLP
from ..train import fit
from ..utils import check_int, check_positive, check_real, check_scale, check_seed, generator, work_device
from .matching import MatchedBridge, _as_source, matching_loss

__all__ = ["DSBResult", "dsb", "gaussian_ipf_iterates", "ipf_step", "mean_matching_pairs", "shipped_comparison"]

DIRECTIONS = ("forward", "backward")
TARGETS = ("dsb", "posterior")


@dataclass
class DSBResult:
    """What :func:`dsb` returns: the bridge Q^N, one dict per iteration, and the wall time."""

    bridge: MatchedBridge
    history: list = field(default_factory=list)
    seconds: float = 0.0


def gaussian_ipf_iterates(m0: float, v0: float, m1: float, v1: float, sigma: float, iterations: int) -> list:
    """Exact IPF for p0 = N(m0, v0) → p1 = N(m1, v1) in 1-D with reference dX = σ dW: one tuple per round.

    On Gaussians every IPF iterate is Gaussian and only its (X0, X1) coupling matters, so IPF is
    Sinkhorn on jointly Gaussian couplings. Start from the reference run from p0 (Cov(X0, X1) = v0,
    X1 ~ N(m0, v0 + σ²)); each round keeps the law of X0 given X1 and sets X1 ~ p1 (Q^n), then keeps
    the law of X1 given X0 and sets X0 ~ p0 (P^{n+1}). Returns ``[(cov, mean1, var1), ...]``: after
    round n = 1..``iterations``, Cov(X0, X1), E X1 and Var X1 of the forward process P^n (what
    :func:`dsb`'s ``drift`` simulates from p0). They converge to the Schrödinger bridge's coupling
    (``GaussianBridge(m0, v0, m1, v1, sigma).cross_cov``) and to (m1, v1).
    """
    m0, m1 = check_real(m0, "m0"), check_real(m1, "m1")
    v0, v1 = check_positive(v0, "v0"), check_positive(v1, "v1")
    s2 = check_scale(sigma, "sigma") ** 2
    iterations = check_int(iterations, "iterations")
    a0, w0, a1, w1, c = m0, v0, m0, v0 + s2, v0          # the law of (X0, X1) under the reference
    out = []
    for _ in range(iterations):
        beta, r = c / w1, w0 - c * c / w1                # X0 | X1 ~ N(a0 + beta (x1 − a1), r); X1 ~ p1
        a0, w0, c, a1, w1 = a0 + beta * (m1 - a1), beta * beta * v1 + r, beta * v1, m1, v1
        beta, r = c / w0, w1 - c * c / w0                # X1 | X0 ~ N(a1 + beta (x0 − a0), r); X0 ~ p0
        a1, w1, c, a0, w0 = a1 + beta * (m0 - a0), beta * beta * v0 + r, beta * v0, m0, v0
        out.append((c, a1, w1))
    return out


def _process(drift, sigma: float, direction: str, name: str) -> MatchedBridge:
    """A bridge running ``drift`` (a Bridge, a network or a callable (x, t)) in ``direction`` at ``sigma``."""
    if isinstance(drift, Bridge):
        need = "drift" if direction == "forward" else "backward_drift"
        if not drift.provides(need):
            raise ValueError(f"{name} must provide a {need.replace('_', ' ')}: {drift._unavailable(need)}")
        fn = getattr(drift, need)
    elif callable(drift):
        fn = drift
    else:
        raise TypeError(f"{name} must be a Bridge, a network or a callable drift(x, t), got {type(drift).__name__}")
    net = (lambda x, t: fn(x, t)) if isinstance(drift, Bridge) else fn
    return MatchedBridge(net, sigma) if direction == "forward" else MatchedBridge(None, sigma, net)


@torch.no_grad()
def mean_matching_pairs(process: MatchedBridge, x: torch.Tensor, *, direction: str, steps: int, seed=0,
                        target: str = "dsb"):
    """Simulate ``process`` from ``x`` and return the regression data for the OTHER direction's drift.

    ``direction="backward"``: ``x`` are samples at t = 0, the forward SDE is simulated and the
    backward-drift targets (module docstring) are built; ``"forward"``: ``x`` at t = 1, the backward
    SDE is simulated, forward-drift targets. Returns ``(inputs, times, targets)``, each ``(steps·n, ·)``.
    ``target="posterior"`` drops the correction terms: b ≈ (X_k − X_{k+1})/h, i.e. B = E[X_k | X_{k+1}],
    the exact mean of the Euler chain's reversal. Both agree as h → 0; on the Gaussian test of
    tests/test_dsb.py (a = 1) IPF with the DSB target stalls with E X1 short by ≈ 1.8 h, with the
    posterior target E X1 is right but Cov(X0, X1) is ≈ 0.3 h low (exact regressions, K = 10–50).
    """
    from ..sde import sample

    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
    if target not in TARGETS:
        raise ValueError(f"target must be one of {TARGETS}, got {target!r}")
    run = "forward" if direction == "backward" else "backward"
    res = sample(process, x, steps=steps, direction=run, seed=seed, keep_traj=True)
    paths, times = (res.traj, res.times) if run == "forward" else (res.traj.flip(0), res.times.flip(0))
    K, n, d = paths.shape[0] - 1, paths.shape[1], paths.shape[2]
    h = 1.0 / K
    x_lo, x_hi = paths[:-1].reshape(-1, d), paths[1:].reshape(-1, d)            # (x_k, x_{k+1})
    t_lo = times[:-1].repeat_interleave(n).reshape(-1, 1)
    t_hi = times[1:].repeat_interleave(n).reshape(-1, 1)
    dsb = target == "dsb"
    if direction == "backward":                      # b(x_{k+1}, t_{k+1}) ≈ Δ/h + f(x_k) − f(x_{k+1})
        y = (x_lo - x_hi) / h
        if dsb:
            y = y + process.drift(x_lo, t_lo) - process.drift(x_hi, t_lo)
        return x_hi, t_hi, y
    y = (x_hi - x_lo) / h                            # f(x_k, t_k) ≈ Δ/h + b(x_{k+1}) − b(x_k)
    if dsb:
        y = y + process.backward_drift(x_hi, t_hi) - process.backward_drift(x_lo, t_hi)
    return x_lo, t_lo, y


def ipf_step(process, source, sigma: float, *, direction: str = "backward", net: Optional[nn.Module] = None,
             steps: int = 1000, batch_size: int = 256, n_paths: int = 1000, sim_steps: int = 50,
             refresh: Optional[int] = None, target: str = "dsb", lr: float = 1e-3, ema: float = 0.999,
             seed: int = 0, progress: bool = True, device=None, **fit_kwargs) -> MatchedBridge:
    """One IPF half-step: fit the ``direction`` drift of the time reversal of ``process``.

    ``direction="backward"``: simulate ``process``'s forward drift from ``source`` (law at t = 0) and fit
    a backward drift by mean matching; ``"forward"``: simulate its backward drift from ``source`` (law at
    t = 1) and fit a forward drift. ``process``: a Bridge, a network or a callable drift(x, t) (run at
    ``sigma``). ``n_paths`` paths of ``sim_steps`` Euler steps are cached, and minibatches of
    ``batch_size`` (k, path) pairs are drawn from the cache; ``refresh`` (steps) re-simulates it.
    ``target``: ``"dsb"`` (mean matching, the default) or ``"posterior"`` (:func:`mean_matching_pairs`).
    ``net`` (default ``TimeMLP(dim)``) is trained in place with :func:`lsbcore.train.fit`. Returns a
    :class:`MatchedBridge` holding the EMA net in the fitted direction (``history``: the losses).
    Device: where a ``source`` tensor lives, else ``device`` (None: the CPU or a given ``net``'s
    device); paths, net and minibatches stay there. A ``net`` elsewhere raises a ValueError.
    """
    dev = work_device(device, net=net, source=source)
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
    if target not in TARGETS:
        raise ValueError(f"target must be one of {TARGETS}, got {target!r}")
    sigma = check_scale(sigma, "sigma")
    seed = check_seed(seed)
    batch_size = check_int(batch_size, "batch_size", minimum=2)
    n_paths = check_int(n_paths, "n_paths", minimum=2)
    sim_steps = check_int(sim_steps, "sim_steps")
    steps = check_int(steps, "steps")
    if refresh is not None:
        refresh = check_int(refresh, "refresh")
    src = _as_source(source, "source", dev)
    proc = process if isinstance(process, MatchedBridge) and process.sigma == sigma else \
        _process(process, sigma, "forward" if direction == "backward" else "backward", "process")
    gen0 = generator(seed + 7919, dev)               # simulation noise, separate from fit's generator
    cache = {}

    def simulate(gen):
        x = src(n_paths, gen)
        cache["data"] = mean_matching_pairs(proc, x, direction=direction, steps=sim_steps, seed=gen,
                                            target=target)

    simulate(gen0)
    if net is None:
        net = TimeMLP(cache["data"][0].shape[1], seed=seed).to(cache["data"][0].device)

    def loss_fn(model, step, gen):
        if refresh is not None and step > 0 and step % refresh == 0:
            simulate(gen0)
        x, t, target = cache["data"]
        idx = torch.randint(0, x.shape[0], (batch_size,), generator=gen, device=gen.device).to(x.device)
        return matching_loss(model, x[idx], t[idx], target[idx])

    hist = fit(net, loss_fn, steps, lr=lr, seed=seed, ema=ema, progress=progress,
               desc=f"DSB mean matching ({direction})", **fit_kwargs)
    trained = (hist.ema if hist.ema is not None else net).eval()
    fwd, bwd = (trained, None) if direction == "forward" else (None, trained)
    out = MatchedBridge(fwd, sigma, bwd, dim=getattr(net, "dim", None))
    out.history = {direction: hist.losses}
    return out


def dsb(source0, source1, sigma: float, *, iterations: int = 4, steps: int = 1000, batch_size: int = 256,
        n_paths: int = 1000, sim_steps: int = 50, refresh: Optional[int] = None, target: str = "dsb",
        width: int = 64, depth: int = 3, lr: float = 1e-3, ema: float = 0.999, seed: int = 0, progress: bool = True,
        init_forward=None, callback: Optional[Callable] = None, device=None, **fit_kwargs) -> DSBResult:
    """Diffusion Schrödinger Bridge by IPF: ``iterations`` rounds of (backward, forward) half-steps.

    Round n = 1..N: simulate P^{n−1} (forward drift f_{n−1}; f_0 = 0, the reference σW, or
    ``init_forward``: a Bridge, network or callable drift(x, t), SDSB-style warm start) from
    ``source0`` and fit b_n by mean matching; simulate Q^n (backward drift b_n) from ``source1`` and
    fit f_n. Sources are (n, d) tensors, marginals with ``.sample(n, seed)`` or callables (n, gen).
    Each half-step is one :func:`ipf_step` (``steps`` Adam steps, ``n_paths`` cached paths of
    ``sim_steps`` Euler steps); the nets are ``TimeMLP(d, width, depth)``, one per direction, each
    warm-started from its previous fit; other keyword arguments go to :func:`lsbcore.train.fit`
    (e.g. ``schedule="cosine"``, ``grad_clip``). After round n, ``callback(n, bridge)`` may return a dict,
    which is merged into that round's history entry. Returns :class:`DSBResult` whose bridge
    (``drift`` = f_N, ``backward_drift`` = b_N, ``start`` from ``source0``) works with
    ``lsbcore.sample`` / ``lsbcore.generate``. Deterministic for a fixed seed on the CPU.
    Device: where the source tensors live, else ``device`` (None: the CPU); both nets, the simulated
    paths and the returned bridge live there.
    """
    dev = work_device(device, source0=source0, source1=source1)
    tic = time.perf_counter()
    sigma = check_scale(sigma, "sigma")
    iterations = check_int(iterations, "iterations")
    seed = check_seed(seed)
    for value, name in ((steps, "steps"), (sim_steps, "sim_steps"), (width, "width"), (depth, "depth")):
        check_int(value, name)
    batch_size = check_int(batch_size, "batch_size", minimum=2)
    n_paths = check_int(n_paths, "n_paths", minimum=2)
    check_positive(lr, "lr")
    ema = check_positive(ema, "ema", allow_zero=True)
    if ema >= 1:
        raise ValueError(f"ema must be in [0, 1), got {ema}")
    if not isinstance(progress, bool):
        raise TypeError(f"progress must be True or False, got {type(progress).__name__}")
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable as callback(iteration, bridge), got {type(callback).__name__}")
    s0, s1 = _as_source(source0, "source0", dev), _as_source(source1, "source1", dev)
    probe = generator(seed, dev)
    d0, d1 = s0(2, probe), s1(2, probe)
    for x, name in ((d0, "source0"), (d1, "source1")):
        if not (isinstance(x, torch.Tensor) and x.ndim == 2 and torch.is_floating_point(x)):
            raise TypeError(f"{name} must give float tensors of shape (n, d), got {getattr(x, 'shape', type(x))}")
    if d0.shape[1] != d1.shape[1]:
        raise ValueError(f"source0 and source1 must have the same dimension, got {d0.shape[1]} and {d1.shape[1]}")
    dim = d0.shape[1]
    if init_forward is None:
        forward = MatchedBridge(lambda x, t: torch.zeros_like(x), sigma, dim=dim)
    else:
        forward = _process(init_forward, sigma, "forward", "init_forward")
        forward.dim = dim
    if target not in TARGETS:
        raise ValueError(f"target must be one of {TARGETS}, got {target!r}")
    common = dict(steps=steps, batch_size=batch_size, n_paths=n_paths, sim_steps=sim_steps, refresh=refresh,
                  target=target, lr=lr, ema=ema, progress=progress, **fit_kwargs)
    dev = d0.device if dev is None else dev
    fwd_net = TimeMLP(dim, width, depth, seed=seed + 1).to(dev)
    bwd_net = TimeMLP(dim, width, depth, seed=seed).to(dev)
    history, bridge = [], None
    for n in range(1, iterations + 1):
        t_n = time.perf_counter()
        start = copy.deepcopy(bwd_net).train().requires_grad_(True)
        half = ipf_step(forward, s0, sigma, direction="backward", net=start, seed=seed + 2 * n - 1, **common)
        bwd_net = half.backward_net
        backward = MatchedBridge(None, sigma, bwd_net, dim=dim)
        start = copy.deepcopy(fwd_net).train().requires_grad_(True)
        half_f = ipf_step(backward, s1, sigma, direction="forward", net=start, seed=seed + 2 * n, **common)
        fwd_net = half_f.forward_net
        forward = MatchedBridge(fwd_net, sigma, dim=dim)
        bridge = MatchedBridge(fwd_net, sigma, bwd_net, dim=dim, source0=s0)
        bl, fl = half.history["backward"], half_f.history["forward"]
        tail = max(1, steps // 10)
        entry = {"iteration": n, "backward_loss": sum(bl[-tail:]) / len(bl[-tail:]),
                 "forward_loss": sum(fl[-tail:]) / len(fl[-tail:]),
                 "seconds": time.perf_counter() - t_n}
        if callback is not None:
            extra = callback(n, bridge)
            if isinstance(extra, dict):
                entry.update(extra)
        history.append(entry)
    bridge.history = {"iterations": history}
    return DSBResult(bridge=bridge, history=history, seconds=time.perf_counter() - tic)


def shipped_comparison(*, data_dir=None) -> dict:
    """The IPF-vs-IMF table on 8 gaussians → moons that ``python bench/ipf_imf.py --ship data`` recorded
    in ``data/ipf_imf_bench.json`` (notebook 02 §2.7), grouped per method and iteration over the seeds:
    ``{method: {"iteration": [1, 2, …], "seeds": [...], key: (means, sds) for key in fwd, bwd,
    fwd_floor, bwd_floor, train_s}}``, plus ``"steps"`` (Adam steps per fit) and ``"command"``."""
    import statistics

    from ..shipped import load_bench_table

    raw = load_bench_table("ipf_imf_bench.json", "bench/ipf_imf.py", data_dir=data_dir)
    if not raw["rows"]:
        raise ValueError("ipf_imf_bench.json holds no rows: it is not a table written by bench/ipf_imf.py")
    out: dict = {"steps": raw.get("steps"), "command": raw.get("command")}
    for method in sorted({r["method"] for r in raw["rows"]}):
        rows = [r for r in raw["rows"] if r["method"] == method]
        its = sorted({r["iteration"] for r in rows})
        entry: dict = {"iteration": its, "seeds": sorted({r["seed"] for r in rows})}
        for key in ("fwd", "bwd", "fwd_floor", "bwd_floor", "train_s"):
            vals = [[r[key] for r in rows if r["iteration"] == i] for i in its]
            entry[key] = ([statistics.mean(v) for v in vals],
                          [statistics.stdev(v) if len(v) > 1 else 0.0 for v in vals])
        out[method] = entry
    return out
