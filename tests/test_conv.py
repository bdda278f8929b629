"""Convolutional autoencoder and classifier for 28×28 (and 8×8) images, their trainers, the image FID."""
import pytest
import torch

from lsbcore import datasets as D
from lsbcore.conv import (ConvAutoencoder, ConvClassifier, accuracy, fit_image_autoencoder, fit_image_classifier,
                          load_model, save_model)
from lsbcore.metrics import frechet_distance
from lsbcore.utils import ChecksumError


@pytest.fixture(scope="module")
def fixture_data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mnist")
    sums = D.write_fixture(folder, "mnist", n_train=64, n_test=32, seed=0)
    train = D.load_images("mnist", "train", data_dir=folder, verify=sums)
    test = D.load_images("mnist", "test", data_dir=folder, verify=sums)
    return train, test


@pytest.mark.parametrize("size", [28, 8])
def test_autoencoder_shapes(size):
    ae = ConvAutoencoder(5, image_size=size, width=8)
    x = torch.rand(6, 1, size, size)
    z = ae.encode(x)
    assert z.shape == (6, 5)
    assert torch.equal(ae.encode(x.reshape(6, -1)), z)                  # flat input is the same images
    out = ae.decode(z)
    assert out.shape == (6, 1, size, size)
    assert bool(((out > 0) & (out < 1)).all())                           # sigmoid
    assert ae.loss(x, None).shape == ()
    assert torch.equal(ae(x), out)                   # forward = D(E(x)); standardisation is 0, 1 before fitting
    torch.testing.assert_close(ae.loss(x, None), ((ae.decode(ae.encode(x)) - x) ** 2).mean())


def test_autoencoder_channels_and_classifier_shapes():
    ae = ConvAutoencoder(3, image_size=32, channels=3, width=4)
    assert ae.decode(ae.encode(torch.rand(2, 3, 32, 32))).shape == (2, 3, 32, 32)
    for size in (28, 8):
        clf = ConvClassifier(image_size=size, feature_dim=16, width=8, n_classes=7)
        x = torch.rand(5, 1, size, size)
        assert clf.features(x).shape == (5, 16)
        assert clf(x).shape == (5, 7)
        torch.testing.assert_close(clf(x), clf.head(clf.features(x)))


def test_seed_fixes_weights_and_leaves_global_rng():
    state = torch.get_rng_state()
    a, b, c = ConvAutoencoder(4, seed=1), ConvAutoencoder(4, seed=1), ConvAutoencoder(4, seed=2)
    k1, k2 = ConvClassifier(seed=1), ConvClassifier(seed=1)
    assert torch.equal(torch.get_rng_state(), state)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert all(torch.equal(p, q) for p, q in zip(k1.parameters(), k2.parameters()))
    assert not all(torch.equal(p, q) for p, q in zip(a.parameters(), c.parameters()))


def test_training_lowers_loss_reproducibly_and_standardises(fixture_data, tmp_path):
    (x, _), (xt, _) = fixture_data
    kw = dict(steps=25, batch_size=16, lr=3e-3, width=8, progress=False, seed=3)
    before = ConvAutoencoder(6, width=8, seed=3).loss(x).item()
    ae = fit_image_autoencoder(x, 6, **kw)
    assert ae.loss(x).item() < 0.5 * before
    assert len(ae.history) == 25 and not ae.training
    again = fit_image_autoencoder(x, 6, **kw)
    assert all(torch.equal(p, q) for p, q in zip(ae.state_dict().values(), again.state_dict().values()))
    # codes of the training images are standardised: mean 0, standard deviation 1 per coordinate
    z = ae.encode(x)
    torch.testing.assert_close(z.mean(0), torch.zeros(6), atol=1e-4, rtol=0)      # float32 sums
    torch.testing.assert_close(z.std(0), torch.ones(6), atol=1e-4, rtol=0)
    # save / load rebuilds the same network (digest-checked)
    path = save_model(ae, tmp_path / "ae.pt")
    back = load_model(path)
    assert torch.equal(back.encode(xt), ae.encode(xt)) and back.config == ae.config
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises((ChecksumError, ValueError)):
        load_model(path)


def test_shifted_pretraining_runs_and_checkpoints(fixture_data, tmp_path):
    (x, _), _ = fixture_data
    kw = dict(steps=6, batch_size=8, width=4, progress=False, shift=2.0, shift_kind="translate")
    whole = fit_image_autoencoder(x, 3, **kw)
    ckpt = tmp_path / "fit.pt"
    fit_image_autoencoder(x, 3, **dict(kw, steps=6), checkpoint=ckpt)          # writes the checkpoint
    resumed = fit_image_autoencoder(x, 3, **kw, checkpoint=ckpt)              # resumes at step 6: no work
    assert all(torch.equal(p, q) for p, q in zip(whole.state_dict().values(), resumed.state_dict().values()))


