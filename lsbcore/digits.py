"""The 8×8 digits of Notebooks 03–04: the data, the distribution shift, and the digit metrics.

Data: scikit-learn's 8×8 digits (1,797 images, no download), pixels scaled to [0, 1], flattened to 64.
They are split once, with a fixed permutation, into three disjoint parts:

* ``"pretrain"`` (700 images): seen only through the shift ``shift_digits`` by the autoencoder;
* ``"target"`` (700 images): the clean digits whose distribution p the bridge learns;
* ``"test"`` (397 images): held out, used only for evaluation (W2, Fréchet digits distance).

Metrics (Notebook 03 §4, docs/theory.md §7): the Fréchet digits distance in the feature space of a
small classifier, pixel W2, the class histogram, and the floor that real digits reach at the same
sample size. The encoder–decoder lives in :mod:`lsbcore.autoencoder`, the shipped networks in
:mod:`lsbcore.shipped`, the latent pipeline in :mod:`lsbcore.latent`.
"""
from __future__ import annotations

import functools
import math
from typing import Optional, Sequence

import torch

from .datasets import shift_images
from .metrics import frechet_distance, w2
from .nets import DigitsClassifier
from .utils import Seed, check_int, check_points, check_positive, generator

__all__ = ["SPLITS", "SHIFT_KINDS", "PIXELS", "load_digits", "shift_digits", "classifier_accuracy",
           "frechet_digits_distance", "evaluate_digits", "real_digits_floor", "plot_digits"]

SPLITS = {"pretrain": (0, 700), "target": (700, 1400), "test": (1400, 1797)}
SHIFT_KINDS = ("translate", "blur", "noise")
IMAGE_SIDE = 8
PIXELS = IMAGE_SIDE * IMAGE_SIDE


def load_digits(split: str = "target", *, classes: Optional[Sequence[int]] = None, device=None,
                dtype: torch.dtype = torch.float32):
    """The sklearn 8×8 digits of one split as ``(x, y)``: x is ``(n, 64)`` in [0, 1], y the labels.

    ``split`` is ``"pretrain"``, ``"target"``, ``"test"`` or ``"all"``; the split is a fixed random
    permutation (seed 0), so every notebook sees the same images. ``classes`` keeps only those digits
    (a pre-training set "on other classes" is one kind of distribution shift). Notebook 03 §1 "Data and the distribution shift".
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


def shift_digits(x: torch.Tensor, strength: float, *, kind: str = "translate", seed: Seed = 0) -> torch.Tensor:
    """Apply a random corruption to each digit: the pre-training distribution p̃ = T#p (Notebook 03 §1).

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
    # the same corruption as for any image size: one implementation (lsbcore.datasets.shift_images)
    return shift_images(x.reshape(-1, 1, IMAGE_SIDE, IMAGE_SIDE), strength, kind=kind, seed=seed).reshape(-1, PIXELS)


# ------------------------------------------------------------------------------------ metrics
def classifier_accuracy(classifier: DigitsClassifier, split: str = "test") -> float:
    """Fraction of the held-out digits of ``split`` that ``classifier`` labels correctly (Notebook 03 §2)."""
    x, y = load_digits(split, device=next(classifier.parameters()).device)
    with torch.no_grad():
        return float((classifier(x).argmax(1) == y).float().mean())



def frechet_digits_distance(images, reference, classifier: DigitsClassifier) -> float:
    """Fréchet distance between ``images`` and ``reference`` in the classifier's 32-D feature space.

    Notebook 03 §4, docs/theory.md §7. Both are ``(n, 64)`` pixel tensors in [0, 1].
    """
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


def real_digits_floor(classifier: DigitsClassifier, autoencoder=None, n: int = 397) -> dict:
    """The noise floor of the metrics: real ``"target"`` digits scored against the ``"test"`` digits.

    A generator cannot be expected to beat fresh real digits at the same sample size ``n``.
    With ``autoencoder`` also the floor of its latent W2 and of its reconstructions (the pre-training
    error). Notebook 03 §4, docs/theory.md §7.
    """
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
