"""The SB-as-VAE path KL for any encoder, by simulating encoder paths: the SB-FBSDE likelihood.

With a learnable control u_φ that is a small MLP, the encoder SDE

    dX = b(X, t) dt + g dW,   b = f + g u_φ,   X_0 ~ p_data      (path law Q_φ, marginals q_t)

has marginals q_t with no closed form, so neither the prior loss KL(q_T ‖ p_prior) nor the score
∇log q_t in the drift-matching term can be evaluated. Their *sum* can. Two identities (Notebook 05
§2.6 "A nonlinear encoder"):

- integration by parts, E_q[s · ∇log q] = −E_q[∇·s], turns drift matching into
      DM = E_Q ∫ (g²/2)(‖s_θ‖² + 2 ∇·s_θ) dt + E_Q ∫ (g²/2)‖∇log q_t‖² dt;
- the Fokker–Planck equation gives the entropy production of the encoder,
      H(q_T) = H(p_data) + ∫_0^T ( E[∇·b_t] + (g²/2) E‖∇log q_t‖² ) dt,
  and the prior loss is −E log p_prior(X_T) − H(q_T).

Adding them, the two Fisher-information terms cancel:

    KL(Q_φ ‖ P_θ) = −E log p_prior(X_T) − H(p_data) − E ∫_0^T ∇·b(X_t, t) dt
                    + E ∫_0^T (g²/2)(‖s_θ(X_t, t)‖² + 2 ∇·s_θ(X_t, t)) dt.

Every term but the constant H(p_data) is an expectation over encoder paths: simulate them with
Euler–Maruyama (reparametrised, so gradients reach φ) and take the divergences with autograd. This is
(minus) the SB-FBSDE likelihood of Chen, Liu and Theodorou (2022) with Z = u_φ, Ẑ = g s_θ − u_φ;
:meth:`lsbcore.bridges.sbvae_exact.LinearSBVAE.sbfbsde_elbo` is its closed form for linear models, which the
tests use to check :func:`path_kl_mc`.

On a time grid the formula is only approximate, and a flexible encoder learns to exploit the error.
``path_kl_mc(form="discrete")`` is the exact KL between the Euler–Maruyama encoder and decoder chains
instead (no divergences, ≥ 0 at every step size); ``lsbcore.fit_sbvae(objective="path_kl")`` trains on it
by default. docs/theory.md §5.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from ..utils import Seed, check_int, check_points, check_positive, generator

__all__ = ["PathKLEstimate", "path_kl_mc", "prior_log_density"]


def prior_log_density(x, prior_var: float) -> torch.Tensor:
    """log N(x; 0, prior_var I) per row of ``x`` (the prior p_prior of the decoder)."""
    return -0.5 * (x**2).sum(-1) / prior_var - 0.5 * x.shape[1] * math.log(2 * math.pi * prior_var)


@dataclass
class PathKLEstimate:
    """What :func:`path_kl_mc` returns. ``value`` is differentiable (a training loss); the rest are floats.

    value = prior_term + divergence_term + decoder_term − data_entropy (data_entropy = 0 if not given).
    For ``form="discrete"`` the divergences enter only implicitly: divergence_term is NaN and
    decoder_term holds the whole sum over transitions.
    """

    value: torch.Tensor       # the estimate (0-d tensor, carries gradients to φ and θ)
    prior_term: float         # −E log p_prior(X_T)
    divergence_term: float    # −E ∫ ∇·b(X_t, t) dt
    decoder_term: float       # E ∫ (g²/2)(‖s_θ‖² + 2 ∇·s_θ) dt
    data_entropy: float | None  # the constant H(p_data) subtracted, or None (then value = −E[L_SB])
    stderr: float             # Monte Carlo standard error of value (the spread over paths / √n)
    n: int                    # number of paths
    steps: int                # Euler–Maruyama steps

    def __float__(self) -> float:
        """``float(estimate)``: the value as a plain number (detached)."""
        return float(self.value.detach())


def _divergences(x, fields, probes, create_graph: bool):
    """∇·v for each field v in ``fields`` (each (n, d), computed from x), one batched backward pass.

    ``probes`` is None for the exact divergence Σ_i ∂v_i/∂x_i (d rows of the Jacobian each), or an (n, d)
    Rademacher tensor ε for Hutchinson's unbiased estimate εᵀ (∂v/∂x) ε (one row each)."""
    n, d = x.shape
    k = len(fields)
    out = torch.cat(fields, dim=1)                                   # (n, k d)
    if probes is None:
        eye = torch.eye(k * d, dtype=x.dtype, device=x.device)
        grad_out = eye[:, None, :].expand(k * d, n, k * d)
    else:
        grad_out = torch.zeros(k, n, k * d, dtype=x.dtype, device=x.device)
        for j in range(k):
            grad_out[j, :, j * d:(j + 1) * d] = probes
    rows = torch.autograd.grad(out, x, grad_outputs=grad_out, is_grads_batched=True, create_graph=create_graph,
                               allow_unused=True)[0]
    if rows is None:                                                  # no field depends on x
        return [torch.zeros(n, dtype=x.dtype, device=x.device) for _ in fields]
    if probes is None:
        rows = rows.reshape(k, d, n, d)
        return [rows[j].diagonal(dim1=0, dim2=2).sum(-1) for j in range(k)]
    return [(rows[j] * probes).sum(-1) for j in range(k)]


