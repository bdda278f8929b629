"""SB-type models as an extension of VAEs (Kaba et al. 2024): encoders, the SB-VAE bridge, losses, trainer.

The **encoder** is a forward SDE that carries data to noise, with a learnable control u_φ,

    dX = [f(X, t) + g u_φ(X, t)] dt + g dW,    X_0 ~ p_data          (path law Q_φ, marginals q_t)

and the **decoder** runs in reverse time from the prior with a learned score s_θ,

    dX = [f + g u_φ − g² s_θ] dt + g dW̄,     X_T ~ p_prior          (path law P_θ).

The latent variable of this "VAE" is the whole path; KL(p_data ‖ p_θ) ≤ KL(Q_φ ‖ P_θ) = prior loss
KL(q_T ‖ p_prior) (the encoder's) + drift matching (the decoder's) (docs/theory.md §5). The exact
linear-Gaussian terms are in :mod:`lsbcore.bridges.sbvae_exact`, the path KL by simulation (any
encoder) in :mod:`lsbcore.bridges.sbvae_pathkl`. Here: the two encoders (:class:`LinearEncoder`, whose
transitions are exact, and :class:`MLPEncoder`), the bridge face of the trained model
(:class:`SBVAEBridge`), the losses of the linear encoder (:func:`empirical_prior_loss`,
:func:`decoder_dsm_loss`) and one trainer, :func:`fit_sbvae`. Notebook 05 §2.5–2.6.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import torch
from torch import nn

from ..bridge import Bridge
from ..linear_sde import LinearMoments, linear_sde_moments, noise_score
from ..utils import (Seed, check_int, check_points, check_positive, check_scale, check_seed, check_time, generator,
                     time_column)
from .sbvae_pathkl import path_kl_mc, prior_log_density

__all__ = ["LinearEncoder", "MLPEncoder", "SBVAEBridge", "SBVAEResult", "empirical_prior_loss",
           "decoder_dsm_loss", "fit_sbvae"]

_DT = torch.float64
_LOG2PI = math.log(2 * math.pi)


# ---------------------------------------------------------------------------------- encoders
def _reference(dim, c, g) -> tuple:
    """Check an encoder's size and reference SDE ``dX = c X dt + g dW``; return ``(dim, c, g)``."""
    dim = check_int(dim, "dim")
    if isinstance(c, bool) or not isinstance(c, (int, float)) or not math.isfinite(c):
        raise ValueError(f"c must be a finite real number, got {c!r}")
    return dim, float(c), check_scale(g, "g")


class LinearEncoder(nn.Module):
    """The encoder SDE ``dX = [c X + g (K X + k)] dt + g dW`` with learnable K (d, d) and k (d,).

    The reference drift is ``f = c x`` (c = 0: Brownian motion); K = 0, k = 0 at the start, so the
    encoder starts as the plain reference. Because it is linear, X_t | X_0 is Gaussian with exact,
    differentiable moments (:meth:`transition`) whatever the data. Notebook 05 §2.5 "Training schedules".
    """

    def __init__(self, dim: int, *, c: float = 0.0, g: float = 1.0):
        super().__init__()
        self.dim, self.c, self.g = _reference(dim, c, g)
        self.K = nn.Parameter(torch.zeros(dim, dim, dtype=_DT))
        self.k = nn.Parameter(torch.zeros(dim, dtype=_DT))

    def transition(self, t) -> LinearMoments:
        """X_t = Φ_t X_0 + h_t + N(0, Q_t) at the times ``t`` (finite, ≥ 0; 1-D), float64, differentiable."""
        M = self.c * torch.eye(self.dim, dtype=_DT, device=self.K.device) + self.g * self.K
        z = torch.zeros(self.dim, dtype=_DT, device=self.K.device)
        return linear_sde_moments(M, self.g * self.k, self.g, z, torch.zeros_like(M), t)

    def control(self, x, t=None):
        """u_φ(x) = K x + k. ``t`` (checked if given) is ignored: the same face as :class:`MLPEncoder`."""
        if t is not None:
            check_time(t, batch=x.shape[0], like=x)
        return x @ self.K.to(x.dtype).T + self.k.to(x.dtype)

    def drift(self, x, t=None):
        """f + g u_φ = c x + g (K x + k). ``t`` (checked if given) is ignored."""
        return self.c * x + self.g * self.control(x, t)


