"""The encoder–decoder of the latent pipeline, pre-trained under a distribution shift (Notebook 03 §2).

    pre-training digits ─► shift_digits ─► Autoencoder (E, D) ─► standardised latent codes

:class:`Autoencoder` (an MLP autoencoder or VAE with a standardised latent space), :class:`PixelSpace`
(the identity "autoencoder" of the pixel-space baseline), and the two trainers that go through the
shared loop ``lsbcore.train.fit``: :func:`fit_autoencoder` and :func:`fit_classifier` (the digits
classifier behind the Fréchet digits distance). docs/theory.md §4 (the pre-training error in the
end-to-end bound).
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .digits import PIXELS, SHIFT_KINDS, load_digits, shift_digits
from .nets import DigitsClassifier, DigitsMLP
from .train import fit
from .utils import check_int, check_points, check_positive, resolve_device

__all__ = ["Autoencoder", "PixelSpace", "fit_autoencoder", "fit_classifier", "interpolate"]


class Autoencoder(nn.Module):
    """Encoder E and decoder D with a *standardised* latent space (Notebook 03 §2).

    ``encode(x) = (E(x) − m) / s`` and ``decode(z) = D(m + s z)``, where m and s (per coordinate) are
    the mean and standard deviation of the codes of the pre-training data, so that latent codes have
    roughly unit scale and one σ means the same thing for every d*. For ``kind="vae"`` E outputs a
    mean and a log-variance; ``encode`` uses the mean.
    """

    def __init__(self, latent_dim: int, *, kind: str = "ae", hidden: int = 128, seed: int = 0):
        super().__init__()
        latent_dim = check_int(latent_dim, "latent_dim")
        if kind not in ("ae", "vae"):
            raise ValueError(f"kind must be 'ae' or 'vae', got {kind!r}")
        self.latent_dim, self.kind, self.hidden = latent_dim, kind, hidden
        self.encoder = DigitsMLP(PIXELS, latent_dim * (2 if kind == "vae" else 1), hidden, seed=seed)
        self.decoder = DigitsMLP(latent_dim, PIXELS, hidden, sigmoid=True, seed=seed + 1)
        self.register_buffer("latent_mean", torch.zeros(latent_dim))
        self.register_buffer("latent_scale", torch.ones(latent_dim))

    def raw_code(self, x):
        h = self.encoder(x)
        return h[:, : self.latent_dim] if self.kind == "vae" else h

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Pixels ``(n, 64)`` → standardised latent codes ``(n, d*)``."""
        x = check_points(x, "x", dim=PIXELS)
        return (self.raw_code(x) - self.latent_mean) / self.latent_scale

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Standardised latent codes ``(n, d*)`` → pixels ``(n, 64)`` in (0, 1)."""
        z = check_points(z, "z", dim=self.latent_dim)
        return self.decoder(self.latent_mean + self.latent_scale * z)

    def loss(self, x: torch.Tensor, gen: torch.Generator, beta: float = 1.0, tau: float = 0.1) -> torch.Tensor:
        """AE: mean squared pixel error. VAE: ‖x − D(z)‖²/(2τ²) + β KL(q(z|x) ‖ N(0, I)), per image / 64."""
        h = self.encoder(x)
        if self.kind == "ae":
            return ((self.decoder(h) - x) ** 2).mean()
        mu, logvar = h[:, : self.latent_dim], h[:, self.latent_dim:].clamp(-10, 5)
        z = mu + torch.exp(0.5 * logvar) * torch.randn(mu.shape, generator=gen, device=x.device, dtype=x.dtype)
        rec = ((self.decoder(z) - x) ** 2).sum(1) / (2 * tau**2)
        kl = 0.5 * (mu**2 + logvar.exp() - 1 - logvar).sum(1)
        return (rec + beta * kl).mean() / PIXELS


class PixelSpace(nn.Module):
    """The identity "autoencoder" of the pixel-space baseline: the same bridges, run on 64-D pixels.

    ``encode(x) = (x − m) / s`` with m the mean image and s one global scale (the root mean pixel
    variance) of the target split, so that the codes have average unit variance per coordinate like
    the standardised latent codes and σ means the same thing; ``decode`` inverts it and clips to
    [0, 1]. Notebook 03 §4 (the pixel-space baseline).
    """

    kind = "pixel"

    def __init__(self):
        super().__init__()
        x, _ = load_digits("target", dtype=torch.float32)
        self.latent_dim = PIXELS
        self.register_buffer("latent_mean", x.mean(0))
        self.register_buffer("latent_scale", x.var(0).mean().sqrt().reshape(1))
        self.config = dict(kind="pixel", latent_dim=PIXELS)

    def encode(self, x):
        x = check_points(x, "x", dim=PIXELS)
        return (x - self.latent_mean) / self.latent_scale

    def decode(self, z):
        z = check_points(z, "z", dim=PIXELS)
        return (self.latent_mean + self.latent_scale * z).clamp(0, 1)


# ------------------------------------------------------------------------------------- training
def _train(model: nn.Module, batch_loss, *, steps, lr, seed, progress, desc, checkpoint):
    """The shared loop (lsbcore.train.fit); the returned model carries the EMA weights."""
    hist = fit(model, lambda m, step, gen: batch_loss(gen), steps, lr=lr, seed=seed, ema=0.995,
               checkpoint=checkpoint, progress=progress, desc=desc, log_every=250)
    model.load_state_dict(hist.ema.state_dict())
    model.eval()
    return torch.tensor(hist.losses)


def fit_autoencoder(latent_dim: int = 8, *, kind: str = "ae", shift: float = 1.0, shift_kind: str = "translate",
                    classes: Optional[Sequence[int]] = None, steps: int = 3000, batch_size: int = 128,
                    lr: float = 2e-3, beta: float = 1.0, hidden: int = 128, seed: int = 0,
                    device=None, progress: bool = True, checkpoint=None) -> Autoencoder:
    """Pre-train an autoencoder (or VAE) on the *shifted* pre-training split (Notebook 03 §2).

    Every minibatch draws images of the ``"pretrain"`` split (optionally only ``classes``) and applies
    a fresh random ``shift_digits(·, shift, kind=shift_kind)``, so the encoder learns p̃ = T#p, not the
    target p. Training runs in the shared loop ``lsbcore.train.fit`` (progress bar, EMA weights; with
    ``checkpoint=`` a file path, it checkpoints and resumes). Afterwards the latent standardisation
    (m, s) is set from the codes of the shifted set.
    Same arguments and seed → the same weights (on CPU). Returns the model in eval mode; its training
    configuration is in ``model.config`` and its loss history in ``model.history``.
    """
    latent_dim = check_int(latent_dim, "latent_dim")
    steps, batch_size = check_int(steps, "steps"), check_int(batch_size, "batch_size")
    lr, beta = check_positive(lr, "lr"), check_positive(beta, "beta")
    shift = check_positive(shift, "shift", allow_zero=True)
    if shift_kind not in SHIFT_KINDS:
        raise ValueError(f"shift_kind must be one of {SHIFT_KINDS}, got {shift_kind!r}")
    dev = resolve_device(device) if device is not None else torch.device("cpu")
    x, _ = load_digits("pretrain", classes=classes, device=dev)
    model = Autoencoder(latent_dim, kind=kind, hidden=hidden, seed=seed).to(dev)

    def batch_loss(gen):
        idx = torch.randint(0, x.shape[0], (batch_size,), generator=gen, device=dev)
        xb = shift_digits(x[idx], shift, kind=shift_kind, seed=gen)
        return model.loss(xb, gen, beta=beta)

    hist = _train(model, batch_loss, steps=steps, lr=lr, seed=seed, progress=progress,
                  desc=f"{kind} d*={latent_dim}", checkpoint=checkpoint)
    with torch.no_grad():
        codes = model.raw_code(shift_digits(x, shift, kind=shift_kind, seed=seed + 1))
        model.latent_mean.copy_(codes.mean(0))
        model.latent_scale.copy_(codes.std(0).clamp_min(1e-6))
    model.config = dict(latent_dim=latent_dim, kind=kind, shift=shift, shift_kind=shift_kind,
                        classes=",".join(str(c) for c in classes) if classes is not None else "all",
                        steps=steps, batch_size=batch_size, lr=lr, beta=beta, hidden=hidden, seed=seed)
    model.history = hist
    return model


def fit_classifier(*, steps: int = 2000, batch_size: int = 128, lr: float = 2e-3, seed: int = 0,
                   device=None, progress: bool = True, checkpoint=None) -> DigitsClassifier:
    """Train the digits classifier on the clean ``"pretrain"`` + ``"target"`` splits (Notebook 03 §2).

    Light random translations (±0.5 px) make its features less brittle. The ``"test"`` split stays
    unseen; ``classifier_accuracy`` reports accuracy on it.
    """
    steps, batch_size = check_int(steps, "steps"), check_int(batch_size, "batch_size")
    dev = resolve_device(device) if device is not None else torch.device("cpu")
    xa, ya = load_digits("pretrain", device=dev)
    xb, yb = load_digits("target", device=dev)
    x, y = torch.cat([xa, xb]), torch.cat([ya, yb])
    model = DigitsClassifier(seed=seed).to(dev)

    def batch_loss(gen):
        idx = torch.randint(0, x.shape[0], (batch_size,), generator=gen, device=dev)
        return F.cross_entropy(model(shift_digits(x[idx], 0.5, seed=gen)), y[idx])

    hist = _train(model, batch_loss, steps=steps, lr=check_positive(lr, "lr"), seed=seed, progress=progress,
                  desc="classifier", checkpoint=checkpoint)
    model.config = dict(steps=steps, batch_size=batch_size, lr=lr, seed=seed)
    model.history = hist
    return model


def interpolate(autoencoder, x_a, x_b, steps: int = 8) -> torch.Tensor:
    """Decode the straight line between the codes of two digits: ``(steps, 64)`` images (Notebook 03 §6)."""
    x_a = check_points(x_a, "x_a", dim=PIXELS)
    x_b = check_points(x_b, "x_b", dim=PIXELS)
    lam = torch.linspace(0, 1, check_int(steps, "steps", minimum=2), dtype=x_a.dtype, device=x_a.device)[:, None]
    with torch.no_grad():
        za, zb = autoencoder.encode(x_a[:1]), autoencoder.encode(x_b[:1])
        return autoencoder.decode((1 - lam) * za + lam * zb)
