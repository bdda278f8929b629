"""Interactive explorers used by the notebooks (ipywidgets 8).

Each builder returns a widget box; the controls carry stable CSS classes (``lsb-<name>``) and the box
exposes ``.controls`` (name → widget) and ``.state`` (what was last computed), so that plain pytest can
set ``.value`` and check the result without a browser. Callbacks map widget values to one lsbcore call
and one plotting call; there is no math in them.
"""
from __future__ import annotations

import ipywidgets as widgets
import matplotlib.pyplot as plt
import torch


def _show(out: widgets.Output, fig) -> None:
    """Replace the content of ``out`` by ``fig`` (no flicker) and release the figure from pyplot."""
    from IPython.display import display

    with out:
        out.clear_output(wait=True)
        display(fig)
    plt.close(fig)


# ---------------------------------------------------------------------------------- Notebook 02
def bridge_mixture_explorer(x0, x1, *, sigma: float = 0.5, coupling: str = "independent", t: float = 0.5,
                            n_paths: int = 30, seed: int = 0) -> widgets.VBox:
    """σ, coupling and t → the mixture of Brownian bridges ``X_t = (1−t)X0 + tX1 + σ√(t(1−t))Z``.

    ``x0``, ``x1``: equally sized 2-D point sets; pairs come from
    :func:`lsbcore.bridges.matching.couple` (independent, Sinkhorn with ε = 2σ², exact OT).
    Shows X_t for every pair and ``n_paths`` whole bridges (simulated by :func:`lsbcore.sde.sample`
    with the pinned :class:`lsbcore.reference.BrownianBridge`). Notebook 02 §"Brownian bridges".
    """
    from .bridges.matching import COUPLINGS, couple
    from .plotting import new_axes, paths2d, scatter2d
    from .reference import BrownianBridge, brownian_bridge_sample
    from .sde import sample
    from .utils import check_points

    x0 = check_points(x0, "x0", dim=2)
    x1 = check_points(x1, "x1", dim=2)
    if x0.shape[0] != x1.shape[0]:
        raise ValueError(f"x0 and x1 must have the same number of rows, got {x0.shape[0]} and {x1.shape[0]}")
    if coupling not in COUPLINGS:
        raise ValueError(f"coupling must be one of {COUPLINGS}, got {coupling!r}")
    w_sigma = widgets.FloatSlider(value=sigma, min=0.05, max=2.0, step=0.05, description="σ",
                                  continuous_update=False)
    w_coupling = widgets.Dropdown(options=list(COUPLINGS), value=coupling, description="coupling")
    w_t = widgets.FloatSlider(value=t, min=0.0, max=1.0, step=0.05, description="t", continuous_update=False)
    for w, name in ((w_sigma, "sigma"), (w_coupling, "coupling"), (w_t, "t")):
        w.add_class(f"lsb-{name}")
    info = widgets.HTML().add_class("lsb-info")
    out = widgets.Output(layout=widgets.Layout(height="400px"))
    box = widgets.VBox([widgets.HBox([w_sigma, w_coupling, w_t]), info, out])
    box.controls = {"sigma": w_sigma, "coupling": w_coupling, "t": w_t}
    box.state = {}
    cache: dict = {}

    def pairs(c, s):
        key = (c, round(s, 6))
        if key not in cache:
            cache[key] = couple(x0, x1, c, sigma=s, seed=seed)
        return cache[key]

    def update(_=None):
        s, c, tt = w_sigma.value, w_coupling.value, w_t.value
        a, b = pairs(c, s)
        xt = brownian_bridge_sample(a, b, tt, sigma=s, seed=seed)
        k = min(n_paths, a.shape[0])
        steps = 50
        paths = sample(BrownianBridge(b[:k], sigma=s, x0=a[:k]), a[:k], steps=steps, keep_traj=True, seed=seed)
        cost = float(((a - b) ** 2).sum(1).mean())
        box.state = {"sigma": s, "coupling": c, "t": tt, "xt": xt, "pairs": (a, b), "cost": cost}
        info.value = f"{c} coupling, σ = {s:.2f}: E‖X1 − X0‖² = {cost:.3f} over {a.shape[0]} pairs"
        fig, ax = new_axes(size=4.5)
        scatter2d(a, ax, s=2, alpha=0.25, color="C0", label="X0")
        scatter2d(b, ax, s=2, alpha=0.25, color="C2", label="X1")
        paths2d(paths.traj, ax, upto=round(tt * steps), n_paths=k, s=0)
        scatter2d(xt, ax, s=4, alpha=0.6, color="C1", label="X_t",
                  title=f"Mixture of Brownian bridges at t = {tt:.2f} ({c}, σ = {s:.2f})")
        ax.legend(loc="upper right", fontsize=8, markerscale=3)
        box.figure = fig
        _show(out, fig)

    for w in box.controls.values():
        w.observe(update, names="value")
    update()
    return box


