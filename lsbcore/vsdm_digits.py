"""VSDM on the 8×8 digits (issue 13): a diagonal A against the VP-SDE, in pixel and in latent space.

The question: does the low-NFE advantage VSDM showed on the anisotropic 2-D shapes (notebook 06) carry
over to images? Both models are :func:`lsbcore.bridges.vsdm_diag.fit_vsdm_diag` with the same TimeMLP,
steps, batch, learning-rate schedule, EMA and seed (:data:`RECIPE`); they differ only in the forward
process: VP-SDE (s = 0 frozen) or VSDM with A = diag(s) learned by stochastic approximation
(:data:`MODELS`, ζ = 0.85 as on the shapes).

* ``space="pixel"``: the 64 pixels of the ``"target"`` split (700 digits), mapped from [0, 1] to
  [−1, 1] (as upstream maps images); samples are mapped back and clipped to [0, 1].
* ``space="latent"``: the 8-D codes of the same digits under the shipped autoencoder
  (:func:`lsbcore.shipped_autoencoder`, ``ae_shift=0`` by default: the one pre-trained without
  distribution shift, so that the comparison is pixel vs latent and not also clean vs shifted);
  samples are decoded to pixels.

Generation: the probability-flow ODE with Heun's method from the model's prior, NFE = 2 × steps
(NFE 6, 8, 16, 50 = 3, 4, 8, 25 steps). Scores, all on decoded pixels against the held-out ``"test"``
split (397 digits): the Fréchet digits distance (FDD, shipped classifier), the total variation between
predicted-class histograms (:func:`lsbcore.digits.evaluate_digits`) and the memorisation ratio
against the training digits (:func:`lsbcore.metrics.memorisation_ratio`). Floors (:func:`fdd_floors`):
FDD between two held-out halves (198 vs 199: biased up by the small samples) and between the 700
training digits and the test split (the same sample sizes as a scored model). docs/theory.md §6–7.
"""
from __future__ import annotations

import time

import torch

from .bridges.vsdm import VSDM, LinearForward
from .bridges.vsdm_diag import fit_vsdm_diag
from .digits import PIXELS, evaluate_digits, frechet_digits_distance, load_digits
from .metrics import memorisation_ratio
from .utils import check_int, check_seed

__all__ = ["SPACES", "DIGITS_RECIPE", "DIGITS_MODELS", "NFES", "digits_training_data", "decode", "diag_image",
           "evaluate_digit_model", "fdd_floors", "run", "shipped_data_bench"]

SPACES = ("pixel", "latent")
NFES = (6, 8, 16, 50)
#: the recipe of both models: a width-256 TimeMLP (3 hidden layers), 3,000 Adam steps of batch 256,
#: lr 2e-3 with a cosine decay, EMA 0.999, β_max = 10; for VSDM, A = 0 for the first steps/10 steps, then
#: an update_A step every 20 network steps (γ_k = 0.02 (1 + k/10)^−0.6, 256 backward paths of 20 steps),
#: and the network trains alone on the final A for the last steps/4 (:func:`run` sets warm-up and freeze
#: so; 98 A-steps at 3,000 steps).
DIGITS_RECIPE = dict(steps=3_000, batch_size=256, width=256, depth=3, lr=2e-3, schedule="cosine", ema=0.999,
                     beta_max=10.0, a_every=20, a_lr=0.02, a_decay=0.6, a_paths=256, a_steps=20)
#: model name → the arguments of fit_vsdm_diag that make it
DIGITS_MODELS = {"VP": dict(adaptive=False), "VSDM": dict(adaptive=True, zeta=0.85)}


def _check_space(space: str) -> str:
    if space not in SPACES:
        raise ValueError(f"space must be one of {SPACES}, got {space!r}")
    return space


def _autoencoder(latent_dim: int, ae_shift: float):
    from .shipped import shipped_autoencoder

    return shipped_autoencoder(latent_dim, shift=ae_shift)


def digits_training_data(space: str = "pixel", *, latent_dim: int = 8, ae_shift: float = 0.0):
    """The training points of one space: ``"pixel"`` → (700, 64) in [−1, 1]; ``"latent"`` → (700, d)
    codes of the shipped autoencoder. Returns ``(points, autoencoder or None)``. Notebook 07 §2.1–2.3."""
    x, _ = load_digits("target")
    if _check_space(space) == "pixel":
        return 2 * x - 1, None
    ae = _autoencoder(latent_dim, ae_shift)
    with torch.no_grad():
        return ae.encode(x), ae


def decode(points, autoencoder=None) -> torch.Tensor:
    """Model samples → (n, 64) pixels in [0, 1]: clip((x + 1)/2) in pixel space, the decoder in latent space."""
    if autoencoder is None:
        return ((points + 1) / 2).clamp(0, 1)
    with torch.no_grad():
        return autoencoder.decode(points)


def diag_image(forward: LinearForward) -> torch.Tensor:
    """The learned diagonal of A (s, one value per pixel) as an (8, 8) float64 image: pixel (i, j) holds
    the s of that pixel's coordinate. Needs a 64-D forward (pixel space). Notebook 07 §2.1–2.3."""
    if not isinstance(forward, LinearForward):
        raise TypeError(f"forward must be a LinearForward, got {type(forward).__name__}")
    if forward.dim != PIXELS:
        raise ValueError(f"forward must act on the {PIXELS} pixels (pixel space), got dim={forward.dim}")
    return forward.A().detach().diagonal().to(torch.float64).cpu().reshape(8, 8).clone()


