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


def paths2d(traj, ax=None, *, upto: int | None = None, n_paths: int = 40, title: str | None = None,
            s: float = 3, color: str = "C1", path_alpha: float = 0.25):
    """Draw 2-D trajectories ``(steps + 1, batch, 2)``: ``n_paths`` of them as lines up to grid index
    ``upto`` (default: the end) and every particle at ``upto`` as a dot. Returns the axes.
    Notebook 02 §"SDE vs ODE sampling"."""
    if ax is None:
        _, ax = new_axes()
    traj = _np(traj)
    k = traj.shape[0] - 1 if upto is None else int(upto)
    lines = traj[: k + 1, :n_paths]
    ax.plot(lines[..., 0], lines[..., 1], color="0.4", lw=0.6, alpha=path_alpha)
    scatter2d(traj[k], ax, s=s, color=color, title=title)
    return ax


# ---------------------------------------------------------------------------------- Notebook 01
def coupling_image(plan, x0, x1, ax=None, *, title: str | None = None, cmap: str = "magma"):
    """Show a 1-D coupling: ``plan`` (n, m) masses over the nodes ``x0`` (n,) × ``x1`` (m,) as an image
    with X0 on the horizontal axis and X1 on the vertical one. Returns the axes. Notebook 01."""
    if ax is None:
        _, ax = new_axes()
    plan, x0, x1 = _np(plan), _np(x0).reshape(-1), _np(x1).reshape(-1)
    ax.imshow(plan.T, origin="lower", aspect="auto", cmap=cmap,
              extent=(x0[0], x0[-1], x1[0], x1[-1]), interpolation="nearest")
    ax.set_xlabel("$x_0$")
    ax.set_ylabel("$x_1$")
    ax.set_title(title or "coupling π(x0, x1)")
    return ax


def density_curves(x, curves: dict, ax=None, *, title: str | None = None, styles: dict | None = None):
    """Plot 1-D densities on the nodes ``x``: ``curves`` maps a label to values (same length as x);
    ``styles`` optionally maps a label to matplotlib keyword arguments. Returns the axes. Notebook 01."""
    if ax is None:
        _, ax = new_axes()
    x = _np(x).reshape(-1)
    for label, y in curves.items():
        ax.plot(x, _np(y).reshape(-1), label=label, **((styles or {}).get(label, {})))
    ax.set_xlabel("$x$")
    ax.set_ylabel("density")
    ax.set_title(title or "densities")
    ax.legend(fontsize=8)
    return ax


def density_image(axes, values, ax=None, *, title: str | None = None, cmap: str = "viridis"):
    """Show a density on a 2-D grid: ``axes`` = (x1 nodes, x2 nodes), ``values`` of shape (n1, n2)
    (indexed [i, j] ↔ (x1_i, x2_j)). Returns the axes. Notebook 01."""
    if ax is None:
        _, ax = new_axes()
    a0, a1, v = _np(axes[0]).reshape(-1), _np(axes[1]).reshape(-1), _np(values)
    ax.imshow(v.T, origin="lower", cmap=cmap, extent=(a0[0], a0[-1], a1[0], a1[-1]), interpolation="nearest")
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    ax.set_title(title or "density")
    return ax
