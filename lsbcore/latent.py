"""The latent Schrödinger bridge pipeline on real digits (Notebook 03; the rate experiment is Notebook 04).

    digits ─► shift (pre-training distribution p̃) ─► encoder E / decoder D
    target digits ─► E ─► latent codes p̂ ─► latent bridge ─► sampler ─► D ─► generated digits ─► metrics

Data: scikit-learn's 8×8 digits (1,797 images, no download), pixels scaled to [0, 1], flattened to 64.
They are split once, with a fixed permutation, into three disjoint parts:

* ``"pretrain"`` (700 images): seen only through the shift ``shift_digits`` by the autoencoder;
* ``"target"`` (700 images): the clean digits whose distribution p the bridge learns;
* ``"test"`` (397 images): held out, used only for evaluation (W2, Fréchet digits distance).

Shipped checkpoints live in ``data/`` with sha256 sums in ``data/MANIFEST.json``; ``load_checkpoint``
verifies the sum before ``torch.load(..., weights_only=True)`` and ``python -m lsbcore rebuild-data``
rebuilds every file deterministically (same bytes on the same machine and torch version).
"""
from __future__ import annotations

import functools
import hashlib
import json
import math
from pathlib import Path
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .bridge import Bridge
from .nets import DigitsClassifier, DigitsDecoder, DigitsEncoder
from .train import fit
from .train import load_checkpoint as read_checkpoint
from .utils import ChecksumError, Seed, check_int, check_points, check_positive, check_time, generator

DATA_DIR = Path(__file__).resolve().parents[1] / "data"
MANIFEST_NAME = "MANIFEST.json"
SPLITS = {"pretrain": (0, 700), "target": (700, 1400), "test": (1400, 1797)}
SHIFT_KINDS = ("translate", "blur", "noise")
IMAGE_SIDE = 8
PIXELS = IMAGE_SIDE * IMAGE_SIDE


def load_digits(split: str = "target", *, classes: Optional[Sequence[int]] = None, device=None,
                dtype: torch.dtype = torch.float32):
    """The sklearn 8×8 digits of one split as ``(x, y)``: x is ``(n, 64)`` in [0, 1], y the labels.

    ``split`` is ``"pretrain"``, ``"target"``, ``"test"`` or ``"all"``; the split is a fixed random
    permutation (seed 0), so every notebook sees the same images. ``classes`` keeps only those digits
    (a pre-training set "on other classes" is one kind of distribution shift). Notebook 03 §Data.
    """
    if split not in (*SPLITS, "all"):
        raise ValueError(f"split must be one of {[*SPLITS, 'all']}, got {split!r}")
    x, y = _all_digits()
    if split != "all":
        lo, hi = SPLITS[split]
        x, y = x[lo:hi], y[lo:hi]
    if classes is not None:
        cls = torch.as_tensor(list(classes), dtype=torch.long)
        if cls.numel() == 0 or bool(((cls < 0) | (cls > 9)).any()):
            raise ValueError(f"classes must be a non-empty subset of 0..9, got {list(classes)}")
        keep = torch.isin(y, cls)
        x, y = x[keep], y[keep]
    return x.to(device=device, dtype=dtype, copy=True), y.to(device=device, copy=True)


@functools.lru_cache(maxsize=1)
def _all_digits():
    """All 1,797 digits in the fixed split order (cached: sklearn parses its CSV on every call)."""
    from sklearn.datasets import load_digits as _sk_load

    data = _sk_load()
    x = torch.as_tensor(data.data, dtype=torch.float64) / 16.0
    y = torch.as_tensor(data.target, dtype=torch.long)
    perm = torch.randperm(x.shape[0], generator=generator(0))
    return x[perm], y[perm]


def _gaussian_blur(img: torch.Tensor, widths: torch.Tensor) -> torch.Tensor:
    """Blur each image ``(n, 1, 8, 8)`` with its own Gaussian width (pixels), zero padding, 5×5 kernel."""
    r = torch.arange(-2, 3, device=img.device, dtype=img.dtype)
    w = widths.clamp_min(1e-3)[:, None]
    k1 = torch.exp(-0.5 * (r[None, :] / w) ** 2)
    k1 = k1 / k1.sum(1, keepdim=True)                                   # (n, 5)
    k2 = k1[:, :, None] * k1[:, None, :]                                # (n, 5, 5) separable kernel
    out = F.conv2d(img.transpose(0, 1), k2[:, None], padding=2, groups=img.shape[0])
    return out.transpose(0, 1)


