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
# # 01 · The Schrödinger system
#
# [![Open in Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/lsbcore/lsbcore/blob/main/notebooks/01_schrodinger_system.ipynb) [![Binder](https://mybinder.org/badge_logo.svg)](https://mybinder.org/v2/gh/lsbcore/lsbcore/main?labpath=notebooks%2F01_schrodinger_system.ipynb)

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
# Solve the *static* Schrödinger bridge problem three ways — Sinkhorn on samples, Fortet/IPF on a
# grid, and the Gaussian closed form — see that they agree to the precision the mathematics predicts,
# and turn the solution into a *dynamic* bridge: marginals ρ_t and drifts at any time t.
#
# ## Contents
# 1. Theory: the Schrödinger problem, its product form, the Schrödinger system, Fortet/IPF, dynamics,
#    the Gaussian closed form
# 2. Practice
#    1. One Gaussian problem, three solvers
#    2. The bridge in time: ρ_t and the drifts
#    3. Fortet/IPF converges (explore the iterations)
#    4. The knob σ (ε = 2σ²): from the Monge map to independence (explore σ and t)
#    5. Two dimensions: a separable kernel
#    6. Non-Gaussian marginals on the grid and on samples (explore t)
# 3. Discussion
# 4. Exercises (each with a worked solution and a check: `lsb.exercises.check`)

# %% tags=["parameters"]
import lsbcore as lsb

FAST = lsb.is_fast()              # LSB_FAST=1: the same computations, smaller
N_SAMPLES = 500 if FAST else 1500  # points per marginal for Sinkhorn on samples
GRID_1D = 301 if FAST else 601     # nodes of the 1-D grid
GRID_2D = 48 if FAST else 72       # nodes per axis of the 2-D grid
SEED = 0
DEVICE = "cpu"   # checked but changes nothing here: every computation is a float64 grid/Sinkhorn solve or closed form, no network, so it runs on the CPU

# %%
import math

import matplotlib.pyplot as plt
import torch
from IPython.display import display

from lsbcore import widgets as W
from lsbcore.plotting import coupling_image, density_curves, density_image, new_axes
from lsbcore.schrodinger import log_sinkhorn_step

DEV = lsb.resolve_device(DEVICE)   # validated for uniformity with notebooks 02–07; nothing below trains a network

torch.set_default_dtype(torch.float64)  # the grid and closed form agree to 1e-8: keep float64 here

