"""The latent pipeline: data splits, shift, encode/decode, latent drifts against closed forms, bad inputs."""
import math

import pytest
import torch

from lsbcore import latent as L
from lsbcore.bridges.follmer import gaussian_follmer_drift


# ------------------------------------------------------------------------------------ data
def test_splits_are_disjoint_and_cover_the_digits():
    xs = [L.load_digits(s)[0] for s in L.SPLITS]
    assert [x.shape[0] for x in xs] == [700, 700, 397]
    allx = torch.cat(xs)
    assert allx.shape == (1797, 64) and float(allx.min()) == 0.0 and float(allx.max()) == 1.0
    assert torch.equal(torch.sort(allx, 0).values, torch.sort(L.load_digits("all")[0], 0).values)
    y = L.load_digits("target", classes=[3, 7])[1]
    assert set(y.tolist()) == {3, 7}


@pytest.mark.parametrize("kind", L.SHIFT_KINDS)
def test_shift_is_seeded_and_stays_in_range(kind):
    x = L.load_digits("pretrain")[0][:50]
    a = L.shift_digits(x, 1.0, kind=kind, seed=3)
    assert a.shape == x.shape and float(a.min()) >= 0 and float(a.max()) <= 1 + 1e-6
    assert torch.equal(a, L.shift_digits(x, 1.0, kind=kind, seed=3))
    assert not torch.equal(a, L.shift_digits(x, 1.0, kind=kind, seed=4))
    assert torch.equal(L.shift_digits(x, 0.0, kind=kind), x)


def test_translation_moves_the_centre_of_mass_by_at_most_strength():
    x = L.load_digits("target")[0][:200]
    grid = torch.arange(8.0)
    def com(z):
        img = z.reshape(-1, 8, 8)
        m = img.sum((1, 2))
        return torch.stack([(img.sum(2) * grid).sum(1) / m, (img.sum(1) * grid).sum(1) / m], 1)
    s = 1.0
    d = com(L.shift_digits(x, s, seed=0)) - com(x)
    # digits touch the border, where mass is cut: allow 0.25 px slack beyond the offset bound
    assert float(d.abs().max()) <= s + 0.25
    assert float(d.abs().mean()) > 0.3 * s  # offsets are uniform on [−s, s]: mean |offset| = s/2


def test_bad_data_arguments():
    with pytest.raises(ValueError, match="split"):
        L.load_digits("train")
    with pytest.raises(ValueError, match="classes"):
        L.load_digits(classes=[11])
    x = L.load_digits()[0][:4]
    with pytest.raises(ValueError, match="kind"):
        L.shift_digits(x, 1.0, kind="rotate")
    with pytest.raises(ValueError, match="strength"):
        L.shift_digits(x, -1.0)
    with pytest.raises(ValueError, match="x must have dimension 64"):
        L.shift_digits(x[:, :10], 1.0)


# --------------------------------------------------------------------------- encode / decode
@pytest.mark.parametrize("kind,d", [("ae", 2), ("ae", 16), ("vae", 8)])
def test_encode_decode_shapes(kind, d):
    ae = L.shipped_autoencoder(d, kind=kind)
    x = L.load_digits("test")[0][:5]
    z = ae.encode(x)
    assert z.shape == (5, d)
    y = ae.decode(z).detach()
    assert y.shape == (5, 64) and float(y.min()) >= 0 and float(y.max()) <= 1
    with pytest.raises(ValueError, match="z must have dimension"):
        ae.decode(torch.zeros(3, d + 1))
    with pytest.raises(ValueError, match="x contains NaN"):
        ae.encode(torch.full((2, 64), float("nan")))


def test_latent_codes_are_standardised_on_the_pretraining_data():
    ae = L.shipped_autoencoder(8)
    x = L.shift_digits(L.load_digits("pretrain")[0], 1.0, seed=123)
    with torch.no_grad():
        z = ae.encode(x)
    # 700 codes: the sample mean has std ≈ 1/√700 ≈ 0.04, the sample std ≈ 0.03 from 1
    assert float(z.mean(0).abs().max()) < 0.2 and float((z.std(0) - 1).abs().max()) < 0.2


