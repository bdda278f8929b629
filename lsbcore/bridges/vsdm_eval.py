"""Checking and scoring VSDM (notebook 06): the Gaussian Schrödinger bridge with an OU reference, and
the quality of PF-ODE samples at several numbers of function evaluations (NFE).

For Gaussian data and A = 0 with constant β the VSDM forward is an OU process, and the probability-flow
ODE with the exact score must pass through the marginals of the Schrödinger bridge between the data and
the prior with that OU reference: :func:`ou_gaussian_bridge_moments` gives them from the Brownian
closed form (docs/theory.md §3). With a *learned* A, :func:`gaussian_sb_distance` measures how far
the forward is from the Gaussian SB between the data and the model's prior (:func:`distance_history`
replays a training run). :func:`evaluate` scores a trained model: W2 with its noise floor,
histogram error and path straightness (docs/theory.md §7).
"""
from __future__ import annotations

import math

import torch

from ..metrics import bures_w2, histogram_error, straightness, w2_report
from ..utils import check_int, check_points, check_scale, check_time
from .vsdm import VSDM, LinearForward

__all__ = ["ou_gaussian_bridge_moments", "forward_marginals", "gaussian_sb_distance", "distance_history", "evaluate"]

_DT = torch.float64


def ou_gaussian_bridge_moments(m0, S0, m1, S1, c: float, g: float, t):
    """Marginal mean and covariance at times t of the Schrödinger bridge from N(m0, S0) to N(m1, S1)
    with the OU reference ``dY = c Y dt + g dW``, through the Brownian closed form.

    Y_t = e^{ct} B_{s(t)} turns the OU reference into Brownian motion σB on [0, 1] run at the clock
    s(t) = ξ(t)/ξ(1), ξ(t) = g²(1 − e^{−2ct})/(2c), σ² = ξ(1); the bridge between N(m0, S0) and
    N(e^{−c} m1, e^{−2c} S1) for σB is :class:`lsbcore.schrodinger.gaussian.GaussianBridge`.
    Returns ``(means (n, d), covs (n, d, d))`` in float64. Notebook 06 §2.2 "A Gaussian check", docs/theory.md §3.
    """
    from ..schrodinger import GaussianBridge

    if isinstance(c, bool) or not isinstance(c, (int, float)) or not math.isfinite(c) or c == 0:
        raise ValueError(f"c must be a finite non-zero real number, got {c!r}")
    g = check_scale(g, "g")
    t = check_time(torch.as_tensor(t, dtype=_DT).reshape(-1)).reshape(-1)
    xi = lambda u: g**2 * (1 - torch.exp(-2 * c * torch.as_tensor(u, dtype=_DT))) / (2 * c)  # noqa: E731
    xi1 = float(xi(1.0))
    m0, S0 = (torch.as_tensor(v, dtype=_DT).detach() for v in (m0, S0))   # closed form: no autograd
    m1, S1 = (torch.as_tensor(v, dtype=_DT).detach() for v in (m1, S1))
    gb = GaussianBridge(m0, S0, math.exp(-c) * m1, math.exp(-2 * c) * S1, math.sqrt(xi1))
    s = (xi(t) / xi1).clamp(0, 1)
    mu, cov = gb.mean(s), gb.cov(s)
    e = torch.exp(c * t)
    return e[:, None] * mu, e[:, None, None] ** 2 * cov


def forward_marginals(forward: LinearForward, m0, S0, t):
    """Exact marginals of the forward process started at N(m0, S0): X_t ~ N(Φ_t m0, Φ_t S0 Φ_tᵀ + Σ_t).

    ``t``: times in [0, 1]. Returns ``(means (n, d), covs (n, d, d))`` in float64, no gradient.
    Notebook 06 §2.2 "A Gaussian check".
    """
    if not isinstance(forward, LinearForward):
        raise TypeError(f"forward must be a LinearForward, got {type(forward).__name__}")
    from ..utils import as_matrix, as_vector

    m0 = as_vector(m0, "m0", forward.dim, device="cpu")
    S0 = as_matrix(S0, "S0", forward.dim, device="cpu", kind="psd")
    with torch.no_grad():
        Phi, Sig = forward.transition(t)
    Phi, Sig = Phi.cpu(), Sig.cpu()
    return Phi @ m0, Phi @ S0 @ Phi.transpose(1, 2) + Sig


