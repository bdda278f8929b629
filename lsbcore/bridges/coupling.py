"""Couplings of two minibatches: independent, entropic OT (Sinkhorn), exact OT (Notebook 02 §"Couplings").

Bridge matching regresses on Brownian bridges between pairs (X0, X1); the coupling that draws the
pairs decides which bridge is learned: the independent one gives a mixture of Brownian bridges, the
entropic-OT plan at ε = 2σ² the Schrödinger bridge of σW (SB-CFM; docs/theory.md §1, §2).
"""
from __future__ import annotations

from typing import Optional

import torch

from ..utils import Seed, check_int, check_points, check_positive, check_same_device, check_scale, generator

__all__ = ["COUPLINGS", "couple"]

COUPLINGS = ("independent", "sinkhorn", "ot")


def couple(x0, x1, coupling: str = "sinkhorn", *, sigma: Optional[float] = None,
           eps: Optional[float] = None, seed: Seed = 0, pairs: Optional[int] = None,
           **sinkhorn_kwargs) -> tuple[torch.Tensor, torch.Tensor]:
    """Pair the rows of two equally sized batches: ``(x0[i_k], x1[j_k])`` for k = 1..n.

    - ``"independent"``: the product coupling (the pairs as given; shuffle beforehand if needed).
    - ``"sinkhorn"``: n pairs drawn from the entropic-OT plan with ``eps = 2σ²`` (the static SB of
      σW), computed by :func:`lsbcore.sinkhorn` on the minibatch (SB-CFM).
    - ``"ot"``: exact OT (``ot.emd``): for uniform equal-size batches a permutation, used as is.

    Notebook 02 §"Couplings". Extra keyword arguments go to ``sinkhorn`` (e.g. ``tol``, ``max_iter``).
    ``pairs`` (Sinkhorn only): draw that many pairs from the one plan instead of n (e.g. the pairs of
    several training steps, ``fit_bridge(coupling_every=k)``).
    """
    x0 = check_points(x0, "x0")
    x1 = check_points(x1, "x1", dim=x0.shape[1])
    check_same_device(x0=x0, x1=x1)
    if x0.shape[0] != x1.shape[0]:
        raise ValueError(f"x0 and x1 must have the same number of rows, got {x0.shape[0]} and {x1.shape[0]}")
    if pairs is not None and coupling != "sinkhorn":
        raise ValueError(f"pairs applies to the sinkhorn coupling only, got coupling={coupling!r}")
    if coupling == "independent":
        return x0, x1
    if coupling == "ot":
        return x0, x1[_emd_permutation(x0, x1)]
    if coupling == "sinkhorn":
        if eps is None:
            if sigma is None:
                raise ValueError("the sinkhorn coupling needs sigma (eps = 2σ²) or eps")
            eps = 2 * check_scale(sigma, "sigma") ** 2
        from ..schrodinger import sinkhorn

        res = sinkhorn(x0, x1, check_positive(eps, "eps"), **sinkhorn_kwargs)
        n_pairs = x0.shape[0] if pairs is None else check_int(pairs, "pairs")
        i, j = res.sample_indices(n_pairs, seed=generator(seed, x0.device))
        return x0[i], x1[j]
    raise ValueError(f"coupling must be one of {COUPLINGS}, got {coupling!r}")


def _emd_permutation(x0: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
    """j = perm[i]: the exact OT matching of two uniform point sets of equal size (POT's emd)."""
    import numpy as np
    import ot

    a = x0.detach().double().cpu().numpy()
    b = x1.detach().double().cpu().numpy()
    M = ot.dist(a, b)  # squared Euclidean
    if not np.isfinite(M).all():
        raise ValueError("the squared distances between x0 and x1 overflow float64: rescale the points")
    n = a.shape[0]
    plan = ot.emd(np.full(n, 1.0 / n), np.full(n, 1.0 / n), M)
    return torch.as_tensor(plan.argmax(axis=1), device=x0.device)