def path_kl_mc(encoder: nn.Module, score, x0, *, T: float = 1.0, steps: int = 32, prior_var: float = 1.0,
               data_entropy: float | None = None, form: str = "continuous", divergence: str = "exact",
               seed: Seed = 0) -> PathKLEstimate:
    """Monte Carlo estimate of the path KL(Q_φ ‖ P_θ) for any encoder, by simulating encoder paths.

    Uses (module docstring; Notebook 05 §2.6 "A nonlinear encoder")

        KL(Q_φ ‖ P_θ) = −E log p_prior(X_T) − H(p_data) − E ∫_0^T ∇·b dt + E ∫_0^T (g²/2)(‖s_θ‖² + 2∇·s_θ) dt

    with one path per row of ``x0`` (samples of p_data), simulated by Euler–Maruyama with ``steps``
    steps of h = T/steps, ``X_{k+1} = X_k + h b(X_k, t_k) + g √h ξ_k``, and the time integrals by the
    trapezoidal rule on the same grid. The noise ξ is drawn from ``seed`` (reparametrised), so the value
    is differentiable in φ (through the paths and ∇·b) and in θ: use it as a training loss. Under
    ``torch.no_grad()`` nothing is kept for a backward pass. The bias is O(h) (Euler–Maruyama; zero for
    a Brownian reference with u ≡ 0, where only the trapezoidal rule's O(h²) is left).

    ``form="discrete"`` estimates instead the exact KL between the two Markov chains one actually runs:
    the Euler–Maruyama encoder and the Euler–Maruyama decoder ``X_k = X_{k+1} + h d(X_{k+1}, t_{k+1}) +
    g √h ξ`` with d = g² s_θ − b (what ``lsbcore.sde.sample`` does backwards on the same grid). With
    v_k = b(X_k, t_k) + d(X_{k+1}, t_{k+1}) the log-ratio of the Gaussian transitions is
    (√h/g) ξ_k·v_k + (h/2g²)‖v_k‖² per step (the ‖ξ‖² terms cancel exactly), so

        KL(Q^h ‖ P^h) = −E log p_prior(X_N) − H(p_data) + E Σ_k [(√h/g) ξ_k·v_k + (h/2g²)‖v_k‖²].

    No divergences are needed: the Brownian increments play the role of Hutchinson probes, and as
    h → 0 this tends to the continuous formula. Being a KL between two chains, it is ≥ KL(p_data ‖ p_θ^h)
    ≥ 0 at every step size, so a flexible encoder cannot lower it by exploiting a coarse grid — which it
    can do with the continuous form (Notebook 05 §2.6 "A nonlinear encoder" reports it happening).

    Args:
        encoder: a :class:`~lsbcore.bridges.sbvae.MLPEncoder` or :class:`~lsbcore.bridges.sbvae.LinearEncoder` (``drift(x, τ)``, ``g``).
        score: the decoder score, a callable ``score(x, τ) -> (n, d)`` (e.g. a ``TimeMLP``), τ = t/T a
            ``(n, 1)`` column in [0, 1].
        x0: ``(n, d)`` data points, one path each.
        T, steps, prior_var: horizon, Euler–Maruyama steps, variance of the prior N(0, prior_var I).
        data_entropy: H(p_data) if known (e.g. ½ log det(2πe Σ) for Gaussian data). If None the value
            is KL + H(p_data) = −E[L_SB], Chen et al.'s negative likelihood bound: an upper bound on the
            model's negative log-likelihood E[−log p_θ(X_0)] in nats per point.
        form: ``"continuous"`` (the formula above) or ``"discrete"`` (the KL of the two chains).
        divergence: for the continuous form, ``"exact"`` (autograd, d Jacobian rows; right for small d)
            or ``"hutchinson"`` (one Rademacher probe per path and time; unbiased, noisier, cheaper for large d).
        seed: int or ``torch.Generator`` for the Brownian increments (and the probes). If ``x0`` was
            drawn with ``torch.randn`` from a generator with the same seed, the first increments *equal*
            its noise and the estimate is biased: use a different seed, or pass the same generator on.
    """
    if not (isinstance(encoder, nn.Module) and callable(getattr(encoder, "drift", None)) and hasattr(encoder, "g")):
        raise TypeError(f"encoder must be an MLPEncoder or a LinearEncoder, got {type(encoder).__name__}")
    if not callable(score):
        raise TypeError(f"score must be callable (x, t) -> score, got {type(score).__name__}")
    x0 = check_points(x0, "x0", dim=encoder.dim)
    T = check_positive(T, "T")
    steps = check_int(steps, "steps", minimum=1)
    prior_var = check_positive(prior_var, "prior_var")
    if data_entropy is not None:
        if isinstance(data_entropy, bool) or not isinstance(data_entropy, (int, float)) or not math.isfinite(data_entropy):
            raise ValueError(f"data_entropy must be a finite number or None, got {data_entropy!r}")
    if form not in ("continuous", "discrete"):
        raise ValueError(f"form must be 'continuous' or 'discrete', got {form!r}")
    if divergence not in ("exact", "hutchinson"):
        raise ValueError(f"divergence must be 'exact' or 'hutchinson', got {divergence!r}")
    gen = generator(seed, x0.device)
    n, d = x0.shape
    g, h = encoder.g, T / steps
    if form == "discrete":
        return _chain_kl(encoder, score, x0, T, steps, prior_var, data_entropy, gen)
    keep = torch.is_grad_enabled()
    x = x0
    div_b_int = torch.zeros(n, dtype=x0.dtype, device=x0.device)
    dec_int = torch.zeros(n, dtype=x0.dtype, device=x0.device)
    for k in range(steps + 1):
        w = 0.5 * h if k in (0, steps) else h                       # trapezoidal weights
        with torch.enable_grad():
            xk = x if x.requires_grad else x.detach().requires_grad_(True)
            tau = torch.full((n, 1), k / steps, dtype=x0.dtype, device=x0.device)
            b = encoder.drift(xk, tau)
            s = score(xk, tau)
            probes = None
            if divergence == "hutchinson":
                probes = torch.randint(0, 2, (n, d), generator=gen, device=x0.device).to(x0.dtype) * 2 - 1
            div_b, div_s = _divergences(xk, [b, s], probes, create_graph=keep)
        if not keep:
            xk, b, s, div_b, div_s = (v.detach() for v in (xk, b, s, div_b, div_s))
        div_b_int = div_b_int + w * div_b
        dec_int = dec_int + w * (0.5 * g**2 * (s**2).sum(-1) + g**2 * div_s)
        if k < steps:
            xi = torch.randn(n, d, generator=gen, device=x0.device, dtype=x0.dtype)
            x = xk + h * b + g * math.sqrt(h) * xi
    log_prior = prior_log_density(x, prior_var)
    return _estimate(-log_prior - div_b_int + dec_int, log_prior, div_b_int, dec_int, data_entropy, steps)


