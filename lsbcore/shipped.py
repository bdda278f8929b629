"""The small trained networks shipped in ``data/`` (installed as ``lsbcore/data/``) so that
Notebooks 03–04 run in minutes on a CPU.

Every ``data/*.pt`` is a plain dict ``{"what", "config", "state"}`` (strings, numbers, tensors) whose
sha256 is recorded in ``data/MANIFEST.json``. Loading goes through the package's one checkpoint reader,
:func:`lsbcore.train.load_checkpoint`, with the manifest's sum: a corrupt or modified file raises
:class:`~lsbcore.utils.ChecksumError` before it is parsed, and ``torch.load(..., weights_only=True)``
never runs code from the file. ``python -m lsbcore rebuild-data`` (:func:`rebuild_data`) retrains
every file from fixed seeds on one CPU thread, which reproduces the same bytes on the same torch
version and CPU. data/README.md lists the files; Notebook 03 §2 uses them.
"""
from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Optional, Sequence

import torch
from torch import nn

from .autoencoder import Autoencoder, fit_autoencoder, fit_classifier
from .nets import DigitsClassifier
from .checkpoint import load_checkpoint, save_checkpoint, sha256_file
from .utils import ChecksumError, check_int

__all__ = ["DATA_DIR", "MANIFEST_NAME", "SHIPPED", "sha256_file", "write_manifest", "verify_file",
           "checkpoint_name", "load_shipped", "shipped_autoencoder", "shipped_classifier", "rebuild_data",
           "load_bench_table"]

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
    return load_shipped(name, data_dir=data_dir, device=device)


def shipped_classifier(*, data_dir=DATA_DIR, device=None) -> DigitsClassifier:
    """The shipped digits classifier of the Fréchet digits distance (Notebook 03 §2)."""
    return load_shipped("classifier.pt", data_dir=data_dir, device=device)


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

    known = [*SHIPPED, "classifier.pt", *SHIPPED_VSDM]
    todo = list(names) if names is not None else known
    for name in todo:
        if name not in known:
            raise ValueError(f"unknown shipped file {name!r}; known: {known}")
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
            else:
                _save(fit_autoencoder(progress=progress, **SHIPPED[name], **extra), data_dir / name,
                      what="autoencoder")
    finally:
        torch.set_num_threads(threads)
    return write_manifest(data_dir)