# %% [markdown]
# ## 1 · Theory
#
# **The Schrödinger problem.** Let P be the law of the reference process X_t = X_0 + σW_t on [0, 1]
# (Brownian motion with diffusion σ). Given two marginals ρ0 and ρ1, the Schrödinger bridge is the
# path measure closest to P that starts at ρ0 and ends at ρ1:
#
# $$Q^\star = \arg\min_{Q:\ Q_0 = \rho_0,\ Q_1 = \rho_1} \mathrm{KL}(Q \,\|\, P).$$
#
# By the chain rule of KL, $\mathrm{KL}(Q\|P) = \mathrm{KL}(Q_{01}\|P_{01}) + \mathbb E_{Q_{01}}\mathrm{KL}(Q^{xy}\|P^{xy})$,
# where $Q^{xy}$ is Q pinned at X0 = x, X1 = y. The second term vanishes when every pinned path is a
# Brownian bridge, so the problem is *static*: find the coupling π of (X0, X1). With
# $P_{01}(dx, dy) \propto \rho_0(dx)\, p(x, y)\,dy$, $p(x, y) = \mathcal N(y; x, \sigma^2 I)$, it is
# **entropic optimal transport** with ε = 2σ²:
#
# $$\pi^\star = \arg\min_{\pi \in \Pi(\rho_0, \rho_1)} \int \|x - y\|^2 d\pi + \varepsilon\, \mathrm{KL}(\pi \,\|\, \rho_0 \otimes \rho_1).$$
#
# **Product form and the Schrödinger system.** The optimal coupling has the form
# $\pi^\star(x, y) = \hat\varphi_0(x)\, p(x, y)\, \varphi_1(y)$ for two *potentials*, fixed by the two marginal constraints:
#
# $$\hat\varphi_0(x) \int p(x, y)\,\varphi_1(y)\,dy = \rho_0(x), \qquad \varphi_1(y) \int p(x, y)\,\hat\varphi_0(x)\,dx = \rho_1(y).$$
#
# **Fortet / IPF / Sinkhorn.** Solve each equation for its potential in turn: $u \leftarrow \rho_0 / (K v)$,
# $v \leftarrow \rho_1 / (K^\top u)$, with the kernel $K$ on a grid (the continuous problem: Fortet's
# iteration) or $K_{ij} = e^{-\|x_i - y_j\|^2/\varepsilon}$ on samples (the discrete problem: Sinkhorn).
# Each half-step makes one marginal exact; the other one's error falls geometrically. In the log
# domain (potentials $f_0, f_1$ in place of $u, v$, and log-sum-exp) nothing underflows when ε is small.
#
# **Dynamics.** With the heat semigroup $P_s$ of variance σ²s,
# $\varphi_t = P_{1-t}\varphi_1$, $\hat\varphi_t = P_t \hat\varphi_0$, the bridge marginal is
# $\rho_t = \varphi_t \hat\varphi_t$, the forward drift $b = \sigma^2\nabla\log\varphi_t$ and the backward drift
# $\hat b = \sigma^2\nabla\log\hat\varphi_t$ (Nelson: $b + \hat b = \sigma^2 \nabla\log\rho_t$). Equivalently
# $X_t = (1-t)X_0 + tX_1 + \sigma\sqrt{t(1-t)}\,Z$ with $(X_0, X_1) \sim \pi^\star$.
#
# **Gaussian closed form** (Janati et al. 2020; Mallasto et al. 2022; Bunne et al. 2023). For
# ρ0 = N(m0, S0), ρ1 = N(m1, S1):
#
# $$D = (4 S_0^{1/2} S_1 S_0^{1/2} + \sigma^4 I)^{1/2}, \qquad C = \mathrm{Cov}(X_0, X_1) = \tfrac12 (S_0^{1/2} D S_0^{-1/2} - \sigma^2 I),$$
# $$\Sigma_t = (1-t)^2 S_0 + t^2 S_1 + t(1-t)(C + C^\top + \sigma^2 I), \qquad b(x, t) = M_t \Sigma_t^{-1}(x - \mu_t) + m_1 - m_0,$$
#
# with $M_t = t S_1 - (1-t) S_0 + (1-t) C^\top - t C - \sigma^2 t I$, which follows from
# $b(x, t) = \mathbb E[(X_1 - X_t)/(1-t) \mid X_t = x]$ for the jointly Gaussian $(X_0, X_1, X_t)$.
# (This $M_t$ is the transpose of the $S_t$ written in some references; for non-symmetric C the
# order matters, and the tests of `lsbcore` check it against the Fokker–Planck equation.)

# %% [markdown]
# ## 2 · Practice
# ### 2.1 One Gaussian problem, three solvers
# ρ0 = N(−1, 0.5), ρ1 = N(1.5, 1.2), σ = 0.8 (ε = 1.28). First the closed form:

# %%
m0, v0, m1, v1, sigma = -1.0, 0.5, 1.5, 1.2, 0.8
eps = 2 * sigma**2
rho0 = lsb.Gaussian(torch.tensor([m0]), torch.tensor([[v0]]))
rho1 = lsb.Gaussian(torch.tensor([m1]), torch.tensor([[v1]]))
exact = lsb.GaussianBridge(m0, v0, m1, v1, sigma)
print(f"closed form: C = {float(exact.cross_cov):.10f}, OT_eps = {exact.entropic_cost():.10f}")

# %% [markdown]
# **Grid.** Fortet/IPF on nodes spaced Δ ≈ 0.03–0.07 over [−9, 11]. The Riemann sums of these
# smooth Gaussians err by ~exp(−2π²w²/Δ²) (w the narrowest width) and the box reaches more than 8
# standard deviations past both means, so the only error left is IPF's tolerance (1e-11):
# C must agree to 1e-8.

# %%
grid = lsb.Grid(-9.0, 11.0, GRID_1D)
on_grid = lsb.fortet(rho0, rho1, sigma, grid)
print(on_grid, "cross-cov:", float(on_grid.cross_cov()), " OT_eps:", on_grid.entropic_cost())
assert on_grid.converged
assert abs(float(on_grid.cross_cov()) - float(exact.cross_cov)) < 1e-8
assert abs(on_grid.entropic_cost() - exact.entropic_cost()) < 1e-7

