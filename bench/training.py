"""Training quality and speed: lsbcore bridge matching against torchcfm's SB-CFM and OT-CFM.

Task: 8 gaussians → moons, generated exactly as torchcfm.utils does it (re-implemented here with a
torch generator: `sample_8gaussians` = 8 centres on the unit circle × 5 plus Gaussian noise of
covariance √0.1·I, i.e. std 0.1^¼; `sample_moons` = torchdyn's `generate_moons(n, noise=0.2)`, the
two arcs on an even grid plus ONE uniform [0, 0.2) shift added to both coordinates, then × 3 − 1).

Same budget for every method: batch 256, the same width-64 network (lsbcore.nets.TimeMLP, depth 3),
Adam lr 3e-3 with cosine decay, EMA 0.999, `steps` steps, one training loop (lsbcore.train.fit),
side by side in one run. (lr 3e-3 + cosine beat lr 1e-3 constant for lsbcore at 2000 steps,
W2 0.31 vs 0.46; every method gets the same setting.)

  lsbcore  SB   forward drift by bridge matching on minibatch-Sinkhorn pairs (ε = 2σ², lsbcore solver),
                sampled by Euler–Maruyama (100 steps, noise-free last step)             NFE 100
  torchcfm SB-CFM  SchrodingerBridgeConditionalFlowMatcher(σ, ot_method="sinkhorn") (POT Sinkhorn,
                reg = 2σ²), flow network, probability-flow ODE by Heun (100 steps)       NFE 200
  torchcfm OT-CFM  ExactOptimalTransportConditionalFlowMatcher(σ_cfm = 0.1) (POT emd), Heun   NFE 200

Metric: W2 (exact, POT emd2) between 2000 generated samples and 2000 fresh moons samples, against the
noise floor: W2 between two independent 2000-samples of the moons. Target: lsbcore W2 ≤ 2 × floor,
in no more wall time than torchcfm's SB-CFM.

    python bench/training.py            # 5000 steps
    python bench/training.py --quick    # 500 steps
Needs torchcfm: `pip install --no-deps torchcfm` (it imports only torch, numpy and POT at runtime
for the two matchers used here; its utils module would also need torchdyn, which we do not import).
"""
from __future__ import annotations

import argparse
import math
import time
import warnings

import numpy as np
import ot
import torch

from lsbcore.bridges.matching import fit_bridge, simulate
from lsbcore.nets import TimeMLP
from lsbcore.sde import sample
from lsbcore.train import fit

BATCH, WIDTH, DEPTH, LR, EMA, SCHEDULE = 256, 64, 3, 3e-3, 0.999, "cosine"
N_EVAL, SAMPLE_STEPS = 2000, 100


# ---------------------------------------------------------------------------------- data (torchcfm's)
_SQ = 1.0 / math.sqrt(2.0)
_CENTRES = 5.0 * torch.tensor([(1, 0), (-1, 0), (0, 1), (0, -1), (_SQ, _SQ), (_SQ, -_SQ), (-_SQ, _SQ), (-_SQ, -_SQ)],
                              dtype=torch.float32)


def sample_8gaussians(n: int, g: torch.Generator) -> torch.Tensor:
    """torchcfm.utils.sample_8gaussians: centres × 5 + N(0, √0.1 · I) noise (std 0.1^¼ ≈ 0.562)."""
    idx = torch.randint(0, 8, (n,), generator=g)
    return _CENTRES[idx] + 0.1**0.25 * torch.randn(n, 2, generator=g)


def sample_moons(n: int, g: torch.Generator) -> torch.Tensor:
    """torchcfm.utils.sample_moons = 3 · torchdyn.generate_moons(n, noise=0.2) − 1 (see module doc)."""
    n_out, n_in = n // 2, n - n // 2
    s_out = torch.linspace(0, math.pi, n_out)
    s_in = torch.linspace(0, math.pi, n_in)
    x = torch.cat([torch.stack([torch.cos(s_out), torch.sin(s_out)], 1),
                   torch.stack([1 - torch.cos(s_in), 1 - torch.sin(s_in) - 0.5], 1)])
    x = x + 0.2 * torch.rand(n, 1, generator=g)          # one uniform shift, both coordinates
    return 3 * x - 1


def w2(x: torch.Tensor, y: torch.Tensor) -> float:
    """Exact W2 between two uniform point clouds: sqrt(ot.emd2) with the squared Euclidean cost."""
    a, b = x.double().numpy(), y.double().numpy()
    return math.sqrt(ot.emd2(ot.unif(len(a)), ot.unif(len(b)), ot.dist(a, b), numItermax=10**7))


class Flow:
    """Bridge face for a flow network: velocity(x, t) = net(x, t) (deterministic ODE)."""

    sigma = 0.0

    def __init__(self, net):
        self.net = net

    def drift(self, x, t):
        return self.net(x, t)

    velocity = drift


