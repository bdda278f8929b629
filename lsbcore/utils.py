"""Device choice, seeding and the argument checks shared by every public function.

Public functions of lsbcore validate their inputs here, at the boundary, and raise a
``ValueError``/``TypeError`` that names the offending argument; inner code trusts its inputs.
"""
from __future__ import annotations

import math
import random
from numbers import Real
from typing import Optional, Union

import numpy as np
import torch

Seed = Union[int, torch.Generator, None]


def device(prefer: Optional[str] = None) -> torch.device:
    """The best available device: CUDA, then Apple MPS, then CPU (``prefer`` forces one)."""
    if prefer is not None:
        return torch.device(prefer)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch's global generators (for code we do not control, e.g. nn.init)."""
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def generator(seed: Seed = 0, device: Union[str, torch.device, None] = "cpu") -> torch.Generator:
    """A ``torch.Generator`` on ``device`` seeded with ``seed`` (a generator is passed through).

    Every random function in lsbcore takes ``seed=`` as an int or a generator, so the same seed gives
    the same numbers on CPU; nothing reads torch's global RNG silently.
    """
    if isinstance(seed, torch.Generator):
        return seed
    if seed is None:
        seed = 0
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int or a torch.Generator, got {type(seed).__name__}")
    dev = torch.device(device if device is not None else "cpu")
    g = torch.Generator(device=dev)
    g.manual_seed(int(seed))
    return g


# ---------------------------------------------------------------------------------- checks
def check_positive(value, name: str, *, allow_zero: bool = False) -> float:
    """A finite real number > 0 (or ≥ 0 with ``allow_zero``), else a ValueError naming ``name``."""
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ValueError(f"{name} must be a scalar, got a tensor of shape {tuple(value.shape)}")
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"{name} must be {'≥' if allow_zero else '>'} 0, got {value}")
    return value


def check_int(value, name: str, *, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be ≥ {minimum}, got {value}")
    return int(value)


def check_points(x, name: str, *, dim: Optional[int] = None, allow_empty: bool = False) -> torch.Tensor:
    """A finite floating tensor of shape ``(n, d)``; a 1-D tensor is read as ``(n, 1)``.

    Raises TypeError for non-tensors / integer tensors and ValueError (naming ``name``) for wrong
    shape, mismatched dimension ``dim``, an empty set or NaN/inf entries.
    """
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape (n, d), got {type(x).__name__}")
    if not torch.is_floating_point(x):
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2:
        raise ValueError(f"{name} must have shape (n, d), got {tuple(x.shape)}")
    if x.shape[0] == 0 and not allow_empty:
        raise ValueError(f"{name} is empty: need at least one point")
    if dim is not None and x.shape[1] != dim:
        raise ValueError(f"{name} must have dimension {dim}, got {x.shape[1]}")
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} contains NaN or inf")
    return x


def check_weights(w, name: str, n: int, *, like: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Non-negative finite weights of length ``n`` with a positive sum, normalised to sum 1.

    ``None`` gives uniform weights (on ``like``'s device and dtype).
    """
    dtype = like.dtype if like is not None else torch.get_default_dtype()
    dev = like.device if like is not None else None
    if w is None:
        return torch.full((n,), 1.0 / n, dtype=dtype, device=dev)
    if isinstance(w, np.ndarray):
        w = torch.from_numpy(w)
    if not isinstance(w, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape ({n},), got {type(w).__name__}")
    if w.ndim != 1 or w.shape[0] != n:
        raise ValueError(f"{name} must have shape ({n},), got {tuple(w.shape)}")
    if like is not None and w.device != like.device:
        raise ValueError(f"{name} is on {w.device} but the points are on {like.device}")
    w = w.to(dtype)
    if not bool(torch.isfinite(w).all()):
        raise ValueError(f"{name} contains NaN or inf")
    if bool((w < 0).any()):
        raise ValueError(f"{name} must be non-negative")
    total = w.sum()
    if not total > 0:
        raise ValueError(f"{name} must have a positive sum")
    return w / total


def check_same_device(**tensors: torch.Tensor) -> torch.device:
    """All tensors on one device; else a ValueError naming them."""
    items = [(k, v) for k, v in tensors.items() if isinstance(v, torch.Tensor)]
    if not items:
        return torch.device("cpu")
    dev = items[0][1].device
    for k, v in items[1:]:
        if v.device != dev:
            raise ValueError(f"{k} is on {v.device} but {items[0][0]} is on {dev}: move them to one device")
    return dev


def check_time(t, name: str = "t", *, batch: Optional[int] = None, like: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Time as a tensor broadcastable to ``(batch, 1)`` with values in [0, 1]."""
    if isinstance(t, Real) and not isinstance(t, bool):
        t = torch.tensor(float(t), dtype=like.dtype if like is not None else None)
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a float or a tensor, got {type(t).__name__}")
    if like is not None:
        t = t.to(device=like.device, dtype=like.dtype)
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} contains NaN or inf")
    if bool((t < 0).any()) or bool((t > 1).any()):
        raise ValueError(f"{name} must lie in [0, 1]")
    if t.ndim == 0:
        t = t.reshape(1, 1)
    elif t.ndim == 1:
        t = t[:, None]
    if batch is not None and t.shape[0] not in (1, batch):
        raise ValueError(f"{name} has {t.shape[0]} rows but the batch has {batch}")
    return t


def is_fast() -> bool:
    """True when ``LSB_FAST=1``: notebooks and benchmarks shrink their sizes (same code, smaller)."""
    import os

    return os.environ.get("LSB_FAST", "0") not in ("", "0", "false", "False")
