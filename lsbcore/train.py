"""The training loop every learned bridge in lsbcore uses: seeding, progress bar, EMA, checkpoints.

One visible loop, nanoGPT-style, instead of callbacks::

    for step in range(start, steps):
        loss = loss_fn(model, step, gen)      # gen: the torch.Generator all data sampling uses
        opt.zero_grad(); loss.backward(); opt.step()
        ema ← decay·ema + (1 − decay)·weights
        every `checkpoint_every` steps: write model, EMA, optimizer, step, RNG states, losses

Because the data generator's state is part of the checkpoint, a run that is interrupted and resumed
produces bit-for-bit the same weights and losses (on CPU) as a run that never stopped.
Checkpoints are plain dicts of tensors / ints / floats / strings with the sha256 of their content,
written atomically (temporary file then ``os.replace``) and read back by the one reader,
:func:`load_checkpoint` (``torch.load(..., weights_only=True)``, then the digest is checked).
Notebook 02 §"Bridge matching" trains a drift with it.
"""
from __future__ import annotations

import copy
import hashlib
import math
import os
import pickle
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Union

import torch
from torch import nn
from tqdm.auto import tqdm

from .utils import ChecksumError, check_int, check_positive, generator

__all__ = ["History", "fit", "save_checkpoint", "load_checkpoint", "content_digest", "sha256_file", "ema_update"]

FORMAT = "lsbcore-fit-v2"   # v2: the content digest is stored and checked
DIGEST_KEY = "sha256"
PathLike = Union[str, os.PathLike]
LossFn = Callable[[nn.Module, int, torch.Generator], torch.Tensor]


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