# %% [markdown]
# **Samples.** Sinkhorn between N samples of each marginal. Now the error is statistical: the
# empirical covariance of the coupling fluctuates by about $\sqrt{v_0 v_1/N}$, and the entropic cost
# by $\sqrt{(\mathrm{Var} f_0 + \mathrm{Var} f_1)/N}$ with $f_0, f_1$ the dual potentials (the central limit
# theorem for entropic OT). We allow five of each.

# %%
x0 = rho0.sample(N_SAMPLES, seed=SEED)
x1 = rho1.sample(N_SAMPLES, seed=SEED + 1)
res = lsb.sinkhorn(x0, x1, eps, tol=1e-9)
P = res.plan()
c_hat = float(((x0 - P.sum(1) @ x0) * (P @ (x1 - P.sum(0) @ x1))).sum())
cost_hat = float(res.a @ res.f0 + res.b @ res.f1)  # the dual value = OT_eps of the two samples
sd_c = math.sqrt(2 * v0 * v1 / N_SAMPLES)
sd_cost = math.sqrt(float(res.f0.var() + res.f1.var()) / N_SAMPLES)
print(f"Sinkhorn on {N_SAMPLES} samples: C = {c_hat:.4f} (±{sd_c:.3f}), OT_eps = {cost_hat:.3f} (±{sd_cost:.3f}), "
      f"{res.n_iter} iterations")
assert abs(c_hat - float(exact.cross_cov)) < 5 * sd_c
assert abs(cost_hat - exact.entropic_cost()) < 5 * sd_cost

# %%
fig, axes = new_axes(3, size=3.6)
xs = grid.axes[0]
XY = torch.stack(torch.meshgrid(xs, xs, indexing="ij"), -1).reshape(-1, 2)
closed = lsb.Gaussian(torch.tensor([m0, m1]), exact.joint_cov()).log_prob(XY).exp().reshape(len(xs), len(xs))
coupling_image(closed, xs, xs, axes[0], title="closed form π*")
coupling_image(on_grid.plan(), xs, xs, axes[1], title="Fortet/IPF on the grid")
a_pairs, b_pairs = res.sample_pairs(2000, seed=SEED)
axes[2].scatter(a_pairs[:, 0], b_pairs[:, 0], s=3, alpha=0.3)
axes[2].set(xlim=(xs[0], xs[-1]), ylim=(xs[0], xs[-1]), xlabel="$x_0$", ylabel="$x_1$",
            title=f"Sinkhorn pairs, N = {N_SAMPLES}")
for ax in axes:
    ax.set_xlim(-4, 4); ax.set_ylim(-3, 5)
fig.suptitle("One coupling, three solvers (σ = 0.8)")
plt.show()

# %% [markdown]
# ### 2.2 The bridge in time
# From the grid potentials, ρ_t = φ_t φ̂_t; its variance must match Σ_t of the closed form to 1e-6
# (relative), and the drifts must match too. From Sinkhorn pairs we get bridge samples
# X_t = (1−t)X0 + tX1 + σ√(t(1−t))Z, whose variance is right up to Monte-Carlo error.

# %%
ts = [0.0, 0.25, 0.5, 0.75, 1.0]
for t in ts:
    mean_t, cov_t = on_grid.moments(t)
    assert abs(float(cov_t) / float(exact.cov(t)) - 1) < 1e-6
    assert abs(float(mean_t) - float(exact.mean(t))) < 1e-6
xt = exact.marginal(0.5).sample(500, seed=SEED)
for t in (0.1, 0.5, 0.9):
    assert float((on_grid.drift(xt, t) - exact.drift(xt, t)).abs().max()) < 1e-6
    assert float((on_grid.backward_drift(xt, t) - exact.backward_drift(xt, t)).abs().max()) < 1e-6
n_pairs = 4000
a_pairs, b_pairs = res.sample_pairs(n_pairs, seed=SEED + 2)
x_half = lsb.brownian_bridge_sample(a_pairs, b_pairs, 0.5, sigma=sigma, seed=SEED)
var_half = float(exact.cov(0.5))
print(f"Var ρ_0.5: closed form {var_half:.4f}, grid {float(on_grid.moments(0.5)[1]):.8f}, "
      f"Sinkhorn bridges {float(x_half.var()):.4f}")
