"""The machinery of the exercise checks: the registry, the feedback, and comparisons that say what is off."""
from __future__ import annotations

import importlib
import math
from dataclasses import dataclass
from typing import Callable, Dict

import torch

_NOTEBOOKS = ("nb01", "nb02", "nb03", "nb04", "nb05", "nb06", "nb07")
_REGISTRY: Dict[str, "Exercise"] = {}


class Mismatch(Exception):
    """Raised by a check when the answer is off; its message says where and by how much."""


class NotAttempted(Exception):
    """Raised by a check when the answer is still the stub's placeholder."""


@dataclass(frozen=True)
class Exercise:
    """One exercise: ``id`` ("NN.k"), a one-line ``question``, a ``hint`` and ``verify(answer)``
    (returns a short confirmation, raises :class:`Mismatch` or :class:`NotAttempted`)."""

    id: str
    question: str
    hint: str
    verify: Callable
    verifies: str  # what the check compares, in a line (for the course's list of exercises)


@dataclass(frozen=True)
class Feedback:
    """The outcome of :func:`check`: ``status`` is "correct", "not attempted" or "wrong"."""

    exercise: str
    status: str
    message: str

    @property
    def correct(self) -> bool:
        return self.status == "correct"

    def __bool__(self) -> bool:
        return self.correct

    def __str__(self) -> str:
        mark = {"correct": "✓ correct", "not attempted": "… not attempted yet", "wrong": "✗ not yet"}[self.status]
        return f"Exercise {self.exercise}: {mark}" + (f" — {self.message}" if self.message else "")

    __repr__ = __str__


def register(id: str, question: str, hint: str, verifies: str):
    """Decorator: register ``verify(answer)`` as the check of exercise ``id``."""
    def deco(fn):
        if id in _REGISTRY:
            raise ValueError(f"exercise {id!r} is registered twice")
        _REGISTRY[id] = Exercise(id, question, hint, fn, verifies)
        return fn
    return deco


def _load() -> None:
    for name in _NOTEBOOKS:
        importlib.import_module(f"{__package__}.{name}")


def exercises() -> Dict[str, Exercise]:
    """Every exercise of the course, id → :class:`Exercise`, in notebook order."""
    _load()
    return dict(sorted(_REGISTRY.items()))


def get(exercise_id: str) -> Exercise:
    """The :class:`Exercise` with this id; a ValueError lists the ids when there is none."""
    if not isinstance(exercise_id, str):
        raise TypeError(f"exercise_id must be a string like '03.2', got {type(exercise_id).__name__}")
    ids = exercises()
    if exercise_id not in ids:
        raise ValueError(f"exercise_id {exercise_id!r} is not an exercise; there are {', '.join(ids)}")
    return ids[exercise_id]


def check(exercise_id: str, answer) -> Feedback:
    """Check ``answer`` to exercise ``exercise_id`` ("NN.k") and return a :class:`Feedback`.

    A placeholder answer (``None``, ``...``, a function still returning ``None``) gives "not attempted
    yet"; an answer that is off (or code that raises) gives what is off and a hint, never an exception.
    """
    ex = get(exercise_id)
    if _placeholder(answer):
        return Feedback(ex.id, "not attempted", "replace the placeholder with your answer, then run this cell again")
    try:
        note = ex.verify(answer)
    except NotAttempted as err:
        return Feedback(ex.id, "not attempted", str(err) or "your function still returns the placeholder")
    except Mismatch as err:
        return Feedback(ex.id, "wrong", f"{err}. Hint: {ex.hint}")
    except Exception as err:  # the student's code raised: report it, do not stop the notebook
        return Feedback(ex.id, "wrong", f"your answer raised {type(err).__name__}: {err}. Hint: {ex.hint}")
    return Feedback(ex.id, "correct", note or "")


# ---------------------------------------------------------------------------------------- helpers
def _placeholder(value) -> bool:
    return value is None or value is Ellipsis


def call(fn, *args, **kwargs):
    """Call the student's function; its placeholder result means "not attempted"."""
    if not callable(fn):
        raise Mismatch(f"expected a function, got {type(fn).__name__}")
    out = fn(*args, **kwargs)
    if _placeholder(out):
        raise NotAttempted("your function returns None: write its body (replace the `...`)")
    return out


def round_off(value) -> float:
    """Relative tolerance for a formula evaluated in ``value``'s precision: 1e-5 in float32, 1e-9 in
    float64 (a few hundred units in the last place of a short, well-conditioned computation)."""
    if isinstance(value, torch.Tensor) and value.dtype in (torch.float32, torch.float16, torch.bfloat16):
        return 1e-5
    return 1e-9


def as_float64(value, what: str) -> torch.Tensor:
    """``value`` (tensor, array, number, sequence) as a float64 CPU tensor; Mismatch if impossible or not finite."""
    try:
        if isinstance(value, torch.Tensor):
            out = value.detach().to("cpu", torch.float64)
        else:
            out = torch.as_tensor(value, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError) as err:
        raise Mismatch(f"{what}: could not read {type(value).__name__} as numbers ({err})") from None
    if not bool(torch.isfinite(out).all()):
        raise Mismatch(f"{what} holds NaN or ±inf (an exp that under- or overflowed? work in the log domain)")
    return out


def compare(got, want, what: str, *, rtol: float | None = None, atol: float = 0.0) -> None:
    """Mismatch unless ``got`` ≈ ``want`` (same shape after squeezing, |got − want| ≤ atol + rtol·|want|)."""
    tol = round_off(got) if rtol is None else rtol
    g = as_float64(got, what)
    w = (want.detach().to("cpu", torch.float64) if isinstance(want, torch.Tensor)
         else torch.as_tensor(want, dtype=torch.float64))
    if g.numel() != w.numel() or (g.squeeze().shape != w.squeeze().shape):
        raise Mismatch(f"{what}: expected shape {tuple(w.shape)}, got {tuple(g.shape)}")
    g, w = g.reshape(w.shape), w
    bound = atol + tol * w.abs()
    bad = (g - w).abs() > bound
    if bool(bad.any()):
        i = int(torch.nonzero(bad.reshape(-1))[0])
        gi, wi = float(g.reshape(-1)[i]), float(w.reshape(-1)[i])
        where = f" (entry {i})" if w.numel() > 1 else ""
        raise Mismatch(f"{what}{where}: expected {wi:.8g}, got {gi:.8g} "
                       f"(off by {abs(gi - wi):.3g}, allowed {float(bound.reshape(-1)[i]):.2g})")


def number(value, what: str) -> float:
    """``value`` as one finite float, or Mismatch."""
    t = as_float64(value, what)
    if t.numel() != 1:
        raise Mismatch(f"{what}: expected one number, got shape {tuple(t.shape)}")
    return float(t.reshape(()))


def seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def fmt(x: float) -> str:
    return f"{x:.6g}" if math.isfinite(x) else str(x)
