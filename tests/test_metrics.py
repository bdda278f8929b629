"""Metrics on cases with known answers, and against independent implementations (POT, SciPy)."""
import math

import numpy as np
import ot
import pytest
import scipy.stats
import torch

from lsbcore.marginals import Gaussian
from lsbcore.metrics import (bures_w2, bures_w2_to_gaussian, energy_distance, memorisation_ratio, mmd, sliced_w2,
                             straightness, w2, w2_report)
from lsbcore.sde import sample_ode


def _pts(n, d, seed):
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


@pytest.mark.parametrize("d", [1, 2, 5])
def test_w2_of_a_shifted_copy_is_the_shift(d):
    # E‖X − Y‖² ≥ ‖E(X − Y)‖² = ‖s‖² for any coupling, and the translation attains it
    x = _pts(200, d, 0)
    s = torch.linspace(0.5, 2.0, d, dtype=torch.float64)
    assert w2(x, x + s) == pytest.approx(float(s.norm()), rel=1e-9)
    assert w2(x, x) == pytest.approx(0.0, abs=1e-7)  # √(float64 round-off in M ~ 1e-16)


def test_w2_small_cases_and_weights():
    x = torch.tensor([[0.0, 0.0], [1.0, 0.0]])
    y = torch.tensor([[0.0, 1.0], [1.0, 1.0]])
    assert w2(x, y) == pytest.approx(1.0)
    # all mass of a on the first point: W2² = ½ (1 + 2)
    assert w2(x, y, a=torch.tensor([1.0, 0.0])) == pytest.approx(math.sqrt(1.5))
    # against POT called directly on unequal sizes
    a, b = _pts(30, 3, 1), _pts(45, 3, 2) + 1
    expected = math.sqrt(ot.emd2(np.full(30, 1 / 30), np.full(45, 1 / 45), ot.dist(a.numpy(), b.numpy())))
    assert w2(a, b) == pytest.approx(expected, rel=1e-9)


def test_w2_report_has_a_noise_floor():
    target = Gaussian(torch.zeros(2), 1.0)
    good = target.sample(300, seed=123)
    rep = w2_report(good, target, seed=0)
    assert rep.n == 300 and rep.floor > 0 and "noise floor" in str(rep)
    # a sample of the target is at the floor's level; a shifted one is ≥ shift − floor (triangle inequality)
    bad = w2_report(good + 3.0, target, seed=0)
    assert bad.w2 >= 3 * math.sqrt(2) - rep.w2 - 1e-9
    assert rep.w2 < 2 * max(rep.floor, bad.floor)
    pool = target.sample(700, seed=5)
    rp = w2_report(good, pool, seed=1)
    assert rp == w2_report(good, pool, seed=1) and rp.floor > 0
    with pytest.raises(ValueError, match="2n = 600"):
        w2_report(good, pool[:500])


def test_sliced_w2_of_a_shift_and_against_pot():
    # per direction the 1-D W2² of a shift is exactly (θ·s)²; E_θ (θ·s)² = ‖s‖²/d on the sphere
    x = _pts(500, 2, 3)
    s = torch.tensor([3.0, -1.0], dtype=torch.float64)
    P = 4000
    sw = sliced_w2(x, x + s, n_projections=P, seed=0)
    # (θ·s)² = ‖s‖² cos²φ: mean ½‖s‖², sd of the MC mean ‖s‖² √(1/8/P); 4 sd on the square root
    tol = 4 * float(s.norm()) ** 2 * math.sqrt(1 / 8 / P) / (2 * float(s.norm()) / math.sqrt(2))
    assert sw == pytest.approx(float(s.norm()) / math.sqrt(2), abs=tol)
    # unequal sizes, same directions: equal to POT's exact 1-D computation
    a, b = _pts(120, 3, 4), _pts(77, 3, 5) * 2
    theta = _pts(3, 50, 6)
    theta = theta / theta.norm(dim=0, keepdim=True)
    expected = ot.sliced_wasserstein_distance(a.numpy(), b.numpy(), projections=theta.numpy())
    assert sliced_w2(a, b, projections=theta) == pytest.approx(float(expected), rel=1e-9)
    # the same measure written with repeated points has distance 0
    assert sliced_w2(a, torch.cat([a, a])) == pytest.approx(0.0, abs=1e-9)


