# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 06 · VSDM: a forward process that adapts to the data
#
# [![Open in Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/lsbcore/lsbcore/blob/main/notebooks/06_vsdm.ipynb) [![Binder](https://mybinder.org/badge_logo.svg)](https://mybinder.org/v2/gh/lsbcore/lsbcore/main?labpath=notebooks%2F06_vsdm.ipynb)

# %% tags=["setup"]
# Setup: does nothing where lsbcore is importable (a checkout after `make`, Binder). Elsewhere (Colab, a bare
# kernel) it installs lsbcore from https://github.com/lsbcore/lsbcore, keeping the torch already installed.
def _setup():
    import importlib, importlib.util, pathlib, subprocess, sys, tempfile

    if importlib.util.find_spec("lsbcore") is not None:
        return
    root = pathlib.Path.cwd().parent
    if (root / "lsbcore" / "__init__.py").is_file():
        sys.path.insert(0, str(root))
        print(f"setup: using the lsbcore of this checkout ({root})")
        return
    if importlib.util.find_spec("torch") is not None:
        import torch
        pin = f"torch=={torch.__version__}"
    else:
        pin = "torch==2.13.0"
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write(pin + "\n")
    print(f"setup: installing lsbcore from https://github.com/lsbcore/lsbcore with {pin} ...", flush=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-c", f.name,
                    "lsbcore @ git+https://github.com/lsbcore/lsbcore@main"], check=True)
    importlib.invalidate_caches()
    print("setup: done")


_setup()

# %% [markdown]
# ## Aim
# Score-based models noise the data with a *fixed, isotropic* forward SDE (the VP-SDE). When the data
# is stretched along one axis, a fixed schedule either leaves data behind at $t = 1$ or wastes time.
# **Variational Schrödinger diffusion models** (VSDM, Deng et al., ICML 2024) keep the forward process
# *linear* — so its transitions stay in closed form and training stays simulation-free — but let a
# matrix $A$ shape the noise, learned by stochastic approximation on the model's own backward paths.
# We build VSDM in miniature and compare it with the VP-SDE on the paper's anisotropic 2-D shapes.
#
# ## Contents
# 1. Theory: the multivariate linear forward SDE, exact transitions, the backward-score loss, the
#    adaptive prior, updating $A$, sampling
# 2. Practice
#    1. The transitions in closed form, checked against a numerical Lyapunov solve
#    2. A Gaussian check: the PF-ODE against the closed-form Gaussian bridge with an OU reference
#    3. Anisotropic shapes: VP-SDE vs VSDM (samples, W2, histogram error)
#    4. Few steps: quality and straightness at NFE 6, 8, 16, 50
#    5. What $A$ does to the forward noise (explore $\beta_{\max}$ and $A$)
#    6. Explore the samplers (model and NFE)
# 3. Discussion
# 4. Exercises (each with a worked solution and a check: `lsb.exercises.check`)

# %% tags=["parameters"]
import lsbcore as lsb

FAST = lsb.is_fast()                 # LSB_FAST=1: the same computations, smaller
N_TRAIN = 2000 if FAST else 4000      # training points per shape
STEPS = 500 if FAST else 1500         # Adam steps per model (VP-SDE and VSDM get the same budget)
A_EVERY = 20 if FAST else 50          # VSDM: one update of A every A_EVERY network steps
N_EVAL = 500 if FAST else 1000        # samples per evaluation (W2 is exact, O(n³))
BETA_MAX = 10.0                       # the paper's setting where the VP-SDE fails
SEED = 0
DEVICE = "cpu"   # "auto": lsb.device() picks CUDA, then MPS, then CPU; float64 work stays on the CPU

# %%
import math

import matplotlib.pyplot as plt
import numpy as np
import torch
from scipy.integrate import solve_ivp

from lsbcore import widgets as W
from lsbcore.bridges.vsdm_eval import evaluate, ou_gaussian_bridge_moments
from lsbcore.marginals import checkerboard, spiral
from lsbcore.plotting import new_axes, scatter2d

torch.set_num_threads(1)   # tiny 2-D models: one thread is fastest (no thread wake-ups)

