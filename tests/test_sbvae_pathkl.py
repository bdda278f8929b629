"""The simulated path KL (lsbcore.bridges.sbvae_pathkl) against the closed forms of LinearSBVAE, the MLP
encoder, and fit_sbvae(objective="path_kl")."""
import math

import pytest
import torch

from lsbcore.bridges.sbvae import LinearEncoder, MLPEncoder, SBVAEBridge, fit_sbvae
from lsbcore.bridges.sbvae_exact import LinearSBVAE
from lsbcore.bridges.sbvae_pathkl import path_kl_mc

D64 = torch.float64

CONFIGS = {
    "2d-controlled": dict(data_mean=[1.0, -0.5], data_cov=[[1.0, 0.3], [0.3, 0.5]], F=-0.5, g=1.0, T=2.0,
                          K=[[-0.3, 0.1], [0.0, -0.2]], k=[0.1, 0.0], A=[[-0.8, 0.1], [0.05, -1.2]], a=[0.2, 0.1]),
    "3d-brownian": dict(data_mean=[2.0, 0.0, -1.0], data_cov=[0.3, 1.0, 2.0], F=0.0, g=0.8, T=1.5,
                        K=-0.9, A=-0.6, prior_var=0.7),
}


class Affine(torch.nn.Module):
    """x ↦ B x + c, ignoring the time (a linear control or a constant-in-time linear score)."""

    def __init__(self, B, c):
        super().__init__()
        self.B, self.c = torch.nn.Parameter(B.clone()), torch.nn.Parameter(c.clone())

    def forward(self, x, t=None):
        return x @ self.B.T + self.c


def linear_encoder(model: LinearSBVAE, kind: str):
    """A LinearEncoder with the model's K, k — or an MLPEncoder whose network is that linear map."""
    c = float(model.F[0, 0])
    assert torch.equal(model.F, c * torch.eye(model.dim, dtype=D64))
    if kind == "linear":
        enc = LinearEncoder(model.dim, c=c, g=model.g)
        with torch.no_grad():
            enc.K.copy_(model.K)
            enc.k.copy_(model.k)
        return enc
    enc = MLPEncoder(model.dim, c=c, g=model.g).double()
    enc.net = Affine(model.K, model.k)
    return enc


def data(model: LinearSBVAE, n: int, seed: int):
    gen = torch.Generator().manual_seed(seed)
    return model.m0 + torch.randn(n, model.dim, generator=gen, dtype=D64) @ torch.linalg.cholesky(model.S0).T


def discrete_expectation(model: LinearSBVAE, steps: int, score) -> float:
    """The exact expectation of path_kl_mc's estimator for a linear model: Euler–Maruyama keeps the
    paths Gaussian, with mean and covariance m ← P m + h b, S ← P S Pᵀ + g² h I (P = I + h M); the
    integrand of an affine score s = B x + c is quadratic (trapezoidal weights, as path_kl_mc).
    ``score(t)`` returns (B, c). An independent implementation: moment recursions, no sampling."""
    d, g, T = model.dim, model.g, model.T
    M, b = model.encoder_matrix
    h, eye = T / steps, torch.eye(d, dtype=D64)
    m, S = model.m0.clone(), model.S0.clone()
    dec = 0.0
    for k in range(steps + 1):
        w = 0.5 * h if k in (0, steps) else h
        B, c = score(k * h)
        v = B @ m + c
        dec += w * 0.5 * g**2 * float(torch.trace(B @ S @ B.T) + v @ v + 2 * torch.trace(B))
        if k < steps:
            P = eye + h * M
            m, S = P @ m + h * b, P @ S @ P.T + g**2 * h * eye
    prior = 0.5 * float(torch.trace(S) + m @ m) / model.prior_var + 0.5 * d * math.log(2 * math.pi * model.prior_var)
    return prior - T * float(torch.trace(M)) + dec - model.data_entropy()


