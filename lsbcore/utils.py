"""Device choice, seeding and the argument checks shared by every public function.

Public functions of lsbcore validate their inputs here, at the boundary, and raise a
``ValueError``/``TypeError`` that names the offending argument; inner code trusts its inputs.
"""
from __future__ import annotations

import math
import os
import random
from numbers import Real
from typing import Callable, Optional, Union

import numpy as np
import torch

Seed = Union[int, torch.Generator, None]


class ChecksumError(ValueError):
    """A file's content does not match its recorded sha256: it is corrupt or was changed."""


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
    seed = check_seed(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed % 2**64)


def generator(seed: Seed = 0, device: Union[str, torch.device, None] = "cpu") -> torch.Generator:
    """A ``torch.Generator`` on ``device`` seeded with ``seed`` (a generator is passed through).

    Every random function in lsbcore takes ``seed=`` as an int or a generator, so the same seed gives
    the same numbers on CPU; nothing reads torch's global RNG silently. ``None`` means 0.
    """
    if isinstance(seed, torch.Generator):
        return seed
    seed = check_seed(seed)
    gen = torch.Generator(device=torch.device(device if device is not None else "cpu"))
    gen.manual_seed(seed)
    return gen


def check_seed(seed, name: str = "seed") -> int:
    """An int seed in [−2⁶³, 2⁶⁴) (``None`` → 0); a TypeError/ValueError naming ``name`` otherwise."""
    if seed is None:
        return 0
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"{name} must be an int or a torch.Generator, got {type(seed).__name__}")
    seed = int(seed)
    if not -(2**63) <= seed < 2**64:
        raise ValueError(f"{name} must lie in [-2**63, 2**64), got {seed}")
    return seed


def check_positive(value, name: str, *, allow_zero: bool = False) -> float:
    """A finite real number > 0 (or ≥ 0 with ``allow_zero``), else a ValueError naming ``name``."""
    value = check_real(value, name)
    if value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"{name} must be {'≥' if allow_zero else '>'} 0, got {value}")
    return value


def check_scale(value, name: str, *, allow_zero: bool = False) -> float:
    """A positive scale (σ, a bandwidth) in [1e-75, 1e75], where its 4th power is still a normal float64
    (0 too with ``allow_zero``); else a TypeError/ValueError naming ``name``."""
    value = check_positive(value, name, allow_zero=allow_zero)
    if value != 0 and not 1e-75 <= value <= 1e75:
        raise ValueError(f"{name} must lie in [1e-75, 1e75] (its 4th power must stay a float64), got {value:g}")
    return value


def check_real(value, name: str) -> float:
    """A finite real number (a Python/NumPy number or a one-element tensor), else a TypeError/ValueError naming ``name``."""
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ValueError(f"{name} must be a scalar, got a tensor of shape {tuple(value.shape)}")
        if value.is_complex():
            raise TypeError(f"{name} must be a real number, got dtype {value.dtype}")
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return value


def check_device(device, name: str = "device") -> torch.device:
    """``None`` (the CPU), a ``torch.device`` or a device string such as ``"cuda:0"``; else a TypeError/ValueError."""
    if device is None:
        return torch.device("cpu")
    if isinstance(device, torch.device):
        return device
    if not isinstance(device, str):
        raise TypeError(f"{name} must be a torch.device or a string like 'cpu' or 'cuda', got {type(device).__name__}")
    try:
        return torch.device(device)
    except RuntimeError:
        raise ValueError(f"{name} must name a torch device such as 'cpu' or 'cuda:0', got {device!r}") from None


#: the largest count (samples, steps, bins, …) a torch size can hold
MAX_COUNT = 2**63 - 1


