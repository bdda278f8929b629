"""Training VSDM (notebook 06): the score network and the forward's A, alternated.

:func:`fit_vsdm` trains the ε-network of :class:`lsbcore.bridges.vsdm.VSDM` on the simulation-free
backward-score loss and, every few steps, moves A by one stochastic-approximation step
(:func:`lsbcore.bridges.vsdm.update_A`) on backward trajectories simulated with the current model —
the alternation of the paper's Algorithm 1, in one loop. docs/theory.md §6.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..utils import check_int, check_points, check_positive, check_seed, generator
from . import vsdm as _v
from .vsdm import VSDM, LinearForward, _check_gap

__all__ = ["VSDMResult", "fit_vsdm"]

# U and V (the rotations of A = U diag(s) Vᵀ) move at this fraction of the step size of s, as upstream
# (learning rates 2e-4 and 1e-3): A starts symmetric and turns slowly.
_ROTATION_LR = 0.2


@dataclass
class VSDMResult:
    """What :func:`fit_vsdm` returns: the bridge (EMA network), losses, A's history, wall time."""

    bridge: VSDM
    losses: list
    A_history: list = field(default_factory=list)
    seconds: float = 0.0


def fit_vsdm(data, *, adaptive: bool = True, steps: int = 2000, batch_size: int = 256, beta_min: float = 0.1,
             beta_max: float = 10.0, beta_r: float = 1.7, width: int = 128, depth: int = 3, lr: float = 2e-3,
             ema: float = 0.995, warmup: int | None = None, freeze: int | None = None, a_every: int = 50,
             a_lr: float = 0.02, a_decay: float = 0.6, a_paths: int = 256, a_steps: int = 20, zeta: float = 1.0,
             t_gap: float = 1e-3, seed: int = 0, pieces: int = 1, schedule: str = "constant",
             progress: bool = True, checkpoint=None, checkpoint_every: int = 1000, forward=None, net=None,
             condition=None, desc: str | None = None) -> VSDMResult:
    """Train VSDM (``adaptive=True``) or the plain VP-SDE (``adaptive=False``: A stays 0) on samples.

    The network is a :class:`lsbcore.nets.TimeMLP` trained by :func:`lsbcore.train.fit` (progress bar,
    EMA ``ema`` of the weights, used by the returned bridge) on :func:`backward_score_loss` with
    batches of ``batch_size``. With ``adaptive=True`` training has three phases:

    1. ``warmup`` network steps with A = 0 (default steps // 4): the score of the VP-SDE;
    2. stochastic approximation: every ``a_every`` network steps, A takes one :func:`update_A` step
       (``a_paths`` backward paths of ``a_steps`` steps, drawn from a second generator seeded
       ``seed + 1``) with a *decreasing* step size γ_k = a_lr · (1 + k/10)^(−a_decay) for the k-th
       update (Adam-preconditioned; ``a_decay = 0`` keeps it constant; U and V move at 0.2 γ_k).
       Σγ_k = ∞ with γ_k → 0 is what the paper's convergence theorem for A asks of its step sizes;
    3. the last ``freeze`` steps (default steps // 4) train the network alone on the final A, so the
       returned score belongs to the returned forward process.

    ``pieces > 1`` makes A piecewise constant in time (A_t = A_k on ``pieces`` equal intervals:
    :class:`lsbcore.bridges.vsdm_time.TimeVaryingForward`, exact transitions). Both variants use the
    same network, the same budget and the same seed. ``checkpoint`` (a file path) saves the network,
    A, both optimizers and both generators every ``checkpoint_every`` steps; rerunning the same call
    resumes from it and gives the same result as an uninterrupted run (on CPU). ``schedule``: the
    network's learning-rate schedule (:func:`lsbcore.train.fit`). ``forward``: a forward process to
    train instead of the default one built from ``beta_*``/``pieces`` (e.g. the diagonal-A
    :class:`lsbcore.bridges.vsdm_diag.DiagonalForward`; a forward with a ``score_loss`` method supplies
    its own, cheaper, form of the same loss). ``net``: the ε-network to train instead of
    ``TimeMLP(d, width, depth)``. ``condition`` ``(n, c)``, one row per data row, makes the model
    conditional: ``net`` must offer ``net.given(c)`` (:class:`lsbcore.bridges.vsdm_forecast.ConditionalScoreNet`);
    each batch is scored given its rows' conditions, and each A-step simulates its ``a_paths`` backward
    paths given as many conditions drawn at random (from the A-generator). ``desc``: the progress
    bar's label. Notebook 06 §2.3, docs/theory.md §6;
    the recipe notebook 06 and ``bench/vsdm.py`` use is :data:`lsbcore.bridges.vsdm_shapes.RECIPE`.
    """
    from ..nets import TimeMLP
    from ..train import fit

    data = check_points(data, "data")
    steps = check_int(steps, "steps")
    batch_size = check_int(batch_size, "batch_size")
    a_every = check_int(a_every, "a_every")
    a_paths, a_steps = check_int(a_paths, "a_paths"), check_int(a_steps, "a_steps")
    a_lr = check_positive(a_lr, "a_lr")
    zeta = check_positive(zeta, "zeta", allow_zero=True)
    t_gap = _check_gap(t_gap)
    warmup = steps // 4 if warmup is None else check_int(warmup, "warmup", minimum=0)
    freeze = steps // 4 if freeze is None else check_int(freeze, "freeze", minimum=0)
    a_decay = check_positive(a_decay, "a_decay", allow_zero=True)
    if a_decay > 1:
        raise ValueError(f"a_decay must lie in [0, 1] (Σγ_k must diverge), got {a_decay}")
    a_gen = generator(check_seed(seed) + 1, data.device)
    d = data.shape[1]
    pieces = check_int(pieces, "pieces")
    if forward is not None:
        if not isinstance(forward, LinearForward):
            raise TypeError(f"forward must be a LinearForward (or a subclass), got {type(forward).__name__}")
        if forward.dim != d:
            raise ValueError(f"forward has dimension {forward.dim} but data has {d}")
        if pieces != 1:
            raise ValueError("pieces builds the default forward process: pass either forward or pieces > 1")
        fwd = forward.to(data.device)
    elif pieces == 1:
        fwd = LinearForward(d, beta_min=beta_min, beta_max=beta_max, beta_r=beta_r, seed=seed).to(data.device)
    else:
        from .vsdm_time import TimeVaryingForward

        fwd = TimeVaryingForward(d, pieces=pieces, beta_min=beta_min, beta_max=beta_max, beta_r=beta_r,
                                 seed=seed).to(data.device)
    if net is None:
        net = TimeMLP(d, width=width, depth=depth, seed=seed).to(data.device)
    elif not isinstance(net, torch.nn.Module):
        raise TypeError(f"net must be a torch.nn.Module, got {type(net).__name__}")
    if condition is not None:
        if not callable(getattr(net, "given", None)):
            raise TypeError("a condition needs a net with .given(condition) (e.g. a ConditionalScoreNet)")
        if not isinstance(condition, torch.Tensor) or condition.ndim != 2 or condition.shape[0] != data.shape[0]:
            raise ValueError(f"condition must be a tensor (n, c) with one row per data row ({data.shape[0]}), "
                             f"got {tuple(condition.shape) if isinstance(condition, torch.Tensor) else type(condition).__name__}")
        given = net.given
    else:
        given = None
    bridge = VSDM(fwd, net, t_gap=t_gap)
    scales = fwd.s_pieces()                 # every piece's s (the rest are the rotations U, V)
    rotations = [p for p in fwd.parameters() if all(p is not q for q in scales)]
    opt_A = torch.optim.Adam([{"params": scales, "lr": a_lr, "scale": 1.0},
                              {"params": rotations, "lr": _ROTATION_LR * a_lr, "scale": _ROTATION_LR}])
    A_hist = [fwd.A().detach().clone()]
    score_loss = getattr(fwd, "score_loss", None) or (lambda m, x, **kw: _v.backward_score_loss(fwd, m, x, **kw))

    def loss_fn(model, step, gen):
        if adaptive and warmup <= step < steps - freeze and (step - warmup) % a_every == 0:
            for group in opt_A.param_groups:
                group["lr"] = group["scale"] * a_lr * (1 + (len(A_hist) - 1) / 10) ** (-a_decay)
            if given is None:
                _v.update_A(bridge, opt_A, n=a_paths, steps=a_steps, zeta=zeta, seed=a_gen)
            else:
                rows = torch.randint(0, data.shape[0], (a_paths,), generator=a_gen, device=data.device)
                with given(condition[rows]):
                    _v.update_A(bridge, opt_A, n=a_paths, steps=a_steps, zeta=zeta, seed=a_gen)
            A_hist.append(fwd.A().detach().clone())
        idx = torch.randint(0, data.shape[0], (batch_size,), generator=gen, device=data.device)
        if given is None:
            return score_loss(model, data[idx], t_gap=t_gap, seed=gen)
        with given(condition[idx]):
            return score_loss(model, data[idx], t_gap=t_gap, seed=gen)

    def get_state():
        return {"forward": fwd.state_dict(), "opt_A": opt_A.state_dict(), "a_gen": a_gen.get_state(),
                "A_history": torch.stack(A_hist)}

    def set_state(state):
        fwd.load_state_dict(state["forward"])
        opt_A.load_state_dict(state["opt_A"])
        a_gen.set_state(state["a_gen"])
        A_hist[:] = list(state["A_history"])

    hist = fit(net, loss_fn, steps, lr=lr, seed=seed, ema=ema, schedule=schedule, progress=progress,
               log_every=min(100, steps), desc=desc or ("VSDM" if adaptive else "VP-SDE"), checkpoint=checkpoint,
               checkpoint_every=checkpoint_every,
               extra_state=(get_state, set_state))
    fwd.requires_grad_(False)
    out = VSDM(fwd, (hist.ema if hist.ema is not None else net).eval(), t_gap=t_gap)
    return VSDMResult(out, hist.losses, A_hist, hist.seconds)
