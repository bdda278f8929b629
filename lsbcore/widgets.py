"""Interactive explorers used by the notebooks (ipywidgets 8).

Each builder returns a widget box; the controls carry stable CSS classes (``lsb-<name>``) and the box
exposes ``.controls`` (name → widget) and ``.state`` (what was last computed), so that plain pytest can
set ``.value`` and check the result without a browser. Callbacks map widget values to one lsbcore call
and one plotting call; there is no math in them.
"""
from __future__ import annotations

from pathlib import Path

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


def _panel(controls: dict, rows, *, height: str, info: bool = True, css: dict | None = None):
    """The scaffold every explorer shares; returns ``(box, info, out)``.

    Puts the CSS class ``lsb-<name>`` on each control (``css`` overrides a name; ``_`` becomes ``-``),
    lays out ``rows`` (a control name, or a tuple of names for one row), then an optional ``lsb-info``
    line and a fixed-height Output for the figure. ``box.controls`` (name → widget) and ``box.state``
    let plain pytest drive the panel without a browser.
    """
    css = css or {}
    for name, w in controls.items():
        w.add_class("lsb-" + css.get(name, name.replace("_", "-")))
    parts = [widgets.HBox([controls[n] for n in row]) if isinstance(row, tuple) else controls[row] for row in rows]
    line = widgets.HTML().add_class("lsb-info") if info else None
    out = widgets.Output(layout=widgets.Layout(height=height))
    box = widgets.VBox(parts + ([line] if info else []) + [out])
    box.controls, box.state = dict(controls), {}
    return box, line, out


def _connect(box, update):
    """Call ``update`` whenever a control's value changes, and once now; return the box."""
    for w in box.controls.values():
        w.observe(update, names="value")
    update()
    return box


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
    from .bridges.reference import BrownianBridge, brownian_bridge_sample
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
    box, info, out = _panel({"sigma": w_sigma, "coupling": w_coupling, "t": w_t}, [("sigma", "coupling", "t")],
                            height="400px")
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
                  title=f"Mixture of Brownian bridges\nt = {tt:.2f}, {c} coupling, σ = {s:.2f}")
        ax.legend(loc="upper right", fontsize=8, markerscale=3)
        box.figure = fig
        _show(out, fig)

    return _connect(box, update)


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
    box, info, out = _panel({"bridge": w_bridge, "method": w_method, "steps": w_steps, "t": w_t},
                            [("bridge", "steps", "t"), "method"], height="400px")
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
                    title=f"{name}\n{m.upper()} with {n} steps, at t = {float(r.times[k]):.2f}")
        box.figure = fig
        _show(out, fig)

    return _connect(box, update)


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
    box, info, out = _panel({"sigma": w_sigma, "t": w_t}, [("sigma", "t")], height="360px")
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

    return _connect(box, update)


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
    box, info, out = _panel({"iteration": w_k}, ["iteration"], height="340px")
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

    return _connect(box, update)


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
    box, _, out = _panel({"t": w_t}, ["t"], height="400px", info=False)
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

    return _connect(box, update)


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
    box, info, out = _panel(ctrl, [("method", "latent_dim", "steps"), ("sigma", "delta")], height="380px")
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

    return _connect(box, update)


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
    box, _, out = _panel({"a": w_a, "b": w_b}, [("a", "b")], height="140px", info=False,
                         css={"a": "digit-a", "b": "digit-b"})

    def update(_=None):
        path = L.interpolate(autoencoder, images[w_a.value:w_a.value + 1], images[w_b.value:w_b.value + 1], steps)
        box.state = {"a": w_a.value, "b": w_b.value, "path": path}
        fig, ax = plt.subplots(figsize=(steps * 0.55, 1.3), constrained_layout=True)
        L.plot_digits(path, ax, ncols=steps, title=f"decoded latent line from digit #{w_a.value} to #{w_b.value}")
        box.figure = fig
        _show(out, fig)

    return _connect(box, update)