def check_int(value, name: str, *, minimum: int = 1, maximum: int = MAX_COUNT) -> int:
    """An int in [minimum, maximum] (NumPy ints accepted, bools refused); errors name ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be ≥ {minimum}, got {value}")
    if value > maximum:
        raise ValueError(f"{name} must be ≤ {maximum}, got {value}")
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
    if x.device.type == "meta":
        raise ValueError(f"{name} is on the meta device: it holds no values; move it to a real device")
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


def check_state(x, name: str = "x", *, dim: Optional[int] = None) -> torch.Tensor:
    """States ``(batch, dim)`` given to a drift: like :func:`check_points`, but the values (NaN/inf)
    are checked on the CPU only, so a drift called inside a GPU sampling loop never syncs."""
    if isinstance(x, torch.Tensor) and x.device.type not in ("cpu", "meta"):
        if not torch.is_floating_point(x):
            raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
        if x.ndim != 2 or (dim is not None and x.shape[1] != dim):
            raise ValueError(f"{name} must have shape (batch, {dim if dim is not None else 'd'}), "
                             f"got {tuple(x.shape)}")
        return x
    return check_points(x, name, dim=dim)


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
    """Time as a tensor broadcastable to ``(batch, 1)`` with values in [0, 1]: the one time check.

    ``t`` may be a Python number, a 0-d tensor, ``(batch,)`` or ``(batch, 1)``; the result is 2-D with 1
    or ``batch`` rows, on ``like``'s device and dtype when ``like`` is given. A Python number goes
    straight to that dtype (no float32 round trip). Values (NaN/inf, outside [0, 1]) are checked on the
    host, and for tensors on the CPU only, so a drift called inside a GPU sampling loop never syncs.
    """
    if isinstance(t, Real) and not isinstance(t, bool):
        value = float(t)
        if not math.isfinite(value):
            raise ValueError(f"{name} must be finite, got {value}")
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must lie in [0, 1], got {value}")
        t = torch.tensor(value, dtype=like.dtype if like is not None else torch.get_default_dtype(),
                         device=like.device if like is not None else None)
    elif not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a float or a tensor, got {type(t).__name__}")
    else:
        if not (torch.is_floating_point(t) or t.dtype in (torch.int32, torch.int64)):
            raise TypeError(f"{name} must be a real tensor, got dtype {t.dtype}")
        if like is not None:
            if t.device != like.device and t.numel() != 1:
                raise ValueError(f"{name} is on {t.device} but x is on {like.device}: move them to one device")
            t = t.to(device=like.device, dtype=like.dtype)
        elif not torch.is_floating_point(t):
            t = t.to(torch.get_default_dtype())
        if t.device.type == "cpu":
            if not bool(torch.isfinite(t).all()):
                raise ValueError(f"{name} contains NaN or inf")
            if bool((t < 0).any()) or bool((t > 1).any()):
                raise ValueError(f"{name} must lie in [0, 1]")
    if t.ndim == 0:
        t = t.reshape(1, 1)
    elif t.ndim == 1:
        t = t[:, None]
    if t.ndim != 2 or t.shape[1] != 1:
        raise ValueError(f"{name} must be broadcastable to (batch, 1), got shape {tuple(t.shape)}")
    if batch is not None and t.shape[0] not in (1, batch):
        raise ValueError(f"{name} has {t.shape[0]} rows but the batch has {batch}")
    return t


def time_column(t, x: torch.Tensor, name: str = "t") -> torch.Tensor:
    """``t`` checked by :func:`check_time` and expanded to a ``(batch, 1)`` column like ``x`` (no copy)."""
    return check_time(t, name, batch=x.shape[0], like=x).expand(x.shape[0], 1)


def as_real_tensor(value, name: str, dtype=None) -> torch.Tensor:
    """``value`` (a tensor, array or nested list of numbers) as a real tensor, without a copy when it
    already is one; a TypeError naming ``name`` for strings, None, bools, complex numbers and ragged lists."""
    if isinstance(value, (str, bytes, bool)) or value is None:
        raise TypeError(f"{name} must be numbers (a tensor, array or list), got {type(value).__name__}")
    try:
        out = value.detach() if isinstance(value, torch.Tensor) else torch.as_tensor(value, dtype=dtype)
    except (TypeError, ValueError, RuntimeError):
        raise TypeError(f"{name} must be numbers (a tensor, array or list), got {type(value).__name__}") from None
    if out.dtype == torch.bool or out.is_complex():
        raise TypeError(f"{name} must be real numbers, got dtype {out.dtype}")
    return out


def as_vector(value, name: str, d: int, *, dtype=torch.float64, device=None) -> torch.Tensor:
    """A finite vector of shape ``(d,)`` from a number (repeated) or a vector; errors name ``name``."""
    v = as_real_tensor(value, name, dtype)
    v = v.to(device=device if device is not None else v.device, dtype=dtype)
    if v.ndim == 0:
        v = v * torch.ones(d, dtype=dtype, device=v.device)
    if v.shape != (d,):
        raise ValueError(f"{name} must have shape ({d},), got {tuple(v.shape)}")
    if not bool(torch.isfinite(v).all()):
        raise ValueError(f"{name} contains NaN or inf")
    return v


def as_matrix(value, name: str, d: int, *, dtype=torch.float64, device=None, kind: str = "any") -> torch.Tensor:
    """A finite ``(d, d)`` matrix from a number (times I), a vector (diagonal) or a matrix.

    ``kind``: ``"any"`` (no further check), ``"sym"`` (symmetric), ``"psd"`` (symmetric positive
    semi-definite, e.g. a covariance that may be singular) or ``"pd"`` (symmetric positive definite).
    The one covariance coercer of the package; errors are ValueError/TypeError naming ``name``.
    """
    a = as_real_tensor(value, name, dtype)
    a = a.to(device=device if device is not None else a.device, dtype=dtype)
    if a.ndim == 0:
        a = a * torch.eye(d, dtype=dtype, device=a.device)
    elif a.ndim == 1:
        if a.shape[0] != d:
            raise ValueError(f"{name} must have length {d}, got {a.shape[0]}")
        a = torch.diag(a)
    if a.shape != (d, d):
        raise ValueError(f"{name} must have shape ({d}, {d}), got {tuple(a.shape)}")
    if not bool(torch.isfinite(a).all()):
        raise ValueError(f"{name} contains NaN or inf")
    if kind == "any":
        return a
    scale = max(1.0, float(a.abs().max()))
    if not torch.allclose(a, a.T, rtol=1e-8, atol=1e-10 * scale):
        raise ValueError(f"{name} must be symmetric")
    a = 0.5 * (a + a.T)
    if kind == "pd" and bool((torch.linalg.eigvalsh(a) <= 0).any()):
        raise ValueError(f"{name} must be positive definite")
    if kind == "psd" and float(torch.linalg.eigvalsh(a).min()) < -1e-10 * scale:
        raise ValueError(f"{name} must be positive semi-definite")
    return a


def is_fast() -> bool:
    """True when ``LSB_FAST=1``: notebooks and benchmarks shrink their sizes (same code, smaller)."""
    return os.environ.get("LSB_FAST", "0") not in ("", "0", "false", "False")


_best_device = device      # resolve_device's argument is called ``device`` too

#: the device kinds a notebook's ``DEVICE`` parameter may name ("auto" picks the best available)
DEVICE_KINDS = ("auto", "cpu", "cuda", "mps")


def resolve_device(device="auto", name: str = "device") -> torch.device:
    """The device a notebook or trainer asks for, checked to exist on this machine.

    ``"auto"`` → :func:`device` (CUDA, then MPS, then the CPU); ``"cpu"``, ``"cuda"``, ``"cuda:1"``,
    ``"mps"`` or a ``torch.device`` → that device. A name torch does not know (``"gpu"``), a device
    this machine lacks (``"cuda"`` on a CPU-only torch) or a non-string (``3``) raises a
    ValueError/TypeError naming ``name``, instead of a torch error deep inside training.
    Notebooks call it once after their parameters cell: ``DEV = lsb.resolve_device(DEVICE)``.
    """
    if isinstance(device, str) and device == "auto":
        return _best_device()
    if isinstance(device, bool) or not isinstance(device, (str, torch.device)):
        raise TypeError(f"{name} must be 'auto', 'cpu', 'cuda', 'cuda:K', 'mps' or a torch.device, "
                        f"got {type(device).__name__}")
    if isinstance(device, str):
        try:
            dev = torch.device(device)
        except RuntimeError:
            raise ValueError(f"{name} must be one of {DEVICE_KINDS} (or 'cuda:K'), got {device!r}") from None
    else:
        dev = device
    if dev.type not in DEVICE_KINDS:
        raise ValueError(f"{name} must be one of {DEVICE_KINDS} (or 'cuda:K'), got {str(device)!r}")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"{name}={str(device)!r} but torch sees no CUDA device (a CPU build of torch, "
                             "or no GPU): use 'cpu' or 'auto'")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"{name}={str(device)!r} but only {torch.cuda.device_count()} CUDA device(s) exist")
    if dev.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ValueError(f"{name}='mps' but Apple's Metal backend is not available here: use 'cpu' or 'auto'")
    return dev


def same_device(a: torch.device, b: torch.device) -> bool:
    """Two devices are the same place (``cuda`` and ``cuda:0`` are, when 0 is the current GPU)."""
    if a.type != b.type:
        return False
    if a.type != "cuda" or a.index == b.index:
        return True
    cur = torch.cuda.current_device()
    return (a.index if a.index is not None else cur) == (b.index if b.index is not None else cur)


def first_parameter(model) -> Optional[torch.Tensor]:
    """The first parameter tensor of ``model`` (its dtype and device stand for the model's), or None
    when ``model`` has no ``parameters()`` (a plain function, e.g. the zero drift) or no parameters."""
    params = getattr(model, "parameters", None)
    return next(iter(params()), None) if callable(params) else None


def work_device(device=None, *, net=None, **data) -> Optional[torch.device]:
    """Where a trainer works: the data's device, else ``device``, else the net's; ``None`` if nothing says.

    ``data`` are the trainer's inputs by argument name (tensors count, anything else is ignored).
    The tensors must share one device; ``device`` (when given) must be available
    (:func:`resolve_device`, ``"auto"`` allowed) and agree with the tensors; a ``net`` (an
    ``nn.Module``) must have its parameters there too. Each disagreement is a ValueError naming the
    arguments, raised before any training starts.
    """
    dev = None if device is None else resolve_device(device)
    tensors = {k: v for k, v in data.items() if isinstance(v, torch.Tensor)}
    if tensors:
        where = check_same_device(**tensors)
        first = next(iter(tensors))
        if dev is not None and not same_device(dev, where):
            raise ValueError(f"device={str(device)!r} but {first} is on {where}: move the data with "
                             f"{first}.to(device), or leave device=None")
        dev = where
    if net is not None:
        p = first_parameter(net)
        if p is not None:
            if dev is None:
                dev = p.device
            elif not same_device(dev, p.device):
                what = f"the data ({next(iter(tensors))})" if tensors else f"device={str(device)!r}"
                raise ValueError(f"net is on {p.device} but {what} on {dev}: move the net with net.to({str(dev)!r})")
    return dev


def on_device_source(source: Callable, dev: torch.device) -> Callable:
    """A sampler ``(n, gen) → points`` on ``dev`` from a sampler that works on the CPU.

    The training loop's generator lives on the net's device; a marginal or callable whose numbers are
    made on the CPU cannot use it. So each call draws one int seed from ``gen`` (on ``dev``), samples
    on the CPU with a CPU generator of that seed, and moves the points to ``dev``: the same numbers for
    the same seed, at the cost of one small host transfer per minibatch.
    """
    def draw(n, gen):
        s = int(torch.randint(0, 2**62, (1,), generator=gen, device=gen.device))
        return source(n, generator(s)).to(dev)
    return draw
