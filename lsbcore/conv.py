"""Convolutional networks for images: the encoder–decoder and the classifier of the latent pipeline on
MNIST-sized data (the MLPs of :mod:`lsbcore.autoencoder` stay for the 8×8 digits).

    images (n, C, H, W) ─► ConvAutoencoder.encode ─► standardised codes (n, d*) ─► latent bridge
    codes ─► ConvAutoencoder.decode ─► images in (0, 1)          ConvClassifier.features ─► Fréchet distance

Both networks halve the image twice with stride-2 convolutions (H → H/2 → H/4), so any square size
divisible by 4 works: 28 (MNIST), 32, and 8 (the digits; cheap, a few thousand weights). Both train
through the one loop :func:`lsbcore.train.fit` (progress bar, EMA, checksummed resumable checkpoints),
and :func:`save_model` / :func:`load_model` store a trained one with its configuration.
Issue 16, README "Real image data".
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .datasets import check_images, shift_images
from .digits import SHIFT_KINDS
from .nets import seeded_init
from .checkpoint import load_checkpoint, save_checkpoint
from .train import fit
from .utils import check_int, check_points, check_positive, check_seed

__all__ = ["ConvAutoencoder", "ConvClassifier", "fit_image_autoencoder", "fit_image_classifier", "accuracy",
           "save_model", "load_model"]


def _check_size(image_size) -> int:
    image_size = check_int(image_size, "image_size", minimum=4)
    if image_size % 4:
        raise ValueError(f"image_size must be divisible by 4 (two stride-2 halvings), got {image_size}")
    return image_size


class ConvAutoencoder(nn.Module):
    """A convolutional encoder E and decoder D with a standardised latent space (like
    :class:`lsbcore.autoencoder.Autoencoder`, whose face it shares).

    E: ``Conv(C→w, 3, stride 2) → SiLU → Conv(w→2w, 3, stride 2) → SiLU → Linear(2w·(H/4)² → d*)``;
    D mirrors it with ``ConvTranspose(4, stride 2)`` layers and a sigmoid, so pixels land in (0, 1).
    ``encode(x) = (E(x) − m) / s`` and ``decode(z) = D(m + s z)``, with m, s the per-coordinate mean
    and standard deviation of the training codes (set by :func:`fit_image_autoencoder`; 0 and 1
    before), so one σ of a latent bridge means the same for every d*. ``seed`` fixes the weights.
    """

    kind = "conv"

    def __init__(self, latent_dim: int, *, image_size: int = 28, channels: int = 1, width: int = 32, seed: int = 0):
        super().__init__()
        self.latent_dim = check_int(latent_dim, "latent_dim")
        self.image_size = _check_size(image_size)
        self.channels = check_int(channels, "channels")
        self.width = check_int(width, "width")
        seed = check_seed(seed)
        c, w, s = self.channels, self.width, self.image_size // 4
        with seeded_init(seed):
            self.encoder = nn.Sequential(
                nn.Conv2d(c, w, 3, stride=2, padding=1), nn.SiLU(),            # H → H/2
                nn.Conv2d(w, 2 * w, 3, stride=2, padding=1), nn.SiLU(),        # H/2 → H/4
                nn.Flatten(), nn.Linear(2 * w * s * s, self.latent_dim))
            self.decoder = nn.Sequential(
                nn.Linear(self.latent_dim, 2 * w * s * s), nn.SiLU(), nn.Unflatten(1, (2 * w, s, s)),
                nn.ConvTranspose2d(2 * w, w, 4, stride=2, padding=1), nn.SiLU(),   # H/4 → H/2
                nn.ConvTranspose2d(w, c, 4, stride=2, padding=1))                  # H/2 → H
        self.register_buffer("latent_mean", torch.zeros(self.latent_dim))
        self.register_buffer("latent_scale", torch.ones(self.latent_dim))
        self.config = dict(latent_dim=self.latent_dim, image_size=self.image_size, channels=self.channels,
                           width=self.width, seed=seed)

    def _images(self, x, name: str = "x") -> torch.Tensor:
        return check_images(x, name, channels=self.channels, image_size=self.image_size)

    def raw_code(self, x: torch.Tensor) -> torch.Tensor:
        """E(x) before standardisation (no checks: the training path)."""
        return self.encoder(x)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Images ``(n, C, H, W)`` (or flat ``(n, C·H·W)``) → standardised latent codes ``(n, d*)``."""
        return (self.raw_code(self._images(x)) - self.latent_mean) / self.latent_scale

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Standardised latent codes ``(n, d*)`` → images ``(n, C, H, W)`` in (0, 1)."""
        z = check_points(z, "z", dim=self.latent_dim)
        return torch.sigmoid(self.decoder(self.latent_mean + self.latent_scale * z))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The reconstruction D(E(x)) of images ``(n, C, H, W)``, unstandardised and unchecked (the
        training path; a DistributedDataParallel wrapper calls this)."""
        return torch.sigmoid(self.decoder(self.encoder(x)))

    def loss(self, x: torch.Tensor, gen: torch.Generator = None) -> torch.Tensor:
        """Mean squared pixel error of the reconstruction D(E(x)) (``gen`` unused: the AE is
        deterministic; it is there so that every autoencoder's loss has one signature)."""
        x = x.reshape(x.shape[0], self.channels, self.image_size, self.image_size)
        return ((self(x) - x) ** 2).mean()


