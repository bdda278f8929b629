"""What the explorers compute (lsbcore.explore, lsbcore.explore_linear, and the figure helpers they
draw with), checked against closed forms and direct package calls, without widgets."""
import math

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from lsbcore import plotting  # noqa: E402
from lsbcore.bridge import MethodUnavailable  # noqa: E402
from lsbcore.bridges.follmer import EmpiricalFollmer  # noqa: E402
from lsbcore.bridges.reference import BrownianBridge  # noqa: E402
from lsbcore.bridges.vsdm import LinearForward  # noqa: E402
from lsbcore.explore import (bridge_mixture, class_summary, grid_coupling, ipf_history, ipf_iterate,  # noqa: E402
                             memorisation_view, nearest_rows, run_sampler)
from lsbcore.explore_linear import SBVAE_TERMS, forward_noising, sbvae_sweep, sbvae_terms  # noqa: E402
from lsbcore.marginals import Gaussian  # noqa: E402
from lsbcore.schrodinger.gaussian import GaussianBridge  # noqa: E402
from lsbcore.schrodinger.grid import Grid, fortet  # noqa: E402

DT = torch.float64


def gauss1(m, v):
    return Gaussian(torch.tensor([m], dtype=DT), torch.tensor([[v]], dtype=DT))


# ---------------------------------------------------------------------------------- notebook 01
def test_ipf_iterate_is_the_kth_entry_of_the_history():
    grid = Grid(-6.0, 6.0, 121)
    hist = ipf_history(gauss1(-1.0, 0.5), gauss1(1.0, 1.0), 0.6, grid, 12)
    assert len(hist) == 13 and all(b < a for a, b in zip(hist[1:], hist[2:]))
    for k in (1, 5, 12):
        view = ipf_iterate(gauss1(-1.0, 0.5), gauss1(1.0, 1.0), 0.6, grid, k)
        assert view["error"] == pytest.approx(hist[k], rel=1e-6)
        assert view["error_rho1"] < 1e-12
        # the first marginal is a density on the nodes; its L1 distance to ρ0 is the reported error
        assert float(view["marginal"].sum()) * grid.cell_volume == pytest.approx(1.0, rel=1e-9)
        l1 = float((view["marginal"] - view["rho0"]).abs().sum()) * grid.cell_volume
        assert l1 == pytest.approx(view["error"], rel=1e-6)
    with pytest.raises(ValueError, match="grid"):
        ipf_history(gauss1(0.0, 1.0), gauss1(0.0, 1.0), 1.0, Grid(-1.0, 1.0, 5, dim=2), 3)


def test_grid_coupling_matches_the_gaussian_closed_form():
    grid = Grid(-8.0, 9.0, 241)
    br = fortet(gauss1(-1.0, 0.5), gauss1(1.0, 1.0), 0.8, grid, tol=1e-11)
    view = grid_coupling(br, 0.3)
    exact = GaussianBridge(-1.0, 0.5, 1.0, 1.0, 0.8)
    assert view["plan"].shape == (241, 241) and float(view["plan"].sum()) == pytest.approx(1.0, abs=1e-12)
    assert view["cost"] == pytest.approx(exact.entropic_cost(), abs=1e-7)
    x = grid.axes[0]
    mean_t = float((view["rho_t"] * x).sum() * grid.cell_volume)
    assert mean_t == pytest.approx(float(exact.mean(0.3)), abs=1e-7)
    with pytest.raises(ValueError, match="bridge"):
        grid_coupling(fortet(Gaussian(torch.zeros(2, dtype=DT), torch.eye(2, dtype=DT)),
                             Gaussian(torch.zeros(2, dtype=DT), torch.eye(2, dtype=DT)), 1.0,
                             Grid(-4.0, 4.0, 16, dim=2)), 0.5)


# ---------------------------------------------------------------------------------- notebook 02
def _pairs(n=200):
    g = torch.Generator().manual_seed(0)
    return torch.randn(n, 2, generator=g), torch.randn(n, 2, generator=g) + torch.tensor([3.0, 0.0])


