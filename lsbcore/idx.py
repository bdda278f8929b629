"""The IDX file format of MNIST and Fashion-MNIST: a small reader and writer of our own.

An IDX file is a header followed by one array, row-major, big-endian ("most significant byte first")::

    bytes 0–1   0x00 0x00                       the magic number's two zero bytes
    byte  2     the element type (code below)
    byte  3     the number of dimensions, d ≥ 1
    bytes 4…    d sizes, each a big-endian unsigned 32-bit integer
    then        size₁ · … · size_d elements of the element type, big-endian

    code   0x08 uint8   0x09 int8   0x0B int16   0x0C int32   0x0D float32   0x0E float64

So MNIST's image file starts ``00 00 08 03`` (2051 read as one integer: uint8, 3 dims: n × 28 × 28)
and its label file ``00 00 08 01`` (2049: uint8, 1 dim: n). The distributed files are gzipped.

Why our own reader and not torchvision's datasets: the torchvision wheel that matches this torch
(0.28.0 for torch 2.13) fails to import next to the CPU build (``operator torchvision::nms does not
exist``), and installing another one would pull another torch. The format fits on a page, so reading
it is ~60 lines with a check of every byte count (issue 16, README "Real image data").
"""
from __future__ import annotations

import gzip
import io
import os
import tempfile
import zlib
from pathlib import Path
from typing import Union

import numpy as np
import torch

__all__ = ["DTYPES", "read_idx", "write_idx"]

PathLike = Union[str, os.PathLike]

#: IDX type code -> (big-endian NumPy dtype on disk, torch dtype in memory)
DTYPES = {
    0x08: (np.dtype(">u1"), torch.uint8),
    0x09: (np.dtype(">i1"), torch.int8),
    0x0B: (np.dtype(">i2"), torch.int16),
    0x0C: (np.dtype(">i4"), torch.int32),
    0x0D: (np.dtype(">f4"), torch.float32),
    0x0E: (np.dtype(">f8"), torch.float64),
}
_CODE_OF = {torch_dtype: code for code, (_, torch_dtype) in DTYPES.items()}
_GZIP_MAGIC = b"\x1f\x8b"
#: refuse to decompress more than this (a gzip "bomb" must not exhaust memory); MNIST's largest
#: file is 47 MB uncompressed
MAX_BYTES = 2**31


def read_idx(path: PathLike) -> torch.Tensor:
    """Read an IDX file (plain, or gzip-compressed: recognised by its first bytes) into a tensor.

    Every field is checked: the two zero bytes of the magic number, the type code, the number of
    dimensions (≥ 1), and that the data hold exactly size₁ · … · size_d elements (a truncated or
    padded file is refused). Returns a native-endian tensor of the file's type (uint8 for MNIST) and
    shape. Errors: ``FileNotFoundError`` for a missing file, ``ValueError`` naming the file otherwise.
    """
    path = _check_path(path, "path")
    if not path.is_file():
        raise FileNotFoundError(f"IDX file {str(path)!r} does not exist")
    raw = path.read_bytes()
    if raw[:2] == _GZIP_MAGIC:
        try:
            with gzip.GzipFile(fileobj=io.BytesIO(raw)) as f:
                raw = f.read(MAX_BYTES + 1)
        except (OSError, EOFError, zlib.error) as err:   # BadGzipFile is an OSError
            raise ValueError(f"IDX file {str(path)!r} is a corrupt or truncated gzip file: {err}") from None
        if len(raw) > MAX_BYTES:
            raise ValueError(f"IDX file {str(path)!r} decompresses to more than {MAX_BYTES} bytes")
    elif path.name.endswith(".gz"):
        raise ValueError(f"IDX file {str(path)!r} ends in .gz but is not a gzip file")
    return _parse(raw, path)


def _parse(raw: bytes, path: Path) -> torch.Tensor:
    where = f"IDX file {str(path)!r}"
    if len(raw) < 4:
        raise ValueError(f"{where} is truncated: {len(raw)} bytes, shorter than the 4-byte magic number")
    if raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"{where} has a bad magic number {raw[:4].hex()}: an IDX file starts with two zero bytes")
    code, ndim = raw[2], raw[3]
    if code not in DTYPES:
        raise ValueError(f"{where} has an unknown type code 0x{code:02X} (known: "
                         f"{', '.join(f'0x{c:02X}' for c in DTYPES)})")
    if ndim == 0:
        raise ValueError(f"{where} declares 0 dimensions")
    head = 4 + 4 * ndim
    if len(raw) < head:
        raise ValueError(f"{where} is truncated inside its header ({len(raw)} of {head} bytes)")
    shape = tuple(int(s) for s in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    disk, _ = DTYPES[code]
    count = int(np.prod(shape, dtype=object))          # Python ints: no overflow
    expected = head + count * disk.itemsize
    if len(raw) != expected:
        what = "truncated" if len(raw) < expected else "longer than its header says"
        raise ValueError(f"{where} is {what}: shape {shape} of {disk.itemsize}-byte elements needs "
                         f"{expected} bytes, the file has {len(raw)}")
    data = np.frombuffer(raw, dtype=disk, count=count, offset=head)
    return torch.from_numpy(data.astype(disk.newbyteorder("="), copy=True).reshape(shape))


def write_idx(path: PathLike, tensor) -> Path:
    """Write ``tensor`` (or a NumPy array) as an IDX file; gzip-compressed when ``path`` ends in ``.gz``.

    The inverse of :func:`read_idx`: ``read_idx(write_idx(p, t))`` equals ``t`` exactly, for each of
    the six IDX types (uint8, int8, int16, int32, float32, float64) and any shape with ≥ 1 dimension
    and sizes below 2³². The gzip header carries no time stamp or name, so the same tensor always gives
    the same bytes (and sha256). Written atomically (temporary file, then rename). Returns the path.
    """
    path = _check_path(path, "path")
    if isinstance(tensor, np.ndarray):
        tensor = torch.from_numpy(tensor)
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"tensor must be a torch.Tensor or numpy array, got {type(tensor).__name__}")
    if tensor.dtype not in _CODE_OF:
        raise TypeError(f"tensor must have an IDX dtype ({', '.join(str(d) for d in _CODE_OF)}), got {tensor.dtype}")
    if tensor.ndim == 0 or tensor.ndim > 255:
        raise ValueError(f"tensor must have 1 to 255 dimensions, got {tensor.ndim}")
    if any(s >= 2**32 for s in tensor.shape):
        raise ValueError(f"tensor's sizes must be below 2**32, got {tuple(tensor.shape)}")
    code = _CODE_OF[tensor.dtype]
    disk, _ = DTYPES[code]
    header = bytes([0, 0, code, tensor.ndim]) + np.asarray(tensor.shape, dtype=">u4").tobytes()
    body = tensor.detach().cpu().contiguous().numpy().astype(disk, copy=False).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            if path.name.endswith(".gz"):
                with gzip.GzipFile(filename="", mode="wb", fileobj=f, mtime=0) as gz:
                    gz.write(header)
                    gz.write(body)
            else:
                f.write(header)
                f.write(body)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _check_path(path, name: str) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{name} must be a file path (str or os.PathLike), got {type(path).__name__}")
    return Path(path)