class ConvClassifier(nn.Module):
    """A small convolutional classifier; ``features(x)`` is the ``feature_dim``-dimensional
    penultimate layer in which :func:`lsbcore.datasets.frechet_image_distance` compares image sets.

    ``Conv(C→w, 3) → SiLU → Conv(w→w, 3, stride 2) → SiLU → Conv(w→2w, 3, stride 2) → SiLU →
    Linear(2w·(H/4)² → feature_dim) → SiLU`` (the features), then ``Linear(feature_dim → n_classes)``.
    No batch norm or dropout, so train and eval mode compute the same thing.
    """

    def __init__(self, *, n_classes: int = 10, image_size: int = 28, channels: int = 1, feature_dim: int = 64,
                 width: int = 32, seed: int = 0):
        super().__init__()
        self.n_classes = check_int(n_classes, "n_classes", minimum=2)
        self.image_size = _check_size(image_size)
        self.channels = check_int(channels, "channels")
        self.feature_dim = check_int(feature_dim, "feature_dim")
        self.width = check_int(width, "width")
        seed = check_seed(seed)
        c, w, s = self.channels, self.width, self.image_size // 4
        with seeded_init(seed):
            self.body = nn.Sequential(
                nn.Conv2d(c, w, 3, padding=1), nn.SiLU(),
                nn.Conv2d(w, w, 3, stride=2, padding=1), nn.SiLU(),            # H → H/2
                nn.Conv2d(w, 2 * w, 3, stride=2, padding=1), nn.SiLU(),        # H/2 → H/4
                nn.Flatten(), nn.Linear(2 * w * s * s, self.feature_dim), nn.SiLU())
            self.head = nn.Linear(self.feature_dim, self.n_classes)
        self.config = dict(n_classes=self.n_classes, image_size=self.image_size, channels=self.channels,
                           feature_dim=self.feature_dim, width=self.width, seed=seed)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Images ``(n, C, H, W)`` (or flat) → features ``(n, feature_dim)``."""
        return self.body(check_images(x, "x", channels=self.channels, image_size=self.image_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Images → logits ``(n, n_classes)``."""
        return self.head(self.features(x))


# ------------------------------------------------------------------------------------- training
def _common(images, steps, batch_size, lr, seed, shift, shift_kind):
    images = check_images(images, "images")
    if images.shape[2] != images.shape[3]:
        raise ValueError(f"images must be square, got {tuple(images.shape[2:])}")
    steps, batch_size = check_int(steps, "steps"), check_int(batch_size, "batch_size")
    lr = check_positive(lr, "lr")
    seed = check_seed(seed)
    shift = check_positive(shift, "shift", allow_zero=True)
    if shift_kind not in SHIFT_KINDS:
        raise ValueError(f"shift_kind must be one of {SHIFT_KINDS}, got {shift_kind!r}")
    return images, steps, batch_size, lr, seed, shift


