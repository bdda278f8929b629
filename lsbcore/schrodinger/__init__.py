"""The static Schrödinger problem (notebook 01): Sinkhorn on samples, Fortet/IPF on a grid, and the
closed-form Gaussian bridge. The implementations are private modules; the verbs live here and at the
top level (``lsb.sinkhorn``, ``lsb.fortet``, ``lsb.GaussianBridge``), the POT way.
"""
from ._sinkhorn import (SinkhornConvergenceError, SinkhornResult, log_sinkhorn_step, sinkhorn, sinkhorn_cost,
                        squared_distances)
from .gaussian import GaussianBridge, monge_map
from .grid import Grid, GridBridge, fortet

__all__ = ["sinkhorn", "sinkhorn_cost", "squared_distances", "log_sinkhorn_step", "SinkhornResult",
           "SinkhornConvergenceError", "GaussianBridge", "monge_map", "Grid", "GridBridge", "fortet"]
