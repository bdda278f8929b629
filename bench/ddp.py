"""DistributedDataParallel throughput on this machine: steps/s with 1 and 2 gloo ranks, one thread each.

    python bench/ddp.py            # or: make bench

Each configuration is launched with PyTorch's own launcher, ``python -m torch.distributed.run
--standalone --nproc_per_node=K bench/ddp.py --worker ...`` (K = 1, 2), with OMP_NUM_THREADS=1. The
worker trains a bridge-matching drift (8 gaussians → moons, independent coupling) through
``lsbcore.train.fit(..., ddp=True)`` exactly as ``python -m lsbcore train`` does: every rank draws
the same GLOBAL batch and keeps its half, DDP averages the gradients. Timed: ``steps`` steps after a
warm-up, between two barriers (process start-up and imports are not counted).

Two workloads: "large" (TimeMLP width 512, global batch 4096: the network dominates a step) and
"small" (the CLI's default width 128, batch 256: a step is ~1 ms of work, so the all-reduce and the
replicated data sampling weigh more). The criterion — ``[PASS]`` when 2 ranks give ≥ 1.5× the
steps/s of 1 — is judged on the large workload; the small one is printed for what it shows.
The numbers depend on what else the 2 cores are doing: the load average is printed with them.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORKLOADS = {"large": dict(width=512, depth=3, batch=4096, steps=20, warmup=3),
             "small": dict(width=128, depth=3, batch=256, steps=300, warmup=20)}
TARGET = 1.5


def worker(width: int, depth: int, batch: int, steps: int, warmup: int) -> None:
    import torch

    from lsbcore import distributed
    from lsbcore.bridges.matching import bridge_target, matching_loss, sample_times
    from lsbcore.marginals import eight_gaussians, moons
    from lsbcore.nets import TimeMLP
    from lsbcore.train import fit

    torch.set_num_threads(1)
    place = distributed.setup("cpu")
    distributed.check_global_batch(batch)
    net = TimeMLP(2, width=width, depth=depth, seed=0)

    def loss_fn(model, step, gen):
        x0, x1 = eight_gaussians(batch, gen), moons(batch, gen)
        t = sample_times(batch, "forward", 0.01, x0, gen)
        z = torch.randn(x0.shape, generator=gen)
        x_t = (1 - t) * x0 + t * x1 + torch.sqrt(t * (1 - t)) * z
        x_t, t, target = distributed.shard(x_t, t, bridge_target(x0, x1, x_t, t))
        return matching_loss(model, x_t, t, target)

    fit(net, loss_fn, warmup, progress=False, ddp=True, ema=0.999)
    distributed.barrier()
    tic = time.perf_counter()
    fit(net, loss_fn, steps, progress=False, ddp=True, ema=0.999, seed=1)
    distributed.barrier()
    seconds = time.perf_counter() - tic
    if place.is_main:
        print("RESULT " + json.dumps({"ranks": place.world_size, "steps_per_s": steps / seconds}), flush=True)
    distributed.teardown()


def launch(ranks: int, cfg: dict) -> float:
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    args = [f"--{k}={v}" for k, v in cfg.items()]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={ranks}",
           str(Path(__file__).resolve()), "--worker", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])["steps_per_s"]
    raise RuntimeError(f"{ranks}-rank run failed:\n{proc.stderr[-3000:]}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    for key in ("width", "depth", "batch", "steps", "warmup"):
        parser.add_argument(f"--{key}", type=int)
    args = parser.parse_args()
    if args.worker:
        worker(args.width, args.depth, args.batch, args.steps, args.warmup)
        return 0
    print(f"DDP throughput, gloo on CPU, one thread per rank ({os.cpu_count()} cores; "
          f"load average before: {os.getloadavg()[0]:.2f})")
    print(f"{'workload':<8} {'width':>5} {'batch':>6} {'1 rank steps/s':>15} {'2 ranks steps/s':>16} {'ratio':>6}")
    verdict = None
    for name, cfg in WORKLOADS.items():
        one, two = launch(1, cfg), launch(2, cfg)
        ratio = two / one
        print(f"{name:<8} {cfg['width']:>5} {cfg['batch']:>6} {one:>15.3f} {two:>16.3f} {ratio:>6.2f}")
        if name == "large":
            verdict = ratio >= TARGET
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    print(f"[{'PASS' if verdict else 'FAIL'}] 2 ranks give ≥ {TARGET}× the throughput of 1 (large workload)")
    return 0          # a measurement, reported whatever it is (make bench stops only on errors)


if __name__ == "__main__":
    sys.exit(main())
