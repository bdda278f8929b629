"""Explorer of notebook 04 (why latent): generated digits next to the fitted digit each one copies."""
from __future__ import annotations

import ipywidgets as widgets
import torch

from ..digits import load_digits, plot_digits
from ..explore import memorisation_view
from ..latent import generate_digits
from ..plotting import new_axes
from ..utils import check_int
from ._panel import connect, panel, show
from .nb03 import check_training_free, t_gap_slider

__all__ = ["memorisation_explorer"]


def memorisation_explorer(spaces: dict, ns, *, method: str = "heat-follmer", sigma: float = 1.0,
                          t_gap: float = 0.01, steps: int = 50, n: int = 16, seed: int = 0) -> widgets.VBox:
    """Space, n and t_gap → generated digits next to the fitted digit each one is closest to.

    ``spaces``: name → autoencoder (or :class:`lsbcore.latent.PixelSpace`); ``ns``: the choices for
    the number of target digits the bridge is fitted to. For each setting,
    :func:`lsbcore.generate_digits` fits a training-free bridge to n digits and draws ``n`` samples;
    below each generated digit the explorer shows the fitted digit whose code is nearest. The info
    line gives :func:`lsbcore.memorisation_ratio` in the bridge's own space (generated codes and
    encoded held-out digits, against the fitted codes): near 0 the bridge copies its training digits
    (:func:`lsbcore.explore.memorisation_view`). Notebook 04 §"Explore".
    """
    if not isinstance(spaces, dict) or not spaces:
        raise TypeError("spaces must be a non-empty dict name → autoencoder")
    ns = [check_int(v, "ns", minimum=2) for v in ns]
    if not ns:
        raise ValueError("ns must name at least one sample size")
    check_training_free(method)
    n = check_int(n, "n", minimum=2)
    w_space = widgets.Dropdown(options=list(spaces), description="space")
    w_n = widgets.SelectionSlider(options=ns, value=ns[0], description="n fitted", continuous_update=False)
    w_gap = t_gap_slider(t_gap)
    box, info, out = panel({"space": w_space, "n_fit": w_n, "t_gap": w_gap}, [("space", "n_fit", "t_gap")],
                           height="330px")
    test, _ = load_digits("test")
    held_out: dict = {}

    def update(_=None):
        name, k, gap = w_space.value, w_n.value, w_gap.value
        ae = spaces[name]
        if name not in held_out:
            with torch.no_grad():
                held_out[name] = ae.encode(test.to(next(iter(ae.buffers())).device))
        run = generate_digits(ae, method, n, n_fit=k, sigma=sigma, t_gap=gap, steps=steps, seed=seed)
        view = memorisation_view(run, held_out[name])
        box.state = {"space": name, "n_fit": k, "t_gap": gap, "images": run["images"], **view}
        info.value = (f"{name}, {method} fitted to n = {k} digits, t_gap = {gap:.3f}: memorisation ratio "
                      f"{view['ratio']:.2f} (1 ≈ as far from the fitted digits as new digits are; 0 = copies)")
        fig, (ax0, ax1) = new_axes(1, nrows=2, size=(n * 0.5, 1.15))
        plot_digits(run["images"], ax0, ncols=n, title=f"generated ({name}, n = {k})")
        plot_digits(view["nearest"], ax1, ncols=n, title="the nearest of the n fitted digits (nearest code)")
        show(box, out, fig)

    return connect(box, update)
