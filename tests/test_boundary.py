"""The boundary (issue 10 §5): every public verb and constructor of the static solvers, references,
bridge matching, marginals, metrics and the sampler refuses bad input with a ValueError/TypeError that
names the argument (or a documented numerical error), never a NaN/inf, a wrong number or a torch trace.

One parametrised table of (callable, expected exception, word in the message), built class by class:
NaN/inf, wrong sign, wrong type (str, None, list, bool), wrong shape, integer tensors, empty sets, a
tensor on another device (the meta device stands in for one), times outside [0, 1], huge seeds.
"""
import math
import warnings

import pytest
import torch

from lsbcore import marginals as M
from lsbcore import metrics as MT
from lsbcore.bridges.matching import (EndpointDrift, MatchedBridge, bridge_target, brownian_bridge, couple,
                                      fit_bridge, imf, matching_loss, simulate)
from lsbcore.bridges.reference import OU, VP, Brownian, BrownianBridge, brownian_bridge_sample
from lsbcore.nets import TimeMLP
from lsbcore.schrodinger import (GaussianBridge, Grid, SinkhornConvergenceError, fortet, log_sinkhorn_step,
                                 monge_map, sinkhorn, sinkhorn_cost, squared_distances)
from lsbcore.sde import generate, sample

NAN, INF = float("nan"), float("inf")
X = torch.randn(6, 2, generator=torch.Generator().manual_seed(0))
Y = torch.randn(5, 2, generator=torch.Generator().manual_seed(1)) + 1
X64 = X.double()
T = torch.full((6, 1), 0.5)
META = torch.empty(6, 2, device="meta")

# bad versions of a points tensor (n, 2): (value, exception)
BAD_POINTS = {
    "nan": (torch.full((6, 2), NAN), ValueError),
    "inf": (torch.full((6, 2), INF), ValueError),
    "int": (torch.ones(6, 2, dtype=torch.int64), TypeError),
    "bool": (torch.ones(6, 2, dtype=torch.bool), TypeError),
    "list": ([[0.0, 1.0]] * 6, TypeError),
    "none": (None, TypeError),
    "str": ("x", TypeError),
    "empty": (torch.empty(0, 2), ValueError),
    "3d": (torch.zeros(2, 3, 2), ValueError),
    "dim3": (torch.zeros(6, 3), ValueError),
    "meta": (META, ValueError),
}
# bad positive real parameters: (value, exception)
BAD_POSITIVE = {"nan": (NAN, ValueError), "inf": (INF, ValueError), "neg": (-1.0, ValueError),
                "str": ("1", TypeError), "none": (None, TypeError), "list": ([1.0], TypeError),
                "bool": (True, TypeError)}
BAD_REAL = {k: v for k, v in BAD_POSITIVE.items() if k != "neg"}
# bad times for a batch of 6: (value, exception)
BAD_TIMES = {
    "above": (1.5, ValueError), "below": (-0.1, ValueError), "nan": (NAN, ValueError), "inf": (INF, ValueError),
    "str": ("0.5", TypeError), "none": (None, TypeError), "list": ([0.5], TypeError), "bool": (True, TypeError),
    "col_above": (torch.full((6, 1), 1.5), ValueError), "col_below": (torch.full((6, 1), -0.5), ValueError),
    "col_nan": (torch.full((6, 1), NAN), ValueError), "rows": (torch.full((4, 1), 0.5), ValueError),
    "cols": (torch.full((6, 2), 0.5), ValueError), "bool_tensor": (torch.ones(6, 1, dtype=torch.bool), TypeError),
    "row_above": (torch.full((6,), 1.01), ValueError),
}
BAD_SEEDS = {"huge": (2**70, ValueError), "neg_huge": (-(2**70), ValueError), "str": ("0", TypeError),
             "float": (1.5, TypeError), "list": ([0], TypeError), "bool": (True, TypeError)}
BAD_COUNTS = {"zero": (0, ValueError), "neg": (-3, ValueError), "float": (2.5, TypeError), "str": ("4", TypeError),
              "none": (None, TypeError)}

CASES = []


def case(name, fn, exc, word):
    CASES.append(pytest.param(fn, exc, word, id=name))


def family(prefix, table, make, word, only=None):
    """One case per bad value of ``table``: ``make(value)`` calls the API with it."""
    for key, (value, exc) in table.items():
        if only is None or key in only:
            case(f"{prefix}-{key}", (lambda v=value: make(v)), exc, word)


# ------------------------------------------------------------------------------ fixtures built once
def _gauss_bridge():
    return GaussianBridge([0.0, 0.0], 1.0, [1.0, 1.0], 0.5, 0.7)


def _grid_bridge():
    grid = Grid(-4.0, 4.0, 40)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fortet(M.Gaussian([0.0], 1.0), M.Gaussian([1.0], 0.5), 0.8, grid, max_iter=200)


GB, GRID = _gauss_bridge(), _grid_bridge()
X1D = torch.randn(6, 1)
BB = BrownianBridge([1.0, 1.0], 0.5, x0=[0.0, 0.0])
MB = MatchedBridge(TimeMLP(2, seed=0), 0.5, TimeMLP(2, seed=1), source0=X)
SK = sinkhorn(X, Y, 1.0)