def test_mmd_known_values():
    x = _pts(300, 2, 7)
    assert mmd(x, x) == 0.0
    # point masses: MMD² = Σ_h 2 − 2 exp(−‖a − b‖²/(2h²))
    a, b = torch.zeros(5, 2), torch.tensor([[1.0, 1.0]]).expand(8, 2)
    hs = (0.5, 1.0, 2.0)
    expected = sum(2 - 2 * math.exp(-2.0 / (2 * h * h)) for h in hs)
    assert mmd(a, b, bandwidths=hs) == pytest.approx(math.sqrt(expected))


def test_mmd_between_gaussians_matches_closed_form():
    # X ~ N(0, I), Y ~ N(μ, I) in d = 2, one RBF bandwidth h:
    # E k(X, X') = (h²/(h²+2))^{d/2},  E k(X, Y) = (h²/(h²+2))^{d/2} exp(−‖μ‖²/(2(h²+2)))
    n, h, mu = 2000, 1.0, torch.tensor([2.0, 0.0], dtype=torch.float64)
    c = (h * h / (h * h + 2)) ** (2 / 2)
    exact = math.sqrt(2 * c * (1 - math.exp(-float(mu @ mu) / (2 * (h * h + 2)))))
    est = mmd(_pts(n, 2, 8), _pts(n, 2, 9) + mu, bandwidths=(h,))
    # Gretton et al. (2012), Thm 7: |MMD_b − MMD| ≤ 2√(K/n) + √(2K log(1/α)/n), K = sup k = 1, α = 1e-6
    assert abs(est - exact) < 2 * math.sqrt(1 / n) + math.sqrt(2 * math.log(1e6) / n)


def test_energy_distance_matches_scipy_in_1d_and_point_masses():
    x, y = _pts(150, 1, 10), _pts(90, 1, 11) * 1.5 + 0.3
    # for any two laws 2E|X−Y| − E|X−X'| − E|Y−Y'| = 2∫(F−G)²; scipy returns the square root of it
    ed = scipy.stats.energy_distance(x[:, 0].numpy(), y[:, 0].numpy())
    assert energy_distance(x, y) == pytest.approx(ed**2, rel=1e-9)
    assert energy_distance(x, x) == pytest.approx(0.0, abs=1e-12)
    a, b = torch.zeros(4, 3), torch.tensor([[3.0, 4.0, 0.0]]).expand(6, 3)
    assert energy_distance(a, b) == pytest.approx(2 * 5.0)


def test_bures_w2_closed_forms():
    # 1-D: (m0 − m1)² + (s0 − s1)²
    assert bures_w2([1.0], [[4.0]], [-1.0], [[9.0]]) == pytest.approx(math.sqrt(4 + 1))
    # commuting covariances: Σ (√a − √b)²
    assert bures_w2([0.0, 0.0], torch.diag(torch.tensor([1.0, 4.0])), [0.0, 0.0],
                    torch.diag(torch.tensor([9.0, 1.0]))) == pytest.approx(math.sqrt(4 + 1))
    # general covariances: POT's independent implementation
    A, B = _pts(3, 3, 12), _pts(3, 3, 13)
    S0, S1 = A @ A.T + 0.1 * torch.eye(3, dtype=torch.float64), B @ B.T + 0.2 * torch.eye(3, dtype=torch.float64)
    m0, m1 = torch.tensor([1.0, 0, 0], dtype=torch.float64), torch.tensor([0, 2.0, 0], dtype=torch.float64)
    expected = float(ot.gaussian.bures_wasserstein_distance(m0.numpy(), m1.numpy(), S0.numpy(), S1.numpy()))
    assert bures_w2(m0, S0, m1, S1) == pytest.approx(expected, rel=1e-7)
    assert bures_w2(m0, S0, m0, S0) == pytest.approx(0.0, abs=1e-6)