def chain_expectation(model: LinearSBVAE, steps: int, score) -> float:
    """The exact expectation of ``path_kl_mc(form="discrete")`` for a linear model: with P = I + h M and
    X_{k+1} = P X_k + h β + g√h ξ, the step term's v = C X_k + e + g√h G ξ (G = g²B − M, C = M + G P,
    e = h G β + g² c), so E[(√h/g) ξ·v + (h/2g²)‖v‖²] = h tr G + (h/2g²)(E‖C X_k + e‖² + g² h ‖G‖²_F)."""
    d, g, T = model.dim, model.g, model.T
    M, beta = model.encoder_matrix
    h, eye = T / steps, torch.eye(d, dtype=D64)
    P = eye + h * M
    m, S = model.m0.clone(), model.S0.clone()
    total = 0.0
    for k in range(steps):
        B, c = score((k + 1) * h)
        G = g**2 * B - M
        C, e = M + G @ P, h * G @ beta + g**2 * c
        v = C @ m + e
        sq = float(torch.trace(C @ S @ C.T) + v @ v) + g**2 * h * float((G**2).sum())
        total += h * float(torch.trace(G)) + h / (2 * g**2) * sq
        m, S = P @ m + h * beta, P @ S @ P.T + g**2 * h * eye
    prior = 0.5 * float(torch.trace(S) + m @ m) / model.prior_var + 0.5 * d * math.log(2 * math.pi * model.prior_var)
    return prior + total - model.data_entropy()


@pytest.mark.parametrize("name, kind, form, divergence", [
    ("2d-controlled", "linear", "continuous", "exact"),
    ("2d-controlled", "mlp-with-linear-net", "continuous", "exact"),
    ("2d-controlled", "linear", "continuous", "hutchinson"),
    ("3d-brownian", "linear", "continuous", "exact"),
    ("2d-controlled", "mlp-with-linear-net", "discrete", "exact"),
    ("3d-brownian", "linear", "discrete", "exact"),
])
def test_path_kl_mc_matches_the_closed_form(name, kind, form, divergence):
    model = LinearSBVAE(**CONFIGS[name])
    enc = linear_encoder(model, kind)
    steps, n = 50, 20_000
    est = path_kl_mc(enc, Affine(model.A, model.a), data(model, n, 0), T=model.T, steps=steps,
                     prior_var=model.prior_var, data_entropy=model.data_entropy(), form=form,
                     divergence=divergence, seed=1)
    exact = model.path_kl()
    # Euler–Maruyama bias, computed exactly from the moment recursion: first order in h = T/steps
    expectation = discrete_expectation if form == "continuous" else chain_expectation
    bias = expectation(model, steps, lambda t: (model.A, model.a)) - exact
    bias2 = expectation(model, 2 * steps, lambda t: (model.A, model.a)) - exact
    assert abs(bias) < 1.5 * model.T / steps                      # 2-D: 0.019 (continuous), 0.011 (discrete)
    assert abs(bias2) < 0.6 * abs(bias)                           # halves with h
    # Monte Carlo: the estimate is within 4 standard errors of the discretised truth, and within
    # 4 s.e. + |bias| of the continuous-time closed form (2-D continuous: s.e. ≈ 0.012, exact 0.866)
    assert abs(float(est) - (exact + bias)) < 4 * est.stderr
    assert abs(float(est) - exact) < 4 * est.stderr + abs(bias)
    # the parts: ∇·b = tr M is the same at every point, so its term is exact (for the exact divergence)
    M, _ = model.encoder_matrix
    if form == "discrete":
        assert math.isnan(est.divergence_term)
        assert float(est) == pytest.approx(est.prior_term + est.decoder_term - model.data_entropy(), rel=1e-10)
        return
    if divergence == "exact":
        assert est.divergence_term == pytest.approx(-model.T * float(torch.trace(M)), rel=1e-12)
    assert float(est) == pytest.approx(est.prior_term + est.divergence_term + est.decoder_term
                                             - model.data_entropy(), rel=1e-10)


def test_score_based_encoder_with_the_exact_score_leaves_only_the_prior_loss():
    """u ≡ 0 (Brownian reference, for which Euler–Maruyama is exact in law) and s_θ = ∇log q_t:
    drift matching vanishes, so the estimate is the prior loss KL(q_T ‖ prior) alone."""
    model = LinearSBVAE(**dict(CONFIGS["2d-controlled"], F=0.0, K=0.0, k=0.0))
    steps, n = 50, 20_000

    def exact_affine(t):                                          # ∇log q_t(x) = −S_t⁻¹ x + S_t⁻¹ m_t
        m, S = model.q(torch.tensor([t], dtype=D64))
        Si = torch.linalg.inv(S[0])
        return -Si, Si @ m[0]

    def exact_score(x, tau):
        B, c = exact_affine(float(tau[0, 0]) * model.T)
        return x @ B.T + c

    enc = linear_encoder(model, "linear")
    est = path_kl_mc(enc, exact_score, data(model, n, 2), T=model.T, steps=steps, prior_var=model.prior_var,
                     data_entropy=model.data_entropy(), seed=3)
    bias = discrete_expectation(model, steps, exact_affine) - model.prior_loss()
    assert abs(bias) < 2e-3                                       # only the trapezoidal rule's O(h²)
    assert model.drift_matching() > 0.5                           # (so a wrong score would show)
    assert abs(float(est) - model.prior_loss()) < 4 * est.stderr + abs(bias)


