"""The explorers of notebook 04's synthetic benchmark (lsbcore.rates), driven in plain pytest by setting
``.value`` and clicking (no browser). The tables are built here with plausible numbers: no file needed."""
import matplotlib

matplotlib.use("Agg")

import math

import pytest

from lsbcore import rates
from lsbcore import widgets as W

NAN = math.nan
NS = [64, 256, 1024, 4096]


def _row(experiment, space, D, d, n=None, seed=None, M=None, shift=None, t_gap=None, **m):
    base = dict(experiment=experiment, space=space, D=D, d=d, n=n, seed=seed, M=M, shift=shift, t_gap=t_gap,
                sw2=NAN, w2=NAN, off=NAN, memo=NAN, recon=None, lip=None, train_s=None)
    base.update(m)
    return base


def table():
    """rate rows for d* ∈ {2, 4}, D ∈ {16, 256}, two seeds (ambient error grows with D, latent does not),
    floor rows, pretrain rows (M × shift) and stop rows (δ × space) for D = 16, d* = 2."""
    rows = []
    for d in (2, 4):
        for D in (16, 256):
            for seed in (0, 1):
                for n in NS:
                    for space in ("latent", "ambient"):
                        base = 0.3 if space == "latent" else 0.3 * (1 + math.log2(D) / 8)
                        sw2 = (base + 0.01 * seed) * (n / 64) ** (-0.5 / d if space == "latent" else -0.1)
                        rows.append(_row("rate", space, D, d, n, seed, sw2=sw2, w2=2 * sw2,
                                         off=0.04 if space == "latent" else 0.3, memo=1 - 0.3 * 64 / n,
                                         recon=0.03 if space == "latent" else NAN, train_s=1.0))
            rows.append(_row("floor", "population", D, d, sw2=0.05, w2=0.19, off=5e-8, memo=0.94))
    for M in (256, 1024, 4096):
        for shift in (0.0, 0.3, 1.0):
            rows.append(_row("pretrain", "latent", 16, 2, 4096, 0, M=M, shift=shift, sw2=0.2 + shift / 10 + 30 / M,
                             w2=0.5, off=0.05, memo=1.2, recon=0.03 + 10 / M, lip=3.0))
    for gap in (0.1, 0.03, 0.01):
        for space in ("latent", "ambient"):
            rows.append(_row("stop", space, 16, 2, 4096, 0, t_gap=gap, sw2=0.2 + gap, w2=0.5,
                             off=(0.04 if space == "latent" else 2 * math.sqrt(gap)), memo=1.0))
    return rows


def info(box):
    return box.children[-2].value


def test_rates_explorer_follows_its_controls():
    box = W.rates_explorer(table())
    n_lines = len(box.figure.axes[0].lines)
    assert n_lines == 2 * 2 + 2                       # latent + ambient per D, the floor, the marker at n
    assert box.state["metric"] == "sw2" and box.state["n"] == 1024 and set(box.state["ratio"]) == {16, 256}
    before = info(box)
    assert "latent/ambient" in before and "n = 1024" in before and "±" in before
    box.controls["n"].value = 4096
    assert "n = 4096" in info(box) and info(box) != before
    lat, amb = box.state["at_n"]["latent", 256][0], box.state["at_n"]["ambient", 256][0]
    assert box.state["ratio"][256] == pytest.approx(lat / amb) and box.state["ratio"][256] < 1
    box.controls["D"].value = (256,)
    assert len(box.figure.axes[0].lines) == 2 + 2 and "D = 16" not in info(box)
    box.controls["metric"].value = "off"                 # floor ≈ 0: not drawn on log axes
    assert len(box.figure.axes[0].lines) == 2 + 1 and "not drawn" in info(box)
    box.controls["d"].value = 4
    assert box.state["d"] == 4 and "off at n = 4096" in info(box)
    assert box.figure.axes[0].get_xlabel().startswith("n") and box.figure.axes[0].get_legend() is not None
    assert "lsb-ambient-dim" in box.controls["D"]._dom_classes