def test_bridge_mixture_ends_on_the_pairs_and_has_the_bridge_variance():
    a, b = _pairs(4000)
    for t, want in ((0.0, a), (1.0, b)):
        torch.testing.assert_close(bridge_mixture(a, b, t, 0.7, n_paths=5)["xt"], want)
    view = bridge_mixture(a, b, 0.5, 0.7, n_paths=7, steps=20)
    assert view["traj"].shape == (21, 7, 2)
    torch.testing.assert_close(view["traj"][0], a[:7])
    assert view["cost"] == pytest.approx(float(((a - b) ** 2).sum(1).mean()))
    # X_t − ((1−t)X0 + tX1) = σ√(t(1−t)) Z: variance σ²/4 per coordinate, sd of the estimate σ²/4·√(2/n)
    resid = view["xt"] - 0.5 * (a + b)
    assert float(resid.var(0).max() - 0.49 / 4) < 5 * 0.49 / 4 * math.sqrt(2 / 4000)
    with pytest.raises(ValueError, match="rows"):
        bridge_mixture(a, b[:10], 0.5, 0.7)


def test_run_sampler_reports_what_a_bridge_cannot_do():
    a, b = _pairs(50)
    one_sided = BrownianBridge(b, sigma=0.3)
    ok = run_sampler(one_sided, a, method="sde", steps=10, t1=0.95, target=torch.cat([b, b]))
    assert ok["error"] is None and ok["result"].traj.shape == (11, 50, 2) and ok["w2"].w2 > 0
    no_ode = run_sampler(one_sided, a, method="ode", steps=10, t1=0.95)
    assert no_ode["result"] is None and no_ode["error"].startswith("no ODE run: BrownianBridge has no")
    blown = run_sampler(BrownianBridge(b, sigma=0.3, x0=a), a, method="ode", steps=10, t1=0.95)
    assert blown["result"] is None and blown["error"].startswith("no ODE run:")   # singular at t = 0
    with pytest.raises(ValueError, match="method"):
        run_sampler(one_sided, a, method="heun")
    emp = EmpiricalFollmer(b, sigma=1.0)
    assert emp.unavailable and not emp.provides("velocity")
    with pytest.raises(MethodUnavailable):
        emp.velocity(a, 0.5)
    msg = run_sampler(emp, 30, method="ode", steps=5)["error"]
    assert msg.startswith("no ODE run: EmpiricalFollmer has no")
    # an int asks the bridge for its own start points (δ0 here) and runs towards the data end
    gen = run_sampler(emp, 30, method="sde", steps=50, seed=1)
    assert gen["error"] is None and torch.equal(gen["result"].traj[0], torch.zeros(30, 2))


def test_run_sampler_scores_a_closed_form_bridge():
    br = GaussianBridge([0.0, 0.0], 1.0, [3.0, 1.0], 0.25, sigma=0.5)
    x = Gaussian(torch.zeros(2), torch.eye(2)).sample(2000, seed=0)
    target = Gaussian(torch.tensor([3.0, 1.0]), 0.25 * torch.eye(2))
    view = run_sampler(br, x, method="ode", steps=20, target=target, seed=0)
    assert view["error"] is None and view["result"].nfe == 40
    assert view["w2"].w2 < 3 * view["w2"].floor + 0.05


# ---------------------------------------------------------------------------------- notebooks 03–04
def test_nearest_rows_and_memorisation_view():
    g = torch.Generator().manual_seed(3)
    pts = torch.randn(20, 4, generator=g)
    x = pts[[3, 7, 7]] + 1e-3 * torch.randn(3, 4, generator=g)
    assert nearest_rows(x, pts).tolist() == [3, 7, 7]
    brute = torch.tensor([min(range(20), key=lambda j: float((xi - pts[j]).norm())) for xi in x])
    assert torch.equal(nearest_rows(x, pts), brute)
    run = {"codes": x, "points": pts, "fit_images": torch.arange(20.0)[:, None].expand(20, 64)}
    view = memorisation_view(run, torch.randn(50, 4, generator=g))
    assert view["nearest"][:, 0].tolist() == [3.0, 7.0, 7.0]
    assert 0 <= view["ratio"] < 0.05                    # copies sit much closer than new points
    with pytest.raises(ValueError, match="points"):
        nearest_rows(x, pts[:, :2])


def test_class_summary_counts_and_confidence():
    logits = torch.tensor([[10.0, 0.0] + [0.0] * 8, [0.0, 10.0] + [0.0] * 8, [0.0, 10.0] + [0.0] * 8])
    s = class_summary(lambda images: images, logits)
    assert s["counts"].tolist() == [1, 2] + [0] * 8
    p = math.exp(10) / (math.exp(10) + 9)
    assert s["confidence"] == pytest.approx(p)


