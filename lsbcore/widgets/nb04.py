"""Explorers of notebook 04 (why latent): generated digits next to the fitted digit each one copies, and
the synthetic benchmark of :mod:`lsbcore.rates` (error against n, pre-training and early stopping read
from the shipped table, and a small live run)."""
from __future__ import annotations

import ipywidgets as widgets
import numpy as np
import torch

from ..digits import load_digits, plot_digits
from ..explore import memorisation_view
from ..latent import generate_digits
from ..plotting import new_axes
from ..utils import check_int
from ._panel import connect, panel, show
from .nb03 import check_training_free, t_gap_slider

__all__ = ["memorisation_explorer", "rates_explorer", "pretrain_stop_explorer", "live_rate_explorer"]


def memorisation_explorer(spaces: dict, ns, *, method: str = "heat-follmer", sigma: float = 1.0,
                          t_gap: float = 0.01, steps: int = 50, n: int = 16, seed: int = 0) -> widgets.VBox:
    """Space, n and t_gap → generated digits next to the fitted digit each one is closest to.

    ``spaces``: name → autoencoder (or :class:`lsbcore.latent.PixelSpace`); ``ns``: the choices for
    the number of target digits the bridge is fitted to. For each setting,
    :func:`lsbcore.generate_digits` fits a training-free bridge to n digits and draws ``n`` samples;
    below each generated digit the explorer shows the fitted digit whose code is nearest. The info
    line gives :func:`lsbcore.memorisation_ratio` in the bridge's own space (generated codes and
    encoded held-out digits, against the fitted codes): near 0 the bridge copies its training digits
    (:func:`lsbcore.explore.memorisation_view`). Notebook 04 §"Explore".
    """
    if not isinstance(spaces, dict) or not spaces:
        raise TypeError("spaces must be a non-empty dict name → autoencoder")
    ns = [check_int(v, "ns", minimum=2) for v in ns]
    if not ns:
        raise ValueError("ns must name at least one sample size")
    check_training_free(method)
    n = check_int(n, "n", minimum=2)
    w_space = widgets.Dropdown(options=list(spaces), description="space")
    w_n = widgets.SelectionSlider(options=ns, value=ns[0], description="n fitted", continuous_update=False)
    w_gap = t_gap_slider(t_gap)
    box, info, out = panel({"space": w_space, "n_fit": w_n, "t_gap": w_gap}, [("space", "n_fit", "t_gap")],
                           height="330px")
    test, _ = load_digits("test")
    held_out: dict = {}

    def update(_=None):
        name, k, gap = w_space.value, w_n.value, w_gap.value
        ae = spaces[name]
        if name not in held_out:
            with torch.no_grad():
                held_out[name] = ae.encode(test.to(next(iter(ae.buffers())).device))
        run = generate_digits(ae, method, n, n_fit=k, sigma=sigma, t_gap=gap, steps=steps, seed=seed)
        view = memorisation_view(run, held_out[name])
        box.state = {"space": name, "n_fit": k, "t_gap": gap, "images": run["images"], **view}
        info.value = (f"{name}, {method} fitted to n = {k} digits, t_gap = {gap:.3f}: memorisation ratio "
                      f"{view['ratio']:.2f} (1 ≈ as far from the fitted digits as new digits are; 0 = copies)")
        fig, (ax0, ax1) = new_axes(1, nrows=2, size=(n * 0.5, 1.15))
        plot_digits(run["images"], ax0, ncols=n, title=f"generated ({name}, n = {k})")
        plot_digits(view["nearest"], ax1, ncols=n, title="the nearest of the n fitted digits (nearest code)")
        show(box, out, fig)

    return connect(box, update)


# ---------------------------------------------------------------- the synthetic benchmark (rates.py)
#: the metrics of :func:`lsbcore.rates.evaluate` a reader can plot, with their axis labels
RATE_METRICS = {
    "sw2": "sliced W2 in intrinsic coordinates",
    "w2": "W2 in intrinsic coordinates (2000 points)",
    "off": "mean distance off the manifold",
    "memo": "memorisation ratio (1 = new data, 0 = copies)",
}
PRETRAIN_MODE, STOP_MODE = "pre-training M / shift", "early stopping δ"


