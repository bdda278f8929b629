"""What the notebooks' explorers compute (notebooks 01–04): each function takes the values of an
explorer's controls and returns, as a dict, what its figure and info line show. The widgets in
:mod:`lsbcore.widgets` only map controls to one of these calls and draw the result, so the numbers a
student sees are tested here (tests/test_explore.py), without a browser.
"""
from __future__ import annotations

import torch

from .bridges.reference import BrownianBridge, brownian_bridge_sample
from .metrics import memorisation_ratio, w2_report
from .schrodinger.grid import Grid, GridBridge, fortet
from .sde import generate, sample
from .utils import Seed, check_int, check_points

__all__ = ["bridge_mixture", "ipf_history", "ipf_iterate", "grid_coupling", "run_sampler", "nearest_rows",
           "class_summary", "memorisation_view"]


# ---------------------------------------------------------------------------------- notebook 01
def _check_grid(grid, dim: int = 1) -> Grid:
    if not isinstance(grid, Grid) or grid.dim != dim:
        raise ValueError(f"grid must be a {dim}-D lsbcore Grid")
    return grid


def ipf_history(rho0, rho1, sigma: float, grid: Grid, max_iter: int) -> list:
    """The L1 error ‖π1 − ρ0‖₁ of the first marginal after each of ``max_iter`` Fortet/IPF iterations
    on a 1-D ``grid`` (index k = after k iterations; no stopping on a tolerance). Notebook 01 §2.3."""
    _check_grid(grid)
    max_iter = check_int(max_iter, "max_iter")
    return fortet(rho0, rho1, sigma, grid, tol=1e-300, max_iter=max_iter + 1, on_fail="ignore").errors


def ipf_iterate(rho0, rho1, sigma: float, grid: Grid, iterations: int) -> dict:
    """Fortet/IPF stopped after ``iterations`` iterations on a 1-D ``grid``: the marginal errors
    (``error`` = ‖π1 − ρ0‖₁, ``error_rho1`` = ‖πᵀ1 − ρ1‖₁, exact after every update of the second
    potential), the first marginal of the plan as a density on the nodes (``marginal``) and ρ0 itself
    (``rho0``). Notebook 01 §2.3."""
    _check_grid(grid)
    br = fortet(rho0, rho1, sigma, grid, max_iter=check_int(iterations, "iterations"), on_fail="ignore")
    err0, err1 = br.marginal_errors()
    return {"error": err0, "error_rho1": err1, "marginal": br.plan().sum(1) / grid.cell_volume,
            "rho0": br.density(0.0)}


def grid_coupling(bridge: GridBridge, t: float) -> dict:
    """A solved 1-D grid bridge at time t: the coupling π(x0, x1) as an (n, n) matrix of masses
    (``plan``), the densities ``rho0``, ``rho1``, ``rho_t`` on the nodes and the entropic cost
    (``cost``), with the solver's ``n_iter`` and ``converged``. Notebook 01 §2.4."""
    if not isinstance(bridge, GridBridge) or bridge.dim != 1:
        raise ValueError("bridge must be a 1-D GridBridge (from lsbcore.fortet)")
    n = bridge.grid.shape[0]
    return {"plan": bridge.plan().reshape(n, n), "rho0": bridge.density(0.0), "rho1": bridge.density(1.0),
            "rho_t": bridge.density(t), "cost": bridge.entropic_cost(), "n_iter": bridge.n_iter,
            "converged": bridge.converged}


# ---------------------------------------------------------------------------------- notebook 02
def bridge_mixture(x0, x1, t: float, sigma: float, *, n_paths: int = 30, steps: int = 50, seed: Seed = 0) -> dict:
    """The mixture of Brownian bridges over the pairs (x0[i], x1[i]) at time t: ``xt`` (one point per
    pair, :func:`lsbcore.brownian_bridge_sample`), ``traj`` (the first ``n_paths`` whole bridges,
    simulated by :func:`lsbcore.sample` with the pinned :class:`lsbcore.BrownianBridge`,
    ``(steps + 1, n_paths, dim)``) and ``cost`` = E‖X1 − X0‖² of the pairs. Notebook 02 §2.2."""
    x0 = check_points(x0, "x0")
    x1 = check_points(x1, "x1", dim=x0.shape[1])
    if x0.shape[0] != x1.shape[0]:
        raise ValueError(f"x0 and x1 must have the same number of rows, got {x0.shape[0]} and {x1.shape[0]}")
    k = min(check_int(n_paths, "n_paths"), x0.shape[0])
    xt = brownian_bridge_sample(x0, x1, t, sigma=sigma, seed=seed)
    paths = sample(BrownianBridge(x1[:k], sigma=sigma, x0=x0[:k]), x0[:k], steps=steps, keep_traj=True, seed=seed)
    return {"xt": xt, "traj": paths.traj, "cost": float(((x0 - x1) ** 2).sum(1).mean())}


