"""Small networks: a time-conditioned MLP for drifts, velocities and scores.

A learned bridge needs a function of (x, t). ``TimeMLP`` is the smallest thing that works on toy 2-D
sets and latent codes: the time is lifted to a few Fourier features, concatenated with x, and fed to a
plain MLP. Notebook 02 §"Bridge matching" trains one.

Construction takes ``seed=`` so the initial weights are reproducible without touching torch's
global random state.
"""
from __future__ import annotations

import contextlib
import math

import torch
from torch import nn

from .utils import check_int, check_seed, time_column

__all__ = ["FourierTime", "TimeMLP", "seeded_init", "DigitsMLP", "DigitsClassifier"]


@contextlib.contextmanager
def seeded_init(seed: int):
    """Draw initial weights from torch's global RNG seeded with ``seed``, inside a fork: the caller's
    RNG state is untouched, and the same seed gives the same network on any run."""
    seed = check_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed % 2**64)
        yield


class FourierTime(nn.Module):
    """Time features ``[t, sin(π k t), cos(π k t)]`` for k = 1..n_freq (fixed, not learned).

    Frequencies up to π·n_freq let a small MLP bend sharply near t = 1, where bridge drifts change
    fastest, while t itself keeps the low-frequency trend. Output width ``1 + 2 n_freq``.
    Notebook 02 §"Bridge matching".
    """

    def __init__(self, n_freq: int = 8):
        super().__init__()
        self.n_freq = check_int(n_freq, "n_freq", minimum=0)
        self.register_buffer("freqs", math.pi * torch.arange(1, self.n_freq + 1, dtype=torch.float32),
                             persistent=False)

    @property
    def out_dim(self) -> int:
        return 1 + 2 * self.n_freq

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        ang = t * self.freqs.to(t.dtype)
        return torch.cat([t, torch.sin(ang), torch.cos(ang)], dim=-1)


class TimeMLP(nn.Module):
    """An MLP ``(x, t) ↦ output`` with Fourier time features: the default drift network.

    Architecture: ``[x, FourierTime(t)] → Linear(width) → SiLU → (depth − 1) × [Linear(width) → SiLU]
    → Linear(out_dim)``. ``depth`` counts hidden layers. ``forward(x, t)`` takes x of shape
    ``(batch, dim)`` and t a float or a tensor broadcastable to ``(batch, 1)`` with values in [0, 1];
    it returns ``(batch, out_dim)`` (``out_dim`` defaults to ``dim``: a vector field).

    ``seed`` fixes the initial weights (drawn inside a forked RNG, so global state is untouched).
    Notebook 02 §"Bridge matching".
    """

    def __init__(self, dim: int, width: int = 64, depth: int = 3, *, n_freq: int = 8,
                 out_dim: int | None = None, seed: int = 0):
        super().__init__()
        self.dim = check_int(dim, "dim")
        self.width = check_int(width, "width")
        self.depth = check_int(depth, "depth")
        self.out_dim = self.dim if out_dim is None else check_int(out_dim, "out_dim")
        self.time = FourierTime(n_freq)
        with seeded_init(seed):
            layers: list[nn.Module] = [nn.Linear(self.dim + self.time.out_dim, self.width), nn.SiLU()]
            for _ in range(self.depth - 1):
                layers += [nn.Linear(self.width, self.width), nn.SiLU()]
            layers.append(nn.Linear(self.width, self.out_dim))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, t) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x must be a torch.Tensor of shape (batch, {self.dim}), got {type(x).__name__}")
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"x must have shape (batch, {self.dim}), got {tuple(x.shape)}")
        if isinstance(t, torch.Tensor) and t.device != x.device:
            raise ValueError(f"t is on {t.device} but x is on {x.device}")
        t = self._time_column(t, x)
        return self.net(torch.cat([x, self.time(t)], dim=-1))

    @staticmethod
    def _time_column(t, x):
        # Hot path (called at every training and sampling step): a (batch, 1) tensor already on an
        # accelerator passes as it is (checking its values there would cost a host sync); anything
        # else, CPU tensors included, goes through the one time check (range, NaN, rows).
        if (isinstance(t, torch.Tensor) and t.device.type != "cpu" and t.dtype == x.dtype
                and t.shape == (x.shape[0], 1)):
            return t
        return time_column(t, x)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, width={self.width}, depth={self.depth}, n_freq={self.time.n_freq}"


# ------------------------------------------------------------------ digits: encoder, decoder, classifier
class DigitsMLP(nn.Module):
    """An MLP ``(batch, in_dim) → (batch, out_dim)`` with two hidden SiLU layers of ``hidden`` units.

    The encoder (pixels → a latent code, or [mean, log-variance] for a VAE) and, with
    ``sigmoid=True`` (outputs in (0, 1)), the decoder (code → pixel intensities) of
    :class:`lsbcore.autoencoder.Autoencoder`. ``seed`` fixes the initial weights (forked RNG).
    Notebook 03 §2 "Encoder–decoder pre-training".
    """

    def __init__(self, in_dim: int, out_dim: int, hidden: int = 128, *, sigmoid: bool = False, seed: int = 0):
        super().__init__()
        self.in_dim, self.out_dim = check_int(in_dim, "in_dim"), check_int(out_dim, "out_dim")
        hidden = check_int(hidden, "hidden")
        self.sigmoid = bool(sigmoid)
        with seeded_init(seed):
            self.net = nn.Sequential(nn.Linear(self.in_dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden),
                                     nn.SiLU(), nn.Linear(hidden, self.out_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.net(x)
        return torch.sigmoid(out) if self.sigmoid else out


class DigitsClassifier(nn.Module):
    """A small MLP classifier of 8×8 digits (64 pixels in [0, 1] → 10 logits).

    ``features(x)`` is the ``feature_dim``-dimensional penultimate layer: the feature space of the
    Fréchet digits distance. Notebook 03 §"Metrics".
    """

    def __init__(self, hidden: int = 128, feature_dim: int = 32, *, seed: int = 0):
        super().__init__()
        with seeded_init(seed):
            self.body = nn.Sequential(nn.Linear(64, check_int(hidden, "hidden")), nn.SiLU(),
                                      nn.Linear(hidden, check_int(feature_dim, "feature_dim")), nn.SiLU())
            self.head = nn.Linear(feature_dim, 10)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))

