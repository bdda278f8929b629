"""Explorers of notebook 02 (dynamic bridges): the mixture of Brownian bridges, one sampler
explorer that runs any bridge of the face, SDE or ODE, and the Föllmer sampler of an unnormalised
density (§2.8: its samples and importance weights)."""
from __future__ import annotations

import ipywidgets as widgets
import torch

from ..bridges.follmer import FollmerMC
from ..bridges.follmer_learned import LearnedFollmer, estimate_log_z
from ..bridges.matching import COUPLINGS, couple
from ..explore import bridge_mixture, run_sampler
from ..plotting import new_axes, paths2d, scatter2d
from ..utils import check_int, check_points, check_scale
from ._panel import connect, float_slider, panel, show, slider

__all__ = ["bridge_mixture_explorer", "sampler_explorer", "follmer_sampler_explorer"]

_STEPS = 50  # Euler–Maruyama steps of the whole bridges drawn by the mixture explorer


def bridge_mixture_explorer(x0, x1, *, sigma: float = 0.5, coupling: str = "independent", t: float = 0.5,
                            n_paths: int = 30, seed: int = 0) -> widgets.VBox:
    """σ, coupling and t → the mixture of Brownian bridges ``X_t = (1−t)X0 + tX1 + σ√(t(1−t))Z``.

    ``x0``, ``x1``: equally sized 2-D point sets; pairs come from :func:`lsbcore.couple` (independent,
    Sinkhorn with ε = 2σ², exact OT) and are cached per (coupling, σ). Shows X_t for every pair and
    ``n_paths`` whole bridges (:func:`lsbcore.explore.bridge_mixture`). Notebook 02 §2.2.
    """
    x0 = check_points(x0, "x0", dim=2)
    x1 = check_points(x1, "x1", dim=2)
    if x0.shape[0] != x1.shape[0]:
        raise ValueError(f"x0 and x1 must have the same number of rows, got {x0.shape[0]} and {x1.shape[0]}")
    if coupling not in COUPLINGS:
        raise ValueError(f"coupling must be one of {COUPLINGS}, got {coupling!r}")
    n_paths = check_int(n_paths, "n_paths")
    w_sigma = float_slider(sigma, 0.05, 2.0, 0.05, "σ")
    w_coupling = widgets.Dropdown(options=list(COUPLINGS), value=coupling, description="coupling")
    w_t = float_slider(t, 0.0, 1.0, 0.05, "t")
    box, info, out = panel({"sigma": w_sigma, "coupling": w_coupling, "t": w_t}, [("sigma", "coupling", "t")],
                           height="400px")
    pairs: dict = {}

    def update(_=None):
        s, c, tt = w_sigma.value, w_coupling.value, w_t.value
        key = (c, round(s, 6))
        if key not in pairs:
            pairs[key] = couple(x0, x1, c, sigma=s, seed=seed)
        a, b = pairs[key]
        view = bridge_mixture(a, b, tt, s, n_paths=n_paths, steps=_STEPS, seed=seed)
        box.state = {"sigma": s, "coupling": c, "t": tt, "pairs": (a, b), **view}
        info.value = f"{c} coupling, σ = {s:.2f}: E‖X1 − X0‖² = {view['cost']:.3f} over {a.shape[0]} pairs"
        fig, ax = new_axes(size=4.5)
        scatter2d(a, ax, s=2, alpha=0.25, color="C0", label="X0")
        scatter2d(b, ax, s=2, alpha=0.25, color="C2", label="X1")
        paths2d(view["traj"], ax, upto=round(tt * _STEPS), n_paths=n_paths, s=0)
        scatter2d(view["xt"], ax, s=4, alpha=0.6, color="C1", label="X_t",
                  title=f"Mixture of Brownian bridges\nt = {tt:.2f}, {c} coupling, σ = {s:.2f}")
        ax.legend(loc="upper right", fontsize=8, markerscale=3)
        show(box, out, fig)

    return connect(box, update)


def _per_bridge(value, names, what: str, check=None) -> dict:
    """``value`` for every bridge name: one value shared by all, or a dict name → value."""
    if isinstance(value, dict):
        unknown = set(value) - set(names)
        if unknown:
            raise ValueError(f"{what} names unknown bridges: {sorted(unknown)}")
        return {n: (check(value[n]) if check and value.get(n) is not None else value.get(n)) for n in names}
    value = check(value) if check and value is not None else value
    return dict.fromkeys(names, value)