@pytest.fixture(scope="module")
def classifier(fixture_data):
    (x, y), _ = fixture_data
    return fit_image_classifier(x, y, steps=40, batch_size=32, lr=3e-3, width=8, feature_dim=16, progress=False)


def test_classifier_learns_the_fixture(fixture_data, classifier):
    _, (xt, yt) = fixture_data
    assert classifier.history[-5:].mean() < 0.5 * classifier.history[:5].mean()
    # by chance 32 test labels would be right ~Binomial(32, 0.1): ≥ 10 of them has probability < 1e-3
    assert accuracy(classifier, xt, yt) >= 10 / 32


def test_frechet_image_distance(fixture_data, classifier):
    (x, _), (xt, _) = fixture_data
    assert abs(D.frechet_image_distance(x, x, classifier)) < 1e-9 * D.frechet_image_distance(x, xt, classifier) + 1e-9
    moved = D.shift_images(x, 0.3, kind="noise", seed=1)        # the same images under pixel noise
    fid = D.frechet_image_distance(x, moved, classifier)
    floor = D.frechet_image_distance(x, xt, classifier)         # two samples of one law, n = 64 vs 32
    assert fid > 5 * floor > 0                                  # measured: ≈ 50 vs ≈ 1.6
    with torch.no_grad():
        assert fid == pytest.approx(frechet_distance(classifier.features(x), classifier.features(moved)), rel=1e-12)
    assert D.frechet_image_distance(x, moved, classifier, batch_size=7) == pytest.approx(fid, rel=1e-4)
    assert D.frechet_image_distance(xt, x, classifier) == pytest.approx(floor, rel=1e-6)


@pytest.mark.parametrize("make,exc,match", [
    (lambda: ConvAutoencoder(0), ValueError, "latent_dim"),
    (lambda: ConvAutoencoder(2, image_size=30), ValueError, "image_size"),
    (lambda: ConvAutoencoder(2, image_size=28.0), TypeError, "image_size"),
    (lambda: ConvAutoencoder(2, width=0), ValueError, "width"),
    (lambda: ConvClassifier(n_classes=1), ValueError, "n_classes"),
    (lambda: ConvClassifier(feature_dim=0), ValueError, "feature_dim"),
    (lambda: ConvAutoencoder(2).encode(torch.rand(3, 1, 27, 27)), ValueError, "x"),
    (lambda: ConvAutoencoder(2).encode(torch.rand(3, 2, 28, 28)), ValueError, "channel"),
    (lambda: ConvAutoencoder(2).encode(torch.full((3, 1, 28, 28), float("nan"))), ValueError, "NaN"),
    (lambda: ConvAutoencoder(2).encode(torch.zeros(3, 1, 28, 28, dtype=torch.long)), TypeError, "x"),
    (lambda: ConvAutoencoder(2).decode(torch.rand(3, 4)), ValueError, "z"),
    (lambda: ConvClassifier().features(torch.rand(3, 100)), ValueError, "x"),
    (lambda: fit_image_autoencoder(torch.rand(4, 1, 28, 28), 2, steps=0), ValueError, "steps"),
    (lambda: fit_image_autoencoder(torch.rand(4, 28, 28), 2, steps=1), ValueError, "images"),
    (lambda: fit_image_autoencoder(torch.rand(4, 1, 28, 28), 2, steps=1, lr=-1), ValueError, "lr"),
    (lambda: fit_image_autoencoder(torch.rand(4, 1, 28, 28), 2, steps=1, shift_kind="x"), ValueError, "shift_kind"),
    (lambda: fit_image_classifier(torch.rand(4, 1, 8, 8), torch.zeros(3, dtype=torch.long), steps=1),
     ValueError, "labels"),
    (lambda: fit_image_classifier(torch.rand(4, 1, 8, 8), torch.zeros(4), steps=1), TypeError, "labels"),
    (lambda: fit_image_classifier(torch.rand(4, 1, 8, 8), torch.full((4,), 10), steps=1), ValueError, "labels"),
    (lambda: D.frechet_image_distance(torch.rand(4, 1, 8, 8), torch.rand(4, 1, 8, 8), object()),
     TypeError, "classifier"),
    (lambda: D.frechet_image_distance(torch.rand(4, 1, 8, 8), torch.rand(4, 1, 28, 28), ConvClassifier()),
     ValueError, "shape"),
    (lambda: D.frechet_image_distance(torch.rand(4, 1, 28, 28), torch.rand(1, 1, 28, 28), ConvClassifier()),
     ValueError, "at least 2"),
])
def test_bad_inputs(make, exc, match):
    with pytest.raises(exc, match=match):
        make()