def sampler_explorer(bridges, x_start, *, target=None, method: str = "sde", steps: int = 20,
                     t0: float = 0.0, t1: float = 1.0, n_paths: int = 40, seed: int = 0) -> widgets.VBox:
    """Bridge, SDE/ODE, number of steps and t → trajectories of :func:`lsbcore.sde.sample`.

    ``bridges``: a dict name → bridge (anything with the Bridge face); ``x_start``: 2-D starting points;
    ``target``: optional target points or marginal, for the W2 (and its noise floor) of the final
    samples (:func:`lsbcore.metrics.w2_report`); ``[t0, t1]``: the time interval (keep away from a
    singular end point). Runs are cached, so moving t only redraws. A sampler that cannot run
    (no backward drift for the ODE, a blow-up) is reported in the info line, not raised.
    Notebook 02 §"SDE vs ODE sampling".
    """
    from .metrics import w2_report
    from .plotting import new_axes, paths2d, scatter2d
    from .sde import sample
    from .utils import check_int, check_points

    if not isinstance(bridges, dict) or not bridges:
        raise TypeError("bridges must be a non-empty dict name → bridge")
    x_start = check_points(x_start, "x_start", dim=2)
    if method not in ("sde", "ode"):
        raise ValueError(f"method must be 'sde' or 'ode', got {method!r}")
    steps = check_int(steps, "steps")
    w_bridge = widgets.Dropdown(options=list(bridges), description="bridge")
    w_method = widgets.ToggleButtons(options=[("SDE (Euler–Maruyama)", "sde"), ("ODE (Heun)", "ode")],
                                     value=method, description="sampler")
    w_steps = widgets.IntSlider(value=min(max(steps, 1), 200), min=1, max=200, description="steps",
                                continuous_update=False)
    w_t = widgets.FloatSlider(value=1.0, min=0.0, max=1.0, step=0.05, description="t", continuous_update=False)
    for w, name in ((w_bridge, "bridge"), (w_method, "method"), (w_steps, "steps"), (w_t, "t")):
        w.add_class(f"lsb-{name}")
    info = widgets.HTML().add_class("lsb-info")
    out = widgets.Output(layout=widgets.Layout(height="400px"))
    box = widgets.VBox([widgets.HBox([w_bridge, w_steps, w_t]), w_method, info, out])
    box.controls = {"bridge": w_bridge, "method": w_method, "steps": w_steps, "t": w_t}
    box.state = {}
    cache: dict = {}

    def run(name, m, n):
        key = (name, m, n)
        if key not in cache:
            try:
                r = sample(bridges[name], x_start, method=m, steps=n, t0=t0, t1=t1, keep_traj=True, seed=seed)
                rep = w2_report(r.x, target, seed=seed) if target is not None else None
                cache[key] = (r, rep, None)
            except (NotImplementedError, FloatingPointError) as e:
                cache[key] = (None, None, f"{name} cannot run the {m.upper()}: {e}")
        return cache[key]

    def update(_=None):
        name, m, n, tt = w_bridge.value, w_method.value, w_steps.value, w_t.value
        r, rep, err = run(name, m, n)
        box.state = {"bridge": name, "method": m, "steps": n, "t": tt, "result": r, "w2": rep, "error": err}
        fig, ax = new_axes(size=4.5)
        if err is not None:
            info.value = err
            ax.set_title(f"{name}: no {m.upper()} sampler")
            ax.set_xlabel("$x_1$")
            ax.set_ylabel("$x_2$")
        else:
            k = round(tt * n)
            info.value = (f"{name}, {m.upper()}, {n} steps: NFE = {r.nfe}"
                          + (f"; final samples: {rep}" if rep is not None else ""))
            if target is not None and tt == 1.0:
                pts = target if isinstance(target, torch.Tensor) else target.sample(x_start.shape[0], seed=seed)
                scatter2d(pts, ax, s=2, alpha=0.2, color="C2", label="target")
            paths2d(r.traj, ax, upto=k, n_paths=n_paths,
                    title=f"{name}: {m.upper()} with {n} steps, at t = {float(r.times[k]):.2f}")
        box.figure = fig
        _show(out, fig)

    for w in box.controls.values():
        w.observe(update, names="value")
    update()
    return box