# ------------------------------------------------------------------------------ marginals
for prefix, fn, kw in [("eight_gaussians.radius", M.eight_gaussians, "radius"), ("eight_gaussians.std", M.eight_gaussians, "std"),
                       ("moons.noise", M.moons, "noise"), ("moons.scale", M.moons, "scale"),
                       ("spiral.noise", M.spiral, "noise"), ("spiral.turns", M.spiral, "turns"),
                       ("checkerboard.scale", M.checkerboard, "scale"), ("spiral.scale", M.spiral, "scale")]:
    only = [k for k in BAD_POSITIVE if k != "list"] if prefix.endswith(".scale") and prefix != "moons.scale" else None
    family(prefix, BAD_POSITIVE, lambda v, fn=fn, kw=kw: fn(10, **{kw: v}), kw, only)
family("moons.shift", BAD_REAL, lambda v: M.moons(10, shift=v), "shift")
family("checkerboard.scale_vec", {"nan": ((1.0, NAN), ValueError), "zero": ((1.0, 0.0), ValueError),
                                  "len3": ((1.0, 1.0, 1.0), ValueError)}, lambda v: M.checkerboard(10, scale=v), "scale")
for name, fn in M.TOY_SETS.items():
    family(f"{name}.seed", BAD_SEEDS, lambda v, fn=fn: fn(10, seed=v), "seed")
    family(f"{name}.n", BAD_COUNTS, lambda v, fn=fn: fn(v), "n")
    family(f"{name}.device", {"bad": ("gpu0", ValueError), "int": (3.5, TypeError)},
           lambda v, fn=fn: fn(10, device=v), "device")
case("Toy2D.name", lambda: M.Toy2D("circles"), ValueError, "name")
case("Toy2D.kwargs", lambda: M.Toy2D("moons", noise=NAN), ValueError, "noise")
case("Toy2D.unknown_kwarg", lambda: M.Toy2D("moons", radius=1.0), TypeError, "radius")
family("Gaussian.mean", {"nan": ([NAN, 0.0], ValueError), "str": ("ab", TypeError), "none": (None, TypeError),
                         "matrix": ([[0.0, 1.0]], ValueError), "ragged": ([[0.0], [1.0, 2.0]], TypeError)},
       lambda v: M.Gaussian(v, 1.0), "mean")
family("Gaussian.cov", {"nan": (NAN, ValueError), "inf": ([1.0, INF], ValueError), "str": ("1", TypeError),
                        "neg": (-1.0, ValueError), "asym": ([[1.0, 0.5], [0.0, 1.0]], ValueError),
                        "shape": (torch.eye(3), ValueError), "len": ([1.0, 1.0, 1.0], ValueError)},
       lambda v: M.Gaussian([0.0, 0.0], v), "cov")
family("Gaussian.sample.seed", BAD_SEEDS, lambda v: M.Gaussian([0.0], 1.0).sample(3, seed=v), "seed")
family("Gaussian.sample.n", BAD_COUNTS, lambda v: M.Gaussian([0.0], 1.0).sample(v), "n")
family("GaussianMixture.means", {"str": ("ab", TypeError), "1d": ([0.0, 1.0], ValueError),
                                 "nan": ([[NAN, 0.0]], ValueError)},
       lambda v: M.GaussianMixture([1.0], v), "mean")
family("GaussianMixture.weights", {"neg": ([-1.0, 2.0], ValueError), "nan": ([NAN, 1.0], ValueError),
                                   "len": ([1.0], ValueError), "str": ("w", TypeError), "zero": ([0.0, 0.0], ValueError)},
       lambda v: M.GaussianMixture(v, [[0.0], [1.0]]), "weights")
family("GaussianMixture.covs", {"nan": (NAN, ValueError), "shape": (torch.ones(3, 1, 1), ValueError),
                                "str": ("c", TypeError), "neg": (-1.0, ValueError)},
       lambda v: M.GaussianMixture([1.0, 1.0], [[0.0], [1.0]], v), "cov")
family("Empirical.points", BAD_POINTS, lambda v: M.Empirical(v), "points", only=["nan", "inf", "int", "list", "none", "empty", "3d"])
family("Empirical.weights", {"neg": (torch.tensor([-1.0] + [1.0] * 5), ValueError),
                             "len": (torch.ones(3), ValueError), "nan": (torch.full((6,), NAN), ValueError)},
       lambda v: M.Empirical(X, v), "weights")

# ------------------------------------------------------------------------------ metrics
for name, fn in [("w2", MT.w2), ("sliced_w2", MT.sliced_w2), ("mmd", MT.mmd), ("energy_distance", MT.energy_distance),
                 ("frechet_distance", MT.frechet_distance), ("histogram_error", MT.histogram_error)]:
    family(f"{name}.x", BAD_POINTS, lambda v, fn=fn: fn(v, Y), "x",
           only=["nan", "inf", "int", "list", "none", "empty", "3d", "meta", "str"])
    family(f"{name}.y", BAD_POINTS, lambda v, fn=fn: fn(X, v), "y", only=["nan", "int", "dim3", "empty", "meta"])
family("w2.a", {"neg": (torch.tensor([-1.0] + [1.0] * 5), ValueError), "len": (torch.ones(4), ValueError),
                "nan": (torch.full((6,), NAN), ValueError), "zero": (torch.zeros(6), ValueError),
                "meta": (torch.ones(6, device="meta"), ValueError)}, lambda v: MT.w2(X, Y, a=v), "a")