def _fit(model, loss_fn, *, steps, lr, seed, ema, progress, desc, checkpoint):
    """The shared loop; the model is returned with its EMA weights, in eval mode."""
    hist = fit(model, loss_fn, steps, lr=lr, seed=seed, ema=ema, checkpoint=checkpoint, progress=progress,
               desc=desc, log_every=min(100, steps))
    if hist.ema is not None:
        model.load_state_dict(hist.ema.state_dict())
    model.eval()
    model.history = torch.tensor(hist.losses)
    return model


def fit_image_autoencoder(images, latent_dim: int, *, steps: int, batch_size: int = 128, lr: float = 1e-3,
                          seed: int = 0, progress: bool = True, checkpoint=None, width: int = 32,
                          shift: float = 0.0, shift_kind: str = "translate", ema: float = 0.995) -> ConvAutoencoder:
    """Train a :class:`ConvAutoencoder` on ``images`` ``(n, C, H, W)`` (on their device).

    Each step draws ``batch_size`` images with the loop's generator and, with ``shift`` > 0, applies a
    fresh :func:`lsbcore.datasets.shift_images` (``shift_kind``), so that the encoder is pre-trained on
    p̃ = T#p as in Notebook 03 §2. Training goes through :func:`lsbcore.train.fit` (EMA weights;
    ``checkpoint`` = a file path makes it resumable, bit-exact on CPU). Afterwards the latent
    standardisation (m, s) is set from the codes of all (shifted) images. Same arguments and seed → the
    same weights on CPU. The model's ``config`` holds the arguments, ``history`` the losses.
    """
    images, steps, batch_size, lr, seed, shift = _common(images, steps, batch_size, lr, seed, shift, shift_kind)
    model = ConvAutoencoder(latent_dim, image_size=images.shape[-1], channels=images.shape[1], width=width,
                            seed=seed).to(images.device)
    n = images.shape[0]

    def loss_fn(m, step, gen):
        xb = images[torch.randint(0, n, (batch_size,), generator=gen, device=images.device)]
        if shift > 0:
            xb = shift_images(xb, shift, kind=shift_kind, seed=gen)
        return ((m(xb) - xb) ** 2).mean()          # through forward, so a DDP-wrapped m works too

    _fit(model, loss_fn, steps=steps, lr=lr, seed=seed, ema=ema, progress=progress,
         desc=f"conv ae d*={model.latent_dim}", checkpoint=checkpoint)
    with torch.no_grad():
        seen = shift_images(images, shift, kind=shift_kind, seed=seed + 1) if shift > 0 else images
        codes = torch.cat([model.raw_code(b) for b in seen.split(1024)])
        model.latent_mean.copy_(codes.mean(0))
        model.latent_scale.copy_(codes.std(0).clamp_min(1e-6) if codes.shape[0] > 1 else torch.ones_like(codes[0]))
    model.config.update(steps=steps, batch_size=batch_size, lr=lr, shift=shift, shift_kind=shift_kind, ema=ema)
    return model


