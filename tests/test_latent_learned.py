"""The learned latent drift of Notebook 03 §4b: the regression recovers the closed-form drift, the
shipped drifts load verified and sample, and the public entry points refuse bad input."""
import shutil

import pytest
import torch

from lsbcore import latent as L
from lsbcore import shipped as S
from lsbcore.bridges.heat import HeatFlowBridge, fit_heat_flow, heat_flow_drift
from lsbcore.digits import load_digits
from lsbcore.nets import TimeMLP
from lsbcore.utils import ChecksumError, generator

TWO_POINTS = torch.tensor([[-1.0], [1.0]])


def _grid():
    """(z, t) on [−2.5, 2.5] × [0, 0.8]: away from t = 1, where the drift is singular."""
    z, t = torch.meshgrid(torch.linspace(-2.5, 2.5, 51), torch.linspace(0.0, 0.8, 9), indexing="ij")
    return z.reshape(-1, 1), t.reshape(-1, 1)


def _relative_error(net, z, t, exact):
    with torch.no_grad():
        return float((net(z, t) - exact).norm() / exact.norm())


def test_learned_drift_recovers_the_two_point_closed_form():
    """p̂ = ½(δ₋₁ + δ₁), σ = 1: the exact drift is (tanh(z/(1−t)) − z)/(1 − t). 1000 steps of the
    regression bring a small network within 12 % (relative L2 on the grid; 0.071–0.076 over seeds
    0, 1, 2), while the untrained network is off by ≈ 100 % and even the exact drift of a wrong
    model (σ = 0.5, or points at ±0.7) by 21 % and 42 %: the threshold separates them."""
    z, t = _grid()
    exact = heat_flow_drift(z, t, TWO_POINTS, 1.0)
    torch.testing.assert_close(exact, (torch.tanh(z / (1 - t)) - z) / (1 - t))   # the closed form
    net = TimeMLP(1, width=32, depth=3, seed=0)
    assert _relative_error(net, z, t, exact) > 0.9
    bridge = fit_heat_flow(TWO_POINTS, 1.0, t_gap=0.1, steps=1000, net=net, seed=0, progress=False)
    assert _relative_error(bridge.net, z, t, exact) < 0.12
    for wrong in (heat_flow_drift(z, t, TWO_POINTS, 0.5), heat_flow_drift(z, t, 0.7 * TWO_POINTS, 1.0)):
        assert float((wrong - exact).norm() / exact.norm()) > 0.2


def _codes(d):
    x, _ = load_digits("target")
    with torch.no_grad():
        return S.shipped_autoencoder(d).encode(x)


@pytest.mark.parametrize("d", sorted(S.SHIPPED_HEAT.values()))
def test_shipped_heat_drifts_load_and_sample(d):
    net = S.shipped_heat_drift(d)
    assert isinstance(net, TimeMLP) and not net.training and net.dim == d
    assert net.config["latent_dim"] == d and net.config["sigma"] == 1.0 and net.config["t_gap"] == 0.01
    codes = _codes(d)
    a = L.sample_codes("heat-learned", codes, 64, net=net, steps=20, seed=1)
    b = L.sample_codes("heat-learned", codes, 64, net=net, steps=20, seed=1)
    assert a.x.shape == (64, d) and torch.isfinite(a.x).all()
    assert torch.equal(a.x, b.x)
    # at t = 1/4, on noised codes, the fitted drift is near the exact one (relative L2 0.06, 0.11, 0.24,
    # 0.45 for d* = 2, 4, 8, 16; an untrained network is off by ≈ 1); near t = 1 they part (Notebook 03 §4b)
    zt = codes + 0.75**0.5 * torch.randn(codes.shape, generator=torch.Generator().manual_seed(0))
    exact = heat_flow_drift(zt, 0.25, codes, 1.0)
    assert _relative_error(net, zt, torch.full((codes.shape[0], 1), 0.25), exact) < 0.6


def test_learned_and_exact_heat_flow_share_the_gaussian_start():
    """"heat-learned" and "heat-gaussian" start from the same N(mean p̂, cov p̂ + σ²I) draws: the
    comparison of Notebook 03 §4b changes the drift and nothing else."""
    codes = _codes(2)
    net = S.shipped_heat_drift(2)
    learned = L.sample_codes("heat-learned", codes, 16, net=net, steps=5, seed=3, keep_traj=True)
    exact = L.sample_codes("heat-gaussian", codes, 16, steps=5, seed=3, keep_traj=True)
    torch.testing.assert_close(learned.traj[0], exact.traj[0])
    torch.testing.assert_close(learned.traj[0], HeatFlowBridge(codes, 1.0).start(16, how="gaussian",
                                                                                 seed=generator(3)))
    assert not torch.equal(learned.x, exact.x)


def test_tampered_heat_drift_is_refused(tmp_path):
    for name in ("heat_d2.pt", S.MANIFEST_NAME):
        shutil.copy(S.DATA_DIR / name, tmp_path / name)
    f = tmp_path / "heat_d2.pt"
    data = bytearray(f.read_bytes())
    data[len(data) // 2] ^= 0xFF
    f.write_bytes(bytes(data))
    with pytest.raises(ChecksumError, match="corrupt or was modified"):
        S.shipped_heat_drift(2, data_dir=tmp_path)


def test_heat_drift_rebuild_is_deterministic(tmp_path):
    a = S.rebuild_data(tmp_path / "a", steps=3, names=["heat_d2.pt"], progress=False)
    b = S.rebuild_data(tmp_path / "b", steps=3, names=["heat_d2.pt"], progress=False)
    assert a == b and list(a) == ["heat_d2.pt"]
    assert S.shipped_heat_drift(2, data_dir=tmp_path / "a").config["steps"] == 3


def test_bad_inputs_name_the_argument():
    codes = torch.randn(10, 2, generator=torch.Generator().manual_seed(0))
    net = TimeMLP(2, width=8, depth=1)
    with pytest.raises(ValueError, match="net.*heat-learned"):
        L.sample_codes("heat-gaussian", codes, 4, net=net)
    with pytest.raises(TypeError, match="net must be"):
        L.sample_codes("heat-learned", codes, 4, net=lambda z, t: z)
    with pytest.raises(ValueError, match="net.*dimension 3"):
        L.sample_codes("heat-learned", codes, 4, net=TimeMLP(3, width=8, depth=1))
    with pytest.raises(ValueError, match="net was fitted with sigma=1.0, not sigma=2.0"):
        L.sample_codes("heat-learned", _codes(2), 4, net=S.shipped_heat_drift(2), sigma=2.0)
    with pytest.raises(TypeError, match="net must be"):
        HeatFlowBridge(codes, 1.0, net="drift")
    with pytest.raises(ValueError, match="latent_dim"):
        S.shipped_heat_drift(3)
    with pytest.raises(ValueError, match="unknown shipped file"):
        S.rebuild_data("unused", steps=1, names=["heat_d3.pt"])
