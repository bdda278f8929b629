"""The spaces notebook 04's bridge learns in: latent, ambient and oracle coordinates of R^D.

Each space is an ``nn.Module`` with ``encode`` (R^D → its coordinates), ``decode`` (back to R^D),
``latent_dim`` and ``kind``, standardised so that the data have the same size in every space
(:class:`lsbcore.rates.Budget`'s σ then means the same along the manifold everywhere):

* :class:`ManifoldAutoencoder` — a learned MLP autoencoder (``kind = "latent"``), trained by
  :func:`lsbcore.rates.fit_manifold_autoencoder`;
* :class:`AmbientSpace` — the identity on R^D after centring and one global rescaling;
* :class:`OracleSpace` — the true intrinsic coordinates of :class:`lsbcore.manifold.ManifoldData`,
  i.e. a perfect autoencoder.

:mod:`lsbcore.rates` runs the same learned bridge in each of them and re-exports these names.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from .manifold import ManifoldData
from .nets import DigitsMLP
from .utils import check_int, check_points, check_positive

__all__ = ["AMBIENT_SCALES", "AmbientSpace", "OracleSpace", "ManifoldAutoencoder"]


class _Standardised(nn.Module):
    """Shared by the spaces: x ↦ (x − m)/s with m per coordinate and one global scale s (float32)."""

    def _set_scale(self, x: torch.Tensor, total_variance: Optional[float] = None) -> None:
        var = x.var(0)
        target = x.shape[1] if total_variance is None else total_variance
        self.register_buffer("x_mean", x.mean(0))
        self.register_buffer("x_scale", (var.sum() / target).sqrt().clamp_min(1e-12).reshape(1))


#: how the ambient coordinates are scaled (:class:`AmbientSpace`)
AMBIENT_SCALES = ("manifold", "coordinate")


class AmbientSpace(_Standardised):
    """The ambient "autoencoder": the identity on R^D after centring and one global rescaling.

    ``encode(x) = (x − m)/s``, ``decode`` its inverse, with m (per coordinate) and s from the ``x``
    it is built with. Two conventions for s (``scale``):

    * ``"manifold"`` (Notebook 04's headline): the total variance becomes ``total_variance`` (give
      d*, the total variance of the standardised latent codes). The data then have the *same size*
      in every D and in latent space, so σ means the same along the manifold everywhere; what a
      larger D adds is only D − d* more directions that the noise fills and the drift must empty.
    * ``"coordinate"`` (the pixel convention of Notebook 03's ``PixelSpace``): the *average
      coordinate* variance becomes 1, so the total variance is D: a larger D also makes the data
      larger relative to σ (the bridge gets relatively less noisy as D grows).
    """

    kind = "ambient"

    def __init__(self, x, *, scale: str = "manifold", total_variance: Optional[float] = None):
        super().__init__()
        x = check_points(x, "x").float()
        if scale not in AMBIENT_SCALES:
            raise ValueError(f"scale must be one of {AMBIENT_SCALES}, got {scale!r}")
        if scale == "manifold":
            if total_variance is None:
                raise ValueError("scale='manifold' needs total_variance (the latent codes' total variance, d*)")
            total_variance = check_positive(total_variance, "total_variance")
        elif total_variance is not None:
            raise ValueError("total_variance is only for scale='manifold'")
        self.latent_dim = x.shape[1]
        self.scale = scale
        self._set_scale(x, total_variance)

    def encode(self, x):
        return (check_points(x, "x", dim=self.latent_dim).to(self.x_mean) - self.x_mean) / self.x_scale

    def decode(self, z):
        return self.x_mean + self.x_scale * check_points(z, "z", dim=self.latent_dim).to(self.x_mean)


class OracleSpace(_Standardised):
    """The bridge in the *true* intrinsic coordinates: a perfect autoencoder, for reference (Notebook 04 §3).

    ``encode`` reads back u = (Qᵀx)[:d*] (:meth:`ManifoldData.intrinsic`) and standardises it per
    coordinate like the latent codes; ``decode`` embeds exactly onto the manifold. The latent
    error minus the oracle's is what the learned autoencoder costs.
    """

    kind = "oracle"

    def __init__(self, data: ManifoldData, x):
        super().__init__()
        self.data = data
        u = data.intrinsic(check_points(x, "x", dim=data.ambient_dim)).float()
        self.latent_dim = data.intrinsic_dim
        self.register_buffer("x_mean", u.mean(0))
        self.register_buffer("x_scale", u.std(0).clamp_min(1e-12))

    def encode(self, x):
        return (self.data.intrinsic(x).float() - self.x_mean) / self.x_scale

    def decode(self, z):
        z = check_points(z, "z", dim=self.latent_dim).to(self.x_mean)
        return self.data.embed((self.x_mean + self.x_scale * z).double()).float()


class ManifoldAutoencoder(_Standardised):
    """An MLP autoencoder R^D → R^{d*} → R^D with standardised inputs and codes (Notebook 04 §2).

    The network's input is centred and scaled to an average coordinate variance of 1 (by the
    pre-training data), the code is standardised like :class:`lsbcore.autoencoder.Autoencoder`'s
    (mean 0, unit variance per coordinate on the pre-training data): total code variance d*, the
    size :class:`AmbientSpace` gives the ambient data by default.
    """

    kind = "latent"

    def __init__(self, ambient_dim: int, latent_dim: int, *, hidden: int = 128, seed: int = 0):
        super().__init__()
        self.ambient_dim, self.latent_dim = check_int(ambient_dim, "ambient_dim"), check_int(latent_dim, "latent_dim")
        self.encoder = DigitsMLP(self.ambient_dim, self.latent_dim, hidden, seed=seed)
        self.decoder = DigitsMLP(self.latent_dim, self.ambient_dim, hidden, seed=seed + 1)
        self.register_buffer("x_mean", torch.zeros(self.ambient_dim))
        self.register_buffer("x_scale", torch.ones(1))
        self.register_buffer("latent_mean", torch.zeros(self.latent_dim))
        self.register_buffer("latent_scale", torch.ones(self.latent_dim))

    def encode(self, x):
        x = check_points(x, "x", dim=self.ambient_dim).to(self.x_mean)
        return (self.encoder((x - self.x_mean) / self.x_scale) - self.latent_mean) / self.latent_scale

    def decode(self, z):
        return self.unchecked_decode(check_points(z, "z", dim=self.latent_dim).to(self.x_mean))

    def unchecked_decode(self, z):
        """``decode`` without the argument checks (a pure tensor function: torch.func can transform it)."""
        return self.x_mean + self.x_scale * self.decoder(self.latent_mean + self.latent_scale * z)
