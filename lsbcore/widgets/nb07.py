"""Explorer of notebook 07 (VSDM on data): forecast fans of the exact Kalman law against trained models."""
from __future__ import annotations

import ipywidgets as widgets
import torch

from ..forecast import _check_series, crps_ensemble, crps_gaussian
from ..plotting import new_axes
from ..utils import check_int
from ._panel import connect, panel, show, slider

__all__ = ["forecast_fan_explorer"]


def forecast_fan_explorer(process, models: dict, series, *, history: int = 48, horizon: int = 12,
                          n_samples: int = 200, nfe: int = 20, seed: int = 0) -> widgets.VBox:
    """Series, history length and horizon → the oracle's Kalman predictive fan next to a model's ensemble.

    ``process``: a process with ``predictive(history, horizon)`` (:class:`lsbcore.LinearGaussianSSM`);
    ``models``: dict name → :class:`~lsbcore.bridges.vsdm_forecast.ForecastModel` (trained, sharing the
    horizon); ``series``: ``(n, L, d_obs)`` test series whose last ``models' horizon`` steps are the
    truth to forecast and whose first ``L − horizon`` steps are the history available.

    The forecast origin is fixed (the start of the truth). The *history* slider sets how many past
    observations the oracle's Kalman filter sees (its 90 % band widens as it falls); a model always
    sees its own ``history`` steps (what it was trained on). The *horizon* slider sets how many future
    steps are drawn and scored. The ensembles are sampled once per (model, series) with the PF-ODE at
    ``nfe`` and cached, so a callback is a Kalman filter and a plot — no training. The info line gives
    the CRPS over the shown horizon (mean over coordinates) of the oracle (closed form) and of the
    model (fair ensemble estimate). Notebook 07 §2.6.
    """
    from ..bridges.vsdm_forecast import ForecastModel, forecast

    if not callable(getattr(process, "predictive", None)):
        raise TypeError(f"process must have .predictive(history, horizon) (a LinearGaussianSSM), got {type(process).__name__}")
    if not isinstance(models, dict) or not models or not all(isinstance(m, ForecastModel) for m in models.values()):
        raise TypeError("models must be a non-empty dict name → ForecastModel")
    H = {m.horizon for m in models.values()}
    if len(H) != 1:
        raise ValueError(f"models must share one horizon, got {sorted(H)}")
    H = H.pop()
    t_model = max(m.history for m in models.values())
    y = _check_series(series, "series", d=process.d_obs, min_length=t_model + H)
    n, T_all = y.shape[0], y.shape[1] - H
    hist, truth = y[:, :T_all], y[:, T_all:]
    n_samples, nfe = check_int(n_samples, "n_samples", minimum=2), check_int(nfe, "nfe", minimum=2)
    P = process.period

    w_model = widgets.Dropdown(options=list(models), description="model")
    w_series = slider(0, 0, n - 1, "series")
    w_hist = slider(max(1, min(history, T_all)), 1, T_all, "history")
    w_h = slider(max(1, min(horizon, H)), 1, H, "horizon")
    box, info, out = panel({"model": w_model, "series": w_series, "history": w_hist, "horizon": w_h},
                           [("model", "series"), ("history", "horizon")], height="330px")
    ensembles: dict = {}

    def update(_=None):
        name, i, T, h = w_model.value, w_series.value, w_hist.value, w_h.value
        if (name, i) not in ensembles:
            ensembles[name, i] = forecast(models[name], hist[i:i + 1], n_samples, nfe=nfe, seed=seed)[0]
        ens = ensembles[name, i][:, :h]                                   # (m, h, d)
        mean, cov = process.predictive(hist[i:i + 1, T_all - T:], h)
        sd = cov[0].diagonal().sqrt().reshape(h, -1)
        mean = mean[0]
        c_oracle = float(crps_gaussian(mean, sd, truth[i, :h]).mean())
        c_model = float(crps_ensemble(ens[None], truth[i:i + 1, :h]).mean())
        box.state = {"model": name, "series": i, "history": T, "horizon": h, "oracle_mean": mean,
                     "oracle_sd": sd, "ensemble": ens, "crps_oracle": c_oracle, "crps_model": c_model}
        info.value = (f"series {i}: the Kalman filter sees {T} steps, {name} its own {models[name].history}; "
                      f"CRPS over {h} steps: oracle {c_oracle:.3f}, {name} {c_model:.3f}; oracle 1-step sd "
                      f"{float(sd[0].mean()):.3f}")
        d = y.shape[2]
        fig, axes = new_axes(d, size=(3.9, 2.9))
        axes = [axes] if d == 1 else axes
        show_from = max(0, T_all - max(T, 2 * P))
        tt_hist = torch.arange(show_from, T_all)
        tt_fut = torch.arange(T_all, T_all + h)
        lo, hi = torch.quantile(ens, 0.05, dim=0), torch.quantile(ens, 0.95, dim=0)
        for j, ax in enumerate(axes):
            ax.plot(tt_hist, hist[i, show_from:, j], color="0.5", lw=1, label="history")
            ax.axvspan(T_all - T - 0.5, T_all - 0.5, color="0.9", zorder=0, label="seen by the Kalman filter")
            ax.fill_between(tt_fut, mean[:, j] - 1.645 * sd[:, j], mean[:, j] + 1.645 * sd[:, j], color="C2",
                            alpha=0.3, label="oracle 90 %")
            ax.plot(tt_fut, mean[:, j], color="C2", lw=1.5)
            ax.fill_between(tt_fut, lo[:, j], hi[:, j], color="C0", alpha=0.25, label=f"{name} 90 %")
            ax.plot(tt_fut, ens[:, :, j].median(0).values, color="C0", lw=1.2, ls="--")
            ax.plot(tt_fut, truth[i, :h, j], "k.", ms=5, label="truth")
            ax.set_xlim(show_from, T_all + H)
            ax.set_xlabel("time step")
            ax.set_title(f"coordinate {j}", fontsize=9)
        axes[0].legend(fontsize=6, loc="upper left")
        show(box, out, fig)

    return connect(box, update)
