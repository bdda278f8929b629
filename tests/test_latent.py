"""The latent pipeline (encode → bridge → decode → evaluate), the rate fit and the latent widgets."""
import pytest
import torch

from lsbcore import autoencoder as A
from lsbcore import digits as D
from lsbcore import latent as L
from lsbcore import shipped as S


# ----------------------------------------------------------------------------- sampling codes
@pytest.mark.parametrize("method", ["heat-follmer", "heat-gaussian", "follmer", "random"])
def test_sample_codes_is_seeded(method):
    pts = torch.randn(50, 2, generator=torch.Generator().manual_seed(0))
    a = L.sample_codes(method, pts, 20, steps=10, seed=5).x
    assert a.shape == (20, 2) and bool(torch.isfinite(a).all())
    assert torch.equal(a, L.sample_codes(method, pts, 20, steps=10, seed=5).x)


def test_sample_codes_seed_forms():
    pts = torch.randn(30, 2, generator=torch.Generator().manual_seed(0))
    a = L.sample_codes("heat-gaussian", pts, 8, steps=5, seed=torch.Generator().manual_seed(3)).x
    b = L.sample_codes("heat-gaussian", pts, 8, steps=5, seed=torch.Generator().manual_seed(3)).x
    assert torch.equal(a, b)
    with pytest.raises(TypeError, match="seed"):
        L.sample_codes("random", pts, 4, seed=1.5)
    with pytest.raises(ValueError, match="seed"):
        L.sample_codes("random", pts, 4, seed=2**70)


def test_generate_digits_is_the_pipeline_by_hand():
    """encode the target digits → sample_codes → decode: the one call equals the three steps."""
    ae = S.shipped_autoencoder(2)
    r = L.generate_digits(ae, "follmer", 12, steps=8, t_gap=0.05, seed=2)
    with torch.no_grad():
        pts = ae.encode(D.load_digits("target")[0])
        codes = L.sample_codes("follmer", pts, 12, steps=8, t_gap=0.05, seed=2).x
        torch.testing.assert_close(r["codes"], codes, rtol=0, atol=0)
        torch.testing.assert_close(r["images"], ae.decode(codes), rtol=0, atol=0)
    assert "fdd" not in r   # no classifier, no metrics


def test_loglog_fit_recovers_a_power_law():
    import numpy as np

    n = np.tile([10.0, 100.0, 1000.0], (3, 1))
    err = 2.0 * n ** -0.5 * np.array([[1.0], [1.1], [0.9]])
    f = L.loglog_fit(n, err)
    assert f["slope"] == pytest.approx(-0.5) and f["ci"][0] == pytest.approx(-0.5)
    with pytest.raises(ValueError, match="positive"):
        L.loglog_fit(n, -err)


# ---------------------------------------------------------------------------------- widgets
def test_latent_bridge_explorer_follows_its_controls():
    import matplotlib
    matplotlib.use("Agg")
    from lsbcore import widgets as W

    aes = {2: S.shipped_autoencoder(2), 8: S.shipped_autoencoder(8)}
    box = W.latent_bridge_explorer(aes, classifier=S.shipped_classifier(), steps=5, n=8)
    assert box.state["latent_dim"] == 2 and box.state["images"].shape == (8, 64)
    box.controls["latent_dim"].value = 8
    box.controls["method"].value = "follmer"
    assert box.state["latent_dim"] == 8 and box.state["method"] == "follmer"
    assert int(box.state["class_counts"].sum()) == 8
    with pytest.raises(ValueError, match="latent_dim"):
        W.latent_bridge_explorer(aes, latent_dim=3)
    with pytest.raises(ValueError, match="method"):
        W.latent_bridge_explorer(aes, method="imf")


def test_interpolation_explorer_ends_at_the_chosen_digits():
    import matplotlib
    matplotlib.use("Agg")
    from lsbcore import widgets as W

    ae = S.shipped_autoencoder(8)
    x = D.load_digits("test")[0][:20]
    box = W.interpolation_explorer(ae, x, a=0, b=1, steps=4)
    box.controls["b"].value = 7
    with torch.no_grad():
        torch.testing.assert_close(box.state["path"][-1], ae.decode(ae.encode(x[7:8]))[0])


def test_memorisation_explorer_shows_copies_at_small_n():
    import matplotlib
    matplotlib.use("Agg")
    from lsbcore import widgets as W
    from lsbcore.metrics import memorisation_ratio

    spaces = {"d*=8": S.shipped_autoencoder(8), "pixels": A.PixelSpace()}
    box = W.memorisation_explorer(spaces, [10, 700], steps=10, n=6)
    assert box.state["n_fit"] == 10 and box.state["images"].shape == (6, 64) and box.state["nearest"].shape == (6, 64)
    small = box.state["ratio"]
    box.controls["n_fit"].value = 700
    assert box.state["n_fit"] == 700 and box.state["ratio"] > small
    box.controls["space"].value = "pixels"
    # the same run by hand: the nearest fitted digit is the one whose code is closest, and the ratio is
    # taken in code space (for PixelSpace: standardised pixels) against the encoded test digits
    r = L.generate_digits(A.PixelSpace(), "heat-follmer", 6, n_fit=700, steps=10)
    torch.testing.assert_close(box.state["images"], r["images"])
    torch.testing.assert_close(box.state["nearest"], r["fit_images"][torch.cdist(r["codes"], r["points"]).argmin(1)])
    ref = A.PixelSpace().encode(D.load_digits("test")[0])
    assert box.state["ratio"] == pytest.approx(memorisation_ratio(r["codes"], r["points"], ref))
    with pytest.raises(ValueError, match="method"):
        W.memorisation_explorer(spaces, [10], method="imf")
    with pytest.raises(TypeError, match="spaces"):
        W.memorisation_explorer({}, [10])