# ---------------------------------------------------------------------------------- checkpoints
def sha256_file(path: PathLike) -> str:
    """Hex sha256 of a file's bytes (the sums of data/MANIFEST.json; Notebook 03 §2)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 16), b""):
            h.update(block)
    return h.hexdigest()


def content_digest(state) -> str:
    """Hex sha256 of a checkpoint's content: every key, number and string, and every tensor's dtype,
    shape and bytes, walked in a fixed order (so it does not depend on how torch lays out the file)."""
    h = hashlib.sha256()

    def feed(obj) -> None:
        if isinstance(obj, torch.Tensor):
            t = obj.detach().cpu().contiguous().reshape(-1)
            h.update(f"tensor {t.dtype} {tuple(obj.shape)}:".encode())
            h.update(t.view(torch.uint8).numpy().tobytes())
        elif isinstance(obj, dict):
            h.update(f"dict {len(obj)}:".encode())
            for key in sorted(obj, key=repr):
                feed(key)
                feed(obj[key])
        elif isinstance(obj, (list, tuple)):
            h.update(f"{type(obj).__name__} {len(obj)}:".encode())
            for item in obj:
                feed(item)
        elif isinstance(obj, float):
            h.update(f"float {obj.hex()};".encode())
        elif obj is None or isinstance(obj, (bool, int, str, bytes)):
            h.update(f"{type(obj).__name__} {obj!r};".encode())
        else:
            raise TypeError(f"a checkpoint holds tensors, numbers, strings, lists and dicts only, "
                            f"got {type(obj).__name__}")

    feed(state)
    return h.hexdigest()


def save_checkpoint(state: dict, path: PathLike, *, digest: bool = True) -> Path:
    """Write ``state`` (a plain dict) to ``path`` atomically: a crash mid-write leaves the old file.

    With ``digest`` (the default) the sha256 of the content (:func:`content_digest`) is stored in the
    file under the key ``"sha256"`` and checked by :func:`load_checkpoint`, so a flipped byte inside
    a tensor cannot load silently. ``digest=False`` is for files whose bytes a manifest records (the
    shipped data/*.pt). The file is written in a temporary folder beside ``path`` under the same
    name (torch names the archive inside after the file) and moved into place with ``os.replace``,
    which is atomic on POSIX and Windows. Notebook 02 §"Bridge matching".
    """
    if not isinstance(state, dict):
        raise TypeError(f"state must be a dict, got {type(state).__name__}")
    if DIGEST_KEY in state:
        raise ValueError(f"state must not hold the key {DIGEST_KEY!r}: save_checkpoint stores the digest there")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if digest:
        state = {**state, DIGEST_KEY: content_digest(state)}
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=f".{path.name}.") as tmp:
        torch.save(state, Path(tmp) / path.name)
        os.replace(Path(tmp) / path.name, path)
    return path


def load_checkpoint(path: PathLike, *, sha256: Optional[str] = None, map_location="cpu") -> dict:
    """Read a checkpoint and check its integrity: the one checkpoint reader of lsbcore.

    - ``sha256``: the hex sha256 the file's bytes must have (a manifest's entry, e.g. the shipped
      data/MANIFEST.json); checked before the file is parsed.
    - A file written by :func:`save_checkpoint` carries the digest of its content, checked after
      reading. A file with neither digest is refused: nothing unverified is loaded.
    - ``torch.load(weights_only=True)`` refuses to unpickle arbitrary objects, so a checkpoint from an
      untrusted source cannot run code.

    Errors: ``FileNotFoundError`` for a missing file; :class:`~lsbcore.utils.ChecksumError` (a
    ValueError) naming the file when a digest does not match; ``ValueError`` for a truncated, garbage
    or foreign file. Returns the dict without the digest. Notebook 02 §"Bridge matching".
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist")
    if sha256 is not None:
        actual = sha256_file(path)
        if actual != sha256:
            raise ChecksumError(f"checkpoint {str(path)!r} is corrupt or was modified: its sha256 is "
                                f"{actual[:12]}… but {sha256[:12]}… was recorded")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError:  # a forbidden global: the file holds arbitrary Python objects
        raise ValueError(f"checkpoint {str(path)!r} holds Python objects other than tensors, numbers and "
                         f"strings; lsbcore refuses to load it (unpickling them could run code)") from None
    except Exception as err:  # truncated zip, bad pickle, ... all mean "corrupt"
        raise ValueError(f"checkpoint {str(path)!r} is corrupt or not a weights-only torch file: "
                         f"{type(err).__name__}: {err}") from None
    if not isinstance(state, dict):
        raise ValueError(f"checkpoint {str(path)!r} does not hold a dict")
    recorded = state.pop(DIGEST_KEY, None)
    if recorded is None and sha256 is None:
        raise ChecksumError(f"checkpoint {str(path)!r} carries no sha256 digest and none was given: "
                            f"it was not written by lsbcore.save_checkpoint, so it cannot be verified")
    if recorded is not None:
        try:
            actual = content_digest(state)
        except TypeError as err:
            raise ValueError(f"checkpoint {str(path)!r} is corrupt: {err}") from None
        if actual != recorded:
            raise ChecksumError(f"checkpoint {str(path)!r} is corrupt or was modified: the digest of its "
                                f"content is {actual[:12]}… but it records {str(recorded)[:12]}…")
    return state


# ---------------------------------------------------------------------------------- EMA
@torch.no_grad()
def ema_update(ema_model: nn.Module, model: nn.Module, decay: float) -> None:
    """``ema ← decay·ema + (1 − decay)·model`` for parameters; buffers are copied.

    Notebook 02 §"Bridge matching".
    """
    ema_p = list(ema_model.parameters())
    if ema_p:
        torch._foreach_lerp_(ema_p, [p.detach() for p in model.parameters()], 1.0 - decay)
    for b_ema, b in zip(ema_model.buffers(), model.buffers()):
        b_ema.copy_(b)


def _ema_decay(decay: float, step: int) -> float:
    # warm-up: early on the average would be dominated by the random initial weights
    return min(decay, (1.0 + step) / (10.0 + step))


# ---------------------------------------------------------------------------------- the loop
def fit(model: nn.Module, loss_fn: LossFn, steps: int, *, lr: float = 1e-3, seed=0,
        ema: float = 0.999, weight_decay: float = 0.0, grad_clip: Optional[float] = None,
        checkpoint: Optional[PathLike] = None, checkpoint_every: int = 1000, resume: bool = True,
        progress: bool = True, log_every: int = 100, desc: str = "fit",
        schedule: str = "constant", extra_state: Optional[tuple] = None) -> History:
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
    params = list(model.parameters())
    if not params:
        raise ValueError("model has no parameters to train")
    dev = params[0].device

    # ---- state: generator, optimizer, EMA copy, loss buffer, checkpoint
    gen = generator(seed, dev)
    opt = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    ema_model = copy.deepcopy(model).requires_grad_(False) if ema > 0 else None
    losses = torch.zeros(steps, device=dev)
    ckpt = Path(checkpoint) if checkpoint is not None else None

    def save(step_done: int) -> None:
        _check_finite(losses, 0, step_done)
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
            if extra_state is not None:
                if not state.get("extra"):
                    raise ValueError(f"checkpoint {str(ckpt)!r} holds no extra state for this trainer")
                extra_state[1](state["extra"])

        # ---- the loop
        model.train()
        bar = tqdm(range(start, steps), desc=desc, disable=not progress, initial=start, total=steps,
                   leave=False)
        for step in bar:
            if schedule == "cosine":
                for group in opt.param_groups:
                    group["lr"] = lr * 0.5 * (1 + math.cos(math.pi * step / steps))
            loss = loss_fn(model, step, gen)
            if step == start:
                _check_loss(loss)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if grad_clip is not None:
                nn.utils.clip_grad_norm_(params, grad_clip)
            opt.step()
            if ema_model is not None:
                ema_update(ema_model, model, _ema_decay(ema, step))
            losses[step] = loss.detach()

            done = step + 1
            if done % log_every == 0 or done == steps:   # one host sync per log_every steps
                _check_finite(losses, max(start, done - log_every), done)
                if progress:
                    bar.set_postfix(loss=f"{float(losses[done - 1]):.4g}")
            if ckpt is not None and (done % checkpoint_every == 0 or done == steps):
                save(done)
        bar.close()

    return History(losses=losses.cpu().tolist(), ema=ema_model, start_step=start,
                   seconds=time.perf_counter() - tic)


# ---------------------------------------------------------------------------------- helpers
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
