"""IDX reader/writer, the image data sets (digits, MNIST layout through a fixture), downloads offline."""
import gzip
import hashlib
import struct
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch

from lsbcore import datasets as D
from lsbcore.digits import load_digits
from lsbcore.idx import DTYPES, read_idx, write_idx
from lsbcore.utils import ChecksumError

IDX_DTYPES = [torch.uint8, torch.int8, torch.int16, torch.int32, torch.float32, torch.float64]


# ------------------------------------------------------------------------------------ IDX
@pytest.mark.parametrize("dtype", IDX_DTYPES)
@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize("shape", [(5,), (3, 4), (2, 3, 4), (1, 2, 1, 3)])
def test_idx_round_trip_every_type(tmp_path, dtype, suffix, shape):
    gen = torch.Generator().manual_seed(1)
    info = torch.iinfo(dtype) if not dtype.is_floating_point else None
    if info is None:
        t = torch.randn(shape, generator=gen, dtype=torch.float64).to(dtype) * 1e3
    else:   # the full range, extremes included (byte order shows in them)
        t = torch.randint(info.min, info.max, shape, generator=gen, dtype=torch.int64).to(dtype)
        t.view(-1)[0] = info.min
        t.view(-1)[-1] = info.max
    back = read_idx(write_idx(tmp_path / f"a.idx{suffix}", t))
    assert back.dtype == dtype and back.shape == t.shape
    assert torch.equal(back, t)


def test_idx_layout_is_the_published_one(tmp_path):
    """MNIST's label header: 00 00 08 01, then n as a big-endian uint32, then one byte per label."""
    p = write_idx(tmp_path / "labels", torch.tensor([7, 2, 1], dtype=torch.uint8))
    assert p.read_bytes() == bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 2, 1])
    p = write_idx(tmp_path / "f", torch.tensor([[1.5, -2.0]], dtype=torch.float32))
    assert p.read_bytes() == bytes([0, 0, 0x0D, 2]) + struct.pack(">II", 1, 2) + struct.pack(">ff", 1.5, -2.0)
    assert set(DTYPES) == {0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E}


def test_idx_gzip_bytes_are_deterministic(tmp_path):
    t = torch.arange(100, dtype=torch.int32).reshape(10, 10)
    a = write_idx(tmp_path / "a.gz", t).read_bytes()
    b = write_idx(tmp_path / "b.gz", t).read_bytes()
    assert a == b and a[:2] == b"\x1f\x8b"


def _raw(tmp_path, data: bytes, name="x.idx"):
    p = tmp_path / name
    p.write_bytes(data)
    return p


@pytest.mark.parametrize("data,match", [
    (b"", "truncated"),
    (b"\x00\x00", "truncated"),
    (b"\x01\x00\x08\x01\x00\x00\x00\x01\x05", "magic"),
    (b"\x00\x00\x07\x01\x00\x00\x00\x01\x05", "type code"),
    (b"\x00\x00\x08\x00", "0 dimensions"),
    (b"\x00\x00\x08\x02\x00\x00\x00\x01", "header"),
    (b"\x00\x00\x08\x01\x00\x00\x00\x03\x05\x06", "truncated"),
    (b"\x00\x00\x08\x01\x00\x00\x00\x01\x05\x06", "longer"),
    (b"\x00\x00\x0C\x01\x00\x00\x00\x01\x05\x06", "truncated"),
])
def test_idx_corrupt_files_raise(tmp_path, data, match):
    with pytest.raises(ValueError, match=match):
        read_idx(_raw(tmp_path, data))