# resampling error √(2/n)·Var plus the N-sample error of the plan itself (≈ 2 sd_c enters Σ_t)
assert abs(float(x_half.var()) - var_half) < 5 * (math.sqrt(2 / n_pairs) * var_half + 0.5 * sd_c)

# %%
fig, ax = new_axes(size=4.5)
curves = {f"grid t={t}": on_grid.density(t) for t in ts}
density_curves(xs, curves, ax, title="Bridge marginals ρ_t: grid (lines), closed form (dots)")
for t in ts:
    ax.plot(xs[::12], exact.marginal(t).log_prob(xs[::12, None]).exp(), "k.", ms=3)
ax.hist(x_half[:, 0], bins=60, density=True, alpha=0.25, color="C2", label="Sinkhorn bridges, t = 0.5")
ax.set_xlim(-4, 5)
ax.legend(fontsize=7)
plt.show()

# %% [markdown]
# Both bridges have the same face (`drift`, `backward_drift`, `velocity`, `sigma`), so the one sampler,
# `lsb.sample`, runs them unchanged. Euler–Maruyama from ρ0 with the grid drift lands on ρ1
# (within Monte-Carlo error plus the O(h) bias of the scheme).

# %%
start = rho0.sample(N_SAMPLES * 4, seed=SEED + 3)
for name, bridge in (("closed form", exact), ("grid", on_grid)):
    end = lsb.sample(bridge, start, steps=50, seed=SEED).x
    print(f"{name:12s}: mean {float(end.mean()):.3f} (target {m1}), var {float(end.var()):.3f} (target {v1})")
    n_end = end.shape[0]
    assert abs(float(end.mean()) - m1) < 5 * math.sqrt(v1 / n_end) + 0.05
    assert abs(float(end.var()) - v1) < 5 * v1 * math.sqrt(2 / n_end) + 0.1

# %% [markdown]
# ### 2.3 Fortet/IPF converges
# After every half-step one marginal is exact; the error of the other one falls geometrically, more
# slowly for small σ (the kernel is more local, information travels less far per iteration).

# %%
fig, ax = new_axes(size=4.5)
for s in (0.3, 0.5, 0.8, 1.5):
    hist = lsb.fortet(rho0, rho1, s, grid).errors
    ax.semilogy(hist, label=f"σ = {s} ({len(hist)} iterations)")
    assert hist[-1] < 1e-10 and hist[-1] < hist[0]
ax.set(xlabel="iteration", ylabel="‖π1 − ρ0‖₁", title="Fortet/IPF: marginal error per iteration")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# Explore: move the iteration slider to watch the first marginal of the plan approach ρ0 (here a
# two-bump mixture, so the first few plans are visibly wrong).

# %%
mix0 = lsb.GaussianMixture([0.5, 0.5], [[-2.0], [0.5]], [0.3, 0.5])
display(W.ipf_explorer(mix0, rho1, lsb.Grid(-6.0, 6.0, 241), 0.5, max_iter=40))

# %% [markdown]
# ### 2.4 The knob σ
# As σ → 0 the coupling becomes the Monge map: C → S0 T (T the optimal map); as σ → ∞ it becomes
# independent: σ²C → S0 S1. In between, the closed form and the grid agree at every σ.

# %%
sigmas = [0.05, 0.2, 0.5, 1.0, 2.0, 4.0]
closed_c = [float(lsb.GaussianBridge(m0, v0, m1, v1, s).cross_cov) for s in sigmas]
grid_c = {s: float(lsb.fortet(rho0, rho1, s, grid).cross_cov()) for s in (0.5, 1.0, 2.0)}
monge = float(torch.tensor([[v0]]) @ lsb.monge_map(v0, v1))
print("Monge limit S0·T =", monge, "  closed form at σ=0.05:", closed_c[0])
assert abs(closed_c[0] - (monge - 0.05**2 / 2)) < 1e-5        # C = S0 T − σ²/2 + O(σ⁴)
assert abs(4.0**2 * closed_c[-1] - v0 * v1) < 0.01            # σ² C → S0 S1
for s, c in grid_c.items():
    assert abs(c - float(lsb.GaussianBridge(m0, v0, m1, v1, s).cross_cov)) < 1e-8