def test_gradients_reach_encoder_and_decoder_and_match_finite_differences():
    """The paths are reparametrised: with the noise fixed by the seed the estimate is a smooth function
    of φ and θ, and autograd's derivative must match a central difference."""
    model = LinearSBVAE(**CONFIGS["2d-controlled"])
    x0 = data(model, 200, 4)
    for form in ("continuous", "discrete"):
        _check_finite_differences(model, x0, form)
    # a real MLP encoder and network decoder: every parameter tensor of the decoder gets a gradient;
    # the encoder's last layer is zero, so at the start only that layer's gradient can be non-zero
    from lsbcore.nets import TimeMLP
    for form in ("continuous", "discrete"):
        mlp, net = MLPEncoder(2, width=8, seed=0), TimeMLP(2, width=8, depth=2, seed=1)
        path_kl_mc(mlp, net, x0.float(), steps=4, form=form, seed=0).value.backward()
        assert float(mlp.net.net[-1].weight.grad.abs().sum()) > 0
        assert all(float(p.grad.abs().sum()) > 0 for p in net.parameters())


def _check_finite_differences(model, x0, form):
    kw = dict(T=model.T, steps=10, prior_var=model.prior_var, form=form, seed=5)
    enc, dec = linear_encoder(model, "linear"), Affine(model.A, model.a)
    path_kl_mc(enc, dec, x0, **kw).value.backward()
    eps = 1e-6
    for param, grad in ((enc.K, enc.K.grad), (enc.k, enc.k.grad), (dec.B, dec.B.grad)):
        assert grad is not None and bool(torch.isfinite(grad).all()) and float(grad.abs().max()) > 0
        with torch.no_grad():
            param.view(-1)[1] += eps
            up = float(path_kl_mc(enc, dec, x0, **kw))
            param.view(-1)[1] -= 2 * eps
            down = float(path_kl_mc(enc, dec, x0, **kw))
            param.view(-1)[1] += eps
        assert float(grad.view(-1)[1]) == pytest.approx((up - down) / (2 * eps), rel=1e-5, abs=1e-7)


def test_seeded_determinism_and_no_grad_evaluation():
    model = LinearSBVAE(**CONFIGS["2d-controlled"])
    x0 = data(model, 300, 6)
    enc, dec = MLPEncoder(2, width=8, c=-0.5, seed=1).double(), Affine(model.A, model.a)
    with torch.no_grad():                                   # make u_φ non-zero
        enc.net.net[-1].weight.normal_(generator=torch.Generator().manual_seed(0))
    for form, divergence in (("continuous", "exact"), ("continuous", "hutchinson"), ("discrete", "exact")):
        kw = dict(T=2.0, steps=8, form=form, divergence=divergence)
        a, b = path_kl_mc(enc, dec, x0, seed=7, **kw), path_kl_mc(enc, dec, x0, seed=7, **kw)
        assert float(a) == float(b) and a.stderr == b.stderr
        assert float(path_kl_mc(enc, dec, x0, seed=8, **kw)) != float(a)
        with torch.no_grad():
            c = path_kl_mc(enc, dec, x0, seed=7, **kw)
        assert not c.value.requires_grad
        assert float(c) == pytest.approx(float(a), rel=1e-12)


@pytest.mark.parametrize("kwargs, err, exc", [
    (dict(x0=torch.zeros(5, 3)), "x0", ValueError),
    (dict(x0=torch.full((5, 2), float("nan"))), "x0", ValueError),
    (dict(T=0.0), "T", ValueError),
    (dict(T=-1.0), "T", ValueError),
    (dict(steps=0), "steps", ValueError),
    (dict(steps=2.5), "steps", TypeError),
    (dict(prior_var=0.0), "prior_var", ValueError),
    (dict(divergence="trace"), "divergence", ValueError),
    (dict(form="ito"), "form", ValueError),
    (dict(data_entropy=float("nan")), "data_entropy", ValueError),
    (dict(score=3.0), "score", TypeError),
    (dict(encoder="mlp"), "encoder", TypeError),
])
def test_path_kl_mc_rejects_bad_arguments(kwargs, err, exc):
    args = dict(encoder=MLPEncoder(2, width=4), score=lambda x, t: -x, x0=torch.zeros(5, 2))
    kw = {k: kwargs.pop(k) for k in list(kwargs) if k in args}
    args.update(kw)
    with pytest.raises(exc, match=err):
        path_kl_mc(args["encoder"], args["score"], args["x0"], **kwargs)