# ---------------------------------------------------------------------------------- Notebook 04
def memorisation_explorer(spaces: dict, ns, *, method: str = "heat-follmer", sigma: float = 1.0,
                          delta: float = 0.01, steps: int = 50, n: int = 16, seed: int = 0) -> widgets.VBox:
    """Space, n and δ → generated digits next to the fitted digit each one is closest to.

    ``spaces``: name → autoencoder (or :class:`lsbcore.latent.PixelSpace`); ``ns``: the choices for the
    number of target digits the bridge is fitted to. For each setting, :func:`lsbcore.latent.generate_digits`
    fits a training-free bridge to n digits and draws ``n`` samples; below each generated digit the
    explorer shows the fitted digit whose code is nearest. The info line gives
    :func:`lsbcore.metrics.memorisation_ratio` in the bridge's own space (generated codes and encoded
    held-out digits, against the fitted codes): near 0 the bridge copies its training digits.
    Notebook 04 §"Explore".
    """
    from . import latent as L
    from .metrics import memorisation_ratio
    from .utils import check_int

    if not isinstance(spaces, dict) or not spaces:
        raise TypeError("spaces must be a non-empty dict name → autoencoder")
    ns = [check_int(v, "ns", minimum=2) for v in ns]
    if not ns:
        raise ValueError("ns must name at least one sample size")
    methods = [m for m in L.METHODS if m not in ("imf", "heat-learned")]
    if method not in methods:
        raise ValueError(f"method must be one of {methods} (training-free), got {method!r}")
    n = check_int(n, "n", minimum=2)
    w_space = widgets.Dropdown(options=list(spaces), description="space")
    w_n = widgets.SelectionSlider(options=ns, value=ns[0], description="n fitted", continuous_update=False)
    w_delta = widgets.FloatLogSlider(value=delta, base=10, min=-3, max=-0.5, step=0.1, description="δ",
                                     continuous_update=False)
    box, info, out = _panel({"space": w_space, "n_fit": w_n, "delta": w_delta}, [("space", "n_fit", "delta")],
                            height="330px")
    test, _ = L.load_digits("test")
    held_out: dict = {}

    def update(_=None):
        name, k, d = w_space.value, w_n.value, w_delta.value
        ae = spaces[name]
        if name not in held_out:
            with torch.no_grad():
                held_out[name] = ae.encode(test.to(next(iter(ae.buffers())).device))
        r = L.generate_digits(ae, method, n, n_fit=k, sigma=sigma, delta=d, steps=steps, seed=seed)
        nearest = r["fit_images"][torch.cdist(r["codes"], r["points"]).argmin(1)]
        ratio = memorisation_ratio(r["codes"], r["points"], held_out[name])
        box.state = {"space": name, "n_fit": k, "delta": d, "images": r["images"], "nearest": nearest,
                     "ratio": ratio}
        info.value = (f"{name}, {method} fitted to n = {k} digits, δ = {d:.3f}: memorisation ratio {ratio:.2f} "
                      f"(1 ≈ as far from the fitted digits as new digits are; 0 = copies)")
        fig, (ax0, ax1) = plt.subplots(2, 1, figsize=(n * 0.5, 2.3), constrained_layout=True)
        L.plot_digits(r["images"], ax0, ncols=n, title=f"generated ({name}, n = {k})")
        L.plot_digits(nearest, ax1, ncols=n, title="the nearest of the n fitted digits (nearest code)")
        box.figure = fig
        _show(out, fig)

    return _connect(box, update)


# ---------------------------------------------------------------------------------- Notebook 05
def sbvae_tradeoff_explorer(data_mean: float = 2.0, data_var: float = 0.5, *, strength: float = 0.5,
                            T: float = 1.0, prior_var: float = 1.0) -> widgets.VBox:
    """Encoder strength κ and horizon T → the exact terms of the SB-as-VAE objective (1-D, Gaussian).

    Data N(data_mean, data_var), reference Brownian motion (f = 0, g = 1), encoder u_φ(x) = −κ x, and
    the best constant linear decoder for that encoder (:meth:`LinearSBVAE.fit_decoder`). Shows the
    prior loss, drift matching, their sum KL(Q‖P) and KL(p_data‖p_θ) as bars, and each term against
    κ with the current κ marked. ``box.state["terms"]`` holds the numbers. Notebook 05 §"Trade-off".
    """
    import numpy as np

    from .bridges.vae import LinearSBVAE
    from .plotting import new_axes
    from .utils import check_positive

    data_var = check_positive(data_var, "data_var")
    check_positive(prior_var, "prior_var")
    w_k = widgets.FloatSlider(value=strength, min=0.0, max=3.0, step=0.1, description="κ (encoder)",
                              continuous_update=False)
    w_T = widgets.FloatSlider(value=T, min=0.25, max=3.0, step=0.25, description="T", continuous_update=False)
    box, info, out = _panel({"strength": w_k, "T": w_T}, [("strength", "T")], height="340px", css={"T": "horizon"})
    names = ("prior_loss", "drift_matching", "path_kl", "data_kl")
    labels = ("prior loss", "drift matching", "KL(Q‖P)", "KL(p_data‖p_θ)")

    def terms(kappa, horizon):
        m = LinearSBVAE([data_mean], [[data_var]], F=0.0, g=1.0, T=horizon, K=-kappa,
                        prior_var=prior_var).fit_decoder()
        return {k: getattr(m, k)() for k in names}

    def update(_=None):
        kappa, horizon = w_k.value, w_T.value
        r = terms(kappa, horizon)
        grid = np.linspace(0.0, 3.0, 31)
        sweep = [terms(float(k), horizon) for k in grid]
        box.state = {"strength": kappa, "T": horizon, "terms": r}
        info.value = (f"κ = {kappa:.1f}, T = {horizon:.2f}: prior loss {r['prior_loss']:.4f} + drift matching "
                      f"{r['drift_matching']:.4f} = KL(Q‖P) {r['path_kl']:.4f} ≥ KL(p_data‖p_θ) {r['data_kl']:.4f}")
        fig, (ax0, ax1) = new_axes(2, size=4.0)
        ax0.bar(labels, [r[k] for k in names], color=["C0", "C1", "C3", "C2"])
        ax0.set_ylabel("nats")
        ax0.set_xlabel("term")
        ax0.tick_params(axis="x", labelrotation=20, labelsize=8)
        ax0.set_title(f"Exact terms at κ = {kappa:.1f}, T = {horizon:.2f}")
        for k, lab, c in zip(names, labels, ("C0", "C1", "C3", "C2")):
            ax1.plot(grid, [s[k] for s in sweep], color=c, label=lab)
        ax1.axvline(kappa, color="k", lw=0.8, ls="--")
        ax1.set_xlabel("encoder strength κ")
        ax1.set_ylabel("nats")
        ax1.set_title(f"The terms against κ (T = {horizon:.2f})")
        ax1.legend(fontsize=7)
        box.figure = fig
        _show(out, fig)

    return _connect(box, update)


