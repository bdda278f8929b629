"""The VSDM experiments' plumbing: the recipe, the shipped-file format, the SA schedule of fit_vsdm and
the Gaussian-SB distance (notebook 06, bench/vsdm.py)."""
import json

import pytest
import torch

from lsbcore.bridges import vsdm_shapes as V
from lsbcore.bridges.vsdm import LinearForward
from lsbcore.bridges.vsdm_eval import distance_history, forward_marginals, gaussian_sb_distance
from lsbcore.bridges.vsdm_fit import fit_vsdm
from lsbcore.shipped import write_manifest
from lsbcore.utils import ChecksumError

TINY = dict(steps=40, warmup=5, freeze=10, a_every=5, a_paths=16, a_steps=4, width=16, batch_size=32)


def test_train_save_load_roundtrip(tmp_path):
    res = V.train("spiral", "VSDM-10", 0, progress=False, **TINY)
    assert res.config["model"] == "VSDM-10" and res.config["zeta"] == 0.85 and res.config["steps"] == 40
    path = V.save(res, tmp_path / "m.pt")
    back = V.load(path)
    assert back.config == res.config and back.losses == pytest.approx(res.losses)
    torch.testing.assert_close(torch.stack(back.A_history), torch.stack(res.A_history))
    x1 = res.bridge.sample(16, steps=3, seed=1).x
    x2 = back.bridge.sample(16, steps=3, seed=1).x
    torch.testing.assert_close(x1, x2)


def test_time_varying_model_roundtrip(tmp_path):
    res = V.train("checkerboard", "VSDM-10 A_t", 1, progress=False, **TINY)
    assert res.bridge.forward.time_varying and res.bridge.forward.pieces == 4
    back = V.load(V.save(res, tmp_path / "t.pt"))
    torch.testing.assert_close(back.bridge.forward.A_pieces(), res.bridge.forward.A_pieces())


def test_corrupt_and_foreign_files_are_refused(tmp_path):
    res = V.train("gaussian", "VSDM", 0, progress=False, **TINY)
    path = V.save(res, tmp_path / "g.pt")
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    bad = tmp_path / "bad.pt"
    bad.write_bytes(bytes(raw))
    with pytest.raises(ValueError):
        V.load(bad)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError):
        V.load(tmp_path / "junk.pt")


def test_shipped_vsdm_checks_the_manifest(tmp_path):
    name = "vsdm_gaussian.pt"
    V.rebuild(name, tmp_path, steps=20, progress=False)
    write_manifest(tmp_path)
    assert V.shipped_vsdm(name, data_dir=tmp_path).config["shape"] == "gaussian"
    sums = json.loads((tmp_path / "MANIFEST.json").read_text())
    sums[name] = "0" * 64
    (tmp_path / "MANIFEST.json").write_text(json.dumps(sums))
    with pytest.raises(ChecksumError, match="rebuild"):
        V.shipped_vsdm(name, data_dir=tmp_path)
    with pytest.raises(ValueError, match="no shipped VSDM model"):
        V.shipped_vsdm("nope.pt", data_dir=tmp_path)


@pytest.mark.parametrize("shape, model, match", [("moons", "VP-10", "shape"), ("spiral", "VP-30", "model"),
                                                 ("gaussian", "VP-10", "Gaussian")])
def test_train_rejects_unknown_names(shape, model, match):
    with pytest.raises(ValueError, match=match):
        V.train(shape, model, progress=False)


def test_summarise_groups_seeds_and_leaves_out_the_ablation():
    def row(model, seed, w2, zeta=None):
        ev = {str(k): {"w2": w2, "floor": 1.0, "rel_straightness": 0.1, "straightness": 1.0} for k in (6, 8, 16, 50)}
        return {"shape": "spiral", "model": model, "seed": seed, "zeta": zeta, "eval": ev}

    rows = [row("VP-10", 0, 2.0), row("VP-10", 1, 4.0), row("VSDM-10", 0, 1.2, 0.85), row("VSDM-10", 0, 9.0, 0.75)]
    s = V.summarise(rows)
    assert s["spiral", "VP-10"]["w2"][50][0] == pytest.approx(3.0)
    assert s["spiral", "VP-10"]["seeds"] == [0, 1]
    assert s["spiral", "VSDM-10"]["ratio50"] == [pytest.approx(1.2)]