def test_pixel_space_round_trip():
    px = L.PixelSpace()
    x = L.load_digits("test")[0][:10]
    torch.testing.assert_close(px.decode(px.encode(x)), x)
    z = px.encode(L.load_digits("target")[0])
    assert abs(float(z.var(0).mean()) - 1) < 1e-4


def test_interpolation_ends_at_the_reconstructions():
    ae = L.shipped_autoencoder(8)
    x = L.load_digits("test")[0][:2]
    path = L.interpolate(ae, x[:1], x[1:], steps=5)
    with torch.no_grad():
        torch.testing.assert_close(path[[0, -1]], ae.decode(ae.encode(x)))


# ----------------------------------------------------------------------------- latent drifts
def _mixture_score(x, t, points, sigma):
    """Independent implementation: σ² ∇ log Σ_i N(x; z_i, σ²(1−t)) by autograd."""
    x = x.clone().requires_grad_(True)
    var = sigma**2 * (1 - t)
    logp = torch.logsumexp(-((x[:, None] - points[None]) ** 2).sum(-1) / (2 * var), 1).sum()
    (grad,) = torch.autograd.grad(logp, x)
    return sigma**2 * grad


@pytest.mark.parametrize("t", [0.0, 0.5, 0.95])
@pytest.mark.parametrize("sigma", [0.5, 1.0, 2.0])
def test_heat_flow_drift_is_the_score_of_the_smoothed_codes(t, sigma):
    g = torch.Generator().manual_seed(0)
    points = torch.randn(7, 3, generator=g, dtype=torch.float64)
    x = 2 * torch.randn(11, 3, generator=g, dtype=torch.float64)
    torch.testing.assert_close(L.heat_flow_drift(x, t, points, sigma), _mixture_score(x, t, points, sigma))


def test_heat_flow_drift_for_one_code_is_the_brownian_bridge_drift():
    m = torch.tensor([[1.0, -2.0]], dtype=torch.float64)
    x = torch.randn(5, 2, dtype=torch.float64)
    torch.testing.assert_close(L.heat_flow_drift(x, 0.3, m, 1.7), (m - x) / 0.7)
    torch.testing.assert_close(L.smoothed_follmer_drift(x, 0.3, m, 1.7), m.expand(5, 2))


def test_drifts_for_a_gaussian_cloud_match_the_closed_forms():
    """p̂ = many samples of N(m, s²I): the heat-flow drift → −σ²(z − m)/(s² + σ²(1−t)) and the
    smoothed Föllmer drift → the SF drift to N(m, (s² + σ²) I). Tolerance: 5 standard errors of the
    self-normalised weighted mean, computed from the weights themselves."""
    g = torch.Generator().manual_seed(1)
    n, d, s, sigma, t = 20000, 2, 0.8, 1.0, 0.5
    m = torch.tensor([0.5, -0.3], dtype=torch.float64)
    pts = m + s * torch.randn(n, d, generator=g, dtype=torch.float64)
    x = m + 0.7 * torch.randn(8, d, generator=g, dtype=torch.float64)
    var = sigma**2 * (1 - t)
    w = torch.softmax(-((x[:, None] - pts[None]) ** 2).sum(-1) / (2 * var), 1)
    se = torch.sqrt((w**2) @ (pts**2) - ((w**2).sum(1, keepdim=True)) * (w @ pts) ** 2).clamp_min(0)
    closed = -sigma**2 * (x - m) / (s**2 + var)
    err = (L.heat_flow_drift(x, t, pts, sigma) - closed).abs()
    assert bool((err <= 5 * se / (1 - t) + 1e-9).all()), (err, se)
    sf = gaussian_follmer_drift(x, t, m, math.sqrt(s**2 + sigma**2), sigma)
    wf = torch.softmax((x @ pts.T - 0.5 * t * (pts**2).sum(-1)) / sigma**2, 1)
    se_f = torch.sqrt((wf**2) @ (pts**2) - (wf**2).sum(1, keepdim=True) * (wf @ pts) ** 2).clamp_min(0)
    assert bool(((L.smoothed_follmer_drift(x, t, pts, sigma) - sf).abs() <= 5 * se_f + 1e-9).all())