# ---------------------------------------------------------------------------------- methods
def run_lsbcore(steps: int, sigma: float, seed: int):
    bridge = fit_bridge(sample_8gaussians, sample_moons, sigma, coupling="sinkhorn",
                        net=TimeMLP(2, WIDTH, DEPTH, seed=seed), steps=steps, batch_size=BATCH, lr=LR,
                        ema=EMA, seed=seed, progress=False, schedule=SCHEDULE,
                        sinkhorn_kwargs=dict(tol=1e-3, max_iter=1000, on_fail="warn"))
    return lambda x0: simulate(bridge, x0, steps=SAMPLE_STEPS, seed=seed), SAMPLE_STEPS


def run_torchcfm(matcher, steps: int, seed: int):
    net = TimeMLP(2, WIDTH, DEPTH, seed=seed)

    def loss_fn(model, step, g):
        x0, x1 = sample_8gaussians(BATCH, g), sample_moons(BATCH, g)
        t, xt, ut = matcher.sample_location_and_conditional_flow(x0, x1)   # uses global RNGs
        return ((model(xt, t[:, None]) - ut) ** 2).sum(-1).mean()

    torch.manual_seed(seed)
    np.random.seed(seed)
    hist = fit(net, loss_fn, steps, lr=LR, ema=EMA, seed=seed, progress=False, schedule=SCHEDULE)
    flow = Flow(hist.ema.eval())
    return lambda x0: sample(flow, x0, method="ode", steps=SAMPLE_STEPS).x, 2 * SAMPLE_STEPS


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="500 steps instead of 5000")
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--sigma", type=float, default=0.5, help="σ of the Brownian reference (both SB methods)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--methods", default="lsbcore,sbcfm,otcfm")
    args = ap.parse_args()
    steps = args.steps or (500 if args.quick else 5000)
    from torchcfm.conditional_flow_matching import (ExactOptimalTransportConditionalFlowMatcher,
                                                    SchrodingerBridgeConditionalFlowMatcher)

    g = torch.Generator().manual_seed(12345)
    x0_eval = sample_8gaussians(N_EVAL, g)
    target, target2 = sample_moons(N_EVAL, g), sample_moons(N_EVAL, g)
    floor = w2(target, target2)

    runners = {
        "lsbcore SB (Sinkhorn BM)": ("lsbcore", lambda: run_lsbcore(steps, args.sigma, args.seed)),
        "torchcfm SB-CFM": ("sbcfm", lambda: run_torchcfm(
            SchrodingerBridgeConditionalFlowMatcher(sigma=args.sigma, ot_method="sinkhorn"), steps, args.seed)),
        "torchcfm OT-CFM": ("otcfm", lambda: run_torchcfm(
            ExactOptimalTransportConditionalFlowMatcher(sigma=0.1), steps, args.seed)),
    }
    wanted = set(args.methods.split(","))
    rows = []
    for name, (key, run) in runners.items():
        if key not in wanted:
            continue
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            tic = time.perf_counter()
            sampler, nfe = run()
            train_s = time.perf_counter() - tic
            tic = time.perf_counter()
            with torch.no_grad():
                out = sampler(x0_eval.clone())
            sample_s = time.perf_counter() - tic
        n_warn = sum(1 for w in caught if "converge" in str(w.message) or "Numerical" in str(w.message))
        rows.append((name, train_s, sample_s, nfe, w2(out, target), n_warn))
        print(f"  done: {name} ({train_s:.1f} s)", flush=True)

    ref = next((r for r in rows if r[0] == "torchcfm SB-CFM"), None)
    print(f"\n8 gaussians → moons, batch {BATCH}, width-{WIDTH} MLP (depth {DEPTH}), {steps} steps, "
          f"lr {LR} {SCHEDULE}, σ = {args.sigma}, W2 on {N_EVAL} samples, torch threads = {torch.get_num_threads()}")
    print(f"noise floor W2(moons, moons') = {floor:.4f}\n")
    head = f"{'method':<26}{'train s':>9}{'× SB-CFM':>10}{'sample s':>10}{'NFE':>6}{'W2':>9}{'W2/floor':>10}{'OT warnings':>13}"
    print(head)
    print("-" * len(head))
    for name, tr, sa, nfe, dist, nw in rows:
        rel = f"{tr / ref[1]:.2f}" if ref else "-"
        print(f"{name:<26}{tr:>9.1f}{rel:>10}{sa:>10.2f}{nfe:>6d}{dist:>9.4f}{dist / floor:>10.2f}{nw:>13d}")
    ls = next((r for r in rows if r[0].startswith("lsbcore")), None)
    if ls is not None:
        ok_q = ls[4] <= 2 * floor
        ok_t = ref is None or ls[1] <= ref[1]
        print(f"\ntarget W2 ≤ 2 × floor: {'met' if ok_q else 'NOT met'} ({ls[4] / floor:.2f} × floor); "
              f"train time ≤ torchcfm SB-CFM: {'met' if ok_t else 'NOT met'}"
              + (f" ({ls[1] / ref[1]:.2f} ×)" if ref else ""))


if __name__ == "__main__":
    main()
