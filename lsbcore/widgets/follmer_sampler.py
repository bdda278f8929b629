"""Explorer of notebook 02 §2.7: a Föllmer sampler for an unnormalised density, its samples and weights."""
from __future__ import annotations

import ipywidgets as widgets
import torch

from ..bridges.follmer import FollmerMC
from ..bridges.follmer_learned import LearnedFollmer, estimate_log_z
from ..plotting import new_axes, scatter2d
from ..utils import check_int, check_scale
from ._panel import connect, panel, show, slider

__all__ = ["follmer_sampler_explorer"]

DRIFTS = ("learned", "Monte Carlo", "u = 0")


def follmer_sampler_explorer(targets: dict, learned: dict | None = None, *, sigma: float = 1.0, n: int = 500,
                             steps: int = 20, n_mc: int = 500, seed: int = 0) -> widgets.VBox:
    """Target, drift and number of Euler steps → samples X_1 and importance weights of the Föllmer sampler.

    ``targets``: a dict name → target with ``dim``, ``log_z``, ``log_density`` and ``sample``
    (:mod:`lsbcore.bridges.densities`); ``learned``: a dict name → trained
    :class:`~lsbcore.bridges.follmer_learned.LearnedFollmer` (a target without one offers only the
    other drifts). Drifts: the learned one, :class:`~lsbcore.FollmerMC` with ``n_mc`` draws, and
    u = 0 (plain importance sampling from N(0, σ² I)). Each choice is one call of
    :func:`~lsbcore.bridges.follmer_learned.estimate_log_z` on ``n`` paths (cached); the figure shows
    X_1 over exact samples (first two coordinates) and the histogram of log w − log Z (a spike at 0
    is a perfect sampler). The info line gives the log Z estimate, its error and ESS/n.
    """
    if not isinstance(targets, dict) or not targets:
        raise TypeError("targets must be a non-empty dict name → target")
    learned = {} if learned is None else learned
    if not isinstance(learned, dict) or set(learned) - set(targets):
        raise ValueError("learned must be a dict whose names are among the targets'")
    sigma = check_scale(sigma, "sigma")
    n, n_mc = check_int(n, "n", minimum=2), check_int(n_mc, "n_mc", minimum=2)
    w_target = widgets.Dropdown(options=list(targets), description="target")
    w_drift = widgets.ToggleButtons(options=list(DRIFTS), value="learned", description="drift")
    w_steps = slider(min(max(check_int(steps, "steps"), 2), 100), 2, 100, "Euler steps")
    box, info, out = panel({"target": w_target, "drift": w_drift, "steps": w_steps},
                           [("target", "steps"), "drift"], height="360px")
    runs: dict = {}

    def bridge_for(name, drift):
        tgt = targets[name]
        if drift == "learned":
            return learned.get(name)
        if drift == "Monte Carlo":
            return FollmerMC(tgt, sigma, n_mc=n_mc, seed=seed, dim=tgt.dim)
        return LearnedFollmer(lambda x, t: torch.zeros_like(x), sigma, dim=tgt.dim)

    def update(_=None):
        name, drift, k = w_target.value, w_drift.value, w_steps.value
        tgt = targets[name]
        if (name, drift, k) not in runs:
            bridge = bridge_for(name, drift)
            runs[name, drift, k] = None if bridge is None else estimate_log_z(bridge, tgt, n=n, steps=k, seed=seed)
        est = runs[name, drift, k]
        box.state = {"target": name, "drift": drift, "steps": k, "estimate": est, "log_z": tgt.log_z}
        fig, axes = new_axes(2, size=(4.2, 3.4))
        exact = tgt.sample(n, seed=seed + 1).float()
        scatter2d(exact[:, :2], axes[0], s=2, alpha=0.3, color="C2", label="exact")
        if est is None:
            info.value = f"{name}: no learned sampler given for this target (pass learned={{'{name}': ...}})"
            axes[0].set_title(f"{name}: exact samples only")
        else:
            err = est.log_z - tgt.log_z
            info.value = (f"{name}, {drift} drift, {k} Euler steps: {est}; true log Z = {tgt.log_z:.4f} "
                          f"(error {err:+.4f})")
            scatter2d(est.samples[:, :2], axes[0], s=2, alpha=0.5, color="C1", label="$X_1$",
                      title=f"{name}: X_1 of the {drift} drift")
            axes[1].hist((est.log_weights.double() - tgt.log_z).clamp(-10, 10).numpy(), bins=40, color="C0")
            axes[1].axvline(0.0, color="k", ls="--", lw=1)
        lo, hi = torch.quantile(exact[:, :2], 0.005, dim=0), torch.quantile(exact[:, :2], 0.995, dim=0)
        pad = 0.2 * (hi - lo)                 # the view of the bulk: a funnel's mouth reaches far out
        axes[0].set_aspect("auto")            # scatter2d's equal aspect would override the limits
        axes[0].set(xlabel="$x_1$ (funnel: v)", ylabel="$x_2$", xlim=(float(lo[0] - pad[0]), float(hi[0] + pad[0])),
                    ylim=(float(lo[1] - pad[1]), float(hi[1] + pad[1])))
        axes[0].legend(loc="upper right", fontsize=8, markerscale=3)
        axes[1].set(xlabel="log w − log Z (clipped to ±10)", ylabel="paths",
                    title=f"importance weights, ESS/n = {est.ess:.2f}" if est is not None else "importance weights")
        show(box, out, fig)

    return connect(box, update)