# ---------------------------------------------------------------------------------- Notebook 01
def schrodinger_explorer(rho0, rho1, grid, *, sigma: float = 0.7, t: float = 0.5,
                         sigma_range=(0.2, 2.0)) -> widgets.VBox:
    """σ and t → the 1-D Schrödinger bridge solved by Fortet/IPF on ``grid``
    (:func:`lsbcore.schrodinger.grid.fortet`): the coupling π(x0, x1) (ε = 2σ²) and the bridge
    marginals ρ_t = φ_t φ̂_t between ρ0 and ρ1. Solutions are cached per σ, so moving t only redraws.
    ``rho0``, ``rho1``: anything :func:`fortet` accepts (marginals with ``log_prob``, values on the grid).
    Notebook 01 §"Explore: σ and t".
    """
    from .plotting import coupling_image, density_curves, new_axes
    from .schrodinger.grid import Grid, fortet
    from .utils import check_positive

    if not isinstance(grid, Grid) or grid.dim != 1:
        raise ValueError("grid must be a 1-D lsbcore Grid")
    check_positive(sigma, "sigma")
    lo, hi = (check_positive(v, "sigma_range") for v in sigma_range)
    w_sigma = widgets.FloatSlider(value=min(max(sigma, lo), hi), min=lo, max=hi, step=0.05, description="σ",
                                  continuous_update=False)
    w_t = widgets.FloatSlider(value=t, min=0.0, max=1.0, step=0.05, description="t", continuous_update=False)
    w_sigma.add_class("lsb-sigma")
    w_t.add_class("lsb-t")
    info = widgets.HTML().add_class("lsb-info")
    out = widgets.Output(layout=widgets.Layout(height="360px"))
    box = widgets.VBox([widgets.HBox([w_sigma, w_t]), info, out])
    box.controls = {"sigma": w_sigma, "t": w_t}
    box.state = {}
    cache: dict = {}

    def solve(s):
        key = round(s, 6)
        if key not in cache:
            cache[key] = fortet(rho0, rho1, s, grid, tol=1e-9, on_fail="ignore")
        return cache[key]

    def update(_=None):
        s, tt = w_sigma.value, w_t.value
        br = solve(s)
        plan = br.plan().reshape(grid.shape[0], grid.shape[0])
        x = grid.axes[0]
        rho_t = br.density(tt)
        box.state = {"sigma": s, "t": tt, "plan": plan, "rho_t": rho_t, "cost": br.entropic_cost(),
                     "n_iter": br.n_iter, "converged": br.converged}
        info.value = (f"σ = {s:.2f} (ε = 2σ² = {2 * s * s:.2f}): Fortet/IPF converged in {br.n_iter} "
                      f"iterations; entropic cost OT_ε = {box.state['cost']:.4f}")
        fig, (ax0, ax1) = new_axes(2, size=4.0)
        coupling_image(plan, x, x, ax0, title=f"coupling π* for σ = {s:.2f}")
        curves = {"ρ0": br.density(0.0), "ρ1": br.density(1.0), f"ρ_t, t = {tt:.2f}": rho_t}
        styles = {"ρ0": {"ls": "--", "color": "C0"}, "ρ1": {"ls": "--", "color": "C2"},
                  f"ρ_t, t = {tt:.2f}": {"color": "C1", "lw": 2}}
        density_curves(x, curves, ax1, styles=styles, title=f"bridge marginal at t = {tt:.2f}")
        box.figure = fig
        _show(out, fig)

    for w in box.controls.values():
        w.observe(update, names="value")
    update()
    return box