# %% [markdown]
# ## 1 · Theory
#
# **Forward process.** VSDM replaces the VP-SDE $dX = -\tfrac12\beta_t X\,dt + \sqrt{\beta_t}\,dW$ by
#
# $$dX = -\tfrac12 \beta_t D X\,dt + \sqrt{\beta_t}\,dW, \qquad D = I - 2A, \qquad A = U\,\mathrm{diag}(s)\,V^\top,$$
#
# with $U, V$ orthogonal and $\beta_t = \beta_{\min} + t^{\beta_r}(\beta_{\max} - \beta_{\min})$
# ($\beta_{\min} = 0.1$, $\beta_r = 1.7$). At $s = 0$, $A = 0$ and this *is* the VP-SDE.
# A negative direction of $A$ contracts faster there; a positive one slower.
#
# **Exact transitions.** With $A$ constant and the clock $\tau(t) = \int_0^t \beta_u\,du$ the SDE becomes
# $dX = -\tfrac12 D X\,d\tau + dW_\tau$, a constant-coefficient linear SDE:
#
# $$X_t \mid X_0 \sim \mathcal N(\Phi_t X_0, \Sigma_t), \qquad \Phi_t = e^{-\tau D/2}, \qquad
#   \frac{d\Sigma}{d\tau} = -\tfrac12 (D\Sigma + \Sigma D^\top) + I,\ \Sigma_0 = 0,$$
#
# the Lyapunov equation, solved exactly by one matrix exponential (Van Loan's trick). The paper lets
# $A_t$ vary in time; we keep one $A$ so that everything above is exact *(our simplification)*.
#
# **Backward score, simulation-free.** Write $\Sigma_t = L_t L_t^\top$ and $X_t = \Phi_t x_0 + L_t\varepsilon$.
# Then $\nabla \log p(X_t \mid x_0) = -L_t^{-\top}\varepsilon$, and a network regresses it at random
# $(x_0, t, \varepsilon)$ without simulating anything. The paper's loss is
# $\|\hat z_\theta - \sqrt{\beta_t}(-L_t^{-\top}\varepsilon - A X_t)\|^2$; we let the network predict
# $\varepsilon$ and set $\nabla\log\rho_t \approx -L_t^{-\top}\hat\varepsilon_\theta$ — the same minimiser,
# weighted so that it stays well conditioned near $t = 0$ *(our choice)*.
#
# **Adaptive prior.** Sampling starts from $\mathcal N(0, \Sigma_1)$, the noise part of $X_1$, which
# changes with $A$. It is a good start only if $\Phi_1 x_0$ is negligible: the forward must *forget*
# the data by $t = 1$, and that is where the VP-SDE fails on stretched shapes.
#
# **Updating $A$.** Simulate backward paths $x_j$ of the current model from the prior, hold the
# model's backward score $\hat z = \sqrt{\beta}(\nabla\log\hat\rho - A x)$ fixed, and take a gradient step on
#
# $$\sum_j \Delta t\; \mathbb E\big[\tfrac12\|z_f\|^2 + z_f\cdot \hat z + \zeta\,\beta_j \operatorname{tr}A\big],
#   \qquad z_f = \sqrt{\beta_j}\,A x_j,$$
#
# the forward half of the SB-FBSDE objective (with $\nabla\cdot z_f = \sqrt\beta\operatorname{tr}A$).
# With $\zeta = 1$ its minimiser is the linear forward score that agrees with the backward model *on
# the model's own paths*: where those paths are narrower than the forward marginals (data left over
# at $t=1$), $A$ moves to contract faster. A value $\zeta \approx 0.75$ is sometimes used; a short computation
# shows that $\zeta < 1$ adds a constant push $-(1-\zeta)\beta\,\mathrm{tr}A$ that grows $A$ isotropically,
# so we use $\zeta = 1$ *(our reading)*.
#
# **Sampling.** Backward SDE $dX = [-\tfrac12\beta D X - \beta\nabla\log\rho_t]\,dt + \sqrt\beta\,d\bar W$,
# or the probability-flow ODE $\dot x = -\tfrac12\beta_t (D x + \nabla\log\rho_t)$, both through the
# shared sampler `lsb.sample` (the `VSDM` class has the `Bridge` face).