def test_fit_vsdm_schedule_phases_and_decreasing_steps():
    x = V.SHAPES["gaussian"](256, 0)
    res = fit_vsdm(x, progress=False, **{**TINY, "steps": 60, "warmup": 10, "freeze": 20, "a_every": 5})
    # A moves only in [warmup, steps - freeze): one update at steps 10, 15, ..., 35
    assert len(res.A_history) == 1 + 6
    with pytest.raises(ValueError, match="a_decay"):
        fit_vsdm(x, steps=2, a_decay=1.5, progress=False)
    with pytest.raises(ValueError, match="freeze"):
        fit_vsdm(x, steps=2, freeze=-1, progress=False)


def test_gaussian_sb_distance_is_zero_when_the_bridge_is_the_reference():
    # data at a point mass 0: the forward (A = 0) from δ0 ends at the prior N(0, Σ_1), so the
    # Schrödinger bridge with the OU reference is the OU process itself
    f = LinearForward(2, beta_min=4.0, beta_max=4.0)
    d, per = gaussian_sb_distance(f, torch.zeros(2), 1e-12 * torch.eye(2))
    assert d < 1e-5 and per.shape == (21,)
    # data away from 0: the OU's endpoint misses the prior's mean, the distance is positive and
    # largest at t = 1, where it is the Bures-W2 between the OU endpoint and the prior
    d, per = gaussian_sb_distance(f, V.GAUSS_MEAN, V.GAUSS_COV)
    m1, S1 = forward_marginals(f, V.GAUSS_MEAN, V.GAUSS_COV, torch.ones(1, dtype=torch.float64))
    from lsbcore.metrics import bures_w2

    assert per[-1] == pytest.approx(bures_w2(m1[0], S1[0], torch.zeros(2), f.prior_cov().detach()), rel=1e-6)
    assert d > 0.3 and per[0] < 1e-6


def test_distance_history_replays_A():
    f = LinearForward(2, beta_min=4.0, beta_max=4.0)
    with torch.no_grad():
        f.s.copy_(torch.tensor([-0.3, 0.2], dtype=torch.float64))
    hist = [torch.zeros(2, 2, dtype=torch.float64), f.A().detach().clone()]
    idx, d = distance_history(f, hist, V.GAUSS_MEAN, V.GAUSS_COV)
    assert idx == [0, 1]
    assert d[1] == pytest.approx(gaussian_sb_distance(f, V.GAUSS_MEAN, V.GAUSS_COV)[0], rel=1e-10)
    assert d[0] == pytest.approx(gaussian_sb_distance(LinearForward(2, beta_min=4.0, beta_max=4.0),
                                                      V.GAUSS_MEAN, V.GAUSS_COV)[0], rel=1e-10)
    with pytest.raises(ValueError, match="constant"):
        gaussian_sb_distance(LinearForward(2), V.GAUSS_MEAN, V.GAUSS_COV)


def test_every_piece_of_s_moves_at_the_full_step(monkeypatch):
    """fit_vsdm puts every piece's s (not only piece 0) in the optimizer group with the full step size;
    only U and V move at the reduced rotation step."""
    import lsbcore.bridges.vsdm_fit as F

    groups = []
    real = torch.optim.Adam

    def spy(params, **kw):
        opt = real(params, **kw)
        groups.extend(opt.param_groups)        # A's optimizer and the network's
        return opt

    monkeypatch.setattr(F.torch.optim, "Adam", spy)
    x = V.SHAPES["gaussian"](64, 0)
    res = fit_vsdm(x, progress=False, pieces=3, a_lr=0.02, **{**TINY, "steps": 12, "warmup": 2, "freeze": 2})
    scale_group = next(g for g in groups if g.get("scale") == 1.0)
    assert {id(p) for p in scale_group["params"]} == {id(p) for p in res.bridge.forward.s_pieces()}
    assert len(scale_group["params"]) == 3
