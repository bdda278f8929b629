"""Marginals: moments against their definitions, log_prob against torch.distributions, seeding, errors."""
import math

import pytest
import torch

from lsbcore import marginals as M
from lsbcore.utils import check_points, check_positive, check_same_device, check_time, check_weights, generator


def test_gaussian_moments_and_log_prob():
    mean = torch.tensor([1.0, -2.0])
    cov = torch.tensor([[2.0, 0.6], [0.6, 1.0]])
    rho = M.Gaussian(mean, cov)
    n = 200_000
    x = rho.sample(n, seed=3)
    # Monte-Carlo error of the mean is sqrt(var/n); allow 5 standard errors
    se = torch.sqrt(torch.diag(cov) / n)
    assert ((x.mean(0) - mean).abs() < 5 * se).all()
    assert torch.allclose(torch.cov(x.T), cov, atol=5 * 2.0 * math.sqrt(2 / n) * 2)
    ref = torch.distributions.MultivariateNormal(mean, cov)
    torch.testing.assert_close(rho.log_prob(x[:50]), ref.log_prob(x[:50]))


def test_mixture_mean_cov_and_log_prob():
    gm = M.GaussianMixture([0.3, 0.7], [[0.0, 0.0], [3.0, 1.0]], [1.0, 0.25])
    x = gm.sample(300_000, seed=0)
    assert torch.allclose(x.mean(0), gm.mean, atol=0.02)
    assert torch.allclose(torch.cov(x.T), gm.cov, atol=0.05)
    mix = torch.distributions.MixtureSameFamily(
        torch.distributions.Categorical(torch.tensor([0.3, 0.7])),
        torch.distributions.MultivariateNormal(gm.means, gm.covs))
    torch.testing.assert_close(gm.log_prob(x[:100]), mix.log_prob(x[:100]))


def test_empirical_weights_and_sampling():
    pts = torch.tensor([[0.0], [1.0], [5.0]])
    e = M.Empirical(pts, torch.tensor([1.0, 1.0, 2.0]))
    torch.testing.assert_close(e.mean, torch.tensor([2.75]))
    x = e.sample(40_000, seed=1)
    frac5 = (x == 5.0).double().mean().item()
    assert abs(frac5 - 0.5) < 5 * math.sqrt(0.25 / 40_000)


@pytest.mark.parametrize("name", sorted(M.TOY_SETS))
def test_toy_sets_seeded_and_shaped(name):
    a = M.Toy2D(name).sample(500, seed=7)
    b = M.Toy2D(name).sample(500, seed=7)
    c = M.Toy2D(name).sample(500, seed=8)
    assert a.shape == (500, 2) and torch.isfinite(a).all()
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_eight_gaussians_centres():
    x = M.eight_gaussians(8000, seed=0)
    radius = x.norm(dim=1)
    assert abs(radius.mean().item() - 5.0) < 0.05  # blobs of std √0.1 on a circle of radius 5


def test_axis_scaling_of_anisotropic_sets():
    base = M.spiral(2000, seed=0)
    stretched = M.spiral(2000, seed=0, scale=(1.0, 8.0))
    torch.testing.assert_close(stretched[:, 1], 8 * base[:, 1])
    torch.testing.assert_close(stretched[:, 0], base[:, 0])
    cb = M.checkerboard(2000, seed=0, scale=(6.0, 1.0))
    torch.testing.assert_close(cb[:, 0], 6 * M.checkerboard(2000, seed=0)[:, 0])


def test_bad_inputs_name_the_argument():
    with pytest.raises(ValueError, match="cov"):
        M.Gaussian([0.0, 0.0], [[1.0, 2.0], [2.0, 1.0]])  # not positive definite
    with pytest.raises(ValueError, match="mean"):
        M.Gaussian([[0.0]])
    with pytest.raises(ValueError, match="weights"):
        M.GaussianMixture([-1.0, 2.0], [[0.0], [1.0]])
    with pytest.raises(ValueError, match="points"):
        M.Empirical(torch.tensor([[0.0], [float("nan")]]))
    with pytest.raises(ValueError, match="n"):
        M.moons(0)
    with pytest.raises(TypeError, match="seed"):
        M.moons(10, seed="a")
    with pytest.raises(ValueError, match="name"):
        M.Toy2D("circles")


def test_checks():
    with pytest.raises(ValueError, match="eps"):
        check_positive(0.0, "eps")
    with pytest.raises(ValueError, match="eps"):
        check_positive(float("inf"), "eps")
    with pytest.raises(TypeError, match="eps"):
        check_positive("1", "eps")
    with pytest.raises(ValueError, match="x0"):
        check_points(torch.zeros(3, 2), "x0", dim=3)
    with pytest.raises(ValueError, match="x0"):
        check_points(torch.zeros(0, 2), "x0")
    with pytest.raises(TypeError, match="x0"):
        check_points([1, 2], "x0")
    with pytest.raises(ValueError, match="a"):
        check_weights(torch.tensor([0.5, -0.5, 1.0]), "a", 3)
    with pytest.raises(ValueError, match="t"):
        check_time(1.5)
    torch.testing.assert_close(check_weights(torch.tensor([1.0, 3.0]), "a", 2), torch.tensor([0.25, 0.75]))
    assert check_same_device(x=torch.zeros(1), y=torch.zeros(1)) == torch.device("cpu")
    gen = generator(5)
    assert torch.equal(torch.rand(3, generator=gen), torch.rand(3, generator=generator(5)))
