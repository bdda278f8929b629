"""The training loop every learned bridge in lsbcore uses: seeding, progress bar, EMA, checkpoints.

One visible loop, nanoGPT-style, instead of callbacks::

    for step in range(start, steps):
        loss = loss_fn(model, step, gen)      # gen: the torch.Generator all data sampling uses
        opt.zero_grad(); loss.backward(); opt.step()
        ema ← decay·ema + (1 − decay)·weights
        every `checkpoint_every` steps: write model, EMA, optimizer, step, RNG states, losses

Because the data generator's state is part of the checkpoint, a run that is interrupted and resumed
produces bit-for-bit the same weights and losses (on CPU) as a run that never stopped.
Under ``torchrun`` (``ddp=True``) the model is wrapped in DistributedDataParallel: every rank draws
the same global batch, the loss function keeps its shard (:func:`lsbcore.distributed.shard`), the
gradients are averaged, and rank 0 alone writes checkpoints (see :mod:`lsbcore.distributed`).
Checkpoints are plain dicts of tensors / ints / floats / strings with the sha256 of their content,
written atomically (temporary file then ``os.replace``) and read back by the one reader,
:func:`load_checkpoint` (``torch.load(..., weights_only=True)``, then the digest is checked).
Notebook 02 §"Bridge matching" trains a drift with it.
"""
from __future__ import annotations

import contextlib
import copy
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Union

import torch
from torch import nn
from tqdm.auto import tqdm

from . import distributed
from .checkpoint import load_checkpoint, save_checkpoint
from .utils import check_int, check_positive, generator

__all__ = ["History", "fit", "ema_update", "TimeLimitReached", "AMP_MODES"]

AMP_MODES = (None, "none", "bf16")

FORMAT = "lsbcore-fit-v2"   # v2: the content digest is stored and checked
PathLike = Union[str, os.PathLike]
LossFn = Callable[[nn.Module, int, torch.Generator], torch.Tensor]


class TimeLimitReached(RuntimeError):
    """``fit`` passed its ``deadline``: it saved a checkpoint at ``step`` and stopped (resume to go on)."""

    def __init__(self, checkpoint, step: int):
        super().__init__(f"time limit reached: checkpoint {str(checkpoint)!r} saved at step {step}; "
                         f"run the same call again (resume=True) to continue")
        self.checkpoint, self.step = checkpoint, step


@dataclass
class History:
    """What ``fit`` returns: the loss at every step (resumed steps included) and the EMA model."""

    losses: list = field(default_factory=list)
    ema: Optional[nn.Module] = None      # a copy of the model holding the EMA weights (None if ema=0)
    start_step: int = 0                  # the step this call started from (> 0 after a resume)
    seconds: float = 0.0                 # wall time of this call

    @property
    def steps(self) -> int:
        return len(self.losses)


# ---------------------------------------------------------------------------------- EMA
@torch.no_grad()
def ema_update(ema_model: nn.Module, model: nn.Module, decay: float) -> None:
    """``ema ← decay·ema + (1 − decay)·model`` for parameters; buffers are copied.

    Notebook 02 §"Bridge matching".
    """
    _EmaPairs(ema_model, model).update(decay)


class _EmaPairs:
    """The (EMA tensor, live tensor) pairs of two models, listed once: walking the module tree at
    every step cost ~10% of a small network's training step (``fit`` builds one per run)."""

    def __init__(self, ema_model: nn.Module, model: nn.Module):
        self.ema_p = list(ema_model.parameters())
        self.p = [q.detach() for q in model.parameters()]
        self.buffers = list(zip(ema_model.buffers(), model.buffers()))

    @torch.no_grad()
    def update(self, decay: float) -> None:
        if self.ema_p:
            torch._foreach_lerp_(self.ema_p, self.p, 1.0 - decay)
        for b_ema, b in self.buffers:
            b_ema.copy_(b)


def _ema_decay(decay: float, step: int) -> float:
    # warm-up: early on the average would be dominated by the random initial weights
    return min(decay, (1.0 + step) / (10.0 + step))


