"""Widgets of notebooks 05 and 06, driven in plain pytest by setting ``.value`` (no browser)."""
import matplotlib

matplotlib.use("Agg")

import pytest
import torch

from lsbcore import widgets as W
from lsbcore.bridges.sbvae_exact import LinearSBVAE
from lsbcore.bridges.vsdm import VSDM, LinearForward
from lsbcore.marginals import spiral


def test_sbvae_tradeoff_explorer_reports_the_exact_terms():
    box = W.sbvae_tradeoff_explorer(2.0, 0.5, strength=0.5, T=1.0)
    r0 = box.state["terms"]
    ref = LinearSBVAE([2.0], [[0.5]], F=0.0, g=1.0, T=1.0, K=-0.5).fit_decoder()
    assert r0["prior_loss"] == pytest.approx(ref.prior_loss())
    assert r0["path_kl"] == pytest.approx(r0["prior_loss"] + r0["drift_matching"])
    assert r0["data_kl"] <= r0["path_kl"]
    box.controls["strength"].value = 1.5           # a stronger encoder forgets the data faster ...
    r1 = box.state["terms"]
    assert r1["prior_loss"] < r0["prior_loss"]
    box.controls["T"].value = 2.0
    assert box.state["T"] == 2.0 and "KL(Q‖P)" in box.children[1].value
    assert "lsb-strength" in box.controls["strength"]._dom_classes
    box.controls["strength"].value = 99.0          # sliders clamp
    assert box.state["strength"] == 3.0


def test_vsdm_forward_explorer_more_beta_forgets_more_and_A_changes_the_prior():
    data = spiral(400, seed=0, scale=(1, 8))
    f = LinearForward(2, seed=0)
    with torch.no_grad():
        f.s.copy_(torch.tensor([-0.5, -0.2], dtype=torch.float64))
    box = W.vsdm_forward_explorer(data, f, beta_max=5.0, n=300)
    left5 = box.state["data_left"]
    box.controls["beta_max"].value = 20.0
    assert box.state["data_left"] < left5
    prior_A = box.state["prior_cov"].clone()
    box.controls["strength"].value = 0.0             # λ = 0: the VP-SDE, whose prior is ≈ I
    torch.testing.assert_close(box.state["prior_cov"], torch.eye(2, dtype=torch.float64), atol=1e-3, rtol=0)
    assert not torch.allclose(prior_A, box.state["prior_cov"], atol=1e-3)
    box.controls["t"].value = 0.05
    assert box.state["xt"].shape == (300, 2)
    assert torch.equal(f.s.detach(), torch.tensor([-0.5, -0.2], dtype=torch.float64))   # input untouched
    with pytest.raises(TypeError, match="forward"):
        W.vsdm_forward_explorer(data, object())


def test_vsdm_sampler_explorer_switches_model_and_nfe():
    target = spiral(400, seed=1)
    nets = {name: VSDM(LinearForward(2), _Zero()) for name in ("VP-SDE", "VSDM")}
    box = W.vsdm_sampler_explorer(nets, target, nfe=6, n=100)
    assert box.state["nfe"] == 6 and box.state["samples"].shape == (100, 2)
    box.controls["nfe"].value = 16
    assert box.state["nfe"] == 16 and "NFE = 16" in box.children[1].value
    box.controls["model"].value = "VSDM"
    assert box.state["model"] == "VSDM" and box.state["w2"].w2 > 0
    with pytest.raises(TypeError, match="bridges"):
        W.vsdm_sampler_explorer({}, target)


class _Zero(torch.nn.Module):
    """ε ≡ 0: the score of N(0, Σ_t)-like data (a cheap stand-in network)."""

    def __init__(self):
        super().__init__()
        self.p = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x, t):
        return torch.zeros_like(x)
