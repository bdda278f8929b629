"""Interactive explorers used by the notebooks (ipywidgets 8), one module per notebook.

Each explorer returns a widget box; the controls carry stable CSS classes (``lsb-<name>``) and the box
exposes ``.controls`` (name → widget), ``.state`` (what was last computed) and ``.figure``, so that
plain pytest can set ``.value`` and check the result without a browser. A callback maps the
controls' values to one package call (mostly in :mod:`lsbcore.explore`) and one plot; the scaffold
they share is :mod:`lsbcore.widgets._panel`.

A notebook reads ``from lsbcore import widgets as W; W.ipf_explorer(...)``. The explorers are loaded
on first use, like the top-level API, so notebook 01 never imports the digits or VSDM code.
"""
from __future__ import annotations

import importlib

# explorer -> module of this package that defines it
_EXPLORERS = {
    "schrodinger_explorer": "nb01", "ipf_explorer": "nb01", "grid_bridge_explorer": "nb01",
    "bridge_mixture_explorer": "nb02", "sampler_explorer": "nb02", "follmer_sampler_explorer": "nb02",
    "latent_bridge_explorer": "nb03", "interpolation_explorer": "nb03",
    "memorisation_explorer": "nb04", "rates_explorer": "nb04", "pretrain_stop_explorer": "nb04",
    "live_rate_explorer": "nb04",
    "sbvae_tradeoff_explorer": "nb05",
    "vsdm_forward_explorer": "nb06", "vsdm_sampler_explorer": "nb06",
    "forecast_fan_explorer": "nb07",
}

__all__ = sorted(_EXPLORERS)


def __getattr__(name: str):
    if name not in _EXPLORERS:
        raise AttributeError(f"module 'lsbcore.widgets' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_EXPLORERS[name]}", __name__), name)
    globals()[name] = value  # cache: the next access is a plain attribute
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
