"""Forecasting with a known answer (lsbcore.forecast): scores against closed forms, the Kalman predictive
against an independent formula and a Monte-Carlo simulation, the oracle against the baselines."""
import math

import numpy as np
import pytest
import scipy.integrate
import scipy.stats
import torch

from lsbcore.forecast import (LinearGaussianSSM, NonlinearSSM, crps_ensemble, crps_gaussian, energy_score, fit_var,
                              seasonal_naive)

DT = torch.float64


def _gen(seed):
    return torch.Generator().manual_seed(seed)


# ---------------------------------------------------------------------------- scores
@pytest.mark.parametrize("mu, sigma, y", [(0.0, 1.0, 0.0), (0.3, 0.5, 1.7), (-2.0, 3.0, 4.0), (1.0, 0.01, 0.99)])
def test_crps_gaussian_is_the_integral_of_the_squared_cdf_gap(mu, sigma, y):
    F = scipy.stats.norm(mu, sigma).cdf
    lo, hi = mu - 40 * sigma, mu + 40 * sigma
    left = scipy.integrate.quad(lambda z: F(z) ** 2, min(lo, y), y, epsabs=1e-13, limit=200)[0]
    right = scipy.integrate.quad(lambda z: (1 - F(z)) ** 2, y, max(hi, y), epsabs=1e-13, limit=200)[0]
    got = float(crps_gaussian(mu, sigma, torch.tensor(y, dtype=DT)))
    assert got == pytest.approx(left + right, rel=1e-8, abs=1e-12)


def test_crps_gaussian_broadcasts_and_tends_to_the_absolute_error():
    out = crps_gaussian(torch.zeros(4, 1), torch.tensor([1.0, 2.0]), torch.zeros(4, 2))
    assert out.shape == (4, 2) and out.dtype == DT
    # σ (2φ(0) − 1/√π) = σ (√2 − 1)/√π at y = μ: linear in σ
    torch.testing.assert_close(out[0], torch.tensor([1.0, 2.0], dtype=DT) * (math.sqrt(2) - 1) / math.sqrt(math.pi))
    assert float(crps_gaussian(0.0, 1e-9, 2.5)) == pytest.approx(2.5, rel=1e-8)


def _brute_crps(x, y, fair):  # x (m,), y scalar: the double sum written out
    m = x.shape[0]
    pairs = (x[:, None] - x[None, :]).abs().sum()
    return (x - y).abs().mean() - pairs / (2 * m * ((m - 1) if fair else m))


@pytest.mark.parametrize("fair", [True, False])
def test_crps_ensemble_sorting_formula_equals_the_double_sum(fair):
    x = torch.randn(5, 7, 2, 3, generator=_gen(0), dtype=DT)
    y = torch.randn(5, 2, 3, generator=_gen(1), dtype=DT)
    got = crps_ensemble(x, y, fair=fair)
    want = torch.stack([_brute_crps(x[i, :, j, k], y[i, j, k], fair) for i in range(5) for j in range(2)
                        for k in range(3)]).reshape(5, 2, 3)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


def test_crps_ensemble_of_a_gaussian_sample_matches_the_closed_form_within_its_standard_error():
    n, m = 400, 300
    mu = torch.randn(n, generator=_gen(2), dtype=DT)
    sd = 0.5 + torch.rand(n, generator=_gen(3), dtype=DT)
    y = 2 * torch.randn(n, generator=_gen(4), dtype=DT)
    x = mu[:, None] + sd[:, None] * torch.randn(n, m, generator=_gen(5), dtype=DT)
    diff = crps_ensemble(x, y) - crps_gaussian(mu, sd, y)          # the fair estimator is unbiased
    se = float(diff.std()) / math.sqrt(n)
    assert abs(float(diff.mean())) < 4 * se, (float(diff.mean()), se)
    assert se < 5e-3                                                 # and the check has teeth
    # the standard (empirical-law) estimator exceeds the fair one by ½E|X−X'|/m ≈ σ/(√π m) on average
    bias = crps_ensemble(x, y, fair=False) - crps_ensemble(x, y)
    assert float((bias * m / (sd / math.sqrt(math.pi))).mean()) == pytest.approx(1.0, rel=0.02)