def test_idx_truncated_and_fake_gzip(tmp_path):
    good = write_idx(tmp_path / "a.gz", torch.zeros(50, 50, dtype=torch.uint8)).read_bytes()
    with pytest.raises(ValueError, match="gzip"):
        read_idx(_raw(tmp_path, good[: len(good) // 2], "cut.gz"))
    with pytest.raises(ValueError, match="not a gzip"):
        read_idx(_raw(tmp_path, b"\x00\x00\x08\x01\x00\x00\x00\x00", "plain.gz"))
    # a valid gzip stream around a truncated IDX body is caught by the length check
    inner = write_idx(tmp_path / "p", torch.zeros(4, dtype=torch.uint8)).read_bytes()[:-1]
    with pytest.raises(ValueError, match="truncated"):
        read_idx(_raw(tmp_path, gzip.compress(inner), "short.gz"))


def test_idx_bad_arguments(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "missing")
    with pytest.raises(TypeError, match="path"):
        read_idx(3)
    with pytest.raises(TypeError, match="tensor"):
        write_idx(tmp_path / "a", torch.zeros(3, dtype=torch.int64))
    with pytest.raises(TypeError, match="tensor"):
        write_idx(tmp_path / "a", [1, 2])
    with pytest.raises(ValueError, match="dimensions"):
        write_idx(tmp_path / "a", torch.tensor(3, dtype=torch.uint8))
    arr = np.arange(6, dtype=np.int16).reshape(2, 3)
    assert torch.equal(read_idx(write_idx(tmp_path / "n", arr)), torch.from_numpy(arr))


# ------------------------------------------------------------------------------------ data sets
@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
def test_fixture_reads_back_bit_exactly(tmp_path, name):
    sums = D.write_fixture(tmp_path, name, n_train=20, n_test=12, seed=3)
    assert set(sums) == set(D.SHA256[name])
    for f, s in sums.items():
        assert hashlib.sha256((tmp_path / f).read_bytes()).hexdigest() == s
    raw_x = read_idx(tmp_path / "train-images-idx3-ubyte.gz")
    raw_y = read_idx(tmp_path / "train-labels-idx1-ubyte.gz")
    assert raw_x.dtype == torch.uint8 and raw_x.shape == (20, 28, 28) and raw_y.shape == (20,)
    for verify in (sums, False):
        x, y = D.load_images(name, "train", data_dir=tmp_path, verify=verify)
        assert x.dtype == torch.float32 and x.shape == (20, 1, 28, 28)
        assert y.dtype == torch.int64 and y.shape == (20,)
        assert torch.equal((x[:, 0] * 255).round().to(torch.uint8), raw_x)      # k/255 → k exactly
        assert torch.equal(y, raw_y.long())
        assert 0 <= float(x.min()) and float(x.max()) <= 1
    xt, yt = D.load_images(name, "test", data_dir=str(tmp_path), verify=sums)
    assert xt.shape == (12, 1, 28, 28) and yt.shape == (12,)
    # same seed → same bytes
    assert D.write_fixture(tmp_path / "again", name, n_train=20, n_test=12, seed=3) == sums


def test_subset_is_seeded_and_nested(tmp_path):
    sums = D.write_fixture(tmp_path, "mnist", n_train=30, n_test=4)
    x, y = D.load_images("mnist", data_dir=tmp_path, verify=sums)
    a, la = D.load_images("mnist", data_dir=tmp_path, verify=sums, n=10, seed=5)
    b, _ = D.load_images("mnist", data_dir=tmp_path, verify=sums, n=20, seed=5)
    c, _ = D.load_images("mnist", data_dir=tmp_path, verify=sums, n=10, seed=6)
    assert torch.equal(a, b[:10]) and not torch.equal(a, c)
    keep = torch.randperm(30, generator=torch.Generator().manual_seed(5))[:10]
    assert torch.equal(a, x[keep]) and torch.equal(la, y[keep])
    with pytest.raises(ValueError, match="n must be ≤ 30"):
        D.load_images("mnist", data_dir=tmp_path, verify=sums, n=31)


def test_checksum_mismatch_raises(tmp_path):
    sums = D.write_fixture(tmp_path, "mnist", n_train=8, n_test=4)
    with pytest.raises(ChecksumError, match="train-images"):     # the fixture is not the real MNIST
        D.load_images("mnist", data_dir=tmp_path, verify=True)
    bad = dict(sums, **{"t10k-labels-idx1-ubyte.gz": "0" * 64})
    with pytest.raises(ChecksumError, match="t10k-labels"):
        D.load_images("mnist", "test", data_dir=tmp_path, verify=bad)
    with pytest.raises(ValueError, match="verify has no sha256"):
        D.load_images("mnist", data_dir=tmp_path, verify={"x": "0"})


def test_published_sums_table():
    for name in ("mnist", "fashion-mnist"):
        files = {f for pair in D.FILES[name].values() for f in pair}
        assert set(D.SHA256[name]) == files
        assert all(len(s) == 64 and int(s, 16) >= 0 for s in D.SHA256[name].values())
    assert D.SHA256["mnist"]["train-images-idx3-ubyte.gz"].startswith("440fcabf")


def test_missing_file_names_file_and_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"train-images-idx3-ubyte\.gz.*" + str(tmp_path)):
        D.load_images("mnist", data_dir=tmp_path)


def test_download_offline_is_a_clear_error(tmp_path, monkeypatch):
    def offline(url, timeout=None):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(D, "_urlopen", offline)
    target = tmp_path / "new"
    with pytest.raises(D.DownloadError) as err:
        D.load_images("fashion-mnist", data_dir=target, download=True)
    msg = str(err.value)
    assert "train-images-idx3-ubyte.gz" in msg and str(target) in msg and "no network" in msg
    assert isinstance(err.value, OSError)
    assert list(target.iterdir()) == []        # no partial file left behind


def test_download_from_a_local_mirror(tmp_path, monkeypatch):
    """download=True through urllib with file:// URLs: files fetched, verified, then loaded."""
    mirror = tmp_path / "mirror"
    sums = D.write_fixture(mirror, "mnist", n_train=10, n_test=5)
    monkeypatch.setitem(D.MIRRORS, "mnist", ("file:///nonexistent/", mirror.as_uri() + "/"))
    x, y = D.load_images("mnist", "test", data_dir=tmp_path / "cache", download=True, verify=sums)
    assert x.shape == (5, 1, 28, 28)
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == sorted(["t10k-images-idx3-ubyte.gz",
                                                                            "t10k-labels-idx1-ubyte.gz"])
    # a mirror serving the wrong bytes is refused (sha256), and nothing is kept
    with pytest.raises(D.DownloadError, match="sha256"):
        D.load_images("mnist", "train", data_dir=tmp_path / "cache2", download=True,
                      verify=dict(sums, **{"train-images-idx3-ubyte.gz": "1" * 64}))
    assert not (tmp_path / "cache2" / "train-images-idx3-ubyte.gz").exists()


def test_default_data_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("LSB_DATA_DIR", str(tmp_path))
    assert D.default_data_dir("mnist") == tmp_path / "mnist"
    monkeypatch.delenv("LSB_DATA_DIR")
    assert D.default_data_dir("fashion-mnist") == Path.home() / ".cache" / "lsbcore" / "fashion-mnist"


@pytest.mark.parametrize("split", ["pretrain", "target", "test", "all"])
def test_digits_match_load_digits(split):
    x, y = D.load_images("digits", split)
    ref_x, ref_y = load_digits(split)
    assert x.shape == (ref_x.shape[0], 1, 8, 8) and x.dtype == torch.float32
    assert torch.equal(x.reshape(-1, 64), ref_x) and torch.equal(y, ref_y)


def test_digits_train_is_pretrain_then_target():
    x, y = D.load_images("digits", "train")
    a, b = load_digits("pretrain")[0], load_digits("target")[0]
    assert torch.equal(x.reshape(-1, 64), torch.cat([a, b])) and y.shape == (1400,)


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(name="cifar"), ValueError, "name"),
    (dict(name=3), TypeError, "name"),
    (dict(name="mnist", split="val"), ValueError, "split"),
    (dict(name="digits", split="val"), ValueError, "split"),
    (dict(name="mnist", split=1), TypeError, "split"),
    (dict(name="mnist", data_dir="/nonexistent/lsb"), ValueError, "data_dir"),
    (dict(name="mnist", data_dir=5), TypeError, "data_dir"),
    (dict(name="mnist", data_dir="/dev/null"), ValueError, "data_dir"),
    (dict(name="mnist", data_dir="/tmp", verify="yes"), TypeError, "verify"),
    (dict(name="digits", n=0), ValueError, "n"),
    (dict(name="digits", n=2.5), TypeError, "n"),
])
def test_load_images_bad_arguments(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        D.load_images(**kwargs)


def test_write_fixture_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="name"):
        D.write_fixture(tmp_path, "digits")
    with pytest.raises(ValueError, match="n_train"):
        D.write_fixture(tmp_path, "mnist", n_train=0)
    with pytest.raises(TypeError, match="data_dir"):
        D.write_fixture(None, "mnist")