def test_mlp_encoder_starts_as_the_reference_and_validates():
    enc = MLPEncoder(2, width=8, c=-0.5, g=2.0, seed=0)
    x = torch.randn(7, 2, generator=torch.Generator().manual_seed(0))
    assert torch.equal(enc.control(x, 0.3), torch.zeros(7, 2))
    torch.testing.assert_close(enc.drift(x, torch.full((7, 1), 0.3)), -0.5 * x)
    with pytest.raises(TypeError, match="t"):
        enc.control(x)
    with pytest.raises(ValueError, match="dim"):
        MLPEncoder(0)
    with pytest.raises(ValueError, match="c"):
        MLPEncoder(2, c=float("nan"))
    with pytest.raises(ValueError, match="g"):
        MLPEncoder(2, g=0.0)
    with pytest.raises(TypeError, match="param"):
        SBVAEBridge(enc, lambda x, t: -x)                     # 'noise' needs the linear transitions
    with pytest.raises(ValueError, match="param"):
        SBVAEBridge(enc, lambda x, t: -x, param="velocity")


def test_fit_sbvae_path_kl_is_reproducible_and_samples_through_the_bridge_face():
    from lsbcore.marginals import eight_gaussians
    x = eight_gaussians(128, seed=0, radius=3.0)
    kw = dict(objective="path_kl", steps=4, batch_size=32, sde_steps=4, width=16, encoder_width=8, seed=0,
              progress=False)
    r1, r2 = fit_sbvae(x, encoder="mlp", **kw), fit_sbvae(x, encoder="mlp", **kw)
    assert r1.losses == r2.losses and len(r1.losses) == 4 and all(math.isfinite(v) for v in r1.losses)
    assert not any(p.requires_grad for p in r1.bridge.encoder.parameters())
    assert float(r1.bridge.encoder.net.net[-1].weight.abs().sum()) > 0     # the control was trained
    s = r1.bridge.sample(50, steps=10, seed=1)
    assert s.shape == (50, 2) and bool(torch.isfinite(s).all())
    torch.testing.assert_close(s, r2.bridge.sample(50, steps=10, seed=1))
    rl = fit_sbvae(x, encoder="linear", form="continuous", **kw)
    assert isinstance(rl.bridge.encoder, LinearEncoder) and rl.bridge.param == "score"
    with pytest.raises(ValueError, match="encoder"):
        fit_sbvae(x, objective="path_kl", encoder="conv")
    with pytest.raises(ValueError, match="form"):
        fit_sbvae(x, objective="path_kl", form="ito")
    with pytest.raises(ValueError, match="data"):
        fit_sbvae(torch.full((10, 2), float("nan")), objective="path_kl")


def test_fit_sbvae_path_kl_equals_the_plain_loop_with_one_adam_of_two_groups():
    """fit_sbvae trains the decoder through lsbcore.train.fit and gives the encoder its own Adam, which
    steps from the gradient fit's backward left on it; that must be the plain joint loop, bit for bit."""
    from lsbcore.marginals import eight_gaussians
    from lsbcore.nets import TimeMLP
    x = eight_gaussians(128, seed=0, radius=3.0)
    res = fit_sbvae(x, objective="path_kl", encoder="linear", steps=4, batch_size=16, sde_steps=3, width=8,
                    seed=0, progress=False)
    enc, net = LinearEncoder(2), TimeMLP(2, width=8, depth=3, seed=0)
    opt = torch.optim.Adam([{"params": enc.parameters(), "lr": 0.05}, {"params": net.parameters(), "lr": 5e-3}])
    gen = torch.Generator().manual_seed(0)
    losses = []
    for _ in range(4):
        idx = torch.randint(0, x.shape[0], (16,), generator=gen)
        est = path_kl_mc(enc, net, x[idx], steps=3, form="discrete", seed=gen)
        opt.zero_grad(set_to_none=True)
        est.value.backward()
        opt.step()
        losses.append(float(est))
    assert res.losses == losses and res.encoder_steps == res.decoder_steps == 4
    torch.testing.assert_close(res.bridge.encoder.K, enc.K.detach(), rtol=0, atol=0)
    for p, q in zip(res.bridge.net.parameters(), net.parameters()):
        torch.testing.assert_close(p, q.detach(), rtol=0, atol=0)


def test_mlp_encoder_checks_its_time():
    enc = MLPEncoder(2, width=4)
    x = torch.zeros(3, 2)
    for bad in (1.5, torch.full((3, 1), -0.1), torch.full((3, 1), float("nan"))):
        with pytest.raises(ValueError, match="t"):
            enc.control(x, bad)
