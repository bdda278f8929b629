"""Why latent, measured where the truth is known: learned bridges in latent vs ambient space (Notebook 04).

The pipeline of one run, on data from :class:`lsbcore.manifold.ManifoldData` (x = Q[z, h(z)] ∈ R^D):

    M shifted pre-training points ─► autoencoder (E, Dec), latent dimension d*        (once per family)
    latent:  n target points ─► E ─► codes ─► learned SF drift ─► sampler ─► Dec ─► points in R^D
    ambient: n target points ─► rescale ───► learned SF drift ─► sampler ─► inverse ─► points in R^D
    oracle:  n target points ─► true intrinsic coordinates ─► learned SF drift ─► sampler ─► embed
             read back: W2 in the intrinsic coordinates, distance off the manifold, memorisation

Every space uses the *same* estimator with the *same* budget (:class:`Budget`: network width and
depth, Adam steps, batch, learning rate, σ, δ, sampler steps): the Schrödinger–Föllmer bridge
δ0 → p̂_n whose drift is learned by least squares from the n samples
(:func:`lsbcore.bridges.follmer.fit_follmer`, endpoint parametrisation). It starts from a point, so
no start law has to be approximated, and its sampler never sees the training points: whatever it
copies, the network learned. The latent codes are standardised (variance 1 per coordinate, total d*)
and the ambient data are rescaled to the same total variance d* (:class:`AmbientSpace`), so the
manifold has the same size in every space and every D and σ means the same along it.

:func:`rate_sweep` runs the grid (space × D × d* × n × seed) and returns one row per run;
:func:`noise_floors` gives each metric's own floor; :func:`lipschitz` estimates the decoder's
Lipschitz constant (it multiplies every latent error in the bound); ``bench/latent_rates.py`` runs the
full sweep and ships its table to ``data/latent_rates.csv``, which :mod:`lsbcore.rates_table` reads
back (slopes, the verdict). The spaces live in :mod:`lsbcore.rates_spaces`; both modules' names are
re-exported here. docs/theory.md §4.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Optional, Sequence

import numpy as np
import torch

from .bridges.follmer import fit_follmer, origin
from .manifold import SPANS, ManifoldData
from .metrics import memorisation_ratio, sliced_w2, w2
from .nets import TimeMLP
from .rates_spaces import AMBIENT_SCALES, AmbientSpace, ManifoldAutoencoder, OracleSpace
from .rates_table import COLUMN_TYPES, load_table, metric_curves, samples_needed, summarise, verdict
from .sde import sample
from .train import fit
from .utils import check_int, check_points, check_positive, first_parameter, generator, resolve_device

__all__ = ["Budget", "ManifoldAutoencoder", "AmbientSpace", "OracleSpace", "AMBIENT_SCALES", "fit_manifold_autoencoder", "learned_bridge",
           "generate", "evaluate", "noise_floors", "lipschitz", "rate_sweep", "pretrain_sweep", "stop_sweep",
           "target_sample", "SPACES", "COLUMN_TYPES", "metric_curves", "summarise", "samples_needed", "verdict", "load_table"]

SPACES = ("latent", "ambient", "oracle")


@dataclass(frozen=True)
class Budget:
    """The training and sampling budget, the same in both spaces (Notebook 04 §2).

    ``steps`` Adam steps of batch ``batch_size`` at learning rate ``lr`` (cosine decay), a TimeMLP of
    ``width`` × ``depth``, the bridge's σ, t ~ U[0, 1 − t_gap] in training, and ``sample_steps``
    Euler–Maruyama steps on [0, 1 − t_gap] (early stopping δ = t_gap). Pre-training: ``ae_steps``
    steps on M shifted points (``pretrain_size``) with ``shift``.
    """

    steps: int = 1500
    batch_size: int = 256
    lr: float = 2e-3
    width: int = 128
    depth: int = 3
    sigma: float = 1.0
    t_gap: float = 0.01
    sample_steps: int = 100
    ae_steps: int = 2000
    pretrain_size: int = 20_000
    shift: float = 0.3

    def __post_init__(self):
        for name in ("steps", "batch_size", "width", "depth", "sample_steps", "ae_steps", "pretrain_size"):
            check_int(getattr(self, name), name)
        check_positive(self.lr, "lr")
        check_positive(self.sigma, "sigma")
        check_positive(self.shift, "shift", allow_zero=True)
        if not 0 < self.t_gap < 1:
            raise ValueError(f"t_gap must be in (0, 1), got {self.t_gap}")


def _check_data(data) -> ManifoldData:
    if not isinstance(data, ManifoldData):
        raise TypeError(f"data must be a lsbcore.manifold.ManifoldData, got {type(data).__name__}")
    return data


def _check_budget(budget) -> Budget:
    if not isinstance(budget, Budget):
        raise TypeError(f"budget must be a lsbcore.rates.Budget, got {type(budget).__name__}")
    return budget


def fit_manifold_autoencoder(data: ManifoldData, budget: Budget = Budget(), *, seed: int = 0,
                             progress: bool = False) -> ManifoldAutoencoder:
    """Pre-train a :class:`ManifoldAutoencoder` with latent dimension d* on M points of the shifted law.

    M = ``budget.pretrain_size`` points of p̃ (``data.sample(M, shift=budget.shift)``), mean squared
    reconstruction error, ``budget.ae_steps`` Adam steps of batch 256 in the shared loop
    :func:`lsbcore.train.fit` (EMA weights kept). The pre-training data are a fixed finite sample: the
    paper's M. Same arguments → same weights (CPU).
    """
    _check_data(data)
    _check_budget(budget)
    x = data.sample(budget.pretrain_size, seed=generator(seed + 7919), shift=budget.shift)
    model = ManifoldAutoencoder(data.ambient_dim, data.intrinsic_dim, seed=seed)
    model._set_scale(x)
    xs = (x - model.x_mean) / model.x_scale

    def loss_fn(m, step, gen):
        xb = xs[torch.randint(0, xs.shape[0], (256,), generator=gen)]
        return ((m.decoder(m.encoder(xb)) - xb) ** 2).mean()

    hist = fit(model, loss_fn, budget.ae_steps, lr=2e-3, seed=seed, ema=0.995, schedule="cosine",
               progress=progress, desc=f"autoencoder D={data.ambient_dim} d*={data.intrinsic_dim}")
    model.load_state_dict(hist.ema.state_dict())
    model.eval()
    with torch.no_grad():
        codes = model.encoder(xs)
        model.latent_mean.copy_(codes.mean(0))
        model.latent_scale.copy_(codes.std(0).clamp_min(1e-6))
    model.history = hist.losses
    return model


# ------------------------------------------------------------------------------------ one bridge
def learned_bridge(codes, budget: Budget = Budget(), *, seed: int = 0, progress: bool = False):
    """The Schrödinger–Föllmer bridge δ0 → p̂_n with its drift learned from ``codes`` (n, k) by least squares.

    :func:`lsbcore.bridges.follmer.fit_follmer` with a TimeMLP of the budget's width and depth, the
    endpoint parametrisation (the network predicts X1, the drift is (X̂1 − x)/(1 − t): the same
    minimiser, a better-conditioned regression) and a cosine learning-rate schedule. It trains
    where ``codes`` live (``codes.to(dev)`` for a GPU).
    """
    codes = check_points(codes, "codes").float()
    _check_budget(budget)
    net = TimeMLP(codes.shape[1], width=budget.width, depth=budget.depth, seed=seed).to(codes.device)
    return fit_follmer(codes, budget.sigma, steps=budget.steps, batch_size=budget.batch_size, net=net, lr=budget.lr,
                       t_gap=budget.t_gap, seed=seed, progress=progress, parametrization="endpoint",
                       schedule="cosine", log_every=500)


def generate(space, bridge, n: int, budget: Budget = Budget(), *, t_gap: Optional[float] = None, seed: int = 0):
    """``n`` points in R^D: run ``bridge`` from the origin to 1 − t_gap, then ``space.decode``.

    The bridge runs on its network's device; the codes come back to the CPU to be decoded."""
    n = check_int(n, "n")
    _check_budget(budget)
    t_gap = budget.t_gap if t_gap is None else check_positive(t_gap, "t_gap")
    if t_gap >= 1:
        raise ValueError(f"t_gap must be in (0, 1), got {t_gap}")
    if not (callable(getattr(space, "decode", None)) and isinstance(getattr(space, "latent_dim", None), int)):
        raise TypeError(f"space must have .latent_dim and .decode (an autoencoder or AmbientSpace), "
                        f"got {type(space).__name__}")
    p = first_parameter(getattr(bridge, "forward_net", None))
    x0 = origin(n, space.latent_dim, dtype=torch.float32, device=p.device if p is not None else None)
    codes = sample(bridge, x0, steps=budget.sample_steps, t1=1.0 - t_gap, seed=seed).x.cpu()
    with torch.no_grad():
        return space.decode(codes)


