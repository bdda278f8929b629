"""The one face every bridge exposes, so one sampler and one set of metrics serve them all.

A bridge describes an SDE on t ∈ [0, 1]

    forward:   dX_t = drift(X_t, t) dt + g(t) dW_t                    (from the t=0 marginal to t=1)
    backward:  dY_s = backward_drift(Y_s, 1 − s) ds + g(1 − s) dW_s,   Y_s = X_{1−s}

with the Nelson relation ``drift + backward_drift = g² ∇log ρ_t`` between the two, and the
probability-flow ODE ``dx/dt = velocity(x, t) = ½ (drift − backward_drift)`` that shares the
marginals ρ_t. Closed-form bridges (Gaussian, grid, empirical Föllmer) and learned ones implement
the methods they can; a missing direction raises ``NotImplementedError`` with a clear message.

Conventions: ``x`` is ``(batch, dim)``; ``t`` is a float or a tensor broadcastable to ``(batch, 1)``.
The sampler (``lsbcore.sde.sample``) always calls ``drift``, ``backward_drift`` and ``velocity`` with
``t`` a ``(batch, 1)`` tensor on ``x``'s device and dtype whose rows are all equal: a stride-0
``expand`` of one time, not a copy (a bridge may use ``t.stride(0) == 0`` to compute per-time
coefficients once). The backward SDE steps with ``backward_drift(x, t_k)`` at the real time t_k.
Notebook 02 (§1 Theory, and its bridge dropdown) swaps bridges behind this face.
"""
from __future__ import annotations

import torch


class Bridge:
    """Base class of the bridge face: override ``drift`` (and ``backward_drift`` / ``velocity``)."""

    #: constant diffusion coefficient g (σ for a σW reference); override ``diffusion`` for g(t)
    sigma: float = 0.0
    #: dimension of the state, where known
    dim: int | None = None

    def diffusion(self, t: torch.Tensor) -> torch.Tensor | float:
        """g(t), broadcastable to ``(batch, 1)``. Default: the constant ``sigma``."""
        return self.sigma

    def drift(self, x: torch.Tensor, t) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} has no forward drift")

    def backward_drift(self, x: torch.Tensor, t) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} has no backward drift")

    def velocity(self, x: torch.Tensor, t) -> torch.Tensor:
        """Probability-flow ODE velocity ½(drift − backward_drift); for σ = 0, the drift itself."""
        if not isinstance(self.sigma, torch.Tensor) and self.sigma == 0 and type(self).diffusion is Bridge.diffusion:
            return self.drift(x, t)
        return 0.5 * (self.drift(x, t) - self.backward_drift(x, t))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(sigma={self.sigma})"
