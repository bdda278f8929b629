"""Shipped checkpoints in data/: manifest sums, tamper detection, deterministic rebuild, quality."""
import json
import shutil

import pytest
import torch

from lsbcore import autoencoder as A
from lsbcore import digits as D
from lsbcore import shipped as S
from lsbcore.bridges.vsdm_shapes import SHIPPED_VSDM
from lsbcore.train import load_checkpoint
from lsbcore.utils import ChecksumError

SHIPPED_FILES = sorted([*S.SHIPPED, "classifier.pt", *SHIPPED_VSDM, *S.SHIPPED_HEAT])


def test_manifest_lists_every_shipped_file_with_matching_sums():
    sums = json.loads((S.DATA_DIR / S.MANIFEST_NAME).read_text())
    assert sorted(sums) == SHIPPED_FILES
    for name in SHIPPED_FILES:
        assert S.sha256_file(S.DATA_DIR / name) == sums[name], name
    total = sum((S.DATA_DIR / n).stat().st_size for n in SHIPPED_FILES)
    assert total < 5 * 2**20, f"shipped files take {total} bytes, over the 5 MB budget"


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_tampered_checkpoint_gives_a_clear_error(tmp_path, damage):
    for name in ("ae_d2_shift1.pt", S.MANIFEST_NAME):
        shutil.copy(S.DATA_DIR / name, tmp_path / name)
    f = tmp_path / "ae_d2_shift1.pt"
    data = bytearray(f.read_bytes())
    if damage == "flip":
        data[len(data) // 2] ^= 0xFF
    else:
        data = data[: len(data) // 3]
    f.write_bytes(bytes(data))
    with pytest.raises(ChecksumError, match="corrupt or was modified.*rebuild"):
        S.load_shipped("ae_d2_shift1.pt", data_dir=tmp_path)
    with pytest.raises(ChecksumError, match="corrupt or was modified"):
        S.verify_file(f)
    # the one reader, given the manifest's sum, refuses it before parsing; without a sum it refuses a
    # file that carries no digest, and a truncated file is a clear ValueError, never a torch traceback
    with pytest.raises(ChecksumError, match="ae_d2_shift1.pt"):
        load_checkpoint(f, sha256=S.sha256_file(S.DATA_DIR / "ae_d2_shift1.pt"))
    with pytest.raises(ValueError, match="corrupt|no sha256 digest"):
        load_checkpoint(f)


def test_unlisted_or_missing_files_are_refused(tmp_path):
    shutil.copy(S.DATA_DIR / "ae_d2_shift1.pt", tmp_path / "other.pt")
    shutil.copy(S.DATA_DIR / S.MANIFEST_NAME, tmp_path / S.MANIFEST_NAME)
    with pytest.raises(ChecksumError, match="not listed"):
        S.load_shipped("other.pt", data_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match="rebuild"):
        S.load_shipped("absent.pt", data_dir=tmp_path)


class Evil:
    """Any non-tensor object: weights_only loading must refuse to unpickle it."""


def test_a_pickled_object_is_refused_by_weights_only(tmp_path):
    f = tmp_path / "evil.pt"
    torch.save({"what": "autoencoder", "config": Evil()}, f)
    S.write_manifest(tmp_path)  # even a file the manifest vouches for is parsed weights-only
    with pytest.raises(ChecksumError, match="could not be read.*refuses"):
        S.load_shipped(f)


def test_rebuild_is_deterministic(tmp_path):
    """The same tiny rebuild twice (separate folders, same file name) gives the same bytes."""
    a = S.rebuild_data(tmp_path / "a", steps=3, names=["ae_d2_shift1.pt"], progress=False)
    b = S.rebuild_data(tmp_path / "b", steps=3, names=["ae_d2_shift1.pt"], progress=False)
    assert a == b and list(a) == ["ae_d2_shift1.pt"]
    ma = S.load_shipped(tmp_path / "a" / "ae_d2_shift1.pt")
    mb = S.load_shipped(tmp_path / "b" / "ae_d2_shift1.pt")
    for (k, va), vb in zip(ma.state_dict().items(), mb.state_dict().values()):
        assert torch.equal(va, vb), k
    c = S.rebuild_data(tmp_path / "c", steps=4, names=["ae_d2_shift1.pt"], progress=False)
    assert c != a  # and the sum does see the training


def test_rebuild_rejects_unknown_names(tmp_path):
    with pytest.raises(ValueError, match="unknown shipped file"):
        S.rebuild_data(tmp_path, steps=1, names=["nope.pt"])


def test_shipped_classifier_accuracy_on_held_out_digits():
    acc = D.classifier_accuracy(S.shipped_classifier(), "test")
    assert acc > 0.93, acc  # 397 test digits: a 95 % classifier has a binomial std of ~1 %


@pytest.mark.parametrize("d", [2, 4, 8, 16])
def test_shipped_autoencoders_beat_the_mean_image(d):
    ae = S.shipped_autoencoder(d)
    x, _ = D.load_digits("test")
    with torch.no_grad():
        mse = ((ae.decode(ae.encode(x)) - x) ** 2).mean()
    # the mean image has MSE = mean pixel variance; a useful code must beat it clearly
    assert mse < (0.7 if d == 2 else 0.4) * x.var(0).mean(), (d, float(mse))


def test_reconstruction_improves_with_latent_dimension():
    x, _ = D.load_digits("test")
    errs = []
    for d in (2, 16):
        ae = S.shipped_autoencoder(d)
        with torch.no_grad():
            errs.append(float(((ae.decode(ae.encode(x)) - x) ** 2).mean()))
    assert errs[1] < errs[0]


def test_shipped_files_keep_their_format():
    """data/*.pt stay plain {"what", "config", "state"} dicts without an inner digest (the manifest has
    it), so the committed bytes and MANIFEST.json need no rewrite."""
    for name in SHIPPED_FILES:
        raw = torch.load(S.DATA_DIR / name, weights_only=True)
        assert set(raw) == {"what", "config", "state"}, name
    ae = S.shipped_autoencoder(2)
    assert isinstance(ae, A.Autoencoder) and not ae.training


def test_command_line_verifies_data(capsys):
    from lsbcore.__main__ import main

    assert main(["verify-data"]) == 0
    assert "FAILED" not in capsys.readouterr().out


def test_data_dir_is_the_checkouts_data_folder():
    """In a checkout (editable install) the shipped files are read from the top-level data/; an
    installed wheel reads its own lsbcore/data/ (tests/test_wheel.py)."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    assert S.DATA_DIR == root / "data" and (S.DATA_DIR / S.MANIFEST_NAME).is_file()
