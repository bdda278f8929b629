"""Speed of the lsbcore sampler against torchsde and against the bare cost of the network.

The same drift network (lsbcore.nets.TimeMLP, a time-conditioned MLP) is integrated with
Euler–Maruyama for 100 steps on a batch of 2-D points, three ways, side by side in one run:

  bare      100 × one forward pass of the network on the batch (the floor any sampler pays)
  lsbcore   lsbcore.sde.sample(bridge, x, method="sde", steps=100)
  torchsde  torchsde.sdeint(sde, x, ts=[0, 1], method="euler", dt=1/100)

Everything runs under torch.no_grad. Each measurement is repeated and the median reported; the three
are interleaved so that load from other processes hits them alike. On a CPU the clock is the process's
CPU time (one thread by default), which other processes' load barely disturbs; on a GPU, wall time
with synchronisation. Targets: lsbcore within 1.15× of
the bare cost at every batch size, ≥ 1.5× faster than torchsde at batch 10k, never slower at 100k.

    python bench/sampling.py            # batch 10k and 100k, 5 repeats
    python bench/sampling.py --quick    # batch 2k and 20k, 3 repeats
Needs torchsde (``pip install --no-deps torchsde trampoline``, or ``make bench-deps``).
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

import lsbcore
from lsbcore.nets import TimeMLP
from lsbcore.sde import sample

STEPS = 100
SIGMA = 1.0


class NetBridge:
    """The Bridge face around a drift network: drift(x, t) = net(x, t), constant σ."""

    sigma = SIGMA

    def __init__(self, net):
        self.net = net

    def drift(self, x, t):
        return self.net(x, t)


class NetSDE(torch.nn.Module):
    """The same SDE in torchsde's interface: f(t, y), g(t, y) with diagonal noise."""

    noise_type = "diagonal"
    sde_type = "ito"

    def __init__(self, net):
        super().__init__()
        self.net = net

    def f(self, t, y):
        return self.net(y, t.expand(y.shape[0], 1))

    def g(self, t, y):
        return torch.full_like(y, SIGMA)


def _sync(dev):
    if dev.type == "cuda":
        torch.cuda.synchronize()


def _time(fn, dev, clock) -> float:
    _sync(dev)
    t0 = clock()
    fn()
    _sync(dev)
    return clock() - t0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller batches and fewer repeats")
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch CPU threads (1 by default: on a shared machine extra threads spin and add noise)")
    ap.add_argument("--device", default=None, help="cpu / cuda (default: lsbcore.device())")
    ap.add_argument("--clock", choices=("auto", "cpu", "wall"), default="auto",
                    help="auto: CPU time of this process on a CPU device (insensitive to other processes' "
                         "load on a shared machine), wall time on a GPU")
    args = ap.parse_args(argv)
    import torchsde

    torch.set_num_threads(args.threads)
    dev = lsbcore.device(args.device)
    batches = (2_000, 20_000) if args.quick else (10_000, 100_000)
    repeats = args.repeats or (3 if args.quick else 5)
    use_cpu_clock = args.clock == "cpu" or (args.clock == "auto" and dev.type == "cpu")
    clock = time.process_time if use_cpu_clock else time.perf_counter
    net = TimeMLP(2, width=args.width, depth=3, seed=0).to(dev).eval()
    bridge, sde = NetBridge(net), NetSDE(net)
    print(f"device={dev}  threads={torch.get_num_threads()}  torch {torch.__version__}  torchsde {torchsde.__version__}")
    print(f"drift: TimeMLP(dim=2, width={args.width}, depth=3); Euler–Maruyama, {STEPS} steps, σ={SIGMA}; "
          f"median of {repeats} interleaved repeats, torch.no_grad; clock: "
          f"{'process CPU time' if use_cpu_clock else 'wall time'}")
    rows = []
    with torch.no_grad():
        for n in batches:
            x0 = torch.randn(n, 2, generator=torch.Generator().manual_seed(0)).to(dev)
            t_col = torch.full((n, 1), 0.5, device=dev)
            ts = torch.tensor([0.0, 1.0], device=dev)

            def bare():
                for _ in range(STEPS):
                    net(x0, t_col)

            def ours():
                sample(bridge, x0, method="sde", steps=STEPS, seed=0)

            def theirs():
                torchsde.sdeint(sde, x0, ts, method="euler", dt=1.0 / STEPS)

            fns = {"bare": bare, "lsbcore": ours, "torchsde": theirs}
            for fn in fns.values():  # warm-up
                fn()
            times = {k: [] for k in fns}
            for _ in range(repeats):
                for k, fn in fns.items():
                    times[k].append(_time(fn, dev, clock))
            med = {k: statistics.median(v) for k, v in times.items()}
            rows.append((n, med))

    print()
    print(f"{'batch':>8} | {'bare (s)':>9} | {'lsbcore (s)':>11} | {'torchsde (s)':>12} | "
          f"{'lsbcore/bare':>12} | {'torchsde/lsbcore':>16}")
    print("-" * 85)
    for n, med in rows:
        print(f"{n:>8} | {med['bare']:>9.3f} | {med['lsbcore']:>11.3f} | {med['torchsde']:>12.3f} | "
              f"{med['lsbcore'] / med['bare']:>11.2f}× | {med['torchsde'] / med['lsbcore']:>15.2f}×")
    print()
    small, large = rows[0], rows[-1]
    checks = [
        ("lsbcore within 1.15× of bare at every batch", all(m["lsbcore"] <= 1.15 * m["bare"] for _, m in rows)),
        (f"lsbcore ≥ 1.5× faster than torchsde at batch {small[0]}", small[1]["torchsde"] >= 1.5 * small[1]["lsbcore"]),
        (f"lsbcore not slower than torchsde at batch {large[0]}", large[1]["torchsde"] >= large[1]["lsbcore"]),
    ]
    for name, ok in checks:
        print(f"[{'PASS' if ok else 'MISS'}] {name}")


if __name__ == "__main__":
    main()