def test_rates_explorer_rejects_bad_rows():
    rows = table()
    with pytest.raises(TypeError, match="rows"):
        W.rates_explorer("data/latent_rates.csv")
    with pytest.raises(TypeError, match="rows"):
        W.rates_explorer((rows, "# header"))            # the (rows, header) pair of load_table
    with pytest.raises(ValueError, match="'rate' rows"):
        W.rates_explorer([r for r in rows if r["experiment"] != "rate"])
    with pytest.raises(ValueError, match="metric"):
        W.rates_explorer(rows, metric="fid")
    with pytest.raises(ValueError, match="^n must"):
        W.rates_explorer(rows, n=100)
    with pytest.raises(ValueError, match="^d must"):
        W.rates_explorer(rows, d=3)


def test_rates_explorer_reads_a_written_table(tmp_path):
    """The same explorer on a CSV in bench/latent_rates.py's format, read back by rates.load_table."""
    cols = list(rates.COLUMN_TYPES)
    lines = ["# python bench/latent_rates.py --quick; test", ",".join(cols)]
    lines += [",".join("" if r[c] is None else str(r[c]) for c in cols) for r in table()]
    path = tmp_path / "latent_rates.csv"
    path.write_text("\n".join(lines) + "\n")
    rows, header = rates.load_table(path)
    box = W.rates_explorer(rows, d=2, n=256, metric="memo")
    assert "memo at n = 256" in info(box) and "exact samples 0.94" in info(box)
    box = W.pretrain_stop_explorer(rows)
    assert "shift 0.3" in info(box)


def test_pretrain_stop_explorer_switches_between_pretraining_and_stopping():
    box = W.pretrain_stop_explorer(table())
    ax_sw2, ax_recon = box.figure.axes
    assert len(ax_sw2.lines) == 3 and len(ax_recon.lines) == 3          # one line per shift
    assert "against M" in info(box) and "M" in ax_sw2.get_xlabel()
    box.controls["x_axis"].value = "shift"
    assert len(box.figure.axes[0].lines) == 3 and "against shift" in info(box)
    assert box.figure.axes[0].get_xlabel().startswith("shift")
    box.controls["mode"].value = "early stopping δ"
    ax_sw2, ax_off = box.figure.axes
    assert len(ax_sw2.lines) == 2 and len(ax_off.lines) == 3            # latent, ambient (+ the reference)
    assert box.controls["x_axis"].disabled and "δ = 0.01 → 0.1" in info(box) and "noise term" in info(box)
    assert ax_off.get_xscale() == "log" and "δ" in ax_off.get_xlabel()
    ref = box.state["reference"]
    assert ref[-1] > ref[0] > 0
    box.controls["mode"].value = "pre-training M / shift"
    assert not box.controls["x_axis"].disabled and "against shift" in info(box)
    with pytest.raises(ValueError, match="'stop' rows"):
        W.pretrain_stop_explorer([r for r in table() if r["experiment"] != "stop"])
    with pytest.raises(ValueError, match="sigma"):
        W.pretrain_stop_explorer(table(), sigma=-1.0)


def test_live_rate_explorer_runs_only_on_click():
    box = W.live_rate_explorer(D_choices=(8, 16), d_choices=(2,), n_gen=256,
                               budget=rates.Budget(steps=20, ae_steps=20, pretrain_size=256, sample_steps=10))
    assert box.figure is None and box.state == {} and "press Run" in info(box)
    box.controls["n"].value = 64
    box.controls["D"].value = 8
    assert box.figure is None                                 # moving a slider runs nothing
    box.controls["run"].click()
    st = box.state
    assert (st["D"], st["d"], st["n"]) == (8, 2, 64) and "latent sw2" in info(box) and "ambient sw2" in info(box)
    assert all(math.isfinite(st[sp][k]) for sp in ("latent", "ambient") for k in ("sw2", "w2", "off", "memo"))
    assert len(box.figure.axes) == 3 and box.figure.axes[1].get_xlim() == box.figure.axes[2].get_xlim()
    assert st["latent_u"].shape == (256, 2) and not box.controls["run"].disabled
    box.controls["t_gap"].value = 0.1                          # only δ changed: the bridges are reused
    box.controls["run"].click()
    assert box.state["t_gap"] == pytest.approx(0.1) and "δ = 0.1" in info(box)
    with pytest.raises(ValueError, match="D_choices"):
        W.live_rate_explorer(D_choices=(4,), d_choices=(4,))
    with pytest.raises(TypeError, match="budget"):
        W.live_rate_explorer(budget=dict(steps=10))
    with pytest.raises(TypeError, match="D_choices"):
        W.live_rate_explorer(D_choices=16)
