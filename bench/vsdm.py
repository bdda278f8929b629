"""VSDM against the VP-SDE on the anisotropic 2-D shapes, with the same network and training budget.

For each shape (spiral ×8 in y, checkerboard ×6 in x) and each seed, both models are trained by
lsbcore.fit_vsdm — the same TimeMLP, the same number of Adam steps, batch, learning
rate and seed; VSDM additionally updates A by stochastic approximation — at β_max = 10. Then the
PF-ODE (Heun) samples at NFE 6, 8, 16, 50 are scored by W2 to fresh target points (next to the noise
floor), and the ODE paths by their straightness (absolute, and relative to the mean squared chord).
Training wall time is measured per model. One table is printed; the last column says which model
wins the low-NFE W2 (NFE 6 and 8).

    python bench/vsdm.py            # 2 seeds × 2 shapes, 1500 steps, 1000 evaluation samples
    python bench/vsdm.py --quick    # 1 seed × 2 shapes, 400 steps, 500 evaluation samples

Single CPU thread (the networks are tiny). Notebook 06 explains the method.
"""
from __future__ import annotations

import argparse
import time

import torch

import lsbcore as lsb
from lsbcore.bridges.vsdm_eval import evaluate
from lsbcore.marginals import checkerboard, spiral

SHAPES = {
    "spiral x8 (y)": lambda n, seed: spiral(n, seed=seed, scale=(1, 8)),
    "checker x6 (x)": lambda n, seed: checkerboard(n, seed=seed, scale=(6, 1)),
}
NFES = (6, 8, 16, 50)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="one seed, 400 steps, 500 evaluation samples")
    args = ap.parse_args()
    torch.set_num_threads(1)
    seeds = (0,) if args.quick else (0, 1)
    steps = 400 if args.quick else 1500
    n_eval = 500 if args.quick else 1000
    a_every = 20 if args.quick else 50
    print(f"VSDM vs VP-SDE, beta_max = 10, TimeMLP width 64, {steps} Adam steps each, batch 256, "
          f"PF-ODE (Heun), {n_eval} samples; W2 floor = W2 between two target samples")
    head = (f"{'shape':15s} {'seed':>4s} {'model':7s} {'train s':>7s} "
            + " ".join(f"{'W2@' + str(k):>7s}" for k in NFES) + f" {'floor':>6s} "
            + " ".join(f"{'str@' + str(k):>7s}" for k in NFES) + " " + " ".join(f"{'rel@' + str(k):>6s}" for k in NFES)
            + "  low-NFE W2 winner")
    print(head)
    print("-" * len(head))
    wins = {"VSDM": 0, "VP-SDE": 0}
    tic = time.perf_counter()
    for name, make in SHAPES.items():
        for seed in seeds:
            data, target = make(4000, seed), make(2 * n_eval, seed + 100)
            ev = {}
            for label, adaptive in (("VP-SDE", False), ("VSDM", True)):
                res = lsb.fit_vsdm(data, adaptive=adaptive, steps=steps, width=64, beta_max=10.0, a_every=a_every,
                                   seed=seed, progress=False)
                ev[label] = (res.seconds, evaluate(res.bridge, target, nfes=NFES, n=n_eval, seed=seed))
            low = {lab: sum(ev[lab][1][k]["w2"] for k in (6, 8)) for lab in ev}
            winner = min(low, key=low.get)
            wins[winner] += 1
            for label, (secs, e) in ev.items():
                print(f"{name:15s} {seed:4d} {label:7s} {secs:7.1f} "
                      + " ".join(f"{e[k]['w2']:7.2f}" for k in NFES) + f" {e[50]['floor']:6.2f} "
                      + " ".join(f"{e[k]['straightness']:7.1f}" for k in NFES) + " "
                      + " ".join(f"{e[k]['rel_straightness']:6.3f}" for k in NFES)
                      + (f"  {winner}" if label == "VSDM" else ""))
    print("-" * len(head))
    print(f"low-NFE W2 (NFE 6 + 8) won by VSDM in {wins['VSDM']} of {sum(wins.values())} runs; "
          f"total {time.perf_counter() - tic:.0f} s")
    print("str@k: E∫‖ẋ − (x_end − x_start)‖² dt on the k-NFE ODE path; rel@k: the same / E‖x_end − x_start‖²")


if __name__ == "__main__":
    main()
