"""Dynamic bridges: every one exposes the :class:`Bridge` face (drift, backward_drift, velocity, sigma)."""
from .base import Bridge

__all__ = ["Bridge"]
