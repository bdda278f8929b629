"""``python -m lsbcore train latent-sb``: the latent Schrödinger bridge end to end (Notebook 03, bigger).

::

    pre-training images ─► shift ─► autoencoder (E, D)        phase "autoencoder"
    train images ─────────────────► classifier (FD features)   phase "classifier"
    target images ─► E ─► codes p̂ ─► heat-flow drift            phase "bridge"
    Föllmer start ─► latent bridge ─► codes ─► D ─► images ─► Fréchet distance to the test images

On ``data = "digits"`` (sklearn's 8×8, embedded) the MLP autoencoder and classifier of
:mod:`lsbcore.autoencoder` / :mod:`lsbcore.nets` and the digit metrics of :mod:`lsbcore.digits`;
on ``"mnist"`` / ``"fashion-mnist"`` (28×28, read from their IDX files by
:func:`lsbcore.datasets.load_images`) the convolutional networks of :mod:`lsbcore.conv` and
:func:`lsbcore.datasets.frechet_image_distance`; the train split is cut in two halves: the first is
seen only through the shift (pre-training), the second is the target p. The latent bridge is the
reverse heat flow of :mod:`lsbcore.bridges.heat` (learned, or its exact empirical drift), sampled
by :func:`lsbcore.sde.sample`. Each training phase checkpoints into the run folder and resumes.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from . import distributed
from .config import ConfigError, option
from .experiments import FitOptions, fit_options, image_source, save_image_grid

__all__ = ["LatentSBConfig", "run_latent_sb"]

#: lsbcore.digits.SHIFT_KINDS, spelled out so that building the CLI does not import POT and sklearn
SHIFT_KINDS = ("translate", "blur", "noise")


@dataclass
class LatentSBConfig(FitOptions):
    data: str = option("digits", "digits (8×8, embedded) or mnist / fashion-mnist (28×28 IDX files)",
                       choices=("digits", "mnist", "fashion-mnist"))
    data_dir: str = option("", "folder of the MNIST/Fashion-MNIST files ('' = $LSB_DATA_DIR or ~/.cache/lsbcore)")
    download: bool = option(True, "download missing MNIST/Fashion-MNIST files (checked by sha256)")
    checksums: str = option("", "'' = the official sha256 sums, 'none' = no check, or a JSON file {file: sha256}")
    n_train: int = option(0, "train images used (0 = all; half pre-training, half target)", minimum=0)
    n_test: int = option(0, "test images used for the metrics (0 = all)", minimum=0)
    latent_dim: int = option(8, "latent dimension d*", minimum=1)
    shift: float = option(1.0, "strength of the pre-training shift (0 = none)", minimum=0.0)
    shift_kind: str = option("translate", "kind of shift", choices=SHIFT_KINDS)
    ae_steps: int = option(3000, "autoencoder training steps", minimum=1)
    ae_batch_size: int = option(128, "autoencoder GLOBAL batch", minimum=1)
    ae_lr: float = option(2e-3, "autoencoder learning rate", minimum=0.0)
    ae_width: int = option(0, "autoencoder width (0 = default: 128 for the digits MLP, 32 for the conv net)",
                           minimum=0)
    classifier_steps: int = option(2000, "classifier training steps (its features define the FD)", minimum=1)
    classifier_batch_size: int = option(128, "classifier GLOBAL batch", minimum=1)
    classifier_lr: float = option(2e-3, "classifier learning rate", minimum=0.0)
    bridge: str = option("heat-learned", "latent bridge: the heat-flow drift learned by a TimeMLP, or exact",
                         choices=("heat-learned", "heat-exact"))
    sigma: float = option(1.0, "σ of the heat flow in latent units", minimum=1e-6)
    t_gap: float = option(0.01, "early stop: sample on [0, 1 − t_gap]", minimum=1e-6, maximum=0.5)
    bridge_steps: int = option(2000, "latent drift training steps", minimum=1)
    bridge_batch_size: int = option(256, "latent drift GLOBAL batch", minimum=1)
    bridge_lr: float = option(2e-3, "latent drift learning rate", minimum=0.0)
    bridge_width: int = option(128, "TimeMLP width of the latent drift", minimum=1)
    n_samples: int = option(0, "images generated (0 = as many as test images, at most 2000)", minimum=0)
    sample_steps: int = option(100, "Euler–Maruyama steps of the latent sampler", minimum=1)

    def check(self) -> None:
        super().check()
        if self.data == "digits" and (self.data_dir or self.n_train or self.n_test):
            raise ConfigError("data_dir, n_train, n_test: only for mnist / fashion-mnist (the digits are embedded)")


# ------------------------------------------------------------------------------------- the two spaces
class _Digits:
    """sklearn's 8×8 digits, flat (n, 64): lsbcore.digits + lsbcore.autoencoder."""

    side = 8

    def __init__(self, cfg, dev):
        from .digits import load_digits

        self.cfg = cfg
        self.pretrain = load_digits("pretrain", device=dev)[0]
        self.target = load_digits("target", device=dev)[0]
        self.test, self.test_labels = load_digits("test", device=dev)
        xa, ya = load_digits("pretrain", device=dev)
        self.cls_x, self.cls_y = torch.cat([xa, self.target]), torch.cat([ya, load_digits("target", device=dev)[1]])

    def autoencoder(self):
        from .autoencoder import Autoencoder

        return Autoencoder(self.cfg.latent_dim, hidden=self.cfg.ae_width or 128, seed=self.cfg.seed)

    def classifier(self):
        from .nets import DigitsClassifier

        return DigitsClassifier(seed=self.cfg.seed)

    def shift(self, x, strength, kind, gen):
        from .digits import shift_digits

        return shift_digits(x, strength, kind=kind, seed=gen)

    def fd(self, images, reference, classifier) -> float:
        from .digits import frechet_digits_distance

        return frechet_digits_distance(images, reference, classifier)


