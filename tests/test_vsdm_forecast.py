"""Conditional VSDM forecaster (lsbcore.bridges.vsdm_forecast): the conditional net is the unconditional
machinery when the condition is absent or ignored; a short training on the linear-Gaussian process uses
the history (beats the best forecast that ignores it); units, shapes, input checks, determinism."""
import pytest
import torch
from torch.testing import assert_close

from lsbcore.bridges.vsdm import VSDM, LinearForward, backward_score_loss, update_A
from lsbcore.bridges.vsdm_forecast import (ConditionalScoreNet, ForecastModel, encode_history, evaluate,
                                           fit_forecaster, forecast)
from lsbcore.forecast import LinearGaussianSSM, crps_ensemble
from lsbcore.nets import TimeMLP

T, H, P = 24, 4, 12          # small: a 12-dimensional future keeps the matrix exponentials cheap
PROC = LinearGaussianSSM(3, P, 2, seed=0)
SHORT = dict(history=T, horizon=H, n_train_series=4000, steps=600, width=64, batch_size=256, a_every=50,
             progress=False)


def _forward(dim):
    fwd = LinearForward(dim, seed=0)
    with torch.no_grad():
        fwd.s.copy_(torch.linspace(-0.3, 0.3, dim, dtype=torch.float64))   # a non-trivial A
    return fwd


@pytest.fixture(scope="module")
def trained():
    return fit_forecaster(PROC, adaptive=True, seed=0, **SHORT)


def test_zero_width_condition_is_the_unconditional_vsdm():
    fwd, x0 = _forward(6), torch.randn(64, 6, generator=torch.Generator().manual_seed(1))
    cnet, mlp = ConditionalScoreNet(6, 0, 32, 2, seed=3), TimeMLP(6, 32, 2, seed=3)
    assert_close(backward_score_loss(fwd, cnet, x0, seed=5), backward_score_loss(fwd, mlp, x0, seed=5))
    b1, b2 = VSDM(fwd, cnet), VSDM(fwd, mlp)
    for t in (0.05, 0.5, 1.0):
        assert_close(b1.backward_drift(x0, t), b2.backward_drift(x0, t))
        assert_close(b1.velocity(x0, t), b2.velocity(x0, t))
    assert_close(b1.sample(40, steps=4, seed=2).x, b2.sample(40, steps=4, seed=2).x)


def test_ignored_condition_gives_the_unconditional_loss_drift_and_A_step():
    """Copy a TimeMLP into a conditional net with zero weights on the condition: for any condition the
    loss, the drift, the sampler and update_A (backward paths given a batch of conditions) agree."""
    dim, k = 6, 5
    mlp, cnet = TimeMLP(dim, 32, 2, seed=3), ConditionalScoreNet(dim, k, 32, 2, seed=4)
    with torch.no_grad():
        for (name, p), q in zip(cnet.mlp.named_parameters(), mlp.parameters()):
            if name == "net.0.weight":          # columns: [x (dim), condition (k), time features]
                p.zero_()
                p[:, :dim], p[:, dim + k:] = q[:, :dim], q[:, dim:]
            else:
                p.copy_(q)
    gen = torch.Generator().manual_seed(1)
    x0, cond = torch.randn(64, dim, generator=gen), 3 * torch.randn(64, k, generator=gen)
    fwd1, fwd2 = _forward(dim), _forward(dim)
    b1, b2 = VSDM(fwd1, cnet), VSDM(fwd2, mlp)
    with cnet.given(cond):
        assert_close(backward_score_loss(fwd1, cnet, x0, seed=5), backward_score_loss(fwd2, mlp, x0, seed=5))
        assert_close(b1.backward_drift(x0, 0.3), b2.backward_drift(x0, 0.3))
        assert_close(b1.sample(64, steps=4, seed=2).x, b2.sample(64, steps=4, seed=2).x)
        v1 = update_A(b1, torch.optim.SGD(fwd1.parameters(), lr=0.01), n=64, steps=5, seed=7)
    v2 = update_A(b2, torch.optim.SGD(fwd2.parameters(), lr=0.01), n=64, steps=5, seed=7)
    assert v1 == pytest.approx(v2, rel=1e-5)
    assert_close(fwd1.A(), fwd2.A())
    assert cnet.condition is None                                     # restored on exit


