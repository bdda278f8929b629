"""The scaffold every explorer shares: controls with stable CSS classes, an info line, a fixed-height
output for the figure, and the wiring that redraws on every change.

The controls carry the CSS class ``lsb-<name>`` (the browser tests find panels by that prefix), and
the box exposes ``.controls`` (name → widget), ``.state`` (what was last computed) and ``.figure``
(the last figure), so plain pytest can set ``.value`` and check the result without a browser.
"""
from __future__ import annotations

import ipywidgets as widgets
import matplotlib.pyplot as plt
from IPython.display import display

__all__ = ["panel", "connect", "show", "slider", "float_slider"]


def show(box, out: widgets.Output, fig) -> None:
    """Keep ``fig`` as ``box.figure``, draw it into ``out`` (no flicker) and release it from pyplot."""
    box.figure = fig
    with out:
        out.clear_output(wait=True)
        display(fig)
    plt.close(fig)


def panel(controls: dict, rows, *, height: str, info: bool = True, css: dict | None = None):
    """Lay out an explorer; returns ``(box, info, out)``.

    Puts the CSS class ``lsb-<name>`` on each control (``css`` overrides a name; ``_`` becomes ``-``),
    lays out ``rows`` (a control name, or a tuple of names for one row), then an optional ``lsb-info``
    line (``info``, an HTML widget, else None) and a fixed-height Output ``out`` for the figure.
    """
    css = css or {}
    for name, w in controls.items():
        w.add_class("lsb-" + css.get(name, name.replace("_", "-")))
    parts = [widgets.HBox([controls[n] for n in row]) if isinstance(row, tuple) else controls[row] for row in rows]
    line = widgets.HTML().add_class("lsb-info") if info else None
    out = widgets.Output(layout=widgets.Layout(height=height))
    box = widgets.VBox(parts + ([line] if info else []) + [out])
    box.controls, box.state, box.figure = dict(controls), {}, None
    return box, line, out


def connect(box, update):
    """Call ``update`` whenever a control's value changes, and once now; return the box."""
    for w in box.controls.values():
        w.observe(update, names="value")
    update()
    return box


def float_slider(value: float, lo: float, hi: float, step: float, description: str) -> widgets.FloatSlider:
    """A float slider that updates on release (every explorer's callback is slower than ~50 ms)."""
    return widgets.FloatSlider(value=value, min=lo, max=hi, step=step, description=description,
                               continuous_update=False)


def slider(value: int, lo: int, hi: int, description: str, step: int = 1) -> widgets.IntSlider:
    """An integer slider that updates on release."""
    return widgets.IntSlider(value=value, min=lo, max=hi, step=step, description=description,
                             continuous_update=False)