family("sliced_w2.projections", {"nonunit": (torch.ones(2, 3), ValueError), "nan": (torch.full((2, 3), NAN), ValueError),
                                 "shape": (torch.ones(3, 3) / 3**0.5, ValueError), "str": ("p", TypeError),
                                 "empty": (torch.ones(2, 0), ValueError)},
       lambda v: MT.sliced_w2(X, Y, projections=v), "projections")
family("sliced_w2.n_projections", BAD_COUNTS, lambda v: MT.sliced_w2(X, Y, n_projections=v), "n_projections")
family("sliced_w2.seed", BAD_SEEDS, lambda v: MT.sliced_w2(X, Y, seed=v), "seed")
family("mmd.bandwidths", {"nan": ([NAN], ValueError), "neg": ([-1.0], ValueError), "str": (["a"], TypeError),
                          "empty": ([], ValueError), "scalar": (1.0, TypeError), "string": ("0.5", TypeError)},
       lambda v: MT.mmd(X, Y, v), "bandwidths")
family("w2_report.seed", BAD_SEEDS, lambda v: MT.w2_report(X, M.Gaussian([0.0, 0.0], 1.0), seed=v), "seed")
case("w2_report.target_short", lambda: MT.w2_report(X, Y), ValueError, "target")
family("bures_w2.S0", {"nan": (NAN, ValueError), "asym": ([[1.0, 0.5], [0.0, 1.0]], ValueError),
                       "neg": ([[-1.0, 0.0], [0.0, 1.0]], ValueError), "str": ("s", TypeError),
                       "shape": (torch.eye(3), ValueError)},
       lambda v: MT.bures_w2([0.0, 0.0], v, [0.0, 0.0], 1.0), "cov")
family("bures_w2.m0", {"nan": ([NAN, 0.0], ValueError), "str": ("m", TypeError), "matrix": ([[0.0]], ValueError)},
       lambda v: MT.bures_w2(v, 1.0, [0.0, 0.0], 1.0), "mean")
case("bures_w2.dim", lambda: MT.bures_w2([0.0, 0.0], 1.0, [0.0], 1.0), ValueError, "dimension")
family("straightness.traj", {"nan": (torch.full((3, 2, 2), NAN), ValueError), "2d": (torch.zeros(3, 2), ValueError),
                             "one": (torch.zeros(1, 2, 2), ValueError), "int": (torch.zeros(3, 2, 2, dtype=torch.long), TypeError),
                             "list": ([[[0.0]]], TypeError)}, lambda v: MT.straightness(v), "traj")
family("straightness.times", {"shape": (torch.zeros(2), ValueError), "flat": (torch.zeros(3), ValueError),
                              "str": ("t", TypeError)}, lambda v: MT.straightness(torch.zeros(3, 2, 2), v), "times")
family("memorisation_ratio.train", BAD_POINTS, lambda v: MT.memorisation_ratio(X, v, Y), "train",
       only=["nan", "int", "dim3", "empty", "meta"])
family("histogram_error.bins", BAD_COUNTS, lambda v: MT.histogram_error(X, Y, bins=v), "bins")

# ------------------------------------------------------------------------------ Sinkhorn
family("sinkhorn.x0", BAD_POINTS, lambda v: sinkhorn(v, Y, 1.0), "x0")
family("sinkhorn.x1", BAD_POINTS, lambda v: sinkhorn(X, v, 1.0), "x1", only=["nan", "int", "dim3", "empty", "meta", "none"])
family("sinkhorn.eps", {**BAD_POSITIVE, "zero": (0.0, ValueError)}, lambda v: sinkhorn(X, Y, v), "eps")
family("sinkhorn.tol", {**BAD_POSITIVE, "zero": (0.0, ValueError)}, lambda v: sinkhorn(X, Y, 1.0, tol=v), "tol")
family("sinkhorn.max_iter", BAD_COUNTS, lambda v: sinkhorn(X, Y, 1.0, max_iter=v), "max_iter")
family("sinkhorn.check_every", BAD_COUNTS, lambda v: sinkhorn(X, Y, 1.0, check_every=v), "check_every")
family("sinkhorn.eps_scaling", {"big": (2.0, ValueError), "nan": (NAN, ValueError), "str": ("q", TypeError)},
       lambda v: sinkhorn(X, Y, 1.0, eps_scaling=v), "eps_scaling")
family("sinkhorn.on_fail", {"bad": ("ignore", ValueError), "none": (None, ValueError)},
       lambda v: sinkhorn(X, Y, 1.0, on_fail=v), "on_fail")
family("sinkhorn.normalize", {"str": ("yes", TypeError), "int": (1, TypeError)},
       lambda v: sinkhorn(X, Y, 1.0, normalize=v), "normalize")
family("sinkhorn.overrelax", {"str": ("yes", TypeError), "none": (None, TypeError)},
       lambda v: sinkhorn(X, Y, 1.0, overrelax=v), "overrelax")
family("sinkhorn.a", {"neg": (torch.tensor([-1.0] + [1.0] * 5), ValueError), "len": (torch.ones(4), ValueError),
                      "nan": (torch.full((6,), NAN), ValueError), "zero": (torch.zeros(6), ValueError),
                      "meta": (torch.ones(6, device="meta"), ValueError), "list": ([1.0] * 6, TypeError)},
       lambda v: sinkhorn(X, Y, 1.0, a=v), "a")
