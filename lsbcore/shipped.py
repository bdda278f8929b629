"""The small trained networks shipped in ``data/`` (installed as ``lsbcore/data/``) so that
Notebooks 03–04 run in minutes on a CPU.

Every ``data/*.pt`` is a plain dict ``{"what", "config", "state"}`` (strings, numbers, tensors) whose
sha256 is recorded in ``data/MANIFEST.json``. Loading goes through the package's one checkpoint reader,
:func:`lsbcore.train.load_checkpoint`, with the manifest's sum: a corrupt or modified file raises
:class:`~lsbcore.utils.ChecksumError` before it is parsed, and ``torch.load(..., weights_only=True)``
never runs code from the file. ``python -m lsbcore rebuild-data`` (:func:`rebuild_data`) retrains
every file from fixed seeds on one CPU thread, which reproduces the same bytes on the same torch
version and CPU. data/README.md lists the files; Notebook 03 §2 uses them (and §4b the learned
latent drifts ``heat_d*.pt``).
"""
from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch
from torch import nn

from .autoencoder import Autoencoder, fit_autoencoder, fit_classifier
from .nets import DigitsClassifier, TimeMLP
from .checkpoint import load_checkpoint, save_checkpoint, sha256_file
from .utils import ChecksumError, check_int, resolve_device

__all__ = ["DATA_DIR", "MANIFEST_NAME", "SHIPPED", "sha256_file", "write_manifest", "verify_file",
           "checkpoint_name", "load_shipped", "shipped_autoencoder", "shipped_classifier", "rebuild_data",
           "load_bench_table", "SHIPPED_HEAT", "HEAT_RECIPE", "heat_drift_name", "fit_shipped_heat_drift",
           "shipped_heat_drift"]

MANIFEST_NAME = "MANIFEST.json"


def _data_dir() -> Path:
    """The folder of the shipped files: ``lsbcore/data/`` where lsbcore is installed from a wheel
    (the package data of ``lsbcore.data``, e.g. ``pip install`` from a URL in Colab), else the
    checkout's top-level ``data/`` (an editable install, ``make env``)."""
    installed = resources.files("lsbcore") / "data"
    if isinstance(installed, Path) and (installed / MANIFEST_NAME).is_file():
        return installed
    return Path(__file__).resolve().parents[1] / "data"


DATA_DIR = _data_dir()
_REBUILD = "restore it from git or rebuild it with `python -m lsbcore rebuild-data`"


def checkpoint_name(latent_dim: int, *, kind: str = "ae", shift: float = 1.0) -> str:
    """File name of a shipped autoencoder, e.g. ``ae_d8_shift1.pt`` (Notebook 03 §2)."""
    return f"{kind}_d{latent_dim}_shift{shift:g}.pt"


#: every shipped autoencoder: name → keyword arguments of ``fit_autoencoder``
SHIPPED = {checkpoint_name(d): dict(latent_dim=d) for d in (2, 4, 8, 16)}
SHIPPED.update({checkpoint_name(8, shift=s): dict(latent_dim=8, shift=s) for s in (0.0, 2.0)})
SHIPPED.update({checkpoint_name(d, kind="vae"): dict(latent_dim=d, kind="vae") for d in (2, 8)})


def heat_drift_name(latent_dim: int) -> str:
    """File name of a shipped learned latent drift, e.g. ``heat_d8.pt`` (Notebook 03 §4b)."""
    return f"heat_d{latent_dim}.pt"


#: every shipped learned reverse-heat-flow drift: name → the d* of the autoencoder whose codes it fits
SHIPPED_HEAT = {heat_drift_name(d): d for d in (2, 4, 8, 16)}
#: how they are trained (``fit_heat_flow`` on the codes of all 700 target digits; the loss still falls
#: slowly at 6000 steps, ≈ 2 % per 1000 steps (22.4 at d* = 8), far above the 8.4 of the memorising exact drift)
HEAT_RECIPE = dict(sigma=1.0, t_gap=0.01, steps=6000, width=128, depth=3, n_freq=8, batch_size=256, lr=2e-3,
                   seed=0)


# ------------------------------------------------------------------------------------ manifest
def write_manifest(data_dir=DATA_DIR) -> dict:
    """Record the sha256 of every ``*.pt`` file of ``data_dir`` in ``data_dir/MANIFEST.json`` (Notebook 03 §2)."""
    data_dir = Path(data_dir)
    sums = {p.name: sha256_file(p) for p in sorted(data_dir.glob("*.pt"))}
    (data_dir / MANIFEST_NAME).write_text(json.dumps(sums, indent=2, sort_keys=True) + "\n")
    return sums


