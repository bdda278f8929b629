"""lsbcore: Schrödinger-bridge diffusion models for teaching and quick experiments.

The package follows one pipeline: marginals → static solver → coupling → bridge (drift) → sampler →
samples → metrics / plots. See README.md for the map and notebooks/ for the course.
"""
from . import marginals
from .marginals import Empirical, Gaussian, GaussianMixture, Toy2D
from .utils import device, generator, is_fast, seed_everything

__version__ = "0.1.0"

__all__ = [
    "device", "generator", "is_fast", "seed_everything",
    "marginals", "Gaussian", "GaussianMixture", "Empirical", "Toy2D",
]