class MLPEncoder(nn.Module):
    """The encoder SDE ``dX = [c X + g u_φ(X, τ)] dt + g dW`` with u_φ a small time-conditioned MLP.

    u_φ is a :class:`lsbcore.nets.TimeMLP` (``depth`` hidden layers of ``width``) whose last layer is
    zero at the start, so the encoder starts as the plain reference ``dX = c X dt + g dW`` — as
    :class:`LinearEncoder` does with K = k = 0. The network reads the normalised time τ = t / T ∈ [0, 1]
    (on the bridge face T = 1, so τ = t). Unlike the linear encoder, X_t | X_0 has no closed form: train
    it on the simulated path KL (:func:`lsbcore.bridges.sbvae_pathkl.path_kl_mc`).
    Notebook 05 §2.6 "A nonlinear encoder".
    """

    def __init__(self, dim: int, *, width: int = 32, depth: int = 2, c: float = 0.0, g: float = 1.0,
                 seed: int = 0):
        from ..nets import TimeMLP

        super().__init__()
        self.dim, self.c, self.g = _reference(dim, c, g)
        self.net = TimeMLP(self.dim, width=width, depth=depth, seed=check_seed(seed))
        last = self.net.net[-1]
        with torch.no_grad():
            last.weight.zero_()
            last.bias.zero_()

    def control(self, x, t=None):
        """u_φ(x, τ), shape ``(batch, dim)``; τ a float or a ``(batch, 1)`` tensor in [0, 1]."""
        if t is None:
            raise TypeError("t is required: the MLP control u_φ(x, t) depends on time")
        dtype = next(self.net.parameters()).dtype
        return self.net(x.to(dtype), time_column(t, x).to(dtype)).to(x.dtype)

    def drift(self, x, t=None):
        """f + g u_φ = c x + g u_φ(x, τ)."""
        return self.c * x + self.g * self.control(x, t)


# ---------------------------------------------------------------------------------- losses (linear encoder)
def empirical_prior_loss(encoder: LinearEncoder, data, *, T: float = 1.0, prior_var: float = 1.0,
                         n_mc: int = 512, seed: Seed = 0) -> torch.Tensor:
    """Monte Carlo estimate of the prior loss KL(q_T ‖ N(0, prior_var I)) for the empirical data set.

    With a linear encoder, q_T = (1/n) Σ_i N(Φ_T x_i + h_T, Q_T) is a Gaussian mixture with an exact
    log-density (log-sum-exp over the n data points), so KL = E_{y~q_T}[log q_T(y) − log prior(y)]
    needs only samples y (drawn by reparametrisation: differentiable in K, k).
    Notebook 05 §2.5 "Training schedules", docs/theory.md §5.
    """
    if not isinstance(encoder, LinearEncoder):
        raise TypeError(f"encoder must be a LinearEncoder, got {type(encoder).__name__}")
    data = check_points(data, "data", dim=encoder.dim)
    T = check_positive(T, "T")
    prior_var = check_positive(prior_var, "prior_var")
    n_mc = check_int(n_mc, "n_mc")
    gen = generator(seed, data.device)
    x = data.to(_DT)
    mom = encoder.transition(torch.tensor([T], dtype=_DT, device=data.device))
    Phi, h, L = mom.Phi[0], mom.shift[0], torch.linalg.cholesky(mom.noise_cov[0])  # unbatched: fast
    centres = x @ Phi.T + h
    idx = torch.randint(0, x.shape[0], (n_mc,), generator=gen, device=data.device)
    xi = torch.randn(n_mc, encoder.dim, generator=gen, device=data.device, dtype=_DT)
    y = centres[idx] + xi @ L.T
    Linv = torch.linalg.inv(L)
    r = y @ Linv.T                                   # whitened samples and centres: ‖L⁻¹(y − c)‖²
    rc = centres @ Linv.T
    sq = (r**2).sum(-1, keepdim=True) - 2 * r @ rc.T + (rc**2).sum(-1)
    logdet = 2 * torch.log(torch.diagonal(L)).sum()
    log_comp = -0.5 * sq - 0.5 * logdet - 0.5 * encoder.dim * _LOG2PI
    log_q = torch.logsumexp(log_comp, dim=1) - math.log(x.shape[0])
    log_prior = prior_log_density(y, prior_var)
    return (log_q - log_prior).mean()