# ---------------------------------------------------------------------------------- Notebook 06
def vsdm_forward_explorer(data, forward, *, beta_max: float = 10.0, t: float = 1.0,
                          strength: float = 1.0, n: int = 1000, seed: int = 0) -> widgets.VBox:
    """β_max, t and the strength λ of A → the forward noising X_t | X_0 of VSDM, in closed form.

    ``forward``: a (trained) :class:`lsbcore.bridges.vsdm.LinearForward`; the explorer uses A_λ =
    U diag(λ s) Vᵀ (λ = 0: the VP-SDE) with β_max from the slider. Shows X_t for ``n`` data points
    and the 2σ ellipse of the adaptive prior N(0, Σ_1); the info line reports how much of the data is
    left at t = 1, tr(Φ_1 Cov(data) Φ_1ᵀ) / tr Σ_1. Notebook 06 §"What A does".
    """
    import copy
    import math

    import numpy as np

    from .bridges.vsdm import LinearForward
    from .plotting import new_axes, scatter2d
    from .utils import check_int, check_points

    data = check_points(data, "data", dim=2)
    if not isinstance(forward, LinearForward):
        raise TypeError(f"forward must be a LinearForward, got {type(forward).__name__}")
    n = check_int(n, "n")
    x0 = data[:n]
    s_learned = forward.s.detach().clone()
    w_beta = widgets.FloatSlider(value=beta_max, min=1.0, max=30.0, step=1.0, description="β_max",
                                 continuous_update=False)
    w_t = widgets.FloatSlider(value=t, min=0.05, max=1.0, step=0.05, description="t", continuous_update=False)
    w_l = widgets.FloatSlider(value=strength, min=0.0, max=1.0, step=0.1, description="λ (A strength)",
                              continuous_update=False)
    box, info, out = _panel({"beta_max": w_beta, "t": w_t, "strength": w_l}, [("beta_max", "t", "strength")],
                            height="400px")

    def update(_=None):
        b, tt, lam = w_beta.value, w_t.value, w_l.value
        f = copy.deepcopy(forward)
        f.schedule.beta_max = float(max(b, f.schedule.beta_min))
        with torch.no_grad():
            f.s.copy_(lam * s_learned)
            xt, _, _ = f.sample_xt(x0, torch.full((x0.shape[0],), tt, dtype=torch.float64), seed=seed)
            Phi1, Sig1 = f.transition(torch.ones(1, dtype=torch.float64))
        cov = torch.cov(x0.double().T)
        left = float(torch.trace(Phi1[0] @ cov @ Phi1[0].T) / torch.trace(Sig1[0]))
        box.state = {"beta_max": b, "t": tt, "strength": lam, "xt": xt, "prior_cov": Sig1[0], "data_left": left}
        info.value = (f"β_max = {b:.0f}, λ = {lam:.1f}: at t = 1 the data's spread is {100 * left:.1f} % of the "
                      f"prior's (0 % = the data is forgotten)")
        fig, ax = new_axes(size=4.5)
        scatter2d(xt, ax, s=2, alpha=0.3, color="C0", label=f"$X_t$, t = {tt:.2f}")
        evals, evecs = torch.linalg.eigh(Sig1[0])
        ang = np.linspace(0, 2 * math.pi, 200)
        circ = np.stack([np.cos(ang), np.sin(ang)], 1) * 2 * evals.sqrt().numpy()
        ell = circ @ evecs.numpy().T
        ax.plot(ell[:, 0], ell[:, 1], color="C3", label="prior N(0, Σ₁), 2σ")
        ax.set_title(f"Forward noising: β_max = {b:.0f}, A strength λ = {lam:.1f}")
        ax.legend(loc="upper right", fontsize=8, markerscale=3)
        box.figure = fig
        _show(out, fig)

    return _connect(box, update)