def run_sampler(bridge, x_start, *, method: str = "sde", steps: int = 20, t0: float = 0.0, t1: float = 1.0,
                t_gap: float = 0.0, target=None, seed: Seed = 0) -> dict:
    """Run one sampler on a bridge and score the final samples; never raise for a sampler that cannot run.

    ``x_start``: start points ``(n, dim)``, integrated forward over [t0, t1] by :func:`lsbcore.sample`;
    or an int n: then :func:`lsbcore.generate` draws n start points with the bridge's own
    :meth:`~lsbcore.Bridge.start` and integrates towards the end that holds the data, stopping
    ``t_gap`` short of it. ``target``: points or a marginal (with ``sample``) for
    :func:`lsbcore.w2_report`, or None. Returns ``result`` (the SampleResult, with the trajectory),
    ``w2`` (the report or None) and ``error``: None, or a one-line message when the bridge lacks the
    part of the face this sampler needs (:class:`lsbcore.MethodUnavailable`, e.g. no backward drift
    hence no ODE, or no start law), a drift refused a time (a singular end point) or the run blew up
    (NaN/inf); then ``result`` is None. ``method`` and ``steps`` are checked first and raise.
    Start points must be on the bridge's device (a GPU-trained bridge samples on the GPU); the
    result comes back on the CPU, for scores and plots. Notebook 02 §2.5 (the sampler explorer);
    docs/theory.md §2.
    """
    if method not in ("sde", "ode"):
        raise ValueError(f"method must be 'sde' or 'ode', got {method!r}")
    steps = check_int(steps, "steps")
    try:
        if isinstance(x_start, int) and not isinstance(x_start, bool):
            r = generate(bridge, x_start, method=method, steps=steps, t_gap=t_gap, seed=seed, keep_traj=True)
        else:
            r = sample(bridge, x_start, method=method, steps=steps, t0=t0, t1=t1, keep_traj=True, seed=seed)
    except (NotImplementedError, FloatingPointError, ValueError) as e:  # MethodUnavailable is a NotImplementedError
        return {"result": None, "w2": None, "error": f"no {method.upper()} run: {e}"}
    r = r.cpu()                     # a bridge trained on a GPU samples there; scores and plots are on the CPU
    rep = w2_report(r.x, target, seed=seed) if target is not None else None
    return {"result": r, "w2": rep, "error": None}


# ---------------------------------------------------------------------------------- notebooks 03–04
def nearest_rows(x, points) -> torch.Tensor:
    """For each row of ``x`` (n, d) the index of the nearest row of ``points`` (m, d) in Euclidean
    distance (ties: the first). Notebook 04 §"Explore": which fitted digit a generated one copies."""
    x = check_points(x, "x")
    points = check_points(points, "points", dim=x.shape[1])
    return torch.cdist(x, points).argmin(1)


def class_summary(classifier, images) -> dict:
    """Classify ``images`` (n, 64): ``counts`` per class (10,), and the ``confidence``, the mean over
    images of the largest class probability. Notebook 03 §"Explore"."""
    with torch.no_grad():
        probs = torch.softmax(classifier(images), 1)
    return {"counts": probs.argmax(1).bincount(minlength=10), "confidence": float(probs.max(1).values.mean())}


def memorisation_view(run: dict, held_out) -> dict:
    """From a :func:`lsbcore.generate_digits` result ``run``: ``nearest``, the fitted digit whose code
    is nearest each generated code (the copy, if it is one), and ``ratio``, the
    :func:`lsbcore.memorisation_ratio` of the generated codes against the fitted ones, relative to the
    codes ``held_out`` of unseen digits. Notebook 04 §"Explore"."""
    return {"nearest": run["fit_images"][nearest_rows(run["codes"], run["points"])],
            "ratio": memorisation_ratio(run["codes"], run["points"], held_out)}
