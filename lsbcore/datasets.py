"""Image data sets for the latent pipeline: sklearn's 8×8 digits, MNIST and Fashion-MNIST.

    load_images(name, split) ─► images (n, 1, H, W) in [0, 1], labels (n,)

* ``"digits"``: scikit-learn's 1,797 8×8 digits, embedded (no download), split as in
  :mod:`lsbcore.digits`; the default everywhere.
* ``"mnist"``, ``"fashion-mnist"``: 60,000 training and 10,000 test images of 28×28 pixels, read
  from the data sets' own four gzipped IDX files (:mod:`lsbcore.idx`) in ``data_dir``. Each file's
  sha256 is checked against the published sum before it is read; ``download=True`` fetches missing
  files from the usual mirrors (there is no download without a network: place the files in
  ``data_dir`` by hand, e.g. copied from a machine that has one).

:func:`write_fixture` writes a tiny synthetic data set in exactly this on-disk layout, so tests run
the real loading code without a network. :func:`shift_images` is the distribution shift for images
of any size, :func:`frechet_image_distance` the classifier-based Fréchet distance (FID's recipe with
a small classifier of our own, :class:`lsbcore.conv.ConvClassifier`). Issue 16, README "Real image data".
"""
from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.request
from pathlib import Path
from typing import Optional, Union

import torch
import torch.nn.functional as F

from .idx import read_idx, write_idx
from .metrics import frechet_distance
from .checkpoint import sha256_file
from .utils import ChecksumError, Seed, check_int, check_positive, generator

__all__ = ["DATASETS", "FILES", "SHA256", "MIRRORS", "DownloadError", "default_data_dir", "load_images",
           "write_fixture", "check_images", "shift_images", "frechet_image_distance"]

DATASETS = ("digits", "mnist", "fashion-mnist")
_IDX_FILES = {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
              "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")}
#: name -> split -> (images file, labels file), the data sets' own file names
FILES = {"mnist": _IDX_FILES, "fashion-mnist": _IDX_FILES}

#: the sha256 of the distributed files (the same sums are published with many loaders; they belong
#: to the files whose MD5s LeCun's / Zalando's pages list: MNIST f68b3c2d…, d53e105e…, 9fb629c4…,
#: ec29112d…; Fashion-MNIST 8d4fb7e6…, 25c81989…, bef4ecab…, bb300cfd…)
SHA256 = {
    "mnist": {
        "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    },
    "fashion-mnist": {
        "train-images-idx3-ubyte.gz": "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
        "train-labels-idx1-ubyte.gz": "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
        "t10k-images-idx3-ubyte.gz": "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
        "t10k-labels-idx1-ubyte.gz": "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
    },
}
#: base URLs tried in order by ``download=True`` (file name appended)
MIRRORS = {
    "mnist": ("https://ossci-datasets.s3.amazonaws.com/mnist/",
              "https://storage.googleapis.com/cvdf-datasets/mnist/"),
    "fashion-mnist": ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
                      "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/"),
}
_DIGITS_SPLITS = ("train", "test", "pretrain", "target", "all")
_urlopen = urllib.request.urlopen          # tests replace it to simulate a network (or its absence)


class DownloadError(OSError):
    """No mirror delivered a file (no network, or every copy had the wrong sha256)."""


def default_data_dir(name: str) -> Path:
    """Where ``load_images`` looks by default: ``$LSB_DATA_DIR/<name>``, else ``~/.cache/lsbcore/<name>``."""
    _check_name(name, files=True)
    root = os.environ.get("LSB_DATA_DIR")
    return (Path(root) if root else Path.home() / ".cache" / "lsbcore") / name