# ---------------------------------------------------------------------------------- the loop
def fit(model: nn.Module, loss_fn: LossFn, steps: int, *, lr: float = 1e-3, seed=0,
        ema: float = 0.999, weight_decay: float = 0.0, grad_clip: Optional[float] = None,
        checkpoint: Optional[PathLike] = None, checkpoint_every: int = 1000, resume: bool = True,
        progress: bool = True, log_every: int = 100, desc: str = "fit",
        schedule: str = "constant", extra_state: Optional[tuple] = None, ddp: bool = False,
        amp: Optional[str] = None, deadline: Optional[float] = None) -> History:
    """Train ``model`` for ``steps`` Adam steps on ``loss_fn(model, step, generator) → scalar``.

    - ``seed``: seeds the generator passed to ``loss_fn`` (draw ALL training randomness from it:
      batches, times t, noise) and torch's global RNG (dropout, if any). Same seed → same run.
    - ``ema``: decay of the exponential moving average of the weights (0 disables it); the averaged
      model is returned as ``History.ema`` (use it for sampling: it is smoother than the last iterate).
    - ``checkpoint``: a file path. Every ``checkpoint_every`` steps and at the end, the model, EMA,
      optimizer, step, generator state, global RNG state and the losses so far are saved atomically.
      With ``resume=True`` an existing checkpoint is loaded first and training continues from its
      step; the result equals an uninterrupted run (bit-exact on CPU). ``resume=False`` starts over.
      (torch's CUDA RNG is not checkpointed: on a GPU, take all randomness from the generator.)
    - ``schedule``: ``"constant"`` learning rate, or ``"cosine"``: lr · ½(1 + cos(π step/steps)),
      decaying to 0 at the last step (often a sharper final model for the same budget).
    - ``progress``: a tqdm bar (loss shown every ``log_every`` steps); ``progress=False`` silences it.
    - ``extra_state``: ``(get, set)`` for state that ``loss_fn`` keeps outside ``model`` (a second
      optimizer, an adaptive forward process, another generator): ``get()`` returns a dict of tensors
      and plain values that is saved in every checkpoint, ``set(dict)`` restores it on resume.
    - A NaN/inf loss raises ``FloatingPointError`` (checked every ``log_every`` steps and before each
      checkpoint, so no corrupt state is ever saved and the loop has few host syncs).
    - ``ddp``: under ``torchrun`` with more than one rank, wrap the model in DistributedDataParallel;
      ``loss_fn`` then receives the wrapper (call it, ``model(x, t)``, rather than its methods, so
      the gradients are all-reduced) and must compute its loss on its shard of the global batch
      (:func:`lsbcore.distributed.shard`, after all random draws). The recorded losses are averaged
      over the ranks. Without a process group (or one rank) ``ddp`` changes nothing. Whatever
      ``ddp``, when a process group is running only rank 0 writes the checkpoint and every rank
      waits for it (a trainer that does not shard simply computes the same step on every rank).
    - ``amp="bf16"``: run ``loss_fn`` under ``torch.autocast`` in bfloat16 (CUDA only); weights, the
      optimizer and the recorded losses stay float32. ``None``/``"none"``: full precision.
    - ``deadline``: a ``time.time()`` value; at the first checkpoint boundary after it, ``fit`` saves
      the checkpoint and raises :class:`TimeLimitReached` (a cluster job's time limit; resume later).

    Returns a ``History`` with the loss of every step (including steps done before a resume).
    Notebook 02 §"Bridge matching".
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not callable(loss_fn):
        raise TypeError("loss_fn must be callable as loss_fn(model, step, generator)")
    steps = check_int(steps, "steps", minimum=0)
    lr = check_positive(lr, "lr")
    ema = check_positive(ema, "ema", allow_zero=True)
    if ema >= 1:
        raise ValueError(f"ema must be in [0, 1), got {ema}")
    weight_decay = check_positive(weight_decay, "weight_decay", allow_zero=True)
    if grad_clip is not None:
        grad_clip = check_positive(grad_clip, "grad_clip")
    checkpoint_every = check_int(checkpoint_every, "checkpoint_every")
    log_every = check_int(log_every, "log_every")
    if schedule not in ("constant", "cosine"):
        raise ValueError(f"schedule must be 'constant' or 'cosine', got {schedule!r}")
    if isinstance(seed, torch.Generator) or not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError("seed must be an int (fit owns its generator so that it can checkpoint it)")
    if extra_state is not None and not (isinstance(extra_state, tuple) and len(extra_state) == 2
                                        and all(callable(f) for f in extra_state)):
        raise TypeError("extra_state must be a pair of callables (get, set)")
    if amp not in AMP_MODES:
        raise ValueError(f"amp must be one of {AMP_MODES}, got {amp!r}")
    if deadline is not None:
        if checkpoint is None:
            raise ValueError("deadline needs a checkpoint to save the run in when the time is up")
        deadline = float(deadline)
    params = list(model.parameters())
    if not params:
        raise ValueError("model has no parameters to train")
    dev = params[0].device
    if amp == "bf16" and dev.type != "cuda":
        raise ValueError(f"amp='bf16' needs a model on a CUDA device, got one on {dev}")
    autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if amp == "bf16" else contextlib.nullcontext
    world, writer = distributed.world_size(), distributed.is_main()
    net = model
    if ddp and world > 1:
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(model, device_ids=[dev.index] if dev.type == "cuda" else None)
    reduce_losses = net is not model            # shard means → global-batch means

    # ---- state: generator, optimizer, EMA copy, loss buffer, checkpoint
    gen = generator(seed, dev)
    opt = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    ema_model = copy.deepcopy(model).requires_grad_(False) if ema > 0 else None
    ema_pairs = _EmaPairs(ema_model, model) if ema_model is not None else None
    losses = torch.zeros(steps, device=dev)
    ckpt = Path(checkpoint) if checkpoint is not None else None

    reduced = [0]                               # losses[:reduced[0]] are already averaged over ranks

    def settle(upto: int) -> None:
        """Average the not yet averaged losses up to ``upto`` over the ranks (one all-reduce)."""
        if reduce_losses and upto > reduced[0]:
            distributed.all_mean_(losses[reduced[0]:upto])
        reduced[0] = max(reduced[0], upto)

    def save(step_done: int) -> None:
        settle(step_done)
        _check_finite(losses, 0, step_done)
        if not writer:
            distributed.barrier()
            return
        save_checkpoint({
            "format": FORMAT, "step": step_done, "seed": seed, "lr": lr, "ema_decay": ema,
            "schedule": schedule, "steps": steps,
            "model": model.state_dict(),
            "ema": ema_model.state_dict() if ema_model is not None else {},
            "optimizer": opt.state_dict(),
            "generator": gen.get_state(), "torch_rng": torch.get_rng_state(),
            "losses": losses[:step_done].detach().cpu(),
            "extra": extra_state[0]() if extra_state is not None else {},
        }, ckpt)
        distributed.barrier()

    tic = time.perf_counter()
    # torch's global RNG (dropout, ...) is seeded inside a fork: the caller's RNG state is untouched
    with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
        torch.manual_seed(seed)
        start = 0
        if ckpt is not None and resume and ckpt.exists():
            state = load_checkpoint(ckpt)
            if schedule == "cosine" and state.get("steps", steps) != steps:
                raise ValueError(f"checkpoint {str(ckpt)!r} was written by a cosine schedule over "
                                 f"{state.get('steps')} steps, not {steps}: the learning rates would differ")
            start = _restore(state, ckpt, model, opt, ema_model, gen, losses, seed, steps)
            reduced[0] = start
            if extra_state is not None:
                if not state.get("extra"):
                    raise ValueError(f"checkpoint {str(ckpt)!r} holds no extra state for this trainer")
                extra_state[1](state["extra"])

        # every rank has looked for the checkpoint before any rank can write one (a rank that started
        # late would otherwise resume from rank 0's first checkpoint and fall out of step)
        distributed.barrier()

        # ---- the loop
        model.train()
        bar = tqdm(range(start, steps), desc=desc, disable=not (progress and writer), initial=start,
                   total=steps, leave=False)
        for step in bar:
            if schedule == "cosine":
                for group in opt.param_groups:
                    group["lr"] = lr * 0.5 * (1 + math.cos(math.pi * step / steps))
            with autocast():
                loss = loss_fn(net, step, gen)
            if step == start:
                _check_loss(loss)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if grad_clip is not None:
                nn.utils.clip_grad_norm_(params, grad_clip)
            opt.step()
            if ema_pairs is not None:
                ema_pairs.update(_ema_decay(ema, step))
            losses[step] = loss.detach()

            done = step + 1
            if done % log_every == 0 or done == steps:   # one host sync per log_every steps
                settle(done)
                _check_finite(losses, max(start, done - log_every), done)
                if progress and writer:
                    bar.set_postfix(loss=f"{float(losses[done - 1]):.4g}")
            if ckpt is not None and (done % checkpoint_every == 0 or done == steps):
                save(done)
                if deadline is not None and done < steps and _time_is_up(deadline):
                    bar.close()
                    raise TimeLimitReached(ckpt, done)
        bar.close()
        settle(steps)

    return History(losses=losses.cpu().tolist(), ema=ema_model, start_step=start,
                   seconds=time.perf_counter() - tic)


# ---------------------------------------------------------------------------------- helpers
def _time_is_up(deadline: float) -> bool:
    """Rank 0's clock decides for every rank (clocks and progress differ a little between ranks)."""
    return bool(distributed.broadcast_object(time.time() >= deadline))


