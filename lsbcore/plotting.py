"""Figure helpers with one consistent style. Each draws on a given ``ax`` (or makes one) and returns
the axes, or returns a new figure; none calls ``plt.show()``: the notebook cell does that. Every axis
they draw on gets a label and a title."""
from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import torch

__all__ = ["new_axes", "scatter2d", "paths2d", "coupling_image", "curves", "density_curves", "density_image",
           "quiver2d", "cov_ellipse", "bars"]


def _np(x):
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def _axes(ax):
    return new_axes()[1] if ax is None else ax


def new_axes(ncols: int = 1, *, size=3.6, nrows: int = 1, **kwargs):
    """A figure with ``nrows × ncols`` axes, each ``size`` inches (a float for square axes or a
    ``(width, height)`` pair); returns ``(fig, axes)`` — one axes, or a flat array of them."""
    w, h = (size, size) if isinstance(size, (int, float)) else size
    fig, axes = plt.subplots(nrows, ncols, figsize=(w * ncols, h * nrows), squeeze=False,
                             constrained_layout=True, **kwargs)
    return fig, (axes[0, 0] if nrows * ncols == 1 else axes.ravel())


def _label(ax, xlabel, ylabel, title):
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)


def scatter2d(x, ax=None, *, title: str | None = None, label: str | None = None, s: float = 3,
              alpha: float = 0.5, **kwargs):
    """Scatter a 2-D point cloud ``(n, 2)`` with labelled axes and equal aspect; returns the axes."""
    ax = _axes(ax)
    x = _np(x)
    ax.scatter(x[:, 0], x[:, 1], s=s, alpha=alpha, label=label, **kwargs)
    _label(ax, "$x_1$", "$x_2$", title)
    ax.set_aspect("equal", adjustable="datalim")
    return ax


def paths2d(traj, ax=None, *, upto: int | None = None, n_paths: int = 40, title: str | None = None,
            s: float = 3, color: str = "C1", path_alpha: float = 0.25):
    """Draw 2-D trajectories ``(steps + 1, n, 2)``: ``n_paths`` of them as lines up to grid index
    ``upto`` (default: the end) and every particle at ``upto`` as a dot. Returns the axes.
    Notebook 02 §2.5 (SDE vs ODE sampling)."""
    ax = _axes(ax)
    traj = _np(traj)
    k = traj.shape[0] - 1 if upto is None else int(upto)
    lines = traj[: k + 1, :n_paths]
    ax.plot(lines[..., 0], lines[..., 1], color="0.4", lw=0.6, alpha=path_alpha)
    scatter2d(traj[k], ax, s=s, color=color, title=title)
    return ax


def coupling_image(plan, x0, x1, ax=None, *, title: str | None = None, cmap: str = "magma"):
    """Show a 1-D coupling: ``plan`` (n, m) masses over the nodes ``x0`` (n,) × ``x1`` (m,) as an image
    with X0 on the horizontal axis and X1 on the vertical one. Returns the axes. Notebook 01 §2.1."""
    ax = _axes(ax)
    plan, x0, x1 = _np(plan), _np(x0).reshape(-1), _np(x1).reshape(-1)
    ax.imshow(plan.T, origin="lower", aspect="auto", cmap=cmap,
              extent=(x0[0], x0[-1], x1[0], x1[-1]), interpolation="nearest")
    _label(ax, "$x_0$", "$x_1$", title or "coupling π(x0, x1)")
    return ax


def curves(x, ys: dict, ax=None, *, xlabel: str, ylabel: str, title: str, styles: dict | None = None,
           logx: bool = False, logy: bool = False, legend: bool = True):
    """Plot several curves over the same ``x``: ``ys`` maps a label to values (same length as x);
    ``styles`` optionally maps a label to matplotlib keyword arguments. Returns the axes."""
    ax = _axes(ax)
    x = _np(x).reshape(-1)
    for label, y in ys.items():
        ax.plot(x, _np(y).reshape(-1), label=label, **((styles or {}).get(label, {})))
    ax.set_xscale("log" if logx else "linear")
    ax.set_yscale("log" if logy else "linear")
    _label(ax, xlabel, ylabel, title)
    if legend:
        ax.legend(fontsize=8)
    return ax


def density_curves(x, ys: dict, ax=None, *, title: str | None = None, styles: dict | None = None):
    """Plot 1-D densities on the nodes ``x`` (:func:`curves` with density axes). Notebook 01 §2.2."""
    return curves(x, ys, ax, xlabel="$x$", ylabel="density", title=title or "densities", styles=styles)


def density_image(axes, values, ax=None, *, title: str | None = None, cmap: str = "viridis"):
    """Show a density on a 2-D grid: ``axes`` = (x1 nodes, x2 nodes), ``values`` of shape (n1, n2)
    (indexed [i, j] ↔ (x1_i, x2_j)). Returns the axes. Notebook 01 §2.6."""
    ax = _axes(ax)
    a0, a1, v = _np(axes[0]).reshape(-1), _np(axes[1]).reshape(-1), _np(values)
    ax.imshow(v.T, origin="lower", cmap=cmap, extent=(a0[0], a0[-1], a1[0], a1[-1]), interpolation="nearest")
    _label(ax, "$x_1$", "$x_2$", title or "density")
    return ax


def quiver2d(axes, field, ax=None, *, every: int = 1, title: str | None = None, color: str = "w",
             alpha: float = 0.7):
    """Draw a vector field on a 2-D grid as arrows: ``axes`` = (x1 nodes, x2 nodes), ``field`` of shape
    (n1, n2, 2) (indexed like :func:`density_image`), one arrow per ``every`` nodes along each axis.
    Returns the axes. Notebook 01 §2.6 (the drift of the grid bridge)."""
    ax = _axes(ax)
    a, b, d = _np(axes[0]).reshape(-1)[::every], _np(axes[1]).reshape(-1)[::every], _np(field)[::every, ::every]
    A, B = np.meshgrid(a, b, indexing="ij")
    ax.quiver(A, B, d[..., 0], d[..., 1], color=color, alpha=alpha, angles="xy")
    _label(ax, "$x_1$", "$x_2$", title or ax.get_title())
    return ax


def cov_ellipse(cov, ax=None, *, mean=None, n_sd: float = 2.0, label: str | None = None, color: str = "C3",
                points: int = 200):
    """Draw the ``n_sd``-standard-deviation ellipse {mean + n_sd Σ^{1/2} u : |u| = 1} of a 2-D
    covariance ``cov`` (2, 2) around ``mean`` (default 0). Returns the axes. Notebook 06 §2 (the prior)."""
    ax = _axes(ax)
    evals, evecs = np.linalg.eigh(_np(cov).astype(float))
    ang = np.linspace(0.0, 2 * math.pi, points)
    circle = np.stack([np.cos(ang), np.sin(ang)], 1) * n_sd * np.sqrt(np.clip(evals, 0.0, None))
    ell = circle @ evecs.T + (0.0 if mean is None else _np(mean).reshape(1, 2))
    ax.plot(ell[:, 0], ell[:, 1], color=color, label=label)
    _label(ax, "$x_1$", "$x_2$", ax.get_title())
    return ax


def bars(values: dict, ax=None, *, xlabel: str, ylabel: str, title: str, colors=None):
    """A bar per entry of ``values`` (label → number), labels slanted below. Returns the axes."""
    ax = _axes(ax)
    ax.bar(list(values), list(values.values()), color=colors)
    ax.tick_params(axis="x", labelrotation=20, labelsize=8)
    _label(ax, xlabel, ylabel, title)
    return ax