def fit_image_classifier(images, labels, *, steps: int, batch_size: int = 128, lr: float = 1e-3, seed: int = 0,
                         progress: bool = True, checkpoint=None, n_classes: int = 10, feature_dim: int = 64,
                         width: int = 32, shift: float = 0.0, shift_kind: str = "translate",
                         ema: float = 0.995) -> ConvClassifier:
    """Train a :class:`ConvClassifier` on ``images`` ``(n, C, H, W)`` and integer ``labels`` ``(n,)``
    by cross-entropy, through :func:`lsbcore.train.fit` (as :func:`fit_image_autoencoder`; ``shift``
    > 0 augments each batch with :func:`lsbcore.datasets.shift_images`, e.g. 1 pixel of translation
    makes the features less brittle). Returns the EMA model in eval mode."""
    images, steps, batch_size, lr, seed, shift = _common(images, steps, batch_size, lr, seed, shift, shift_kind)
    n_classes = check_int(n_classes, "n_classes", minimum=2)
    if not isinstance(labels, torch.Tensor):
        raise TypeError(f"labels must be a torch.Tensor of shape ({images.shape[0]},), got {type(labels).__name__}")
    if labels.dtype.is_floating_point or labels.dtype.is_complex or labels.dtype == torch.bool:
        raise TypeError(f"labels must be an integer tensor, got dtype {labels.dtype}")
    if labels.shape != (images.shape[0],):
        raise ValueError(f"labels must have shape ({images.shape[0]},) like images, got {tuple(labels.shape)}")
    if bool((labels < 0).any()) or bool((labels >= n_classes).any()):
        raise ValueError(f"labels must lie in 0..{n_classes - 1}")
    labels = labels.to(device=images.device, dtype=torch.long)
    model = ConvClassifier(n_classes=n_classes, image_size=images.shape[-1], channels=images.shape[1],
                           feature_dim=feature_dim, width=width, seed=seed).to(images.device)
    n = images.shape[0]

    def loss_fn(m, step, gen):
        idx = torch.randint(0, n, (batch_size,), generator=gen, device=images.device)
        xb = images[idx]
        if shift > 0:
            xb = shift_images(xb, shift, kind=shift_kind, seed=gen)
        return F.cross_entropy(m(xb), labels[idx])

    _fit(model, loss_fn, steps=steps, lr=lr, seed=seed, ema=ema, progress=progress, desc="conv classifier",
         checkpoint=checkpoint)
    model.config.update(steps=steps, batch_size=batch_size, lr=lr, shift=shift, shift_kind=shift_kind, ema=ema)
    return model


def accuracy(classifier: ConvClassifier, images, labels, *, batch_size: int = 1000) -> float:
    """Fraction of ``images`` that ``classifier`` labels as ``labels`` (in batches, without gradients)."""
    images = check_images(images, "images")
    if not isinstance(labels, torch.Tensor) or labels.shape != (images.shape[0],):
        raise ValueError(f"labels must be a tensor of shape ({images.shape[0]},)")
    with torch.no_grad():
        pred = torch.cat([classifier(b).argmax(1) for b in images.split(check_int(batch_size, "batch_size"))])
    return float((pred == labels.to(pred.device)).double().mean())


# ------------------------------------------------------------------------------------- files
_KINDS = {"conv-autoencoder": ConvAutoencoder, "conv-classifier": ConvClassifier}


def save_model(model, path):
    """Write a trained :class:`ConvAutoencoder` / :class:`ConvClassifier` with its ``config`` through
    :func:`lsbcore.train.save_checkpoint` (sha256 digest); :func:`load_model` rebuilds it."""
    what = {ConvAutoencoder: "conv-autoencoder", ConvClassifier: "conv-classifier"}.get(type(model))
    if what is None:
        raise TypeError(f"model must be a ConvAutoencoder or ConvClassifier, got {type(model).__name__}")
    return save_checkpoint({"what": what, "config": dict(model.config), "model": model.state_dict()}, path)


def load_model(path, *, map_location="cpu"):
    """Read a file written by :func:`save_model` (digest checked, ``weights_only``); the model is in eval mode."""
    state = load_checkpoint(path, map_location=map_location)
    cls = _KINDS.get(state.get("what"))
    if cls is None or not isinstance(state.get("config"), dict) or "model" not in state:
        raise ValueError(f"{path} is not a file written by lsbcore.conv.save_model")
    cfg = state["config"]
    try:
        if cls is ConvAutoencoder:
            model = ConvAutoencoder(cfg["latent_dim"], **{k: cfg[k] for k in ("image_size", "channels", "width", "seed")})
        else:
            model = ConvClassifier(**{k: cfg[k] for k in ("n_classes", "image_size", "channels", "feature_dim",
                                                          "width", "seed")})
    except KeyError as err:
        raise ValueError(f"{path} has no {err} in its config") from None
    model.load_state_dict(state["model"])
    model.config = dict(cfg)
    return model.eval()
