"""Where a training run lives: the device, and the ranks of a ``torchrun`` job (issue 16 §3–4).

One process (``python -m lsbcore train ...``) or N processes started by PyTorch's launcher
(``torchrun --nproc_per_node=N -m lsbcore train ...``) run the same code. torchrun tells each
process who it is through environment variables (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
``MASTER_ADDR``, ``MASTER_PORT``); :func:`setup` reads them, picks the device (``cuda:LOCAL_RANK``
on GPUs) and joins the process group: NCCL on CUDA, gloo on CPUs.

How the N ranks share the work — a distributed split of each global batch:

* every rank owns the same ``torch.Generator`` (same seed), so every rank draws the same global
  batch of ``batch_size`` rows (data, times t, noise, couplings) — the numbers a 1-rank run draws;
* :func:`shard` keeps rows ``[r·b, (r+1)·b)`` with ``b = batch_size / N`` on rank r; the network
  runs forward and backward on those rows only;
* DistributedDataParallel (inside :func:`lsbcore.train.fit`, ``ddp=True``) averages the gradients
  over ranks: the mean of N shard means is the global mean, so each Adam step is the 1-rank step up
  to the order of float additions;
* rank 0 writes checkpoints, metrics and figures (:func:`is_main`), the others wait at a barrier.

Drawing the global batch on every rank costs the sampling N times over; it buys runs whose loss
curve does not depend on the number of ranks (tests/test_ddp.py) and a checkpoint that any number
of ranks can resume. Float64 work (W2 with POT, Sinkhorn couplings, the matrix exponentials of
VSDM) cannot run on Apple's MPS: :func:`float64_device` names where it goes instead.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional

import torch
import torch.distributed as dist
from torch import nn

from .utils import DEVICE_KINDS as DEVICES
from .utils import resolve_device

__all__ = ["DEVICES", "Placement", "setup", "teardown", "resolve_device", "float64_device", "rank",
           "world_size", "is_main", "barrier", "shard", "check_global_batch", "all_mean_", "broadcast_object", "main_goes_on", "Objective"]


@dataclass(frozen=True)
class Placement:
    """Who this process is in the job and which device it computes on."""

    device: torch.device
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: Optional[str] = None      # "gloo" / "nccl" when a process group was started

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def float64_device(dev) -> torch.device:
    """Where float64 work on data from ``dev`` runs: ``dev`` itself, except MPS (no float64) → CPU."""
    dev = torch.device(dev)
    return torch.device("cpu") if dev.type == "mps" else dev


def _env_int(name: str, default: int) -> int:
    text = os.environ.get(name)
    if text is None or text == "":
        return default
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"environment variable {name}={text!r} is not an integer (set by torchrun)") from None


def setup(device: str = "auto") -> Placement:
    """Read torchrun's environment, pick the device and, for ``WORLD_SIZE > 1``, join the process group.

    Without torchrun (no ``WORLD_SIZE``, or 1) this is :func:`lsbcore.utils.resolve_device` and nothing else.
    Under torchrun: ``device="auto"`` means ``cuda:LOCAL_RANK`` when CUDA is available, else the CPU
    (MPS has no collective backend); the backend is NCCL on CUDA, gloo on the CPU. A multi-node job
    needs nothing more: torchrun's rendezvous sets ``MASTER_ADDR``/``MASTER_PORT`` for every node.
    """
    world = _env_int("WORLD_SIZE", 1)
    if world <= 1:
        return Placement(device=resolve_device(device))
    rank, local = _env_int("RANK", 0), _env_int("LOCAL_RANK", 0)
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = resolve_device(device)
    if dev.type == "mps":
        raise ValueError("device='mps' cannot run under torchrun: MPS has no collective backend (use one process)")
    if dev.type == "cuda":
        dev = torch.device("cuda", local if dev.index is None else dev.index)
        torch.cuda.set_device(dev)
    backend = "nccl" if dev.type == "cuda" else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, init_method="env://", rank=rank, world_size=world)
    return Placement(device=dev, rank=rank, world_size=world, local_rank=local, backend=backend)


def teardown() -> None:
    """Leave the process group (if one was joined); safe to call in any process."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def _active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    """This process's rank (0 without a process group)."""
    return dist.get_rank() if _active() else 0


def world_size() -> int:
    """The number of ranks (1 without a process group)."""
    return dist.get_world_size() if _active() else 1


def is_main() -> bool:
    """True on the rank that writes files (rank 0; always true in a single process)."""
    return rank() == 0


def _token() -> torch.Tensor:
    on = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")
    return torch.zeros(1, device=on)


def barrier() -> None:
    """Wait until every rank gets here (nothing to wait for in a single process). An all-reduce of
    one number, so it works the same with gloo and NCCL."""
    if _active():
        dist.all_reduce(_token())


def check_global_batch(batch_size: int, name: str = "batch_size") -> int:
    """``batch_size`` if the ranks can split it exactly, else a ValueError naming ``name``."""
    n = world_size()
    if batch_size % n:
        raise ValueError(f"{name}={batch_size} cannot be split over {n} ranks: choose a multiple of {n}")
    return batch_size


def shard(*tensors: torch.Tensor):
    """This rank's rows of a global batch: ``x[r·b:(r+1)·b]`` with ``b = len(x) / world_size``.

    Call it after drawing EVERYTHING random for the global batch (data, t, noise), so that every
    rank's generator advances the same way as a 1-rank run's. Identity in a single process. Returns
    one tensor for one argument, a tuple otherwise.
    """
    n, r = world_size(), rank()
    out = []
    for x in tensors:
        if n == 1:
            out.append(x)
            continue
        if x.shape[0] % n:
            raise ValueError(f"a global batch of {x.shape[0]} rows cannot be split over {n} ranks")
        b = x.shape[0] // n
        out.append(x[r * b:(r + 1) * b])
    return out[0] if len(out) == 1 else tuple(out)


def main_goes_on() -> bool:
    """The end of the collective part of a run: True on rank 0, which goes on alone (sampling,
    metrics, figures); False on the others, which should return and leave.

    The others wait for a broadcast from rank 0, which rank 0 sends once its last collective has
    completed; a broadcast needs nothing back from them, so they may leave as soon as it arrives.
    """
    if not _active():
        return True
    dist.broadcast(_token(), src=0)
    return dist.get_rank() == 0


def all_mean_(x: torch.Tensor) -> torch.Tensor:
    """Average ``x`` over the ranks, in place (the shard-mean losses → the global-batch losses)."""
    if _active():
        dist.all_reduce(x, op=dist.ReduceOp.SUM)
        x.div_(dist.get_world_size())
    return x


def broadcast_object(obj):
    """Rank 0's ``obj`` on every rank (e.g. a run folder named after rank 0's clock)."""
    if not _active():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


class Objective(nn.Module):
    """A module whose ``forward(*args)`` is ``fn(model, *args)``: any loss becomes a forward pass.

    DistributedDataParallel all-reduces the gradients of what goes through its ``forward`` only; an
    autoencoder's loss is a method (``model.loss(x, gen)``), not its forward. Train
    ``Objective(model, lambda m, x, gen: m.loss(x, gen))`` instead and call it as ``obj(x, gen)``;
    the weights are ``obj.model``'s (state-dict keys gain the prefix ``model.``).
    """

    def __init__(self, model: nn.Module, fn):
        super().__init__()
        self.model = model
        self.fn = fn

    def forward(self, *args):
        return self.fn(self.model, *args)