def gaussian_sb_distance(forward: LinearForward, m0, S0, *, n_times: int = 21):
    """How far VSDM's forward process is from the Gaussian Schrödinger bridge it should approach.

    For Gaussian data N(m0, S0) and constant β (``beta_min == beta_max``), the forward process with
    the current A has exact Gaussian marginals (:func:`forward_marginals`). The reference of VSDM is
    the OU process ``dY = −½β Y dt + √β dW`` (A = 0); the Schrödinger bridge with that reference from
    the data to the model's own prior N(0, Σ_1(A)) has closed-form marginals
    (:func:`ou_gaussian_bridge_moments`, c = −β/2, g = √β). The distance is the root mean square over
    ``n_times`` equally spaced times of the Bures–W2 between the two marginals; at A = 0 it is
    mostly the mismatch between the OU's terminal law and the prior (the forward does not reach the
    prior's mean 0). Returns ``(distance, per_time (n_times,))``. Notebook 06 §2.2 "A Gaussian check".
    """
    if not isinstance(forward, LinearForward):
        raise TypeError(f"forward must be a LinearForward, got {type(forward).__name__}")
    sch = forward.schedule
    if sch.beta_min != sch.beta_max:
        raise ValueError(f"the Gaussian check needs a constant β (beta_min == beta_max), got "
                         f"beta_min={sch.beta_min}, beta_max={sch.beta_max}")
    n_times = check_int(n_times, "n_times", minimum=2)
    beta = float(sch.beta_max)
    t = torch.linspace(0.0, 1.0, n_times, dtype=_DT)
    mf, Sf = forward_marginals(forward, m0, S0, t)
    with torch.no_grad():
        prior = forward.prior_cov().cpu()
    mb, Sb = ou_gaussian_bridge_moments(mf[0], Sf[0], torch.zeros(forward.dim, dtype=_DT), prior, -beta / 2,
                                        math.sqrt(beta), t)
    per = torch.tensor([bures_w2(mf[i], Sf[i], mb[i], Sb[i]) for i in range(n_times)], dtype=_DT)
    return float(per.pow(2).mean().sqrt()), per


class _FixedA(LinearForward):
    """A LinearForward whose A is a given matrix (to replay a recorded ``A_history``)."""

    def __init__(self, like: LinearForward, A: torch.Tensor):
        sch = like.schedule
        super().__init__(like.dim, beta_min=sch.beta_min, beta_max=sch.beta_max, beta_r=sch.beta_r)
        self._A = torch.as_tensor(A, dtype=_DT).detach().cpu()

    def A(self) -> torch.Tensor:
        return self._A


def distance_history(forward: LinearForward, A_history, m0, S0, *, every: int = 1, n_times: int = 21):
    """:func:`gaussian_sb_distance` for every ``every``-th A of a recorded history (``fit_vsdm``'s
    ``A_history``): how the learned forward approaches (or not) the Gaussian Schrödinger bridge as A
    trains. Returns ``(indices, distances)``. Notebook 06 §2.2 "A Gaussian check"."""
    every = check_int(every, "every")
    idx = list(range(0, len(A_history), every))
    if idx[-1] != len(A_history) - 1:
        idx.append(len(A_history) - 1)
    return idx, [gaussian_sb_distance(_FixedA(forward, A_history[i]), m0, S0, n_times=n_times)[0] for i in idx]


def evaluate(bridge: VSDM, target, *, nfes=(6, 8, 16, 50), n: int = 1000, seed: int = 0) -> dict:
    """Quality of PF-ODE (Heun) samples at each NFE: W2 (with its noise floor), histogram error and
    path straightness (:func:`lsbcore.metrics.straightness` of the ODE trajectories, in squared
    units of x, and relative to the mean squared chord E‖x_end − x_start‖², which makes models whose
    paths have different lengths comparable).

    ``target``: at least 2n target points (the noise floor splits them). Returns a dict
    NFE → {"w2", "floor", "hist", "straightness", "rel_straightness"}. Notebook 06 §2.4 "Few steps".
    """
    if not isinstance(bridge, VSDM):
        raise TypeError(f"bridge must be a VSDM, got {type(bridge).__name__}")
    target = check_points(target, "target", dim=bridge.dim)
    n = check_int(n, "n")
    out = {}
    for nfe in nfes:
        nfe = check_int(nfe, "nfe", minimum=2)
        res = bridge.sample(n, method="ode", steps=max(1, nfe // 2), seed=seed, keep_traj=True)
        rep = w2_report(res.x, target, seed=seed)
        st = straightness(res)
        chord = float(((res.traj[-1] - res.traj[0]) ** 2).sum(-1).mean())
        out[nfe] = {"w2": rep.w2, "floor": rep.floor, "hist": histogram_error(res.x, target),
                    "straightness": st, "rel_straightness": st / chord}
    return out