def ipf_explorer(rho0, rho1, grid, sigma: float, *, max_iter: int = 40) -> widgets.VBox:
    """Iteration k → Fortet/IPF after k iterations on a 1-D ``grid``: the marginal error ‖π1 − ρ0‖₁
    falling with k (the whole history, log scale) and the first marginal of the k-th plan against ρ0.
    Notebook 01 §"Fortet/IPF".
    """
    from .plotting import density_curves, new_axes
    from .schrodinger.grid import Grid, fortet
    from .utils import check_int, check_positive

    if not isinstance(grid, Grid) or grid.dim != 1:
        raise ValueError("grid must be a 1-D lsbcore Grid")
    sigma = check_positive(sigma, "sigma")
    max_iter = check_int(max_iter, "max_iter")
    history = fortet(rho0, rho1, sigma, grid, tol=1e-300, max_iter=max_iter + 1, on_fail="ignore").errors
    w_k = widgets.IntSlider(value=1, min=1, max=max_iter, description="iteration", continuous_update=False)
    w_k.add_class("lsb-iteration")
    info = widgets.HTML().add_class("lsb-info")
    out = widgets.Output(layout=widgets.Layout(height="340px"))
    box = widgets.VBox([w_k, info, out])
    box.controls = {"iteration": w_k}
    box.state = {"history": history}

    def update(_=None):
        k = w_k.value
        br = fortet(rho0, rho1, sigma, grid, max_iter=k, on_fail="ignore")
        err0, err1 = br.marginal_errors()
        row = br.plan().sum(1) / grid.cell_volume
        box.state = {"history": history, "iteration": k, "error": err0, "error_rho1": err1, "marginal": row}
        info.value = (f"after {k} iteration(s): ‖π1 − ρ0‖₁ = {err0:.2e}, ‖πᵀ1 − ρ1‖₁ = {err1:.1e} "
                      f"(the second marginal is exact after every g-update)")
        fig, (ax0, ax1) = new_axes(2, size=4.0)
        ax0.semilogy(range(len(history)), history, color="0.5", label="error of iterate k")
        ax0.semilogy([k], [err0], "o", color="C3", label=f"k = {k}")
        ax0.set_xlabel("iteration k")
        ax0.set_ylabel("‖π1 − ρ0‖₁")
        ax0.set_title(f"IPF marginal error (σ = {sigma:.2f})")
        ax0.legend(fontsize=8)
        density_curves(grid.axes[0], {"ρ0 (target)": br.density(0.0), f"first marginal of π_{k}": row}, ax1,
                       styles={"ρ0 (target)": {"ls": "--", "color": "C0"}, f"first marginal of π_{k}": {"color": "C3"}},
                       title=f"first marginal after {k} iteration(s)")
        box.figure = fig
        _show(out, fig)

    w_k.observe(update, names="value")
    update()
    return box