fig, ax = new_axes(size=4.2)
ax.semilogx(sigmas, [c / math.sqrt(v0 * v1) for c in closed_c], "o-", label="closed form")
ax.semilogx(list(grid_c), [c / math.sqrt(v0 * v1) for c in grid_c.values()], "kx", ms=9, label="grid")
ax.set(xlabel="σ", ylabel="corr(X0, X1)", title="Correlation of the coupling vs σ")
ax.legend()
plt.show()

# %% [markdown]
# Explore: σ (ε = 2σ²) redraws the coupling and the bridge marginals; t moves along the bridge.
# Small σ: a thin, nearly deterministic coupling; large σ: a blurred, nearly independent one, and ρ_t
# spreads out in the middle of the interval.

# %%
display(W.schrodinger_explorer(mix0, rho1, lsb.Grid(-6.0, 6.0, 241), sigma=0.6, t=0.5))

# %% [markdown]
# ### 2.5 Two dimensions
# In 2-D the heat kernel factorises, $p(x, y) = p_1(x_1, y_1)\,p_2(x_2, y_2)$, so each kernel
# application is two 1-D contractions: N³ work for an N × N grid instead of N⁴. The grid again
# reproduces the closed form (this time a full, non-symmetric cross-covariance).

# %%
M0, S0 = torch.tensor([-1.0, 0.5]), torch.tensor([[1.0, 0.3], [0.3, 0.5]])
M1, S1 = torch.tensor([1.0, -0.5]), torch.tensor([[0.6, -0.2], [-0.2, 1.2]])
exact2 = lsb.GaussianBridge(M0, S0, M1, S1, 1.0)
grid2 = lsb.Grid(-10.0, 10.0, GRID_2D, dim=2)
on_grid2 = lsb.fortet(lsb.Gaussian(M0, S0), lsb.Gaussian(M1, S1), 1.0, grid2)
print("closed form C =\n", exact2.cross_cov, "\ngrid C =\n", on_grid2.cross_cov())
assert float((on_grid2.cross_cov() - exact2.cross_cov).abs().max()) < 1e-8
for t in (0.25, 0.5, 0.75):
    cov_t = on_grid2.moments(t)[1]
    assert float(torch.linalg.matrix_norm(cov_t - exact2.cov(t)) / torch.linalg.matrix_norm(exact2.cov(t))) < 1e-6

# %% [markdown]
# ### 2.6 Non-Gaussian marginals
# Now ρ0 = N(0, I) and ρ1 a mixture of three Gaussians, σ = 0.6. No closed form; the grid and
# Sinkhorn on samples are two independent approximations of the same bridge, and they agree on the
# moments of ρ_t up to the samples' Monte-Carlo error.

# %%
mix = lsb.GaussianMixture([0.3, 0.3, 0.4], [[-2.0, 2.0], [2.0, 2.0], [0.0, -2.5]], [0.3, 0.3, 0.5])
gauss0 = lsb.Gaussian(torch.zeros(2), torch.eye(2))
sigma2 = 0.6
box = lsb.Grid(-6.0, 6.0, GRID_2D, dim=2)
mix_grid = lsb.fortet(gauss0, mix, sigma2, box)
y0 = gauss0.sample(N_SAMPLES, seed=SEED)
y1 = mix.sample(N_SAMPLES, seed=SEED + 1)
mix_res = lsb.sinkhorn(y0, y1, 2 * sigma2**2, tol=1e-9)
p0, p1 = mix_res.sample_pairs(4000, seed=SEED)
print(mix_grid, f"; Sinkhorn: {mix_res.n_iter} iterations")

# %%
fig, axes = new_axes(4, size=3.0)
scale = float(torch.sqrt(torch.diagonal(mix.cov)).max())
for ax, t in zip(axes, (0.0, 0.4, 0.7, 1.0)):
    density_image(box.axes, mix_grid.density(t), ax, title=f"t = {t}")
    xt = lsb.brownian_bridge_sample(p0, p1, t, sigma=sigma2, seed=SEED)
    ax.scatter(xt[:300, 0], xt[:300, 1], s=2, color="w", alpha=0.6)
    m_grid, c_grid = mix_grid.moments(t)
    # tolerance: 5 standard errors of a mean over the 4000 resampled pairs + the N-sample plan error
    tol = 5 * scale * (1 / math.sqrt(4000) + 1 / math.sqrt(N_SAMPLES))
    assert float((xt.mean(0) - m_grid).abs().max()) < tol
    assert float((torch.cov(xt.T) - c_grid).abs().max()) < 5 * scale**2 * (math.sqrt(2 / 4000) + 2 / math.sqrt(N_SAMPLES))
