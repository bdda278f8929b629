"""VSDM against the VP-SDE on the paper's anisotropic 2-D shapes, and the Gaussian consistency check.

Every model is trained by ``lsbcore.bridges.vsdm_shapes.train`` with one recipe (``RECIPE``: a
width-128 TimeMLP, 20,000 Adam steps of batch 256, lr 2e-3 cosine, EMA 0.999, same seed): VP-SDE at
β_max = 10 and 20, VSDM at β_max = 10 with a constant A and with a piecewise-constant A_t (4 pieces);
VSDM's A moves by stochastic approximation with a decreasing step size (ζ = 0.85), then freezes for
the last 5,000 network steps. Each model is scored at PF-ODE (Heun) NFE 6, 8, 16, 50 by W2 to fresh
target points (the noise floor beside it: W2 between two target samples of the same size), and its
ODE paths by their straightness (absolute, and relative to the mean squared chord).

The Gaussian check trains VSDM on N([−8, 2], [[1, 1], [1, 5]]) at constant β = 4 (ζ = 1) and replays
A's history: the distance (RMS over t of the Bures–W2 between marginals) from the learned forward
process to the closed-form Schrödinger bridge (OU reference) between the data and the model's prior.

    python bench/vsdm.py                 # 3 seeds, full recipe, 2 worker processes (≈ 25 min here)
    python bench/vsdm.py --quick         # 1 seed, 3,000 steps (≈ 3 min): a smoke run, targets not meaningful
    python bench/vsdm.py --ship data     # also train the ζ ablation and write notebook 06's files to data/

Targets ([PASS]/[FAIL] lines): VSDM-10's W2 at NFE 50 ≤ 1.5 × the noise floor on both shapes (every
seed); the Gaussian check's distance at the end of training below its value at A = 0 (every seed).
"""
from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import statistics
import time
from pathlib import Path

import torch

NFES = (6, 8, 16, 50)
SHAPES = ("spiral", "checkerboard")
QUICK = dict(steps=3000, warmup=300, freeze=750)