class _Images:
    """MNIST / Fashion-MNIST, (n, 1, 28, 28): lsbcore.datasets + lsbcore.conv."""

    side = 28

    def __init__(self, cfg, dev):
        x, y = image_source(cfg.data, "train", cfg, dev, cfg.n_train)
        half = x.shape[0] // 2
        if half < 2:
            raise ConfigError(f"n_train: need at least 4 train images, got {x.shape[0]}")
        self.cfg = cfg
        self.pretrain, self.target = x[:half], x[half:]
        self.test, self.test_labels = image_source(cfg.data, "test", cfg, dev, cfg.n_test)
        self.cls_x, self.cls_y = x, y

    def autoencoder(self):
        from .conv import ConvAutoencoder

        return ConvAutoencoder(self.cfg.latent_dim, image_size=28, width=self.cfg.ae_width or 32, seed=self.cfg.seed)

    def classifier(self):
        from .conv import ConvClassifier

        return ConvClassifier(image_size=28, seed=self.cfg.seed)

    def shift(self, x, strength, kind, gen):
        from .datasets import shift_images

        return shift_images(x, strength, kind=kind, seed=gen)

    def fd(self, images, reference, classifier) -> float:
        from .datasets import frechet_image_distance

        return frechet_image_distance(images, reference, classifier)


def _batched(fn, x, size: int = 1000):
    with torch.no_grad():
        return torch.cat([fn(b) for b in x.split(size)])