def grid_bridge_explorer(bridge, *, t: float = 0.5, quiver_every: int = 4) -> widgets.VBox:
    """t → the 2-D bridge marginal ρ_t of a solved :class:`~lsbcore.schrodinger.grid.GridBridge` with its
    forward drift σ²∇log φ_t drawn as arrows (every ``quiver_every``-th node). Notebook 01
    §"Non-Gaussian marginals".
    """
    from .plotting import density_image, new_axes
    from .schrodinger.grid import GridBridge
    from .utils import check_int

    if not isinstance(bridge, GridBridge) or bridge.dim != 2:
        raise ValueError("bridge must be a 2-D GridBridge (from lsbcore.schrodinger.grid.fortet)")
    step = check_int(quiver_every, "quiver_every")
    w_t = widgets.FloatSlider(value=t, min=0.0, max=1.0, step=0.05, description="t", continuous_update=False)
    w_t.add_class("lsb-t")
    out = widgets.Output(layout=widgets.Layout(height="400px"))
    box = widgets.VBox([w_t, out])
    box.controls = {"t": w_t}
    box.state = {}
    ax0, ax1 = bridge.grid.axes

    def update(_=None):
        tt = w_t.value
        rho = bridge.density(tt)
        drift = bridge.drift_field(tt)
        box.state = {"t": tt, "density": rho, "drift": drift}
        fig, ax = new_axes(size=4.5)
        density_image((ax0, ax1), rho, ax, title=f"ρ_t and forward drift at t = {tt:.2f} (σ = {bridge.sigma:.2f})")
        a, b = ax0[::step].cpu(), ax1[::step].cpu()
        d = drift[::step, ::step].cpu()
        ax.quiver(a[:, None].expand(-1, len(b)).numpy(), b[None, :].expand(len(a), -1).numpy(),
                  d[..., 0].numpy(), d[..., 1].numpy(), color="w", alpha=0.7, angles="xy")
        box.figure = fig
        _show(out, fig)

    w_t.observe(update, names="value")
    update()
    return box