def evaluate(data: ManifoldData, x, train, *, reference_size: int = 10_000, exact_size: int = 2000,
             seed: int = 0) -> dict:
    """The errors of Notebook 04 for generated points ``x`` (m, D) of a bridge fitted to ``train``.

    - ``sw2``: sliced W2 (256 directions) between the intrinsic coordinates of ``x`` and
      ``reference_size`` fresh draws of the true intrinsic law: the headline error (its noise floor
      with 10,000 points is ≈ 0.02, well below the errors; :func:`noise_floors`);
    - ``w2``: exact W2 (POT) on the first ``exact_size`` points against as many fresh draws
      (sharper in every direction, but its floor at 2,000 points is ≈ 0.2 for d* = 2);
    - ``off``: the mean distance of ``x`` to the manifold (:meth:`ManifoldData.off_manifold`);
    - ``memo``: the memorisation ratio in intrinsic coordinates of the first ``exact_size`` points,
      against fresh population points (≈ 1: as far from the training points as new data; → 0: copies).
    """
    _check_data(data)
    x = check_points(x, "x", dim=data.ambient_dim)
    train = check_points(train, "train", dim=data.ambient_dim)
    reference_size, exact_size = check_int(reference_size, "reference_size", minimum=2), check_int(exact_size, "exact_size", minimum=2)
    u = data.intrinsic(x)
    gen = generator(seed + 104729)
    z_ref = data.sample_intrinsic(reference_size, seed=gen)
    fresh = data.intrinsic(data.sample(1000, seed=gen, dtype=torch.float64))
    m = min(exact_size, u.shape[0], z_ref.shape[0])
    return dict(sw2=sliced_w2(u, z_ref, seed=seed), w2=w2(u[:m], z_ref[:m]), off=float(data.off_manifold(x).mean()),
                memo=memorisation_ratio(u[:m], data.intrinsic(train), fresh))


