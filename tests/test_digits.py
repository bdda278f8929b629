"""The 8×8 digits: splits, the shift, the encoder–decoder and the digit metrics."""
import pytest
import torch

from lsbcore import autoencoder as A
from lsbcore import digits as D
from lsbcore import shipped as S


# ------------------------------------------------------------------------------------ data
def test_splits_are_disjoint_and_cover_the_digits():
    xs = [D.load_digits(s)[0] for s in D.SPLITS]
    assert [x.shape[0] for x in xs] == [700, 700, 397]
    allx = torch.cat(xs)
    assert allx.shape == (1797, 64) and float(allx.min()) == 0.0 and float(allx.max()) == 1.0
    assert torch.equal(torch.sort(allx, 0).values, torch.sort(D.load_digits("all")[0], 0).values)
    y = D.load_digits("target", classes=[3, 7])[1]
    assert set(y.tolist()) == {3, 7}


@pytest.mark.parametrize("kind", D.SHIFT_KINDS)
def test_shift_is_seeded_and_stays_in_range(kind):
    x = D.load_digits("pretrain")[0][:50]
    a = D.shift_digits(x, 1.0, kind=kind, seed=3)
    assert a.shape == x.shape and float(a.min()) >= 0 and float(a.max()) <= 1 + 1e-6
    assert torch.equal(a, D.shift_digits(x, 1.0, kind=kind, seed=3))
    assert not torch.equal(a, D.shift_digits(x, 1.0, kind=kind, seed=4))
    assert torch.equal(D.shift_digits(x, 0.0, kind=kind), x)


def test_translation_moves_the_centre_of_mass_by_at_most_strength():
    x = D.load_digits("target")[0][:200]
    grid = torch.arange(8.0)
    def com(z):
        img = z.reshape(-1, 8, 8)
        m = img.sum((1, 2))
        return torch.stack([(img.sum(2) * grid).sum(1) / m, (img.sum(1) * grid).sum(1) / m], 1)
    s = 1.0
    d = com(D.shift_digits(x, s, seed=0)) - com(x)
    # digits touch the border, where mass is cut: allow 0.25 px slack beyond the offset bound
    assert float(d.abs().max()) <= s + 0.25
    assert float(d.abs().mean()) > 0.3 * s  # offsets are uniform on [−s, s]: mean |offset| = s/2


def test_bad_data_arguments():
    with pytest.raises(ValueError, match="split"):
        D.load_digits("train")
    with pytest.raises(ValueError, match="classes"):
        D.load_digits(classes=[11])
    x = D.load_digits()[0][:4]
    with pytest.raises(ValueError, match="kind"):
        D.shift_digits(x, 1.0, kind="rotate")
    with pytest.raises(ValueError, match="strength"):
        D.shift_digits(x, -1.0)
    with pytest.raises(ValueError, match="x must have dimension 64"):
        D.shift_digits(x[:, :10], 1.0)


# --------------------------------------------------------------------------- encode / decode
@pytest.mark.parametrize("kind,d", [("ae", 2), ("ae", 16), ("vae", 8)])
def test_encode_decode_shapes(kind, d):
    ae = S.shipped_autoencoder(d, kind=kind)
    x = D.load_digits("test")[0][:5]
    z = ae.encode(x)
    assert z.shape == (5, d)
    y = ae.decode(z).detach()
    assert y.shape == (5, 64) and float(y.min()) >= 0 and float(y.max()) <= 1
    with pytest.raises(ValueError, match="z must have dimension"):
        ae.decode(torch.zeros(3, d + 1))
    with pytest.raises(ValueError, match="x contains NaN"):
        ae.encode(torch.full((2, 64), float("nan")))


def test_latent_codes_are_standardised_on_the_pretraining_data():
    ae = S.shipped_autoencoder(8)
    x = D.shift_digits(D.load_digits("pretrain")[0], 1.0, seed=123)
    with torch.no_grad():
        z = ae.encode(x)
    # 700 codes: the sample mean has std ≈ 1/√700 ≈ 0.04, the sample std ≈ 0.03 from 1
    assert float(z.mean(0).abs().max()) < 0.2 and float((z.std(0) - 1).abs().max()) < 0.2


def test_pixel_space_round_trip():
    px = A.PixelSpace()
    x = D.load_digits("test")[0][:10]
    torch.testing.assert_close(px.decode(px.encode(x)), x)
    z = px.encode(D.load_digits("target")[0])
    assert abs(float(z.var(0).mean()) - 1) < 1e-4


def test_interpolation_ends_at_the_reconstructions():
    ae = S.shipped_autoencoder(8)
    x = D.load_digits("test")[0][:2]
    path = A.interpolate(ae, x[:1], x[1:], steps=5)
    with torch.no_grad():
        torch.testing.assert_close(path[[0, -1]], ae.decode(ae.encode(x)))


# ---------------------------------------------------------------------------------- metrics
def test_frechet_distance_matches_the_gaussian_formula():
    from lsbcore.metrics import frechet_distance

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(500, 3, generator=gen, dtype=torch.float64)
    y = 2 * torch.randn(400, 3, generator=gen, dtype=torch.float64) + 1
    sx, sy = torch.cov(x.T), torch.cov(y.T)
    from scipy.linalg import sqrtm
    cross = sqrtm((sx @ sy).numpy()).real.trace()
    want = float(((x.mean(0) - y.mean(0)) ** 2).sum() + sx.trace() + sy.trace()) - 2 * cross
    assert frechet_distance(x, y) == pytest.approx(want, rel=1e-8)
    assert frechet_distance(x, x) == pytest.approx(0, abs=1e-8)


def test_real_digits_score_better_than_random_decodes():
    clf = S.shipped_classifier()
    ae = S.shipped_autoencoder(8)
    real = D.load_digits("target")[0][:397]
    with torch.no_grad():
        fake = ae.decode(torch.randn(397, 8, generator=torch.Generator().manual_seed(0)) * 2.5)
    r, f = D.evaluate_digits(real, clf), D.evaluate_digits(fake, clf)
    assert r["fdd"] < f["fdd"] and r["w2"] < f["w2"]
    assert r["class_hist"].sum() == pytest.approx(1.0) and r["tv_classes"] < 0.1