def shift_digits(x: torch.Tensor, strength: float, *, kind: str = "translate", seed: Seed = 0) -> torch.Tensor:
    """Apply a random corruption to each digit: the pre-training distribution p̃ = T#p of Notebook 03 §Shift.

    ``kind`` and what ``strength`` means:

    * ``"translate"``: move each image by a uniform random offset in [−strength, strength]² pixels
      (bilinear resampling, zero outside);
    * ``"blur"``: Gaussian blur with a width drawn uniformly in [0, strength] pixels;
    * ``"noise"``: add N(0, strength²) pixel noise, then clip to [0, 1].

    ``strength = 0`` returns ``x`` unchanged (no shift: p̃ = p). Returns a tensor like ``x``.
    """
    x = check_points(x, "x", dim=PIXELS)
    strength = check_positive(strength, "strength", allow_zero=True)
    if kind not in SHIFT_KINDS:
        raise ValueError(f"kind must be one of {SHIFT_KINDS}, got {kind!r}")
    if strength == 0:
        return x.clone()
    g = generator(seed, x.device)
    n = x.shape[0]
    img = x.reshape(n, 1, IMAGE_SIDE, IMAGE_SIDE)
    if kind == "translate":
        off = (torch.rand(n, 2, generator=g, device=x.device, dtype=x.dtype) * 2 - 1) * strength
        theta = torch.zeros(n, 2, 3, device=x.device, dtype=x.dtype)
        theta[:, 0, 0] = theta[:, 1, 1] = 1.0
        theta[:, :, 2] = -off * (2.0 / IMAGE_SIDE)                      # normalised coordinates
        grid = F.affine_grid(theta, list(img.shape), align_corners=False)
        out = F.grid_sample(img, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    elif kind == "blur":
        widths = torch.rand(n, generator=g, device=x.device, dtype=x.dtype) * strength
        out = _gaussian_blur(img, widths)
    else:
        out = (img + strength * torch.randn(img.shape, generator=g, device=x.device, dtype=x.dtype)).clamp(0, 1)
    return out.reshape(n, PIXELS)


# ---------------------------------------------------------------------------------- networks
class Autoencoder(nn.Module):
    """Encoder E and decoder D with a *standardised* latent space (Notebook 03 §Encoder–decoder).

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
        self.encoder = DigitsEncoder(latent_dim * (2 if kind == "vae" else 1), hidden, seed=seed)
        self.decoder = DigitsDecoder(latent_dim, hidden, seed=seed + 1)
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

    def loss(self, x: torch.Tensor, g: torch.Generator, beta: float = 1.0, tau: float = 0.1) -> torch.Tensor:
        """AE: mean squared pixel error. VAE: ‖x − D(z)‖²/(2τ²) + β KL(q(z|x) ‖ N(0, I)), per image / 64."""
        h = self.encoder(x)
        if self.kind == "ae":
            return ((self.decoder(h) - x) ** 2).mean()
        mu, logvar = h[:, : self.latent_dim], h[:, self.latent_dim:].clamp(-10, 5)
        z = mu + torch.exp(0.5 * logvar) * torch.randn(mu.shape, generator=g, device=x.device, dtype=x.dtype)
        rec = ((self.decoder(z) - x) ** 2).sum(1) / (2 * tau**2)
        kl = 0.5 * (mu**2 + logvar.exp() - 1 - logvar).sum(1)
        return (rec + beta * kl).mean() / PIXELS


# ------------------------------------------------------------------------------------- training
def _train(model: nn.Module, batch_loss, *, steps, lr, seed, progress, desc, checkpoint):
    """The shared loop (lsbcore.train.fit); the returned model carries the EMA weights."""
    hist = fit(model, lambda m, step, g: batch_loss(g), steps, lr=lr, seed=seed, ema=0.995,
               checkpoint=checkpoint, progress=progress, desc=desc, log_every=250)
    model.load_state_dict(hist.ema.state_dict())
    model.eval()
    return torch.tensor(hist.losses)


def pretrain_autoencoder(latent_dim: int = 8, *, kind: str = "ae", shift: float = 1.0, shift_kind: str = "translate",
                         classes: Optional[Sequence[int]] = None, steps: int = 3000, batch_size: int = 128,
                         lr: float = 2e-3, beta: float = 1.0, hidden: int = 128, seed: int = 0,
                         device=None, progress: bool = True, checkpoint=None) -> Autoencoder:
    """Pre-train an autoencoder (or VAE) on the *shifted* pre-training split (Notebook 03 §Pre-training).

    Every minibatch draws images of the ``"pretrain"`` split (optionally only ``classes``) and applies
    a fresh random ``shift_digits(·, shift, kind=shift_kind)``, so the encoder learns p̃ = T#p, not the
    target p. Training runs in the shared loop ``lsbcore.train.fit`` (progress bar, EMA weights; with
    ``checkpoint=`` a file path, it checkpoints and resumes). Afterwards the latent standardisation (m, s) is set from the codes of the shifted set.
    Same arguments and seed → the same weights (on CPU). Returns the model in eval mode; its training
    configuration is in ``model.config`` and its loss history in ``model.history``.
    """
    latent_dim = check_int(latent_dim, "latent_dim")
    steps, batch_size = check_int(steps, "steps"), check_int(batch_size, "batch_size")
    lr, beta = check_positive(lr, "lr"), check_positive(beta, "beta")
    shift = check_positive(shift, "shift", allow_zero=True)
    if shift_kind not in SHIFT_KINDS:
        raise ValueError(f"shift_kind must be one of {SHIFT_KINDS}, got {shift_kind!r}")
    dev = torch.device(device) if device is not None else torch.device("cpu")
    x, _ = load_digits("pretrain", classes=classes, device=dev)
    model = Autoencoder(latent_dim, kind=kind, hidden=hidden, seed=seed).to(dev)

    def batch_loss(g):
        idx = torch.randint(0, x.shape[0], (batch_size,), generator=g, device=dev)
        xb = shift_digits(x[idx], shift, kind=shift_kind, seed=g)
        return model.loss(xb, g, beta=beta)

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


def train_classifier(*, steps: int = 2000, batch_size: int = 128, lr: float = 2e-3, seed: int = 0,
                     device=None, progress: bool = True, checkpoint=None) -> DigitsClassifier:
    """Train the digits classifier on the clean ``"pretrain"`` + ``"target"`` splits (Notebook 03 §Metrics).

    Light random translations (±0.5 px) make its features less brittle. The ``"test"`` split stays
    unseen; ``classifier_accuracy`` reports accuracy on it.
    """
    steps, batch_size = check_int(steps, "steps"), check_int(batch_size, "batch_size")
    dev = torch.device(device) if device is not None else torch.device("cpu")
    xa, ya = load_digits("pretrain", device=dev)
    xb, yb = load_digits("target", device=dev)
    x, y = torch.cat([xa, xb]), torch.cat([ya, yb])
    model = DigitsClassifier(seed=seed).to(dev)

    def batch_loss(g):
        idx = torch.randint(0, x.shape[0], (batch_size,), generator=g, device=dev)
        return F.cross_entropy(model(shift_digits(x[idx], 0.5, seed=g)), y[idx])

    hist = _train(model, batch_loss, steps=steps, lr=check_positive(lr, "lr"), seed=seed, progress=progress,
                  desc="classifier", checkpoint=checkpoint)
    model.config = dict(steps=steps, batch_size=batch_size, lr=lr, seed=seed)
    model.history = hist
    return model


def classifier_accuracy(classifier: DigitsClassifier, split: str = "test") -> float:
    """Fraction of the held-out digits of ``split`` that ``classifier`` labels correctly (Notebook 03 §2)."""
    x, y = load_digits(split, device=next(classifier.parameters()).device)
    with torch.no_grad():
        return float((classifier(x).argmax(1) == y).float().mean())


# ------------------------------------------------------------------------- checkpoints & manifest
def sha256_file(path) -> str:
    """Hex sha256 of a file's bytes (the sums of data/MANIFEST.json; Notebook 03 §2)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 16), b""):
            h.update(block)
    return h.hexdigest()


def write_manifest(data_dir=DATA_DIR) -> dict:
    """Record the sha256 of every ``*.pt`` file of ``data_dir`` in ``data_dir/MANIFEST.json`` (Notebook 03 §2)."""
    data_dir = Path(data_dir)
    sums = {p.name: sha256_file(p) for p in sorted(data_dir.glob("*.pt"))}
    (data_dir / MANIFEST_NAME).write_text(json.dumps(sums, indent=2, sort_keys=True) + "\n")
    return sums


def verify_file(path, data_dir=None) -> Path:
    """Check ``path`` against the manifest of its directory (or ``data_dir``); raise ChecksumError if not.

    Notebook 03 §2 (shipped checkpoints).
    """
    path = Path(path)
    data_dir = Path(data_dir) if data_dir is not None else path.parent
    manifest = data_dir / MANIFEST_NAME
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist; rebuild it with `python -m lsbcore rebuild-data`")
    if not manifest.is_file():
        raise ChecksumError(f"no {MANIFEST_NAME} in {data_dir}: cannot verify {path.name}")
    sums = json.loads(manifest.read_text())
    if path.name not in sums:
        raise ChecksumError(f"{path.name} is not listed in {manifest}")
    actual = sha256_file(path)
    if actual != sums[path.name]:
        raise ChecksumError(
            f"{path} is corrupt or was modified: sha256 {actual[:12]}… but {MANIFEST_NAME} says "
            f"{sums[path.name][:12]}…; restore it from git or rebuild with `python -m lsbcore rebuild-data`")
    return path


def save_checkpoint(model: nn.Module, path, *, what: str) -> Path:
    """Save ``{"what", "config", "state"}`` (plain dicts of tensors, ints, floats, strings); Notebook 03 §2."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    torch.save({"what": what, "config": dict(model.config), "state": state}, path)
    return path


def load_checkpoint(name_or_path, *, data_dir=DATA_DIR, verify: bool = True, device=None) -> nn.Module:
    """Load a shipped autoencoder or classifier (Notebook 03 §Shipped checkpoints).

    ``name_or_path`` is a file name in ``data_dir`` (e.g. ``"ae_d8.pt"``) or a path. With ``verify``
    (the default) the file's sha256 must match the manifest, else ``ChecksumError``; then it is read
    with ``torch.load(..., weights_only=True)``, which never runs code from the file.
    """
    path = Path(name_or_path)
    if not path.is_absolute() and not path.exists():
        path = Path(data_dir) / path
    if verify:
        verify_file(path, Path(data_dir) if path.parent == Path(data_dir) else None)
    try:
        ckpt = read_checkpoint(path)  # torch.load(..., weights_only=True), errors as ValueError
    except ValueError as e:  # truncated, not a torch file, or not a dict
        raise ChecksumError(f"{path} could not be read as a checkpoint: {e}") from None
    if "what" not in ckpt:
        raise ChecksumError(f"{path} is not an lsbcore checkpoint")
    cfg = ckpt["config"]
    if ckpt["what"] == "autoencoder":
        model = Autoencoder(cfg["latent_dim"], kind=cfg["kind"], hidden=cfg["hidden"])
    elif ckpt["what"] == "classifier":
        model = DigitsClassifier()
    else:
        raise ChecksumError(f"{path} holds an unknown kind of checkpoint {ckpt['what']!r}")
    model.load_state_dict(ckpt["state"])
    model.config = cfg
    model.eval()
    return model.to(device) if device is not None else model


def shipped_autoencoder(latent_dim: int = 8, *, kind: str = "ae", shift: float = 1.0, data_dir=DATA_DIR,
                        device=None) -> Autoencoder:
    """The shipped autoencoder for this d*, kind and translation shift (see ``SHIPPED``; Notebook 03 §2)."""
    name = checkpoint_name(latent_dim, kind=kind, shift=shift)
    if name not in SHIPPED:
        raise ValueError(f"no shipped checkpoint for latent_dim={latent_dim}, kind={kind!r}, shift={shift}; "
                         f"shipped: {sorted(SHIPPED)}")
    return load_checkpoint(name, data_dir=data_dir, device=device)


def shipped_classifier(*, data_dir=DATA_DIR, device=None) -> DigitsClassifier:
    """The shipped digits classifier of the Fréchet digits distance (Notebook 03 §2)."""
    return load_checkpoint("classifier.pt", data_dir=data_dir, device=device)


def checkpoint_name(latent_dim: int, *, kind: str = "ae", shift: float = 1.0) -> str:
    """File name of a shipped autoencoder, e.g. ``ae_d8_shift1.pt`` (Notebook 03 §2)."""
    return f"{kind}_d{latent_dim}_shift{shift:g}.pt"


#: every shipped autoencoder: name → keyword arguments of ``pretrain_autoencoder``
SHIPPED = {checkpoint_name(d): dict(latent_dim=d) for d in (2, 4, 8, 16)}
SHIPPED.update({checkpoint_name(8, shift=s): dict(latent_dim=8, shift=s) for s in (0.0, 2.0)})
SHIPPED.update({checkpoint_name(d, kind="vae"): dict(latent_dim=d, kind="vae") for d in (2, 8)})


def rebuild_data(data_dir=DATA_DIR, *, steps: Optional[int] = None, names: Optional[Sequence[str]] = None,
                 progress: bool = True) -> dict:
    """Retrain every shipped checkpoint on CPU from fixed seeds, save it and rewrite the manifest.

    ``steps`` overrides the training length (tests use a tiny value); ``names`` restricts to some files.
    Returns the manifest. Run as ``python -m lsbcore rebuild-data`` (data/README.md; Notebook 03 §2).
    """
    data_dir = Path(data_dir)
    todo = list(names) if names is not None else [*SHIPPED, "classifier.pt"]
    for name in todo:
        if name != "classifier.pt" and name not in SHIPPED:
            raise ValueError(f"unknown shipped file {name!r}; known: {[*SHIPPED, 'classifier.pt']}")
    extra = {} if steps is None else {"steps": check_int(steps, "steps")}
    data_dir.mkdir(parents=True, exist_ok=True)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one thread: the same reduction order (so the same bytes) on any machine
    try:
        for name in todo:
            if name == "classifier.pt":
                model = train_classifier(progress=progress, **extra)
                save_checkpoint(model, data_dir / name, what="classifier")
            else:
                model = pretrain_autoencoder(progress=progress, **SHIPPED[name], **extra)
                save_checkpoint(model, data_dir / name, what="autoencoder")
    finally:
        torch.set_num_threads(threads)
    return write_manifest(data_dir)


# ------------------------------------------------------------------------------ pixel space
class PixelSpace(nn.Module):
    """The identity "autoencoder" of the pixel-space baseline: the same bridges, run on 64-D pixels.

    ``encode(x) = (x − m) / s`` with m the mean image and s one global scale (the root mean pixel
    variance) of the target split, so that the codes have average unit variance per coordinate like
    the standardised latent codes and σ means the same thing; ``decode`` inverts it and clips to
    [0, 1]. Notebook 03 §"Pixel-space baseline".
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


# ------------------------------------------------------------------------------- latent bridges
def _drift_args(x, t, points, sigma):
    x = check_points(x, "x")
    points = check_points(points, "points", dim=x.shape[1])
    if x.device != points.device:
        raise ValueError(f"x is on {x.device} but points are on {points.device}")
    if isinstance(t, (int, float)) and not isinstance(t, bool):
        t = torch.tensor(float(t), dtype=x.dtype, device=x.device)  # no float32 round trip
    t = check_time(t, "t", batch=x.shape[0], like=x)
    return x, t, points.to(x.dtype), check_positive(sigma, "sigma")


def heat_flow_drift(x, t, points, sigma: float = 1.0, *, t_gap: float = 1e-4) -> torch.Tensor:
    """Exact drift of the reverse heat flow from p̂ ∗ N(0, σ²I) to p̂ = (1/n) Σ δ_{z_i} (Notebook 03 §Theory).

    ``b(z, t) = σ² ∇ log (p̂ ∗ N(0, σ²(1−t) I))(z) = Σ_i w_i (z_i − z)/(1 − t)``,
    ``w_i ∝ exp(−‖z − z_i‖² / (2σ²(1−t)))``: the posterior mean of the clean code given the noisy one,
    minus z, over the remaining time. It is also the minimiser of the regression loss of
    ``fit_heat_flow``. 1 − t is clamped at ``t_gap`` (the drift is singular at t = 1: stop at 1 − δ).
    """
    x, t, points, sigma = _drift_args(x, t, points, sigma)
    return _heat_drift(x, t, points, sigma, check_positive(t_gap, "t_gap"))


def _heat_drift(x, t, points, sigma, t_gap):
    gap = (1 - t).clamp(min=t_gap)
    logits = (x @ points.T - 0.5 * (points * points).sum(-1)) / (sigma**2 * gap)  # −‖x − z_i‖²/(2σ²(1−t)) + const
    return (torch.softmax(logits, dim=1) @ points - x) / gap


def smoothed_follmer_drift(x, t, points, sigma: float = 1.0) -> torch.Tensor:
    """Exact Schrödinger–Föllmer drift from δ0 to the smoothed target p̂ ∗ N(0, σ²I) (Notebook 03 §Theory).

    With X1 = z_i + σ ε the path is X_t = t z_i + σ W_t, so X_t | i ~ N(t z_i, σ² t I) and
    E[X1 | X_t = x, i] = x + (1 − t) z_i; hence

        b(x, t) = E[(X1 − X_t)/(1 − t) | X_t = x] = Σ_i w_i z_i,   w_i ∝ exp((x·z_i − t‖z_i‖²/2)/σ²),

    finite on all of [0, 1] (no division by 1 − t): the first stage of the two-stage latent sampler.
    """
    x, t, points, sigma = _drift_args(x, t, points, sigma)
    return _smoothed_follmer(x, t, points, sigma)


def _smoothed_follmer(x, t, points, sigma):
    logits = (x @ points.T - 0.5 * t * (points * points).sum(-1)) / sigma**2
    return torch.softmax(logits, dim=1) @ points


class SmoothedFollmer(Bridge):
    """SF bridge δ0 → p̂ ∗ N(0, σ²I) with the exact drift :func:`smoothed_follmer_drift`."""

    def __init__(self, points, sigma: float = 1.0):
        self.points = check_points(points, "points")
        self.sigma = check_positive(sigma, "sigma")
        self.dim = self.points.shape[1]

    def drift(self, x, t):
        return _smoothed_follmer(x, t, self.points.to(x), self.sigma)


class HeatFlowBridge(Bridge):
    """Reverse heat flow from μ0 = p̂ ∗ N(0, σ²I) to p̂ (Notebook 03 §Theory, *reconstructed*).

    ``drift`` is the exact empirical drift :func:`heat_flow_drift`, or a network ``net(z, t)``
    fitted by :func:`fit_heat_flow`. Read forward in time the heat flow is pure Brownian motion,
    so ``backward_drift`` is 0 and the probability-flow velocity is ½ drift.
    ``start(n, how=...)`` draws the initial codes:

    * ``"follmer"``: a first SF stage δ0 → p̂ ∗ N(0, σ²I) simulated with ``follmer_steps`` steps;
    * ``"gaussian"``: the Gaussian approximation N(mean(p̂), cov(p̂) + σ² I) (good for large σ);
    * ``"exact"``: z_i + σ ε with z_i drawn from p̂ (possible because p̂ is a finite sample).
    """

    STARTS = ("follmer", "gaussian", "exact")

    def __init__(self, points, sigma: float = 1.0, *, net: Optional[nn.Module] = None, t_gap: float = 1e-4):
        self.points = check_points(points, "points")
        self.sigma = check_positive(sigma, "sigma")
        self.t_gap = check_positive(t_gap, "t_gap")
        self.net = net
        self.dim = self.points.shape[1]

    def drift(self, x, t):
        if self.net is not None:
            with torch.no_grad():
                return self.net(x, t)
        t = t if isinstance(t, torch.Tensor) else torch.as_tensor(t, dtype=x.dtype, device=x.device)
        return _heat_drift(x, t, self.points.to(x), self.sigma, self.t_gap)

    def backward_drift(self, x, t):
        return torch.zeros_like(x)

    def start(self, n: int, *, how: str = "follmer", seed: Seed = 0, follmer_steps: int = 50) -> torch.Tensor:
        """``n`` draws of (an approximation of) μ0 = p̂ ∗ N(0, σ²I); see the class docstring."""
        from .sde import sample as sde_sample

        n = check_int(n, "n")
        if how not in self.STARTS:
            raise ValueError(f"how must be one of {self.STARTS}, got {how!r}")
        pts = self.points
        g = generator(seed, pts.device)
        if how == "follmer":
            x0 = torch.zeros(n, self.dim, device=pts.device, dtype=pts.dtype)
            return sde_sample(SmoothedFollmer(pts, self.sigma), x0, steps=check_int(follmer_steps, "follmer_steps"),
                              seed=g).x
        eps = torch.randn(n, self.dim, generator=g, device=pts.device, dtype=pts.dtype)
        if how == "exact":
            idx = torch.randint(0, pts.shape[0], (n,), generator=g, device=pts.device)
            return pts[idx] + self.sigma * eps
        cov = torch.atleast_2d(torch.cov(pts.T)) + self.sigma**2 * torch.eye(self.dim, device=pts.device, dtype=pts.dtype)
        return pts.mean(0) + eps @ torch.linalg.cholesky(cov).T


def fit_heat_flow(points, sigma: float = 1.0, *, delta: float = 0.01, steps: int = 2000, batch_size: int = 256,
                  net: Optional[nn.Module] = None, lr: float = 2e-3, seed: int = 0, progress: bool = True,
                  checkpoint=None) -> HeatFlowBridge:
    """Learn the reverse-heat-flow drift by regression (Notebook 03 §Theory, *reconstructed*).

    Minimises ``E ‖b(z1 + σ√(1−t) ε, t) + σ ε/√(1−t)‖²`` over t ~ U[0, 1 − δ], z1 ~ p̂, ε ~ N(0, I)
    with the shared ``matching_loss`` and training loop; the target −σε/√(1−t) equals
    (z1 − z_t)/(1 − t), so the minimiser is :func:`heat_flow_drift`. ``net`` defaults to a TimeMLP.
    """
    from .bridges.matching import matching_loss
    from .nets import TimeMLP

    points = check_points(points, "points")
    sigma, delta = check_positive(sigma, "sigma"), check_positive(delta, "delta")
    if delta >= 1:
        raise ValueError(f"delta must be < 1, got {delta}")
    batch_size = check_int(batch_size, "batch_size")
    net = net if net is not None else TimeMLP(points.shape[1], width=128, depth=3, seed=seed).to(points.device)

    def loss_fn(model, step, g):
        idx = torch.randint(0, points.shape[0], (batch_size,), generator=g, device=points.device)
        t = torch.rand(batch_size, 1, generator=g, device=points.device, dtype=points.dtype) * (1 - delta)
        eps = torch.randn(batch_size, points.shape[1], generator=g, device=points.device, dtype=points.dtype)
        z_t = points[idx] + sigma * torch.sqrt(1 - t) * eps
        return matching_loss(model, z_t, t, -sigma * eps / torch.sqrt(1 - t))

    hist = fit(net, loss_fn, check_int(steps, "steps"), lr=check_positive(lr, "lr"), seed=seed, ema=0.995,
               progress=progress, checkpoint=checkpoint, desc="heat-flow drift")
    bridge = HeatFlowBridge(points, sigma, net=hist.ema.eval())
    bridge.history = hist.losses
    return bridge


#: the generators compared in Notebooks 03 and 04 (all but "random" are Schrödinger bridges)
METHODS = ("heat-follmer", "heat-gaussian", "heat-learned", "follmer", "imf", "random")


def sample_codes(method: str, points, n: int, *, sigma: float = 1.0, delta: float = 0.01, steps: int = 100,
                 seed: Seed = 0, keep_traj: bool = False, train_steps: int = 1500, progress: bool = False):
    """Draw ``n`` codes from a bridge to the empirical code distribution p̂ = ``points`` (Notebook 03 §Sampling).

    ``method``:

    * ``"heat-follmer"`` / ``"heat-gaussian"``: the reverse heat flow p̂ ∗ N(0, σ²I) → p̂ (exact
      drift), started by a first Föllmer stage or by the Gaussian approximation *(reconstructed)*;
    * ``"heat-learned"``: the same with a drift network fitted in ``train_steps`` steps;
    * ``"follmer"``: the Schrödinger–Föllmer bridge δ0 → p̂ (exact empirical drift);
    * ``"imf"``: the SB from N(0, I) to p̂ by bridge matching with minibatch-Sinkhorn couplings
      followed by one IMF refinement (learned, ``train_steps`` steps per fit);
    * ``"random"``: codes drawn from N(0, I) — the "decode random latents" baseline, no bridge.

    Every bridge is run with the shared Euler–Maruyama sampler ``lsbcore.sde.sample`` on
    [0, 1 − δ] (early stopping δ) with ``steps`` steps. Returns a ``SampleResult`` (``.x`` the codes,
    ``.traj`` the path if ``keep_traj``). Same seed → same codes.
    """
    from .bridges.follmer import EmpiricalFollmer
    from .sde import SampleResult, sample as sde_sample

    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    points = check_points(points, "points")
    n, steps = check_int(n, "n"), check_int(steps, "steps")
    sigma = check_positive(sigma, "sigma")
    delta = check_positive(delta, "delta")
    if delta >= 1:
        raise ValueError(f"delta must be in (0, 1), got {delta}")
    base = seed if isinstance(seed, int) else int(torch.randint(0, 2**31, (1,), generator=seed))
    g = generator(base, points.device)
    d = points.shape[1]
    if method == "random":
        x = torch.randn(n, d, generator=g, device=points.device, dtype=points.dtype)
        return SampleResult(x=x, traj=x[None] if keep_traj else None, times=torch.zeros(1), nfe=0)
    if method.startswith("heat"):
        bridge = (fit_heat_flow(points, sigma, delta=delta, steps=train_steps, seed=base, progress=progress)
                  if method == "heat-learned" else HeatFlowBridge(points, sigma))
        x0 = bridge.start(n, how="gaussian" if method == "heat-gaussian" else "follmer", seed=g)
    elif method == "follmer":
        bridge = EmpiricalFollmer(points, sigma)
        x0 = torch.zeros(n, d, device=points.device, dtype=points.dtype)
    else:
        from .bridges.matching import imf

        def noise(m, gen):
            return torch.randn(m, d, generator=gen, device=points.device, dtype=points.dtype)

        bridge = imf(noise, points, sigma, iterations=2, steps=train_steps, coupling="sinkhorn", seed=base,
                     progress=progress, batch_size=256, pool=1024, sample_steps=50,
                     sinkhorn_kwargs=dict(max_iter=200))
        x0 = noise(n, g)
    return sde_sample(bridge, x0, steps=steps, t1=1.0 - delta, seed=g, keep_traj=keep_traj)


# ------------------------------------------------------------------------------------ metrics
def frechet_digits_distance(images, reference, classifier: DigitsClassifier) -> float:
    """Fréchet distance between ``images`` and ``reference`` in the classifier's 32-D feature space.

    Notebook 03 §Metrics. Both are ``(n, 64)`` pixel tensors in [0, 1].
    """
    from .metrics import frechet_distance

    images = check_points(images, "images", dim=PIXELS)
    reference = check_points(reference, "reference", dim=PIXELS)
    with torch.no_grad():
        return frechet_distance(classifier.features(images), classifier.features(reference))


def evaluate_digits(images, classifier: DigitsClassifier, *, reference=None, w2_points: int = 397) -> dict:
    """The digit metrics of Notebooks 03–04 for generated ``images`` against held-out ``reference`` digits.

    Returns a dict: ``fdd`` (Fréchet digits distance), ``w2`` (pixel-space W2 with POT on
    ``w2_points`` images), ``class_hist`` (fraction of images per predicted class), ``confidence``
    (mean max softmax probability) and ``tv_classes`` (total variation between the predicted-class
    histogram and the reference's). ``reference`` defaults to the ``"test"`` split.
    """
    from .metrics import w2

    images = check_points(images, "images", dim=PIXELS)
    if reference is None:
        reference = load_digits("test", device=images.device)[0]
    reference = check_points(reference, "reference", dim=PIXELS)
    m = min(check_int(w2_points, "w2_points", minimum=2), images.shape[0], reference.shape[0])
    with torch.no_grad():
        probs = torch.softmax(classifier(images), 1)
        ref_probs = torch.softmax(classifier(reference), 1)
    hist = torch.bincount(probs.argmax(1), minlength=10).double() / images.shape[0]
    ref_hist = torch.bincount(ref_probs.argmax(1), minlength=10).double() / reference.shape[0]
    return dict(fdd=frechet_digits_distance(images, reference, classifier), w2=w2(images[:m], reference[:m]),
                class_hist=hist, confidence=float(probs.max(1).values.mean()),
                tv_classes=float(0.5 * (hist - ref_hist).abs().sum()))


def interpolate(autoencoder, x_a, x_b, steps: int = 8) -> torch.Tensor:
    """Decode the straight line between the codes of two digits: ``(steps, 64)`` images (Notebook 03)."""
    x_a = check_points(x_a, "x_a", dim=PIXELS)
    x_b = check_points(x_b, "x_b", dim=PIXELS)
    lam = torch.linspace(0, 1, check_int(steps, "steps", minimum=2), dtype=x_a.dtype, device=x_a.device)[:, None]
    with torch.no_grad():
        za, zb = autoencoder.encode(x_a[:1]), autoencoder.encode(x_b[:1])
        return autoencoder.decode((1 - lam) * za + lam * zb)


# ------------------------------------------------------------------------------ the whole pipeline
def generate_digits(autoencoder, method: str = "heat-follmer", n: int = 397, *, n_fit: Optional[int] = None,
                    sigma: float = 1.0, delta: float = 0.01, steps: int = 100, seed: int = 0,
                    train_steps: int = 1500, classifier: Optional[DigitsClassifier] = None,
                    keep_traj: bool = False, progress: bool = False) -> dict:
    """Encode the target digits, run a latent bridge, decode, and (with ``classifier``) evaluate.

    The whole of Notebook 03 in one call: p̂ = codes of the first ``n_fit`` target digits (all 700
    by default; Notebook 04 varies n_fit), ``n`` codes from ``sample_codes(method, ...)``, decoded
    images, and — if a classifier is given — ``evaluate_digits`` against the held-out ``"test"`` split
    plus ``latent_w2``, the W2 between the generated codes and the codes of the test digits.
    ``autoencoder`` may be :class:`PixelSpace` for the pixel-space baseline. Returns a dict with
    ``codes``, ``images``, ``traj`` (if ``keep_traj``), ``points`` (p̂), ``fit_images`` (the digits
    behind p̂), ``seconds`` and the metrics.
    """
    import time

    from .metrics import w2

    dev = next(iter(autoencoder.buffers())).device
    x, _ = load_digits("target", device=dev)
    if n_fit is not None:
        n_fit = check_int(n_fit, "n_fit", minimum=2)
        if n_fit > x.shape[0]:
            raise ValueError(f"n_fit must be ≤ {x.shape[0]} (the target split), got {n_fit}")
        x = x[torch.randperm(x.shape[0], generator=generator(seed)).to(dev)[:n_fit]]
    tic = time.perf_counter()
    with torch.no_grad():
        points = autoencoder.encode(x)
    res = sample_codes(method, points, n, sigma=sigma, delta=delta, steps=steps, seed=seed, keep_traj=keep_traj,
                       train_steps=train_steps, progress=progress)
    with torch.no_grad():
        images = autoencoder.decode(res.x)
    out = dict(method=method, kind=getattr(autoencoder, "kind", "?"), latent_dim=points.shape[1], n_fit=x.shape[0],
               codes=res.x, images=images, traj=res.traj, points=points, fit_images=x,
               seconds=time.perf_counter() - tic)
    if classifier is not None:
        test, _ = load_digits("test", device=dev)
        out.update(evaluate_digits(images, classifier, reference=test))
        with torch.no_grad():
            out["latent_w2"] = w2(res.x[: test.shape[0]], autoencoder.encode(test))
    return out


def real_digits_floor(classifier: DigitsClassifier, autoencoder=None, n: int = 397) -> dict:
    """The noise floor of the metrics: real ``"target"`` digits scored against the ``"test"`` digits.

    A generator cannot be expected to beat fresh real digits at the same sample size ``n``.
    With ``autoencoder`` also the floor of its latent W2 and of its reconstructions (the pre-training
    error). Notebook 03 §Metrics.
    """
    from .metrics import w2

    dev = next(classifier.parameters()).device
    x, _ = load_digits("target", device=dev)
    x = x[: check_int(n, "n", minimum=2)]
    test, _ = load_digits("test", device=dev)
    out = evaluate_digits(x, classifier, reference=test)
    if autoencoder is not None:
        with torch.no_grad():
            out["latent_w2"] = w2(autoencoder.encode(x), autoencoder.encode(test))
            rec = autoencoder.decode(autoencoder.encode(x))
        rec_metrics = evaluate_digits(rec, classifier, reference=test)
        out["reconstruction_fdd"], out["reconstruction_w2"] = rec_metrics["fdd"], rec_metrics["w2"]
    return out


# ------------------------------------------------------------------------------------ plotting
def plot_digits(images, ax=None, *, ncols: int = 10, title: str = "digits"):
    """Tile ``(n, 64)`` images into one grey picture on ``ax`` (created if None); returns the axes."""
    import matplotlib.pyplot as plt

    images = check_points(images, "images", dim=PIXELS).detach().cpu()
    ncols = check_int(ncols, "ncols")
    n = images.shape[0]
    nrows = math.ceil(n / ncols)
    canvas = torch.ones(nrows * 9 - 1, ncols * 9 - 1)
    for k in range(n):
        r, c = divmod(k, ncols)
        canvas[r * 9: r * 9 + 8, c * 9: c * 9 + 8] = 1 - images[k].reshape(8, 8)
    if ax is None:
        _, ax = plt.subplots(figsize=(ncols * 0.45, nrows * 0.45 + 0.4), constrained_layout=True)
    ax.imshow(canvas.numpy(), cmap="gray", vmin=0, vmax=1)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlabel(f"{n} images, 8×8 pixels")
    ax.set_title(title)
    return ax


def plot_latent_paths(points, traj=None, ax=None, *, labels=None, n_paths: int = 30, title: str = "latent codes"):
    """Codes (and sampler paths ``(steps+1, batch, d)``) in 2-D: the first two coordinates if d* = 2,
    else the first two principal axes of ``points``. Returns the axes. Notebook 03 §Widgets."""
    import matplotlib.pyplot as plt

    points = check_points(points, "points").detach().cpu()
    mean = points.mean(0)
    if points.shape[1] == 2:
        proj, names = torch.eye(2), ("$z_1$", "$z_2$")
    else:
        proj, names = torch.linalg.svd(points - mean, full_matrices=False)[2][:2].T, ("PC 1", "PC 2")
        proj = proj.to(points.dtype)
    if ax is None:
        _, ax = plt.subplots(figsize=(4.5, 4.5), constrained_layout=True)
    p2 = (points - mean) @ proj
    c = labels.cpu().numpy() if labels is not None else "0.6"
    sc = ax.scatter(p2[:, 0], p2[:, 1], s=6, c=c, cmap="tab10", alpha=0.5, vmin=-0.5, vmax=9.5)
    if labels is not None:
        ax.figure.colorbar(sc, ax=ax, label="digit class", ticks=range(10))
    if traj is not None:
        tr = (traj[:, :n_paths].detach().cpu() - mean) @ proj
        for k in range(tr.shape[1]):
            ax.plot(tr[:, k, 0], tr[:, k, 1], color="k", lw=0.6, alpha=0.6)
        ax.scatter(tr[-1, :, 0], tr[-1, :, 1], s=14, color="C3", zorder=3, label="samples at t = 1 − δ")
        ax.legend(loc="lower right", fontsize=7)
    ax.set_xlabel(names[0])
    ax.set_ylabel(names[1])
    ax.set_title(title)
    return ax


# ------------------------------------------------------------------------------- rate experiment
def sample_size_sweep(spaces: dict, ns: Sequence[int], seeds: Sequence[int], classifier: DigitsClassifier, *,
                      method: str = "heat-follmer", n_gen: int = 397, sigma: float = 1.0, delta: float = 0.01,
                      steps: int = 50, progress: bool = False) -> list:
    """Error vs the number n of target digits the bridge is fitted to (Notebook 04).

    For every space (name → autoencoder or :class:`PixelSpace`), n in ``ns`` and seed in ``seeds``:
    fit ``method`` to n target digits (a random subset chosen by the seed), generate ``n_gen``
    digits and score them against the held-out test split. Returns one dict per run with keys
    ``space, n, seed, fdd, w2, latent_w2, seconds``.
    """
    rows = []
    todo = [(name, n, s) for name in spaces for n in ns for s in seeds]
    if progress:
        from tqdm.auto import tqdm

        todo = tqdm(todo, desc="n-sweep", leave=False)
    for name, n, s in todo:
        r = generate_digits(spaces[name], method, n_gen, n_fit=n, sigma=sigma, delta=delta, steps=steps, seed=s,
                            classifier=classifier)
        rows.append(dict(space=name, n=n, seed=s, fdd=r["fdd"], w2=r["w2"], latent_w2=r["latent_w2"],
                         seconds=r["seconds"]))
    return rows


def loglog_fit(n, err) -> dict:
    """Least-squares line ``log err = a + b log n`` per seed and pooled (Notebook 04 §Fits).

    ``n`` and ``err`` are ``(seeds, len(ns))`` arrays (one row per seed). Returns the pooled slope
    ``b`` and intercept ``a``, the per-seed slopes, and a 95 % interval for the slope from the spread
    of the per-seed slopes (Student t; wide when there are few seeds — that is the honest answer).
    """
    import numpy as np
    from scipy import stats

    n, err = np.asarray(n, dtype=float), np.asarray(err, dtype=float)
    if n.shape != err.shape or n.ndim != 2 or n.shape[1] < 2:
        raise ValueError(f"n and err must be (seeds, points) arrays with ≥ 2 points, got {n.shape} and {err.shape}")
    if not (np.isfinite(err).all() and (err > 0).all() and (n > 0).all()):
        raise ValueError("n and err must be positive and finite for a log–log fit")
    ln, le = np.log(n), np.log(err)
    per_seed = np.array([np.polyfit(ln[k], le[k], 1)[0] for k in range(n.shape[0])])
    b, a = np.polyfit(ln.ravel(), le.ravel(), 1)
    if n.shape[0] > 1:
        half = stats.t.ppf(0.975, n.shape[0] - 1) * per_seed.std(ddof=1) / math.sqrt(n.shape[0])
    else:
        half = float("nan")
    return dict(slope=float(b), intercept=float(a), per_seed=per_seed, ci=(float(b - half), float(b + half)))
