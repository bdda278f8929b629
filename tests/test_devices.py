"""The device follows the data (issue 16 §3): every trainer a notebook calls works where its inputs live.

Three kinds of checks:

* on the CPU, saying ``device="cpu"`` (or passing data that is already on the CPU) gives bit for bit
  what the default call gives — the notebooks' outputs do not move;
* a device that does not exist here, a name torch does not know, a wrong type, or a net on one device
  with data on another raise a ValueError/TypeError that names the argument, before any training.
  A second device is simulated with PyTorch's ``meta`` device (tensors with a shape but no values);
* every notebook's ``DEVICE`` parameter is used after its parameters cell;
* with a GPU (skipped otherwise): the trainers run on CUDA for a few steps, their results live there,
  are finite and are close to the CPU's (loose tolerances: CUDA draws other random numbers).
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import torch

import lsbcore as lsb
from lsbcore import rates
from lsbcore.autoencoder import PixelSpace, fit_autoencoder, fit_classifier
from lsbcore.bridges import vsdm_forecast as VF
from lsbcore.bridges.dsb import ipf_step
from lsbcore.bridges.follmer_learned import fit_follmer_sampler
from lsbcore.bridges.vsdm_diag import fit_vsdm_diag
from lsbcore.forecast import LinearGaussianSSM
from lsbcore.latent import sample_codes
from lsbcore.marginals import eight_gaussians
from lsbcore.nets import TimeMLP
from lsbcore.utils import resolve_device, work_device

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("0[1-7]_*.py"))
CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not CUDA, reason="needs a CUDA device")


def _params(module):
    return [p.detach().clone() for p in module.parameters()]


def _same_params(a, b):
    pa, pb = _params(a), _params(b)
    assert len(pa) == len(pb)
    for x, y in zip(pa, pb):
        assert torch.equal(x, y)


@pytest.fixture(scope="module")
def pts():
    return eight_gaussians(200, seed=0, radius=3.0), lsb.Gaussian(torch.zeros(2), 1.0).sample(200, seed=1)


# ----------------------------------------------------------------------------- resolving a device
def test_resolve_device_auto_and_cpu():
    assert resolve_device("auto") == lsb.device()
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    assert lsb.resolve_device is resolve_device


@pytest.mark.parametrize("bad, err", [("gpu", ValueError), ("meta", ValueError), (3, TypeError),
                                      (None, TypeError), (True, TypeError), ("cuda:99", ValueError)])
def test_resolve_device_rejects(bad, err):
    with pytest.raises(err, match="device"):
        resolve_device(bad)


@pytest.mark.skipif(CUDA, reason="checks the message on a machine without CUDA")
def test_resolve_device_cuda_absent():
    with pytest.raises(ValueError, match="no CUDA"):
        resolve_device("cuda")


def test_work_device_rules():
    x = torch.zeros(3, 2)
    assert work_device() is None
    assert work_device(x=x) == torch.device("cpu")
    assert work_device("cpu", x=x) == torch.device("cpu")
    with pytest.raises(ValueError, match="x is on meta"):
        work_device(a=x, x=torch.zeros(3, 2, device="meta"))
    with pytest.raises(ValueError, match="net is on meta"):
        work_device(net=TimeMLP(2).to("meta"), x=x)
    with pytest.raises(ValueError, match="net is on meta"):
        work_device("cpu", net=TimeMLP(2).to("meta"))
    assert work_device(net=TimeMLP(2)) == torch.device("cpu")


# ----------------------------------------------------- device="cpu" is bit-identical to the default
def test_fit_bridge_cpu_identical(pts):
    x0, x1 = pts
    kw = dict(coupling="sinkhorn", steps=8, batch_size=32, progress=False, seed=3)
    a = lsb.fit_bridge(x0, x1, 0.5, **kw)
    b = lsb.fit_bridge(x0, x1, 0.5, device="cpu", **kw)
    _same_params(a.forward_net, b.forward_net)
    g = lsb.Gaussian(torch.zeros(2), 1.0)       # a marginal source: device says where
    c = lsb.fit_bridge(g, x1, 0.5, **kw)
    d = lsb.fit_bridge(g, x1, 0.5, device="cpu", **kw)
    _same_params(c.forward_net, d.forward_net)


def test_imf_and_dsb_cpu_identical():
    p0, p1 = lsb.Gaussian(torch.tensor([-1.0])), lsb.Gaussian(torch.tensor([1.0]))
    kw = dict(iterations=1, steps=5, batch_size=32, pool=64, sample_steps=5, progress=False, seed=1)
    a, b = lsb.imf(p0, p1, 1.0, **kw), lsb.imf(p0, p1, 1.0, device="cpu", **kw)
    _same_params(a.backward_net, b.backward_net)
    kw = dict(iterations=1, steps=5, batch_size=32, n_paths=32, sim_steps=5, width=16, depth=2, progress=False)
    a, b = lsb.dsb(p0, p1, 1.0, **kw), lsb.dsb(p0, p1, 1.0, device="cpu", **kw)
    _same_params(a.bridge.forward_net, b.bridge.forward_net)
    proc = lsb.MatchedBridge(lambda x, t: torch.zeros_like(x), 1.0, dim=1)
    kw = dict(steps=5, batch_size=16, n_paths=16, sim_steps=5, progress=False)
    a, b = ipf_step(proc, p0, 1.0, **kw), ipf_step(proc, p0, 1.0, device="cpu", **kw)
    _same_params(a.backward_net, b.backward_net)


def test_follmer_trainers_cpu_identical(pts):
    mu = lsb.Gaussian(torch.tensor([1.0, -1.0]), 0.5)
    kw = dict(steps=6, batch_size=32, progress=False, seed=2)
    _same_params(lsb.fit_follmer(mu, 1.0, **kw).forward_net, lsb.fit_follmer(mu, 1.0, device="cpu", **kw).forward_net)
    _same_params(lsb.fit_follmer(pts[0], 1.0, **kw).forward_net,
                 lsb.fit_follmer(pts[0], 1.0, device="cpu", **kw).forward_net)
    target = lsb.GaussianMixtureTarget([0.5, 0.5], [[-1.0, 0.0], [1.0, 0.0]], 0.5)
    kw = dict(steps=4, batch_size=16, sim_steps=5, width=16, depth=2, progress=False)
    _same_params(fit_follmer_sampler(target, **kw).net, fit_follmer_sampler(target, device="cpu", **kw).net)


def test_heat_sbvae_vsdm_follow_cpu_data(pts):
    x = pts[0]
    a = lsb.fit_heat_flow(x, 1.0, steps=5, batch_size=32, progress=False)
    b = lsb.fit_heat_flow(x.to("cpu"), 1.0, steps=5, batch_size=32, progress=False)
    _same_params(a.net, b.net)
    a = lsb.fit_sbvae(x, steps=4, batch_size=32, seed=0)
    b = lsb.fit_sbvae(x.to("cpu"), steps=4, batch_size=32, seed=0)
    _same_params(a.bridge.net, b.bridge.net)
    kw = dict(steps=4, batch_size=32, warmup=1, freeze=1, a_every=2, a_paths=16, a_steps=4, progress=False)
    a, b = fit_vsdm_diag(x, **kw), fit_vsdm_diag(x.to("cpu"), **kw)
    assert torch.equal(a.bridge.forward.s, b.bridge.forward.s)


def test_digit_trainers_cpu_identical():
    kw = dict(steps=3, batch_size=32, progress=False)
    _same_params(fit_autoencoder(2, **kw), fit_autoencoder(2, device="cpu", **kw))
    _same_params(fit_classifier(**kw), fit_classifier(device="cpu", **kw))
    ae = lsb.shipped_autoencoder(2)
    a = lsb.generate_digits(ae, "heat-follmer", 20, steps=5, seed=0)
    b = lsb.generate_digits(lsb.shipped_autoencoder(2, device="cpu"), "heat-follmer", 20, steps=5, seed=0,
                            device="cpu")
    assert torch.equal(a["images"], b["images"])


def test_forecaster_and_rates_cpu_identical():
    proc = LinearGaussianSSM(seed=0)
    kw = dict(adaptive=False, steps=3, batch_size=32, n_train_series=64, progress=False)
    a, b = VF.fit_forecaster(proc, **kw), VF.fit_forecaster(proc, device="cpu", **kw)
    _same_params(a.bridge.net, b.bridge.net)
    hist = proc.simulate(2, 48, seed=5)
    assert torch.equal(VF.forecast(a, hist, 3, nfe=4), VF.forecast(b, hist, 3, nfe=4))
    codes = torch.randn(64, 2, generator=lsb.generator(0))
    budget = rates.Budget(steps=4, batch_size=32, width=16, depth=2)
    _same_params(rates.learned_bridge(codes, budget).forward_net,
                 rates.learned_bridge(codes.to("cpu"), budget).forward_net)


# ------------------------------------------------------------ bad devices fail at the door, named
@pytest.mark.parametrize("bad, err", [("gpu", ValueError), (3, TypeError), ("meta", ValueError)])
def test_trainers_reject_bad_device(pts, bad, err):
    x0, x1 = pts
    mu = lsb.Gaussian(torch.zeros(2), 1.0)
    target = lsb.GaussianMixtureTarget([1.0], [[0.0, 0.0]], 1.0)
    calls = [lambda: lsb.fit_bridge(mu, mu, 0.5, steps=1, progress=False, device=bad),
             lambda: lsb.imf(mu, mu, 0.5, steps=1, progress=False, device=bad),
             lambda: lsb.dsb(mu, mu, 0.5, steps=1, progress=False, device=bad),
             lambda: lsb.fit_follmer(mu, steps=1, progress=False, device=bad),
             lambda: fit_follmer_sampler(target, steps=1, progress=False, device=bad),
             lambda: fit_autoencoder(2, steps=1, progress=False, device=bad),
             lambda: fit_classifier(steps=1, progress=False, device=bad),
             lambda: lsb.shipped_autoencoder(2, device=bad),
             lambda: lsb.generate_digits(PixelSpace(), "random", 4, device=bad),
             lambda: VF.fit_forecaster(LinearGaussianSSM(seed=0), steps=1, n_train_series=8, progress=False,
                                       device=bad),
             lambda: rates.rate_sweep([4], [2], [8], [0], device=bad)]
    for call in calls:
        with pytest.raises(err, match="device"):
            call()


@pytest.mark.skipif(CUDA, reason="checks the message on a machine without CUDA")
def test_trainers_reject_missing_cuda(pts):
    with pytest.raises(ValueError, match="no CUDA"):
        lsb.fit_bridge(lsb.Gaussian(torch.zeros(2), 1.0), pts[1], 0.5, steps=1, progress=False, device="cuda")
    with pytest.raises(ValueError, match="no CUDA"):
        fit_follmer_sampler(lsb.NealsFunnel(3), steps=1, progress=False, device="cuda")


def test_data_and_device_disagree(pts):
    with pytest.raises(ValueError, match="device='meta'|must be one of"):
        lsb.fit_bridge(pts[0], pts[1], 0.5, steps=1, progress=False, device="meta")
    meta = torch.zeros(4, 2, device="meta")
    with pytest.raises(ValueError, match="source1 is on meta"):
        lsb.fit_bridge(pts[0], meta, 0.5, steps=1, progress=False)


def test_net_on_another_device_is_named(pts):
    x0, x1 = pts
    meta_net = lambda d=2: TimeMLP(d, 16, 2).to("meta")  # noqa: E731
    with pytest.raises(ValueError, match="net is on meta"):
        lsb.fit_bridge(x0, x1, 0.5, net=meta_net(), steps=1, progress=False)
    with pytest.raises(ValueError, match="net is on meta"):
        lsb.imf(x0, x1, 0.5, net=meta_net(), steps=1, progress=False)
    with pytest.raises(ValueError, match="net is on meta"):
        ipf_step(lambda x, t: torch.zeros_like(x), x0, 1.0, net=meta_net(), steps=1, progress=False)
    with pytest.raises(ValueError, match="net is on meta"):
        lsb.fit_follmer(x1, net=meta_net(), steps=1, progress=False)
    with pytest.raises(ValueError, match="net is on meta"):
        lsb.fit_heat_flow(x1, net=meta_net(), steps=1, progress=False)
    with pytest.raises(ValueError, match="net is on meta"):
        fit_follmer_sampler(lsb.NealsFunnel(2), net=meta_net(), steps=1, progress=False, device="cpu")
    with pytest.raises(ValueError, match="net is on meta"):
        sample_codes("heat-learned", x1, 4, net=meta_net())
    with pytest.raises(ValueError, match="classifier is on meta"):
        lsb.generate_digits(PixelSpace(), "random", 4, classifier=lsb.shipped_classifier().to("meta"))


# ---------------------------------------------------------------- the notebooks use their DEVICE
def _code_after_parameters(path: Path) -> tuple[str, str]:
    """(the parameters cell, the code of every later cell with comments stripped)."""
    cells = re.split(r"^# %%.*$", path.read_text(), flags=re.M)
    heads = re.findall(r"^# %%.*$", path.read_text(), flags=re.M)
    k = next(i for i, h in enumerate(heads) if 'tags=["parameters"]' in h)
    later = [c for h, c in zip(heads[k + 1:], cells[k + 2:]) if "[markdown]" not in h]
    return cells[k + 1], "\n".join(later)


def _names_used(code: str) -> list[str]:
    return [n.id for n in ast.walk(ast.parse(code)) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem[:2])
def test_notebook_device_parameter_is_used(path):
    params, later = _code_after_parameters(path)
    assert re.search(r'^DEVICE = "cpu"', params, flags=re.M), "DEVICE must default to 'cpu' (CI and nbval)"
    comment = re.search(r'^DEVICE = "cpu"\s*#(.*)$', params, flags=re.M).group(1)
    assert "DEV = lsb.resolve_device(DEVICE)" in later, "the notebook must resolve DEVICE once after its parameters"
    uses = _names_used(later).count("DEV")
    if "changes nothing" in comment:     # a notebook without network work says so, and still checks DEVICE
        return
    assert "auto" in comment and "cuda" in comment, "the comment must say what 'auto' and 'cuda' do"
    assert uses >= 1, f"{path.name}: DEV is resolved but passed to no trainer or sampler"


# ------------------------------------------------------------------ on a GPU (skipped without one)
def _close(a: float, b: float, tol: float) -> bool:
    return abs(a - b) <= tol * max(1.0, abs(b))


@needs_cuda
def test_cuda_fit_bridge_and_follmer(pts):
    x0, x1 = pts
    kw = dict(coupling="sinkhorn", steps=200, batch_size=128, progress=False, seed=0)
    cpu = lsb.fit_bridge(x0, x1, 0.5, **kw)
    gpu = lsb.fit_bridge(x0.cuda(), x1.cuda(), 0.5, **kw)
    assert next(gpu.forward_net.parameters()).is_cuda
    out = lsb.sample(gpu, x0.cuda(), steps=20, seed=0).x
    assert out.is_cuda and bool(torch.isfinite(out).all())
    ref = lsb.sample(cpu, x0, steps=20, seed=0).x
    # different random streams on the two devices: compare the learned laws loosely (means within 0.5)
    assert (out.cpu().mean(0) - ref.mean(0)).abs().max() < 0.5
    mu = lsb.Gaussian(torch.tensor([1.0, -1.0]), 0.5)
    fol = lsb.fit_follmer(mu, steps=200, progress=False, device="cuda")
    xs = lsb.sample(fol, torch.zeros(500, 2, device="cuda"), steps=50, seed=0).x
    assert xs.is_cuda and (xs.mean(0).cpu() - torch.tensor([1.0, -1.0])).abs().max() < 0.3


@needs_cuda
def test_cuda_imf_dsb_sampler():
    p0, p1 = lsb.Gaussian(torch.tensor([-1.0])), lsb.Gaussian(torch.tensor([1.0]))
    br = lsb.imf(p0, p1, 1.0, iterations=1, steps=100, batch_size=256, pool=512, sample_steps=10,
                 progress=False, device="cuda")
    x = lsb.sample(br, p0.sample(2000, seed=3).cuda(), steps=20, seed=0).x
    assert x.is_cuda and abs(float(x.mean()) - 1.0) < 0.3
    res = lsb.dsb(p0, p1, 1.0, iterations=1, steps=100, batch_size=256, n_paths=256, sim_steps=10, width=32,
                  depth=2, progress=False, device="cuda")
    assert next(res.bridge.forward_net.parameters()).is_cuda
    target = lsb.GaussianMixtureTarget([0.5, 0.5], [[-1.0, 0.0], [1.0, 0.0]], 0.5)
    smp = fit_follmer_sampler(target, steps=50, batch_size=64, sim_steps=10, progress=False, device="cuda")
    est = lsb.estimate_log_z(smp, target, n=500, steps=10, seed=0)
    assert est.samples.is_cuda and _close(est.log_z, target.log_z, 0.5)


@needs_cuda
def test_cuda_latent_pipeline():
    ae = fit_autoencoder(2, steps=50, progress=False, device="cuda")
    assert next(ae.parameters()).is_cuda
    clf = lsb.shipped_classifier(device="cuda")
    ae8 = lsb.shipped_autoencoder(8, device="cuda")
    gpu = lsb.generate_digits(ae8, "heat-follmer", 100, steps=20, classifier=clf, seed=0, device="cuda")
    cpu = lsb.generate_digits(lsb.shipped_autoencoder(8), "heat-follmer", 100, steps=20,
                              classifier=lsb.shipped_classifier(), seed=0)
    assert gpu["images"].is_cuda and bool(torch.isfinite(gpu["images"]).all())
    assert _close(gpu["fdd"], cpu["fdd"], 0.5)       # same method, other noise: FDD within 50 %
    codes = ae8.encode(lsb.load_digits("target", device="cuda")[0])
    heat = lsb.fit_heat_flow(codes, 1.0, steps=50, progress=False)
    assert next(heat.net.parameters()).is_cuda


@needs_cuda
def test_cuda_sbvae_vsdm_forecast_rates():
    data = eight_gaussians(500, seed=0, radius=4.0)
    run = lsb.fit_sbvae(data.cuda(), steps=50, seed=0)
    assert run.bridge.sample(100, steps=20, seed=0).is_cuda
    pixels = 2 * lsb.load_digits("target")[0] - 1
    res = fit_vsdm_diag(pixels.cuda(), steps=40, batch_size=64, warmup=4, freeze=10, a_every=10, a_paths=32,
                        a_steps=5, progress=False)
    assert res.bridge.forward.s.is_cuda and bool(torch.isfinite(res.bridge.forward.s).all())
    proc = LinearGaussianSSM(seed=0)
    fm = VF.fit_forecaster(proc, adaptive=False, steps=50, n_train_series=512, progress=False, device="cuda")
    ens = VF.forecast(fm, proc.simulate(4, 48, seed=1), 8, nfe=10)
    assert ens.device.type == "cpu" and bool(torch.isfinite(ens).all())
    rows = rates.rate_sweep([4], [2], [64], [0], rates.Budget(steps=20, ae_steps=20, pretrain_size=256),
                            spaces=("ambient",), n_gen=256, device="cuda")
    assert all(r["sw2"] == r["sw2"] for r in rows)


def test_on_device_source_draws_from_a_seed():
    """The GPU path for marginals, run here with the CPU as the 'device': same seed, same points."""
    from lsbcore.utils import on_device_source

    mu = lsb.Gaussian(torch.zeros(2), 1.0)
    draw = on_device_source(lambda n, gen: mu.sample(n, seed=gen), torch.device("cpu"))
    a, b = draw(5, lsb.generator(7)), draw(5, lsb.generator(7))
    assert a.shape == (5, 2) and torch.equal(a, b)
