"""The one face every bridge exposes, so one sampler and one set of metrics serve them all.

A bridge describes an SDE on t ∈ [0, 1] together with its time reversal:

    forward:   dX_t = drift(X_t, t) dt + g(t) dW_t                    (from the t=0 marginal to t=1)
    backward:  dY_s = backward_drift(Y_s, 1 − s) ds + g(1 − s) dW_s,   Y_s = X_{1−s}

Nelson's relation ties the two drifts to the score of the marginal ρ_t,

    drift + backward_drift = g² ∇log ρ_t = g² · score,

and the probability-flow ODE ``dx/dt = velocity = ½ (drift − backward_drift) = drift − ½ g² score``
has the same marginals ρ_t (docs/theory.md §2, notebook 02 §1 Theory). So any **two** of
``drift``, ``backward_drift`` and ``score`` give the third and the velocity: a subclass overrides what
it knows (torchcfm-style: one to three methods) and the base class derives the rest. What a bridge
cannot give raises :class:`MethodUnavailable` with the reason, e.g. "EmpiricalFollmer has no
backward drift: its law at t=0 is a point mass".

Every bridge also says which end of [0, 1] holds the data (``data_end``) and draws the start points
of generation, at the other end, with :meth:`Bridge.start`; ``lsbcore.generate`` uses both.

Conventions: ``x`` is ``(batch, dim)``; ``t`` is a float or a tensor broadcastable to ``(batch, 1)``.
The sampler (``lsbcore.sample``) calls ``drift``, ``backward_drift`` and ``velocity`` with ``t`` a
``(batch, 1)`` tensor on ``x``'s device and dtype whose rows are all equal (a stride-0 ``expand``).

This module imports nothing from lsbcore but ``utils``: solvers and references build on it.
"""
from __future__ import annotations

import functools
from types import MappingProxyType

import torch

from .utils import Seed, check_state, check_time

__all__ = ["Bridge", "MethodUnavailable", "FACE"]

#: the face methods whose arguments (x, t) are checked at every public call
_CHECKED = ("drift", "backward_drift", "score", "velocity")

#: the methods of the face that a bridge may or may not provide
FACE = ("drift", "backward_drift", "score", "velocity", "start")

_WHAT = {"drift": "forward drift", "backward_drift": "backward drift", "score": "score",
         "velocity": "probability-flow velocity", "start": "start law"}


def _checked(method):
    """Wrap a face method so that it checks ``x`` (shape, dtype, finite on the CPU) and ``t`` (in [0, 1])."""
    @functools.wraps(method)
    def checked(self, x, t, *args, **kwargs):
        x = check_state(x, "x", dim=self.dim)
        check_time(t, "t", batch=x.shape[0], like=x)
        return method(self, x, t, *args, **kwargs)

    checked.unchecked = method
    return checked


class MethodUnavailable(NotImplementedError):
    """A bridge was asked for a part of the face it cannot provide; the message says why.

    A subclass of ``NotImplementedError``, so ``except NotImplementedError`` still catches it.
    """


