"""Explorers of notebook 06 (VSDM): the forward noising with an adaptive A, and few-step sampling."""
from __future__ import annotations

import ipywidgets as widgets

from ..bridges.vsdm import VSDM, LinearForward
from ..explore import run_sampler
from ..explore_linear import forward_noising
from ..plotting import cov_ellipse, new_axes, scatter2d
from ..utils import check_int, check_points
from ._panel import connect, float_slider, panel, show, slider

__all__ = ["vsdm_forward_explorer", "vsdm_sampler_explorer"]


def vsdm_forward_explorer(data, forward, *, beta_max: float = 10.0, t: float = 1.0,
                          strength: float = 1.0, n: int = 1000, seed: int = 0) -> widgets.VBox:
    """β_max, t and the strength λ of A → the forward noising X_t | X_0 of VSDM, in closed form.

    ``forward``: a (trained) :class:`lsbcore.LinearForward`; the explorer uses λA (λ = 0: the VP-SDE)
    with β_max from the slider (:func:`lsbcore.explore_linear.forward_noising`). Shows X_t for ``n``
    data points and the 2σ ellipse of the adaptive prior N(0, Σ_1); the info line reports how much of
    the data is left at t = 1, tr(Φ_1 Cov(data) Φ_1ᵀ) / tr Σ_1. Notebook 06 §"What A does".
    """
    data = check_points(data, "data", dim=2)
    if not isinstance(forward, LinearForward):
        raise TypeError(f"forward must be a LinearForward, got {type(forward).__name__}")
    x0 = data[:check_int(n, "n")]
    w_beta = float_slider(beta_max, 1.0, 30.0, 1.0, "β_max")
    w_t = float_slider(t, 0.05, 1.0, 0.05, "t")
    w_l = float_slider(strength, 0.0, 1.0, 0.1, "λ (A strength)")
    box, info, out = panel({"beta_max": w_beta, "t": w_t, "strength": w_l}, [("beta_max", "t", "strength")],
                           height="400px")

    def update(_=None):
        b, tt, lam = w_beta.value, w_t.value, w_l.value
        view = forward_noising(forward, x0, tt, beta_max=b, strength=lam, seed=seed)
        box.state = {"beta_max": b, "t": tt, "strength": lam, **view}
        info.value = (f"β_max = {b:.0f}, λ = {lam:.1f}: at t = 1 the data's spread is {100 * view['data_left']:.1f} % "
                      f"of the prior's (0 % = the data is forgotten)")
        fig, ax = new_axes(size=4.5)
        scatter2d(view["xt"], ax, s=2, alpha=0.3, color="C0", label=f"$X_t$, t = {tt:.2f}",
                  title=f"Forward noising: β_max = {b:.0f}, A strength λ = {lam:.1f}")
        cov_ellipse(view["prior_cov"], ax, label="prior N(0, Σ₁), 2σ")
        ax.legend(loc="upper right", fontsize=8, markerscale=3)
        show(box, out, fig)

    return connect(box, update)


def vsdm_sampler_explorer(bridges: dict, target, *, nfe: int = 8, n: int = 1000, seed: int = 0) -> widgets.VBox:
    """Model (e.g. VP-SDE vs VSDM) and NFE → PF-ODE samples (Heun) next to the target, with W2.

    ``bridges``: dict name → :class:`lsbcore.VSDM`, each generating from its own prior with
    :meth:`~lsbcore.Bridge.start` (:func:`lsbcore.explore.run_sampler`, backward in time, stopping
    ``t_gap`` short of the data); ``target``: ≥ 2n target points (for the W2 noise floor).
    NFE = 2 × Heun steps. Runs are cached. Notebook 06 §"Few steps".
    """
    if not isinstance(bridges, dict) or not bridges or not all(isinstance(b, VSDM) for b in bridges.values()):
        raise TypeError("bridges must be a non-empty dict name → VSDM")
    target = check_points(target, "target", dim=2)
    n = check_int(n, "n")
    w_model = widgets.Dropdown(options=list(bridges), description="model")
    w_nfe = slider(max(2, min(50, nfe)), 2, 50, "NFE", step=2)
    box, info, out = panel({"model": w_model, "nfe": w_nfe}, [("model", "nfe")], height="400px")
    runs: dict = {}

    def update(_=None):
        name, k = w_model.value, w_nfe.value
        if (name, k) not in runs:
            runs[name, k] = run_sampler(bridges[name], n, method="ode", steps=k // 2, t_gap=bridges[name].t_gap,
                                        target=target, seed=seed)
        view = runs[name, k]
        x = view["result"].x if view["result"] is not None else None
        box.state = {"model": name, "nfe": k, "samples": x, "w2": view["w2"], "error": view["error"]}
        info.value = f"{name}, PF-ODE with NFE = {k}: {view['w2'] if x is not None else view['error']}"
        fig, ax = new_axes(size=4.5)
        scatter2d(target[:n], ax, s=2, alpha=0.2, color="C2", label="target",
                  title=f"{name}: PF-ODE samples at NFE = {k}")
        if x is not None:
            scatter2d(x, ax, s=2, alpha=0.4, color="C0", label=name)
        ax.legend(loc="upper right", fontsize=8, markerscale=3)
        show(box, out, fig)

    return connect(box, update)