@pytest.mark.parametrize("fair", [True, False])
def test_energy_score_in_one_dimension_is_the_crps_and_matches_a_brute_force_sum(fair):
    x = torch.randn(6, 9, 1, generator=_gen(6), dtype=DT)
    y = torch.randn(6, 1, generator=_gen(7), dtype=DT)
    torch.testing.assert_close(energy_score(x, y, fair=fair), crps_ensemble(x, y, fair=fair)[:, 0])
    xs, ys = torch.randn(3, 8, 4, 2, generator=_gen(8), dtype=DT), torch.randn(3, 4, 2, generator=_gen(9), dtype=DT)
    m = 8
    for i in range(3):
        v, w = xs[i].reshape(m, -1), ys[i].reshape(-1)
        pairs = sum(float((v[a] - v[b]).norm()) for a in range(m) for b in range(m))
        want = float((v - w).norm(dim=1).mean()) - pairs / (2 * m * ((m - 1) if fair else m))
        assert float(energy_score(xs, ys, fair=fair)[i]) == pytest.approx(want, rel=1e-12)


def test_energy_score_is_smallest_in_expectation_for_the_true_law():
    n, m, D = 2000, 50, 6
    A = torch.randn(D, D, generator=_gen(10), dtype=DT) / math.sqrt(D)
    cov = A @ A.T + 0.2 * torch.eye(D, dtype=DT)
    L = torch.linalg.cholesky(cov)
    y = torch.randn(n, D, generator=_gen(11), dtype=DT) @ L.T
    z = torch.randn(n, m, D, generator=_gen(12), dtype=DT) @ L.T
    true = energy_score(z, y)
    uncorrelated = z @ torch.linalg.inv(L).T * cov.diagonal().sqrt()   # the right marginals, no correlation
    for wrong in (z + 0.3, 1.5 * z, 0.7 * z, uncorrelated):
        diff = energy_score(wrong, y) - true                        # paired: same truths, same noise
        assert float(diff.mean()) > 4 * float(diff.std()) / math.sqrt(n)


# ---------------------------------------------------------------------------- the Kalman predictive
def _stationary_conditional(model, history, horizon):
    """Independent of the filter: stack y_1..y_{T+H}, build its joint covariance from the stationary
    autocovariances Cov(y_{s+l}, y_s) = H F^l P∞ Hᵀ (+R at l = 0), and condition the Gaussian."""
    T, d = history.shape[1], model.d_obs
    N = T + horizon
    Fl = [torch.linalg.matrix_power(model.F, lag) for lag in range(N)]
    G = torch.empty(N * d, N * d, dtype=DT)
    for s in range(N):
        for t in range(N):
            lag = abs(t - s)
            blk = model.H @ Fl[lag] @ model.P_inf @ model.H.T + (model.R if lag == 0 else 0)
            G[t * d:(t + 1) * d, s * d:(s + 1) * d] = blk if t >= s else blk.T
    h, f = slice(0, T * d), slice(T * d, N * d)
    if T == 0:                                                        # nothing to condition on
        return model.c.repeat(horizon).reshape(1, horizon, d), G
    gain = torch.linalg.solve(G[h, h], G[h, f]).T
    hist = (history - model.c).reshape(history.shape[0], -1)
    mean = model.c.repeat(horizon) + hist @ gain.T
    cov = G[f, f] - gain @ G[h, f]
    return mean.reshape(-1, horizon, d), cov


@pytest.mark.parametrize("d_obs, n_harmonics, seed", [(3, 2, 0), (4, 3, 1)])
def test_kalman_predictive_equals_gaussian_conditioning_of_the_stationary_law(d_obs, n_harmonics, seed):
    model = LinearGaussianSSM(d_obs, 12, n_harmonics, seed=seed)
    torch.testing.assert_close(model.F @ model.P_inf @ model.F.T + model.Q, model.P_inf, rtol=1e-9, atol=1e-11)
    history = model.simulate(5, 30, seed=seed + 10)
    mean, cov = model.predictive(history, 7)
    mean2, cov2 = _stationary_conditional(model, history, 7)
    assert mean.shape == (5, 7, d_obs) and cov.shape == (5, 7 * d_obs, 7 * d_obs)
    torch.testing.assert_close(mean, mean2, rtol=1e-7, atol=1e-8)
    torch.testing.assert_close(cov[3], cov2, rtol=1e-7, atol=1e-8)