# ------------------------------------------------------------------------------------ images
def test_check_images():
    x = torch.rand(3, 1, 4, 4)
    assert D.check_images(x) is x
    assert D.check_images(x.reshape(3, 16), channels=1, image_size=4).shape == (3, 1, 4, 4)
    bad = x.clone()
    bad[0, 0, 0, 0] = float("nan")
    for arg, exc, match in [(bad, ValueError, "NaN"), (x[:, 0], ValueError, "shape"), (x.long(), TypeError, "float"),
                            (x.numpy(), TypeError, "Tensor"), (x[:0], ValueError, "empty")]:
        with pytest.raises(exc, match=match):
            D.check_images(arg, "images")
    with pytest.raises(ValueError, match="8×8"):
        D.check_images(x, image_size=8)


def test_shift_images_matches_shift_digits():
    from lsbcore.digits import shift_digits

    x = load_digits("test")[0][:16]
    for kind in ("translate", "blur", "noise"):
        a = D.shift_images(x.reshape(16, 1, 8, 8), 1.5, kind=kind, seed=4).reshape(16, 64)
        assert torch.equal(a, shift_digits(x, 1.5, kind=kind, seed=4))     # the same operations
    assert torch.equal(D.shift_images(x.reshape(16, 1, 8, 8), 0.0), x.reshape(16, 1, 8, 8))
    with pytest.raises(ValueError, match="kind"):
        D.shift_images(x.reshape(16, 1, 8, 8), 1.0, kind="rotate")