def _recorded_sum(path: Path, data_dir: Path) -> str:
    """The manifest's sha256 for ``path``; FileNotFoundError / ChecksumError if there is none."""
    manifest = data_dir / MANIFEST_NAME
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist; rebuild it with `python -m lsbcore rebuild-data`")
    if not manifest.is_file():
        raise ChecksumError(f"no {MANIFEST_NAME} in {data_dir}: cannot verify {path.name}")
    sums = json.loads(manifest.read_text())
    if path.name not in sums:
        raise ChecksumError(f"{path.name} is not listed in {manifest}")
    return sums[path.name]


def verify_file(path, data_dir=None) -> Path:
    """Check ``path`` against the manifest of its directory (or ``data_dir``); raise ChecksumError if not.

    Notebook 03 §2 (shipped checkpoints).
    """
    path = Path(path)
    data_dir = Path(data_dir) if data_dir is not None else path.parent
    recorded = _recorded_sum(path, data_dir)
    actual = sha256_file(path)
    if actual != recorded:
        raise ChecksumError(f"{path} is corrupt or was modified: sha256 {actual[:12]}… but {MANIFEST_NAME} "
                            f"says {recorded[:12]}…; {_REBUILD}")
    return path


def load_bench_table(name: str, writer: str, lists: Sequence[str] = ("rows",), *, data_dir=None) -> dict:
    """A benchmark table shipped as JSON in ``data_dir`` (default :data:`DATA_DIR`): the dict in
    ``name``, which must hold a list under every key of ``lists`` (ValueError naming ``writer``, the
    script that writes it, otherwise). Tables are not checkpoints: they are not in the manifest."""
    path = Path(DATA_DIR if data_dir is None else data_dir) / name
    out = json.loads(path.read_text())
    if not isinstance(out, dict) or not all(isinstance(out.get(k), list) for k in lists):
        raise ValueError(f"{path} is not a table written by {writer}")
    return out


# ------------------------------------------------------------------------------------ loading
def load_shipped(name_or_path, *, data_dir=DATA_DIR, device=None) -> nn.Module:
    """Load a shipped autoencoder or classifier, verified against the manifest (Notebook 03 §2).

    ``name_or_path`` is a file name in ``data_dir`` (e.g. ``"ae_d8_shift1.pt"``) or a path (then the
    manifest of its own folder is used). The file's sha256 must match the manifest, else
    ``ChecksumError``; it is then read by :func:`lsbcore.train.load_checkpoint`.
    """
    path = Path(name_or_path)
    if not path.is_absolute() and not path.exists():
        path = Path(data_dir) / path
    try:
        ckpt = load_checkpoint(path, sha256=_recorded_sum(path, path.parent))
    except ChecksumError as err:
        raise ChecksumError(f"{err}; {_REBUILD}") from None
    except ValueError as err:  # parses but is not a weights-only torch file
        raise ChecksumError(f"{path} could not be read as a checkpoint: {err}") from None
    if not {"what", "config", "state"} <= set(ckpt):
        raise ChecksumError(f"{path} is not an lsbcore shipped checkpoint")
    cfg = ckpt["config"]
    if ckpt["what"] == "autoencoder":
        model = Autoencoder(cfg["latent_dim"], kind=cfg["kind"], hidden=cfg["hidden"])
    elif ckpt["what"] == "classifier":
        model = DigitsClassifier()
    elif ckpt["what"] == "heat-flow drift":
        model = TimeMLP(cfg["latent_dim"], width=cfg["width"], depth=cfg["depth"], n_freq=cfg["n_freq"])
    else:
        raise ChecksumError(f"{path} holds an unknown kind of checkpoint {ckpt['what']!r}")
    model.load_state_dict(ckpt["state"])
    model.config = cfg
    model.eval()
    return model.to(resolve_device(device)) if device is not None else model


def shipped_autoencoder(latent_dim: int = 8, *, kind: str = "ae", shift: float = 1.0, data_dir=DATA_DIR,
                        device=None) -> Autoencoder:
    """The shipped autoencoder for this d*, kind and translation shift (see ``SHIPPED``; Notebook 03 §2)."""
    name = checkpoint_name(latent_dim, kind=kind, shift=shift)
    if name not in SHIPPED:
        raise ValueError(f"no shipped checkpoint for latent_dim={latent_dim}, kind={kind!r}, shift={shift}; "
                         f"shipped: {sorted(SHIPPED)}")
    return load_shipped(name, data_dir=data_dir, device=device)


def shipped_classifier(*, data_dir=DATA_DIR, device=None) -> DigitsClassifier:
    """The shipped digits classifier of the Fréchet digits distance (Notebook 03 §2)."""
    return load_shipped("classifier.pt", data_dir=data_dir, device=device)


