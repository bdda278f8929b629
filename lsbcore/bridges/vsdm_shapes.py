"""The VSDM experiments of notebook 06 and ``bench/vsdm.py``: data, models, one training recipe, and
the shipped checkpoints.

* :data:`SHAPES` — the paper's anisotropic 2-D sets (spiral stretched ×8 in y, checkerboard ×6 in x)
  and the Gaussian of its consistency check, N([−8, 2], [[1, 1], [1, 5]]).
* :data:`RECIPE` — the training recipe shared by every model (same network, steps, batch, learning
  rate schedule, EMA, seed), so that VSDM and the VP-SDE baselines differ only in the forward process.
* :data:`MODELS` — VP-SDE at β_max = 10 and 20, VSDM at β_max = 10 with constant A and with a
  piecewise-constant A_t (4 pieces).
* :func:`train` trains one (shape, model, seed); :func:`save` / :func:`load` write and read it with a
  checksum; :data:`SHIPPED_VSDM` lists the files in ``data/`` that notebook 06 loads (rebuilt by
  ``python -m lsbcore rebuild-data``). docs/theory.md §6.
"""
from __future__ import annotations

from pathlib import Path

import torch

from ..checkpoint import load_checkpoint, save_checkpoint
from ..marginals import checkerboard, spiral
from ..utils import check_int, check_seed
from .vsdm import VSDM, LinearForward
from .vsdm_fit import VSDMResult, fit_vsdm

__all__ = ["SHAPES", "GAUSS_MEAN", "GAUSS_COV", "RECIPE", "GAUSS_RECIPE", "MODELS", "N_TRAIN", "train", "save",
           "load", "SHIPPED_VSDM", "shipped_vsdm", "shipped_bench", "summarise"]

GAUSS_MEAN = torch.tensor([-8.0, 2.0], dtype=torch.float64)
GAUSS_COV = torch.tensor([[1.0, 1.0], [1.0, 5.0]], dtype=torch.float64)


def _gaussian(n: int, seed) -> torch.Tensor:
    gen = torch.Generator().manual_seed(check_seed(seed))
    z = torch.randn(n, 2, generator=gen, dtype=torch.float64)
    return (GAUSS_MEAN + z @ torch.linalg.cholesky(GAUSS_COV).T).float()


#: name → sampler ``(n, seed) → (n, 2)`` float32 points
SHAPES = {
    "spiral": lambda n, seed: spiral(n, seed=seed, scale=(1, 8)),
    "checkerboard": lambda n, seed: checkerboard(n, seed=seed, scale=(6, 1)),
    "gaussian": _gaussian,
}
#: training points per model (fresh target points for scoring come from another seed)
N_TRAIN = 20_000

#: the recipe of every model on the shapes: a width-128 TimeMLP (3 hidden layers, Fourier time
#: features), 20,000 Adam steps of batch 256, lr 2e-3 with a cosine decay, EMA 0.999; for VSDM, A is
#: frozen at 0 for 2,000 steps, then takes a stochastic-approximation step every 10 network steps
#: (1,300 A-steps, γ_k = 0.02 (1 + k/10)^−0.6, 256 backward paths of 20 steps each), and the network
#: trains alone on the final A for the last 5,000 steps.
RECIPE = dict(steps=20_000, batch_size=256, width=128, depth=3, lr=2e-3, schedule="cosine", ema=0.999,
              warmup=2_000, freeze=5_000, a_every=10, a_lr=0.02, a_decay=0.6, a_paths=256, a_steps=20)
#: the Gaussian check (constant β = 4, as the paper): a smaller network, 6,000 steps, ζ = 1 (upstream's
#: choice there, "since the duality is attainable")
GAUSS_RECIPE = dict(steps=6_000, batch_size=256, width=64, depth=3, lr=2e-3, schedule="cosine", ema=0.999,
                    warmup=1_000, freeze=1_000, a_every=10, a_lr=0.02, a_decay=0.6, a_paths=256, a_steps=20,
                    beta_min=4.0, beta_max=4.0, adaptive=True, zeta=1.0)

