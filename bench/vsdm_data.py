"""VSDM beyond 2-D (issue 13): the 8×8 digits with a diagonal A, and conditional forecasting.

Part 1 — digits (:mod:`lsbcore.vsdm_digits`). VSDM with A = diag(s) learned by stochastic approximation
against the VP-SDE (s = 0), the same TimeMLP (width 256, depth 3), 3000 Adam steps, batch 256 and seed
(``DIGITS_RECIPE``), in pixel space (64-D, pixels mapped to [−1, 1]) and in the 8-D latent space of the
shipped autoencoder (pre-trained without shift). Samples by the probability-flow ODE (Heun) at NFE
6, 8, 16, 50; scores against the 397 held-out digits: Fréchet digits distance (FDD, shipped
classifier), total variation between class histograms, memorisation ratio (< 1: closer to training
digits than held-out digits are). FDD floors: 700 training digits vs the test split (the scored sample
sizes) and two halves of the test split.

Part 2 — conditional forecasting with a known answer (:mod:`lsbcore.forecast`,
:mod:`lsbcore.bridges.vsdm_forecast`). A seasonal linear-Gaussian state-space process (d_obs = 3, period
12), whose exact forecast law the Kalman filter gives, and a nonlinear heavy-tailed variant (exact
conditional simulation). A conditional VSDM — the score network sees the last 12 observations and the
history's seasonal profile; the forward process acts on the 36-D future window — and the VP-SDE with the
same network and budget (``FORECAST_BUDGET``), against the oracle (its CRPS is the floor), seasonal naive
and a Gaussian VAR(13) fitted on the same training windows; fair CRPS (per element, averaged) and energy
score on 500 test series, 200 members, 3 seeds.

[PASS]/[FAIL] lines (the verdict is information, not a reason to change the setup):
  * VSDM's CRPS within 1.25 × the oracle's on the linear-Gaussian process (mean over seeds);
  * VSDM's FDD at NFE 8 not worse than VP's in pixel space (mean over seeds).

    python bench/vsdm_data.py                 # 3 seeds, both parts (≤ 20 min on 2 cores)
    python bench/vsdm_data.py --quick         # 1 seed, a tenth of the steps
    python bench/vsdm_data.py --parts digits  # one part
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch


def _ms(values, digits: int = 2) -> str:
    """mean±sd of ``values`` with ``digits`` decimals (sd 0 for one value)."""
    values = list(values)
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.{digits}f}±{sd:.{digits}f}"


def digits_part(seeds, quick: bool) -> tuple[list, bool]:
    from lsbcore.shipped import shipped_classifier
    from lsbcore.vsdm_digits import DIGITS_RECIPE, NFES, fdd_floors, run

    steps = DIGITS_RECIPE["steps"] // (10 if quick else 1)
    rows = []
    for seed in seeds:
        for space in ("pixel", "latent"):
            for model in ("VP", "VSDM"):
                row = run(seed, space, model, steps=steps)
                rows.append(row)
                print(f"  digits: {space} {model} seed {seed} ({row['total_s']:.0f} s, "
                      f"FDD@8 {row['eval'][8]['fdd']:.2f})", flush=True)
    floors = fdd_floors(shipped_classifier())
    print(f"\nDigits: {steps} Adam steps, PF-ODE (Heun), 700 samples per model and NFE, seeds {list(seeds)}; "
          f"FDD floors: 700 training vs 397 test digits {floors['train']:.2f}, test halves {floors['halves']:.2f}")
    head = (f"{'space':<7}{'model':<6}" + "".join(f"{'FDD@' + str(k):>13}" for k in NFES)
            + f"{'TV@8':>7}{'memo@8':>8}{'mean s':>8}{'train s':>9}")
    print(head)
    print("-" * len(head))
    means = {}
    for space in ("pixel", "latent"):
        for model in ("VP", "VSDM"):
            rs = [r for r in rows if r["space"] == space and r["model"] == model]
            means[(space, model)] = statistics.mean(r["eval"][8]["fdd"] for r in rs)
            print(f"{space:<7}{model:<6}" + "".join(f"{_ms(r['eval'][k]['fdd'] for r in rs):>13}" for k in NFES)
                  + f"{statistics.mean(r['eval'][8]['tv_classes'] for r in rs):>7.3f}"
                  + f"{statistics.mean(r['eval'][8]['memorisation'] for r in rs):>8.2f}"
                  + f"{statistics.mean(statistics.mean(r['s']) for r in rs):>8.3f}"
                  + f"{statistics.mean(r['train_s'] for r in rs):>9.1f}")
    ok = means[("pixel", "VSDM")] <= means[("pixel", "VP")]
    print(f"[{'PASS' if ok else 'FAIL'}] VSDM's FDD at NFE 8 not worse than VP's in pixel space: "
          f"{means[('pixel', 'VSDM')]:.2f} vs {means[('pixel', 'VP')]:.2f} (mean over seeds)")
    return rows, ok


#: the forecasting budget per model (both VSDM and the VP-SDE): a width-128, depth-3 ConditionalScoreNet,
#: 2000 Adam steps of batch 256 on 20,000 simulated windows (history 48, horizon 12), lr 2e-3 cosine;
#: VSDM also updates A every 25 steps (40 updates)
FORECAST_BUDGET = dict(history=48, horizon=12, n_train_series=20_000, steps=2000, batch_size=256, lr=2e-3,
                       width=128, depth=3, a_every=25)


class _Cached:
    """The process with ``simulate`` memoised: both models and the VAR train on the same windows."""

    def __init__(self, process):
        self.process, self.memo = process, {}

    def simulate(self, n_series, length, seed=0):
        key = (n_series, length, seed)
        if key not in self.memo:
            self.memo[key] = self.process.simulate(n_series, length, seed=seed)
        return self.memo[key]

    def __getattr__(self, name):
        return getattr(self.process, name)


def forecast_part(seeds, quick: bool) -> tuple[list, bool]:
    """Conditional VSDM and the VP-SDE (same network and budget) against the exact forecast law (the
    oracle: Kalman predictive / exact conditional simulation), seasonal naive and a VAR(13) fitted on the
    same windows; 500 test series, 200 members, PF-ODE (Heun) at NFE 20; CRPS and energy score."""
    from lsbcore.bridges.vsdm_forecast import evaluate, fit_forecaster
    from lsbcore.forecast import LinearGaussianSSM, NonlinearSSM

    budget = dict(FORECAST_BUDGET, steps=FORECAST_BUDGET["steps"] // (10 if quick else 1))
    rows, ok = [], True
    for kind in ("linear", "nonlinear"):
        runs = []
        for seed in seeds:
            base = LinearGaussianSSM(3, 12, 2, seed=seed) if kind == "linear" else NonlinearSSM(3, 12, seed=seed)
            proc = _Cached(base)
            models = {name: fit_forecaster(proc, adaptive=adaptive, seed=seed, progress=False, **budget)
                      for name, adaptive in (("VSDM", True), ("VP-SDE", False))}
            res = evaluate(proc, models, n_series=500, n_samples=200, nfe=20, method="ode", seed=seed)
            row = {"kind": kind, "seed": seed, "train_s": {k: m.seconds for k, m in models.items()},
                   "s": models["VSDM"].bridge.forward.s.tolist(),
                   "scores": {k: (float(v.crps.mean()), float(v.energy.mean())) for k, v in res.items()}}
            runs.append(row)
            print(f"  forecast: {kind} seed {seed} (VSDM CRPS {row['scores']['VSDM'][0]:.4f}, "
                  f"oracle {row['scores']['oracle'][0]:.4f})", flush=True)
        rows += runs
        print(f"\nForecasting, {kind} process: d_obs 3, period 12, history 48, horizon 12, 500 test series, "
              f"200 members, ODE NFE 20, {budget['steps']} Adam steps, seeds {list(seeds)}")
        print(f"{'forecaster':<16}{'CRPS':>16}{'/oracle':>9}{'energy score':>16}{'/oracle':>9}{'train s':>9}")
        for name in runs[0]["scores"]:
            c = [r["scores"][name][0] for r in runs]
            e = [r["scores"][name][1] for r in runs]
            rc = statistics.mean(r["scores"][name][0] / r["scores"]["oracle"][0] for r in runs)
            re = statistics.mean(r["scores"][name][1] / r["scores"]["oracle"][1] for r in runs)
            tr = statistics.mean(r["train_s"][name] for r in runs) if name in runs[0]["train_s"] else None
            print(f"{name:<16}{_ms(c, 4):>16}{rc:>9.3f}{_ms(e, 4):>16}{re:>9.3f}" + (f"{tr:>9.1f}" if tr else ""))
        if kind == "linear":
            ratio = statistics.mean(r["scores"]["VSDM"][0] / r["scores"]["oracle"][0] for r in runs)
            ok = ratio <= 1.25
            print(f"[{'PASS' if ok else 'FAIL'}] VSDM's CRPS within 1.25 × the oracle's on the linear-Gaussian "
                  f"process: {ratio:.3f} × (mean over seeds)")
    return rows, ok


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="one seed, a tenth of the steps")
    ap.add_argument("--seeds", type=int, default=None, help="seeds 0..N-1 (default 3; 1 with --quick)")
    ap.add_argument("--parts", default="digits,forecast")
    ap.add_argument("--out", default=None, help="write the rows as JSON to this file")
    ap.add_argument("--ship", metavar="DIR", default=None,
                    help="write DIR/vsdm_data_bench.json (both parts: the tables notebook 07 shows)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    seeds = range(args.seeds or (1 if args.quick else 3))
    tic = time.perf_counter()
    out = {}
    for part, fn in (("digits", digits_part), ("forecast", forecast_part)):
        if part in args.parts.split(","):
            out[part], _ = fn(seeds, args.quick)
    print(f"\ntotal wall {time.perf_counter() - tic:.0f} s")
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=1, default=str) + "\n")
    if args.ship:
        from lsbcore.shipped import shipped_classifier
        from lsbcore.vsdm_digits import fdd_floors

        table = {"command": f"python bench/vsdm_data.py --ship {args.ship}", **out,
                 "digits_floors": fdd_floors(shipped_classifier())}
        path = Path(args.ship) / "vsdm_data_bench.json"
        path.write_text(json.dumps(table, indent=1, default=str) + "\n")
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