def shipped_heat_drift(latent_dim: int = 8, *, data_dir=DATA_DIR, device=None) -> TimeMLP:
    """The shipped learned reverse-heat-flow drift ``net(z, t)`` for the codes of the shipped d*
    autoencoder (Notebook 03 §4b): :func:`fit_shipped_heat_drift` with :data:`HEAT_RECIPE`, verified
    against the manifest. Use it as ``sample_codes("heat-learned", codes, n, net=net)`` or
    ``HeatFlowBridge(codes, 1.0, net=net)``; ``net.config`` holds the recipe."""
    name = heat_drift_name(check_int(latent_dim, "latent_dim"))
    if name not in SHIPPED_HEAT:
        raise ValueError(f"no shipped heat-flow drift for latent_dim={latent_dim!r}; shipped: {sorted(SHIPPED_HEAT)}")
    return load_shipped(name, data_dir=data_dir, device=device)


def fit_shipped_heat_drift(latent_dim: int, *, autoencoder=None, steps: Optional[int] = None,
                           progress: bool = True) -> TimeMLP:
    """Fit the learned latent drift that ``heat_d{latent_dim}.pt`` ships (Notebook 03 §4b).

    The regression :func:`lsbcore.bridges.heat.fit_heat_flow` on the codes E(x) of all 700 ``target``
    digits, with :data:`HEAT_RECIPE` (``steps`` overrides its length). ``autoencoder`` defaults to the
    shipped one for ``latent_dim``. Returns the EMA network, its ``config`` ready for saving.
    """
    from .bridges.heat import fit_heat_flow
    from .digits import load_digits

    latent_dim = check_int(latent_dim, "latent_dim")
    ae = autoencoder if autoencoder is not None else shipped_autoencoder(latent_dim)
    x, _ = load_digits("target")
    with torch.no_grad():
        codes = ae.encode(x)
    if codes.shape[1] != latent_dim:
        raise ValueError(f"the autoencoder has latent dimension {codes.shape[1]}, not latent_dim={latent_dim}")
    r = dict(HEAT_RECIPE, steps=HEAT_RECIPE["steps"] if steps is None else check_int(steps, "steps"))
    net = TimeMLP(latent_dim, width=r["width"], depth=r["depth"], n_freq=r["n_freq"], seed=r["seed"])
    bridge = fit_heat_flow(codes, r["sigma"], t_gap=r["t_gap"], steps=r["steps"], batch_size=r["batch_size"],
                           net=net, lr=r["lr"], seed=r["seed"], progress=progress)
    out = bridge.net
    out.config = dict(r, latent_dim=latent_dim, final_loss=float(np.mean(bridge.history[-500:])))
    return out


# ------------------------------------------------------------------------------------ rebuild
def _save(model: nn.Module, path: Path, *, what: str) -> Path:
    """Write ``{"what", "config", "state"}`` in the shipped format (no digest inside: the manifest has it)."""
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    return save_checkpoint({"what": what, "config": dict(model.config), "state": state}, path, digest=False)


def rebuild_data(data_dir=DATA_DIR, *, steps: Optional[int] = None, names: Optional[Sequence[str]] = None,
                 progress: bool = True) -> dict:
    """Retrain every shipped checkpoint on CPU from fixed seeds, save it and rewrite the manifest.

    ``steps`` overrides the training length (tests use a tiny value); ``names`` restricts to some files.
    Returns the manifest. Run as ``python -m lsbcore rebuild-data`` (data/README.md; Notebook 03 §2).
    """
    data_dir = Path(data_dir)
    from .bridges.vsdm_shapes import SHIPPED_VSDM, rebuild as rebuild_vsdm

    known = [*SHIPPED, "classifier.pt", *SHIPPED_VSDM, *SHIPPED_HEAT]
    todo = list(names) if names is not None else known
    for name in todo:
        if name not in known:
            raise ValueError(f"unknown shipped file {name!r}; known: {known}")
    todo = [name for name in known if name in set(todo)]   # autoencoders before the drifts fitted to their codes
    extra = {} if steps is None else {"steps": check_int(steps, "steps")}
    data_dir.mkdir(parents=True, exist_ok=True)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one thread: the same reduction order (so the same bytes) on any machine
    try:
        for name in todo:
            if name in SHIPPED_VSDM:      # notebook 06's models (≈ 2 min each)
                rebuild_vsdm(name, data_dir, progress=progress, **extra)
            elif name == "classifier.pt":
                _save(fit_classifier(progress=progress, **extra), data_dir / name, what="classifier")
            elif name in SHIPPED_HEAT:    # after the autoencoders: the codes of data_dir's own, if it has one
                d = SHIPPED_HEAT[name]
                here = data_dir / checkpoint_name(d)
                ae = shipped_autoencoder(d, data_dir=data_dir if here.is_file() else DATA_DIR)
                _save(fit_shipped_heat_drift(d, autoencoder=ae, progress=progress, **extra), data_dir / name,
                      what="heat-flow drift")
            else:
                _save(fit_autoencoder(progress=progress, **SHIPPED[name], **extra), data_dir / name,
                      what="autoencoder")
            write_manifest(data_dir)      # so that a file rebuilt earlier in this loop loads verified
    finally:
        torch.set_num_threads(threads)
    return write_manifest(data_dir)