def test_kalman_predictive_is_calibrated_and_uses_all_the_history_on_a_long_simulation():
    """Simulate N (history, future) pairs. If the predictive N(mean, C) is the conditional law, the
    whitened errors z = L⁻¹(future − mean) (C = L Lᵀ) are N(0, I) *and independent of the history*:
    mean 0, covariance I, zero correlation with every history value, uniform PIT. The unconditional
    law of the future passes the first checks too, so the test asserts that it fails the third, and so
    does the exact law given only the last 6 observations."""
    model, T, H, N = LinearGaussianSSM(3, 12, 2, seed=3), 24, 6, 6000
    y = model.simulate(N, T + H, seed=4)
    hist, fut = y[:, :T], y[:, T:].reshape(N, -1)
    mean, cov = model.predictive(hist, H)
    L = torch.linalg.cholesky(cov[0])
    z = torch.linalg.solve_triangular(L, (fut - mean.reshape(N, -1)).T, upper=False).T      # (N, 18)
    tol = 5 / math.sqrt(N)                              # ~5 standard errors of a mean / correlation
    assert float(z.mean(0).abs().max()) < tol
    C = torch.cov(z.T)
    assert float((C - torch.eye(H * 3, dtype=DT)).abs().max()) < tol * math.sqrt(2)   # sd of a variance is √(2/N)

    def max_corr(err):
        hs = (hist.reshape(N, -1) - hist.reshape(N, -1).mean(0)) / hist.reshape(N, -1).std(0)
        es = (err - err.mean(0)) / err.std(0)
        return float((hs.T @ es / (N - 1)).abs().max())
    assert max_corr(z) < tol
    Lu = torch.linalg.cholesky(_stationary_conditional(model, hist[:, :0], H)[1])      # no history at all
    z_unc = torch.linalg.solve_triangular(Lu, (fut - model.c.repeat(H)).T, upper=False).T
    assert max_corr(z_unc) > 4 * tol
    m6, c6 = model.predictive(hist[:, -6:], H)                     # exact given the last 6 steps only
    z6 = torch.linalg.solve_triangular(torch.linalg.cholesky(c6[0]), (fut - m6.reshape(N, -1)).T, upper=False).T
    assert max_corr(z6) > 2 * tol
    std = cov[0].diagonal().sqrt()
    pit = scipy.stats.norm.cdf(((fut - mean.reshape(N, -1)) / std).numpy())
    pvals = [scipy.stats.kstest(pit[:, j], "uniform").pvalue for j in range(H * 3)]
    assert min(pvals) > 1e-3 / len(pvals)


def test_sample_future_draws_from_the_predictive_and_is_seeded():
    model = LinearGaussianSSM(3, 12, 2, seed=5)
    hist = model.simulate(2, 20, seed=6)
    mean, cov = model.predictive(hist, 4)
    s = model.sample_future(hist, 4, 20000, seed=7)
    assert s.shape == (2, 20000, 4, 3)
    torch.testing.assert_close(s, model.sample_future(hist, 4, 20000, seed=7))
    flat = s[1].reshape(20000, -1)
    sd = cov[1].diagonal().sqrt()
    assert float(((flat.mean(0) - mean[1].reshape(-1)) / sd).abs().max()) < 5 / math.sqrt(20000)
    corr = torch.corrcoef(flat.T) - cov[1] / (sd[:, None] * sd[None, :])
    assert float(corr.abs().max()) < 5 / math.sqrt(20000)


# ---------------------------------------------------------------------------- the nonlinear process
def test_nonlinear_reference_depends_on_the_last_period_only_and_is_calibrated():
    model = NonlinearSSM(3, 12, seed=0)
    y = model.simulate(3000, 40, seed=1)
    hist, fut = y[:, :36], y[:, 36:]
    ref = model.reference_future(hist, 4, 19, seed=2)
    changed = hist.clone()
    changed[:, :-12] += 5.0
    torch.testing.assert_close(model.reference_future(changed, 4, 19, seed=2), ref)
    # rank of the truth among 19 exact draws is uniform on {0..19}, at every step and coordinate
    ranks = (ref < fut[:, None]).sum(1).reshape(3000, -1)
    for j in range(ranks.shape[1]):
        counts = np.bincount(ranks[:, j].numpy(), minlength=20)
        assert scipy.stats.chisquare(counts).pvalue > 1e-3 / ranks.shape[1]
    # and the law is not Gaussian: one-step draws have Student-t tails (kurtosis of t₄ is infinite)
    one = model.reference_future(hist[:5], 1, 20000, seed=3)[:, :, 0]
    e = (one - one.mean(1, keepdim=True)) / one.std(1, keepdim=True)
    assert float((e ** 4).mean(1).min()) > 4.5