family("sinkhorn_cost.C", {"nan": (torch.full((3, 3), NAN), ValueError), "int": (torch.ones(3, 3, dtype=torch.long), TypeError),
                           "1d": (torch.ones(3), ValueError), "empty": (torch.ones(0, 3), ValueError),
                           "list": ([[1.0]], TypeError), "inf": (torch.full((2, 2), INF), ValueError)},
       lambda v: sinkhorn_cost(v, 1.0), "C")
case("sinkhorn.overflow_1e200", lambda: sinkhorn(X64 * 1e200, Y.double() * 1e200, 1.0), ValueError, "overflow")
case("sinkhorn.overflow_f32_1e30", lambda: sinkhorn(X * 1e30, Y * 1e30, 1.0), ValueError, "overflow")
case("sinkhorn.eps_below_resolution", lambda: sinkhorn(X64 * 1e30, Y.double() * 1e30, 1.0), ValueError, "eps")
case("sinkhorn.eps_below_resolution_f32", lambda: sinkhorn(X, Y, 1e-8, normalize=True), ValueError, "eps")
case("squared_distances.dim", lambda: squared_distances(X, torch.zeros(3, 3)), ValueError, "dimension")
case("squared_distances.meta", lambda: squared_distances(X, META), ValueError, "x1")
family("log_sinkhorn_step.eps", BAD_POSITIVE, lambda v: log_sinkhorn_step(torch.zeros(5), torch.zeros(6, 5), v, torch.zeros(5)), "eps")
case("log_sinkhorn_step.potential", lambda: log_sinkhorn_step(torch.zeros(4), torch.zeros(6, 5), 1.0, torch.zeros(5)),
     ValueError, "potential")
family("SinkhornResult.sample_pairs.n", BAD_COUNTS, lambda v: SK.sample_pairs(v), "n")
family("SinkhornResult.sample_pairs.seed", BAD_SEEDS, lambda v: SK.sample_pairs(3, seed=v), "seed")

# ------------------------------------------------------------------------------ grid
family("Grid.lo", {"nan": (NAN, ValueError), "inf": (-INF, ValueError), "str": ("a", TypeError)},
       lambda v: Grid(v, 1.0, 10), "lo")
case("Grid.order", lambda: Grid(1.0, -1.0, 10), ValueError, "hi")
family("Grid.n", {"small": (2, ValueError), "float": (10.5, TypeError), "str": ("10", TypeError)},
       lambda v: Grid(-1.0, 1.0, v), "n")
family("Grid.dim", {"three": (3, ValueError), "zero": (0, ValueError), "float": (1.5, TypeError)},
       lambda v: Grid(-1.0, 1.0, 10, dim=v), "dim")
case("Grid.lengths", lambda: Grid([-1.0, -1.0], [1.0], 10), ValueError, "length")
family("fortet.sigma", BAD_POSITIVE, lambda v: fortet(M.Gaussian([0.0], 1.0), M.Gaussian([0.0], 1.0), v, Grid(-3.0, 3.0, 10)),
       "sigma")
family("fortet.rho0", {"nan": (torch.full((10,), NAN), ValueError), "neg": (-torch.ones(10), ValueError),
                       "shape": (torch.ones(7), ValueError), "str": ("rho", TypeError), "int": (torch.ones(10, dtype=torch.long), TypeError),
                       "zero": (torch.zeros(10), ValueError), "dim": (M.Gaussian([0.0, 0.0], 1.0), ValueError)},
       lambda v: fortet(v, M.Gaussian([0.0], 1.0), 1.0, Grid(-3.0, 3.0, 10)), "rho0")
family("fortet.grid", {"str": ("g", TypeError), "none": (None, TypeError)},
       lambda v: fortet(M.Gaussian([0.0], 1.0), M.Gaussian([0.0], 1.0), 1.0, v), "grid")
family("fortet.on_fail", {"bad": ("loud", ValueError)},
       lambda v: fortet(M.Gaussian([0.0], 1.0), M.Gaussian([0.0], 1.0), 1.0, Grid(-3.0, 3.0, 10), on_fail=v), "on_fail")
family("GridBridge.drift.t", BAD_TIMES, lambda v: GRID.drift(X1D, v), "t")
family("GridBridge.drift.x", BAD_POINTS, lambda v: GRID.drift(v, 0.5), "x", only=["nan", "int", "list", "none", "empty", "dim3", "meta"])
family("GridBridge.log_density.t", {k: BAD_TIMES[k] for k in ("above", "below", "nan", "str", "none")},
       lambda v: GRID.log_density(v), "t")
case("GridBridge.log_density.many", lambda: GRID.log_density(torch.tensor([0.1, 0.2])), ValueError, "single")
family("GridBridge.start.n", BAD_COUNTS, lambda v: GRID.start(v), "n")
family("GridBridge.start.seed", BAD_SEEDS, lambda v: GRID.start(3, seed=v), "seed")
family("GridBridge.sample_plan.seed", BAD_SEEDS, lambda v: GRID.sample_plan(3, seed=v), "seed")

# ------------------------------------------------------------------------------ Gaussian bridge
family("GaussianBridge.sigma", {**BAD_POSITIVE, "zero": (0.0, ValueError)},
       lambda v: GaussianBridge(0.0, 1.0, 1.0, 1.0, v), "sigma")