# %% [markdown]
# ## 2 · Practice
# ### 2.1 The transitions in closed form
# We pick some $A \neq 0$, solve the Lyapunov ODE numerically with SciPy, and compare with
# `LinearForward.transition` (matrix exponentials). Then $A = 0$ must give the VP-SDE of `lsbcore.reference`.

# %%
fwd = lsb.LinearForward(2, beta_max=BETA_MAX, seed=3)
with torch.no_grad():
    fwd.s.copy_(torch.tensor([-0.6, 0.3], dtype=torch.float64))
D = fwd.D().detach().numpy()
ts = np.array([0.1, 0.5, 1.0])


def lyapunov_rhs(t, y):
    S = y.reshape(2, 2)
    beta = float(fwd.beta(torch.tensor(t, dtype=torch.float64)))
    return (beta * (-0.5 * (D @ S + S @ D.T) + np.eye(2))).ravel()


sol = solve_ivp(lyapunov_rhs, (0, 1), np.zeros(4), t_eval=ts, rtol=1e-11, atol=1e-13)
Phi, Sigma = fwd.transition(torch.tensor(ts))
torch.testing.assert_close(Sigma.detach(), torch.tensor(sol.y.T.reshape(-1, 2, 2)), atol=1e-8, rtol=0)
print("Σ_1 (matrix exponential):\n", Sigma[-1].detach().numpy().round(4))

vp, f0 = lsb.VP(0.1, BETA_MAX, 1.7), lsb.LinearForward(2, beta_max=BETA_MAX)
t = torch.tensor(ts)
torch.testing.assert_close(f0.transition(t)[1].detach(), vp.transition_var(0.0, t)[:, None, None] * torch.eye(2, dtype=torch.float64))
print("A = 0 reproduces the VP-SDE's transition variance 1 − exp(−∫β):", vp.transition_var(0.0, t).numpy().round(4))

# %% [markdown]
# ### 2.2 A Gaussian check
# With $\beta \equiv 4$ and $A = 0$ the forward is the OU process $dX = -2X\,dt + 2\,dW$ (docs/theory.md §3).
# For Gaussian data $\mathcal N(m, S)$ the score is known exactly, so the PF-ODE started from the exact
# $q_1$ must pass through the marginals of the **Schrödinger bridge from $\mathcal N(m,S)$ to $q_1$ with
# the OU reference**, which we get from the Brownian closed form (`GaussianBridge`) by a change of
# clock and scale (`ou_gaussian_bridge_moments`). Tolerance: 5 Monte Carlo standard errors.

# %%
class GaussianEps(torch.nn.Module):
    """The exact noise predictor ε*(x, t) = L_tᵀ C_t⁻¹ (x − Φ_t m) for N(m, S) data (C_t = Φ S Φᵀ + Σ_t)."""

    def __init__(self, forward, m, S):
        super().__init__()
        self.f, self.m, self.S = forward, m, S
        self.p = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))

    def forward(self, x, t):
        with torch.no_grad():
            Phi, Sig = self.f.transition(t.reshape(-1)[:1])
            C = Phi[0] @ self.S @ Phi[0].T + Sig[0]
            W = torch.linalg.solve(C, torch.linalg.cholesky(Sig[0]))
        return (x - Phi[0] @ self.m) @ W


m, S = torch.tensor([1.0, -2.0], dtype=torch.float64), torch.tensor([[0.6, 0.25], [0.25, 0.4]], dtype=torch.float64)
ou = lsb.LinearForward(2, beta_min=4.0, beta_max=4.0)
exact = lsb.VSDM(ou, GaussianEps(ou, m, S))
with torch.no_grad():
    Phi1, Sig1 = ou.transition(torch.ones(1, dtype=torch.float64))
m1, C1 = Phi1[0] @ m, Phi1[0] @ S @ Phi1[0].T + Sig1[0]
n = 2000
x1 = m1 + torch.randn(n, 2, generator=torch.Generator().manual_seed(SEED), dtype=torch.float64) @ torch.linalg.cholesky(C1).T
with torch.no_grad():
    run = lsb.sample(exact, x1, method="ode", steps=100, t0=1e-3, t1=1.0, direction="backward", keep_traj=True)