def test_two_stage_sampler_lands_on_the_smoothed_then_the_clean_codes():
    """1-D codes p̂ (300 Gaussian points): the Föllmer stage ends at p̂ ∗ N(0, σ²), variance
    var(p̂) + σ²; the heat flow stopped at 1 − δ at p̂ ∗ N(0, σ²δ), variance var(p̂) + σ²δ.
    Tolerance: 4 standard errors of a variance from n draws (√(2/n) relative) plus 0.05 for Euler."""
    g = torch.Generator().manual_seed(2)
    sigma, delta, n = 1.0, 0.05, 1200
    pts = 0.5 * torch.randn(300, 1, generator=g, dtype=torch.float64)
    v = float(pts.var(unbiased=False))
    tol = 4 * math.sqrt(2 / n) + 0.05
    x0 = L.HeatFlowBridge(pts, sigma).start(n, how="follmer", seed=0, follmer_steps=40)
    assert abs(float(x0.var()) / (v + sigma**2) - 1) < tol
    out = L.sample_codes("heat-follmer", pts, n, sigma=sigma, delta=delta, steps=80, seed=0).x
    assert abs(float(out.var()) / (v + sigma**2 * delta) - 1) < tol
    assert abs(float(out.mean() - pts.mean())) < 4 * math.sqrt((v + sigma**2 * delta) / n) + 0.02


@pytest.mark.parametrize("method", ["heat-follmer", "heat-gaussian", "follmer", "random"])
def test_sample_codes_is_seeded(method):
    pts = torch.randn(50, 2, generator=torch.Generator().manual_seed(0))
    a = L.sample_codes(method, pts, 20, steps=10, seed=5).x
    assert a.shape == (20, 2) and bool(torch.isfinite(a).all())
    assert torch.equal(a, L.sample_codes(method, pts, 20, steps=10, seed=5).x)


def test_fit_heat_flow_runs_through_the_shared_loop():
    pts = torch.randn(64, 2, generator=torch.Generator().manual_seed(0))
    bridge = L.fit_heat_flow(pts, 1.0, steps=10, batch_size=64, progress=False)
    assert len(bridge.history) == 10
    assert bridge.drift(pts[:4], torch.full((4, 1), 0.5)).shape == (4, 2)


def test_bad_bridge_arguments():
    pts = torch.randn(10, 2)
    with pytest.raises(ValueError, match="method"):
        L.sample_codes("diffusion", pts, 5)
    with pytest.raises(ValueError, match="delta"):
        L.sample_codes("follmer", pts, 5, delta=1.0)
    with pytest.raises(ValueError, match="sigma"):
        L.heat_flow_drift(pts, 0.5, pts, sigma=0.0)
    with pytest.raises(ValueError, match="points must have dimension 2"):
        L.heat_flow_drift(pts, 0.5, torch.randn(4, 3))
    with pytest.raises(ValueError, match="t must lie in"):
        L.smoothed_follmer_drift(pts, 1.5, pts)
    with pytest.raises(ValueError, match="how"):
        L.HeatFlowBridge(pts).start(3, how="uniform")
    with pytest.raises(ValueError, match="kind"):
        L.Autoencoder(2, kind="gan")