# ---------------------------------------------------------------------------------- Notebook 03
def latent_bridge_explorer(autoencoders: dict, *, classifier=None, method: str = "heat-follmer",
                           sigma: float = 1.0, delta: float = 0.01, steps: int = 60, latent_dim=None,
                           n: int = 40, seed: int = 0) -> widgets.VBox:
    """Bridge, σ, δ, steps and d* → a gallery of generated digits and their latent paths.

    ``autoencoders`` maps d* → a (shipped) autoencoder; the bridge is fitted to the codes of the
    target digits by :func:`lsbcore.latent.generate_digits` (training-free methods only, so each
    change takes about a second). Left: ``n`` decoded samples; right: the sampler paths over the
    encoded target digits coloured by class (PCA plane for d* > 2). With ``classifier`` the info line
    shows the class spread and confidence. Notebook 03 §"Explore".
    """
    from . import latent as L
    from .plotting import new_axes

    if not isinstance(autoencoders, dict) or not autoencoders:
        raise TypeError("autoencoders must be a non-empty dict {latent_dim: autoencoder}")
    dims = sorted(autoencoders)
    latent_dim = dims[0] if latent_dim is None else latent_dim
    if latent_dim not in autoencoders:
        raise ValueError(f"latent_dim must be one of {dims}, got {latent_dim}")
    methods = [m for m in L.METHODS if m not in ("imf", "heat-learned")]
    if method not in methods:
        raise ValueError(f"method must be one of {methods} (training-free), got {method!r}")
    w_method = widgets.Dropdown(options=methods, value=method, description="bridge")
    w_sigma = widgets.FloatLogSlider(value=sigma, base=10, min=-1, max=0.7, step=0.05, description="σ",
                                     continuous_update=False)
    w_delta = widgets.FloatLogSlider(value=delta, base=10, min=-3, max=-0.5, step=0.1, description="δ",
                                     continuous_update=False)
    w_steps = widgets.IntSlider(value=steps, min=5, max=200, step=5, description="steps", continuous_update=False)
    w_dim = widgets.Dropdown(options=dims, value=latent_dim, description="d*")
    ctrl = {"method": w_method, "sigma": w_sigma, "delta": w_delta, "steps": w_steps, "latent_dim": w_dim}
    for name, w in ctrl.items():
        w.add_class(f"lsb-{name.replace('_', '-')}")
    info = widgets.HTML().add_class("lsb-info")
    out = widgets.Output(layout=widgets.Layout(height="380px"))
    box = widgets.VBox([widgets.HBox([w_method, w_dim, w_steps]), widgets.HBox([w_sigma, w_delta]), info, out])
    box.controls, box.state = ctrl, {}
    _, labels = L.load_digits("target")

    def update(_=None):
        ae = autoencoders[w_dim.value]
        res = L.generate_digits(ae, w_method.value, n, sigma=w_sigma.value, delta=w_delta.value,
                                steps=w_steps.value, seed=seed, keep_traj=True)
        box.state = {k: res[k] for k in ("method", "latent_dim", "codes", "images")}
        box.state.update(sigma=w_sigma.value, delta=w_delta.value, steps=w_steps.value)
        text = f"{w_method.value}, d* = {w_dim.value}, σ = {w_sigma.value:.2f}, δ = {w_delta.value:.3f}"
        if classifier is not None:
            with torch.no_grad():
                probs = torch.softmax(classifier(res["images"]), 1)
            classes = probs.argmax(1).bincount(minlength=10)
            box.state["class_counts"] = classes
            text += (f" — classes {classes.tolist()}, mean confidence {float(probs.max(1).values.mean()):.2f}")
        info.value = text
        fig, axes = new_axes(2, size=4.2)
        L.plot_digits(res["images"], axes[0], ncols=8, title=f"{n} generated digits ({w_method.value})")
        traj = res["traj"] if res["traj"] is not None and res["traj"].shape[0] > 1 else None
        L.plot_latent_paths(res["points"], traj, axes[1], labels=labels, n_paths=min(n, 25),
                            title=f"latent paths over the encoded targets (d* = {w_dim.value})")
        box.figure = fig
        _show(out, fig)

    for w in ctrl.values():
        w.observe(update, names="value")
    update()
    return box


def interpolation_explorer(autoencoder, images, *, a: int = 0, b: int = 1, steps: int = 10) -> widgets.VBox:
    """Two image indices → the decoded straight line between their latent codes (Notebook 03 §"Explore").

    ``images`` is ``(n, 64)``; the row shows D((1−λ) E(x_a) + λ E(x_b)) for λ from 0 to 1.
    """
    from . import latent as L
    from .utils import check_int, check_points

    images = check_points(images, "images", dim=64)
    n = images.shape[0]
    steps = check_int(steps, "steps", minimum=2)
    w_a = widgets.IntSlider(value=a, min=0, max=n - 1, description="digit A", continuous_update=False)
    w_b = widgets.IntSlider(value=b, min=0, max=n - 1, description="digit B", continuous_update=False)
    w_a.add_class("lsb-digit-a")
    w_b.add_class("lsb-digit-b")
    out = widgets.Output(layout=widgets.Layout(height="140px"))
    box = widgets.VBox([widgets.HBox([w_a, w_b]), out])
    box.controls, box.state = {"a": w_a, "b": w_b}, {}

    def update(_=None):
        path = L.interpolate(autoencoder, images[w_a.value:w_a.value + 1], images[w_b.value:w_b.value + 1], steps)
        box.state = {"a": w_a.value, "b": w_b.value, "path": path}
        fig, ax = plt.subplots(figsize=(steps * 0.55, 1.3), constrained_layout=True)
        L.plot_digits(path, ax, ncols=steps, title=f"decoded latent line from digit #{w_a.value} to #{w_b.value}")
        box.figure = fig
        _show(out, fig)

    w_a.observe(update, names="value")
    w_b.observe(update, names="value")
    update()
    return box
