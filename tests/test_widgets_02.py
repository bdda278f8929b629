"""Notebook 02's widgets in plain pytest: set .value, check the computed state and the figure."""
import numpy as np
import pytest
import torch

from lsbcore.bridges.reference import BrownianBridge
from lsbcore.schrodinger.gaussian import GaussianBridge
from lsbcore.widgets import bridge_mixture_explorer, sampler_explorer


def _sets(n=60):
    g = torch.Generator().manual_seed(0)
    return torch.randn(n, 2, generator=g), torch.randn(n, 2, generator=g) * 0.5 + torch.tensor([3.0, 1.0])


def test_bridge_mixture_explorer_follows_its_controls():
    x0, x1 = _sets()
    box = bridge_mixture_explorer(x0, x1, sigma=0.4)
    c = box.controls
    assert {"lsb-sigma", "lsb-coupling", "lsb-t"} <= {cls for w in c.values() for cls in w._dom_classes}
    c["t"].value = 0.0  # the mixture starts at X0 and ends at X1 exactly
    a, b = box.state["pairs"]
    torch.testing.assert_close(box.state["xt"], a)
    c["t"].value = 1.0
    torch.testing.assert_close(box.state["xt"], b)
    assert "t = 1.00" in box.figure.axes[0].get_title()
    indep = box.state["cost"]
    c["coupling"].value = "ot"  # exact OT pairs minimise E‖X1 − X0‖² over all pairings
    assert box.state["coupling"] == "ot" and box.state["cost"] <= indep + 1e-9
    c["coupling"].value = "sinkhorn"
    c["sigma"].value = 1.0
    assert box.state["sigma"] == 1.0 and "σ = 1.00" in box.children[1].value
    with pytest.raises(ValueError, match="coupling"):
        bridge_mixture_explorer(x0, x1, coupling="nearest")


def test_sampler_explorer_runs_the_sampler_and_reports_w2():
    x0, x1 = _sets()
    bridges = {"pinned": BrownianBridge(x1, sigma=0.3), "pinned both ends": BrownianBridge(x1, sigma=0.3, x0=x0),
               "gaussian": GaussianBridge([0.0, 0.0], 1.0, [3.0, 1.0], 0.25, sigma=0.3)}
    box = sampler_explorer(bridges, x0, target=torch.cat([x1, x1]), steps=10, t1=0.95)
    c = box.controls
    assert box.state["result"].nfe == 10 and "NFE = 10" in box.children[2].value
    assert "noise floor" in box.children[2].value
    c["t"].value = 0.0  # the dots are the starting points
    offsets = box.figure.axes[0].collections[-1].get_offsets()
    np.testing.assert_allclose(np.asarray(offsets), x0.numpy())
    c["steps"].value = 25
    assert box.state["result"].traj.shape == (26, 60, 2)
    c["method"].value = "ode"  # the one-sided pinned bridge has no backward drift, hence no PF-ODE
    assert box.state["error"] is not None and "ODE" in box.children[2].value
    c["bridge"].value = "pinned both ends"  # PF-ODE from a point mass: singular at t = 0, reported
    assert box.state["result"] is None and box.state["error"].startswith("no ODE run:")
    c["bridge"].value = "gaussian"
    assert box.state["error"] is None and box.state["result"].nfe == 50
    with pytest.raises(TypeError, match="bridges"):
        sampler_explorer([], x0)


def test_one_sampler_explorer_offers_every_kind_of_bridge():
    """Closed-form, pinned, empirical Föllmer (its own start points: δ0) in one dropdown, each with its
    own start points and target; a missing part of the face is shown, not raised."""
    from lsbcore.bridges.follmer import EmpiricalFollmer

    x0, x1 = _sets()
    bridges = {"gaussian": GaussianBridge([0.0, 0.0], 1.0, [3.0, 1.0], 0.25, sigma=0.3),
               "pinned": BrownianBridge(x1, sigma=0.3),
               "empirical Föllmer": EmpiricalFollmer(x1, sigma=1.0)}
    box = sampler_explorer(bridges, {"gaussian": x0, "pinned": x0}, target={"pinned": torch.cat([x1, x1])},
                           steps=10, t1=0.95, n=30)
    c = box.controls
    assert box.state["error"] is None and box.state["w2"] is None          # no target given for this one
    c["bridge"].value = "empirical Föllmer"                                 # no start points given: δ0
    assert box.state["error"] is None and box.state["result"].x.shape == (30, 2)
    assert torch.equal(box.state["result"].traj[0], torch.zeros(30, 2))
    c["method"].value = "ode"
    assert "EmpiricalFollmer has no" in box.state["error"] and "point mass" in box.children[2].value
    assert box.figure.axes[0].get_title().endswith("no ODE sampler")
    c["bridge"].value = "pinned"
    assert "BrownianBridge has no" in box.state["error"]
    c["method"].value = "sde"
    assert box.state["error"] is None and "noise floor" in box.children[2].value
    with pytest.raises(ValueError, match="x_start"):
        sampler_explorer(bridges, {"nope": x0})