# ---------------------------------------------------------------------------------- notebooks 05–06
def test_sbvae_terms_obey_the_data_processing_inequality():
    r = sbvae_terms(0.5, 1.0)
    assert set(r) == set(SBVAE_TERMS)
    assert r["path_kl"] == pytest.approx(r["prior_loss"] + r["drift_matching"])
    assert 0 <= r["data_kl"] <= r["path_kl"] + 1e-12
    sweep = sbvae_sweep([0.0, 0.5, 2.0], 1.0)
    assert sweep["prior_loss"][1] == pytest.approx(r["prior_loss"])
    assert sweep["prior_loss"][2] < sweep["prior_loss"][0]        # a stronger encoder forgets faster
    with pytest.raises(ValueError, match="kappa"):
        sbvae_terms(-1.0, 1.0)


def test_forward_noising_vp_closed_form():
    """λ = 0 is the VP-SDE: Φ_1 = e^{−τ/2} I, Σ_1 = (1 − e^{−τ}) I with τ = ∫β, so the data left is
    e^{−τ} tr Cov / (d (1 − e^{−τ}))."""
    f = LinearForward(2, seed=0)
    with torch.no_grad():
        f.s.copy_(torch.tensor([-0.5, -0.2], dtype=DT))
    x0 = torch.randn(300, 2, generator=torch.Generator().manual_seed(0), dtype=DT) * torch.tensor([1.0, 3.0], dtype=DT)
    view = forward_noising(f, x0, 1.0, beta_max=8.0, strength=0.0)
    g = LinearForward(2, beta_max=8.0, seed=0)
    tau = float(g.int_beta(torch.tensor(1.0, dtype=DT)))
    torch.testing.assert_close(view["prior_cov"], (1 - math.exp(-tau)) * torch.eye(2, dtype=DT))
    want = math.exp(-tau) * float(torch.trace(torch.cov(x0.T))) / (2 * (1 - math.exp(-tau)))
    assert view["data_left"] == pytest.approx(want, rel=1e-9)
    assert forward_noising(f, x0, 1.0, beta_max=20.0, strength=0.0)["data_left"] < view["data_left"]
    assert torch.equal(f.s.detach(), torch.tensor([-0.5, -0.2], dtype=DT))   # the input is untouched
    assert f.schedule.beta_max == 10.0
    with pytest.raises(TypeError, match="forward"):
        forward_noising(object(), x0, 1.0, beta_max=8.0)
    with pytest.raises(ValueError, match="t"):
        forward_noising(f, x0, 1.5, beta_max=8.0)


# ---------------------------------------------------------------------------------- figure helpers
def test_cov_ellipse_lies_on_the_level_set():
    cov = np.array([[2.0, 0.6], [0.6, 0.5]])
    _, ax = plotting.new_axes()
    plotting.cov_ellipse(cov, ax, mean=[1.0, -1.0], n_sd=2.0)
    xy = ax.get_lines()[-1].get_xydata() - np.array([1.0, -1.0])
    np.testing.assert_allclose(np.einsum("ni,ij,nj->n", xy, np.linalg.inv(cov), xy), 4.0, rtol=1e-9)
    assert ax.get_xlabel() and ax.get_ylabel()


def test_every_helper_labels_its_axes():
    fig, axes = plotting.new_axes(4, size=(2.0, 1.5))
    assert fig.get_size_inches().tolist() == [8.0, 1.5]
    plotting.curves([1, 2, 3], {"a": [1, 4, 9]}, axes[0], xlabel="n", ylabel="n²", title="squares", logy=True)
    plotting.bars({"x": 1.0, "y": 2.0}, axes[1], xlabel="term", ylabel="nats", title="bars")
    plotting.quiver2d((torch.arange(4.0), torch.arange(3.0)), torch.ones(4, 3, 2), axes[2], title="field")
    plotting.paths2d(torch.zeros(5, 3, 2), axes[3], title="paths")
    for ax in axes:
        assert ax.get_xlabel() and ax.get_ylabel() and ax.get_title()
    assert axes[0].get_yscale() == "log"
