"""Checkpoint files with a checksum: the one writer and the one reader of the package.

Every file lsbcore saves (a training state from ``train.fit``, a shipped model, a run's checkpoint) is
a dict of tensors and plain values written by :func:`save_checkpoint` with a sha256 digest of its
content stored inside; :func:`load_checkpoint` reads it with ``torch.load(weights_only=True)`` (no
arbitrary Python objects are ever unpickled) and refuses a file whose content no longer matches its
digest (a flipped byte inside a tensor loads without complaint otherwise). Shipped files keep their
sums in ``data/MANIFEST.json`` and pass one as ``sha256=``. Notebook 02 §"Bridge matching" uses it
through ``train.fit(checkpoint=...)``.
"""
from __future__ import annotations

import hashlib
import os
import pickle
import tempfile
from pathlib import Path
from typing import Optional, Union

import torch

from .utils import ChecksumError

__all__ = ["save_checkpoint", "load_checkpoint", "content_digest", "sha256_file"]

DIGEST_KEY = "sha256"
PathLike = Union[str, os.PathLike]


def sha256_file(path: PathLike) -> str:
    """Hex sha256 of a file's bytes (the sums of data/MANIFEST.json; Notebook 03 §2)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 16), b""):
            h.update(block)
    return h.hexdigest()


def content_digest(state) -> str:
    """Hex sha256 of a checkpoint's content: every key, number and string, and every tensor's dtype,
    shape and bytes, walked in a fixed order (so it does not depend on how torch lays out the file)."""
    h = hashlib.sha256()

    def feed(obj) -> None:
        if isinstance(obj, torch.Tensor):
            t = obj.detach().cpu().contiguous().reshape(-1)
            h.update(f"tensor {t.dtype} {tuple(obj.shape)}:".encode())
            h.update(t.view(torch.uint8).numpy().tobytes())
        elif isinstance(obj, dict):
            h.update(f"dict {len(obj)}:".encode())
            for key in sorted(obj, key=repr):
                feed(key)
                feed(obj[key])
        elif isinstance(obj, (list, tuple)):
            h.update(f"{type(obj).__name__} {len(obj)}:".encode())
            for item in obj:
                feed(item)
        elif isinstance(obj, float):
            h.update(f"float {obj.hex()};".encode())
        elif obj is None or isinstance(obj, (bool, int, str, bytes)):
            h.update(f"{type(obj).__name__} {obj!r};".encode())
        else:
            raise TypeError(f"a checkpoint holds tensors, numbers, strings, lists and dicts only, "
                            f"got {type(obj).__name__}")

    feed(state)
    return h.hexdigest()


def save_checkpoint(state: dict, path: PathLike, *, digest: bool = True) -> Path:
    """Write ``state`` (a plain dict) to ``path`` atomically: a crash mid-write leaves the old file.

    With ``digest`` (the default) the sha256 of the content (:func:`content_digest`) is stored in the
    file under the key ``"sha256"`` and checked by :func:`load_checkpoint`, so a flipped byte inside
    a tensor cannot load silently. ``digest=False`` is for files whose bytes a manifest records (the
    shipped data/*.pt). The file is written in a temporary folder beside ``path`` under the same
    name (torch names the archive inside after the file) and moved into place with ``os.replace``,
    which is atomic on POSIX and Windows. Notebook 02 §"Bridge matching".
    """
    if not isinstance(state, dict):
        raise TypeError(f"state must be a dict, got {type(state).__name__}")
    if DIGEST_KEY in state:
        raise ValueError(f"state must not hold the key {DIGEST_KEY!r}: save_checkpoint stores the digest there")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if digest:
        state = {**state, DIGEST_KEY: content_digest(state)}
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=f".{path.name}.") as tmp:
        torch.save(state, Path(tmp) / path.name)
        os.replace(Path(tmp) / path.name, path)
    return path


def load_checkpoint(path: PathLike, *, sha256: Optional[str] = None, map_location="cpu") -> dict:
    """Read a checkpoint and check its integrity: the one checkpoint reader of lsbcore.

    - ``sha256``: the hex sha256 the file's bytes must have (a manifest's entry, e.g. the shipped
      data/MANIFEST.json); checked before the file is parsed.
    - A file written by :func:`save_checkpoint` carries the digest of its content, checked after
      reading. A file with neither digest is refused: nothing unverified is loaded.
    - ``torch.load(weights_only=True)`` refuses to unpickle arbitrary objects, so a checkpoint from an
      untrusted source cannot run code.

    Errors: ``FileNotFoundError`` for a missing file; :class:`~lsbcore.utils.ChecksumError` (a
    ValueError) naming the file when a digest does not match; ``ValueError`` for a truncated, garbage
    or foreign file. Returns the dict without the digest. Notebook 02 §"Bridge matching".
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist")
    if sha256 is not None:
        actual = sha256_file(path)
        if actual != sha256:
            raise ChecksumError(f"checkpoint {str(path)!r} is corrupt or was modified: its sha256 is "
                                f"{actual[:12]}… but {sha256[:12]}… was recorded")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError:  # a forbidden global: the file holds arbitrary Python objects
        raise ValueError(f"checkpoint {str(path)!r} holds Python objects other than tensors, numbers and "
                         f"strings; lsbcore refuses to load it (unpickling them could run code)") from None
    except Exception as err:  # truncated zip, bad pickle, ... all mean "corrupt"
        raise ValueError(f"checkpoint {str(path)!r} is corrupt or not a weights-only torch file: "
                         f"{type(err).__name__}: {err}") from None
    if not isinstance(state, dict):
        raise ValueError(f"checkpoint {str(path)!r} does not hold a dict")
    recorded = state.pop(DIGEST_KEY, None)
    if recorded is None and sha256 is None:
        raise ChecksumError(f"checkpoint {str(path)!r} carries no sha256 digest and none was given: "
                            f"it was not written by lsbcore.save_checkpoint, so it cannot be verified")
    if recorded is not None:
        try:
            actual = content_digest(state)
        except TypeError as err:
            raise ValueError(f"checkpoint {str(path)!r} is corrupt: {err}") from None
        if actual != recorded:
            raise ChecksumError(f"checkpoint {str(path)!r} is corrupt or was modified: the digest of its "
                                f"content is {actual[:12]}… but it records {str(recorded)[:12]}…")
    return state