#: model name → the arguments of ``fit_vsdm`` that make it (ζ = 0.85: upstream's value for few-NFE
#: generation; notebook 06 shows the ablation ζ ∈ {0.75, 0.85, 1})
MODELS = {
    "VP-10": dict(adaptive=False, beta_max=10.0),
    "VP-20": dict(adaptive=False, beta_max=20.0),
    "VSDM-10": dict(adaptive=True, beta_max=10.0, zeta=0.85),
    "VSDM-10 A_t": dict(adaptive=True, beta_max=10.0, zeta=0.85, pieces=4),
}


def _config(shape: str, model: str, seed: int, override: dict) -> dict:
    if shape not in SHAPES:
        raise ValueError(f"shape must be one of {sorted(SHAPES)}, got {shape!r}")
    if shape == "gaussian":
        if model != "VSDM":
            raise ValueError(f"the Gaussian check trains model 'VSDM' only, got {model!r}")
        return {**GAUSS_RECIPE, **override, "seed": check_seed(seed)}
    if model not in MODELS:
        raise ValueError(f"model must be one of {sorted(MODELS)}, got {model!r}")
    return {**RECIPE, **MODELS[model], **override, "seed": check_seed(seed)}


def train(shape: str, model: str, seed: int = 0, *, progress: bool = True, **override) -> VSDMResult:
    """Train ``model`` (a key of :data:`MODELS`, or ``"VSDM"`` for the Gaussian) on :data:`N_TRAIN`
    points of ``shape`` drawn with ``seed``, by :data:`RECIPE` (:data:`GAUSS_RECIPE` for the Gaussian)
    with ``override`` on top. The result carries ``.config`` (what was run). Notebook 06 §2."""
    cfg = _config(shape, model, seed, override)
    data = SHAPES[shape](N_TRAIN, cfg["seed"])
    res = fit_vsdm(data, progress=progress, **cfg)
    res.config = {"shape": shape, "model": model, **cfg}
    return res


def save(result: VSDMResult, path, *, digest: bool = True) -> Path:
    """Write a trained model (network, forward, A's history, losses, config) with
    :func:`lsbcore.checkpoint.save_checkpoint` (``digest=False`` for files a manifest records: those
    leave out the training wall time, so that a rebuild reproduces the committed bytes)."""
    if not isinstance(result, VSDMResult) or not hasattr(result, "config"):
        raise TypeError("result must be a VSDMResult returned by lsbcore.bridges.vsdm_shapes.train")
    b = result.bridge
    state = {"net": {k: v.detach().cpu().contiguous() for k, v in b.net.state_dict().items()},
             "forward": {k: v.detach().cpu().contiguous() for k, v in b.forward.state_dict().items()},
             "A_history": torch.stack(result.A_history).cpu(), "losses": torch.tensor(result.losses)}
    if digest:
        state["seconds"] = torch.tensor(float(result.seconds), dtype=torch.float64)
    return save_checkpoint({"what": "vsdm", "config": dict(result.config), "state": state}, path, digest=digest)


def _rebuild_bridge(cfg: dict, state: dict) -> VSDM:
    from ..nets import TimeMLP

    kw = dict(beta_min=cfg.get("beta_min", 0.1), beta_max=cfg["beta_max"], beta_r=cfg.get("beta_r", 1.7))
    if cfg.get("pieces", 1) > 1:
        from .vsdm_time import TimeVaryingForward

        fwd = TimeVaryingForward(2, pieces=cfg["pieces"], **kw)
    else:
        fwd = LinearForward(2, **kw)
    fwd.load_state_dict(state["forward"])
    fwd.requires_grad_(False)
    net = TimeMLP(2, width=cfg["width"], depth=cfg["depth"])
    net.load_state_dict(state["net"])
    return VSDM(fwd, net.eval(), t_gap=cfg.get("t_gap", 1e-3))


def load(path, *, sha256: str | None = None) -> VSDMResult:
    """Read a model written by :func:`save` (checked: its own digest, or ``sha256`` from a manifest)."""
    ck = load_checkpoint(path, sha256=sha256)
    if ck.get("what") != "vsdm" or not {"config", "state"} <= set(ck):
        raise ValueError(f"{path} is not a VSDM checkpoint written by lsbcore.bridges.vsdm_shapes.save")
    st = ck["state"]
    res = VSDMResult(_rebuild_bridge(ck["config"], st), st["losses"].tolist(), list(st["A_history"]),
                     float(st["seconds"]) if "seconds" in st else float("nan"))
    res.config = ck["config"]
    return res