def load_images(name: str, split: str = "train", *, data_dir=None, download: bool = False,
                n: Optional[int] = None, seed: Seed = 0, verify: Union[bool, dict] = True, device=None):
    """Images and labels of one split of a data set: ``(images, labels)``.

    ``images`` is float32 ``(n, 1, H, W)`` with pixels in [0, 1] (H = W = 8 for ``"digits"``, 28 for
    ``"mnist"`` and ``"fashion-mnist"``), ``labels`` int64 ``(n,)`` in 0..9.

    - ``split``: ``"train"`` or ``"test"``. For ``"digits"`` also its own splits ``"pretrain"``,
      ``"target"``, ``"all"`` (:data:`lsbcore.digits.SPLITS`); there ``"train"`` is pretrain + target.
    - ``data_dir``: the folder holding the four ``*-ubyte.gz`` files (default
      :func:`default_data_dir`); ignored for ``"digits"``.
    - ``download``: fetch missing files from :data:`MIRRORS` (creates ``data_dir``).
    - ``verify``: ``True`` checks each file's sha256 against :data:`SHA256` before reading it (a
      mismatch raises :class:`~lsbcore.utils.ChecksumError`), a dict ``{file: sha256}`` checks against
      those sums (e.g. what :func:`write_fixture` returns), ``False`` checks nothing.
    - ``n``: a random subset of ``n`` images (without replacement) drawn with ``seed``; the subset for
      a smaller ``n`` is a prefix of the one for a larger ``n``.
    """
    _check_name(name)
    if not isinstance(split, str):
        raise TypeError(f"split must be a string, got {type(split).__name__}")
    if name == "digits":
        if split not in _DIGITS_SPLITS:
            raise ValueError(f"split must be one of {_DIGITS_SPLITS} for 'digits', got {split!r}")
        images, labels = _digits(split)
    else:
        if split not in FILES[name]:
            raise ValueError(f"split must be one of {tuple(FILES[name])} for {name!r}, got {split!r}")
        sums = _check_verify(verify)
        folder = _check_data_dir(data_dir, name, download)
        images_file, labels_file = FILES[name][split]
        raw = read_idx(_ensure(folder, images_file, name, download, sums))
        labels = read_idx(_ensure(folder, labels_file, name, download, sums))
        if raw.dtype != torch.uint8 or raw.ndim != 3:
            raise ValueError(f"{folder / images_file} must hold uint8 images (n, H, W), got {raw.dtype} {tuple(raw.shape)}")
        if labels.dtype != torch.uint8 or labels.shape != (raw.shape[0],):
            raise ValueError(f"{folder / labels_file} must hold {raw.shape[0]} uint8 labels, "
                             f"got {labels.dtype} {tuple(labels.shape)}")
        images = raw[:, None].to(torch.float32) / 255.0
        labels = labels.to(torch.int64)
    if n is not None:
        n = check_int(n, "n", maximum=images.shape[0])
        keep = torch.randperm(images.shape[0], generator=generator(seed))[:n]
        images, labels = images[keep], labels[keep]
    return images.to(device), labels.to(device)


def _check_name(name, *, files: bool = False) -> None:
    known = tuple(FILES) if files else DATASETS
    if not isinstance(name, str):
        raise TypeError(f"name must be a string, one of {known}, got {type(name).__name__}")
    if name not in known:
        raise ValueError(f"name must be one of {known}, got {name!r}")


def _check_verify(verify) -> Optional[dict]:
    if isinstance(verify, bool):
        return None if not verify else True
    if isinstance(verify, dict):
        return verify
    raise TypeError(f"verify must be True, False or a dict {{file name: sha256}}, got {type(verify).__name__}")


def _check_data_dir(data_dir, name: str, download: bool) -> Path:
    if data_dir is None:
        return default_data_dir(name)
    if not isinstance(data_dir, (str, os.PathLike)):
        raise TypeError(f"data_dir must be a folder path (str or os.PathLike), got {type(data_dir).__name__}")
    folder = Path(data_dir).expanduser()
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"data_dir {str(folder)!r} is not a folder")
    if not folder.exists() and not download:
        raise ValueError(f"data_dir {str(folder)!r} does not exist: create it and place the {name} files "
                         f"there, or pass download=True")
    return folder


def _digits(split: str):
    from .digits import IMAGE_SIDE, load_digits

    if split == "train":
        xa, ya = load_digits("pretrain")
        xb, yb = load_digits("target")
        x, y = torch.cat([xa, xb]), torch.cat([ya, yb])
    else:
        x, y = load_digits(split)
    return x.reshape(-1, 1, IMAGE_SIDE, IMAGE_SIDE), y


def _ensure(folder: Path, filename: str, name: str, download: bool, sums) -> Path:
    """``folder/filename``, downloaded if missing and allowed, and checked against its sha256."""
    path = folder / filename
    expected = None
    if sums is True:
        expected = SHA256[name][filename]
    elif isinstance(sums, dict):
        if filename not in sums:
            raise ValueError(f"verify has no sha256 for {filename!r} (it lists {sorted(sums)})")
        expected = sums[filename]
    if not path.is_file():
        if not download:
            raise FileNotFoundError(
                f"{name}: {filename} is not in {str(folder)!r}. Download it from {MIRRORS[name][0]}{filename} "
                f"on a machine with a network and place it there (or pass download=True / point data_dir "
                f"at a folder that has it)")
        _download(name, filename, folder, expected)
    if expected is not None:
        actual = sha256_file(path)
        if actual != expected:
            raise ChecksumError(f"{path} is corrupt or not the published {name} file: sha256 {actual[:12]}… "
                                f"but {expected[:12]}… was expected; delete it and fetch it again")
    return path


