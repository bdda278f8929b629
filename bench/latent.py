"""Speed of the latent pipeline on this CPU, with the pixel-space baseline beside it (same budget).

    python bench/latent.py            # full: default autoencoder (3000 steps), bridges with 1000 steps
    python bench/latent.py --quick    # smaller budgets, same code

Prints: time to pre-train the default autoencoder (d* = 8), to fit each latent bridge, and to
sample + decode 10,000 digits; the same bridges fitted on 64-D pixels (lsbcore.autoencoder.PixelSpace) with
the same training steps and sampler steps, and the ratio pixel / latent. Single CPU thread (the
networks are tiny). Notebook 03 explains the pipeline.
"""
from __future__ import annotations

import argparse
import time

import torch

import lsbcore as lsb
from lsbcore.autoencoder import PixelSpace, fit_autoencoder


def timed(fn):
    tic = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - tic


def bench_space(space, n_gen: int, train_steps: int, steps: int) -> dict:
    x, _ = lsb.load_digits("target")
    with torch.no_grad():
        pts = space.encode(x)
    d = pts.shape[1]
    fresh_gen = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    rows = {}

    def run(name, fit_fn, start_fn):
        bridge, t_fit = timed(fit_fn)

        def sample_and_decode():
            z = lsb.sample(bridge, start_fn(bridge), steps=steps, t1=0.99, seed=1).x
            with torch.no_grad():
                return space.decode(z)
        _, t_gen = timed(sample_and_decode)
        rows[name] = (t_fit, t_gen)

    run("heat flow, exact (Föllmer start)", lambda: lsb.HeatFlowBridge(pts, 1.0),
        lambda b: b.start(n_gen, how="follmer", seed=0, follmer_steps=steps // 2))
    run("Föllmer δ0 → p̂, exact", lambda: lsb.EmpiricalFollmer(pts, 1.0), lambda b: b.start(n_gen))
    run(f"heat flow, learned ({train_steps} steps)",
        lambda: lsb.fit_heat_flow(pts, 1.0, steps=train_steps, progress=False),
        lambda b: b.start(n_gen, how="gaussian", seed=0))
    run(f"IMF + Sinkhorn (3 × {train_steps} steps)",
        lambda: lsb.imf(lambda n, gen: torch.randn(n, d, generator=gen), pts, 1.0, iterations=2, steps=train_steps,
                    coupling="sinkhorn", progress=False, pool=1024, sinkhorn_kwargs=dict(max_iter=200)),
        lambda b: torch.randn(n_gen, d, generator=fresh_gen()))
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="smaller budgets (same code)")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    ae_steps, train_steps, n_gen, steps = (300, 200, 2000, 50) if args.quick else (3000, 1000, 10_000, 100)

    ae, t_ae = timed(lambda: fit_autoencoder(8, steps=ae_steps, progress=False))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread, device cpu")
    print(f"pre-train the default autoencoder (d* = 8, {ae_steps} steps, batch 128): {t_ae:7.1f} s")
    print(f"sample + decode {n_gen} digits with {steps} Euler–Maruyama steps; bridges fitted on the 700 target codes\n")
    lat = bench_space(ae, n_gen, train_steps, steps)
    pix = bench_space(PixelSpace(), n_gen, train_steps, steps)
    head = f"{'bridge':38s} | {'fit latent':>10s} {'fit pixel':>10s} {'ratio':>6s} | {'gen latent':>10s} {'gen pixel':>10s} {'ratio':>6s}"
    print(head)
    print("-" * len(head))
    for name in lat:
        (fl, gl), (fp, gp) = lat[name], pix[name]
        rf = f"{fp / fl:6.2f}" if min(fl, fp) > 0.1 else "   n/a"
        print(f"{name:38s} | {fl:9.2f}s {fp:9.2f}s {rf} | {gl:9.2f}s {gp:9.2f}s {gp / gl:6.2f}")
    print("\n'fit' of the exact bridges is only building the object (no training); ratio = pixel / latent time.")


if __name__ == "__main__":
    main()