def sampler_explorer(bridges, x_start=None, *, target=None, method: str = "sde", steps: int = 20,
                     t0: float = 0.0, t1: float = 1.0, n: int = 400, n_paths: int = 40,
                     seed: int = 0) -> widgets.VBox:
    """Bridge, SDE/ODE, number of steps and t → trajectories of :func:`lsbcore.sample`.

    ``bridges``: a dict name → bridge (anything with the Bridge face: closed-form, Monte-Carlo,
    empirical, matched, grid, ...), offered in one dropdown. ``x_start``: 2-D start points, one set
    for all bridges or a dict name → points; a bridge without start points draws ``n`` with its own
    :meth:`~lsbcore.Bridge.start`. ``target``: points or a marginal for the W2 (and its noise floor)
    of the final samples (:func:`lsbcore.w2_report`), again one for all or a dict per name (None: no
    W2). ``[t0, t1]``: the time interval (keep away from a singular end point). Runs are cached, so
    moving t only redraws. A bridge that lacks the part of the face a sampler needs (no backward drift,
    hence no ODE) or whose run blows up is reported in the info line, not raised
    (:func:`lsbcore.explore.run_sampler`). Notebook 02 §2.5; docs/theory.md §2.
    """
    if not isinstance(bridges, dict) or not bridges:
        raise TypeError("bridges must be a non-empty dict name → bridge")
    if method not in ("sde", "ode"):
        raise ValueError(f"method must be 'sde' or 'ode', got {method!r}")
    steps = check_int(steps, "steps")
    n = check_int(n, "n")
    names = list(bridges)
    starts = _per_bridge(x_start, names, "x_start", lambda x: check_points(x, "x_start", dim=2))
    targets = _per_bridge(target, names, "target")
    w_bridge = widgets.Dropdown(options=names, description="bridge")
    w_method = widgets.ToggleButtons(options=[("SDE (Euler–Maruyama)", "sde"), ("ODE (Heun)", "ode")],
                                     value=method, description="sampler")
    w_steps = slider(min(max(steps, 1), 200), 1, 200, "steps")
    w_t = float_slider(1.0, 0.0, 1.0, 0.05, "t")
    box, info, out = panel({"bridge": w_bridge, "method": w_method, "steps": w_steps, "t": w_t},
                           [("bridge", "steps", "t"), "method"], height="400px")
    runs: dict = {}

    def update(_=None):
        name, m, k, tt = w_bridge.value, w_method.value, w_steps.value, w_t.value
        if (name, m, k) not in runs:
            start = starts[name] if starts[name] is not None else n
            runs[name, m, k] = run_sampler(bridges[name], start, method=m, steps=k, t0=t0, t1=t1,
                                           target=targets[name], seed=seed)
        view = runs[name, m, k]
        r, rep = view["result"], view["w2"]
        box.state = {"bridge": name, "method": m, "steps": k, "t": tt, **view}
        fig, ax = new_axes(size=4.5)
        if view["error"] is not None:
            info.value = f"{name}: {view['error']}"
            ax.set(title=f"{name}: no {m.upper()} sampler", xlabel="$x_1$", ylabel="$x_2$")
        else:
            j = round(tt * k)
            info.value = (f"{name}, {m.upper()}, {k} steps: NFE = {r.nfe}"
                          + (f"; final samples: {rep}" if rep is not None else ""))
            tgt = targets[name]
            if tgt is not None and tt == 1.0:
                pts = tgt if isinstance(tgt, torch.Tensor) else tgt.sample(r.x.shape[0], seed=seed)
                scatter2d(pts, ax, s=2, alpha=0.2, color="C2", label="target")
            paths2d(r.traj, ax, upto=j, n_paths=n_paths,
                    title=f"{name}\n{m.upper()} with {k} steps, at t = {float(r.times[j]):.2f}")
        show(box, out, fig)

    return connect(box, update)


# ---------------------------------------------------------------- §2.8 the learned Föllmer sampler
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
            runs[name, drift, k] = None if bridge is None else estimate_log_z(bridge, tgt, n=n, steps=k,
                                                                                  seed=seed).cpu()
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
