"""Latent against ambient learned bridges on data with a known manifold: the rate sweep of issue 11.

Data: ``lsbcore.manifold.ManifoldData(D, d*)``: z from a 4-component Gaussian mixture in d* dimensions,
x = Q[z, h(z)] in R^D (a rotated d*-surface bent into all D − d* other directions), D ∈ {16, 64, 256},
d* ∈ {2, 4}.
Estimator (both spaces, the same budget, ``lsbcore.rates.Budget``): the Schrödinger–Föllmer bridge
δ0 → p̂_n with its drift learned by least squares (TimeMLP width 128, depth 3, 1500 Adam steps of
batch 256, lr 2e-3 cosine, σ = 1, early stop δ = 0.01, 100 Euler–Maruyama steps). Latent: an MLP
autoencoder with latent d* pre-trained on M = 20,000 points of a shifted law (shift 0.3); ambient:
the D coordinates centred and rescaled to the codes' total variance d* (``AmbientSpace``, scale
"manifold"); oracle: the true intrinsic coordinates (a perfect autoencoder; at the smallest D only).
n ∈ {64, …, 65536} (4^k), seeds 0, 1, 2.
Errors read back in the known coordinates (``lsbcore.rates.evaluate``): sliced W2 (10,000 points,
the headline), exact W2 (2,000 points), mean distance off the manifold, memorisation ratio.

Also: the pre-training term (M × shift at D = 64, d* = 2, n = 4096), early stopping (δ sweep), the
decoder's Lipschitz constant (column ``lip``), and two checks of the set-up at D ∈ {16, 256}, d* = 2,
n ∈ {1024, 16384}: the ambient bridge with the pixel convention (``scale``: average coordinate variance
1) and the family whose surface lies in a 2d*-dimensional linear subspace (``span``: ``span="low"``).
Everything goes into one CSV (column ``experiment``: ``rate``, ``scale``, ``span``, ``floor``,
``pretrain``, ``stop``).

    python bench/latent_rates.py                 # full sweep, 2 worker processes (~25 min on 2 cores)
    python bench/latent_rates.py --quick         # D ∈ {16, 256}, d* = 2, n ∈ {256, 4096}, 2 seeds, short budget
    python bench/latent_rates.py --ship data     # also write data/latent_rates.csv (notebook 04)

Prints the table (space, D, d*, slope with 95 % CI, error at n = 4096, memorisation ratio) and
[PASS]/[FAIL] lines for the claim (``lsbcore.rates.verdict``): information, not a target to tune for.
Figures go to ``--out`` (default ``bench/out``).
"""
from __future__ import annotations

import argparse
import csv
import os
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402

from lsbcore import rates  # noqa: E402
from lsbcore.manifold import ManifoldData  # noqa: E402

COLUMNS = ["experiment", "space", "D", "d", "n", "seed", "M", "shift", "t_gap", "sw2", "w2", "off", "memo",
           "recon", "lip", "train_s"]


def write_csv(path: Path, rows: list, header: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        f.write(f"# {header}\n")
        w = csv.DictWriter(f, fieldnames=COLUMNS, restval="", extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})