class Bridge:
    """Base class of the bridge face. Override what you know; the defaults follow from Nelson's relation.

    Class attributes a subclass may set:

    - ``sigma``: the constant diffusion coefficient g (override :meth:`diffusion` for a g(t));
    - ``dim``: the state dimension, where known;
    - ``data_end``: 1 if the data sit at t = 1 (generation runs forward, e.g. Föllmer, bridge matching),
      0 if they sit at t = 0 (generation runs backward from a prior, e.g. VSDM, score-based models);
    - ``unavailable``: ``{method: reason}`` for parts of the face that exist in principle but not for
      this bridge; calling them raises :class:`MethodUnavailable` with that reason.
    """

    sigma: float = 0.0
    dim: int | None = None
    data_end: int = 1
    unavailable = MappingProxyType({})  # read-only: a subclass or an instance sets its own dict

    def __init_subclass__(cls, **kwargs):
        # Every drift / backward_drift / score / velocity a subclass writes is a public entry point:
        # wrap it once here so that each one checks x and t at the door, and no subclass can forget.
        super().__init_subclass__(**kwargs)
        for name in _CHECKED:
            method = cls.__dict__.get(name)
            if callable(method) and not hasattr(method, "unchecked"):
                setattr(cls, name, _checked(method))

    def unchecked(self, name: str):
        """The bound method ``name`` without the argument checks (for the sampler's inner loop, whose
        states and times were checked once before it)."""
        method = getattr(type(self), name)
        return getattr(method, "unchecked", method).__get__(self, type(self))

    # ------------------------------------------------------------------ what is provided
    def _overrides(self, name: str) -> bool:
        return getattr(type(self), name) is not getattr(Bridge, name) and name not in self.unavailable

    def _deterministic(self) -> bool:
        """True for a flow (g ≡ 0): a constant ``sigma`` of 0 and no time-dependent diffusion."""
        s = self.sigma
        return type(self).diffusion is Bridge.diffusion and not isinstance(s, torch.Tensor) and s == 0

    def provides(self, name: str) -> bool:
        """Whether ``name`` (one of :data:`FACE`) can be evaluated, directly or through Nelson's relation."""
        if name not in FACE:
            raise ValueError(f"name must be one of {FACE}, got {name!r}")
        if name in self.unavailable:
            return False
        if self._overrides(name):
            return True
        has = self._overrides
        if name == "drift":
            return has("score") and has("backward_drift")
        if name == "backward_drift":
            return has("score") and has("drift")
        if name == "score":
            return has("drift") and has("backward_drift") and not self._deterministic()
        if name == "velocity":
            if self._deterministic():
                return self.provides("drift")
            return sum(has(m) for m in ("drift", "backward_drift", "score")) >= 2
        return False

    def _unavailable(self, name: str) -> MethodUnavailable:
        why = self.unavailable.get(name)
        if why is None:
            if name == "score" and self._deterministic():
                why = "its diffusion is zero (a deterministic flow), so the drifts do not determine a score"
            elif name == "start":
                why = "it has no law of its own at the start end; pass start points to lsbcore.sample"
            else:
                known = [m for m in ("drift", "backward_drift", "score") if self._overrides(m)]
                why = (f"it defines only {', '.join(known) or 'none of drift, backward_drift, score'}, "
                       f"and two of them are needed")
        return MethodUnavailable(f"{type(self).__name__} has no {_WHAT[name]}: {why}")

    # ------------------------------------------------------------------ the face
    def diffusion(self, t) -> torch.Tensor | float:
        """g(t), broadcastable to ``(batch, 1)``. Default: the constant ``sigma``."""
        return self.sigma

    def drift(self, x: torch.Tensor, t) -> torch.Tensor:
        """Forward drift b(x, t). Default (from Nelson): g² score − backward_drift."""
        if not self.provides("drift"):
            raise self._unavailable("drift")
        return self.diffusion(t) ** 2 * self.score(x, t) - self.backward_drift(x, t)

    def backward_drift(self, x: torch.Tensor, t) -> torch.Tensor:
        """Drift of the time reversal, written at the real time t. Default: g² score − drift."""
        if not self.provides("backward_drift"):
            raise self._unavailable("backward_drift")
        return self.diffusion(t) ** 2 * self.score(x, t) - self.drift(x, t)

    def score(self, x: torch.Tensor, t) -> torch.Tensor:
        """∇log ρ_t(x). Default (from Nelson): (drift + backward_drift) / g²."""
        if not self.provides("score"):
            raise self._unavailable("score")
        return (self.drift(x, t) + self.backward_drift(x, t)) / self.diffusion(t) ** 2

    def velocity(self, x: torch.Tensor, t) -> torch.Tensor:
        """Probability-flow velocity ½(drift − backward_drift) = drift − ½g² score (the drift if g ≡ 0)."""
        if not self.provides("velocity"):
            raise self._unavailable("velocity")
        if self._deterministic():
            return self.drift(x, t)
        has = self._overrides
        if has("drift") and has("backward_drift"):
            return 0.5 * (self.drift(x, t) - self.backward_drift(x, t))
        if has("drift"):
            return self.drift(x, t) - 0.5 * self.diffusion(t) ** 2 * self.score(x, t)
        return 0.5 * self.diffusion(t) ** 2 * self.score(x, t) - self.backward_drift(x, t)

    def start(self, n: int, *, seed: Seed = 0, device=None) -> torch.Tensor:
        """``n`` start points of generation: samples of the marginal at the end opposite ``data_end``."""
        raise self._unavailable("start")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(sigma={self.sigma})"