idx = [25, 50, 75, 100]
mu_b, cov_b = ou_gaussian_bridge_moments(m, S, m1, C1, -2.0, 2.0, run.times[idx])
for j, k in enumerate(idx):
    err_m = float((run.traj[k].mean(0) - mu_b[j]).abs().max())
    err_c = float((torch.cov(run.traj[k].T) - cov_b[j]).abs().max())
    print(f"t = {float(run.times[k]):.2f}: |mean − bridge| = {err_m:.3f}, |cov − bridge| = {err_c:.3f}")
    assert err_m < 5 * math.sqrt(0.6 / n) and err_c < 5 * math.sqrt(2 / n) * 0.6

# %% [markdown]
# ### 2.3 Anisotropic shapes
# The spiral stretched ×8 along $y$ and the checkerboard stretched ×6 along $x$. At $\beta_{\max} = 10$
# the VP-SDE keeps $e^{-\int\beta/2} \approx 0.15$ of the data's scale at $t = 1$, i.e. a standard
# deviation of several units along the long axis, far from its $\mathcal N(0, I)$ prior. Both models
# get the same network (`TimeMLP`, width 64), the same number of steps and the same seed; VSDM also
# updates $A$ every `A_EVERY` steps after a warm-up.

# %%
shapes = {
    "spiral ×8 in y": lambda n, seed: spiral(n, seed=seed, scale=(1, 8)),
    "checkerboard ×6 in x": lambda n, seed: checkerboard(n, seed=seed, scale=(6, 1)),
}
models, targets = {}, {}
for name, make in shapes.items():
    data, targets[name] = make(N_TRAIN, SEED), make(2 * N_EVAL, SEED + 100)
    for label, adaptive in (("VP-SDE", False), ("VSDM", True)):
        models[name, label] = lsb.fit_vsdm(data, adaptive=adaptive, steps=STEPS, width=64, beta_max=BETA_MAX,
                                           a_every=A_EVERY, seed=SEED)
        print(f"{name:22s} {label:7s} trained in {models[name, label].seconds:5.1f} s")

# %%
fig, axes = new_axes(3, nrows=2, size=3.3)
for r, name in enumerate(shapes):
    tgt = targets[name][:N_EVAL]
    scatter2d(tgt, axes[3 * r], s=1, color="C2", title=f"target: {name}")
    for c, label in enumerate(("VP-SDE", "VSDM")):
        x = models[name, label].bridge.sample(N_EVAL, method="ode", steps=25, seed=SEED).x
        scatter2d(x, axes[3 * r + c + 1], s=1, title=f"{label}, PF-ODE, NFE 50")
    lo, hi = tgt.min(0).values - 3, tgt.max(0).values + 3      # one frame per row: compare spreads
    for ax in axes[3 * r: 3 * r + 3]:
        ax.set_xlim(float(lo[0]), float(hi[0]))
        ax.set_ylim(float(lo[1]), float(hi[1]))
        ax.set_aspect("auto")
fig.suptitle(f"Anisotropic shapes at β_max = {BETA_MAX:g}: samples (same frame per row)")
plt.show()

# %% [markdown]
# ### 2.4 Few steps: W2, histogram error and straightness against NFE
# For each model we integrate the PF-ODE with Heun's method at NFE $= 6, 8, 16, 50$ and report the W2
# to fresh target samples (with the **noise floor**: the W2 between two target samples of the same
# size), the total-variation error of 40×40 histograms, and the straightness
# $\mathbb E\int\|\dot x_t - (x_1 - x_0)\|^2 dt$ of the ODE paths — raw and relative to the mean squared
# chord $\mathbb E\|x_1 - x_0\|^2$ (a model whose samples travel farther has larger raw numbers).

# %%
NFES = (6, 8, 16, 50)
results = {key: evaluate(res.bridge, targets[key[0]], nfes=NFES, n=N_EVAL, seed=SEED) for key, res in models.items()}
print(f"{'shape':22s} {'model':7s} " + " ".join(f"W2@{k:<3d}" for k in NFES) + "  floor  hist@8 hist@50  straight@50 (rel)")
for (name, label), ev in results.items():
    print(f"{name:22s} {label:7s} " + " ".join(f"{ev[k]['w2']:6.2f}" for k in NFES)
          + f"  {ev[50]['floor']:5.2f}  {ev[8]['hist']:6.2f} {ev[50]['hist']:6.2f}"
          + f"  {ev[50]['straightness']:8.1f} ({ev[50]['rel_straightness']:.3f})")