def noise_floors(data: ManifoldData, *, size: int = 10_000, train_size: int = 4096,
                 seeds: Sequence[int] = (0, 1, 2)) -> dict:
    """Each metric of :func:`evaluate` on *exact* samples of the population: what a perfect generator scores.

    ``size`` population points scored against a ``train_size`` training set, the same way as the
    generated points (so ``sw2`` and ``w2`` are the metrics' sampling noise, ``off`` is 0 without
    noise, ``memo`` ≈ 1). Means over ``seeds``.
    """
    _check_data(data)
    size, train_size = check_int(size, "size", minimum=2), check_int(train_size, "train_size")
    seeds = [check_int(s, "seeds", minimum=0) for s in seeds]
    if not seeds:
        raise ValueError("seeds must name at least one seed")
    rows = [evaluate(data, data.sample(size, seed=generator(10_000 + s)),
                     data.sample(train_size, seed=generator(20_000 + s)), reference_size=size, seed=s)
            for s in seeds]
    return {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}


def lipschitz(decoder, codes, *, pairs: int = 2000, seed: int = 0) -> dict:
    """Estimates of the decoder's Lipschitz constant near the codes (it multiplies every latent error).

    ``jacobian``: the largest spectral norm of the Jacobian of ``decoder`` at the given ``codes``
    (a lower bound of the global constant, exact for a linear map), and its 95th percentile;
    ``secant``: the largest ratio ‖D(a) − D(b)‖/‖a − b‖ over ``pairs`` random pairs of codes.
    ``decoder``: a :class:`ManifoldAutoencoder` or a function of codes (vmap-able: no data-dependent checks).
    """
    codes = check_points(codes, "codes").float()
    f = getattr(decoder, "unchecked_decode", None) or getattr(decoder, "decode", decoder)
    if not callable(f):
        raise TypeError(f"decoder must be an autoencoder or a function of codes, got {type(decoder).__name__}")
    pairs = check_int(pairs, "pairs")
    jac = torch.func.vmap(torch.func.jacrev(lambda z: f(z[None])[0]))(codes)      # (n, D, d*)
    norms = torch.linalg.matrix_norm(jac.detach().double(), ord=2)
    gen = generator(seed)
    i = torch.randint(0, codes.shape[0], (pairs,), generator=gen)
    j = torch.randint(0, codes.shape[0], (pairs,), generator=gen)
    keep = i != j
    with torch.no_grad():
        num = (f(codes[i[keep]]) - f(codes[j[keep]])).double().norm(dim=1)
    den = (codes[i[keep]] - codes[j[keep]]).double().norm(dim=1).clamp_min(1e-12)
    return dict(jacobian=float(norms.max()), jacobian_p95=float(norms.quantile(0.95)), secant=float((num / den).max()))