def _download(name: str, filename: str, folder: Path, expected: Optional[str]) -> None:
    """Fetch ``filename`` from the first mirror that delivers it (and the right sha256), atomically."""
    folder.mkdir(parents=True, exist_ok=True)
    failures = []
    for base in MIRRORS[name]:
        url = base + filename
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{filename}.")
        try:
            h = hashlib.sha256()
            with os.fdopen(fd, "wb") as out, _urlopen(url, timeout=60) as response:
                for block in iter(lambda: response.read(1 << 16), b""):
                    h.update(block)
                    out.write(block)
            if expected is not None and h.hexdigest() != expected:
                failures.append(f"{url}: sha256 {h.hexdigest()[:12]}… instead of {expected[:12]}…")
                continue
            os.replace(tmp, folder / filename)
            return
        except (OSError, ValueError) as err:        # URLError, HTTPError, timeouts are OSErrors
            failures.append(f"{url}: {err}")
        finally:
            Path(tmp).unlink(missing_ok=True)
    raise DownloadError(f"could not download {name} file {filename} ({'; '.join(failures)}). Without a "
                        f"network, place {filename} in {str(folder)!r} by hand and load again")


# ------------------------------------------------------------------------------ the test fixture
def write_fixture(data_dir, name: str = "mnist", *, n_train: int = 64, n_test: int = 32, seed: Seed = 0) -> dict:
    """Write a tiny synthetic ``name`` data set into ``data_dir`` in the real on-disk layout.

    The four gzipped IDX files get the real names, types and shapes (uint8, 28×28, labels 0..9), so
    :func:`load_images` (with ``verify`` = the returned sums, or ``False``) runs its real code on them.
    Class k is a bright blob at angle 2πk/10 on a circle around the centre, jittered by ±2 pixels,
    plus faint noise: easy enough that a few training steps of a classifier learn something.
    Returns ``{file name: sha256}``. Same arguments → the same bytes.
    """
    _check_name(name, files=True)
    if not isinstance(data_dir, (str, os.PathLike)):
        raise TypeError(f"data_dir must be a folder path (str or os.PathLike), got {type(data_dir).__name__}")
    sizes = {"train": check_int(n_train, "n_train"), "test": check_int(n_test, "n_test")}
    gen = generator(seed)
    folder = Path(data_dir)
    sums = {}
    side = 28
    r = torch.arange(side, dtype=torch.float64)
    for split, count in sizes.items():
        labels = torch.randint(0, 10, (count,), generator=gen)
        angle = 2 * torch.pi * labels.double() / 10
        centre = torch.stack([14 + 7 * torch.sin(angle), 14 + 7 * torch.cos(angle)], 1)
        centre = centre + (torch.rand(count, 2, generator=gen, dtype=torch.float64) * 4 - 2)
        d2 = (r[None, :, None] - centre[:, 0, None, None]) ** 2 + (r[None, None, :] - centre[:, 1, None, None]) ** 2
        img = torch.exp(-d2 / (2 * 2.5**2)) + 0.05 * torch.rand(count, side, side, generator=gen, dtype=torch.float64)
        pixels = (img.clamp(0, 1) * 255).round().to(torch.uint8)
        images_file, labels_file = FILES[name][split]
        for filename, tensor in ((images_file, pixels), (labels_file, labels.to(torch.uint8))):
            sums[filename] = sha256_file(write_idx(folder / filename, tensor))
    return sums


