"""Explorers of notebook 01 (the Schrödinger system): Fortet/IPF iterations, the knob σ, and a 2-D
grid bridge in time."""
from __future__ import annotations

import ipywidgets as widgets

from ..explore import grid_coupling, ipf_history, ipf_iterate
from ..plotting import coupling_image, curves, density_curves, density_image, new_axes, quiver2d
from ..schrodinger.grid import Grid, GridBridge, fortet
from ..utils import check_int, check_positive
from ._panel import connect, float_slider, panel, show, slider

__all__ = ["schrodinger_explorer", "ipf_explorer", "grid_bridge_explorer"]


def schrodinger_explorer(rho0, rho1, grid, *, sigma: float = 0.7, t: float = 0.5,
                         sigma_range=(0.2, 2.0)) -> widgets.VBox:
    """σ and t → the 1-D Schrödinger bridge solved by Fortet/IPF on ``grid`` (:func:`lsbcore.fortet`):
    the coupling π(x0, x1) (ε = 2σ²) and the bridge marginals ρ_t = φ_t φ̂_t between ρ0 and ρ1.
    Solutions are cached per σ, so moving t only redraws. ``rho0``, ``rho1``: anything ``fortet``
    accepts (marginals with ``log_prob``, values on the grid). Notebook 01 §2.4; docs/theory.md §1.
    """
    if not isinstance(grid, Grid) or grid.dim != 1:
        raise ValueError("grid must be a 1-D lsbcore Grid")
    check_positive(sigma, "sigma")
    lo, hi = (check_positive(v, "sigma_range") for v in sigma_range)
    w_sigma = float_slider(min(max(sigma, lo), hi), lo, hi, 0.05, "σ")
    w_t = float_slider(t, 0.0, 1.0, 0.05, "t")
    box, info, out = panel({"sigma": w_sigma, "t": w_t}, [("sigma", "t")], height="360px")
    solved: dict = {}

    def update(_=None):
        s, tt = w_sigma.value, w_t.value
        key = round(s, 6)
        if key not in solved:
            solved[key] = fortet(rho0, rho1, s, grid, tol=1e-9, on_fail="ignore")
        view = grid_coupling(solved[key], tt)
        box.state = {"sigma": s, "t": tt, **view}
        info.value = (f"σ = {s:.2f} (ε = 2σ² = {2 * s * s:.2f}): Fortet/IPF converged in {view['n_iter']} "
                      f"iterations; entropic cost OT_ε = {view['cost']:.4f}")
        fig, (ax0, ax1) = new_axes(2, size=4.0)
        x = grid.axes[0]
        coupling_image(view["plan"], x, x, ax0, title=f"coupling π* for σ = {s:.2f}")
        label_t = f"ρ_t, t = {tt:.2f}"
        density_curves(x, {"ρ0": view["rho0"], "ρ1": view["rho1"], label_t: view["rho_t"]}, ax1,
                       styles={"ρ0": {"ls": "--", "color": "C0"}, "ρ1": {"ls": "--", "color": "C2"},
                               label_t: {"color": "C1", "lw": 2}},
                       title=f"bridge marginal at t = {tt:.2f}")
        show(box, out, fig)

    return connect(box, update)


def ipf_explorer(rho0, rho1, grid, sigma: float, *, max_iter: int = 40) -> widgets.VBox:
    """Iteration k → Fortet/IPF after k iterations on a 1-D ``grid``: the marginal error ‖π1 − ρ0‖₁
    falling with k (the whole history, log scale) and the first marginal of the k-th plan against ρ0.
    Notebook 01 §2.3; docs/theory.md §1.
    """
    sigma = check_positive(sigma, "sigma")
    max_iter = check_int(max_iter, "max_iter")
    history = ipf_history(rho0, rho1, sigma, grid, max_iter)
    w_k = slider(1, 1, max_iter, "iteration")
    box, info, out = panel({"iteration": w_k}, ["iteration"], height="340px")
    box.state = {"history": history}

    def update(_=None):
        k = w_k.value
        view = ipf_iterate(rho0, rho1, sigma, grid, k)
        box.state = {"history": history, "iteration": k, **view}
        info.value = (f"after {k} iteration(s): ‖π1 − ρ0‖₁ = {view['error']:.2e}, ‖πᵀ1 − ρ1‖₁ = "
                      f"{view['error_rho1']:.1e} (the second marginal is exact after every update of its potential)")
        fig, (ax0, ax1) = new_axes(2, size=4.0)
        curves(range(len(history)), {"error of iterate k": history}, ax0, xlabel="iteration k",
               ylabel="‖π1 − ρ0‖₁", title=f"IPF marginal error (σ = {sigma:.2f})", logy=True,
               styles={"error of iterate k": {"color": "0.5"}}, legend=False)
        ax0.plot([k], [view["error"]], "o", color="C3", label=f"k = {k}")
        ax0.legend(fontsize=8)
        label_k = f"first marginal of π_{k}"
        density_curves(grid.axes[0], {"ρ0 (target)": view["rho0"], label_k: view["marginal"]}, ax1,
                       styles={"ρ0 (target)": {"ls": "--", "color": "C0"}, label_k: {"color": "C3"}},
                       title=f"first marginal after {k} iteration(s)")
        show(box, out, fig)

    return connect(box, update)


def grid_bridge_explorer(bridge, *, t: float = 0.5, quiver_every: int = 4) -> widgets.VBox:
    """t → the 2-D bridge marginal ρ_t of a solved :class:`~lsbcore.schrodinger.GridBridge` with its
    forward drift σ²∇log φ_t drawn as arrows (every ``quiver_every``-th node). Notebook 01 §2.6.
    """
    if not isinstance(bridge, GridBridge) or bridge.dim != 2:
        raise ValueError("bridge must be a 2-D GridBridge (from lsbcore.fortet)")
    every = check_int(quiver_every, "quiver_every")
    w_t = float_slider(t, 0.0, 1.0, 0.05, "t")
    box, _, out = panel({"t": w_t}, ["t"], height="400px", info=False)

    def update(_=None):
        tt = w_t.value
        rho, drift = bridge.density(tt), bridge.drift_field(tt)
        box.state = {"t": tt, "density": rho, "drift": drift}
        fig, ax = new_axes(size=4.5)
        density_image(bridge.grid.axes, rho, ax, title=f"ρ_t and forward drift at t = {tt:.2f} (σ = {bridge.sigma:.2f})")
        quiver2d(bridge.grid.axes, drift, ax, every=every)
        show(box, out, fig)

    return connect(box, update)