def test_one_condition_row_serves_the_batch():
    cnet, x = ConditionalScoreNet(4, 3, 16, 2, seed=0), torch.randn(8, 4, generator=torch.Generator().manual_seed(0))
    c = torch.tensor([[0.5, -1.0, 2.0]])
    with cnet.given(c):
        one = cnet(x, 0.4)
    with cnet.given(c.expand(8, -1)):
        assert_close(one, cnet(x, 0.4))


def test_encode_history_blocks():
    y = torch.arange(2 * 30 * 2, dtype=torch.float64).reshape(2, 30, 2)
    c = encode_history(y, 12)                                         # 2 whole seasons: steps 6..29
    assert c.shape == (2, 2 * 12 * 2)
    assert_close(c[:, :24], y[:, -12:].reshape(2, -1))
    assert_close(c[:, 24:], (0.5 * (y[:, 6:18] + y[:, 18:30])).reshape(2, -1))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_short_training_uses_the_history(trained, seed):
    """The best forecast that ignores the history is the marginal law of the future (here: random
    training futures); its CRPS is ≈ 1.38× the oracle's on this process, the trained model's ≈ 1.03×.
    Bounds: model < 0.85 × marginal and < 1.15 × oracle (both hold with ≥ 10% slack on seeds 0-2)."""
    mod = trained if seed == 0 else fit_forecaster(PROC, adaptive=True, seed=seed, **SHORT)
    l = mod.losses
    assert sum(l[-50:]) < 0.7 * sum(l[:50])
    y = PROC.simulate(300, T + H, seed=1000 + seed)
    hist, fut = y[:, :T], y[:, T:]
    ens = forecast(mod, hist, 64, nfe=10, seed=0)
    pool = PROC.simulate(4000, T + H, seed=2000 + seed)[:, T:]
    marginal = pool[torch.randint(0, 4000, (300, 64), generator=torch.Generator().manual_seed(seed))]
    mean, cov = PROC.predictive(hist, H)
    oracle_sd = cov[0].diagonal().sqrt().reshape(H, -1)
    from lsbcore.forecast import crps_gaussian
    c, c_marg = float(crps_ensemble(ens, fut).mean()), float(crps_ensemble(marginal, fut).mean())
    c_oracle = float(crps_gaussian(mean, oracle_sd, fut).mean())
    assert c < 0.85 * c_marg
    assert c < 1.15 * c_oracle


def test_units_and_shapes_round_trip(trained):
    mod = trained
    assert isinstance(mod, ForecastModel) and mod.adaptive
    y_train = PROC.simulate(mod.n_train_series, T + H, seed=mod.data_seed)[:, :T]
    assert_close(mod.loc, y_train.mean((0, 1)))
    assert_close(mod.scale, y_train.std((0, 1)))
    assert mod.bridge.dim == H * 3
    y = PROC.simulate(200, T + 6 + H, seed=77)
    hist, fut = y[:, :T + 6], y[:, T + 6:]
    ens = forecast(mod, hist, 50, nfe=10, seed=4)
    assert ens.shape == (200, 50, H, 3) and ens.dtype == torch.float64
    assert_close(ens, forecast(mod, hist[:, -T:], 50, nfe=10, seed=4))   # only the last `history` steps
    # data units: the ensemble's mean matches the truth's, its spread the exact predictive's
    mean, cov = PROC.predictive(hist, H)
    assert ((ens.mean((0, 1, 2)) - fut.mean((0, 1))).abs() < 0.15 * mod.scale).all()
    ratio = ens.std(1).mean((0, 1)) / cov[0].diagonal().sqrt().reshape(H, 3).mean(0)
    assert ((ratio > 0.8) & (ratio < 1.25)).all(), ratio


def test_determinism():
    kw = dict(SHORT, steps=30, a_every=5, warmup=0, freeze=0, n_train_series=500)
    a, b = fit_forecaster(PROC, seed=3, **kw), fit_forecaster(PROC, seed=3, **kw)
    assert a.losses == b.losses
    assert_close(torch.stack(a.A_history), torch.stack(b.A_history))
    assert len(a.A_history) == 7
    for p, q in zip(a.bridge.net.parameters(), b.bridge.net.parameters()):
        assert torch.equal(p, q)
    hist = PROC.simulate(5, T, seed=1)
    assert torch.equal(forecast(a, hist, 8, nfe=4, seed=2), forecast(b, hist, 8, nfe=4, seed=2))
    assert not torch.equal(forecast(a, hist, 8, nfe=4, seed=2), forecast(a, hist, 8, nfe=4, seed=3))
    assert not torch.equal(a.bridge.forward.A(), torch.zeros(H * 3, H * 3, dtype=torch.float64))
    vp = fit_forecaster(PROC, adaptive=False, seed=3, **kw)
    assert len(vp.A_history) == 1 and torch.equal(vp.bridge.forward.A(), torch.zeros(H * 3, H * 3, dtype=torch.float64))