family("GaussianBridge.c", {"nan": (NAN, ValueError), "inf": (INF, ValueError), "huge": (1e3, ValueError),
                            "huge_neg": (-1e3, ValueError), "str": ("1", TypeError), "none": (None, TypeError)},
       lambda v: GaussianBridge(0.0, 1.0, 1.0, 1.0, 1.0, c=v), "c")
family("GaussianBridge.S0", {"nan": (NAN, ValueError), "neg": (-1.0, ValueError), "zero": (0.0, ValueError),
                             "asym": ([[1.0, 0.5], [0.0, 1.0]], ValueError), "str": ("s", TypeError),
                             "bool": (True, TypeError), "none": (None, TypeError)},
       lambda v: GaussianBridge([0.0, 0.0], v, 1.0, 1.0, 1.0), "S0")
family("GaussianBridge.m1", {"nan": ([NAN, 0.0], ValueError), "str": ("m", TypeError), "dim": ([0.0, 0.0, 0.0], ValueError)},
       lambda v: GaussianBridge([0.0, 0.0], 1.0, v, 1.0, 1.0), "m1")
case("GaussianBridge.sigma_scale", lambda: GaussianBridge(0.0, 1.0, 1.0, 1.0, 1e160), ValueError, "sigma")
for meth in ("drift", "backward_drift", "score", "velocity"):
    family(f"GaussianBridge.{meth}.t", BAD_TIMES, lambda v, meth=meth: getattr(GB, meth)(X64, v), "t")
    family(f"GaussianBridge.{meth}.x", BAD_POINTS, lambda v, meth=meth: getattr(GB, meth)(v, 0.5), "x",
           only=["nan", "inf", "int", "list", "none", "empty", "dim3", "meta"])
family("GaussianBridge.mean.t", {k: BAD_TIMES[k] for k in ("above", "nan", "str", "col_above")}, lambda v: GB.mean(v), "t")
family("GaussianBridge.cov.t", {k: BAD_TIMES[k] for k in ("below", "inf", "none")}, lambda v: GB.cov(v), "t")
family("GaussianBridge.sample_plan.n", BAD_COUNTS, lambda v: GB.sample_plan(v), "n")
family("GaussianBridge.sample_plan.seed", BAD_SEEDS, lambda v: GB.sample_plan(3, seed=v), "seed")
family("GaussianBridge.sample_path.n_steps", BAD_COUNTS, lambda v: GB.sample_path(3, v), "n_steps")
family("GaussianBridge.start.seed", BAD_SEEDS, lambda v: GB.start(3, seed=v), "seed")
family("GaussianBridge.start.device", {"bad": ("gpu0", ValueError)}, lambda v: GB.start(3, device=v), "device")
family("monge_map.S1", {"nan": (NAN, ValueError), "neg": ([[-1.0, 0.0], [0.0, 1.0]], ValueError), "str": ("s", TypeError),
                        "dim": (torch.eye(3), ValueError)},
       lambda v: monge_map(torch.eye(2), v), "S")

# ------------------------------------------------------------------------------ references
family("Brownian.sigma", {**BAD_POSITIVE, "zero": (0.0, ValueError)}, lambda v: Brownian(v), "sigma")
family("OU.c", {"nan": (NAN, ValueError), "inf": (INF, ValueError), "huge": (1e3, ValueError), "str": ("1", TypeError),
                "none": (None, TypeError)}, lambda v: OU(c=v), "c")
family("OU.g", {**BAD_POSITIVE, "zero": (0.0, ValueError)}, lambda v: OU(g=v), "g")
family("VP.beta_min", BAD_POSITIVE, lambda v: VP(beta_min=v), "beta_min")
family("VP.beta_max", {**BAD_POSITIVE, "order": (0.01, ValueError)}, lambda v: VP(beta_max=v), "beta_max")
for ref_name, ref in (("Brownian", Brownian(0.5)), ("OU", OU(-1.0, 1.0)), ("VP", VP())):
    family(f"{ref_name}.drift.t", BAD_TIMES, lambda v, ref=ref: ref.drift(X, v), "t")
    family(f"{ref_name}.drift.x", BAD_POINTS, lambda v, ref=ref: ref.drift(v, 0.5), "x", only=["nan", "int", "list", "none", "meta"])
    family(f"{ref_name}.transition_sample.t", BAD_TIMES, lambda v, ref=ref: ref.transition_sample(X, 0.0, v), "t")
    family(f"{ref_name}.transition_sample.seed", BAD_SEEDS, lambda v, ref=ref: ref.transition_sample(X, 0.0, 0.5, seed=v), "seed")
    family(f"{ref_name}.bridge_sample.t", BAD_TIMES, lambda v, ref=ref: ref.bridge_sample(X, X, v), "t")
    family(f"{ref_name}.bridge_sample.x1", BAD_POINTS, lambda v, ref=ref: ref.bridge_sample(X, v, 0.5), "x1",
           only=["nan", "int", "dim3", "meta", "none"])
    family(f"{ref_name}.mean_coef.t", {k: BAD_TIMES[k] for k in ("above", "nan", "str", "col_above")},
           lambda v, ref=ref: ref.mean_coef(0.0, v), "t")
    for meth in ("backward_drift", "score", "start"):
        case(f"{ref_name}.{meth}.unavailable", (lambda ref=ref, meth=meth: getattr(ref, meth)(X, 0.5) if meth != "start"
                                                else ref.start(3)), NotImplementedError, "reference")