def decoder_dsm_loss(score_net: nn.Module, encoder: LinearEncoder, x0, *, t_gap: float = 1e-3,
                     T: float = 1.0, n_grid: int = 256, seed: Seed = 0) -> torch.Tensor:
    """Denoising score matching for the decoder, in noise-prediction form.

    X_t = Φ_t X_0 + h_t + L_t ξ (exact, the encoder is linear) with t uniform on a grid of ``n_grid``
    times in [t_gap, T] (one batched transition per step instead of one per sample); the network
    ε_θ(X_t, t/T) predicts ξ and the decoder score is s_θ = −L_t^{−T} ε_θ. The loss E‖ε_θ − ξ‖² has the
    same minimiser as drift matching (it weights the times differently). The encoder is held fixed
    (no gradient reaches K, k). Notebook 05 §2.5 "Training schedules", docs/theory.md §5.
    """
    if not isinstance(encoder, LinearEncoder):
        raise TypeError(f"encoder must be a LinearEncoder, got {type(encoder).__name__}")
    x0 = check_points(x0, "x0", dim=encoder.dim)
    T = check_positive(T, "T")
    t_gap = check_positive(t_gap, "t_gap", allow_zero=True)
    if t_gap >= T:
        raise ValueError(f"t_gap must be < T = {T}, got {t_gap}")
    n_grid = check_int(n_grid, "n_grid", minimum=2)
    gen = generator(seed, x0.device)
    n = x0.shape[0]
    grid = torch.linspace(t_gap, T, n_grid, dtype=_DT, device=x0.device)
    with torch.no_grad():
        mom = encoder.transition(grid)
        Lg = torch.linalg.cholesky(mom.noise_cov)
    idx = torch.randint(0, n_grid, (n,), generator=gen, device=x0.device)
    t, L = grid[idx], Lg[idx]
    xi = torch.randn(n, encoder.dim, generator=gen, device=x0.device, dtype=_DT)
    xt = (mom.Phi[idx] @ x0.to(_DT)[..., None])[..., 0] + mom.shift[idx] + (L @ xi[..., None])[..., 0]
    eps = score_net(xt.to(x0.dtype), (t / T).to(x0.dtype)[:, None])
    return ((eps - xi.to(x0.dtype)) ** 2).sum(-1).mean()


# ---------------------------------------------------------------------------------- the bridge
class SBVAEBridge(Bridge):
    """Encoder + decoder of the SB-as-VAE model on [0, 1], with the Bridge face.

    The data sit at t = 0 (``data_end = 0``) and generation runs backward from the prior
    N(0, prior_var I) at t = 1 (:meth:`start`). drift = f + g u_φ (the encoder) and score = s_θ; the
    face's defaults give backward_drift = g² s_θ − drift (the decoder, in reverse time) and velocity
    = f + g u_φ − ½ g² s_θ (the probability-flow ODE).

    ``param`` says what the network predicts. ``"noise"`` (a :class:`LinearEncoder` only): ε_θ, and
    s_θ = −L_t^{−T} ε_θ with L_t the encoder's exact transition covariance factor (Notebook 05
    §2.5 "Training schedules"). ``"score"`` (any encoder, e.g. :class:`MLPEncoder`, whose transitions
    are unknown): the network is s_θ(x, t) itself (Notebook 05 §2.6 "A nonlinear encoder").
    """

    data_end = 0

    def __init__(self, encoder: nn.Module, score_net: nn.Module, *, prior_var: float = 1.0, param: str = "noise"):
        if param not in ("noise", "score"):
            raise ValueError(f"param must be 'noise' or 'score', got {param!r}")
        if not isinstance(encoder, (LinearEncoder, MLPEncoder)):
            raise TypeError(f"encoder must be a LinearEncoder or an MLPEncoder, got {type(encoder).__name__}")
        if param == "noise" and not isinstance(encoder, LinearEncoder):
            raise TypeError(f"param='noise' needs a LinearEncoder (exact transitions), got {type(encoder).__name__}; "
                            "use param='score'")
        if not callable(score_net):
            raise TypeError(f"score_net must be callable (x, t) -> score, got {type(score_net).__name__}")
        self.encoder, self.net, self.param = encoder, score_net, param
        self.prior_var = check_positive(prior_var, "prior_var")
        self.sigma, self.dim = encoder.g, encoder.dim

    def _device(self):
        return next(self.encoder.parameters()).device

    def drift(self, x, t):
        """f + g u_φ(x, t): the encoder's drift."""
        return self.encoder.drift(x, time_column(t, x))

    def score(self, x, t):
        """s_θ(x, t): the network itself (``param="score"``) or −L_t^{−T} ε_θ(x, t) (``"noise"``)."""
        if self.param == "score":
            return self.net(x, time_column(t, x))
        return noise_score(self.net, x, t, lambda times: self.encoder.transition(times).noise_cov)

    def start(self, n: int, *, seed: Seed = 0, device=None) -> torch.Tensor:
        """n draws from the prior N(0, prior_var I) (float32), the start of generation at t = 1."""
        n = check_int(n, "n")
        dev = torch.device(device) if device is not None else self._device()
        z = torch.randn(n, self.dim, generator=generator(seed, dev), device=dev)
        return math.sqrt(self.prior_var) * z

    @torch.no_grad()
    def sample(self, n: int, *, method: str = "sde", steps: int = 100, t_gap: float = 1e-3, seed: Seed = 0):
        """n decoder samples (prior at t = 1 → t_gap): :func:`lsbcore.generate` on the model's device,
        by Euler–Maruyama (``"sde"``) or Heun PF-ODE (``"ode"``); returns the samples ``(n, dim)``."""
        from ..sde import generate

        return generate(self, n, method=method, steps=steps, t_gap=t_gap, seed=seed, device=self._device()).x


