"""The latent Schrödinger bridge pipeline on real digits (Notebook 03; the rate experiment is Notebook 04).

    target digits ─► encoder E ─► latent codes p̂ ─► latent bridge ─► sampler ─► decoder D ─► digits ─► metrics

One call does it all: :func:`generate_digits` (encode → :func:`sample_codes` → decode → evaluate).
What it builds on lives in its own room: the digits, the shift and the digit metrics in
:mod:`lsbcore.digits`; the encoder–decoder in :mod:`lsbcore.autoencoder` (shipped trained in
``data/``, :mod:`lsbcore.shipped`); the bridges in :mod:`lsbcore.bridges` (heat flow, Föllmer, IMF);
the sampler in :mod:`lsbcore.sde`. Notebook 04 sweeps the number of fitted digits with
:func:`sample_size_sweep` and fits rates with :func:`loglog_fit`. docs/theory.md §4.
"""
from __future__ import annotations

import math
import time
from typing import Optional, Sequence

import numpy as np
import torch
from scipy import stats
from torch import nn

from .bridges.follmer import EmpiricalFollmer
from .bridges.heat import HeatFlowBridge, fit_heat_flow
from .bridges.matching import imf
from .digits import evaluate_digits, load_digits
from .metrics import w2
from .nets import DigitsClassifier
from .sde import SampleResult, sample
from .utils import Seed, check_int, check_points, check_positive, check_scale, check_seed, first_parameter, generator, resolve_device, same_device, work_device

__all__ = ["METHODS", "sample_codes", "generate_digits", "plot_latent_paths", "sample_size_sweep", "loglog_fit"]


#: the generators compared in Notebooks 03 and 04 (all but "random" are Schrödinger bridges)
METHODS = ("heat-follmer", "heat-gaussian", "heat-learned", "follmer", "imf", "random")


