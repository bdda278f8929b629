"""The synthetic manifold benchmark of notebook 04: exact read-back, metrics with known answers, the sweep."""
import math

import pytest
import torch

from lsbcore import rates
from lsbcore.manifold import ManifoldData

TINY = rates.Budget(steps=30, ae_steps=30, pretrain_size=256, sample_steps=10, width=16)


@pytest.mark.parametrize("span", ["full", "low"])
@pytest.mark.parametrize("D,d", [(4, 2), (16, 2), (64, 4)])
def test_read_back_is_exact_on_the_manifold(D, d, span):
    data = ManifoldData(D, d, seed=3, span=span)
    z = data.sample_intrinsic(500, seed=1)
    x = data.embed(z)
    torch.testing.assert_close(data.intrinsic(x), z, rtol=0, atol=1e-12)
    assert float(data.off_manifold(x).max()) < 1e-12
    # a vertical step (in the bent directions) of length 0.3 is read back as 0.3, and leaves u alone
    v = torch.randn(500, data.basis.shape[1] - d, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    step = 0.3 * (v / v.norm(dim=1, keepdim=True)) @ data.basis[:, d:].T
    torch.testing.assert_close(data.off_manifold(x + step), torch.full((500,), 0.3, dtype=torch.float64))
    torch.testing.assert_close(data.intrinsic(x + step), z, rtol=0, atol=1e-12)
    if D > data.basis.shape[1]:          # span="low": directions outside Q's columns count too
        w = torch.randn(500, D, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
        w -= (w @ data.basis) @ data.basis.T
        torch.testing.assert_close(data.off_manifold(x + 0.2 * w / w.norm(dim=1, keepdim=True)),
                                   torch.full((500,), 0.2, dtype=torch.float64))


@pytest.mark.parametrize("span,m", [("full", 6), ("low", 2)])
def test_the_bend_is_vertical_distance_to_the_graph(span, m):
    data = ManifoldData(8, 2, seed=0, span=span)
    assert data.basis.shape == (8, 2 + m)
    z = data.sample_intrinsic(100, seed=0)
    y = torch.cat([z, data.bend(z) + 0.25], dim=1) @ data.basis.T      # h shifted by 0.25 in each of its m coords
    torch.testing.assert_close(data.off_manifold(y), torch.full((100,), 0.25 * math.sqrt(m), dtype=torch.float64))


def test_the_bend_has_the_same_size_in_every_dimension():
    sizes = [float(ManifoldData(D, 2).bend(ManifoldData(D, 2).sample_intrinsic(20_000, seed=0)).pow(2).sum(1).mean())
             for D in (16, 64, 256)]
    assert max(sizes) / min(sizes) < 1.25 and all(abs(s - 1.0) < 0.15 for s in sizes)      # ≈ a² d*/2 = 1


def test_samples_are_seeded_and_the_shift_moves_the_law():
    data = ManifoldData(16, 2)
    assert torch.equal(data.sample(50, seed=4), data.sample(50, seed=4))
    assert not torch.equal(data.sample(50, seed=4), data.sample(50, seed=5))
    z0 = data.sample_intrinsic(20_000, seed=0)
    z1 = data.sample_intrinsic(20_000, seed=0, shift=1.0)
    w, mu, _ = data._law(0.0)
    torch.testing.assert_close(z0.mean(0), (w[:, None] * mu).sum(0), atol=0.03, rtol=0)
    assert float((z1.mean(0) - z0.mean(0)).norm()) > 0.5
    assert data.sample(10, dtype=torch.float64).dtype == torch.float64


def test_off_manifold_noise_has_the_stated_size():
    data = ManifoldData(64, 2, noise=0.1)
    x = data.sample(4000, seed=0, dtype=torch.float64)
    off = data.off_manifold(x)
    assert abs(float(off.pow(2).mean().sqrt()) - 0.1) < 0.003
    torch.testing.assert_close(data.intrinsic(x), data.sample_intrinsic(4000, seed=0), rtol=0, atol=1e-12)


@pytest.mark.parametrize("kwargs,match", [
    (dict(ambient_dim=3, intrinsic_dim=2), "ambient_dim"),
    (dict(ambient_dim=8, intrinsic_dim=2, span="half"), "span"),
    (dict(ambient_dim=8, intrinsic_dim=2, seed="x"), "seed"),
    (dict(ambient_dim=8, intrinsic_dim=2, curvature=-1.0), "curvature"),
    (dict(ambient_dim=8, intrinsic_dim=0), "intrinsic_dim"),
    (dict(ambient_dim=8.5, intrinsic_dim=2), "ambient_dim"),
    (dict(ambient_dim=8, intrinsic_dim=2, noise=float("nan")), "noise"),
])
def test_bad_family_arguments(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        ManifoldData(**kwargs)


def test_bad_points_are_named():
    data = ManifoldData(8, 2)
    with pytest.raises(ValueError, match="x"):
        data.intrinsic(torch.zeros(3, 7))
    with pytest.raises(ValueError, match="x"):
        data.off_manifold(torch.full((3, 8), float("nan")))
    with pytest.raises(ValueError, match="z"):
        data.embed(torch.zeros(3, 3))
    with pytest.raises(ValueError, match="shift"):
        data.sample(3, shift=-1.0)


def test_metrics_know_a_perfect_a_copying_and_a_shifted_generator():
    data = ManifoldData(16, 2)
    train = data.sample(512, seed=1)
    floor = rates.evaluate(data, data.sample(4000, seed=2), train, reference_size=4000, exact_size=500)
    assert floor["off"] < 1e-5 and 0.8 < floor["memo"] < 1.25 and floor["sw2"] < 0.1
    copies = train[torch.randint(0, 512, (4000,), generator=torch.Generator().manual_seed(0))]
    assert rates.evaluate(data, copies, train, reference_size=4000, exact_size=500)["memo"] < 1e-3
    z = data.sample_intrinsic(4000, seed=2) + torch.tensor([0.5, 0.0], dtype=torch.float64)
    moved = rates.evaluate(data, data.embed(z).float(), train, reference_size=4000, exact_size=500)
    assert moved["sw2"] > 3 * floor["sw2"] and moved["off"] < 1e-5
    assert rates.noise_floors(data, size=500, seeds=(0,)) == rates.noise_floors(data, size=500, seeds=(0,))


def test_lipschitz_of_a_linear_decoder_is_its_spectral_norm():
    A = torch.randn(10, 3, generator=torch.Generator().manual_seed(0))
    codes = torch.randn(200, 3, generator=torch.Generator().manual_seed(1))
    est = rates.lipschitz(lambda z: z @ A.T, codes)
    s = float(torch.linalg.matrix_norm(A.double(), ord=2))
    assert est["jacobian"] == pytest.approx(s, rel=1e-5) and est["jacobian_p95"] == pytest.approx(s, rel=1e-5)
    assert est["secant"] <= s * (1 + 1e-5)


def test_spaces_invert_their_standardisation():
    data = ManifoldData(16, 2)
    x = data.sample(300, seed=0)
    pix = rates.AmbientSpace(x, scale="coordinate")
    assert abs(float(pix.encode(x).var(0).mean()) - 1) < 1e-4
    amb = rates.AmbientSpace(x, total_variance=2)
    z = amb.encode(x)
    assert abs(float(z.var(0).sum()) - 2) < 1e-4
    torch.testing.assert_close(amb.decode(z), x, atol=1e-5, rtol=0)
    oracle = rates.OracleSpace(data, x)
    u = oracle.encode(x)
    torch.testing.assert_close(u.std(0), torch.ones(2), atol=1e-5, rtol=0)
    torch.testing.assert_close(oracle.decode(u), x, atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="total_variance"):
        rates.AmbientSpace(x)
    with pytest.raises(ValueError, match="total_variance"):
        rates.AmbientSpace(x, scale="coordinate", total_variance=2)
    with pytest.raises(ValueError, match="scale"):
        rates.AmbientSpace(x, scale="pixels")
    ae = rates.fit_manifold_autoencoder(data, TINY)
    codes = ae.encode(x)
    assert codes.shape == (300, 2) and ae.decode(codes).shape == (300, 16)
    torch.testing.assert_close(ae.decode(codes[:5]), ae.unchecked_decode(codes[:5]))
    with pytest.raises(TypeError, match="data"):
        rates.fit_manifold_autoencoder("moons", TINY)


def test_budget_checks_its_fields():
    with pytest.raises(ValueError, match="t_gap"):
        rates.Budget(t_gap=1.0)
    with pytest.raises(ValueError, match="steps"):
        rates.Budget(steps=0)
    with pytest.raises(ValueError, match="lr"):
        rates.Budget(lr=-1.0)


def test_sweep_rows_are_complete_and_seeded():
    kw = dict(n_gen=300)
    rows = rates.rate_sweep([8], [2], [16, 64], [0], TINY, **kw)
    assert len(rows) == 6 and {r["space"] for r in rows} == {"latent", "ambient", "oracle"}
    for r in rows:
        assert all(math.isfinite(r[k]) for k in ("sw2", "w2", "off", "memo", "train_s"))
        assert math.isfinite(r["lip"]) == (r["space"] == "latent")
    again = rates.rate_sweep([8], [2], [16, 64], [0], TINY, **kw)
    assert [(r["sw2"], r["off"]) for r in rows] == [(r["sw2"], r["off"]) for r in again]
    with pytest.raises(ValueError, match="D"):
        rates.rate_sweep([3], [2], [16], [0], TINY)
    with pytest.raises(ValueError, match="spaces"):
        rates.rate_sweep([8], [2], [16], [0], TINY, spaces=("pixels",))
    with pytest.raises(TypeError, match="budget"):
        rates.rate_sweep([8], [2], [16], [0], dict(steps=3))


def _rows(amb_growth: float, lat_growth: float):
    """Synthetic sweep rows: err = c · n^(−1/4), c growing with D by the given factors (two seeds)."""
    rows = []
    for D, k in ((16, 0), (256, 1)):
        for space, g in (("ambient", amb_growth), ("latent", lat_growth)):
            for seed in (0, 1):
                for n in (64, 256, 1024, 4096, 16384):
                    c = 0.5 * g**k * (1 + 0.01 * seed)
                    rows.append(dict(space=space, D=D, d=2, n=n, seed=seed, sw2=c * n ** -0.25, off=0.1, memo=1.0))
    return rows


def test_verdict_and_summary_read_the_claim_from_the_rows():
    good = rates.verdict(_rows(2.0, 1.0))
    assert [ok for ok, _ in good] == [True, True, True]
    bad = rates.verdict(_rows(1.0, 2.0))
    assert [ok for ok, _ in bad] == [False, False, False]
    s = {(r["space"], r["D"]): r for r in rates.summarise(_rows(2.0, 1.0))}
    assert s["ambient", 16]["slope"] == pytest.approx(-0.25, abs=1e-3)
    assert s["ambient", 256]["err"] == pytest.approx(2 * s["ambient", 16]["err"], rel=1e-9)
    with pytest.raises(ValueError, match="n_ref"):
        rates.summarise(_rows(2.0, 1.0), n_ref=100)


def test_samples_needed_interpolates_a_power_law():
    ns = [64, 256, 1024, 4096]
    err = [n ** -0.5 for n in ns]
    assert rates.samples_needed(ns, err, 500 ** -0.5) == pytest.approx(500, rel=1e-9)
    assert rates.samples_needed(ns, err, 1.0) == 64
    assert rates.samples_needed(ns, err, 1e-3) == math.inf


def test_load_table_round_trip_and_errors(tmp_path):
    cols = list(rates.COLUMN_TYPES)
    p = tmp_path / "t.csv"
    p.write_text("# python bench/latent_rates.py --quick\n" + ",".join(cols) + "\n"
                 + "rate,latent,16,2,64,0,,,,0.1,0.2,0.01,0.9,0.02,2.5,1.0\n")
    rows, header = rates.load_table(p)
    assert header.startswith("python bench") and rows[0]["n"] == 64 and rows[0]["M"] is None
    assert rows[0]["sw2"] == pytest.approx(0.1)
    p.write_text(",".join(cols) + "\nrate,latent,16,2,sixty,0,,,,0.1,0.2,0.01,0.9,0.02,2.5,1.0\n")
    with pytest.raises(ValueError, match="line 2"):
        rates.load_table(p)
    with pytest.raises(ValueError, match="does not exist"):
        rates.load_table(tmp_path / "missing.csv")
    p.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="columns"):
        rates.load_table(p)


def test_entry_points_name_their_bad_arguments():
    data = ManifoldData(8, 2)
    x = data.sample(50, seed=0)
    with pytest.raises(TypeError, match="data"):
        rates.evaluate("moons", x, x)
    with pytest.raises(TypeError, match="data"):
        rates.noise_floors(None)
    with pytest.raises(ValueError, match="reference_size"):
        rates.evaluate(data, x, x, reference_size=0)
    with pytest.raises(TypeError, match="budget"):
        rates.learned_bridge(x[:, :2], budget={"steps": 3})
    with pytest.raises(TypeError, match="decoder"):
        rates.lipschitz(3, x[:, :2])
    with pytest.raises(ValueError, match="t_gaps"):
        rates.stop_sweep(data, [0.5, 1.0], budget=TINY)
    with pytest.raises(TypeError, match="space"):
        rates.generate("ambient", None, 10, TINY)
    with pytest.raises(ValueError, match="t_gap"):
        rates.generate(rates.AmbientSpace(x, total_variance=2), None, 10, TINY, t_gap=1.0)
    with pytest.raises(ValueError, match="seeds"):
        rates.rate_sweep([8], [2], [16], [-1], TINY)
    with pytest.raises(ValueError, match="non-empty"):
        rates.rate_sweep([8], [2], [], [0], TINY)