def test_evaluate_rows(trained):
    res = evaluate(PROC, {"VSDM": trained}, n_series=20, n_samples=8, nfe=4, seed=1)
    assert list(res) == ["oracle", "VSDM", "seasonal naive", "VAR(13)"]
    assert all(r.crps.shape == (20,) and r.energy.shape == (20,) for r in res.values())


@pytest.mark.parametrize("call, exc, words", [
    (lambda m: fit_forecaster("x"), TypeError, "process"),
    (lambda m: fit_forecaster(PROC, history=6), ValueError, "history"),
    (lambda m: fit_forecaster(PROC, n_train_series=1), ValueError, "n_train_series"),
    (lambda m: fit_forecaster(PROC, steps=0), ValueError, "steps"),
    (lambda m: fit_forecaster(PROC, adaptive=1), TypeError, "adaptive"),
    (lambda m: fit_forecaster(PROC, a_decay=2.0), ValueError, "a_decay"),
    (lambda m: forecast("model", torch.zeros(2, T, 3)), TypeError, "model"),
    (lambda m: forecast(m, torch.zeros(2, T, 2)), ValueError, "histories"),
    (lambda m: forecast(m, torch.zeros(2, T - 1, 3)), ValueError, "histories"),
    (lambda m: forecast(m, torch.zeros(2, T, 3, dtype=torch.int64)), TypeError, "histories"),
    (lambda m: forecast(m, torch.zeros(2, T, 3), 0), ValueError, "n_samples"),
    (lambda m: forecast(m, torch.zeros(2, T, 3), nfe=5), ValueError, "nfe"),
    (lambda m: forecast(m, torch.zeros(2, T, 3), method="rk4"), ValueError, "method"),
    (lambda m: evaluate(PROC, {}), TypeError, "models"),
    (lambda m: evaluate(PROC, {"a": 3}), TypeError, "models"),
    (lambda m: evaluate(PROC, {"a": m}, n_samples=1), ValueError, "n_samples"),
    (lambda m: evaluate(LinearGaussianSSM(2, P, 2), {"a": m}), ValueError, "process"),
])
def test_bad_inputs(trained, call, exc, words):
    with pytest.raises(exc, match=words):
        call(trained)


def test_condition_checks():
    cnet, x = ConditionalScoreNet(4, 3, 16, 2), torch.zeros(8, 4)
    with pytest.raises(RuntimeError, match="given"):
        cnet(x, 0.5)
    with pytest.raises(ValueError, match="cond"):
        cnet.given(torch.zeros(8, 2)).__enter__()
    with pytest.raises(TypeError, match="cond"):
        cnet.given([[0.0] * 3]).__enter__()
    with pytest.raises(ValueError, match="rows"), cnet.given(torch.zeros(3, 3)):
        cnet(x, 0.5)


def test_fit_vsdm_checks_a_condition():
    """fit_vsdm(condition=...) needs a net with .given and one condition row per data row."""
    from lsbcore.bridges.vsdm_fit import fit_vsdm
    from lsbcore.nets import TimeMLP

    data = torch.randn(32, 4, generator=torch.Generator().manual_seed(0))
    cond = torch.randn(32, 3, generator=torch.Generator().manual_seed(1))
    with pytest.raises(TypeError, match="given"):
        fit_vsdm(data, net=TimeMLP(4, 8, 1), condition=cond, steps=1, progress=False)
    with pytest.raises(ValueError, match="one row per data row"):
        fit_vsdm(data, net=ConditionalScoreNet(4, 3, 8, 1), condition=cond[:5], steps=1, progress=False)
    with pytest.raises(TypeError, match="net"):
        fit_vsdm(data, net="mlp", steps=1, progress=False)
