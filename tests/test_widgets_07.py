"""The widget of notebook 07 (forecast fans), driven in plain pytest by setting ``.value`` (no browser)."""
import matplotlib

matplotlib.use("Agg")

import pytest
import torch

from lsbcore import widgets as W
from lsbcore.bridges.vsdm_forecast import fit_forecaster
from lsbcore.forecast import LinearGaussianSSM


def test_forecast_fan_explorer_follows_its_controls():
    """Less history → a wider Kalman band (the oracle knows less); the horizon slider sets the shapes;
    the controls carry their lsb-* classes; a process without a Kalman predictive is a TypeError."""
    proc = LinearGaussianSSM(3, 12, 2, seed=0)
    model = fit_forecaster(proc, adaptive=False, history=24, horizon=6, n_train_series=256, steps=20,
                           batch_size=64, width=16, depth=1, seed=0, progress=False)
    series = proc.simulate(3, 60, seed=5)
    box = W.forecast_fan_explorer(proc, {"VP-SDE": model}, series, history=48, horizon=6, n_samples=16, nfe=4)
    sd_long = box.state["oracle_sd"][0].mean()
    box.controls["history"].value = 2
    assert box.state["history"] == 2 and box.state["oracle_sd"][0].mean() > sd_long
    box.controls["horizon"].value = 3
    assert box.state["ensemble"].shape == (16, 3, 3) and box.state["oracle_mean"].shape == (3, 3)
    assert box.state["crps_oracle"] > 0 and box.state["crps_model"] > 0
    assert "lsb-horizon" in box.controls["horizon"]._dom_classes
    with pytest.raises(TypeError, match="process"):
        W.forecast_fan_explorer(object(), {"VP-SDE": model}, series)
    with pytest.raises(TypeError, match="models"):
        W.forecast_fan_explorer(proc, {}, series)
    assert torch.isfinite(box.state["ensemble"]).all()