# ---------------------------------------------------------------------------- baselines and the oracle
def test_fit_var_recovers_the_coefficients_of_a_true_var():
    d, n, T = 3, 40, 500
    A1 = torch.tensor([[0.5, 0.1, 0.0], [-0.2, 0.4, 0.1], [0.0, 0.3, 0.6]], dtype=DT)
    A2 = torch.tensor([[-0.2, 0.0, 0.05], [0.0, -0.1, 0.0], [0.1, 0.0, -0.3]], dtype=DT)
    c = torch.tensor([1.0, -1.0, 0.5], dtype=DT)
    S = torch.tensor([[1.0, 0.3, 0.0], [0.3, 0.5, 0.1], [0.0, 0.1, 0.8]], dtype=DT)
    gen, LS, ys = _gen(20), torch.linalg.cholesky(S), [torch.zeros(n, d, dtype=DT)] * 2
    for _ in range(100 + T):
        ys.append(c + ys[-1] @ A1.T + ys[-2] @ A2.T + torch.randn(n, d, generator=gen, dtype=DT) @ LS.T)
    y = torch.stack(ys[-T:], 1)
    var = fit_var(y, 2)
    rows = n * (T - 2)
    X = torch.cat([torch.ones(rows, 1, dtype=DT), torch.cat([y[:, 1:-1], y[:, :-2]], -1).reshape(rows, 2 * d)], 1)
    xtx_inv = torch.linalg.inv(X.T @ X).diagonal()                       # OLS: Var β̂_ji = Σ_ii (XᵀX)⁻¹_jj
    se = (xtx_inv[:, None] * S.diagonal()[None, :]).sqrt()            # (1 + 2d, d)
    err = torch.cat([(var.intercept - c)[None], (var.coefs[0] - A1).T, (var.coefs[1] - A2).T])
    assert float((err / se).abs().max()) < 5
    se_cov = ((S.diagonal()[:, None] * S.diagonal()[None, :] + S ** 2) / rows).sqrt()
    assert float(((var.noise_cov - S) / se_cov).abs().max()) < 5
    f = var.forecast(y[:2], 3, 50000, seed=21)
    torch.testing.assert_close(f.point[:, 0], var.intercept + y[:2, -1] @ var.coefs[0].T + y[:2, -2] @ var.coefs[1].T)
    one = f.samples[0, :, 0]
    assert float(((one.mean(0) - f.point[0, 0]) / var.noise_cov.diagonal().sqrt()).abs().max()) < 5 / math.sqrt(50000)
    assert float((torch.cov(one.T) - var.noise_cov).abs().max()) < 0.03


def test_seasonal_naive_repeats_the_last_season_and_draws_its_own_residuals():
    T, P = 10, 4
    y = torch.arange(T * 2, dtype=DT).reshape(1, T, 2) ** 1.5
    f = seasonal_naive(y, 9, P, n_samples=30, seed=0)
    assert f.point.shape == (1, 9, 2) and f.samples.shape == (1, 30, 9, 2)
    for h in range(9):
        torch.testing.assert_close(f.point[0, h], y[0, T - P + h % P])
    resid = y[0, P:] - y[0, :-P]                                         # (T − P, 2)
    err = f.samples[0, :, 0] - f.point[0, 0]                             # one residual vector each
    assert all(bool(((resid - e).abs().max(1).values < 1e-12).any()) for e in err)


