"""Explorers of notebook 03 (the latent Schrödinger bridge): generated digits and their latent paths,
and the decoded straight line between two digits' codes."""
from __future__ import annotations

import ipywidgets as widgets

from ..digits import PIXELS, load_digits, plot_digits
from ..explore import class_summary
from ..autoencoder import interpolate
from ..latent import METHODS, generate_digits, plot_latent_paths
from ..plotting import new_axes
from ..utils import check_int, check_points
from ._panel import connect, panel, show, slider

__all__ = ["latent_bridge_explorer", "interpolation_explorer", "TRAINING_FREE"]

#: the latent bridges that need no training (each change of a control takes about a second)
TRAINING_FREE = [m for m in METHODS if m not in ("imf", "heat-learned")]


def check_training_free(method: str) -> str:
    if method not in TRAINING_FREE:
        raise ValueError(f"method must be one of {TRAINING_FREE} (training-free), got {method!r}")
    return method


def t_gap_slider(value: float) -> widgets.FloatLogSlider:
    """The gap kept from the data end, on a log scale from 1e-3 to 10^-0.5."""
    return widgets.FloatLogSlider(value=value, base=10, min=-3, max=-0.5, step=0.1, description="t_gap",
                                  continuous_update=False)


def latent_bridge_explorer(autoencoders: dict, *, classifier=None, method: str = "heat-follmer",
                           sigma: float = 1.0, t_gap: float = 0.01, steps: int = 60, latent_dim=None,
                           n: int = 40, seed: int = 0) -> widgets.VBox:
    """Bridge, σ, t_gap, steps and d* → a gallery of generated digits and their latent paths.

    ``autoencoders`` maps d* → a (shipped) autoencoder; the bridge is fitted to the codes of the
    target digits by :func:`lsbcore.generate_digits` (training-free methods only, so each change
    takes about a second). Left: ``n`` decoded samples; right: the sampler paths over the encoded
    target digits coloured by class (PCA plane for d* > 2). With ``classifier`` the info line shows
    the class spread and confidence (:func:`lsbcore.explore.class_summary`). Notebook 03 §6.
    """
    if not isinstance(autoencoders, dict) or not autoencoders:
        raise TypeError("autoencoders must be a non-empty dict {latent_dim: autoencoder}")
    dims = sorted(autoencoders)
    latent_dim = dims[0] if latent_dim is None else latent_dim
    if latent_dim not in autoencoders:
        raise ValueError(f"latent_dim must be one of {dims}, got {latent_dim}")
    check_training_free(method)
    n = check_int(n, "n")
    w_method = widgets.Dropdown(options=TRAINING_FREE, value=method, description="bridge")
    w_sigma = widgets.FloatLogSlider(value=sigma, base=10, min=-1, max=0.7, step=0.05, description="σ",
                                     continuous_update=False)
    w_gap = t_gap_slider(t_gap)
    w_steps = slider(steps, 5, 200, "steps", step=5)
    w_dim = widgets.Dropdown(options=dims, value=latent_dim, description="d*")
    ctrl = {"method": w_method, "sigma": w_sigma, "t_gap": w_gap, "steps": w_steps, "latent_dim": w_dim}
    box, info, out = panel(ctrl, [("method", "latent_dim", "steps"), ("sigma", "t_gap")], height="380px")
    _, labels = load_digits("target")

    def update(_=None):
        m, d = w_method.value, w_dim.value
        res = generate_digits(autoencoders[d], m, n, sigma=w_sigma.value, t_gap=w_gap.value,
                              steps=w_steps.value, seed=seed, keep_traj=True)
        box.state = {k: res[k] for k in ("method", "latent_dim", "codes", "images")}
        box.state.update(sigma=w_sigma.value, t_gap=w_gap.value, steps=w_steps.value)
        text = f"{m}, d* = {d}, σ = {w_sigma.value:.2f}, t_gap = {w_gap.value:.3f}"
        if classifier is not None:
            summary = class_summary(classifier, res["images"])
            box.state["class_counts"] = summary["counts"]
            text += f" — classes {summary['counts'].tolist()}, mean confidence {summary['confidence']:.2f}"
        info.value = text
        fig, axes = new_axes(2, size=4.2)
        plot_digits(res["images"], axes[0], ncols=8, title=f"{n} generated digits ({m})")
        traj = res["traj"] if res["traj"] is not None and res["traj"].shape[0] > 1 else None
        plot_latent_paths(res["points"], traj, axes[1], labels=labels, n_paths=min(n, 25),
                          title=f"latent paths over the encoded targets (d* = {d})")
        show(box, out, fig)

    return connect(box, update)


def interpolation_explorer(autoencoder, images, *, a: int = 0, b: int = 1, steps: int = 10) -> widgets.VBox:
    """Two image indices → the decoded straight line between their latent codes
    (:func:`lsbcore.latent.interpolate`). ``images`` is ``(n, 64)``; the row shows
    D((1−λ) E(x_a) + λ E(x_b)) for λ from 0 to 1. Notebook 03 §6.
    """
    images = check_points(images, "images", dim=PIXELS)
    n = images.shape[0]
    steps = check_int(steps, "steps", minimum=2)
    w_a, w_b = slider(a, 0, n - 1, "digit A"), slider(b, 0, n - 1, "digit B")
    box, _, out = panel({"a": w_a, "b": w_b}, [("a", "b")], height="140px", info=False,
                        css={"a": "digit-a", "b": "digit-b"})

    def update(_=None):
        i, j = w_a.value, w_b.value
        path = interpolate(autoencoder, images[i:i + 1], images[j:j + 1], steps)
        box.state = {"a": i, "b": j, "path": path}
        fig, ax = new_axes(size=(steps * 0.55, 1.3))
        plot_digits(path, ax, ncols=steps, title=f"decoded latent line from digit #{i} to #{j}")
        show(box, out, fig)

    return connect(box, update)