case("OU.transition_order", lambda: OU().transition_mean(X, 0.7, 0.2), ValueError, "s must be")
family("brownian_bridge_sample.sigma", {**BAD_POSITIVE, "zero": (0.0, ValueError)},
       lambda v: brownian_bridge_sample(X, X, 0.5, v), "sigma")
family("brownian_bridge_sample.t", BAD_TIMES, lambda v: brownian_bridge_sample(X, X, v), "t")
family("brownian_bridge_sample.seed", BAD_SEEDS, lambda v: brownian_bridge_sample(X, X, 0.5, seed=v), "seed")
case("brownian_bridge_sample.rows", lambda: brownian_bridge_sample(X, Y, 0.5), ValueError, "rows")
family("BrownianBridge.x1", {"nan": ([NAN, 0.0], ValueError), "str": ("x", TypeError), "none": (None, TypeError)},
       lambda v: BrownianBridge(v), "x1")
family("BrownianBridge.x0", {"nan": ([NAN, 0.0], ValueError), "dim": ([0.0, 0.0, 0.0], ValueError)},
       lambda v: BrownianBridge([1.0, 1.0], x0=v), "x0")
family("BrownianBridge.drift.t", {**BAD_TIMES, "end": (1.0, ValueError)}, lambda v: BB.drift(X, v), "t")
family("BrownianBridge.backward_drift.t", {"start": (0.0, ValueError), "col_start": (torch.zeros(6, 1), ValueError),
                                           "above": (1.5, ValueError)}, lambda v: BB.backward_drift(X, v), "t")
family("BrownianBridge.drift.x", BAD_POINTS, lambda v: BB.drift(v, 0.5), "x", only=["nan", "int", "dim3", "meta"])
case("BrownianBridge.no_x0.backward", lambda: BrownianBridge([1.0, 1.0]).backward_drift(X, 0.5), NotImplementedError, "x0=")
case("BrownianBridge.no_x0.start", lambda: BrownianBridge([1.0, 1.0]).start(3), NotImplementedError, "x0=")
case("BrownianBridge.start.n", lambda: BrownianBridge(torch.ones(3, 2), x0=torch.zeros(3, 2)).start(5), ValueError, "n")

# ------------------------------------------------------------------------------ bridge matching
family("brownian_bridge.t", BAD_TIMES, lambda v: brownian_bridge(X, X, v, 0.5), "t")
family("brownian_bridge.sigma", BAD_POSITIVE, lambda v: brownian_bridge(X, X, T, v), "sigma")
family("brownian_bridge.x0", BAD_POINTS, lambda v: brownian_bridge(v, X, T, 0.5), "x0", only=["nan", "int", "list", "meta", "empty"])
family("bridge_target.t", {**BAD_TIMES, "end": (torch.ones(6, 1), ValueError)}, lambda v: bridge_target(X, X, X, v), "t")
case("bridge_target.backward_end", lambda: bridge_target(X, X, X, torch.zeros(6, 1), "backward"), ValueError, "t = 0")
case("bridge_target.direction", lambda: bridge_target(X, X, X, T, "sideways"), ValueError, "direction")
family("matching_loss.t", BAD_TIMES, lambda v: matching_loss(TimeMLP(2), X, v, X), "t")
family("matching_loss.x_t", BAD_POINTS, lambda v: matching_loss(TimeMLP(2), v, T, X), "x_t", only=["nan", "int", "list", "none", "meta"])
case("matching_loss.net", lambda: matching_loss("net", X, T, X), TypeError, "net")
case("matching_loss.weight", lambda: matching_loss(TimeMLP(2), X, T, X, torch.ones(4)), ValueError, "weight")
case("matching_loss.target", lambda: matching_loss(TimeMLP(2), X, T, X[:, :1]), ValueError, "target")
family("couple.coupling", {"bad": ("magic", ValueError)}, lambda v: couple(X, X, v), "coupling")
family("couple.sigma", {"nan": (NAN, ValueError), "neg": (-1.0, ValueError), "str": ("1", TypeError)},
       lambda v: couple(X, X, "sinkhorn", sigma=v), "sigma")