def _check_loss(loss) -> None:
    if not isinstance(loss, torch.Tensor):
        raise TypeError(f"loss_fn must return a torch.Tensor, got {type(loss).__name__}")
    if loss.numel() != 1:
        raise ValueError(f"loss_fn must return a scalar, got shape {tuple(loss.shape)}")
    if not loss.requires_grad:
        raise ValueError("loss_fn returned a tensor with no gradient: does it use the model?")


def _check_finite(losses: torch.Tensor, lo: int, hi: int) -> None:
    chunk = losses[lo:hi]
    if chunk.numel() and not bool(torch.isfinite(chunk).all()):
        bad = lo + int((~torch.isfinite(chunk)).nonzero()[0, 0])
        raise FloatingPointError(f"loss became {float(losses[bad])} at step {bad}: lower lr, set "
                                 f"grad_clip, or check the loss for a division by ~0 (e.g. 1 − t)")


def _restore(state, path, model, opt, ema_model, gen, losses, seed, steps) -> int:
    need = {"format", "step", "seed", "model", "ema", "optimizer", "generator", "torch_rng", "losses"}
    missing = need - set(state)
    if state.get("format") != FORMAT or missing:
        raise ValueError(f"checkpoint {str(path)!r} is not an lsbcore fit checkpoint "
                         f"(format {state.get('format')!r}, missing {sorted(missing)})")
    if state["seed"] != seed:
        raise ValueError(f"checkpoint {str(path)!r} was written with seed={state['seed']}, not "
                         f"seed={seed}: pass the same seed, or resume=False to start over")
    step = int(state["step"])
    if step > steps:
        raise ValueError(f"checkpoint {str(path)!r} is at step {step}, beyond steps={steps}")
    try:
        model.load_state_dict(state["model"])
        if ema_model is not None:
            if not state["ema"]:
                raise ValueError("the checkpoint holds no EMA weights (it was trained with ema=0)")
            ema_model.load_state_dict(state["ema"])
        opt.load_state_dict(state["optimizer"])
        gen.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
    except (RuntimeError, KeyError, TypeError) as err:
        raise ValueError(f"checkpoint {str(path)!r} does not fit this model/optimizer: {err}") from None
    losses[:step] = state["losses"].to(losses.device)
    return step