def vsdm_sampler_explorer(bridges: dict, target, *, nfe: int = 8, n: int = 1000, seed: int = 0) -> widgets.VBox:
    """Model (e.g. VP-SDE vs VSDM) and NFE → PF-ODE samples (Heun) next to the target, with W2.

    ``bridges``: dict name → :class:`lsbcore.bridges.vsdm.VSDM`; ``target``: ≥ 2n target points (for the
    W2 noise floor). NFE = 2 × Heun steps. Runs are cached. Notebook 06 §"Few steps".
    """
    from .bridges.vsdm import VSDM
    from .metrics import w2_report
    from .plotting import new_axes, scatter2d
    from .utils import check_int, check_points

    if not isinstance(bridges, dict) or not bridges or not all(isinstance(b, VSDM) for b in bridges.values()):
        raise TypeError("bridges must be a non-empty dict name → VSDM")
    target = check_points(target, "target", dim=2)
    n = check_int(n, "n")
    w_model = widgets.Dropdown(options=list(bridges), description="model")
    w_nfe = widgets.IntSlider(value=max(2, min(50, nfe)), min=2, max=50, step=2, description="NFE",
                              continuous_update=False)
    box, info, out = _panel({"model": w_model, "nfe": w_nfe}, [("model", "nfe")], height="400px")
    cache: dict = {}

    def run(name, k):
        if (name, k) not in cache:
            x = bridges[name].sample(n, method="ode", steps=k // 2, seed=seed).x
            cache[(name, k)] = (x, w2_report(x, target, seed=seed))
        return cache[(name, k)]

    def update(_=None):
        name, k = w_model.value, w_nfe.value
        x, rep = run(name, k)
        box.state = {"model": name, "nfe": k, "samples": x, "w2": rep}
        info.value = f"{name}, PF-ODE with NFE = {k}: {rep}"
        fig, ax = new_axes(size=4.5)
        scatter2d(target[:n], ax, s=2, alpha=0.2, color="C2", label="target")
        scatter2d(x, ax, s=2, alpha=0.4, color="C0", label=name,
                  title=f"{name}: PF-ODE samples at NFE = {k}")
        ax.legend(loc="upper right", fontsize=8, markerscale=3)
        box.figure = fig
        _show(out, fig)

    return _connect(box, update)


# ---------------------------------------------------------------------------------- dashboards
#: a code cell that builds one of the explorers above, e.g. ``W.ipf_explorer(...)``
_EXPLORER_CALL = r"\b\w+_explorer\("


def dashboard_notebook(src, dest) -> Path:
    """Write a lecture dashboard of notebook ``src`` (jupytext ``.py`` or ``.ipynb``) to ``dest`` (``.ipynb``).

    Every code cell still runs (the explorers need the state the notebook builds), but only the
    cells that build an explorer (a call to ``*_explorer(``) show their output; the others start
    with ``%%capture``, which swallows their text and figures. Markdown is dropped except the
    notebook's title and the heading of each section that holds an explorer. Served by Voilà
    (``make dashboard NB=01``), the page is the notebook's widgets alone.
    """
    import re

    import jupytext

    src, dest = Path(src), Path(dest)
    if not src.is_file():
        raise ValueError(f"src {str(src)!r} is not a notebook file")
    nb = jupytext.read(src)
    cells, heading = [], None
    for cell in nb.cells:
        text = cell.source.lstrip()
        if cell.cell_type == "markdown":
            if text.startswith("# ") and not cells:
                cells.append(cell)  # the title
            elif text.startswith("#"):
                heading = cell
            continue
        if cell.cell_type != "code":
            continue
        if re.search(_EXPLORER_CALL, cell.source):
            if heading is not None:
                cells.append(heading)
                heading = None
        else:
            cell.source = "%%capture\n" + cell.source
        cells.append(cell)
    if not any(re.search(_EXPLORER_CALL, c.source) for c in cells if c.cell_type == "code"):
        raise ValueError(f"src {str(src)!r} builds no widget explorer: it has no dashboard")
    nb.cells = cells
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    dest.parent.mkdir(parents=True, exist_ok=True)
    jupytext.write(nb, dest, fmt="ipynb")
    return dest