def fdd_floors(classifier) -> dict:
    """FDD of real digits: ``"halves"`` (test[:198] vs test[198:]) and ``"train"`` (the 700 training
    digits vs the 397 test digits, the sample sizes at which :func:`evaluate_digit_model` scores)."""
    test, _ = load_digits("test")
    train, _ = load_digits("target")
    h = test.shape[0] // 2
    return {"halves": frechet_digits_distance(test[:h], test[h:], classifier),
            "train": frechet_digits_distance(train, test, classifier)}


def evaluate_digit_model(bridge: VSDM, classifier, *, autoencoder=None, nfes=NFES, n: int = 700,
                         seed: int = 0) -> dict:
    """Score PF-ODE (Heun) samples at each NFE: NFE → {"fdd", "tv_classes", "class_hist", "confidence",
    "memorisation"}, all on ``n`` decoded digits against the test split (memorisation: against the
    training digits). The samples are drawn on the bridge's device and scored on the classifier's.
    Notebook 07 §2.1–2.3."""
    if not isinstance(bridge, VSDM):
        raise TypeError(f"bridge must be a VSDM, got {type(bridge).__name__}")
    n = check_int(n, "n", minimum=2)
    cdev = next(classifier.parameters()).device        # scored where the classifier lives
    adev = next(iter(autoencoder.buffers())).device if autoencoder is not None else cdev
    test, _ = load_digits("test", device=cdev)
    train, _ = load_digits("target", device=cdev)
    out = {}
    for nfe in nfes:
        nfe = check_int(nfe, "nfe", minimum=2)
        if nfe % 2:
            raise ValueError(f"nfe must be even (Heun: 2 evaluations per step), got {nfe}")
        res = bridge.sample(n, method="ode", steps=nfe // 2, seed=seed)
        images = decode(res.x.float().to(adev), autoencoder).to(cdev)
        ev = evaluate_digits(images, classifier, reference=test)
        out[nfe] = {"fdd": ev["fdd"], "tv_classes": ev["tv_classes"], "class_hist": ev["class_hist"].tolist(),
                    "confidence": ev["confidence"], "memorisation": memorisation_ratio(images, train, test),
                    "nfe": res.nfe}
    return out


def run(seed: int = 0, space: str = "pixel", model: str = "VSDM", *, nfes=NFES, n_eval: int = 700,
        latent_dim: int = 8, ae_shift: float = 0.0, progress: bool = False, return_bridge: bool = False,
        **override) -> dict:
    """Train one ``model`` (``"VSDM"`` or ``"VP"``) in one ``space`` with ``seed`` by :data:`DIGITS_RECIPE`
    (``override`` on top, e.g. ``steps=...``) and score it at ``nfes``. Returns a JSON-ready row:
    ``{"space", "model", "seed", "config", "train_s", "total_s", "s", "eval": {nfe: scores}}``
    (``s``: the learned diagonal of A; with ``return_bridge=True`` also ``"bridge"``). Deterministic for
    a seed on CPU. Notebook 07 §2.1–2.3; the bench runs 3 seeds × 2 models × 2 spaces.
    """
    from .shipped import shipped_classifier

    seed = check_seed(seed)
    _check_space(space)
    if model not in DIGITS_MODELS:
        raise ValueError(f"model must be one of {sorted(DIGITS_MODELS)}, got {model!r}")
    unknown = set(override) - set(DIGITS_RECIPE) - {"zeta", "s_max", "nonpositive", "beta_min", "beta_r",
                                                    "t_gap", "warmup", "freeze"}
    if unknown:
        raise ValueError(f"unknown training arguments {sorted(unknown)}")
    cfg = {**DIGITS_RECIPE, **DIGITS_MODELS[model], **override}
    steps = check_int(cfg["steps"], "steps")
    cfg.setdefault("warmup", steps // 10)
    cfg.setdefault("freeze", steps // 4)
    t0 = time.perf_counter()
    data, ae = digits_training_data(space, latent_dim=latent_dim, ae_shift=ae_shift)
    res = fit_vsdm_diag(data, seed=seed, progress=progress, **cfg)
    train_s = time.perf_counter() - t0
    ev = evaluate_digit_model(res.bridge, shipped_classifier(), autoencoder=ae, nfes=nfes, n=n_eval, seed=seed)
    row = {"space": space, "model": model, "seed": seed, "config": {**cfg, "latent_dim": latent_dim,
           "ae_shift": ae_shift} if space == "latent" else cfg, "train_s": train_s,
           "total_s": time.perf_counter() - t0, "s": res.bridge.forward.s.detach().tolist(),
           "n_A_updates": len(res.A_history) - 1, "eval": ev}
    if return_bridge:
        row["bridge"] = res.bridge
    return row


def shipped_data_bench(*, data_dir=None) -> dict:
    """The three-seed tables of ``bench/vsdm_data.py`` recorded in ``data/vsdm_data_bench.json`` (notebook 07):
    ``{"command", "digits": [rows of :func:`run`, NFE keys as strings], "digits_floors": {"train", "halves"},
    "forecast": [{"kind", "seed", "train_s", "s", "scores": {forecaster: [CRPS, energy score]}}]}``."""
    from .shipped import load_bench_table

    return load_bench_table("vsdm_data_bench.json", "bench/vsdm_data.py", ("digits", "forecast"), data_dir=data_dir)