family("couple.seed", BAD_SEEDS, lambda v: couple(X, X, "sinkhorn", sigma=1.0, seed=v), "seed")
family("couple.x1", BAD_POINTS, lambda v: couple(X, v, "independent"), "x1", only=["nan", "int", "dim3", "meta", "empty"])
family("MatchedBridge.sigma", BAD_POSITIVE, lambda v: MatchedBridge(TimeMLP(2), v), "sigma")
case("MatchedBridge.net", lambda: MatchedBridge("net", 1.0), TypeError, "forward_net")
family("MatchedBridge.drift.t", BAD_TIMES, lambda v: MB.drift(X, v), "t")
family("MatchedBridge.backward_drift.t", BAD_TIMES, lambda v: MB.backward_drift(X, v), "t")
family("MatchedBridge.drift.x", BAD_POINTS, lambda v: MB.drift(v, 0.5), "x", only=["nan", "int", "list", "none", "dim3", "meta"])
family("MatchedBridge.start.seed", BAD_SEEDS, lambda v: MB.start(3, seed=v), "seed")
case("MatchedBridge.no_backward", lambda: MatchedBridge(TimeMLP(2), 1.0).backward_drift(X, 0.5), NotImplementedError, "backward")
case("MatchedBridge.no_source", lambda: MatchedBridge(TimeMLP(2), 1.0).start(3), NotImplementedError, "source0")
family("EndpointDrift.t_gap", {**BAD_POSITIVE, "one": (1.0, ValueError)}, lambda v: EndpointDrift(TimeMLP(2), t_gap=v), "t_gap")
case("EndpointDrift.direction", lambda: EndpointDrift(TimeMLP(2), "up"), ValueError, "direction")
family("EndpointDrift.forward.t", BAD_TIMES, lambda v: EndpointDrift(TimeMLP(2))(X, v), "t")
_FIT = dict(steps=1, progress=False)
family("fit_bridge.sigma", BAD_POSITIVE, lambda v: fit_bridge(X, X, v, **_FIT), "sigma")
family("fit_bridge.t_gap", {**BAD_POSITIVE, "one": (1.0, ValueError)}, lambda v: fit_bridge(X, X, 1.0, t_gap=v, **_FIT), "t_gap")
family("fit_bridge.seed", BAD_SEEDS, lambda v: fit_bridge(X, X, 1.0, seed=v, **_FIT), "seed")
family("fit_bridge.batch_size", {"one": (1, ValueError), "float": (2.5, TypeError)},
       lambda v: fit_bridge(X, X, 1.0, batch_size=v, **_FIT), "batch_size")
family("fit_bridge.direction", {"bad": ("up", ValueError)}, lambda v: fit_bridge(X, X, 1.0, direction=v, **_FIT), "direction")
family("fit_bridge.coupling", {"bad": ("magic", ValueError)}, lambda v: fit_bridge(X, X, 1.0, coupling=v, **_FIT), "coupling")
family("fit_bridge.source0", {"nan": (torch.full((6, 2), NAN), ValueError), "str": ("data", TypeError), "int": (3, TypeError)},
       lambda v: fit_bridge(v, X, 1.0, **_FIT), "source0")
family("fit_bridge.parametrization", {"bad": ("score", ValueError)},
       lambda v: fit_bridge(X, X, 1.0, parametrization=v, **_FIT), "parametrization")
family("fit_bridge.sinkhorn_kwargs", {"list": ([1], TypeError)}, lambda v: fit_bridge(X, X, 1.0, sinkhorn_kwargs=v, **_FIT),
       "sinkhorn_kwargs")
family("imf.iterations", {"neg": (-1, ValueError), "float": (1.5, TypeError)}, lambda v: imf(X, X, 1.0, iterations=v, **_FIT),
       "iterations")
family("imf.pool", {"one": (1, ValueError)}, lambda v: imf(X, X, 1.0, pool=v, **_FIT), "pool")
family("imf.seed", BAD_SEEDS, lambda v: imf(X, X, 1.0, seed=v, **_FIT), "seed")
family("imf.sample_steps", BAD_COUNTS, lambda v: imf(X, X, 1.0, sample_steps=v, **_FIT), "sample_steps")
family("simulate.steps", BAD_COUNTS, lambda v: simulate(MB, X, steps=v), "steps")
family("simulate.x0", BAD_POINTS, lambda v: simulate(MB, v), "x", only=["nan", "int", "dim3", "meta"])

# ------------------------------------------------------------------------------ the sampler
family("sample.x", BAD_POINTS, lambda v: sample(GB, v), "x", only=["nan", "inf", "int", "list", "none", "empty", "3d", "meta"])
family("sample.steps", BAD_COUNTS, lambda v: sample(GB, X64, steps=v), "steps")
family("sample.seed", BAD_SEEDS, lambda v: sample(GB, X64, seed=v), "seed")
family("sample.t0", {"nan": (NAN, ValueError), "neg": (-0.5, ValueError), "str": ("0", TypeError), "none": (None, TypeError)},
       lambda v: sample(GB, X64, t0=v), "t0")
family("sample.t1", {"above": (1.5, ValueError), "inf": (INF, ValueError), "order": (0.0, ValueError)},
       lambda v: sample(GB, X64, t1=v), "t")
family("sample.method", {"bad": ("rk4", ValueError)}, lambda v: sample(GB, X64, method=v), "method")
family("sample.direction", {"bad": ("up", ValueError)}, lambda v: sample(GB, X64, direction=v), "direction")
family("sample.keep_traj", {"str": ("yes", TypeError)}, lambda v: sample(GB, X64, keep_traj=v), "keep_traj")
case("sample.bridge", lambda: sample(object(), X64), TypeError, "drift")
case("sample.unavailable", lambda: sample(Brownian(), X, direction="backward"), NotImplementedError, "backward")
family("generate.n", BAD_COUNTS, lambda v: generate(GB, v), "n")
family("generate.t_gap", {"one": (1.0, ValueError), "neg": (-0.1, ValueError), "nan": (NAN, ValueError), "str": ("0", TypeError)},
       lambda v: generate(GB, 4, t_gap=v), "t_gap")
family("generate.seed", BAD_SEEDS, lambda v: generate(GB, 4, seed=v), "seed")
family("generate.device", {"bad": ("gpu0", ValueError), "int": (2.5, TypeError)}, lambda v: generate(GB, 4, device=v), "device")
case("generate.bridge", lambda: generate("bridge", 4), TypeError, "bridge")
case("generate.no_start", lambda: generate(Brownian(), 4), NotImplementedError, "start")