def figures(rows: list, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    rate = [r for r in rows if r["experiment"] == "rate"]
    dims = sorted({r["d"] for r in rate})
    fig, axes = plt.subplots(1, len(dims), figsize=(5.5 * len(dims), 4.2), constrained_layout=True, squeeze=False)
    for ax, d in zip(axes[0], dims):
        for k, D in enumerate(sorted({r["D"] for r in rate if r["d"] == d})):
            for space, ls in (("latent", "-"), ("ambient", "--")):
                ns, _, err = rates.metric_curves(rate, space, D, d, "sw2")
                ax.fill_between(ns, err.min(0), err.max(0), color=f"C{k}", alpha=0.15)
                ax.plot(ns, err.mean(0), ls, marker="o", ms=3, color=f"C{k}", label=f"{space}, D={D}")
        if any(r["space"] == "oracle" and r["d"] == d for r in rate):
            D0 = min(r["D"] for r in rate if r["space"] == "oracle" and r["d"] == d)
            ns, _, err = rates.metric_curves(rate, "oracle", D0, d, "sw2")
            ax.fill_between(ns, err.min(0), err.max(0), color="k", alpha=0.1)
            ax.plot(ns, err.mean(0), "-.", marker="o", ms=3, color="k", label="oracle (true coordinates)")
        fl = [r["sw2"] for r in rows if r["experiment"] == "floor" and r["d"] == d]
        ax.axhline(np.mean(fl), color="k", ls=":", label="noise floor (exact samples)")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("n (training samples)")
        ax.set_ylabel("sliced W2 in intrinsic coordinates")
        ax.set_title(f"d* = {d}: latent (solid), ambient (dashed), oracle (dash-dot)")
        ax.legend(fontsize=7)
    fig.savefig(out / "latent_rates.png", dpi=110)
    plt.close(fig)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="a small slice with a short budget (smoke run)")
    ap.add_argument("--jobs", type=int, default=2, help="worker processes (one torch thread each)")
    ap.add_argument("--seeds", type=int, default=None, help="seeds 0..N-1 (default 3; 2 with --quick)")
    ap.add_argument("--out", default="bench/out", help="folder for the CSV and the figures")
    ap.add_argument("--ship", metavar="DIR", default=None, help="also write DIR/latent_rates.csv (notebook 04)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    tic = time.perf_counter()
    if args.quick:
        budget = replace(rates.Budget(), steps=400, ae_steps=600, pretrain_size=5000)
        Ds, dims, ns, n_ref = [16, 256], [2], [256, 4096], 4096
        ns_scale = [256, 4096]
        sizes, shifts, gaps = [1024, 16384], [0.0, 1.0], [0.1, 0.01]
    else:
        budget = rates.Budget()
        Ds, dims, ns, n_ref = [16, 64, 256], [2, 4], [64, 256, 1024, 4096, 16384, 65536], 4096
        ns_scale = [1024, 16384]
        sizes, shifts, gaps = [256, 1024, 4096, 20000], [0.0, 0.5, 2.0], [0.3, 0.1, 0.03, 0.01, 0.003, 0.001]
    seeds = list(range(args.seeds or (2 if args.quick else 3)))
    print(f"budget (both spaces): {rates.budget_dict(budget)}")
    print(f"D ∈ {Ds}, d* ∈ {dims}, n ∈ {ns}, seeds {seeds}, {args.jobs} worker process(es), one thread each", flush=True)

    rows = [dict(experiment="rate", **r) for r in
            rates.rate_sweep(Ds, dims, ns, seeds, budget, jobs=args.jobs, log=lambda s: print(s, flush=True))]
    t_rate = time.perf_counter() - tic
    # the other convention for the ambient scale (average coordinate variance 1, as for pixels)
    rows += [dict(experiment="scale", **r) for r in
             rates.rate_sweep([Ds[0], Ds[-1]], [2], ns_scale, seeds, budget, spaces=("ambient",),
                              ambient_scale="coordinate", jobs=args.jobs)]
    # the other family: a surface bent into d* directions only (inside a 2d*-dimensional linear subspace)
    rows += [dict(experiment="span", **r) for r in
             rates.rate_sweep([Ds[0], Ds[-1]], [2], ns_scale, seeds, budget, spaces=("latent", "ambient"),
                              span="low", jobs=args.jobs)]
    for d in dims:
        for D in Ds:
            rows.append(dict(experiment="floor", space="population", D=D, d=d,
                             **rates.noise_floors(ManifoldData(D, d), seeds=seeds)))
    data = ManifoldData(64 if not args.quick else 16, 2)
    for r in rates.pretrain_sweep(data, sizes, shifts, n=n_ref, budget=budget):
        rows.append(dict(experiment="pretrain", space="latent", D=data.ambient_dim, d=2, n=n_ref, seed=0, **r))
    for r in rates.stop_sweep(data, gaps, n=n_ref, budget=budget):
        rows.append(dict(experiment="stop", D=data.ambient_dim, d=2, n=n_ref, seed=0, **r))
    total = time.perf_counter() - tic

    out = Path(args.out)
    header = (f"python bench/latent_rates.py{' --quick' if args.quick else ''}; budget {rates.budget_dict(budget)}; "
              f"seeds {seeds}; {total:.0f} s")
    write_csv(out / "latent_rates.csv", rows, header)
    figures(rows, out)
    if args.ship:
        write_csv(Path(args.ship) / "latent_rates.csv", rows, header)

    rate = [r for r in rows if r["experiment"] == "rate"]
    print("\nnoise floors (exact population samples scored the same way):")
    for r in rows:
        if r["experiment"] == "floor":
            print(f"  D={r['D']:3d} d*={r['d']}: sliced W2 {r['sw2']:.4f}  W2(2000) {r['w2']:.4f}  "
                  f"off {r['off']:.2g}  memo {r['memo']:.3f}")
    print(f"\n{'space':8s} {'D':>4s} {'d*':>3s} {'slope':>7s} {'95% CI':>17s} {f'SW2@{n_ref}':>10s} {'± sd':>6s} "
          f"{'memo':>6s} {'off':>7s}")
    for s in rates.summarise(rate, n_ref=n_ref):
        print(f"{s['space']:8s} {s['D']:4d} {s['d']:3d} {s['slope']:7.3f} ({s['ci'][0]:6.3f}, {s['ci'][1]:6.3f}) "
              f"{s['err']:10.4f} {s['err_sd']:6.4f} {s['memo']:6.3f} {s['off']:7.4f}")
    lips = [r["lip"] for r in rate if r["space"] == "latent"]
    print(f"\ndecoder Lipschitz (largest Jacobian spectral norm at the codes): {min(lips):.2f} … {max(lips):.2f}")
    print("\npre-training term (latent, D={}, d*=2, n={}):".format(data.ambient_dim, n_ref))
    for r in rows:
        if r["experiment"] == "pretrain":
            print(f"  M={r['M']:6d} shift={r['shift']:.1f}: recon {r['recon']:.4f}  SW2 {r['sw2']:.4f}  "
                  f"off {r['off']:.4f}  Lip {r['lip']:.2f}")
    print("ambient with the pixel convention (average coordinate variance 1) instead of the manifold's size:")
    for s in rates.summarise([r for r in rows if r["experiment"] == "scale"], n_ref=ns_scale[-1]):
        print(f"  D={s['D']:3d} d*={s['d']}: SW2@{ns_scale[-1]} {s['err']:.4f} ± {s['err_sd']:.4f}  off {s['off']:.4f}  "
              f"memo {s['memo']:.3f}")
    print("the other family (span='low': the surface inside a 2d*-dimensional linear subspace):")
    for s in rates.summarise([r for r in rows if r["experiment"] == "span"], n_ref=ns_scale[-1]):
        print(f"  {s['space']:7s} D={s['D']:3d} d*={s['d']}: SW2@{ns_scale[-1]} {s['err']:.4f} ± {s['err_sd']:.4f}  "
              f"off {s['off']:.4f}  memo {s['memo']:.3f}")
    print("early stopping δ:")
    for r in rows:
        if r["experiment"] == "stop":
            print(f"  {r['space']:7s} δ={r['t_gap']:.3f}: SW2 {r['sw2']:.4f}  off {r['off']:.4f}")
    print()
    for metric in ("sw2", "off"):
        for ok, line in rates.verdict(rate, metric=metric, n_ref=n_ref):
            print(f"[{'PASS' if ok else 'FAIL'}] {line}")
    print(f"[{'PASS' if total <= 1800 else 'FAIL'}] whole sweep in {total / 60:.1f} min ≤ 30 min "
          f"(rate sweep {t_rate / 60:.1f} min; {args.jobs} processes)")
    print(f"CSV: {out / 'latent_rates.csv'}; figure: {out / 'latent_rates.png'}")


if __name__ == "__main__":
    main()
