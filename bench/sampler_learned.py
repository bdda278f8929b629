"""A learned Schrödinger–Föllmer sampler against the Monte-Carlo Föllmer drift at equal wall time.

Targets (unnormalised densities with a known normaliser, ``lsbcore.bridges.densities``):
  GMM 2-D      ``GaussianMixtureTarget``: weights (0.3, 0.3, 0.4), means (−2, 0), (2, 0), (0, 2.5),
               stds 0.5, 0.5, 0.6, times e² (log Z = 2).
  funnel d=3   ``NealsFunnel(3)``, scale 3 (log Z = (3/2) log 2π + log 3 ≈ 3.855).
  funnel d=5   ``NealsFunnel(5)``, scale 3 (log Z ≈ 5.693).
Reference dX = σ dW from 0 with σ = 1; every method runs n = 1000 paths of the Euler chain with
K = 20 steps and weighs them by the exact Girsanov weights of ``path_log_weights`` (so every log Z
below is consistent; a method differs only in the variance of its weights and in its samples).

Methods (one recipe for all targets, fixed before the runs):
  learned (log-var)   ``fit_follmer_sampler``: TimeMLP(width 64, depth 3, last layer zeroed), Adam lr
                      3e-3, ``--steps`` steps (600; 200 with --quick), batch 256, K = 20, grad_clip 10,
                      EMA 0.999, explore 0.25 (a quarter of the training paths follow the reference).
  learned (KL)        the same with loss="kl" (reparametrised, on-policy: explore 0).
  learned, on-policy  GMM only: log-variance with explore = 0 (the ablation for the exploration).
  MC, equal time      ``FollmerMC`` (gradient form) with n_mc Monte-Carlo draws per drift evaluation.
                      "Equal time": the MC sampler gets the learned (log-var) sampler's wall time for
                      the same target and seed (training + drawing the n paths) to draw its own n paths
                      with the same K: n_mc from a pilot at n_mc = 100 (time ∝ n_mc), corrected by a
                      second pilot at that n_mc over K/5 steps (time ∝ K), capped so that n · n_mc · d
                      ≤ 2e7 (memory); the wall column shows the time the MC run really took.
  u = 0               plain importance sampling from N(0, σ² I) through the same chain (no drift).

Columns, mean ± sd over seeds: wall s (learned: training + sampling), log Z error (estimate − truth),
ESS/n = (Σw)²/(nΣw²), W2 of the UNWEIGHTED end points X_1 to 1000 exact samples (POT ``ot.emd2`` via
``lsbcore.metrics.w2``), and for the funnel also W2 in whitened coordinates (v/3, x e^{−v/2}), which are
N(0, I) under the target: the raw W2 of the funnel is dominated by a few samples in its mouth. The
noise floor is W2 between two exact samples of 1000. ``[PASS]/[FAIL]`` lines state targets fixed in
advance; a FAIL is a result, not a bug.

Jobs (target, seed) run in 2 worker processes with 1 torch thread each; a learned run and the MC run
matched to it run in the same worker, one after the other. Full run ≈ 5–6 min on 2 cores shared with
other work (measured 276 s and 354 s); --quick (200 steps, 2 seeds) ≈ 2 min (measured 86 s and 113 s).

    python bench/sampler_learned.py            # 600 Adam steps, seeds 0, 1, 2
    python bench/sampler_learned.py --quick    # 200 steps, seeds 0, 1
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import time
from concurrent.futures import ProcessPoolExecutor

import torch

SIGMA, K, N, WIDTH, DEPTH, BATCH, LR, CLIP = 1.0, 20, 1000, 64, 3, 256, 3e-3, 10.0
MC_PILOT, MC_MAX_FLOATS = 100, 2e7
EVAL_SEED = 10_000
TARGETS = ("GMM 2-D", "funnel d=3", "funnel d=5")
METHODS = ("learned (log-var)", "learned (KL)", "learned, on-policy", "MC, equal time", "u = 0")


def make_target(name):
    from lsbcore.bridges.densities import GaussianMixtureTarget, NealsFunnel

    if name == "GMM 2-D":
        return GaussianMixtureTarget([0.3, 0.3, 0.4], [[-2.0, 0.0], [2.0, 0.0], [0.0, 2.5]], [0.5, 0.5, 0.6],
                                     log_z=2.0)
    return NealsFunnel(int(name[-1]), scale=3.0)


def whiten(x):
    """Funnel coordinates that are N(0, I) under the target: (v / 3, x e^{−v/2})."""
    return torch.cat([x[:, :1] / 3.0, x[:, 1:] * torch.exp(-0.5 * x[:, :1])], 1)


def metrics(name, target, est, seed) -> dict:
    from lsbcore.metrics import w2

    y = target.sample(N, seed=EVAL_SEED + seed)
    x = est.samples.double()
    out = dict(err=est.log_z - target.log_z, ess=est.ess, w2=w2(x, y))
    if name != "GMM 2-D":
        out["w2w"] = w2(whiten(x), whiten(y))
    return out


def floors(name, target, seed) -> dict:
    from lsbcore.metrics import w2

    y, y2 = target.sample(N, seed=EVAL_SEED + seed), target.sample(N, seed=2 * EVAL_SEED + seed)
    out = dict(w2=w2(y, y2))
    if name != "GMM 2-D":
        out["w2w"] = w2(whiten(y), whiten(y2))
    return out


def calibrate_mc(target, seed, budget: float) -> int:
    """n_mc such that FollmerMC's n paths of K steps take ``budget`` seconds: a pilot at n_mc = 100 (all K
    steps), then one at its prediction over K/5 steps (the cost per step does not depend on t; the cost
    in n_mc is not quite linear, memory), scaled once more; capped at n · n_mc · d ≤ 2e7 floats."""
    from lsbcore.bridges.follmer_learned import path_log_weights
    from lsbcore.bridges.follmer import FollmerMC

    cap = int(MC_MAX_FLOATS / (N * target.dim))
    n_mc, k = MC_PILOT, K
    for _ in range(2):
        tic = time.perf_counter()
        path_log_weights(FollmerMC(target, SIGMA, n_mc=n_mc, seed=seed, dim=target.dim), target, N, SIGMA, k,
                         seed=seed)
        per_run = (time.perf_counter() - tic) * K / k
        n_mc, k = max(2, min(cap, int(n_mc * budget / per_run))), max(1, K // 5)
    return n_mc


def run_job(args):
    name, seed, steps = args
    torch.set_num_threads(1)
    from lsbcore.bridges.follmer import FollmerMC
    from lsbcore.bridges.follmer_learned import LearnedFollmer, estimate_log_z, fit_follmer_sampler

    target = make_target(name)
    rows = {}
    common = dict(sigma=SIGMA, steps=steps, batch_size=BATCH, sim_steps=K, width=WIDTH, depth=DEPTH, lr=LR,
                  seed=seed, progress=False, grad_clip=CLIP)
    variants = [("learned (log-var)", dict(loss="log_variance")), ("learned (KL)", dict(loss="kl"))]
    if name == "GMM 2-D":
        variants.append(("learned, on-policy", dict(loss="log_variance", explore=0.0)))
    for method, kw in variants:
        tic = time.perf_counter()
        bridge = fit_follmer_sampler(target, **common, **kw)
        est = estimate_log_z(bridge, n=N, seed=EVAL_SEED + 100 + seed)
        rows[method] = dict(wall=time.perf_counter() - tic, **metrics(name, target, est, seed))
        if method == "learned (log-var)":      # the Monte-Carlo drift gets the same wall time
            n_mc = calibrate_mc(target, seed, rows[method]["wall"])
            tic = time.perf_counter()
            est = estimate_log_z(FollmerMC(target, SIGMA, n_mc=max(n_mc, 2), seed=seed, dim=target.dim), target,
                                 n=N, steps=K, seed=EVAL_SEED + 100 + seed)
            rows["MC, equal time"] = dict(wall=time.perf_counter() - tic, n_mc=n_mc,
                                          **metrics(name, target, est, seed))
    tic = time.perf_counter()
    zero = LearnedFollmer(lambda x, t: torch.zeros_like(x), SIGMA, dim=target.dim)
    est = estimate_log_z(zero, target, n=N, steps=K, seed=EVAL_SEED + 100 + seed)
    rows["u = 0"] = dict(wall=time.perf_counter() - tic, **metrics(name, target, est, seed))
    return name, seed, rows, floors(name, target, seed)


def ms(values, fmt="{:.3f}"):
    values = list(values)
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return (fmt + " ± " + fmt).format(statistics.mean(values), sd)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="200 Adam steps and 2 seeds")
    ap.add_argument("--steps", type=int, default=None, help="Adam steps of every learned sampler")
    ap.add_argument("--seeds", type=int, default=None, help="number of seeds (0, 1, ...)")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    steps = args.steps or (200 if args.quick else 600)
    seeds = list(range(args.seeds or (2 if args.quick else 3)))
    tic = time.perf_counter()
    jobs = [(name, s, steps) for name in TARGETS for s in seeds]
    with ProcessPoolExecutor(args.workers, mp_context=mp.get_context("spawn")) as pool:
        results = list(pool.map(run_job, jobs))
    wall = time.perf_counter() - tic

    print(f"\nσ = {SIGMA:g}, n = {N} paths, K = {K} Euler steps, seeds {seeds}; learned: TimeMLP({WIDTH}, {DEPTH}), "
          f"{steps} Adam steps, lr {LR:g}, batch {BATCH}, grad_clip {CLIP:g}, EMA 0.999, explore 0.25 (log-var)")
    print("log Z error = estimate − truth; W2 of the unweighted X_1 to exact samples (n = 1000); "
          "funnel: W2w in whitened coordinates; mean ± sd over seeds\n")
    head = (f"{'target':<11} {'method':<19} {'wall s':>12} {'log Z error':>17} {'ESS/n':>15} "
            f"{'W2':>17} {'W2w':>15}  notes")
    print(head)
    print("-" * len(head))
    table = {}
    for name in TARGETS:
        per = [r for r in results if r[0] == name]
        fl = [r[3] for r in per]
        for method in METHODS:
            rs = [r[2][method] for r in per if method in r[2]]
            if not rs:
                continue
            table[name, method] = rs
            w2w = ms(r["w2w"] for r in rs) if "w2w" in rs[0] else "–"
            note = f"n_mc {min(r['n_mc'] for r in rs)}–{max(r['n_mc'] for r in rs)}" if "n_mc" in rs[0] else ""
            print(f"{name:<11} {method:<19} {ms((r['wall'] for r in rs), '{:.1f}'):>12} {ms(r['err'] for r in rs):>17} "
                  f"{ms(r['ess'] for r in rs):>15} {ms(r['w2'] for r in rs):>17} {w2w:>15}  {note}")
        w2w = ms(f["w2w"] for f in fl) if "w2w" in fl[0] else "–"
        print(f"{name:<11} {'floor (exact)':<19} {'':>12} {'':>17} {'':>15} {ms(f['w2'] for f in fl):>17} {w2w:>15}")
    print()

    def verdict(ok, text):
        print(f"[{'PASS' if ok else 'FAIL'}] {text}")

    lv = table["GMM 2-D", "learned (log-var)"]
    worst = max(abs(r["err"]) for r in lv)
    verdict(worst <= 0.1, f"learned (log-var) |log Z error| ≤ 0.1 on the GMM at every seed (worst {worst:.3f})")
    low = min(r["ess"] for r in lv)
    verdict(low >= 0.5, f"learned (log-var) ESS/n ≥ 0.5 on the GMM at every seed (lowest {low:.3f})")
    for name in TARGETS:
        a = statistics.mean(r["w2"] for r in table[name, "learned (log-var)"])
        b = statistics.mean(r["w2"] for r in table[name, "MC, equal time"])
        verdict(a <= b, f"{name}: learned W2 ≤ MC W2 at equal time (mean over seeds: {a:.3f} vs {b:.3f})")
        if name != "GMM 2-D":
            a = statistics.mean(r["w2w"] for r in table[name, "learned (log-var)"])
            b = statistics.mean(r["w2w"] for r in table[name, "MC, equal time"])
            verdict(a <= b, f"{name}: learned whitened W2 ≤ MC whitened W2 at equal time ({a:.3f} vs {b:.3f})")
    for name in TARGETS:
        a = statistics.mean(r["ess"] for r in table[name, "learned (log-var)"])
        b = statistics.mean(r["ess"] for r in table[name, "u = 0"])
        verdict(a > b, f"{name}: learned ESS/n above plain importance sampling (u = 0): {a:.3f} vs {b:.3f}")
    for name in TARGETS[1:]:
        worst = max(abs(r["err"]) for r in table[name, "learned (log-var)"])
        verdict(worst <= 0.1, f"{name}: learned (log-var) |log Z error| ≤ 0.1 at every seed (worst {worst:.3f})")
    print(f"\nscript wall time {wall:.1f} s ({args.workers} worker processes, 1 torch thread each)")


if __name__ == "__main__":
    main()