@pytest.mark.parametrize("fn, exc, word", CASES)
def test_bad_input_is_refused_with_a_clear_message(fn, exc, word):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(exc) as info:
            fn()
    assert word.lower() in str(info.value).lower(), f"message does not name {word!r}: {info.value}"


def test_the_table_is_large():
    assert len(CASES) >= 500


# ------------------------------------------------------------------------------ numerical classes
def test_w2_is_exact_at_huge_and_tiny_coordinates():
    """Squared costs would overflow (1e200) or underflow (1e-200): W2 is rescaled exactly, not 0."""
    x, y = X64[:4], Y.double()[:4]
    base = MT.w2(x, y)
    for s in (1e200, 1e-200):
        assert math.isclose(MT.w2(x * s, y * s), s * base, rel_tol=1e-12)
        assert math.isclose(MT.sliced_w2(x * s, y * s), s * MT.sliced_w2(x, y), rel_tol=1e-12)
        assert math.isclose(MT.energy_distance(x * s, y * s), s * MT.energy_distance(x, y), rel_tol=1e-9)


def test_squared_distances_do_not_cancel_far_from_the_origin():
    x, y = X64 + 1e9, Y.double() + 1e9
    torch.testing.assert_close(squared_distances(x, y), squared_distances(X64, Y.double()), rtol=1e-6, atol=1e-6)


def test_float32_sinkhorn_reports_the_error_of_the_returned_plan():
    """ε / max C = 1e-4 in float32: the returned plan's own marginal error is what is reported."""
    gen = torch.Generator().manual_seed(0)
    x0, x1 = torch.randn(300, 2, generator=gen), torch.randn(300, 2, generator=gen) + 1
    res = sinkhorn(x0, x1, 1e-4, normalize=True, tol=1e-5)
    P = res.plan().double()
    a, b = res.a.double(), res.b.double()          # the float32 weights the plan is held to
    actual = float((P.sum(1) - a).abs().sum() + (P.sum(0) - b).abs().sum())
    assert math.isclose(res.error, actual, rel_tol=1e-6)
    assert res.converged == (actual <= 1e-5) and res.converged


def test_sinkhorn_stalls_loudly_below_its_reach():
    gen = torch.Generator().manual_seed(0)
    x0, x1 = torch.randn(300, 2, generator=gen, dtype=torch.float64), torch.randn(300, 2, generator=gen, dtype=torch.float64) + 1
    with pytest.raises(SinkhornConvergenceError, match="beyond this solver") as info:
        sinkhorn(x0, x1, 1e-6, normalize=True, tol=1e-6, max_iter=50_000, on_fail="raise")
    assert info.value.result.n_iter < 50_000 and math.isfinite(info.value.error)


def test_ou_at_its_fastest_rates_stays_finite_in_float32():
    for c in (20.0, -20.0):
        ou = OU(c=c, g=1.0)
        assert torch.isfinite(ou.bridge_sample(X, X, torch.full((6, 1), 0.5))).all()
        assert torch.isfinite(ou.transition_log_prob(X, X, 0.0, 1.0)).all()
        assert torch.isfinite(ou.bridge_var(0.5)).all()


def test_more_numerical_classes():
    """Huge parameters: refused, or computed exactly by a power-of-two rescaling."""
    assert math.isclose(MT.bures_w2([1e200], 1.0, [-1e200], 1.0), 2e200, rel_tol=1e-12)
    assert math.isclose(MT.memorisation_ratio(X64 * 1e200, Y.double() * 1e200, X64 * 1e200 + 1e199),
                        MT.memorisation_ratio(X64, Y.double(), X64 + 0.1), rel_tol=1e-9)
    with pytest.raises(ValueError, match="radius"):
        M.eight_gaussians(4, radius=1e308)
    with pytest.raises(ValueError, match="scale"):
        M.moons(4, scale=1e308)
    with pytest.raises(ValueError, match="straightness"):
        MT.straightness(torch.randn(3, 2, 2, dtype=torch.float64) * 1e200)
    with pytest.raises(ValueError, match="beta_max"):
        VP(beta_max=1e308)
    with pytest.raises(ValueError, match="sigma"):
        Brownian(1e200)
    with pytest.raises(ValueError, match="eps"):
        sinkhorn(X, Y, 1e300)
    with pytest.raises(ValueError, match="hi"):
        Grid(-1e308, 1e308, 10)
    half = GB.drift(X.half(), 0.5)                    # half precision: computed in float32, returned in half
    assert half.dtype == torch.float16 and torch.isfinite(half).all()


def test_good_inputs_still_work():
    assert M.moons(10, seed=2**63).shape == (10, 2)
    assert M.Toy2D("spiral", scale=(1, 8)).sample(5).shape == (5, 2)
    assert GB.start(4).shape == (4, 2) and GRID.start(4).shape == (4, 1)
    assert MB.start(4).shape == (4, 2) and BB.start(3).shape == (3, 2)
    assert generate(GB, 8, steps=4).x.shape == (8, 2)
    assert torch.isfinite(BB.drift(X, torch.full((6, 1), 0.999))).all()
    assert MT.sliced_w2(X, Y, projections=torch.eye(2)) > 0
