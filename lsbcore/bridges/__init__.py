"""Dynamic bridges (notebooks 02, 05, 06). Every one exposes the :class:`Bridge` face
(drift, backward_drift, velocity, sigma), so one sampler (``lsbcore.sde``) serves them all."""
from .base import Bridge
from .follmer import EmpiricalFollmer, FollmerMC, fit_follmer
from .matching import MatchedBridge, couple, fit_bridge, imf, matching_loss

__all__ = ["Bridge", "EmpiricalFollmer", "FollmerMC", "fit_follmer", "MatchedBridge", "couple", "fit_bridge",
           "imf", "matching_loss"]