# %%
fig, axes = new_axes(2, size=3.8)
for ax, name in zip(axes, shapes):
    for label, c in (("VP-SDE", "C0"), ("VSDM", "C1")):
        ev = results[name, label]
        ax.plot(NFES, [ev[k]["w2"] for k in NFES], "o-", color=c, label=label)
    ax.axhline(results[name, "VSDM"][50]["floor"], color="k", ls=":", label="noise floor")
    ax.set_xscale("log")
    ax.set_xticks(NFES, [str(k) for k in NFES])
    ax.minorticks_off()
    ax.set_xlabel("NFE (PF-ODE, Heun)")
    ax.set_ylabel("W2 to the target")
    ax.set_title(name)
    ax.legend(fontsize=8)
fig.suptitle("Quality against the number of function evaluations")
plt.show()

# %% [markdown]
# The claims we can make are the ones that hold here *and* held across seeds when this notebook was
# written (seeds 0 and 1 on both shapes, full size; `bench/vsdm.py` prints the same table):
#
# - **W2 at low NFE:** VSDM's is lower than the VP-SDE's at every NFE we tried, on both shapes — asserted.
# - **Histogram error:** lower for VSDM at NFE 50 on both shapes — asserted; at NFE 6 it was not
#   always lower (spiral, seed 0), so that is not asserted.
# - **Straightness:** *not* what we found. In absolute terms VSDM's paths are 3–5× less straight —
#   they travel much farther, because VSDM actually carries the long axis. Relative to the squared
#   chord, VSDM's paths were straighter on the coarse NFE 6–8 grids but slightly *less* straight at
#   NFE 16–50 (the more accurate paths) in all four runs. So we do not assert straighter paths; the
#   gain at low NFE here comes from the better prior and forward, not from straightness.

# %%
for name in shapes:
    vp_ev, vs_ev = results[name, "VP-SDE"], results[name, "VSDM"]
    for k in (6, 8):
        assert vs_ev[k]["w2"] < vp_ev[k]["w2"], (name, k, vs_ev[k]["w2"], vp_ev[k]["w2"])
    assert vs_ev[50]["hist"] < vp_ev[50]["hist"], name
print("VSDM beats the VP-SDE in W2 at NFE 6 and 8, and in histogram error at NFE 50, on both shapes.")

# %% [markdown]
# ### 2.5 What $A$ does to the forward noise
# The learned $A$ for each shape, and the forward marginals $X_t$ with the adaptive prior's 2σ
# ellipse. Move $\beta_{\max}$, $t$ and the strength $\lambda$ of $A$ ($\lambda = 0$: the VP-SDE): the info line
# reports how much of the data's spread is left at $t = 1$ relative to the prior's.

# %%
for name in shapes:
    A = models[name, "VSDM"].bridge.forward.A().detach()
    print(f"{name}: learned A =\n{A.numpy().round(3)}")

# %%
name = "spiral ×8 in y"
W.vsdm_forward_explorer(targets[name], models[name, "VSDM"].bridge.forward, beta_max=BETA_MAX)

# %% [markdown]
# ### 2.6 Explore the samplers
# Choose a model and the NFE; the info line shows the W2 and its noise floor.

# %%
W.vsdm_sampler_explorer({f"{label}": models[name, label].bridge for label in ("VP-SDE", "VSDM")},
                        targets[name], nfe=8, n=N_EVAL)

# %% [markdown]
# ## 3 · Discussion
# - The VP-SDE's failure here is a **prior mismatch**: at $\beta_{\max} = 10$ it has not forgotten the
#   long axis by $t = 1$, and no score network can repair a wrong starting distribution. VSDM fixes it
#   by contracting faster along that axis (a negative direction in $A$), which it *learns* from its own
#   backward paths, and by starting from the matching prior $\mathcal N(0, \Sigma_1)$.
# - Everything stays simulation-free for the network: the transitions are exact matrix exponentials.
#   Only the update of $A$ simulates (a few short backward runs), which is why VSDM costs a little more
#   wall time per step than the VP-SDE (see `bench/vsdm.py`).
# - What we did not reproduce: a time-dependent $A_t$, the paper's $\zeta$ and its convergence analysis;
#   our small budgets leave both models above the noise floor, so compare them with each other, not
#   with the paper's numbers.