# -------------------------------------------------------------------------------------- the sweeps
def target_sample(data: ManifoldData, n: int, seed: int) -> torch.Tensor:
    """The seed's target sample: its first n points are the training set of every run with that seed
    (so the training sets of one seed are nested in n)."""
    return data.sample(check_int(n, "n"), seed=generator(1_000_003 * (seed + 1)))


def _space(name: str, data: ManifoldData, train, ae, ambient_scale: str):
    """The space a run's bridge works in (see :func:`rate_sweep`)."""
    if name == "latent":
        return ae
    if name == "oracle":
        return OracleSpace(data, train)
    return AmbientSpace(train, scale=ambient_scale,
                        total_variance=data.intrinsic_dim if ambient_scale == "manifold" else None)


def _family_runs(D: int, d: int, seed: int, ns: Sequence[int], budget: Budget, spaces: Sequence[str], n_gen: int,
                 family_seed: int, ambient_scale: str = "manifold", span: str = "full", device=None) -> list:
    """All runs of one (D, d*, seed): one autoencoder, then every n and space (see :func:`rate_sweep`)."""
    data = ManifoldData(D, d, seed=family_seed, span=span)
    target = target_sample(data, max(ns), seed)
    ae, extra = None, {}
    if "latent" in spaces:
        ae = fit_manifold_autoencoder(data, budget, seed=seed)
        pop = data.sample(2000, seed=generator(77 + seed))
        with torch.no_grad():
            codes = ae.encode(pop)
            extra = dict(recon=float((ae.decode(codes) - pop).norm(dim=1).mean()))
        extra["lip"] = lipschitz(ae, codes[:500], seed=seed)["jacobian"]
    rows = []
    nan = float("nan")
    for n in ns:
        train = target[:n]
        for space_name in spaces:
            space = _space(space_name, data, train, ae, ambient_scale)
            tic = time.perf_counter()
            with torch.no_grad():
                codes = space.encode(train)
            bridge = learned_bridge(codes if device is None else codes.to(device), budget, seed=seed)
            secs = time.perf_counter() - tic
            x = generate(space, bridge, n_gen, budget, seed=seed)
            rows.append(dict(space=space_name, D=D, d=d, n=n, seed=seed, **evaluate(data, x, train, seed=seed),
                             train_s=secs, recon=extra.get("recon", nan) if space_name == "latent" else nan,
                             lip=extra.get("lip", nan) if space_name == "latent" else nan))
    return rows