# ------------------------------------------------------------------------------ images: checks, shift
def check_images(x, name: str = "images", *, channels: Optional[int] = None,
                 image_size: Optional[int] = None) -> torch.Tensor:
    """A finite floating tensor of images ``(n, C, H, W)``; a flat ``(n, C·H·W)`` is reshaped when
    ``channels`` and ``image_size`` are given. TypeError/ValueError naming ``name`` otherwise."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape (n, C, H, W), got {type(x).__name__}")
    if not torch.is_floating_point(x):
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    if x.ndim == 2 and channels is not None and image_size is not None:
        if x.shape[1] != channels * image_size**2:
            raise ValueError(f"{name} must have shape (n, {channels}, {image_size}, {image_size}) or "
                             f"(n, {channels * image_size**2}), got {tuple(x.shape)}")
        x = x.reshape(x.shape[0], channels, image_size, image_size)
    if x.ndim != 4:
        raise ValueError(f"{name} must have shape (n, C, H, W), got {tuple(x.shape)}")
    if channels is not None and x.shape[1] != channels:
        raise ValueError(f"{name} must have {channels} channel(s), got shape {tuple(x.shape)}")
    if image_size is not None and x.shape[2:] != (image_size, image_size):
        raise ValueError(f"{name} must be {image_size}×{image_size} images, got shape {tuple(x.shape)}")
    if x.shape[0] == 0:
        raise ValueError(f"{name} is empty: need at least one image")
    if x.device.type == "cpu" and not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} contains NaN or inf")
    return x


def _gaussian_blur(img: torch.Tensor, widths: torch.Tensor) -> torch.Tensor:
    """Blur each image ``(n, 1, H, W)`` with its own Gaussian width (pixels), zero padding, 5×5 kernel."""
    r = torch.arange(-2, 3, device=img.device, dtype=img.dtype)
    w = widths.clamp_min(1e-3)[:, None]
    k1 = torch.exp(-0.5 * (r[None, :] / w) ** 2)
    k1 = k1 / k1.sum(1, keepdim=True)                                   # (n, 5)
    k2 = k1[:, :, None] * k1[:, None, :]                                # (n, 5, 5) separable kernel
    out = F.conv2d(img.transpose(0, 1), k2[:, None], padding=2, groups=img.shape[0])
    return out.transpose(0, 1)


def shift_images(x, strength: float, *, kind: str = "translate", seed: Seed = 0) -> torch.Tensor:
    """:func:`lsbcore.digits.shift_digits` for images ``(n, C, H, W)`` of any size (the pre-training
    shift p̃ = T#p on MNIST), with the same ``kind`` s: ``"translate"`` by a uniform offset in
    [−strength, strength]² pixels, ``"blur"`` with a Gaussian width uniform in [0, strength] pixels,
    ``"noise"`` of standard deviation ``strength`` (clipped to [0, 1]); ``strength = 0`` is no shift.
    Returns a tensor like ``x``."""
    from .digits import SHIFT_KINDS

    x = check_images(x, "x")
    strength = check_positive(strength, "strength", allow_zero=True)
    if kind not in SHIFT_KINDS:
        raise ValueError(f"kind must be one of {SHIFT_KINDS}, got {kind!r}")
    if strength == 0:
        return x.clone()
    gen = generator(seed, x.device)
    n, c = x.shape[:2]
    if kind == "noise":
        return (x + strength * torch.randn(x.shape, generator=gen, device=x.device, dtype=x.dtype)).clamp(0, 1)
    if kind == "blur":                   # one width per image, the same for its channels
        widths = torch.rand(n, generator=gen, device=x.device, dtype=x.dtype) * strength
        flat = _gaussian_blur(x.reshape(n * c, 1, *x.shape[2:]), widths.repeat_interleave(c))
        return flat.reshape(x.shape)
    off = (torch.rand(n, 2, generator=gen, device=x.device, dtype=x.dtype) * 2 - 1) * strength
    theta = torch.zeros(n, 2, 3, device=x.device, dtype=x.dtype)
    theta[:, 0, 0] = theta[:, 1, 1] = 1.0
    theta[:, 0, 2] = -off[:, 0] * (2.0 / x.shape[-1])
    theta[:, 1, 2] = -off[:, 1] * (2.0 / x.shape[-2])
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


# ------------------------------------------------------------------------------ metric
def frechet_image_distance(x, y, classifier, *, batch_size: int = 1000) -> float:
    """Fréchet distance between two image sets in the feature space of ``classifier`` (FID's recipe).

    ``classifier.features`` (e.g. :class:`lsbcore.conv.ConvClassifier`) maps each set to feature
    vectors (in batches of ``batch_size``, without gradients); :func:`lsbcore.metrics.frechet_distance`
    compares their Gaussian fits. 0 for a set with itself; biased upward at finite n, so compare with
    two real sets of the same size. ``x``, ``y``: ``(n, C, H, W)``, n ≥ 2 each.
    """
    if not callable(getattr(classifier, "features", None)):
        raise TypeError(f"classifier must have a features(x) method, got {type(classifier).__name__}")
    x, y = check_images(x, "x"), check_images(y, "y")
    if x.shape[1:] != y.shape[1:]:
        raise ValueError(f"x and y must hold images of one shape, got {tuple(x.shape[1:])} and {tuple(y.shape[1:])}")
    batch_size = check_int(batch_size, "batch_size")
    with torch.no_grad():
        fx = torch.cat([classifier.features(b) for b in x.split(batch_size)])
        fy = torch.cat([classifier.features(b) for b in y.split(batch_size)])
    return frechet_distance(fx, fy)