#: the VSDM files shipped in data/ for notebook 06: name → (shape, model, override); seed 0
SHIPPED_VSDM = {
    "vsdm_spiral_vp10.pt": ("spiral", "VP-10", {}),
    "vsdm_spiral_vp20.pt": ("spiral", "VP-20", {}),
    "vsdm_spiral_vsdm10.pt": ("spiral", "VSDM-10", {}),
    "vsdm_spiral_vsdm10_zeta075.pt": ("spiral", "VSDM-10", {"zeta": 0.75}),
    "vsdm_spiral_vsdm10_zeta1.pt": ("spiral", "VSDM-10", {"zeta": 1.0}),
    "vsdm_checkerboard_vp10.pt": ("checkerboard", "VP-10", {}),
    "vsdm_checkerboard_vp20.pt": ("checkerboard", "VP-20", {}),
    "vsdm_checkerboard_vsdm10.pt": ("checkerboard", "VSDM-10", {}),
    "vsdm_gaussian.pt": ("gaussian", "VSDM", {}),
}


def shipped_vsdm(name: str, *, data_dir=None) -> VSDMResult:
    """Load a shipped VSDM model of :data:`SHIPPED_VSDM`, verified against ``data/MANIFEST.json``."""
    from ..shipped import _REBUILD, DATA_DIR, _recorded_sum
    from ..utils import ChecksumError

    if name not in SHIPPED_VSDM:
        raise ValueError(f"no shipped VSDM model {name!r}; shipped: {sorted(SHIPPED_VSDM)}")
    path = Path(DATA_DIR if data_dir is None else data_dir) / name
    try:
        return load(path, sha256=_recorded_sum(path, path.parent))
    except ChecksumError as err:
        raise ChecksumError(f"{err}; {_REBUILD}") from None


def rebuild(name: str, data_dir, *, steps: int | None = None, progress: bool = True) -> Path:
    """Retrain one file of :data:`SHIPPED_VSDM` into ``data_dir`` (``steps`` shortens it, for tests)."""
    shape, model, override = SHIPPED_VSDM[name]
    if steps is not None:
        steps = check_int(steps, "steps")
        override = {**override, "steps": steps, "warmup": steps // 10, "freeze": steps // 4}
    return save(train(shape, model, 0, progress=progress, **override), Path(data_dir) / name, digest=False)


def shipped_bench(*, data_dir=None) -> dict:
    """The multi-seed table that ``python bench/vsdm.py --ship data`` recorded in ``data/vsdm_bench.json``
    (``{"command", "wall_s", "rows"}``): notebook 06 shows it beside its own seed-0 numbers."""
    from ..shipped import load_bench_table

    return load_bench_table("vsdm_bench.json", "bench/vsdm.py", data_dir=data_dir)


def summarise(rows, *, nfes=(6, 8, 16, 50), zeta: float = 0.85) -> dict:
    """(shape, model) → {"seeds", "w2": {nfe: (mean, std)}, "floor", "ratio50": [per seed], "rel50": mean}
    over the rows of :func:`shipped_bench` (VSDM rows with another ζ — the ablation — are left out)."""
    import statistics

    groups: dict = {}
    for r in rows:
        if r["shape"] == "gaussian" or (r["model"].startswith("VSDM") and r["zeta"] != zeta):
            continue
        groups.setdefault((r["shape"], r["model"]), []).append(r)
    out = {}
    for key, rs in groups.items():
        w2 = {k: [r["eval"][str(k)]["w2"] for r in rs] for k in nfes}
        out[key] = {"seeds": sorted(r["seed"] for r in rs),
                    "w2": {k: (statistics.mean(v), statistics.stdev(v) if len(v) > 1 else 0.0) for k, v in w2.items()},
                    "floor": statistics.mean(r["eval"]["50"]["floor"] for r in rs),
                    "ratio50": [r["eval"]["50"]["w2"] / r["eval"]["50"]["floor"] for r in rs],
                    "rel50": statistics.mean(r["eval"]["50"]["rel_straightness"] for r in rs),
                    "rows": rs}
    return out