# ------------------------------------------------------------------------------------- the run
def run_latent_sb(cfg: LatentSBConfig, run, place) -> dict:
    """The whole pipeline; returns the final metrics (rank 0; other ranks return {} after training)."""
    from .bridges.heat import HeatFlowBridge
    from .bridges.matching import matching_loss
    from .metrics import w2
    from .nets import TimeMLP
    from .sde import sample
    from .train import fit
    from .utils import generator

    started, dev = time.time(), place.device
    for key in ("ae_batch_size", "classifier_batch_size", "bridge_batch_size"):
        distributed.check_global_batch(getattr(cfg, key), key)
    space = _Digits(cfg, dev) if cfg.data == "digits" else _Images(cfg, dev)

    # ---- phase 1: the autoencoder, pre-trained on shifted images only
    ae = space.autoencoder().to(dev)
    objective = distributed.Objective(ae, lambda m, x, gen: m.loss(x, gen))
    pre, b_ae = space.pretrain, cfg.ae_batch_size

    def ae_loss(model, step, gen):
        idx = torch.randint(0, pre.shape[0], (b_ae,), generator=gen, device=dev)
        return model(distributed.shard(space.shift(pre[idx], cfg.shift, cfg.shift_kind, gen)), gen)

    hist = fit(objective, ae_loss, cfg.ae_steps, lr=cfg.ae_lr, ema=0.995, desc="autoencoder",
               **fit_options(cfg, run, "autoencoder", started))
    run.log_losses("autoencoder", hist.losses, cfg.log_every, new_from=hist.start_step)
    ae.load_state_dict(hist.ema.model.state_dict())
    ae.eval()
    with torch.no_grad():                      # standardise the latent space on the shifted codes
        shifted = space.shift(pre, cfg.shift, cfg.shift_kind, generator(cfg.seed + 1, dev))
        codes = _batched(ae.raw_code, shifted)
        ae.latent_mean.copy_(codes.mean(0))
        ae.latent_scale.copy_(codes.std(0).clamp_min(1e-6))

    # ---- phase 2: the classifier whose features define the Fréchet distance (clean images)
    clf = space.classifier().to(dev)
    cx, cy, b_cls = space.cls_x, space.cls_y, cfg.classifier_batch_size

    def clf_loss(model, step, gen):
        idx = torch.randint(0, cx.shape[0], (b_cls,), generator=gen, device=dev)
        xb, yb = distributed.shard(space.shift(cx[idx], 0.5, "translate", gen), cy[idx])
        return F.cross_entropy(model(xb), yb)

    hist_c = fit(clf, clf_loss, cfg.classifier_steps, lr=cfg.classifier_lr, ema=0.995, desc="classifier",
                 **fit_options(cfg, run, "classifier", started))
    run.log_losses("classifier", hist_c.losses, cfg.log_every, new_from=hist_c.start_step)
    clf.load_state_dict(hist_c.ema.state_dict())
    clf.eval()

    # ---- phase 3: the latent bridge to the codes of the target images
    points = _batched(ae.encode, space.target)
    d, b_br, sigma = points.shape[1], cfg.bridge_batch_size, cfg.sigma
    net = None
    if cfg.bridge == "heat-learned":
        net = TimeMLP(d, width=cfg.bridge_width, depth=3, seed=cfg.seed).to(dev)

        def bridge_loss(model, step, gen):    # fit_heat_flow's regression, sharded after every draw
            idx = torch.randint(0, points.shape[0], (b_br,), generator=gen, device=dev)
            t = torch.rand(b_br, 1, generator=gen, device=dev, dtype=points.dtype) * (1 - cfg.t_gap)
            eps = torch.randn(b_br, d, generator=gen, device=dev, dtype=points.dtype)
            z_t = points[idx] + sigma * torch.sqrt(1 - t) * eps
            z_t, t, target = distributed.shard(z_t, t, -sigma * eps / torch.sqrt(1 - t))
            return matching_loss(model, z_t, t, target)

        hist_b = fit(net, bridge_loss, cfg.bridge_steps, lr=cfg.bridge_lr, ema=0.995, desc="latent bridge",
                     **fit_options(cfg, run, "bridge", started))
        run.log_losses("bridge", hist_b.losses, cfg.log_every, new_from=hist_b.start_step)
        net = hist_b.ema.eval()
    run.write_metrics()
    if not distributed.main_goes_on():      # the other ranks leave here
        return {}

    # ---- sample, decode, evaluate (rank 0)
    bridge = HeatFlowBridge(points, sigma, net=net)
    n = cfg.n_samples or min(space.test.shape[0], 2000)
    gen = generator(cfg.seed + 2, dev)
    with torch.no_grad():
        z = sample(bridge, bridge.start(n, how="follmer", seed=gen), steps=cfg.sample_steps,
                   t1=1.0 - cfg.t_gap, seed=gen).x
        images = _batched(ae.decode, z)
    metrics = _evaluate(space, ae, clf, z, images, w2, distributed.float64_device(dev))
    metrics.update(latent_dim=d, n_samples=n, seconds=time.time() - started)
    grid = (-1, 1, space.side, space.side)
    save_image_grid(run, images.reshape(grid), "samples", f"latent SB samples ({cfg.data}, d* = {d})")
    save_image_grid(run, space.target.reshape(grid), "target", f"real target images ({cfg.data})")
    return metrics


def _evaluate(space, ae, clf, z, images, w2, edev) -> dict:
    """FD of the samples, of real target images (the floor) and of reconstructions (the decoder's
    floor), the latent W2 to the test codes, the classifier's test accuracy and the class-histogram TV."""
    clf = clf.to(edev)
    images, test, target = images.to(edev), space.test.to(edev), space.target.to(edev)
    n = min(images.shape[0], target.shape[0])
    with torch.no_grad():
        recon = _batched(lambda x: ae.decode(ae.encode(x)), space.target[:n]).to(edev)
        test_codes = _batched(ae.encode, space.test)
        logits = _batched(clf, images)
        test_logits = _batched(clf, test)
    hist = torch.bincount(logits.argmax(1).cpu(), minlength=10).double() / logits.shape[0]
    ref = torch.bincount(test_logits.argmax(1).cpu(), minlength=10).double() / test_logits.shape[0]
    m = min(z.shape[0], test_codes.shape[0], 1000)
    return {
        "fd": space.fd(images, test, clf),
        "fd_real_floor": space.fd(target[:n], test, clf),
        "fd_reconstruction": space.fd(recon, test, clf),
        "latent_w2": w2(z[:m].cpu(), test_codes[:m].cpu()),
        "classifier_test_accuracy": float((test_logits.argmax(1).cpu() == space.test_labels.cpu()).double().mean()),
        "tv_classes": float(0.5 * (hist - ref).abs().sum()),
    }