def sample_codes(method: str, points, n: int, *, sigma: float = 1.0, t_gap: float = 0.01, steps: int = 100,
                 seed: Seed = 0, keep_traj: bool = False, train_steps: int = 1500,
                 net: Optional[nn.Module] = None, progress: bool = False) -> SampleResult:
    """Draw ``n`` codes from a bridge to the empirical code distribution p̂ = ``points`` (Notebook 03 §3–4).

    ``method``:

    * ``"heat-follmer"`` / ``"heat-gaussian"``: the reverse heat flow p̂ ∗ N(0, σ²I) → p̂ (exact
      drift), started by a first Föllmer stage or by the Gaussian approximation *(reconstructed)*;
    * ``"heat-learned"``: the reverse heat flow with a *learned* drift — the regression the latent-SB
      paper analyses — fitted by :func:`lsbcore.bridges.heat.fit_heat_flow` in ``train_steps`` steps
      (or ``net``, a drift network fitted already, e.g. :func:`lsbcore.shipped.shipped_heat_drift`),
      started from the Gaussian approximation like ``"heat-gaussian"``: the codes enter only
      through the training loss and the start's mean and covariance, so "heat-gaussian" vs
      "heat-learned" compares the exact and the learned drift and nothing else (Notebook 03 §4b);
    * ``"follmer"``: the Schrödinger–Föllmer bridge δ0 → p̂ (exact empirical drift);
    * ``"imf"``: the SB from N(0, I) to p̂ by bridge matching with minibatch-Sinkhorn couplings
      followed by one IMF refinement (learned, ``train_steps`` steps per fit);
    * ``"random"``: codes drawn from N(0, I) — the "decode random latents" baseline, no bridge.

    Every bridge is run with the shared Euler–Maruyama sampler ``lsbcore.sample`` on
    [0, 1 − t_gap] (early stopping) with ``steps`` steps. Returns a ``SampleResult`` (``.x`` the codes,
    ``.traj`` the path if ``keep_traj``). Same seed → same codes. docs/theory.md §4.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    points = check_points(points, "points")
    work_device(net=net, points=points)
    if net is not None:
        if method != "heat-learned":
            raise ValueError(f"net is the drift network of method 'heat-learned'; method {method!r} takes no net")
        if not isinstance(net, nn.Module):
            raise TypeError(f"net must be a torch.nn.Module net(z, t) → drift, got {type(net).__name__}")
        if getattr(net, "dim", points.shape[1]) != points.shape[1]:
            raise ValueError(f"net is a drift in dimension {net.dim} but the points have dimension {points.shape[1]}")
    n, steps = check_int(n, "n"), check_int(steps, "steps")
    sigma = check_scale(sigma, "sigma")
    fitted_sigma = getattr(net, "config", {}).get("sigma", sigma)
    if fitted_sigma != sigma:
        raise ValueError(f"net was fitted with sigma={fitted_sigma}, not sigma={sigma}: its drift is another bridge's")
    t_gap = check_positive(t_gap, "t_gap")
    if t_gap >= 1:
        raise ValueError(f"t_gap must be in (0, 1), got {t_gap}")
    base = int(torch.randint(0, 2**31, (1,), generator=seed)) if isinstance(seed, torch.Generator) else check_seed(seed)
    gen = generator(base, points.device)
    d = points.shape[1]

    def noise(m, gen):
        return torch.randn(m, d, generator=gen, device=points.device, dtype=points.dtype)

    if method == "random":
        x = noise(n, gen)
        return SampleResult(x=x, traj=x[None] if keep_traj else None, times=torch.zeros(1), nfe=0)
    if method == "heat-learned":
        bridge = (HeatFlowBridge(points, sigma, net=net) if net is not None else
                  fit_heat_flow(points, sigma, t_gap=t_gap, steps=train_steps, seed=base, progress=progress))
        x0 = bridge.start(n, how="gaussian", seed=gen)
    elif method.startswith("heat"):
        bridge = HeatFlowBridge(points, sigma)
        x0 = bridge.start(n, how="gaussian" if method == "heat-gaussian" else "follmer", seed=gen)
    elif method == "follmer":
        bridge = EmpiricalFollmer(points, sigma)
        x0 = bridge.start(n, seed=gen)
    else:
        bridge = imf(noise, points, sigma, iterations=2, steps=train_steps, coupling="sinkhorn", seed=base,
                     progress=progress, batch_size=256, pool=1024, sample_steps=50,
                     sinkhorn_kwargs=dict(max_iter=200))
        x0 = noise(n, gen)
    return sample(bridge, x0, steps=steps, t1=1.0 - t_gap, seed=gen, keep_traj=keep_traj)


# ------------------------------------------------------------------------------ the whole pipeline
def generate_digits(autoencoder, method: str = "heat-follmer", n: int = 397, *, n_fit: Optional[int] = None,
                    sigma: float = 1.0, t_gap: float = 0.01, steps: int = 100, seed: int = 0,
                    train_steps: int = 1500, classifier: Optional[DigitsClassifier] = None,
                    net: Optional[nn.Module] = None, keep_traj: bool = False, progress: bool = False,
                    device=None) -> dict:
    """Encode the target digits, run a latent bridge, decode, and (with ``classifier``) evaluate.

    The whole of Notebook 03 in one call: p̂ = codes of the first ``n_fit`` target digits (all 700
    by default; Notebook 04 varies n_fit), ``n`` codes from ``sample_codes(method, ...)``, decoded
    images, and — if a classifier is given — ``evaluate_digits`` against the held-out ``"test"`` split
    plus ``latent_w2``, the W2 between the generated codes and the codes of the test digits.
    ``autoencoder`` may be :class:`lsbcore.autoencoder.PixelSpace` for the pixel-space baseline. Returns a dict with
    ``codes``, ``images``, ``traj`` (if ``keep_traj``), ``points`` (p̂), ``fit_images`` (the digits
    behind p̂), ``seconds`` and the metrics. ``net``: a fitted drift network for ``"heat-learned"``
    (see :func:`sample_codes`), e.g. ``lsbcore.shipped.shipped_heat_drift(d)`` fitted to all 700 codes.
    Device: the work happens where ``autoencoder`` lives (load it there:
    ``lsb.shipped_autoencoder(8, device=dev)``); ``device``, when given, is checked against it, and
    ``classifier`` and ``net`` must live there too (a ValueError naming them otherwise).
    """
    dev = next(iter(autoencoder.buffers())).device
    if device is not None and not same_device(resolve_device(device), dev):
        raise ValueError(f"device={str(device)!r} but autoencoder is on {dev}: load it with "
                         f"shipped_autoencoder(..., device=device) or move it with .to(device)")
    for name, model in (("classifier", classifier), ("net", net)):
        p = first_parameter(model)
        if p is not None and not same_device(p.device, dev):
            raise ValueError(f"{name} is on {p.device} but autoencoder is on {dev}: move {name} with .to({str(dev)!r})")
    x, _ = load_digits("target", device=dev)
    if n_fit is not None:
        n_fit = check_int(n_fit, "n_fit", minimum=2)
        if n_fit > x.shape[0]:
            raise ValueError(f"n_fit must be ≤ {x.shape[0]} (the target split), got {n_fit}")
        x = x[torch.randperm(x.shape[0], generator=generator(seed)).to(dev)[:n_fit]]
    tic = time.perf_counter()
    with torch.no_grad():
        points = autoencoder.encode(x)
    res = sample_codes(method, points, n, sigma=sigma, t_gap=t_gap, steps=steps, seed=seed, keep_traj=keep_traj,
                       train_steps=train_steps, net=net, progress=progress)
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


# ------------------------------------------------------------------------------------ plotting
def plot_latent_paths(points, traj=None, ax=None, *, labels=None, n_paths: int = 30, title: str = "latent codes"):
    """Codes (and sampler paths ``(steps+1, batch, d)``) in 2-D: the first two coordinates if d* = 2,
    else the first two principal axes of ``points``. Returns the axes. Notebook 03 §6."""
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
        ax.scatter(tr[-1, :, 0], tr[-1, :, 1], s=14, color="C3", zorder=3, label="samples at t = 1 − t_gap")
        ax.legend(loc="lower right", fontsize=7)
    ax.set_xlabel(names[0])
    ax.set_ylabel(names[1])
    ax.set_title(title)
    return ax


# ------------------------------------------------------------------------------- rate experiment
def sample_size_sweep(spaces: dict, ns: Sequence[int], seeds: Sequence[int], classifier: DigitsClassifier, *,
                      method: str = "heat-follmer", n_gen: int = 397, sigma: float = 1.0, t_gap: float = 0.01,
                      steps: int = 50, progress: bool = False) -> list:
    """Error vs the number n of target digits the bridge is fitted to (Notebook 04 §2).

    For every space (name → autoencoder or :class:`lsbcore.autoencoder.PixelSpace`), n in ``ns`` and seed in ``seeds``:
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
        r = generate_digits(spaces[name], method, n_gen, n_fit=n, sigma=sigma, t_gap=t_gap, steps=steps, seed=s,
                            classifier=classifier)
        rows.append(dict(space=name, n=n, seed=s, fdd=r["fdd"], w2=r["w2"], latent_w2=r["latent_w2"],
                         seconds=r["seconds"]))
    return rows


def loglog_fit(n, err) -> dict:
    """Least-squares line ``log err = a + b log n`` per seed and pooled (Notebook 04 §3).

    ``n`` and ``err`` are ``(seeds, len(ns))`` arrays (one row per seed). Returns the pooled slope
    ``b`` and intercept ``a``, the per-seed slopes, and a 95 % interval for the slope from the spread
    of the per-seed slopes (Student t; wide when there are few seeds — that is the honest answer;
    ``(nan, nan)`` with a single seed, where the spread is unknown).
    """
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