def _job(args):
    shape, model, seed, quick, ship_name, ship_dir = args
    torch.set_num_threads(1)
    from lsbcore.bridges import vsdm_shapes as V
    from lsbcore.bridges.vsdm_eval import distance_history, evaluate

    over = dict(QUICK) if quick else {}
    if ship_name is not None:
        over.update(V.SHIPPED_VSDM[ship_name][2])
    res = V.train(shape, model, seed, progress=False, **over)
    if ship_name is not None:
        V.save(res, Path(ship_dir) / ship_name, digest=False)
    row = {"shape": shape, "model": model, "seed": seed, "seconds": res.seconds,
           "zeta": res.config.get("zeta"), "A": res.A_history[-1].tolist()}
    if shape == "gaussian":
        idx, dist = distance_history(res.bridge.forward, res.A_history, V.GAUSS_MEAN, V.GAUSS_COV,
                                     every=max(1, len(res.A_history) // 20))
        row.update(steps=idx, distance=dist)
        return row
    target = V.SHAPES[shape](2000, 1000 + seed)
    ev = evaluate(res.bridge, target, nfes=NFES, n=1000, seed=seed)
    row["eval"] = {str(k): v for k, v in ev.items()}
    H = torch.stack(res.A_history)
    k = int(0.8 * (len(H) - 1))
    row["late_change"] = float((H[-1] - H[k]).norm() / H[-1].norm().clamp(min=1e-12)) if len(H) > 1 else 0.0
    return row


def _fmt(v, spread=None, w=6, p=2):
    return f"{v:{w}.{p}f}" if spread is None else f"{v:{w}.{p}f}±{spread:.{p}f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="1 seed, 3,000 steps: a smoke run")
    ap.add_argument("--seeds", type=int, default=3, help="seeds per (shape, model) (default 3)")
    ap.add_argument("--workers", type=int, default=2, help="worker processes, one thread each (default 2)")
    ap.add_argument("--ship", metavar="DIR", default=None,
                    help="write notebook 06's models (seed 0) and vsdm_bench.json to DIR, then its manifest")
    args = ap.parse_args()
    from lsbcore.bridges import vsdm_shapes as V

    seeds = range(1 if args.quick else args.seeds)
    ship = {(s, m, tuple(sorted(o.items()))): n for n, (s, m, o) in V.SHIPPED_VSDM.items()}
    jobs = []
    for seed in seeds:
        jobs.append(("gaussian", "VSDM", seed, args.quick, ship.get(("gaussian", "VSDM", ())) if args.ship and seed == 0
                     else None, args.ship))
        for shape in SHAPES:
            for model in V.MODELS:
                name = ship.get((shape, model, ())) if args.ship and seed == 0 else None
                jobs.append((shape, model, seed, args.quick, name, args.ship))
    if args.ship:
        jobs += [(s, m, 0, args.quick, n, args.ship) for n, (s, m, o) in V.SHIPPED_VSDM.items() if o]
    print(f"VSDM bench: {len(jobs)} trainings on {args.workers} workers; recipe "
          f"{dict(V.RECIPE, **(QUICK if args.quick else {}))}", flush=True)
    tic = time.perf_counter()
    with mp.get_context("spawn").Pool(args.workers) as pool:
        rows = []
        for row in pool.imap_unordered(_job, jobs):
            rows.append(row)
            print(f"  done {row['shape']:12s} {row['model']:11s} seed {row['seed']} zeta {row['zeta']} "
                  f"({row['seconds']:.0f} s)", flush=True)
    wall = time.perf_counter() - tic
    main_rows = [r for r in rows if r["shape"] != "gaussian" and not (r["model"].startswith("VSDM") and r["zeta"] != 0.85)]
    head = (f"{'shape':12s} {'model':11s} {'seed':>4s} {'train s':>7s} " + " ".join(f"{'W2@' + str(k):>6s}" for k in NFES)
            + f" {'floor':>6s} {'@50/fl':>6s} " + " ".join(f"{'str@' + str(k):>7s}" for k in NFES)
            + " " + " ".join(f"{'rel@' + str(k):>6s}" for k in NFES))
    print("\n" + head + "\n" + "-" * len(head))
    for r in sorted(main_rows, key=lambda r: (r["shape"], r["model"], r["seed"])):
        e = r["eval"]
        print(f"{r['shape']:12s} {r['model']:11s} {r['seed']:4d} {r['seconds']:7.0f} "
              + " ".join(_fmt(e[str(k)]["w2"]) for k in NFES) + f" {_fmt(e['50']['floor'])} "
              + f"{_fmt(e['50']['w2'] / e['50']['floor'])} "
              + " ".join(_fmt(e[str(k)]["straightness"], w=7, p=1) for k in NFES) + " "
              + " ".join(_fmt(e[str(k)]["rel_straightness"], p=3) for k in NFES))
    print("\nmean ± std over seeds")
    summary = {}
    for shape in SHAPES:
        for model in V.MODELS:
            rs = [r for r in main_rows if r["shape"] == shape and r["model"] == model]
            if not rs:
                continue
            cols = {}
            for k in NFES:
                v = [r["eval"][str(k)]["w2"] for r in rs]
                cols[k] = (statistics.mean(v), statistics.stdev(v) if len(v) > 1 else 0.0)
            fl = statistics.mean(r["eval"]["50"]["floor"] for r in rs)
            rel = statistics.mean(r["eval"]["50"]["rel_straightness"] for r in rs)
            summary[shape, model] = (cols, fl, rs)
            print(f"{shape:12s} {model:11s} " + " ".join(_fmt(*cols[k], w=5) for k in NFES)
                  + f"  floor {fl:.2f}  W2@50/floor {cols[50][0] / fl:.2f}  rel@50 {rel:.3f}")
    abl = [r for r in rows if r["shape"] == "spiral" and r["model"] == "VSDM-10" and r["seed"] == 0]
    if len(abl) > 1:
        print("\nzeta ablation (spiral, VSDM-10, seed 0)")
        for r in sorted(abl, key=lambda r: r["zeta"]):
            print(f"  zeta {r['zeta']:.2f}: " + " ".join(f"W2@{k} {r['eval'][str(k)]['w2']:.2f}" for k in NFES)
                  + f"  A = {[[round(a, 3) for a in row] for row in r['A']]}")
    print("\nGaussian check: distance to the Gaussian SB (OU reference, data → model prior) along A's history")
    gs = sorted((r for r in rows if r["shape"] == "gaussian"), key=lambda r: r["seed"])
    for r in gs:
        d = r["distance"]
        print(f"  seed {r['seed']}: at A = 0 {d[0]:.3f}, min {min(d):.3f} (A-step {r['steps'][d.index(min(d))]}),"
              f" final {d[-1]:.3f}; final A = {[[round(a, 3) for a in row] for row in r['A']]}")
    print(f"\ntotal wall {wall:.0f} s")
    ok50 = all(r["eval"]["50"]["w2"] <= 1.5 * r["eval"]["50"]["floor"]
               for shape in SHAPES for r in summary.get((shape, "VSDM-10"), (None, None, []))[2])
    worst = max((r["eval"]["50"]["w2"] / r["eval"]["50"]["floor"]
                 for shape in SHAPES for r in summary.get((shape, "VSDM-10"), (None, None, []))[2]), default=math.nan)
    print(f"[{'PASS' if ok50 else 'FAIL'}] VSDM-10 W2@50 <= 1.5 x noise floor on both shapes, every seed "
          f"(worst {worst:.2f}x)")
    shrink = bool(gs) and all(r["distance"][-1] < r["distance"][0] for r in gs)
    print(f"[{'PASS' if shrink else 'FAIL'}] Gaussian check: distance to the Gaussian SB shrinks as A trains "
          f"(final < at A = 0, every seed: {[round(r['distance'][-1] / r['distance'][0], 2) for r in gs]} x)")
    if args.ship:
        from lsbcore.shipped import write_manifest

        out = Path(args.ship)
        (out / "vsdm_bench.json").write_text(json.dumps({"command": "python bench/vsdm.py --ship data",
                                                          "wall_s": wall, "rows": rows}, indent=1) + "\n")
        write_manifest(out)
        print(f"wrote {out}/vsdm_bench.json and {out}/MANIFEST.json")


if __name__ == "__main__":
    main()