def test_bures_w2_to_gaussian_of_a_gaussian_sample_is_small():
    n = 20_000
    x = Gaussian(torch.tensor([1.0, -1.0]), torch.tensor([[2.0, 0.5], [0.5, 1.0]])).sample(n, seed=0)
    d = bures_w2_to_gaussian(x, [1.0, -1.0], [[2.0, 0.5], [0.5, 1.0]])
    # the sample mean alone is off by ~ √(tr Σ / n); the covariance term is of the same order
    assert 0 < d < 6 * math.sqrt(3.0 / n)
    assert bures_w2_to_gaussian(x, [4.0, -1.0], [[2.0, 0.5], [0.5, 1.0]]) == pytest.approx(3.0, abs=6 * math.sqrt(3.0 / n))


def test_straightness_known_paths():
    K = 1000
    t = torch.linspace(0, 1, K + 1, dtype=torch.float64)
    d = torch.tensor([3.0, 4.0], dtype=torch.float64)
    straight = t[:, None, None] * d + torch.zeros(1, 2, 2, dtype=torch.float64)
    assert straightness(straight) == pytest.approx(0.0, abs=1e-20)
    # straight but accelerating, x_t = t² d: ∫ (2t − 1)² ‖d‖² dt = ‖d‖²/3 (midpoint rule: error ‖d‖² h²/3)
    assert straightness(t[:, None, None] ** 2 * d) == pytest.approx(25 / 3, abs=25 / K**2)
    # quarter circle at constant speed π/2: π²/4 − ‖x1 − x0‖² = π²/4 − 2
    arc = torch.stack([torch.cos(math.pi * t / 2), torch.sin(math.pi * t / 2)], -1)[:, None, :]
    assert straightness(arc) == pytest.approx(math.pi**2 / 4 - 2, rel=1e-5)
    # on a sub-interval with its own times (chord velocity uses the span)
    assert straightness(arc[500:], times=t[500:]) >= 0


def test_straightness_of_sampler_results():
    class Constant:
        sigma = 0.0

        def velocity(self, x, t):
            return torch.ones_like(x)

    r = sample_ode(Constant(), torch.zeros(10, 2), steps=5, keep_traj=True)
    assert straightness(r) == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="keep_traj"):
        straightness(sample_ode(Constant(), torch.zeros(10, 2), steps=5))


def test_argument_validation():
    x = _pts(10, 2, 0)
    with pytest.raises(ValueError, match="y must have dimension 2"):
        w2(x, _pts(10, 3, 1))
    with pytest.raises(ValueError, match="x contains NaN"):
        mmd(torch.full((3, 2), float("nan")), x)
    with pytest.raises(ValueError, match="bandwidths"):
        mmd(x, x, bandwidths=(0.0,))
    with pytest.raises(ValueError, match="a must have shape"):
        w2(x, x, a=torch.ones(3))
    with pytest.raises(ValueError, match="cov must be positive semi-definite"):
        bures_w2([0.0], [[-1.0]], [0.0], [[1.0]])
    with pytest.raises(ValueError, match="traj must have shape"):
        straightness(torch.zeros(1, 3, 2))
    with pytest.raises(ValueError, match="times must be strictly monotone"):
        straightness(torch.zeros(3, 2, 2), times=torch.tensor([0.0, 0.5, 0.5]))
    with pytest.raises(ValueError, match="n_projections"):
        sliced_w2(x, x, n_projections=0)


def test_memorisation_ratio_is_zero_for_copies_and_one_for_held_out_data():
    gen = torch.Generator().manual_seed(0)
    train, fresh = torch.randn(200, 3, generator=gen), torch.randn(150, 3, generator=gen)
    assert memorisation_ratio(train[:50].clone(), train, fresh) == 0.0
    assert memorisation_ratio(fresh, train, fresh) == pytest.approx(1.0)
    # points halfway to their nearest training point: the median distance halves exactly
    nn = train[torch.cdist(fresh, train).argmin(1)]
    assert memorisation_ratio((fresh + nn) / 2, train, fresh) == pytest.approx(0.5)


def test_memorisation_ratio_bad_input_is_named():
    x = torch.randn(10, 2)
    with pytest.raises(ValueError, match="train"):
        memorisation_ratio(x, torch.randn(10, 3), x)
    with pytest.raises(ValueError, match="reference"):
        memorisation_ratio(x, x, torch.full((4, 2), float("nan")))
    with pytest.raises(ValueError, match="undefined"):
        memorisation_ratio(x, x, x[:3])
