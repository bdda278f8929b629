"""The static Schrödinger problem (notebook 01): Sinkhorn on samples (``lsbcore.schrodinger.sinkhorn``),
Fortet/IPF on a grid (``.grid``), and the closed-form Gaussian bridge (``.gaussian``).

The Sinkhorn solver is imported from its module, ``from lsbcore.schrodinger.sinkhorn import sinkhorn``
(re-exporting the function here would hide the module of the same name).
"""
from .gaussian import GaussianBridge, monge_map
from .grid import Grid, GridBridge, fortet

__all__ = ["GaussianBridge", "monge_map", "Grid", "GridBridge", "fortet"]
