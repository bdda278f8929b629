"""The static Schrödinger problem (notebook 01): Sinkhorn on samples, Fortet/IPF on a grid, and the
closed-form Gaussian bridge."""
from .gaussian import GaussianBridge, monge_map
from .grid import Grid, GridBridge, fortet
from .sinkhorn import (SinkhornConvergenceError, SinkhornResult, log_sinkhorn_step, sinkhorn, sinkhorn_cost,
                       squared_distances)

__all__ = ["GaussianBridge", "monge_map", "Grid", "GridBridge", "fortet", "SinkhornConvergenceError",
           "SinkhornResult", "log_sinkhorn_step", "sinkhorn", "sinkhorn_cost", "squared_distances"]
