"""Explorer of notebook 05 (SB as a VAE): the exact terms of the objective against the encoder strength."""
from __future__ import annotations

import ipywidgets as widgets
import numpy as np

from ..explore_linear import SBVAE_TERMS, sbvae_sweep, sbvae_terms
from ..plotting import bars, curves, new_axes
from ..utils import check_positive
from ._panel import connect, float_slider, panel, show

__all__ = ["sbvae_tradeoff_explorer"]

_COLORS = ("C0", "C1", "C3", "C2")
_KAPPAS = np.linspace(0.0, 3.0, 31)  # the κ axis of the sweep (the slider's range)


def sbvae_tradeoff_explorer(data_mean: float = 2.0, data_var: float = 0.5, *, strength: float = 0.5,
                            T: float = 1.0, prior_var: float = 1.0) -> widgets.VBox:
    """Encoder strength κ and horizon T → the exact terms of the SB-as-VAE objective (1-D, Gaussian).

    Data N(data_mean, data_var), reference Brownian motion, encoder u(x) = −κ x and the best constant
    linear decoder for it (:func:`lsbcore.explore_linear.sbvae_terms`). Shows the prior loss, drift
    matching, their sum KL(Q‖P) and KL(p_data‖p_θ) as bars, and each term against κ with the current
    κ marked (:func:`~lsbcore.explore_linear.sbvae_sweep`). ``box.state["terms"]`` holds the numbers.
    Notebook 05 §"Trade-off"; docs/theory.md §5.
    """
    data = {"data_mean": data_mean, "data_var": check_positive(data_var, "data_var"),
            "prior_var": check_positive(prior_var, "prior_var")}
    w_k = float_slider(strength, 0.0, 3.0, 0.1, "κ (encoder)")
    w_T = float_slider(T, 0.25, 3.0, 0.25, "T")
    box, info, out = panel({"strength": w_k, "T": w_T}, [("strength", "T")], height="340px", css={"T": "horizon"})
    sweeps: dict = {}

    def update(_=None):
        kappa, horizon = w_k.value, w_T.value
        r = sbvae_terms(kappa, horizon, **data)
        if horizon not in sweeps:
            sweeps[horizon] = sbvae_sweep(_KAPPAS, horizon, **data)
        box.state = {"strength": kappa, "T": horizon, "terms": r}
        info.value = (f"κ = {kappa:.1f}, T = {horizon:.2f}: prior loss {r['prior_loss']:.4f} + drift matching "
                      f"{r['drift_matching']:.4f} = KL(Q‖P) {r['path_kl']:.4f} ≥ KL(p_data‖p_θ) {r['data_kl']:.4f}")
        fig, (ax0, ax1) = new_axes(2, size=4.0)
        bars({label: r[k] for k, label in SBVAE_TERMS.items()}, ax0, xlabel="term", ylabel="nats",
             colors=_COLORS, title=f"Exact terms at κ = {kappa:.1f}, T = {horizon:.2f}")
        curves(_KAPPAS, {SBVAE_TERMS[k]: v for k, v in sweeps[horizon].items()}, ax1,
               xlabel="encoder strength κ", ylabel="nats", title=f"The terms against κ (T = {horizon:.2f})",
               styles={label: {"color": c} for label, c in zip(SBVAE_TERMS.values(), _COLORS)}, legend=False)
        ax1.axvline(kappa, color="k", lw=0.8, ls="--")
        ax1.legend(fontsize=7)
        show(box, out, fig)

    return connect(box, update)