def _run_task(args):
    torch.set_num_threads(1)
    return _family_runs(*args)


def rate_sweep(ambient_dims: Sequence[int], intrinsic_dims: Sequence[int], ns: Sequence[int], seeds: Sequence[int],
               budget: Budget = Budget(), *, spaces: Sequence[str] = SPACES, n_gen: int = 10_000, family_seed: int = 0,
               ambient_scale: str = "manifold", span: str = "full", jobs: int = 1, progress: bool = False,
               log=None, device=None) -> list:
    """Error against n for learned bridges in latent and ambient space (Notebook 04 §2–3).

    For every D in ``ambient_dims``, d* in ``intrinsic_dims`` (the family ``ManifoldData(D, d*,
    seed=family_seed, span=span)``) and seed: one autoencoder pre-trained on M shifted points
    (:func:`fit_manifold_autoencoder`); then for every n in ``ns`` the first n points of the seed's
    target sample are the training set, a bridge is learned in each space with the same ``budget``
    (:func:`learned_bridge`) and ``n_gen`` generated points are scored by :func:`evaluate`.
    Spaces: ``"latent"`` (the autoencoder's codes), ``"ambient"`` (:class:`AmbientSpace` with
    ``ambient_scale``) and ``"oracle"`` (:class:`OracleSpace`, the true intrinsic coordinates: it does
    not depend on D, so it runs at the smallest D only).
    Returns one dict per run: ``space, D, d, n, seed, sw2, w2, off, memo, train_s`` and, for latent
    runs, ``recon`` (the autoencoder's mean reconstruction error on population points) and ``lip``
    (:func:`lipschitz`'s Jacobian estimate). ``jobs`` > 1 runs the (D, d*, seed) groups in that many
    processes (one thread each; the rows are the same as with ``jobs=1``). ``log`` (a callable taking a
    string) receives one line per finished group. ``device`` (None: the CPU) is where the bridges are
    learned and sampled; the autoencoders, the data and the metrics (float64) stay on the CPU.
    """
    device = None if device is None else str(resolve_device(device))
    ambient_dims = [check_int(D, "ambient_dims") for D in ambient_dims]
    intrinsic_dims = [check_int(d, "intrinsic_dims") for d in intrinsic_dims]
    ns = [check_int(n, "ns", minimum=2) for n in ns]
    jobs = check_int(jobs, "jobs")
    _check_budget(budget)
    seeds = [check_int(s, "seeds", minimum=0) for s in seeds]
    if not (ambient_dims and intrinsic_dims and ns and seeds):
        raise ValueError("ambient_dims, intrinsic_dims, ns and seeds must be non-empty")
    for sp in spaces:
        if sp not in SPACES:
            raise ValueError(f"spaces must be among {SPACES}, got {sp!r}")
    if ambient_scale not in AMBIENT_SCALES:
        raise ValueError(f"ambient_scale must be one of {AMBIENT_SCALES}, got {ambient_scale!r}")
    if span not in SPANS:
        raise ValueError(f"span must be one of {SPANS}, got {span!r}")
    for D in ambient_dims:
        for d in intrinsic_dims:
            if D < 2 * d:
                raise ValueError(f"every D must be ≥ 2·d*: D={D}, d*={d}")
    tasks = [(D, d, s, ns, budget, tuple(sp for sp in spaces if sp != "oracle" or D == min(ambient_dims)), n_gen,
              family_seed, ambient_scale, span, device)
             for D in ambient_dims for d in intrinsic_dims for s in seeds]
    if jobs > 1:
        import multiprocessing as mp

        pool = mp.get_context("spawn").Pool(min(jobs, len(tasks)))
        results = pool.imap(_run_task, tasks)
    else:
        pool, results = None, map(_run_task, tasks)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(tasks), desc="rate sweep (D, d*, seed)", leave=False)
    rows = []
    try:
        for task, group in zip(tasks, results):
            rows += group
            if log is not None:
                D, d, s = task[:3]
                log(f"D={D:3d} d*={d} seed={s}: " + "  ".join(
                    f"{r['space'][:3]} n={r['n']} SW2 {r['sw2']:.3f}" for r in group if r["n"] in (min(ns), max(ns))))
            if bar is not None:
                bar.update()
    finally:
        if pool is not None:
            pool.close()
            pool.join()
        if bar is not None:
            bar.close()
    return rows