def _estimate(per_path, log_prior, div_int, dec_int, data_entropy, steps) -> PathKLEstimate:
    n = per_path.shape[0]
    value = per_path.mean() - (0.0 if data_entropy is None else float(data_entropy))
    stderr = float(per_path.detach().std()) / math.sqrt(n) if n > 1 else math.nan
    div = math.nan if div_int is None else float(-div_int.detach().mean())
    return PathKLEstimate(value=value, prior_term=float(-log_prior.detach().mean()), divergence_term=div,
                          decoder_term=float(dec_int.detach().mean()), data_entropy=data_entropy, stderr=stderr,
                          n=n, steps=steps)


def _chain_kl(encoder, score, x0, T, steps, prior_var, data_entropy, gen) -> PathKLEstimate:
    """``path_kl_mc(form="discrete")``: the KL between the Euler–Maruyama encoder and decoder chains."""
    n, d = x0.shape
    g, h = encoder.g, T / steps
    x = x0
    b = encoder.drift(x, torch.zeros(n, 1, dtype=x0.dtype, device=x0.device))
    trans = torch.zeros(n, dtype=x0.dtype, device=x0.device)
    for k in range(steps):
        xi = torch.randn(n, d, generator=gen, device=x0.device, dtype=x0.dtype)
        x1 = x + h * b + g * math.sqrt(h) * xi
        tau = torch.full((n, 1), (k + 1) / steps, dtype=x0.dtype, device=x0.device)
        b1 = encoder.drift(x1, tau)
        v = b + g**2 * score(x1, tau) - b1                             # b(X_k) + d(X_{k+1})
        trans = trans + (math.sqrt(h) / g) * (xi * v).sum(-1) + (h / (2 * g**2)) * (v**2).sum(-1)
        x, b = x1, b1
    log_prior = prior_log_density(x, prior_var)
    return _estimate(-log_prior + trans, log_prior, None, trans, data_entropy, steps)
