"""Benchmark: forecasting with a known answer — the oracle against seasonal naive and a fitted VAR.

For the linear-Gaussian state-space model (oracle: the exact Kalman predictive, CRPS in closed form)
and the nonlinear seasonal autoregression (oracle: exact conditional simulation), on 3 seeds (each
seed: new model parameters, new series), prints per forecaster the CRPS (per element, averaged over
series, horizon and coordinates; mean ± sd over the seeds), the energy score of the whole flattened
future, and both as ratios to the oracle. The row "Gaussian fit to the oracle" replaces each oracle
ensemble by the Gaussian with its mean and covariance: it measures what non-Gaussianity costs
(≈ 1 for the linear process, by construction). Ensembles: 200 members, fair estimators.

    python bench/forecast_baselines.py            # 500 series, history 48, horizon 12
    python bench/forecast_baselines.py --quick    # 150 series
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from lsbcore.forecast import (LinearGaussianSSM, NonlinearSSM, crps_ensemble, crps_gaussian, energy_score, fit_var,
                              seasonal_naive)


def gaussian_fit(ens: torch.Tensor, seed: int) -> torch.Tensor:
    """Replace each series' ensemble (n, m, H, d) by draws of the Gaussian with its mean and covariance."""
    n, m = ens.shape[:2]
    flat = ens.reshape(n, m, -1)
    mu = flat.mean(1, keepdim=True)
    cov = (flat - mu).transpose(1, 2) @ (flat - mu) / (m - 1)
    L = torch.linalg.cholesky(cov + 1e-9 * torch.eye(flat.shape[-1], dtype=ens.dtype))
    z = torch.randn(flat.shape, generator=torch.Generator().manual_seed(seed), dtype=ens.dtype)
    return (mu + z @ L.transpose(1, 2)).reshape(ens.shape)


def one_seed(kind: str, seed: int, n: int, T: int, H: int, P: int, m: int) -> dict:
    model = LinearGaussianSSM(3, P, 2, seed=seed) if kind == "linear" else NonlinearSSM(3, P, seed=seed)
    y = model.simulate(n, T + H, seed=100 + seed)
    hist, fut = y[:, :T], y[:, T:]
    if kind == "linear":
        ens = model.sample_future(hist, H, m, seed=1)
        mean, cov = model.predictive(hist, H)
        oracle_crps = float(crps_gaussian(mean, cov[0].diagonal().sqrt().reshape(H, -1), fut).mean())
    else:
        ens = model.reference_future(hist, H, m, seed=1)
        oracle_crps = float(crps_ensemble(ens, fut).mean())
    var = fit_var(model.simulate(200, 120, seed=200 + seed), P + 1)
    out = {"oracle": (oracle_crps, float(energy_score(ens, fut).mean()))}
    rows = {"Gaussian fit to the oracle": gaussian_fit(ens, seed=4),
            "seasonal naive": seasonal_naive(hist, H, P, m, seed=2).samples,
            f"VAR({P + 1}) fitted": var.forecast(hist, H, m, seed=3).samples}
    for name, s in rows.items():
        out[name] = (float(crps_ensemble(s, fut).mean()), float(energy_score(s, fut).mean()))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="150 series instead of 500")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    n, T, H, P, m = (150 if args.quick else 500), 48, 12, 12, 200
    t0 = time.perf_counter()
    for kind in ("linear", "nonlinear"):
        runs = [one_seed(kind, s, n, T, H, P, m) for s in range(3)]
        print(f"\n{kind} process: d_obs = 3, period {P}, {n} series, history {T}, horizon {H}, "
              f"ensembles of {m}, seeds 0-2")
        print(f"{'forecaster':<28}{'CRPS (mean ± sd)':>20}{'ratio':>8}{'energy score':>20}{'ratio':>8}")
        for name in runs[0]:
            crps = [r[name][0] for r in runs]
            es = [r[name][1] for r in runs]
            rc = statistics.mean(r[name][0] / r["oracle"][0] for r in runs)
            re = statistics.mean(r[name][1] / r["oracle"][1] for r in runs)
            print(f"{name:<28}{statistics.mean(crps):>11.4f} ± {statistics.stdev(crps):.4f}{rc:>8.3f}"
                  f"{statistics.mean(es):>11.4f} ± {statistics.stdev(es):.4f}{re:>8.3f}")
    print(f"\n({time.perf_counter() - t0:.1f} s)")


if __name__ == "__main__":
    main()