@pytest.mark.parametrize("kind", ["linear", "nonlinear"])
def test_the_oracle_beats_seasonal_naive_and_a_fitted_var_on_three_seeds(kind):
    n, T, H, P = 300, 48, 12, 12
    for seed in range(3):
        model = LinearGaussianSSM(3, P, 2, seed=seed) if kind == "linear" else NonlinearSSM(3, P, seed=seed)
        y = model.simulate(n, T + H, seed=100 + seed)
        hist, fut = y[:, :T], y[:, T:]
        if kind == "linear":
            mean, cov = model.predictive(hist, H)
            oracle = crps_gaussian(mean, cov[0].diagonal().sqrt().reshape(H, 3), fut).mean((1, 2))
            ens = model.sample_future(hist, H, 100, seed=1)
            gap = crps_ensemble(ens, fut).mean((1, 2)) - oracle             # the two oracle CRPS agree
            assert abs(float(gap.mean())) < 4 * float(gap.std()) / math.sqrt(n)
        else:
            ens = model.reference_future(hist, H, 100, seed=1)
            oracle = crps_ensemble(ens, fut).mean((1, 2))
        es_oracle = energy_score(ens, fut)
        var = fit_var(model.simulate(100, 120, seed=200 + seed), P + 1)
        for name, f in (("seasonal naive", seasonal_naive(hist, H, P, 100, seed=2)),
                        ("VAR(13)", var.forecast(hist, H, 100, seed=3))):
            for diff in (crps_ensemble(f.samples, fut).mean((1, 2)) - oracle, energy_score(f.samples, fut) - es_oracle):
                se = float(diff.std()) / math.sqrt(n)                        # paired over the same series
                assert float(diff.mean()) > 3 * se, (kind, seed, name, float(diff.mean()), se)


# ---------------------------------------------------------------------------- bad input
_M = LinearGaussianSSM(3, 12, 2, seed=0)
_NL = NonlinearSSM(3, 12, seed=0)
_Y = _M.simulate(2, 30, seed=0)
_VAR = fit_var(_M.simulate(10, 40, seed=1), 2)


def _with_nan(x):
    x = x.clone()
    x[1, 3, 2] = math.nan
    return x


@pytest.mark.parametrize("call, exc, match", [
    (lambda: crps_gaussian(0.0, 0.0, 1.0), ValueError, "std"),
    (lambda: crps_gaussian(0.0, 1.0, torch.tensor([0.0, math.nan])), ValueError, "y contains NaN"),
    (lambda: crps_gaussian(torch.zeros(3), 1.0, torch.zeros(2)), ValueError, "broadcast"),
    (lambda: crps_ensemble(torch.zeros(4, 1, 2), torch.zeros(4, 2)), ValueError, "n_samples ≥ 2"),
    (lambda: crps_ensemble(torch.zeros(4, 5, 2), torch.zeros(4, 3)), ValueError, "samples must have shape"),
    (lambda: crps_ensemble(torch.zeros(4, 5), torch.full((4,), math.inf)), ValueError, "y contains"),
    (lambda: energy_score(np.zeros((4, 5, 2)), torch.zeros(4, 2)), TypeError, "samples"),
    (lambda: energy_score(torch.zeros(4, 5, 2, dtype=torch.int64), torch.zeros(4, 2)), TypeError, "samples"),
    (lambda: _M.predictive(_Y, 0), ValueError, "horizon"),
    (lambda: _M.predictive(_Y, 2.0), TypeError, "horizon"),
    (lambda: _M.predictive(_Y[0], 3), ValueError, "history must have shape"),
    (lambda: _M.predictive(_Y[..., :2], 3), ValueError, "history must have d_obs = 3"),
    (lambda: _M.predictive(_Y[:, :0], 3), ValueError, "history is too short"),
    (lambda: _M.predictive(_with_nan(_Y), 3), ValueError, "history contains NaN"),
    (lambda: _M.predictive(_Y.long(), 3), TypeError, "history"),
    (lambda: _M.sample_future(_Y, 3, 0), ValueError, "n_samples"),
    (lambda: _M.simulate(0, 5), ValueError, "n_series"),
    (lambda: LinearGaussianSSM(3, 12, 6), ValueError, "n_harmonics"),
    (lambda: LinearGaussianSSM(3, 2, 1), ValueError, "period"),
    (lambda: _NL.reference_future(_Y[:, :11], 3, 5), ValueError, "history is too short"),
    (lambda: _NL.reference_future(_Y, 3, 5, seed=1.5), TypeError, "seed"),
    (lambda: seasonal_naive(_Y[:, :12], 3, 12), ValueError, "history is too short"),
    (lambda: seasonal_naive(_Y, -1, 12), ValueError, "horizon"),
    (lambda: fit_var(_Y[:, :5], 2), ValueError, "regression rows"),
    (lambda: fit_var(_Y, 0), ValueError, "order"),
    (lambda: _VAR.forecast(_Y[:, :1], 3), ValueError, "history is too short"),
    (lambda: _VAR.forecast(_Y[..., :2], 3), ValueError, "d_obs"),
])
def test_bad_input_raises_naming_the_argument(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
