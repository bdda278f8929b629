"""Reading the sweep of :mod:`lsbcore.rates`: curves, log–log slopes, the verdict, the shipped table (Notebook 04).

``bench/latent_rates.py`` writes one row per run (``rates.rate_sweep``) into a CSV; these functions
read rows like that back: :func:`load_table` (the shipped ``data/latent_rates.csv``), :func:`summarise`
(a slope with its interval per space, D and d*), :func:`verdict` (the claim of Notebook 04 §2 as
pass/fail lines) and :func:`samples_needed`. :mod:`lsbcore.rates` re-exports them.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

__all__ = ["COLUMN_TYPES", "metric_curves", "summarise", "samples_needed", "verdict", "load_table"]


def metric_curves(rows: Sequence[dict], space: str, D: int, d: int, metric: str):
    """(ns, seeds, array (seeds, len(ns))) of one metric for one (space, D, d*), from sweep rows
    (a ValueError if a (n, seed) run is missing)."""
    sel = [r for r in rows if r["space"] == space and int(r["D"]) == D and int(r["d"]) == d]
    ns = sorted({int(r["n"]) for r in sel})
    seeds = sorted({int(r["seed"]) for r in sel})
    table = {(int(r["n"]), int(r["seed"])): float(r[metric]) for r in sel}
    missing = [(n, s) for n in ns for s in seeds if (n, s) not in table]
    if missing:
        raise ValueError(f"rows miss runs {missing[:3]} for space={space}, D={D}, d*={d}")
    return ns, seeds, np.array([[table[n, s] for n in ns] for s in seeds])


def summarise(rows: Sequence[dict], *, metric: str = "sw2", n_ref: int = 4096) -> list:
    """One line per (space, D, d*): the log–log slope of ``metric`` against n with its 95 % interval over
    seeds (:func:`lsbcore.latent.loglog_fit`), mean ± sd at ``n_ref``, and the mean memorisation ratio and
    off-manifold distance at ``n_ref``."""
    from .latent import loglog_fit

    out = []
    keys = sorted({(r["space"], int(r["D"]), int(r["d"])) for r in rows}, key=lambda k: (k[2], k[0], k[1]))
    for space, D, d in keys:
        ns, seeds, err = metric_curves(rows, space, D, d, metric)
        if n_ref not in ns:
            raise ValueError(f"n_ref={n_ref} is not among the swept n {ns}")
        k = ns.index(n_ref)
        fit_ = loglog_fit(np.tile(ns, (len(seeds), 1)), err)
        memo = metric_curves(rows, space, D, d, "memo")[2][:, k]
        off = metric_curves(rows, space, D, d, "off")[2][:, k]
        out.append(dict(space=space, D=D, d=d, slope=fit_["slope"], ci=fit_["ci"], err=float(err[:, k].mean()),
                        err_sd=float(err[:, k].std(ddof=1)) if len(seeds) > 1 else float("nan"),
                        memo=float(memo.mean()), off=float(off.mean()), seeds=len(seeds)))
    return out


def samples_needed(ns: Sequence[int], err: Sequence[float], level: float) -> float:
    """The n at which a mean error curve first reaches ``level`` (log–log interpolation; inf if never)."""
    ns, err = np.asarray(ns, float), np.asarray(err, float)
    for k in range(len(ns)):
        if err[k] <= level:
            if k == 0:
                return float(ns[0])
            a = (math.log(err[k - 1]) - math.log(level)) / (math.log(err[k - 1]) - math.log(err[k]))
            return float(math.exp(math.log(ns[k - 1]) + a * (math.log(ns[k]) - math.log(ns[k - 1]))))
    return float("inf")


def verdict(rows: Sequence[dict], *, metric: str = "sw2", n_ref: int = 4096, growth: float = 1.25) -> list:
    """The claim of Notebook 04 §2 as ``(passed, line)`` pairs, per d*, from sweep rows (≥ 2 seeds).

    1. The ambient error at ``n_ref`` grows with D: larger at the largest D than at the smallest for
       **every** seed.
    2. The latent error at ``n_ref`` does not: its mean at the largest D is ≤ ``growth`` × its mean at the
       smallest D.
    3. Latent needs fewer samples at the largest D: the n at which its mean curve reaches the ambient
       curve's error at the largest n is smaller than that largest n.
    """
    out = []
    for d in sorted({int(r["d"]) for r in rows}):
        Ds = sorted({int(r["D"]) for r in rows if int(r["d"]) == d})
        lo, hi = Ds[0], Ds[-1]
        ns, _, amb_lo = metric_curves(rows, "ambient", lo, d, metric)
        k = ns.index(n_ref)
        amb_hi = metric_curves(rows, "ambient", hi, d, metric)[2]
        lat_lo = metric_curves(rows, "latent", lo, d, metric)[2]
        lat_hi = metric_curves(rows, "latent", hi, d, metric)[2]
        ok = bool((amb_hi[:, k] > amb_lo[:, k]).all())
        out.append((ok, f"d*={d}: ambient {metric} at n={n_ref} grows with D for every seed: D={hi} "
                        f"{amb_hi[:, k].mean():.4f} vs D={lo} {amb_lo[:, k].mean():.4f} "
                        f"(ratio {amb_hi[:, k].mean() / amb_lo[:, k].mean():.2f}; per seed, D={hi} vs D={lo}: "
                        f"{', '.join(f'{a:.3f} vs {b:.3f}' for a, b in zip(amb_hi[:, k], amb_lo[:, k]))})"))
        ratio = lat_hi[:, k].mean() / lat_lo[:, k].mean()
        out.append((bool(ratio <= growth), f"d*={d}: latent {metric} at n={n_ref} does not grow with D: D={hi} "
                                           f"{lat_hi[:, k].mean():.4f} vs D={lo} {lat_lo[:, k].mean():.4f} "
                                           f"(ratio {ratio:.2f}; criterion: ≤ {growth})"))
        level = amb_hi[:, -1].mean()
        need = samples_needed(ns, lat_hi.mean(0), level)
        out.append((bool(need < ns[-1]), f"d*={d}, D={hi}: latent reaches the ambient error at n={ns[-1]} "
                                         f"({level:.4f}) with n ≈ {need:.0f} samples"))
    return out


#: the columns of ``bench/latent_rates.py``'s CSV and their types
COLUMN_TYPES = dict(experiment=str, space=str, D=int, d=int, n=int, seed=int, M=int, shift=float, t_gap=float,
                     sw2=float, w2=float, off=float, memo=float, recon=float, lip=float, train_s=float)


def load_table(path=None) -> tuple:
    """Read ``bench/latent_rates.py``'s CSV (default: the shipped ``data/latent_rates.csv``).

    Returns ``(rows, header)``: one dict per line with typed values (empty cells → None) and the
    comment line that records the command, budget and time. A missing file or a malformed line raises
    a ValueError naming the file.
    """
    import csv
    from pathlib import Path

    from .shipped import DATA_DIR

    path = Path(DATA_DIR) / "latent_rates.csv" if path is None else Path(path)
    if not path.is_file():
        raise ValueError(f"{path} does not exist: run `python bench/latent_rates.py --ship data`")
    lines = path.read_text().splitlines()
    header = lines[0][2:] if lines and lines[0].startswith("# ") else ""
    reader = csv.DictReader(lines[1:] if header else lines)
    if reader.fieldnames is None or not set(COLUMN_TYPES) <= set(reader.fieldnames):
        raise ValueError(f"{path}: expected the columns {sorted(COLUMN_TYPES)}, got {reader.fieldnames}")
    rows = []
    for k, raw in enumerate(reader, start=2):
        try:
            rows.append({c: (None if raw[c] in ("", None) else t(float(raw[c])) if t is int else t(raw[c]))
                         for c, t in COLUMN_TYPES.items()})
        except (TypeError, ValueError) as e:
            raise ValueError(f"{path}, line {k}: {e}") from None
    return rows, header