def _experiment_rows(rows, experiments) -> dict:
    """experiment → its rows of ``rates.load_table(path)[0]``; a TypeError/ValueError naming ``rows``."""
    if isinstance(rows, tuple) and len(rows) == 2 and isinstance(rows[1], str):
        raise TypeError("rows must be a list of dicts: pass rates.load_table(path)[0], not the (rows, header) pair")
    if not isinstance(rows, (list, tuple)) or not all(isinstance(r, dict) for r in rows):
        raise TypeError(f"rows must be a list of dicts (rates.load_table(path)[0]), got {type(rows).__name__}")
    out = {}
    for e in experiments:
        sel = [r for r in rows if r.get("experiment") == e]
        if not sel:
            raise ValueError(f"rows hold no {e!r} rows (column 'experiment'): pass the table written by "
                             f"bench/latent_rates.py (rates.load_table)")
        out[e] = sel
    return out


def _spread(values) -> tuple:
    """(mean, sd, min, max) of a 1-D array over seeds (sd nan with one seed)."""
    v = np.asarray(values, float)
    sd = float(v.std(ddof=1)) if v.size > 1 else float("nan")
    return float(v.mean()), sd, float(v.min()), float(v.max())


def _pm(mean: float, sd: float) -> str:
    return f"{mean:.3g}" if not np.isfinite(sd) else f"{mean:.3g} ± {sd:.2g}"