fig.suptitle("ρ_t on the grid (image) and Sinkhorn bridge samples (dots)")
plt.show()

# %% [markdown]
# Explore: the t slider shows ρ_t of the grid bridge and its forward drift σ²∇log φ_t (arrows): early
# on the drift only separates the mass into three parts, late it pulls each part onto its bump.

# %%
display(W.grid_bridge_explorer(mix_grid, t=0.5))

# %% [markdown]
# ## 3 · Discussion
# * **Three solvers, one problem.** The closed form is exact but only for Gaussians. The grid is exact
#   up to quadrature (spectrally accurate for smooth densities) but costs Nᵈ nodes: 1-D and 2-D
#   pictures only. Sinkhorn on samples works in any dimension, but its answer carries a statistical
#   error ~ 1/√N — the situation of every learned bridge in the following notebooks.
# * **The knob.** ε = 2σ² interpolates between the Monge map (σ → 0) and the independent coupling
#   (σ → ∞). Small σ also makes IPF slow (the contraction rate approaches 1) and the grid must resolve
#   the kernel width σ√(min(t, 1−t)) for the marginals and drifts near the ends.
# * **From static to dynamic.** The potentials give everything: ρ_t = φ_t φ̂_t and the drifts
#   σ²∇log φ_t, σ²∇log φ̂_t. Notebook 02 learns these drifts from pairs (X0, X1) instead.
# * **Other references.** `lsb.GaussianBridge(..., c=c)` uses the Ornstein–Uhlenbeck reference
#   dY = cY dt + σ dW (Bunne et al. 2023): its static problem is the Brownian one between N(e^c m0, e^{2c} S0)
#   and ρ1 with variance ξ = σ²(e^{2c} − 1)/(2c). Notebook 06 (VSDM) uses this linear reference family.

# %% [markdown]
# ## 4 · Exercises
# Each exercise has a cell for your answer (a placeholder: `...` or `None`) and, after it, a check:
# `lsb.exercises.check("01.1", answer)` says "correct", "not attempted yet" while the placeholder is
# there, or what is off, with a hint. The checks compare with what `lsbcore` computes.

# %%
import lsbcore.exercises  # noqa: F401  (the checks: lsb.exercises.check)

# %% [markdown]
# **Exercise 01.1 — one Sinkhorn half-step in the log domain.** Given the potential $f_1$ on the target
# points, the cost C and the log-weights log b, return
# $f_{0,i} = -\varepsilon \log \sum_j \exp\big(\log b_j + (f_{1,j} - C_{ij})/\varepsilon\big)$ without ever
# forming $e^{-C/\varepsilon}$ (use `torch.logsumexp`). The check compares it with
# `lsbcore.schrodinger.log_sinkhorn_step` down to ε = 0.01 and alternates it to solve a problem.

# %% tags=["stub"]
def my_log_half_step(f1, C, eps, log_b):
    ...  # your code: return f0, shape (n,)


# %% tags=["solution"]
def my_log_half_step(f1, C, eps, log_b):
    """f0_i = −ε log Σ_j exp(log b_j + (f1_j − C_ij)/ε), by log-sum-exp (nothing underflows)."""
    return -eps * torch.logsumexp(log_b[None, :] + (f1[None, :] - C) / eps, dim=1)


# %%
lsb.exercises.check("01.1", my_log_half_step)

# %% [markdown]
# **Exercise 01.2 — the cross-covariance in closed form.** In 1-D (ρ0 = N(m0, v0), ρ1 = N(m1, v1)) write
# $C = \mathrm{Cov}(X_0, X_1)$ of the Schrödinger bridge as a function of v0, v1, σ (Theory:
# $D = (4 S_0^{1/2} S_1 S_0^{1/2} + \sigma^4 I)^{1/2}$, $C = \tfrac12(S_0^{1/2} D S_0^{-1/2} - \sigma^2 I)$). Then read off
# its two limits: σ → 0 (the Monge map) and σ → ∞ (independence).