# %% [markdown]
# ## 4 · Exercises
# Each exercise has a cell for your answer (a placeholder: `...` or `None`) and, after it, a check:
# `lsb.exercises.check("06.1", answer)` says "correct", "not attempted yet" while the placeholder is
# there, or what is off, with a hint. The checks compare with what `lsbcore` computes. To go further
# (not checked): set ζ = 0.75 in `lsb.fit_vsdm` and watch `A_history`: what happens to tr A?

# %%
import lsbcore.exercises  # noqa: F401  (the checks: lsb.exercises.check)

# %% [markdown]
# **Exercise 06.1 — the adaptive prior, diagonal case.** For a *diagonal* $D = \mathrm{diag}(d_1, d_2)$
# the Lyapunov equation decouples: $\Sigma_{ii}(1) = (1 - e^{-\tau d_i})/d_i$ with $\tau = \int_0^1\beta$. With
# $U = V = I$ and $A = \mathrm{diag}(s)$, write the diagonal of $\Sigma_1$ as a function of s (a tensor of
# shape (2,)) and β_max (β_min = 0.1, β_r = 1.7).

# %% tags=["stub"]
def my_prior_var(s, beta_max):
    ...  # your code: return the diagonal of Σ_1, shape (2,)


# %% tags=["solution"]
def my_prior_var(s, beta_max, beta_min=0.1, beta_r=1.7):
    tau = beta_min + (beta_max - beta_min) / (beta_r + 1)   # ∫_0^1 β_min + t^{β_r}(β_max − β_min) dt
    d = 1 - 2 * s
    return (1 - torch.exp(-tau * d)) / d


# %%
lsb.exercises.check("06.1", my_prior_var)

# %% [markdown]
# **Exercise 06.2 — what the VP-SDE leaves at t = 1.** With A = 0, $X_1 = \Phi_1 X_0 + \text{noise}$ with
# $\Phi_1 = e^{-\tau/2}$. Write the kept fraction as a function of β_max. Does β_max = 20 rescue the VP-SDE
# on the spiral stretched ×8?

# %% tags=["stub"]
def vp_kept(beta_max):
    ...  # your code: return e^{−τ/2} (a float)


# %% tags=["solution"]
def vp_kept(beta_max, beta_min=0.1, beta_r=1.7):
    return math.exp(-(beta_min + (beta_max - beta_min) / (beta_r + 1)) / 2)


# scale 8 along y: at β_max = 10 a standard deviation of about 8 × 0.15 ≈ 1.2 is left; at 20, 8 × 0.024 ≈ 0.2
print(f"kept: β_max = 10 → {vp_kept(10.0):.3f}, β_max = 20 → {vp_kept(20.0):.3f}")

# %%
lsb.exercises.check("06.2", vp_kept)

# %% [markdown]
# **Exercise 06.3 — the score from the noise predictor.** The network predicts ε in
# $X_t = \Phi_t x_0 + L_t\varepsilon$ ($\Sigma_t = L_tL_t^\top$). Write the score $-L_t^{-\top}\hat\varepsilon$ for a batch
# of predictions (rows of shape (n, d)) given $\Sigma_t$, and say why it equals $\nabla\log p(X_t\mid x_0)$ when ε̂ = ε.

# %% tags=["stub"]
def my_score_from_eps(eps_hat, Sigma):
    ...  # your code: return the scores, shape (n, d)


# %% tags=["solution"]
def my_score_from_eps(eps_hat, Sigma):
    """−Σ⁻¹(X_t − Φ x0) = −(L Lᵀ)⁻¹ L ε = −L^{−⊤} ε; in rows that is −ε L^{−1}: solve X L = −ε̂ (triangular)."""
    L = torch.linalg.cholesky(Sigma)
    return -torch.linalg.solve_triangular(L, eps_hat, upper=False, left=False)


# %%
lsb.exercises.check("06.3", my_score_from_eps)
