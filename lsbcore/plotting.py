"""Figure helpers with one consistent style. They return figures (or draw on a given ``ax``) and
never call ``plt.show()``: the notebook cell does that."""
from __future__ import annotations

import matplotlib.pyplot as plt
import torch


def _np(x):
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else x


def new_axes(ncols: int = 1, *, size: float = 3.6, nrows: int = 1, **kwargs):
    """A figure with ``nrows × ncols`` axes of side ``size`` inches; returns ``(fig, axes)``."""
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows), squeeze=False,
                             constrained_layout=True, **kwargs)
    return fig, (axes[0, 0] if nrows * ncols == 1 else axes.ravel())


def scatter2d(x, ax=None, *, title: str | None = None, label: str | None = None, s: float = 3,
              alpha: float = 0.5, **kwargs):
    """Scatter a 2-D point cloud with labelled axes and equal aspect; returns the axes."""
    if ax is None:
        _, ax = new_axes()
    x = _np(x)
    ax.scatter(x[:, 0], x[:, 1], s=s, alpha=alpha, label=label, **kwargs)
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    ax.set_aspect("equal", adjustable="datalim")
    if title:
        ax.set_title(title)
    return ax