# %% tags=["stub"]
def my_cross_cov(v0, v1, sigma):
    ...  # your code: return C (a float)


# %% tags=["solution"]
def my_cross_cov(v0, v1, sigma):
    """In 1-D everything commutes: D = √(4 v0 v1 + σ⁴), C = (D − σ²)/2."""
    return (math.sqrt(4 * v0 * v1 + sigma**4) - sigma**2) / 2


# σ → 0: C → √(v0 v1) (perfect correlation, the Monge map); σ → ∞: C ≈ v0 v1 / σ² → 0 (independence)
print(my_cross_cov(0.5, 1.2, 1e-3), math.sqrt(0.5 * 1.2), "|", 100.0**2 * my_cross_cov(0.5, 1.2, 100.0), 0.5 * 1.2)

# %%
lsb.exercises.check("01.2", my_cross_cov)

# %% [markdown]
# **Exercise 01.3 — the bridge marginal's variance.** Still in 1-D, write $\Sigma_t$, the variance of ρ_t,
# as a function of t, v0, v1, σ (X_t = (1−t)X0 + tX1 + σ√(t(1−t))Z with (X0, X1) ~ π*).

# %% tags=["stub"]
def my_bridge_var(t, v0, v1, sigma):
    ...  # your code: return Σ_t (a float)


# %% tags=["solution"]
def my_bridge_var(t, v0, v1, sigma):
    """Σ_t = (1−t)² v0 + t² v1 + t(1−t)(2C + σ²): the two ends, their covariance, and the bridge's own noise."""
    C = (math.sqrt(4 * v0 * v1 + sigma**4) - sigma**2) / 2
    return (1 - t) ** 2 * v0 + t**2 * v1 + t * (1 - t) * (2 * C + sigma**2)


# %%
lsb.exercises.check("01.3", my_bridge_var)

# %% [markdown]
# **Exercise 01.4 — the drift.** Derive the drift $b(x, t) = M_t\Sigma_t^{-1}(x-\mu_t) + m_1 - m_0$ from
# $b(x, t) = \mathbb E[(X_1 - X_t)/(1-t)\mid X_t = x]$ and the Gaussian conditioning formula, write it in 1-D
# (x a tensor of shape (n, 1)), and check numerically that $\frac{d}{dt}\Sigma_t = M_t + M_t^\top + \sigma^2 I$.

# %% tags=["stub"]
def my_drift(x, t, m0, v0, m1, v1, sigma):
    ...  # your code: return b(x, t), the shape of x


# %% tags=["solution"]
def my_drift(x, t, m0, v0, m1, v1, sigma):
    """Cov(X1 − X_t, X_t)/(1 − t) = M_t = t v1 − (1−t) v0 + (1−2t) C − σ² t in 1-D; b = M_t/Σ_t (x − μ_t) + m1 − m0."""
    C = (math.sqrt(4 * v0 * v1 + sigma**4) - sigma**2) / 2
    var_t = (1 - t) ** 2 * v0 + t**2 * v1 + t * (1 - t) * (2 * C + sigma**2)
    M_t = t * v1 - (1 - t) * v0 + (1 - 2 * t) * C - sigma**2 * t
    return M_t / var_t * (x - ((1 - t) * m0 + t * m1)) + m1 - m0


# dΣ_t/dt = 2 M_t + σ² in 1-D, by a central difference at t = 0.3
_v0, _v1, _s, _t, _h = 0.5, 1.2, 0.8, 0.3, 1e-5
_C = (math.sqrt(4 * _v0 * _v1 + _s**4) - _s**2) / 2
_var = lambda t: (1 - t) ** 2 * _v0 + t**2 * _v1 + t * (1 - t) * (2 * _C + _s**2)  # noqa: E731
_M = _t * _v1 - (1 - _t) * _v0 + (1 - 2 * _t) * _C - _s**2 * _t
assert abs((_var(_t + _h) - _var(_t - _h)) / (2 * _h) - (2 * _M + _s**2)) < 1e-8

# %%
lsb.exercises.check("01.4", my_drift)