# ---------------------------------------------------------------------------------- metrics
def test_frechet_distance_matches_the_gaussian_formula():
    from lsbcore.metrics import frechet_distance

    g = torch.Generator().manual_seed(0)
    x = torch.randn(500, 3, generator=g, dtype=torch.float64)
    y = 2 * torch.randn(400, 3, generator=g, dtype=torch.float64) + 1
    sx, sy = torch.cov(x.T), torch.cov(y.T)
    from scipy.linalg import sqrtm
    cross = sqrtm((sx @ sy).numpy()).real.trace()
    want = float(((x.mean(0) - y.mean(0)) ** 2).sum() + sx.trace() + sy.trace()) - 2 * cross
    assert frechet_distance(x, y) == pytest.approx(want, rel=1e-8)
    assert frechet_distance(x, x) == pytest.approx(0, abs=1e-8)


def test_real_digits_score_better_than_random_decodes():
    clf = L.shipped_classifier()
    ae = L.shipped_autoencoder(8)
    real = L.load_digits("target")[0][:397]
    with torch.no_grad():
        fake = ae.decode(torch.randn(397, 8, generator=torch.Generator().manual_seed(0)) * 2.5)
    r, f = L.evaluate_digits(real, clf), L.evaluate_digits(fake, clf)
    assert r["fdd"] < f["fdd"] and r["w2"] < f["w2"]
    assert r["class_hist"].sum() == pytest.approx(1.0) and r["tv_classes"] < 0.1


# ---------------------------------------------------------------------------------- widgets
def test_latent_bridge_explorer_follows_its_controls():
    import matplotlib
    matplotlib.use("Agg")
    from lsbcore import widgets as W

    aes = {2: L.shipped_autoencoder(2), 8: L.shipped_autoencoder(8)}
    box = W.latent_bridge_explorer(aes, classifier=L.shipped_classifier(), steps=5, n=8)
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

    ae = L.shipped_autoencoder(8)
    x = L.load_digits("test")[0][:20]
    box = W.interpolation_explorer(ae, x, a=0, b=1, steps=4)
    box.controls["b"].value = 7
    with torch.no_grad():
        torch.testing.assert_close(box.state["path"][-1], ae.decode(ae.encode(x[7:8]))[0])


def test_loglog_fit_recovers_a_power_law():
    import numpy as np

    n = np.tile([10.0, 100.0, 1000.0], (3, 1))
    err = 2.0 * n ** -0.5 * np.array([[1.0], [1.1], [0.9]])
    f = L.loglog_fit(n, err)
    assert f["slope"] == pytest.approx(-0.5) and f["ci"][0] == pytest.approx(-0.5)
    with pytest.raises(ValueError, match="positive"):
        L.loglog_fit(n, -err)


def test_memorisation_explorer_shows_copies_at_small_n():
    import matplotlib
    matplotlib.use("Agg")
    from lsbcore import widgets as W
    from lsbcore.metrics import memorisation_ratio

    spaces = {"d*=8": L.shipped_autoencoder(8), "pixels": L.PixelSpace()}
    box = W.memorisation_explorer(spaces, [10, 700], steps=10, n=6)
    assert box.state["n_fit"] == 10 and box.state["images"].shape == (6, 64) and box.state["nearest"].shape == (6, 64)
    small = box.state["ratio"]
    box.controls["n_fit"].value = 700
    assert box.state["n_fit"] == 700 and box.state["ratio"] > small
    box.controls["space"].value = "pixels"
    # the same run by hand: the nearest fitted digit is the one whose code is closest, and the ratio is
    # taken in code space (for PixelSpace: standardised pixels) against the encoded test digits
    r = L.generate_digits(L.PixelSpace(), "heat-follmer", 6, n_fit=700, steps=10)
    torch.testing.assert_close(box.state["images"], r["images"])
    torch.testing.assert_close(box.state["nearest"], r["fit_images"][torch.cdist(r["codes"], r["points"]).argmin(1)])
    ref = L.PixelSpace().encode(L.load_digits("test")[0])
    assert box.state["ratio"] == pytest.approx(memorisation_ratio(r["codes"], r["points"], ref))
    with pytest.raises(ValueError, match="method"):
        W.memorisation_explorer(spaces, [10], method="imf")
    with pytest.raises(TypeError, match="spaces"):
        W.memorisation_explorer({}, [10])