# ---------------------------------------------------------------------------------- the trainer
@dataclass
class SBVAEResult:
    """What :func:`fit_sbvae` returns: the bridge, what was trained how, the losses and the wall time.

    ``losses``: the decoder's objective at every joint/decoder step (denoising score matching for
    ``objective="dsm"``, the simulated path KL −E[L_SB] for ``"path_kl"``, with its standard errors in
    ``stderrs``); ``prior_losses``: the encoder's prior loss at every encoder step (``"dsm"`` only).
    """

    bridge: SBVAEBridge
    objective: str
    schedule: str
    encoder_steps: int
    decoder_steps: int
    seconds: float
    losses: list = field(default_factory=list)
    prior_losses: list = field(default_factory=list)
    stderrs: list = field(default_factory=list)


def fit_sbvae(data, *, objective: str = "dsm", schedule: str | None = None, encoder: str = "linear",
              steps: int = 2000, batch_size: int = 256, c: float = 0.0, g: float = 1.0, prior_var: float = 1.0,
              width: int = 64, encoder_width: int = 32, lr_encoder: float | None = None,
              lr_decoder: float | None = None, max_encoder_steps: int = 500, plateau_window: int = 25,
              plateau_tol: float = 0.01, n_mc: int = 256, form: str = "discrete", sde_steps: int = 20,
              ema: float = 0.0, seed: int = 0, progress: bool = True) -> SBVAEResult:
    """Train an SB-as-VAE encoder u_φ and decoder network on samples ``data`` (Notebook 05 §2.5–2.6).

    ``objective="dsm"`` (linear encoder only; ``lr_decoder`` 2e-3): the encoder minimises the exact
    prior loss of the empirical data (:func:`empirical_prior_loss`, ``n_mc`` draws) and the decoder
    ε_θ denoising score matching under the current encoder (:func:`decoder_dsm_loss`). Schedules:

    - ``"staged"`` (default): the encoder alone until its prior loss stops falling (the mean over
      ``plateau_window`` steps improves by less than ``plateau_tol`` nats, or ``max_encoder_steps``),
      then frozen, and the decoder trains for ``steps`` steps;
    - ``"joint"``: every one of the ``steps`` steps updates the encoder, then the decoder (which
      chases a moving target).

    ``objective="path_kl"`` (``schedule="joint"`` only; ``lr_decoder`` 5e-3): encoder (``"linear"``
    or ``"mlp"``, width ``encoder_width``) and score network s_θ trained together on the simulated path
    KL (:func:`~lsbcore.bridges.sbvae_pathkl.path_kl_mc`, ``sde_steps`` Euler–Maruyama steps, ``form``
    ``"discrete"`` or ``"continuous"``): −E[L_SB], a bound on the negative log-likelihood. The
    encoder-first schedule needs H(q_T), unknown for a nonlinear encoder, so it is not offered.

    Each step draws a batch of ``batch_size`` data points. The decoder trains through
    :func:`lsbcore.train.fit` (progress bar, ``ema`` of its weights: 0 keeps the last iterate); the
    encoder has its own Adam (``lr_encoder``: 0.05 for the linear encoder, whose six parameters must
    travel far; ``lr_decoder`` for the MLP) and steps inside the loss function, drawing from the same
    generator — with the path KL one backward pass serves both, and the encoder's Adam step follows at
    the start of the next step. docs/theory.md §5.
    """
    from ..nets import TimeMLP
    from ..train import fit

    if objective not in ("dsm", "path_kl"):
        raise ValueError(f"objective must be 'dsm' or 'path_kl', got {objective!r}")
    schedule = schedule if schedule is not None else ("staged" if objective == "dsm" else "joint")
    if schedule not in ("staged", "joint"):
        raise ValueError(f"schedule must be 'staged' or 'joint', got {schedule!r}")
    if encoder not in ("linear", "mlp"):
        raise ValueError(f"encoder must be 'linear' or 'mlp', got {encoder!r}")
    if objective == "path_kl" and schedule != "joint":
        raise ValueError("schedule must be 'joint' for objective='path_kl': the prior loss alone needs the "
                         "unknown entropy H(q_T) of a simulated encoder")
    if objective == "dsm" and encoder != "linear":
        raise ValueError("encoder must be 'linear' for objective='dsm' (its transitions must be exact); "
                         "use objective='path_kl' for an MLP encoder")
    if form not in ("continuous", "discrete"):
        raise ValueError(f"form must be 'continuous' or 'discrete', got {form!r}")
    data = check_points(data, "data")
    seed = check_seed(seed)
    steps = check_int(steps, "steps")
    batch_size = check_int(batch_size, "batch_size")
    max_encoder_steps = check_int(max_encoder_steps, "max_encoder_steps", minimum=0)
    plateau_window = check_int(plateau_window, "plateau_window")
    plateau_tol = check_positive(plateau_tol, "plateau_tol", allow_zero=True)
    sde_steps = check_int(sde_steps, "sde_steps")
    prior_var = check_positive(prior_var, "prior_var")
    if lr_decoder is None:
        lr_decoder = 2e-3 if objective == "dsm" else 5e-3
    lr_decoder = check_positive(lr_decoder, "lr_decoder")
    if lr_encoder is None:
        lr_encoder = 0.05 if encoder == "linear" else lr_decoder
    lr_encoder = check_positive(lr_encoder, "lr_encoder")
    d, dev = data.shape[1], data.device
    if encoder == "mlp":
        enc = MLPEncoder(d, width=encoder_width, c=c, g=g, seed=seed).to(device=dev, dtype=data.dtype)
    else:
        enc = LinearEncoder(d, c=c, g=g).to(dev)
    net = TimeMLP(d, width=width, depth=3, seed=seed).to(device=dev, dtype=data.dtype)
    opt_e = torch.optim.Adam(enc.parameters(), lr=lr_encoder)
    prior_losses, path_kls, stderrs = [], [], []

    def draw_batch(gen):
        return data[torch.randint(0, data.shape[0], (batch_size,), generator=gen, device=dev)]

    def encoder_step(gen):
        loss = empirical_prior_loss(enc, draw_batch(gen), prior_var=prior_var, n_mc=n_mc, seed=gen)
        opt_e.zero_grad(set_to_none=True)
        loss.backward()
        opt_e.step()
        prior_losses.append(loss.detach())

    def encoder_phase(gen):
        """The staged schedule: the encoder alone until its prior loss reaches a plateau, then frozen."""
        best = math.inf
        while len(prior_losses) < max_encoder_steps:
            encoder_step(gen)
            if len(prior_losses) % plateau_window == 0:
                cur = float(torch.stack(prior_losses[-plateau_window:]).mean())
                if best - cur < plateau_tol:
                    break
                best = min(best, cur)
        enc.requires_grad_(False)

    def loss_fn(model, step, gen):
        if objective == "path_kl":
            if step > 0:                   # the encoder's step from the gradient of the last backward
                opt_e.step()
                opt_e.zero_grad(set_to_none=True)
            est = path_kl_mc(enc, model, draw_batch(gen), T=1.0, steps=sde_steps, prior_var=prior_var, form=form,
                             seed=gen)
            path_kls.append(float(est))
            stderrs.append(est.stderr)
            return est.value
        if schedule == "joint":
            encoder_step(gen)
        elif step == 0:
            encoder_phase(gen)
        return decoder_dsm_loss(model, enc, draw_batch(gen), seed=gen)

    tic = time.perf_counter()
    hist = fit(net, loss_fn, steps, lr=lr_decoder, seed=seed, ema=ema, progress=progress,
               desc=f"SB-VAE ({objective}, {schedule}, {encoder} encoder)")
    if objective == "path_kl":
        opt_e.step()                       # the last step's encoder update
    seconds = time.perf_counter() - tic
    enc.requires_grad_(False)
    dec = (hist.ema if hist.ema is not None else net).requires_grad_(False).eval()
    bridge = SBVAEBridge(enc, dec, prior_var=prior_var, param="noise" if objective == "dsm" else "score")
    enc_steps = steps if schedule == "joint" else len(prior_losses)
    losses = path_kls if objective == "path_kl" else hist.losses
    return SBVAEResult(bridge, objective, schedule, enc_steps, steps, seconds, losses,
                       [float(v) for v in prior_losses], stderrs)