def rates_explorer(rows, *, d=None, n=None, metric: str = "sw2") -> widgets.VBox:
    """d*, the ambient dimensions D, n and the metric → the error against n, latent vs ambient (no training).

    ``rows``: the rows of ``bench/latent_rates.py``'s table (``rates.load_table(path)[0]``); the
    explorer reads its ``rate`` rows (and the ``floor`` rows: the same metric on exact population
    samples). For the chosen d* and every selected D it draws, on log–log axes, the metric against n
    for the learned bridge in latent space (solid) and in ambient space (dashed) — and, when the table
    has them, in the true intrinsic coordinates (``oracle``, black dash-dot): the mean over the
    seeds with a band from the smallest to the largest seed, the noise floor as a dotted grey line
    and a vertical marker at the chosen n. The info line gives, at that n, each curve's mean ± sd over
    seeds and the latent/ambient ratio per D. Everything is read from the table: instant.
    Notebook 04 §"Explore".
    """
    from ..rates_table import metric_curves

    parts = _experiment_rows(rows, ("rate",))
    rate = parts["rate"]
    floors = [r for r in rows if r.get("experiment") == "floor"]
    dims = sorted({int(r["d"]) for r in rate})
    d = dims[0] if d is None else d
    if d not in dims:
        raise ValueError(f"d must be one of the table's d* {dims}, got {d!r}")
    if metric not in RATE_METRICS:
        raise ValueError(f"metric must be one of {list(RATE_METRICS)}, got {metric!r}")
    Ds = sorted({int(r["D"]) for r in rate})
    ns = sorted({int(r["n"]) for r in rate})
    n = ns[len(ns) // 2] if n is None else n
    if n not in ns:
        raise ValueError(f"n must be one of the swept n {ns}, got {n!r}")
    w_d = widgets.Dropdown(options=dims, value=d, description="d*")
    w_D = widgets.SelectMultiple(options=Ds, value=tuple(Ds), rows=min(len(Ds), 4), description="D")
    w_n = widgets.SelectionSlider(options=ns, value=n, description="n", continuous_update=False)
    w_metric = widgets.ToggleButtons(options=list(RATE_METRICS), value=metric, description="metric")
    box, info, out = panel({"d": w_d, "D": w_D, "n": w_n, "metric": w_metric},
                           [("d", "D"), ("n", "metric")], height="400px", css={"d": "dstar", "D": "ambient-dim"})

    def update(_=None):
        dd, sel, k, m = w_d.value, sorted(w_D.value), w_n.value, w_metric.value
        curves, at_n, ratio, missing = {}, {}, {}, []
        for D in sel:
            for space in ("latent", "ambient"):
                if not any(r["space"] == space and int(r["D"]) == D and int(r["d"]) == dd for r in rate):
                    missing.append(f"{space} D={D}")
                    continue
                xs, seeds, err = metric_curves(rate, space, D, dd, m)
                curves[space, D] = (xs, err)
                if k in xs:
                    at_n[space, D] = _spread(err[:, xs.index(k)])
            if ("latent", D) in at_n and ("ambient", D) in at_n:
                ratio[D] = at_n["latent", D][0] / at_n["ambient", D][0]
        fl = [float(r[m]) for r in floors if int(r["d"]) == dd and r.get(m) is not None]
        floor = float(np.mean(fl)) if fl else float("nan")
        box.state = {"d": dd, "Ds": sel, "n": k, "metric": m, "curves": curves, "at_n": at_n, "ratio": ratio,
                     "floor": floor}

        fig, ax = new_axes(size=(6.6, 3.9))
        for i, D in enumerate(sel):
            for space, ls in (("latent", "-"), ("ambient", "--")):
                if (space, D) not in curves:
                    continue
                xs, err = curves[space, D]
                ax.plot(xs, err.mean(0), ls=ls, marker="o", ms=3, color=f"C{i}", label=f"{space}, D = {D}")
                if err.shape[0] > 1:
                    ax.fill_between(xs, err.min(0), err.max(0), color=f"C{i}", alpha=0.15, lw=0)
        # the bridge in the true coordinates (a perfect autoencoder): the same for every D; its points are
        # embedded exactly, so its "off" is 0 up to float rounding and would only squash a log axis
        oracle = [r for r in rate if r["space"] == "oracle" and int(r["d"]) == dd] if m != "off" else []
        if oracle:
            xs, _, err = metric_curves(rate, "oracle", min(int(r["D"]) for r in oracle), dd, m)
            ax.plot(xs, err.mean(0), ls="-.", marker="o", ms=3, color="k", label="oracle: true coordinates")
            curves["oracle", 0] = (xs, err)
            if k in xs:
                at_n["oracle", 0] = _spread(err[:, xs.index(k)])
        positive = [float(e.mean(0).min()) for _, e in curves.values() if e.mean(0).min() > 0]
        show_floor = np.isfinite(floor) and floor > 0 and positive and floor > 1e-3 * min(positive)
        if show_floor:
            ax.axhline(floor, color="0.4", ls=":", lw=1.5, label="exact samples (floor)" if m != "memo" else "exact samples")
        ax.axvline(k, color="0.6", lw=0.8, zorder=0)
        ax.set_xscale("log", base=2)
        if m != "memo":                               # memo is a ratio near 1: a linear axis reads better
            ax.set_yscale("log")
        _tick_at(ax, sorted({x for xs, _ in curves.values() for x in xs}) or [k])
        ax.set_xlabel("n (training points)")
        ax.set_ylabel(f"{m}: {RATE_METRICS[m]}", fontsize=8)
        ax.set_title(f"d* = {dd}: {m} against n, latent (solid) vs ambient (dashed); band: range over seeds",
                     fontsize=9)
        if ax.lines:
            ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
        show(box, out, fig)

        parts_ = []
        for D in sel:
            bits = [f"{space} {_pm(*at_n[space, D][:2])}" for space in ("latent", "ambient") if (space, D) in at_n]
            if D in ratio:
                bits.append(f"latent/ambient {ratio[D]:.2f}")
            if bits:
                parts_.append(f"D = {D}: " + ", ".join(bits))
        if ("oracle", 0) in at_n:
            parts_.append(f"oracle {_pm(*at_n['oracle', 0][:2])}")
        text = f"{m} at n = {k} (mean ± sd over seeds) — " + ("; ".join(parts_) if parts_ else "no curves selected")
        if np.isfinite(floor):
            text += f"; exact samples {floor:.3g}" + ("" if show_floor else " (≈ 0: not drawn)")
        if missing:
            text += f"; no rows for {', '.join(missing)}"
        info.value = text

    return connect(box, update)


def _tick_at(ax, xs) -> None:
    """Plain-number ticks at the swept values of a log-scaled x axis (no minor ticks)."""
    from matplotlib.ticker import NullLocator

    ax.set_xticks(list(xs), [f"{x:g}" for x in xs])
    ax.xaxis.set_minor_locator(NullLocator())


def _mean_by(rows, key: str, metric: str, **fixed) -> tuple:
    """(xs, mean, min, max) of ``metric`` over the rows matching ``fixed``, grouped by ``key`` (sorted)."""
    sel = [r for r in rows if all(r.get(k) == v for k, v in fixed.items()) and r.get(metric) is not None]
    xs = sorted({r[key] for r in sel})
    vals = [[float(r[metric]) for r in sel if r[key] == x] for x in xs]
    return (np.array(xs, float), np.array([np.mean(v) for v in vals]), np.array([min(v) for v in vals]),
            np.array([max(v) for v in vals]))


def _data_scale(D: int, d: int, family_seed: int) -> float:
    """The global scale s of AmbientSpace (scale="manifold") on the family's population: √(total variance / d*)."""
    from ..manifold import ManifoldData

    x = ManifoldData(D, d, seed=family_seed).sample(20_000, seed=12345)
    return float((x.var(0).sum() / d).sqrt())


def pretrain_stop_explorer(rows, *, sigma: float = 1.0, family_seed: int = 0) -> widgets.VBox:
    """Pre-training (M, shift) or early stopping (δ) → the latent pipeline's errors, read from the table.

    ``rows``: ``rates.load_table(path)[0]``; the explorer reads the ``pretrain`` rows
    (:func:`lsbcore.rates.pretrain_sweep`: the latent bridge after pre-training the autoencoder on M
    points shifted by ``shift``) and the ``stop`` rows (:func:`lsbcore.rates.stop_sweep`: one latent
    and one ambient bridge sampled up to 1 − δ). Toggle *pre-training*: SW2 and the autoencoder's
    reconstruction error against M (one line per shift) or against the shift (one line per M).
    Toggle *early stopping*: SW2 and the off-manifold distance against δ (log axis) for both spaces,
    with, on the off-manifold panel, the noise the bound's early-stopping term leaves in ambient
    space, s·σ√(δ(1 − δ))·√(D − d*) (σ√(δ(1 − δ)) per standardised coordinate, in the D − d* normal
    directions, times the data scale s of :class:`lsbcore.rates.AmbientSpace`; ``sigma`` = the
    budget's σ, ``family_seed`` the family of the table). In latent space the same noise sits in the
    d* code coordinates and the decoder maps it along the manifold: it shows in SW2, not off it.
    Instant. Notebook 04 §4.
    """
    from ..utils import check_positive

    parts = _experiment_rows(rows, ("pretrain", "stop"))
    sigma = check_positive(sigma, "sigma")
    families = sorted({(int(r["D"]), int(r["d"])) for e in parts.values() for r in e})
    w_mode = widgets.ToggleButtons(options=[PRETRAIN_MODE, STOP_MODE], value=PRETRAIN_MODE, description="show")
    w_family = widgets.Dropdown(options=[(f"D = {D}, d* = {d}", (D, d)) for D, d in families], value=families[0],
                                description="family")
    w_x = widgets.Dropdown(options=[("M (pre-training points)", "M"), ("shift", "shift")], value="M",
                           description="x axis")
    if len(families) > 1:
        box, info, out = panel({"mode": w_mode, "family": w_family, "x_axis": w_x}, ["mode", ("family", "x_axis")],
                               height="360px")
    else:       # one family in the table (the bench's): nothing to choose, so no dropdown that cannot move
        box, info, out = panel({"mode": w_mode, "x_axis": w_x}, ["mode", "x_axis"], height="360px")
    scales: dict = {}

    def update(_=None):
        mode, (D, d), xkey = w_mode.value, w_family.value, w_x.value
        w_x.disabled = mode != PRETRAIN_MODE
        fig, axes = new_axes(2, size=(3.9, 3.0))
        if mode == PRETRAIN_MODE:
            rs = [r for r in parts["pretrain"] if int(r["D"]) == D and int(r["d"]) == d]
            other = "shift" if xkey == "M" else "M"
            levels = sorted({r[other] for r in rs})
            curves, texts = {}, []
            for ax, metric, label in ((axes[0], "sw2", "sliced W2 in intrinsic coordinates"),
                                      (axes[1], "recon", "reconstruction error (population)")):
                for i, v in enumerate(levels):
                    xs, mean, lo, hi = _mean_by(rs, xkey, metric, **{other: v})
                    if not len(xs):
                        continue
                    curves[metric, v] = (xs, mean)
                    ax.plot(xs, mean, marker="o", ms=4, color=f"C{i}", label=f"{other} = {v:g}")
                    if (hi > lo).any():
                        ax.fill_between(xs, lo, hi, color=f"C{i}", alpha=0.15, lw=0)
                if xkey == "M":
                    ax.set_xscale("log", base=2)
                    _tick_at(ax, sorted({int(r["M"]) for r in rs}))
                ax.set_xlabel("M (pre-training points)" if xkey == "M" else "shift of the pre-training law")
                ax.set_ylabel(f"{metric}: {label}", fontsize=8)
                ax.set_title(f"latent {metric} against {xkey} (D = {D}, d* = {d})", fontsize=9)
                if ax.lines:
                    ax.legend(fontsize=7)
            for v in levels:
                if ("sw2", v) in curves:
                    xs, mean = curves["sw2", v]
                    texts.append(f"{other} {v:g}: {mean[0]:.3g} ({xkey} {xs[0]:g}) → {mean[-1]:.3g} ({xkey} {xs[-1]:g})")
            box.state = {"mode": mode, "family": (D, d), "x_axis": xkey, "curves": curves}
            info.value = f"latent sw2 against {xkey}, n = {rs[0]['n'] if rs else '?'}: " + "; ".join(texts)
        else:
            rs = [r for r in parts["stop"] if int(r["D"]) == D and int(r["d"]) == d]
            curves = {}
            for ax, metric in ((axes[0], "sw2"), (axes[1], "off")):
                for space, ls in (("latent", "-"), ("ambient", "--")):
                    xs, mean, lo, hi = _mean_by(rs, "t_gap", metric, space=space)
                    if not len(xs):
                        continue
                    curves[metric, space] = (xs, mean)
                    ax.plot(xs, mean, ls=ls, marker="o", ms=4, color="C0" if space == "latent" else "C1",
                            label=space)
                    if (hi > lo).any():
                        ax.fill_between(xs, lo, hi, color="C0" if space == "latent" else "C1", alpha=0.15, lw=0)
                ax.set_xscale("log")
                ax.set_xlabel("δ (sampling stops at t = 1 − δ)")
                ax.set_ylabel(f"{metric}: {RATE_METRICS[metric]}", fontsize=8)
                ax.set_title(f"{metric} against δ (D = {D}, d* = {d})", fontsize=9)
            ref = None
            gaps = sorted({float(r["t_gap"]) for r in rs})
            if gaps:
                if (D, d) not in scales:
                    scales[D, d] = _data_scale(D, d, family_seed)
                g = np.geomspace(min(gaps), max(gaps), 60)
                ref = scales[D, d] * sigma * np.sqrt(g * (1 - g)) * np.sqrt(D - d)
                axes[1].plot(g, ref, ls=":", color="0.3",
                             label=f"s·σ√(δ(1−δ))·√(D−d*), s = {scales[D, d]:.2f}")
            for ax in axes:
                if ax.lines:
                    ax.legend(fontsize=7)
            box.state = {"mode": mode, "family": (D, d), "curves": curves, "reference": ref}
            texts = []
            for space in ("latent", "ambient"):
                if ("sw2", space) in curves:
                    xs, sw = curves["sw2", space]
                    off = curves["off", space][1]
                    texts.append(f"{space}: sw2 {sw[0]:.3g} → {sw[-1]:.3g}, off {off[0]:.3g} → {off[-1]:.3g}, "
                                 f"best sw2 at δ = {xs[int(np.argmin(sw))]:g}")
            if gaps:
                texts.append(f"ambient noise term {ref[0]:.3g} → {ref[-1]:.3g}")
            info.value = (f"δ = {min(gaps):g} → {max(gaps):g}: " if gaps else "no stop rows for this family: ") \
                + "; ".join(texts)
        show(box, out, fig)

    return connect(box, update)


#: the choices of n of the live explorer (powers of 4)
LIVE_NS = (64, 256, 1024, 4096, 16384)


def live_rate_explorer(D_choices=(16, 64, 256), d_choices=(2, 4), budget=None, *, n_gen: int = 2000,
                       seed: int = 0, family_seed: int = 0) -> widgets.VBox:
    """A small live run of the benchmark: n, D, d* and δ, then *Run* → generated intrinsic coordinates.

    Nothing runs until the *Run* button is pressed (building the explorer is instant). A run: the
    family ``ManifoldData(D, d*, seed=family_seed)``; its autoencoder pre-trained on M shifted points
    (:func:`lsbcore.rates.fit_manifold_autoencoder`, cached per (D, d*) so the next run with the same
    family skips it); the first n points of the seed's target sample; a learned bridge in latent and
    in ambient space with the same ``budget`` (default ``Budget(steps=600, ae_steps=800,
    pretrain_size=5000)``, trained on t ≤ 1 − min(budget.t_gap, δ), cached per (D, d*, n, gap) so a
    change of δ alone only resamples); ``n_gen`` points generated in each space, sampled up to 1 − δ,
    scored by :func:`lsbcore.rates.evaluate`. Three panels with the same limits: the first two
    intrinsic coordinates of fresh true samples (grey) with the n training points, of the latent
    bridge's points and of the ambient bridge's points; their errors in the titles and the info line.
    Takes ~10–60 s on a CPU (longer for large n and D). Notebook 04 §"Explore".
    """
    from ..rates import Budget

    if isinstance(D_choices, (int, str)) or isinstance(d_choices, (int, str)):
        raise TypeError("D_choices and d_choices must be sequences of ints")
    Ds = sorted({check_int(v, "D_choices", minimum=2) for v in D_choices})
    dims = sorted({check_int(v, "d_choices") for v in d_choices})
    if not Ds or not dims:
        raise ValueError("D_choices and d_choices must each name at least one dimension")
    if min(Ds) < 2 * max(dims):
        raise ValueError(f"every D in D_choices must be ≥ 2·d* = {2 * max(dims)} (room for z and h(z)), "
                         f"got D = {min(Ds)}")
    if budget is None:
        budget = Budget(steps=600, ae_steps=800, pretrain_size=5000)   # the live slice of Notebook 04 §4
    if not isinstance(budget, Budget):
        raise TypeError(f"budget must be a lsbcore.rates.Budget, got {type(budget).__name__}")
    n_gen = check_int(n_gen, "n_gen", minimum=2)
    seed, family_seed = check_int(seed, "seed", minimum=0), check_int(family_seed, "family_seed", minimum=0)
    w_n = widgets.SelectionSlider(options=list(LIVE_NS), value=1024, description="n", continuous_update=False)
    w_D = widgets.Dropdown(options=Ds, value=Ds[0], description="D")
    w_d = widgets.Dropdown(options=dims, value=dims[0], description="d*")
    w_gap = t_gap_slider(budget.t_gap)
    w_gap.description = "δ"
    w_run = widgets.Button(description="Run", button_style="primary", icon="play")
    box, info, out = panel({"n": w_n, "D": w_D, "d": w_d, "t_gap": w_gap, "run": w_run},
                           [("D", "d", "n"), ("t_gap", "run")], height="330px",
                           css={"D": "ambient-dim", "d": "dstar"})
    cache: dict = {"ae": {}, "bridge": {}}

    def pending(_=None):
        """A setting changed: say what Run will do (nothing is trained before Run)."""
        if w_run.disabled:
            return
        cached = any(k[1:4] == (w_D.value, w_d.value, w_n.value) for k in cache["bridge"])
        info.value = (f"next run: D = {w_D.value}, d* = {w_d.value}, n = {w_n.value}, δ = {w_gap.value:.3g}, "
                      f"{budget.steps} Adam steps per bridge — press Run "
                      f"({'bridges cached: a few seconds' if cached else 'a small training run: about 10–60 s'})")

    for w in (w_n, w_D, w_d, w_gap):
        w.observe(pending, names="value")
    pending()

    def say(text):
        info.value = f"<i>{text}</i>"

    def run(_=None):
        w_run.disabled = True
        try:
            box.state = _live_run(w_D.value, w_d.value, w_n.value, w_gap.value, budget, n_gen, seed, family_seed,
                                  cache, say)
            st = box.state
            info.value = (f"D = {st['D']}, d* = {st['d']}, n = {st['n']}, δ = {st['t_gap']:.3g} ({st['seconds']:.0f} s): "
                          + "; ".join(f"{sp} sw2 {st[sp]['sw2']:.3f}, w2 {st[sp]['w2']:.3f}, "
                                      f"off {st[sp]['off']:.3f}, memo {st[sp]['memo']:.2f}"
                                      for sp in ("latent", "ambient"))
                          + f"; exact samples sw2 {st['true']['sw2']:.3f}")
            show(box, out, _live_figure(st))
        except Exception as e:  # shown to the reader, then raised for the log
            info.value = f"run failed: {type(e).__name__}: {e}"
            raise
        finally:
            w_run.disabled = False

    w_run.on_click(run)
    box.run = run
    return box


def _live_run(D, d, n, gap, budget, n_gen, seed, family_seed, cache, say) -> dict:
    """One run of :func:`live_rate_explorer` (no widgets): returns the state it shows."""
    import time
    from dataclasses import replace

    from .. import rates
    from ..manifold import ManifoldData
    from ..utils import generator

    tic = time.perf_counter()
    if (D, d) not in cache["ae"]:
        data = ManifoldData(D, d, seed=family_seed)
        say(f"pre-training the autoencoder for D = {D}, d* = {d} on {budget.pretrain_size} shifted points "
            f"({budget.ae_steps} steps)…")
        cache["ae"][D, d] = (data, rates.fit_manifold_autoencoder(data, budget, seed=seed))
    data, ae = cache["ae"][D, d]
    train = rates.target_sample(data, n, seed)
    b = replace(budget, t_gap=min(budget.t_gap, gap))
    state = {"D": D, "d": d, "n": n, "t_gap": gap, "train_gap": b.t_gap,
             "train_u": data.intrinsic(train).float()}
    ref = data.sample(n_gen, seed=generator(31_337 + seed))
    state["true_u"] = data.intrinsic(ref).float()
    state["true"] = rates.evaluate(data, ref, train, seed=seed)
    for space_name in ("latent", "ambient"):
        key = (space_name, D, d, n, b.t_gap)
        if key not in cache["bridge"]:
            space = ae if space_name == "latent" else rates.AmbientSpace(train, total_variance=d)
            say(f"learning the {space_name} bridge on n = {n} points ({b.steps} steps)…")
            with torch.no_grad():
                codes = space.encode(train)
            cache["bridge"][key] = (space, rates.learned_bridge(codes, b, seed=seed))
        space, bridge = cache["bridge"][key]
        say(f"sampling {n_gen} points with the {space_name} bridge and scoring them…")
        x = rates.generate(space, bridge, n_gen, b, t_gap=gap, seed=seed)
        state[space_name] = rates.evaluate(data, x, train, seed=seed)
        state[space_name + "_u"] = data.intrinsic(x).float()
    state["seconds"] = time.perf_counter() - tic
    return state


def _live_figure(st: dict):
    """The three scatter panels of :func:`live_rate_explorer` with shared limits (from the true samples)."""
    fig, axes = new_axes(3, size=(3.3, 3.1), sharex=True, sharey=True)
    true = st["true_u"][:, :2].numpy()
    lo, hi = np.quantile(true, 0.001, axis=0), np.quantile(true, 0.999, axis=0)
    pad = 0.2 * (hi - lo)
    ax = axes[0]
    ax.scatter(true[:, 0], true[:, 1], s=2, alpha=0.3, color="0.5", label="fresh samples")
    tr = st["train_u"][:2000, :2].numpy()
    ax.scatter(tr[:, 0], tr[:, 1], s=2, alpha=0.5, color="C3", label=f"n = {st['n']} training points")
    ax.set_title(f"truth (D = {st['D']}, d* = {st['d']})", fontsize=9)
    ax.legend(fontsize=6, loc="upper right", markerscale=3)
    for ax, space, color in ((axes[1], "latent", "C0"), (axes[2], "ambient", "C1")):
        u = st[space + "_u"][:, :2].numpy()
        ax.scatter(u[:, 0], u[:, 1], s=2, alpha=0.4, color=color)
        m = st[space]
        ax.set_title(f"{space}: sw2 {m['sw2']:.3f}, off {m['off']:.3f}, memo {m['memo']:.2f}", fontsize=9)
    for ax in axes:
        ax.set_xlim(lo[0] - pad[0], hi[0] + pad[0])
        ax.set_ylim(lo[1] - pad[1], hi[1] + pad[1])
        ax.set_xlabel("intrinsic coordinate $u_1$")
    axes[0].set_ylabel("intrinsic coordinate $u_2$")
    return fig
