"""The experiments of ``python -m lsbcore train``: their options and what each one runs.

Every experiment is a configuration dataclass (its options, defaults and help lines; see
:mod:`lsbcore.config`) and a function ``run(cfg, run, place) -> dict of final metrics`` that trains
through :func:`lsbcore.train.fit` with one checkpoint per phase in the run folder
(:class:`lsbcore.runs.RunFolder`), so an interrupted run resumes where it stopped and ends with the
same numbers (bit-exact on CPU). Loss functions draw the whole global batch from the generator
``fit`` hands them and keep their shard (:func:`lsbcore.distributed.shard`), so the same code runs
in one process or under ``torchrun`` with DistributedDataParallel.

* ``bridge-matching`` (here): bridge matching between two sets — toy 2-D sets or image sets
  (pixels) — with independent / Sinkhorn / exact-OT couplings (Notebook 02 §"Bridge matching").
* ``vsdm`` (here): :func:`lsbcore.bridges.vsdm_fit.fit_vsdm` on a toy set (Notebook 06).
* ``latent-sb`` (:mod:`lsbcore.experiments_latent`): the latent Schrödinger bridge end to end on
  the 8×8 digits, MNIST or Fashion-MNIST (Notebook 03).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch

from . import distributed
from .config import ConfigError, option
from .distributed import DEVICES

__all__ = ["EXPERIMENTS", "RunOptions", "FitOptions", "BridgeMatchingConfig", "VSDMConfig", "deadline_of",
           "image_source"]

TOY = ("8gaussians", "moons", "checkerboard", "spiral")
IMAGE_SETS = ("digits", "mnist", "fashion-mnist")


# ------------------------------------------------------------------------------------- common options
@dataclass
class RunOptions:
    seed: int = option(0, "seeds every generator of the run (same seed → same run on CPU)")
    device: str = option("auto", "auto → cuda, mps, cpu; or cpu, cuda, cuda:K, mps (--device sets it too)")
    checkpoint_every: int = option(500, "steps between checkpoints of a training phase", minimum=1)
    progress: bool = option(True, "progress bars")

    def check(self) -> None:
        if self.device not in DEVICES and not self.device.startswith("cuda:"):
            raise ConfigError(f"device: must be one of {', '.join(DEVICES)} or cuda:K; got {self.device!r}")


@dataclass
class FitOptions(RunOptions):
    log_every: int = option(50, "steps per row of metrics.csv (the mean loss of the window)", minimum=1)
    amp: str = option("none", "bf16: autocast the networks in bfloat16 (CUDA only)", choices=("none", "bf16"))
    time_limit: float = option(0.0, "minutes; at the first checkpoint after it, save and exit with status 3 "
                                    "(0: no limit)", minimum=0.0)


def deadline_of(cfg, started: float):
    """The ``time.time()`` at which training stops (None: no limit)."""
    return started + 60.0 * cfg.time_limit if getattr(cfg, "time_limit", 0.0) > 0 else None


def fit_options(cfg, run, phase: str, started: float) -> dict:
    """The keyword arguments of :func:`lsbcore.train.fit` every training phase shares."""
    return dict(seed=cfg.seed, checkpoint=run.checkpoint(phase), checkpoint_every=cfg.checkpoint_every,
                log_every=cfg.log_every, progress=cfg.progress, ddp=True,
                amp=None if cfg.amp == "none" else cfg.amp, deadline=deadline_of(cfg, started))


def image_source(name: str, split: str, cfg, dev, n: int = 0):
    """``(images (n, C, H, W), labels)`` of ``name`` through :func:`lsbcore.datasets.load_images`;
    a missing or corrupt file becomes a ConfigError (one line: which file, which folder)."""
    import json

    from .datasets import load_images

    verify = True
    if getattr(cfg, "checksums", ""):
        if cfg.checksums == "none":
            verify = False
        else:
            try:
                verify = json.loads(open(cfg.checksums, encoding="utf-8").read())
            except (OSError, ValueError) as err:
                raise ConfigError(f"checksums: cannot read {cfg.checksums!r} as JSON {{file: sha256}}: {err}") from None
    try:
        return load_images(name, split, data_dir=cfg.data_dir or None, download=getattr(cfg, "download", False),
                           n=n or None, seed=cfg.seed, verify=verify, device=dev)
    except (OSError, ValueError) as err:       # FileNotFoundError, DownloadError, ChecksumError, bad n
        raise ConfigError(f"data {name!r} ({split}): {err}") from None


# ------------------------------------------------------------------------------------- bridge matching
@dataclass
class BridgeMatchingConfig(FitOptions):
    source: str = option("8gaussians", "the t = 0 set: a toy set or an image set", choices=TOY + IMAGE_SETS)
    target: str = option("moons", "the t = 1 set (same dimension as source)", choices=TOY + IMAGE_SETS)
    data_dir: str = option("", "folder of the MNIST/Fashion-MNIST files ('' = $LSB_DATA_DIR or ~/.cache/lsbcore)")
    download: bool = option(True, "download missing MNIST/Fashion-MNIST files (checked by sha256)")
    checksums: str = option("", "'' = the official sha256 sums, 'none' = no check, or a JSON file {file: sha256}")
    n_data: int = option(0, "images loaded per image set (0 = the whole train split)", minimum=0)
    coupling: str = option("sinkhorn", "how minibatch pairs are drawn", choices=("independent", "sinkhorn", "ot"))
    sigma: float = option(1.0, "diffusion σ of the reference σW (Sinkhorn ε = 2σ²)", minimum=0.0)
    steps: int = option(2000, "training steps", minimum=1)
    batch_size: int = option(256, "GLOBAL batch (split across ranks under torchrun)", minimum=2)
    lr: float = option(1e-3, "Adam learning rate", minimum=0.0)
    t_gap: float = option(0.01, "training times t ~ U[0, 1 − t_gap]", minimum=1e-6, maximum=0.5)
    width: int = option(128, "TimeMLP width", minimum=1)
    depth: int = option(3, "TimeMLP hidden layers", minimum=1)
    ema: float = option(0.999, "EMA decay of the weights used for sampling", minimum=0.0, maximum=0.9999)
    n_samples: int = option(2000, "samples generated for the metrics and plots", minimum=2)
    sample_steps: int = option(100, "Euler–Maruyama steps of the sampler", minimum=1)

    def check(self) -> None:
        super().check()
        if (self.source in TOY) != (self.target in TOY):
            raise ConfigError("source and target: both toy sets or both image sets (they need one dimension)")
        if "digits" in (self.source, self.target) and self.source != self.target:
            raise ConfigError("source and target: 'digits' (8×8) pairs only with 'digits'")
        if self.coupling == "sinkhorn" and self.sigma == 0:
            raise ConfigError("sigma: the sinkhorn coupling needs sigma > 0 (ε = 2σ²)")


def _toy_sampler(name: str):
    from .marginals import TOY_SETS

    fn = TOY_SETS[name]
    return lambda n, gen: fn(n, gen)


def _points_sampler(points: torch.Tensor):
    return lambda n, gen: points[torch.randint(0, points.shape[0], (n,), generator=gen, device=gen.device)
                                 .to(points.device)]


def run_bridge_matching(cfg: BridgeMatchingConfig, run, place) -> dict:
    """Fit the forward drift from ``source`` to ``target`` by bridge matching; sample; W2 to the target."""
    from .bridges.coupling import couple
    from .bridges.matching import MatchedBridge, bridge_target, matching_loss, sample_times
    from .metrics import w2_report
    from .nets import TimeMLP
    from .sde import sample
    from .train import fit
    from .utils import generator

    started, dev = time.time(), place.device
    batch = distributed.check_global_batch(cfg.batch_size)
    if cfg.source in TOY:
        draw0, draw1 = _toy_sampler(cfg.source), _toy_sampler(cfg.target)
        shape = (2,)
    else:
        x0_all = image_source(cfg.source, "train", cfg, dev, cfg.n_data)[0]
        x1_all = (x0_all if cfg.target == cfg.source else image_source(cfg.target, "train", cfg, dev, cfg.n_data)[0])
        shape = tuple(x0_all.shape[1:])
        draw0, draw1 = _points_sampler(x0_all.flatten(1)), _points_sampler(x1_all.flatten(1))
    dim = math.prod(shape)
    f64 = distributed.float64_device(dev)
    net = TimeMLP(dim, width=cfg.width, depth=cfg.depth, seed=cfg.seed).to(dev)

    def loss_fn(model, step, gen):
        x0, x1 = draw0(batch, gen), draw1(batch, gen)
        if cfg.coupling != "independent":
            if f64 == dev:
                x0, x1 = couple(x0, x1, cfg.coupling, sigma=cfg.sigma, seed=gen)
            else:   # MPS: the plan is computed on the CPU (float64), from a seed drawn from gen
                s = int(torch.randint(0, 2**62, (1,), generator=gen, device=gen.device))
                x0, x1 = (z.to(dev) for z in couple(x0.cpu(), x1.cpu(), cfg.coupling, sigma=cfg.sigma,
                                                    seed=s))
        t = sample_times(batch, "forward", cfg.t_gap, x0, gen)
        z = torch.randn(x0.shape, generator=gen, device=x0.device, dtype=x0.dtype)
        x_t = (1 - t) * x0 + t * x1 + cfg.sigma * torch.sqrt(t * (1 - t)) * z
        target = bridge_target(x0, x1, x_t, t, "forward")
        x_t, t, target = distributed.shard(x_t, t, target)
        return matching_loss(model, x_t, t, target)

    hist = fit(net, loss_fn, cfg.steps, lr=cfg.lr, ema=cfg.ema, desc="bridge matching",
               **fit_options(cfg, run, "bridge", started))
    run.log_losses("bridge", hist.losses, cfg.log_every, new_from=hist.start_step)
    run.write_metrics()
    if not distributed.main_goes_on():      # the other ranks leave here
        return {}
    bridge = MatchedBridge((hist.ema if hist.ema is not None else net).eval(), cfg.sigma)
    gen = generator(cfg.seed + 1, dev)
    start = draw0(cfg.n_samples, gen)
    with torch.no_grad():
        out = sample(bridge, start, steps=cfg.sample_steps, seed=gen).x
    if cfg.target in TOY:
        from .marginals import Toy2D
        rep = w2_report(out.cpu(), Toy2D(cfg.target), seed=cfg.seed + 2)
    else:
        pool = x1_all.flatten(1).cpu()
        m = min(cfg.n_samples, pool.shape[0] // 2)
        rep = w2_report(out[:m].cpu(), pool, seed=cfg.seed + 2)
    metrics = {"w2": rep.w2, "w2_floor": rep.floor, "n": rep.n, "train_seconds": hist.seconds}
    _plot_bridge(run, cfg, start.cpu(), out.cpu(), shape)
    return metrics


def _plot_bridge(run, cfg, start, out, shape) -> None:
    import matplotlib.pyplot as plt

    if cfg.source in TOY:
        from .marginals import TOY_SETS
        from .plotting import scatter2d

        fig, axes = plt.subplots(1, 3, figsize=(10.5, 3.6), constrained_layout=True)
        scatter2d(start, axes[0], title=f"source: {cfg.source}")
        scatter2d(TOY_SETS[cfg.target](out.shape[0], cfg.seed + 3), axes[1], title=f"target: {cfg.target}")
        scatter2d(out, axes[2], title=f"bridge samples at t = 1 ({cfg.steps} steps)")
        run.save_figure(fig, "samples")
    else:
        save_image_grid(run, out.reshape(-1, *shape), "samples", f"bridge samples: {cfg.source} → {cfg.target}")


def save_image_grid(run, images, name: str, title: str, n: int = 64) -> None:
    """An 8-wide grid of the first ``n`` images ``(n, C, H, W)`` (first channel) as ``name.png``."""
    import matplotlib.pyplot as plt

    images = images[:n].detach().float().cpu().clamp(0, 1)
    k, side = images.shape[0], images.shape[-1]
    cols = min(8, k)
    rows = math.ceil(k / cols)
    canvas = torch.ones(rows * (side + 1) - 1, cols * (side + 1) - 1)
    for i in range(k):
        r, c = divmod(i, cols)
        canvas[r * (side + 1): r * (side + 1) + side, c * (side + 1): c * (side + 1) + side] = 1 - images[i, 0]
    fig, ax = plt.subplots(figsize=(cols * 0.6 + 0.4, rows * 0.6 + 0.6), constrained_layout=True)
    ax.imshow(canvas.numpy(), cmap="gray", vmin=0, vmax=1)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlabel(f"{k} images, {side}×{side} pixels")
    ax.set_title(title)
    run.save_figure(fig, name)


# ------------------------------------------------------------------------------------- VSDM
@dataclass
class VSDMConfig(RunOptions):
    data: str = option("spiral", "the toy set", choices=TOY)
    scale_y: float = option(8.0, "stretch of the y axis (an anisotropic target: VSDM's case)", minimum=1e-3)
    n_data: int = option(4096, "training points (one fixed sample)", minimum=2)
    adaptive: bool = option(True, "learn the forward matrix A (VSDM); false: the plain VP-SDE")
    steps: int = option(2000, "training steps", minimum=1)
    batch_size: int = option(256, "batch size", minimum=1)
    width: int = option(128, "TimeMLP width", minimum=1)
    depth: int = option(3, "TimeMLP hidden layers", minimum=1)
    lr: float = option(2e-3, "Adam learning rate", minimum=0.0)
    ema: float = option(0.995, "EMA decay", minimum=0.0, maximum=0.9999)
    beta_min: float = option(0.1, "β(0) of the VP schedule", minimum=0.0)
    beta_max: float = option(10.0, "β(1) of the VP schedule", minimum=0.0)
    warmup: int = option(-1, "network steps before A moves (-1: steps // 4)", minimum=-1)
    a_every: int = option(50, "network steps between updates of A", minimum=1)
    t_gap: float = option(1e-3, "distance kept from the data end t = 0", minimum=1e-6, maximum=0.5)
    n_samples: int = option(2000, "samples generated for the metrics and plots", minimum=2)
    sample_steps: int = option(50, "sampler steps", minimum=1)
    method: str = option("ode", "probability-flow ODE (Heun) or SDE (Euler–Maruyama)", choices=("ode", "sde"))


def _vsdm_data(cfg, n: int, seed: int, dev):
    from .marginals import TOY_SETS

    x = TOY_SETS[cfg.data](n, seed).to(dev)
    return x * torch.tensor([1.0, cfg.scale_y], device=dev, dtype=x.dtype)


def run_vsdm(cfg: VSDMConfig, run, place) -> dict:
    """Train VSDM with its own trainer (which checkpoints and resumes), sample, W2 to fresh data.

    VSDM keeps A in float64, which MPS lacks: there it runs on the CPU. Under torchrun every rank
    computes the same steps (fit_vsdm does not shard its batch) and rank 0 writes."""
    from .bridges.vsdm_fit import fit_vsdm
    from .metrics import w2_report

    dev = distributed.float64_device(place.device)
    data = _vsdm_data(cfg, cfg.n_data, cfg.seed, dev)
    res = fit_vsdm(data, adaptive=cfg.adaptive, steps=cfg.steps, batch_size=cfg.batch_size, beta_min=cfg.beta_min,
                   beta_max=cfg.beta_max, width=cfg.width, depth=cfg.depth, lr=cfg.lr, ema=cfg.ema,
                   warmup=None if cfg.warmup < 0 else cfg.warmup, a_every=cfg.a_every, t_gap=cfg.t_gap,
                   seed=cfg.seed, progress=cfg.progress and distributed.is_main(),
                   checkpoint=run.checkpoint("vsdm"), checkpoint_every=cfg.checkpoint_every)
    run.log_losses("vsdm", res.losses, max(1, min(100, cfg.steps)))
    run.write_metrics()
    if not distributed.main_goes_on():      # the other ranks leave here
        return {}
    out = res.bridge.sample(cfg.n_samples, method=cfg.method, steps=cfg.sample_steps, seed=cfg.seed + 1).x
    fresh = _vsdm_data(cfg, 4 * cfg.n_samples, cfg.seed + 2, torch.device("cpu"))
    rep = w2_report(out.detach().cpu(), fresh, seed=cfg.seed + 3)
    import matplotlib.pyplot as plt

    from .plotting import scatter2d

    fig, axes = plt.subplots(1, 2, figsize=(7.2, 3.6), constrained_layout=True)
    scatter2d(fresh[: cfg.n_samples], axes[0], title=f"data: {cfg.data} (y × {cfg.scale_y:g})")
    scatter2d(out.detach().cpu(), axes[1], title=f"{'VSDM' if cfg.adaptive else 'VP-SDE'} samples ({cfg.method})")
    run.save_figure(fig, "samples")
    return {"w2": rep.w2, "w2_floor": rep.floor, "n": rep.n, "train_seconds": res.seconds,
            "A_frobenius": float(res.bridge.forward.A().norm())}


# ------------------------------------------------------------------------------------- registry
def _latent():
    from . import experiments_latent

    return experiments_latent


#: name → (configuration class, run function, one line for --help)
EXPERIMENTS = {
    "latent-sb": (lambda: _latent().LatentSBConfig, lambda *a: _latent().run_latent_sb(*a),
                  "pre-train an autoencoder under a shift → encode → latent bridge → sample → decode → FD"),
    "bridge-matching": (lambda: BridgeMatchingConfig, run_bridge_matching,
                        "bridge matching between two sets (toy 2-D or images), then W2 to the target"),
    "vsdm": (lambda: VSDMConfig, run_vsdm, "variational Schrödinger diffusion (adaptive linear forward) on a toy set"),
}