def pretrain_sweep(data: ManifoldData, sizes: Sequence[int], shifts: Sequence[float], *, n: int = 4096,
                   budget: Budget = Budget(), seed: int = 0, n_gen: int = 10_000) -> list:
    """The pre-training term: the latent pipeline's error against M and the shift (Notebook 04 §4).

    For every pre-training size M in ``sizes`` and shift in ``shifts``: pre-train the autoencoder on
    M shifted points, learn the latent bridge from n target points, and score it. Returns rows with
    ``M, shift, recon, sw2, w2, off, memo, lip``.
    """
    _check_data(data)
    _check_budget(budget)
    rows = []
    target = target_sample(data, n, seed)
    pop = data.sample(2000, seed=generator(77 + seed))
    for M in sizes:
        for shift in shifts:
            b = Budget(**{**asdict(budget), "pretrain_size": check_int(M, "sizes"), "shift": float(shift)})
            ae = fit_manifold_autoencoder(data, b, seed=seed)
            with torch.no_grad():
                codes = ae.encode(target)
                recon = float((ae.decode(ae.encode(pop)) - pop).norm(dim=1).mean())
            x = generate(ae, learned_bridge(codes, b, seed=seed), n_gen, b, seed=seed)
            rows.append(dict(M=M, shift=float(shift), recon=recon, **evaluate(data, x, target, seed=seed),
                             lip=lipschitz(ae, codes[:500], seed=seed)["jacobian"]))
    return rows


def stop_sweep(data: ManifoldData, t_gaps: Sequence[float], *, n: int = 4096, budget: Budget = Budget(),
               seed: int = 0, n_gen: int = 10_000, train_gap: Optional[float] = None) -> list:
    """Early stopping: the error against δ for one latent and one ambient bridge (Notebook 04 §4).

    Both bridges are trained once on t ~ U[0, 1 − ``train_gap``] (default: the smallest δ) and
    sampled on [0, 1 − δ] for each δ in ``t_gaps`` with the budget's number of steps. A large δ
    leaves the noise σ√(δ(1 − δ)) per coordinate (the σ√(δ d*) term of the bound, d* → D in ambient
    space); a small δ asks the sampler to follow a drift that grows like 1/(1 − t).
    Returns rows with ``space, t_gap, sw2, w2, off, memo``.
    """
    _check_data(data)
    _check_budget(budget)
    t_gaps = [check_positive(g, "t_gaps") for g in t_gaps]
    if not t_gaps or max(t_gaps) >= 1:
        raise ValueError(f"t_gaps must be a non-empty list of values in (0, 1), got {t_gaps}")
    gap = min(t_gaps) if train_gap is None else check_positive(train_gap, "train_gap")
    if gap >= 1:
        raise ValueError(f"train_gap must be in (0, 1), got {gap}")
    b = Budget(**{**asdict(budget), "t_gap": gap})
    target = target_sample(data, n, seed)
    ae = fit_manifold_autoencoder(data, b, seed=seed)
    rows = []
    for space_name, space in (("latent", ae), ("ambient", AmbientSpace(target, total_variance=data.intrinsic_dim))):
        with torch.no_grad():
            codes = space.encode(target)
        bridge = learned_bridge(codes, b, seed=seed)
        for g in t_gaps:
            x = generate(space, bridge, n_gen, b, t_gap=g, seed=seed)
            rows.append(dict(space=space_name, t_gap=g, **evaluate(data, x, target, seed=seed)))
    return rows


def budget_dict(budget: Budget) -> dict:
    """The budget as a plain dict (for the CSV header and the notebook's table)."""
    return asdict(budget)
