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
# # 02 · Dynamic bridges
#
# [![Open in Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/lsbcore/lsbcore/blob/main/notebooks/02_dynamic_bridges.ipynb) [![Binder](https://mybinder.org/badge_logo.svg)](https://mybinder.org/v2/gh/lsbcore/lsbcore/main?labpath=notebooks%2F02_dynamic_bridges.ipynb)

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
# Turn couplings into *processes*. A Schrödinger bridge is a mixture of Brownian bridges; its drift
# can be written in closed form (Gaussians), estimated by Monte Carlo (Schrödinger–Föllmer), or
# **learned by regression** (bridge matching). One sampler integrates all of them, as an SDE
# (Euler–Maruyama) or as the probability-flow ODE (Heun), and one set of metrics compares them.
#
# ## Contents
# 1. Theory: reference processes and Brownian bridges, mixtures of bridges, the Markovian
#    projection, Schrödinger–Föllmer, bridge matching, SDE vs ODE sampling
# 2. Practice
#    1. Brownian bridges, simulated and in closed form
#    2. The mixture-of-bridges picture (explore σ, the coupling and t)
#    3. Schrödinger–Föllmer from a point mass: exact vs Monte-Carlo vs learned drift
#    4. Bridge matching: independent vs Sinkhorn couplings (straightness, W2)
#    5. SDE vs ODE sampling: W2 against the number of function evaluations (explore the sampler)
#    6. IPF (DSB) beside IMF on the Gaussian case: the coupling and the end marginal per iteration
#    7. IPF beside IMF on 8 gaussians → moons: W2 of both ends and training time per iteration
#    8. A learned sampler for an unnormalised density: log Z, ESS and samples (explore the target)
# 3. Discussion
# 4. Exercises (each with a worked solution and a check: `lsb.exercises.check`)

# %% tags=["parameters"]
import lsbcore as lsb

FAST = lsb.is_fast()                  # LSB_FAST=1: the same computations, smaller
N = 500 if FAST else 1500             # points per sample set
TRAIN_STEPS = 400 if FAST else 1500   # Adam steps per learned drift (bridge matching)
FOLLMER_STEPS = 400 if FAST else 2000  # Adam steps for the learned Föllmer drift
N_MC = 500 if FAST else 2000          # Monte-Carlo draws per Föllmer drift evaluation
SAMPLER_STEPS = 200 if FAST else 400   # Adam steps (batch 128) of the learned Föllmer samplers (§2.8)
N_SF = 300 if FAST else 800            # paths per sampler in §2.8
K_SF = 20                              # Euler steps of every sampler in §2.8 (training and sampling)
FIT_STEPS_1D = 200   # Adam steps per fit in the 1-D IPF vs IMF comparison (§2.6; enough for 1-D, same in FAST)
SEED = 0
DEVICE = "cpu"   # "cpu" (CI); "auto": CUDA, then MPS, then CPU; "cuda"/"cuda:K"/"mps": that one. Training runs there; float64 work and plots stay on the CPU

# %%
import math

import matplotlib.pyplot as plt
import torch

from lsbcore import widgets as W
from lsbcore.bridges.follmer import gaussian_follmer_drift
from lsbcore.metrics import bures_w2_to_gaussian
from lsbcore.plotting import new_axes, paths2d, scatter2d

DEV = lsb.resolve_device(DEVICE)   # checked once: trainers and learned samplers below run on DEV

# %% [markdown]
# ## 1 · Theory
#
# **Reference processes.** The Schrödinger problem measures paths against a *reference* process.
# Here it is Brownian motion $dX = \sigma\, dW$, whose transition kernel is
# $X_t \mid X_s = x \sim \mathcal N(x, \sigma^2 (t-s) I)$. Later notebooks use linear references
# $dX = a(t) X\,dt + g(t)\,dW$ (Ornstein–Uhlenbeck, the variance-preserving SDE with
# $\beta_t = \beta_{\min} + t^{\beta_r}(\beta_{\max} - \beta_{\min})$); their kernels are Gaussian too
# (`lsb.Brownian`, `lsb.OU`, `lsb.VP`).
#
# **Brownian bridge.** Pin Brownian motion at $X_0 = x_0$ and $X_1 = x_1$. Conditioning the Gaussian
# vector $(X_t, X_1)$ gives
#
# $$X_t = (1-t)\,x_0 + t\,x_1 + \sigma\sqrt{t(1-t)}\; Z, \qquad Z \sim \mathcal N(0, I),$$
#
# and, as a process, $dX_t = \frac{x_1 - X_t}{1-t}\,dt + \sigma\,dW_t$: the drift
# $\sigma^2\nabla_x \log p_{1-t}(x_1 \mid x)$ of Doob's h-transform steers every path to $x_1$.
#
# **Mixture of bridges.** Draw the end points from a coupling $\pi$ of $\rho_0$ and $\rho_1$ and join
# them by Brownian bridges. The marginal at time t has mean $(1-t)m_0 + t m_1$ and covariance
#
# $$\Sigma_t = (1-t)^2\Sigma_0 + t^2\Sigma_1 + t(1-t)\,(C + C^\top + \sigma^2 I),\qquad C = \mathrm{Cov}(X_0, X_1).$$
#
# With $\pi$ the entropic-OT plan at $\varepsilon = 2\sigma^2$ (notebook 01) this mixture *is* the
# Schrödinger bridge.
#
# **Markovian projection.** A mixture of bridges is not a diffusion (each path "knows" its end).
# Its Markovian projection is the SDE $dX = b(X, t)\,dt + \sigma\,dW$ with
#
# $$b(x, t) = \mathbb E\Big[\tfrac{X_1 - X_t}{1 - t}\ \Big|\ X_t = x\Big],$$
#
# which has the same marginals. A conditional expectation is the minimiser of a least-squares
# loss, so $b$ can be **learned by regression** on samples $(X_t, t) \mapsto (X_1 - X_t)/(1-t)$:
# *bridge matching*. The backward drift is $\hat b(x,t) = \mathbb E[(X_0 - X_t)/t \mid X_t = x]$ and
# the probability-flow ODE $\dot x = \tfrac12(b - \hat b)$ has the same marginals again.
#
# **Schrödinger–Föllmer.** From a point mass, $\rho_0 = \delta_0$, every coupling is the same, and the
# bridge to a target μ has drift $b(x, t) = \sigma^2 \nabla \log \mathbb E_Z\, f(x + \sigma\sqrt{1-t}\,Z)$
# with $f = d\mu / d\mathcal N(0, \sigma^2 I)$: Monte Carlo over Z (given a density), exact for an
# empirical μ (a softmax over the points), or learned from samples by the regression above.
#
# **Sampling.** On the grid $t_k = k h$, Euler–Maruyama takes
# $x_{k+1} = x_k + h\,b(x_k, t_k) + \sigma\sqrt h\,\xi_k$ (weak error $O(h)$); Heun's method integrates
# the ODE with two evaluations per step (error $O(h^2)$). The cost of a sampler is its number of
# function evaluations (NFE). `lsb.sample` does both, for any object with the bridge face.

# %% [markdown]
# ## 2 · Practice
# ### 2.1 Brownian bridges, simulated and in closed form
# We simulate $dX = \frac{x_1 - X}{1-t}dt + \sigma dW$ from $x_0 = -1$ to $x_1 = 2$ with Euler–Maruyama
# and compare the spread of the paths with $\sigma^2 t(1-t)$. (The drift is singular at t = 1; the
# sampler never evaluates it there.)

# %%
sigma = 0.8
pinned = lsb.BrownianBridge(x1=[2.0], sigma=sigma, x0=[-1.0])
run = lsb.sample(pinned, torch.full((4000, 1), -1.0), steps=100, keep_traj=True, seed=SEED)
t_grid = run.times
emp_var = run.traj[..., 0].var(dim=1)
exact_var = sigma**2 * t_grid * (1 - t_grid)
# Monte-Carlo sd of a variance ~ var·√(2/n), plus Euler–Maruyama's O(h) bias
assert torch.all((emp_var - exact_var).abs() <= 4 * exact_var * math.sqrt(2 / 4000) + 2 * sigma**2 / 100)
assert torch.allclose(run.traj[50, :, 0].mean(), pinned.mean(0.5)[0, 0], atol=0.03)

# %%
fig, ax = new_axes(size=4.2)
ax.plot(t_grid, run.traj[:, :30, 0], color="0.5", lw=0.6)
mean = -1 + 3 * t_grid
ax.fill_between(t_grid, mean - 2 * exact_var.sqrt(), mean + 2 * exact_var.sqrt(), alpha=0.25,
                label="mean ± 2 sd, closed form")
ax.set_xlabel("t")
ax.set_ylabel("$X_t$")
ax.set_title("Brownian bridge from −1 to 2 (σ = 0.8): 30 simulated paths")
ax.legend(loc="upper left")
plt.show()

# %% [markdown]
# The same marginal directly, without simulating a path: `brownian_bridge_sample` draws
# $(1-t)x_0 + t x_1 + \sigma\sqrt{t(1-t)}Z$, which is what bridge matching uses to make training data.

# %%
direct = lsb.brownian_bridge_sample(torch.full((4000, 1), -1.0), torch.full((4000, 1), 2.0), 0.5, sigma=sigma, seed=1)
print(f"Var X_0.5: simulated {float(emp_var[50]):.4f}, direct {float(direct.var()):.4f}, "
      f"closed form {sigma**2 / 4:.4f}")
assert abs(float(direct.var()) - sigma**2 / 4) < 4 * sigma**2 / 4 * math.sqrt(2 / 4000)

# %% [markdown]
# ### 2.2 The mixture-of-bridges picture
# Source: eight Gaussian blobs; target: two moons. Pair them by a coupling, then join each pair by a
# Brownian bridge. We check the covariance formula $\Sigma_t$ of the Theory with the pairs' own
# cross-covariance C, for the independent coupling and for Sinkhorn at ε = 2σ².

# %%
source, target = lsb.Toy2D("8gaussians"), lsb.Toy2D("moons")
x0 = source.sample(N, seed=SEED)
x1 = target.sample(N, seed=SEED + 1)
sigma_mix, t_check = 0.5, 0.4
for c in ("independent", "sinkhorn"):
    a, b = lsb.couple(x0, x1, c, sigma=sigma_mix, seed=SEED)
    xt = lsb.brownian_bridge_sample(a, b, t_check, sigma=sigma_mix, seed=SEED + 2)
    S0, S1 = torch.cov(a.T), torch.cov(b.T)
    C = torch.cov(torch.cat([a, b], 1).T)[:2, 2:]
    t = t_check
    Sigma_t = (1 - t) ** 2 * S0 + t**2 * S1 + t * (1 - t) * (C + C.T + sigma_mix**2 * torch.eye(2))
    # given the pairs only Z is random: Cov(X_t) − Σ_t has sd ≈ σ√(t(1−t)) × (spread of the pairs) / √N
    err = (torch.cov(xt.T) - Sigma_t).abs().max()
    tol = 4 * sigma_mix * math.sqrt(t * (1 - t)) * 2 * float(torch.diagonal(Sigma_t).max().sqrt()) / math.sqrt(N) + 0.01
    print(f"{c:12s} C = {C.numpy().round(2).tolist()}   max |Cov(X_t) − Σ_t| = {float(err):.3f} (tol {tol:.3f})")
    assert err < tol

# %%
fig, axes = new_axes(4, nrows=2, size=2.6)
for row, c in enumerate(("independent", "sinkhorn")):
    a, b = lsb.couple(x0, x1, c, sigma=sigma_mix, seed=SEED)
    for col, t in enumerate((0.0, 0.33, 0.67, 1.0)):
        ax = axes[4 * row + col]
        scatter2d(lsb.brownian_bridge_sample(a, b, t, sigma=sigma_mix, seed=SEED), ax, s=1,
                  title=f"{c}, t = {t:.2f}")
        ax.set(xlim=(-7, 7), ylim=(-7, 7))
fig.suptitle("Mixtures of Brownian bridges (σ = 0.5): independent pairs vs the Sinkhorn plan")
plt.show()

# %% [markdown]
# **Explore.** σ, the coupling and t. Thin grey lines are whole bridges simulated by the sampler.
# With exact OT or Sinkhorn the paths stop crossing; with large σ Sinkhorn approaches independence.

# %%
W.bridge_mixture_explorer(x0[:300], x1[:300], sigma=sigma_mix)

# %% [markdown]
# ### 2.3 Schrödinger–Föllmer from a point mass
# Target $\mu = \mathcal N(m, s^2 I)$ so that the drift is known exactly:
# $b(x, t) = \frac{\sigma^2 m + (s^2 - \sigma^2)x}{\sigma^2(1-t) + s^2 t}$. We compare it with the
# Monte-Carlo drift (which only uses $\log\mu$) and a drift learned from samples of μ, first as
# functions, then by sampling. Any object with `drift(x, t)` and `sigma` is a bridge for the sampler:
# the exact one takes three lines.

# %%
class GaussianFollmer(lsb.Bridge):
    """The exact Schrödinger–Föllmer bridge δ0 → N(mean, std² I)."""

    def __init__(self, mean, std, sigma):
        self.mean, self.std, self.sigma = mean, std, sigma

    def drift(self, x, t):
        return gaussian_follmer_drift(x, t, self.mean, self.std, self.sigma)


m_f, s_f, sigma_f = torch.tensor([2.0, -1.0]), 0.6, 1.0
mu = lsb.Gaussian(m_f, s_f**2)
drifts = {
    "exact": GaussianFollmer(m_f, s_f, sigma_f),
    "Monte Carlo": lsb.FollmerMC(mu, sigma_f, n_mc=N_MC, seed=SEED),
    "learned": lsb.fit_follmer(mu, sigma_f, steps=FOLLMER_STEPS, progress=False, seed=SEED, device=DEV),
}
on = {"exact": DEV, "Monte Carlo": torch.device("cpu"), "learned": DEV}   # FollmerMC reads μ's density on the CPU

# %% [markdown]
# Compare the drifts where the process actually goes: $X_t = t X_1 + \sigma\sqrt{t(1-t)}Z$, t ∈ [0, 0.9].

# %%
gen = lsb.generator(SEED + 3)
t_eval = torch.rand(1000, 1, generator=gen) * 0.9
x_eval = t_eval * mu.sample(1000, seed=gen) + sigma_f * (t_eval * (1 - t_eval)).sqrt() * torch.randn(1000, 2, generator=gen)
b_exact = drifts["exact"].drift(x_eval, t_eval)
rel_err = {}
for name in ("Monte Carlo", "learned"):
    diff = drifts[name].drift(x_eval.to(on[name]), t_eval.to(on[name])).cpu() - b_exact
    rel_err[name] = float(diff.pow(2).sum(1).mean().sqrt() / b_exact.pow(2).sum(1).mean().sqrt())
    print(f"{name:12s} relative RMS drift error: {rel_err[name]:.3f}")
# Monte-Carlo error ≈ c/√N_MC, c ≈ 3–4 here (the spread of the importance weights f(y_j))
assert rel_err["Monte Carlo"] < 5 / math.sqrt(N_MC)
assert rel_err["learned"] < (0.2 if FAST else 0.1)     # a fit, not an identity: a few percent

# %%
start = torch.zeros(N, 2)
finals = {name: lsb.sample(br, start.to(on[name]), steps=50, seed=SEED).x.cpu() for name, br in drifts.items()}
floor = bures_w2_to_gaussian(mu.sample(N, seed=SEED + 4), m_f, s_f**2 * torch.eye(2))
for name, xf in finals.items():
    d = bures_w2_to_gaussian(xf, m_f, s_f**2 * torch.eye(2))
    print(f"{name:12s} Bures–W2 to μ: {d:.3f}   (a fresh sample of μ: {floor:.3f})")
    assert d < 3 * floor + 0.1  # sampling error + Euler–Maruyama's O(h) + drift error

# %%
fig, axes = new_axes(3, size=3.2)
for ax, (name, xf) in zip(axes, finals.items()):
    scatter2d(mu.sample(N, seed=SEED + 4), ax, s=2, alpha=0.3, color="C2", label="μ")
    scatter2d(xf, ax, s=2, color="C1", label="X_1", title=f"Föllmer, {name} drift")
axes[0].legend(loc="upper left", markerscale=4)
fig.suptitle("Schrödinger–Föllmer from δ0: three drifts, 50 Euler–Maruyama steps")
plt.show()

# %% [markdown]
# **The exact empirical drift memorises.** For an empirical target $\frac1n\sum_i \delta_{x_i}$ the
# drift is a softmax over the points, no network needed — and simulated to t = 1 it lands on the
# training points (up to the last step's noise σ√h). Fresh samples of the target sit much farther
# from the training set: this is why one *learns* a smooth drift.

# %%
train_pts = source.sample(200, seed=SEED + 5)
memo = lsb.sample(lsb.EmpiricalFollmer(train_pts, sigma=1.0), torch.zeros(N, 2), steps=400, seed=SEED).x


def nn_distance(x, pts):
    return float(torch.cdist(x, pts).min(dim=1).values.median())


d_memo, d_fresh = nn_distance(memo, train_pts), nn_distance(source.sample(N, seed=SEED + 6), train_pts)
print(f"median distance to the nearest training point: empirical Föllmer {d_memo:.3f}, fresh samples {d_fresh:.3f}")
assert d_memo < 0.5 * d_fresh

# %% [markdown]
# ### 2.4 Bridge matching: independent vs Sinkhorn couplings
# We learn the forward and backward drifts from eight Gaussians to two moons with σ = 0.5, once with
# independent pairs and once with minibatch-Sinkhorn pairs (ε = 2σ², the static SB of notebook 01).
# With both directions the probability-flow ODE is available, and we measure its **straightness**
# $\mathbb E\int_0^1 \|\dot x_t - (x_1 - x_0)\|^2 dt$ (0 for straight lines at constant speed) and
# the W2 of the samples to the target next to its noise floor.

# %%
sigma_bm = 0.5
matched = {}
for i, c in enumerate(("independent", "sinkhorn")):
    fwd = lsb.fit_bridge(source, target, sigma_bm, coupling=c, direction="forward", steps=TRAIN_STEPS,
                     progress=False, seed=SEED + 10 * i, device=DEV)
    bwd = lsb.fit_bridge(source, target, sigma_bm, coupling=c, direction="backward", steps=TRAIN_STEPS,
                     progress=False, seed=SEED + 10 * i + 1, device=DEV)
    matched[c] = lsb.MatchedBridge(fwd.forward_net, sigma_bm, bwd.backward_net)

# %%
x_start = source.sample(N, seed=SEED + 7)
stats = {}
for c, br in matched.items():
    ode = lsb.sample(br, x_start.to(DEV), method="ode", steps=10, keep_traj=True).cpu()
    sde = lsb.sample(br, x_start.to(DEV), method="sde", steps=100, seed=SEED).cpu()
    stats[c] = {"straightness": lsb.straightness(ode), "W2 ODE (NFE 20)": lsb.w2_report(ode.x, target, seed=SEED),
                "W2 SDE (NFE 100)": lsb.w2_report(sde.x, target, seed=SEED), "ode": ode}
    print(f"{c:12s} straightness {stats[c]['straightness']:.3f} | ODE: {stats[c]['W2 ODE (NFE 20)']} | "
          f"SDE: {stats[c]['W2 SDE (NFE 100)']}")
    y = target.sample(N, seed=SEED + 11)  # MMD and energy distance: cheaper than W2 for large sets
    print(f"{'':12s} SDE samples: MMD {lsb.mmd(sde.x, y):.3f}, energy distance {lsb.energy_distance(sde.x, y):.3f}")
assert stats["sinkhorn"]["straightness"] < 0.5 * stats["independent"]["straightness"]
assert stats["sinkhorn"]["W2 ODE (NFE 20)"].w2 < stats["independent"]["W2 ODE (NFE 20)"].w2

# %%
fig, axes = new_axes(2, size=4.0)
for ax, c in zip(axes, matched):
    scatter2d(target.sample(N, seed=SEED + 9), ax, s=2, alpha=0.2, color="C2", label="target")
    scatter2d(x_start, ax, s=2, alpha=0.3, color="C0", label="start")
    paths2d(stats[c]["ode"].traj, ax, n_paths=60, path_alpha=0.5,
            title=f"{c}: straightness {stats[c]['straightness']:.2f}")
axes[0].legend(loc="upper left", fontsize=8, markerscale=4)
fig.suptitle("Probability-flow ODE paths of the learned bridges (Heun, 10 steps; orange: X_1)")
plt.show()

# %% [markdown]
# ### 2.5 SDE vs ODE sampling: W2 against NFE
# First with the closed-form Gaussian Schrödinger bridge, whose drifts are exact, so that only the
# discretisation error remains. Its final samples are compared with $\mathcal N(m_1, \Sigma_1)$ by the
# Bures–W2 of their mean and covariance; a fresh sample of the target gives the noise floor.

# %%
m0, S0 = torch.tensor([-2.0, 0.0]), torch.tensor([[1.0, 0.5], [0.5, 1.0]])
m1, S1 = torch.tensor([2.0, 1.0]), torch.tensor([[0.5, 0.0], [0.0, 2.0]])
gauss = lsb.GaussianBridge(m0, S0, m1, S1, sigma=0.7)
n_g = 10_000 if FAST else 20_000  # closed-form drift: cheap, and the floor shrinks like 1/√n
xg = lsb.Gaussian(m0, S0).sample(n_g, seed=SEED)
nfes = [2, 4, 8, 16, 32, 64]
err = {"sde": [], "ode": []}
for nfe in nfes:
    # a seed of its own for the Brownian increments: reusing the one that drew xg would correlate them
    err["sde"].append(bures_w2_to_gaussian(lsb.sample(gauss, xg, method="sde", steps=nfe, seed=SEED + 1).x, m1, S1))
    err["ode"].append(bures_w2_to_gaussian(lsb.sample(gauss, xg, method="ode", steps=nfe // 2).x, m1, S1))
floor_g = bures_w2_to_gaussian(lsb.Gaussian(m1, S1).sample(n_g, seed=SEED + 2), m1, S1)
print("NFE      ", nfes)
print("SDE (EM) ", [round(e, 3) for e in err["sde"]])
print("ODE (Heun)", [round(e, 3) for e in err["ode"]], f"  floor ≈ {floor_g:.3f}")
assert err["ode"][0] < err["sde"][0]              # at NFE 2 Heun (error O(h²)) beats Euler–Maruyama (O(h))
assert err["sde"][0] > 2 * err["sde"][3]           # EM's bias falls with the number of steps …
assert max(err["sde"][-1], err["ode"][-1]) < 3 * floor_g + 0.02  # … until both sit at the sampling floor

# %% [markdown]
# Then the learned Sinkhorn bridge on the moons, with the exact W2 to a target sample and its floor.
# Now the drift is only approximately right, and the two samplers fail differently: the ODE uses
# *both* learned drifts through ½(b − b̂) and inherits both errors, while the SDE's noise keeps
# pulling its particles back towards the marginals.

# %%
nfes_l = [2, 4, 10, 20, 50, 100]
w2_l = {"sde": [], "ode": []}
for nfe in nfes_l:
    w2_l["sde"].append(lsb.w2_report(lsb.sample(matched["sinkhorn"], x_start.to(DEV), steps=nfe, seed=SEED).x.cpu(),
                                     target, seed=SEED).w2)
    w2_l["ode"].append(lsb.w2_report(lsb.sample(matched["sinkhorn"], x_start.to(DEV), method="ode", steps=nfe // 2).x.cpu(),
                                 target, seed=SEED).w2)
floor_l = lsb.w2_report(target.sample(N, seed=SEED + 8), target, seed=SEED).floor
print("NFE      ", nfes_l)
print("SDE (EM) ", [round(e, 3) for e in w2_l["sde"]])
print("ODE (Heun)", [round(e, 3) for e in w2_l["ode"]], f"  floor ≈ {floor_l:.3f}")
# nearly straight paths: 4 evaluations of the ODE already give (almost) its best W2
assert w2_l["ode"][1] < 1.1 * min(w2_l["ode"])

# %%
fig, axes = new_axes(2, size=3.8)
axes[0].plot(nfes, err["sde"], "o-", label="SDE (Euler–Maruyama)")
axes[0].plot(nfes, err["ode"], "s-", label="ODE (Heun)")
axes[0].axhline(floor_g, color="0.5", ls="--", label="noise floor")
axes[0].set_title("Gaussian SB (exact drift)")
axes[0].set_ylabel("Bures–W2 to the target")
axes[1].plot(nfes_l, w2_l["sde"], "o-", label="SDE (Euler–Maruyama)")
axes[1].plot(nfes_l, w2_l["ode"], "s-", label="ODE (Heun)")
axes[1].axhline(floor_l, color="0.5", ls="--", label="noise floor")
axes[1].set_title("Learned bridge, Sinkhorn coupling")
axes[1].set_ylabel("W2 to a target sample")
for ax, ticks in zip(axes, (nfes, nfes_l)):
    ax.set_xscale("log")
    ax.set_xticks(ticks, [str(n) for n in ticks])
    ax.minorticks_off()
    ax.set_xlabel("NFE (network / drift evaluations)")
    ax.legend(fontsize=8)
fig.suptitle("Sample quality against the number of function evaluations")
plt.show()

# %% [markdown]
# **Explore.** Every bridge of this notebook shares one face, so one dropdown holds them all: the two
# learned ones (bridge matching), the closed-form Gaussian SB of §2.5, a Brownian bridge pinned at
# moon points, and the Monte-Carlo and empirical Schrödinger–Föllmer bridges, which start from their
# own law at t = 0 (δ0). Pick SDE or ODE and the number of steps, and move t along the trajectories.
# The info line reports NFE and the W2 of the final samples with its noise floor. A bridge without a
# backward drift (both Föllmer bridges, the one-sided pinned bridge) has no probability-flow ODE: the
# explorer says why instead of drawing.

# %%
n_show = 400
explorer = {f"bridge matching, {c}": (br, x_start[:n_show].to(DEV), target) for c, br in matched.items()}
explorer["Gaussian SB (closed form)"] = (gauss, xg[:n_show], lsb.Gaussian(m1, S1))
explorer["Brownian bridge pinned at moon points"] = (
    lsb.BrownianBridge(target.sample(n_show, seed=SEED + 12), sigma=sigma_bm), x_start[:n_show], target)
explorer["Föllmer δ0 → μ, Monte-Carlo drift"] = (drifts["Monte Carlo"], None, mu)
explorer["Föllmer δ0 → 200 points, empirical drift"] = (lsb.EmpiricalFollmer(train_pts, sigma=1.0), None, source)
W.sampler_explorer({name: br for name, (br, _, _) in explorer.items()},
                   {name: x for name, (_, x, _) in explorer.items()},
                   target={name: y for name, (_, _, y) in explorer.items()}, steps=20, n=n_show)

# %% [markdown]
# ### 2.6 IPF (DSB) beside IMF on the Gaussian case
# Two iterative routes lead to the Schrödinger bridge from $p_0 = \mathcal N(-1, 1)$ to
# $p_1 = \mathcal N(1, 1)$ with σ = 1, whose coupling has
# $\mathrm{Cov}(X_0, X_1) = c = \tfrac12\big(\sqrt{4 + \sigma^4} - \sigma^2\big) \approx 0.618$ (`lsb.GaussianBridge`).
# **IPF** (`lsb.dsb`, De Bortoli et al. 2021) alternates half-bridges: each half-step time-reverses the
# current process and restarts it from one marginal, so that end is matched exactly while the other
# drifts. It is Sinkhorn in path space; on Gaussians its iterates are known exactly
# (`gaussian_ipf_iterates`), and the error of $\mathbb E X_1$ starts at 2/3 and shrinks by about
# $c^2 \approx 0.38$ a round. **IMF** (`lsb.imf`, Shi et al. 2023) instead fits the Markovian
# projection of a bridge mixture whose coupling already has both marginals: both ends are right at
# every iteration (up to the fit error), and what converges is the coupling.
#
# Both use the same network (width 32, depth 2), `FIT_STEPS_1D` Adam steps per fit and 20 Euler steps.
# IPF round n costs 2 fits; IMF iteration n is the forward drift after 2n − 1 fits (the first on
# independent pairs). Each is measured by running its forward SDE from the same 4000 fresh draws of $p_0$.

# %%
from lsbcore.bridges.dsb import gaussian_ipf_iterates
from lsbcore.nets import TimeMLP

p0_1d, p1_1d, sigma_1d = lsb.Gaussian(torch.tensor([-1.0])), lsb.Gaussian(torch.tensor([1.0])), 1.0
ROUNDS, K_1D = 4, 20                           # IPF rounds = IMF iterations; Euler steps on [0, 1]
x0_eval = p0_1d.sample(4000, seed=SEED + 20)   # fresh p0 draws, the same for every measurement


def coupling_stats(bridge):
    """Cov(X0, X1) and E X1 of the bridge's forward SDE run from x0_eval."""
    x1 = lsb.sample(bridge, x0_eval.to(DEV), steps=K_1D, seed=SEED + 21).x.cpu()
    return {"cov": float(((x0_eval - x0_eval.mean()) * (x1 - x1.mean())).mean()), "m1": float(x1.mean())}


ipf = lsb.dsb(p0_1d, p1_1d, sigma_1d, iterations=ROUNDS, steps=FIT_STEPS_1D, sim_steps=K_1D, width=32, depth=2,
              batch_size=512, lr=3e-3, ema=0.99, schedule="cosine", seed=SEED, progress=False, device=DEV,
              callback=lambda n, bridge: coupling_stats(bridge))
# lsb.imf has no per-iteration callback; it is deterministic for a seed, so iteration n is simply a run
# with 2n − 2 refits after the first fit (its first fits repeat those of the shorter runs)
imf_hist = []
for n in range(1, ROUNDS + 1):
    br = lsb.imf(p0_1d, p1_1d, sigma_1d, iterations=2 * n - 2, steps=FIT_STEPS_1D, batch_size=512,
                 sample_steps=K_1D, net=TimeMLP(1, 32, 2, seed=SEED).to(DEV), lr=3e-3, ema=0.99, seed=SEED,
                 progress=False, device=DEV)
    imf_hist.append(coupling_stats(br))
ipf_exact = gaussian_ipf_iterates(-1.0, 1.0, 1.0, 1.0, sigma_1d, ROUNDS)   # (Cov, E X1, Var X1) per round
c_sb = float(lsb.GaussianBridge(-1.0, 1.0, 1.0, 1.0, sigma_1d).cross_cov)
curves = {"IPF (DSB), learned": ([h["cov"] for h in ipf.history], [abs(h["m1"] - 1) for h in ipf.history]),
          "IPF, exact": ([e[0] for e in ipf_exact], [abs(e[1] - 1) for e in ipf_exact]),
          "IMF, learned": ([g["cov"] for g in imf_hist], [abs(g["m1"] - 1) for g in imf_hist])}
print(f"{'':20s}" + "".join(f"   it {n}" for n in range(1, ROUNDS + 1)))
for name, (cov, err1) in curves.items():
    print(f"{name:20s}" + "".join(f"{v:8.3f}" for v in cov) + "   Cov(X0, X1)")
    print(f"{'':20s}" + "".join(f"{v:8.3f}" for v in err1) + "   |E X1 − 1|")
print(f"SB: Cov(X0, X1) = {c_sb:.3f}, E X1 = 1")
# Tolerances. Monte Carlo (4000 paths): s.e. ≈ 0.016 for E X1, ≈ 0.02 for the covariance. The learned IPF
# covariance ends within 0.04 of c on seeds 0 and 1 at 200 and at 400 steps (tests/test_dsb.py: 0.02-0.03 on 3 seeds).
# Round 1 of IPF misses E X1 by 2/3 exactly (learned: 0.64-0.74); IMF's first fit misses it by < 0.04.
assert abs(curves["IPF (DSB), learned"][0][-1] - c_sb) < 0.07 < 1 - c_sb   # the reference's Cov is 1
assert abs(curves["IMF, learned"][0][-1] - c_sb) < 0.07
assert curves["IMF, learned"][1][0] < 0.15 < 0.45 < curves["IPF (DSB), learned"][1][0]
assert max(curves["IMF, learned"][1]) < 0.15                               # IMF keeps the end at every step

# %%
fig, axes = new_axes(2, size=(4.6, 3.6))
for (name, (cov, err1)), style in zip(curves.items(), ("o-", "k--", "s-")):
    axes[0].plot(range(1, ROUNDS + 1), cov, style, label=name)
    axes[1].plot(range(1, ROUNDS + 1), err1, style, label=name)
axes[0].axhline(c_sb, color="C2", ls=":", label=f"SB: {c_sb:.3f}")
axes[1].axhline(0.0, color="C2", ls=":", label="SB: 0")
axes[0].set_title("Coupling")
axes[0].set_ylabel("Cov(X0, X1)")
axes[1].set_title("End marginal")
axes[1].set_ylabel("|E X1 − 1|")
for ax in axes:
    ax.set_xlabel("iteration (IPF round, IMF forward fit)")
    ax.set_xticks(range(1, ROUNDS + 1))
    ax.legend(fontsize=8)
fig.suptitle("IPF vs IMF on N(−1, 1) → N(1, 1), σ = 1")
plt.show()

# %% [markdown]
# IPF's covariance comes down to c from above (the learned values track the exact recursion within
# about 0.06), and its end marginal approaches $p_1$ only round by round. It also levels off: on a
# grid of K = 20 steps DSB's mean-matching target leaves $\mathbb E X_1$ short by about 0.09 (an O(h)
# bias, `mean_matching_pairs`), plus the fit error. IMF's end marginal is right from the first fit,
# while its covariance climbs from below towards c.
# Both fixed points are the Schrödinger bridge.

# %% [markdown]
# ### 2.7 IPF beside IMF on 8 gaussians → moons (three seeds, from the benchmark)
# Without a closed form, the two routes are compared by the W2 distance of each end of the learned
# process to its target, with the same network (width 64, depth 3, one per direction), 1000 Adam steps
# per fit, 2 fits per iteration for both, and σ = 1. The runs take about 2 minutes, so this section
# reads the table that `python bench/ipf_imf.py --ship data` recorded (`lsbcore.bridges.dsb.shipped_comparison`);
# each W2 is read beside its noise floor (W2 between two samples of the target, n = 1000).
# **fwd**: the forward SDE from fresh 8-gaussian points against moons (the end IPF gets only as the
# rounds go on); **bwd**: the backward SDE from fresh moons against 8 gaussians.

# %%
from lsbcore.bridges.dsb import shipped_comparison

cmp = shipped_comparison()
print(f"{cmp['steps']} Adam steps per fit, seeds {cmp['IPF']['seeds']} (mean ± sd); recorded by: {cmp['command']}")
print(f"{'':6s}{'iter':>5s}{'fwd W2':>14s}{'× floor':>9s}{'bwd W2':>14s}{'× floor':>9s}{'train s':>9s}")
for m in ("IPF", "IMF"):
    e = cmp[m]
    for k, it in enumerate(e["iteration"]):
        print(f"{m:6s}{it:>5d}{e['fwd'][0][k]:>8.3f} ± {e['fwd'][1][k]:.3f}{e['fwd'][0][k] / e['fwd_floor'][0][k]:>9.2f}"
              f"{e['bwd'][0][k]:>8.3f} ± {e['bwd'][1][k]:.3f}{e['bwd'][0][k] / e['bwd_floor'][0][k]:>9.2f}"
              f"{e['train_s'][0][k]:>9.1f}")
ipf_e, imf_e = cmp["IPF"], cmp["IMF"]
# What the table shows on the mean over seeds (the bench prints the same verdicts, and per seed):
assert all(imf_e[k][0][i] <= ipf_e[k][0][i] for k in ("fwd", "bwd") for i in range(len(ipf_e["iteration"])))
assert ipf_e["fwd"][0][-1] < ipf_e["fwd"][0][0]             # IPF's free end closes round by round

# %%
fig, axes = new_axes(3, size=(4.2, 3.4))
for m, style in (("IPF", "o-"), ("IMF", "s-")):
    e = cmp[m]
    for ax, key in zip(axes[:2], ("fwd", "bwd")):
        ax.errorbar(e["iteration"], e[key][0], yerr=e[key][1], fmt=style, capsize=3, label=m)
    axes[2].plot(e["iteration"], e["train_s"][0], style, label=m)
for ax, key, title in zip(axes[:2], ("fwd", "bwd"), ("forward end vs moons", "backward end vs 8 gaussians")):
    ax.axhline(cmp["IMF"][f"{key}_floor"][0][0], color="gray", ls=":", label="noise floor")
    ax.set_title(title)
    ax.set_ylabel("W2 (mean ± sd over seeds)")
axes[2].set_title("training time")
axes[2].set_ylabel("cumulative seconds (one core)")
for ax in axes:
    ax.set_xlabel("iteration (2 fits)")
    ax.set_xticks(ipf_e["iteration"])
    ax.legend(fontsize=8)
fig.suptitle("IPF (DSB) vs IMF on 8 gaussians → moons, σ = 1")
plt.show()

# %% [markdown]
# At equal cost (both spend two fits per iteration, and their wall times per iteration are the same
# within a few percent) IMF's two ends are closer to their targets than IPF's at every iteration and
# on every seed. IPF's forward end starts far off (round 1 is a half-bridge that ignores the moons)
# and closes round by round, as on the Gaussian case. Its backward end is also further off than
# IMF's: it is matched only up to the error of a fit on simulated paths that, in early rounds, are
# far from the bridge. IPF's forward end stays above twice its noise floor after four rounds.
# IMF's backward end scores *below* its floor: the 8-gaussian floor (≈ 1.18) is dominated by the random
# blob counts of two i.i.d. samples, and a backward end with more even counts (it starts from the
# moons' even grid) beats it; read it as "at the floor".

# %% [markdown]
# ### 2.8 A learned sampler for an unnormalised density
# So far the target came with samples, or with a formula for its drift. Often we only have an
# *unnormalised* log-density $\log\rho$ — a posterior, a Boltzmann weight — with $\mu = \rho/Z$ and
# $Z = \int\rho\,dx$ unknown, and we want both samples of μ and the number $\log Z$. The
# Schrödinger–Föllmer process gives both.
#
# **Paths against paths.** Let Q be the law of the reference paths $dX = \sigma\,dW$ from $X_0 = 0$,
# so $X_1 \sim \mathcal N(0, \sigma^2 I)$, and let $f = \rho / \mathcal N(0, \sigma^2 I)$. Then
# $\mathbb E_Q[f(X_1)] = \int \rho\,dx = Z$. A controlled process $P^u$: $dX = u(X, t)\,dt + \sigma\,dW$
# from 0 has, by Girsanov's theorem,
#
# $$\log\frac{dP^u}{dQ}(X) = \int_0^1 \frac{u}{\sigma}\cdot dW_t + \frac12\int_0^1 \Big\|\frac{u}{\sigma}\Big\|^2 dt,$$
#
# with W the Brownian motion that drives $P^u$. So every path of $P^u$ carries the importance weight
# $\log w = \log f(X_1) - \log\frac{dP^u}{dQ}(X)$, and $\mathbb E_{P^u}[w] = \mathbb E_Q[f(X_1)] = Z$:
#
# $$\widehat{\log Z} = \log\Big(\frac1n\sum_i w_i\Big), \qquad \mathrm{ESS}/n = \frac{(\sum_i w_i)^2}{n\sum_i w_i^2} \in (0, 1].$$
#
# At the Föllmer drift $u = b$ of §2.3 the weight is the constant Z: every path gives $\log Z$ exactly.
#
# **Discretisation.** On the Euler grid $t_k = kh$ the same sum,
# $\sum_k [(u_k/\sigma)\cdot\Delta W_k + \tfrac h2\|u_k/\sigma\|^2]$, is the exact log-ratio of the Euler
# chain to the discretised reference (which still ends in $\mathcal N(0, \sigma^2 I)$): the estimate of Z
# is unbiased at *every* number of steps K. Coarse steps cost ESS, never bias.
#
# First the weights written out by hand and checked against `path_log_weights`, on a target whose
# drift and normaliser we know: $\rho = e^{1.5}\,\mathcal N(m, s^2 I)$, so $\log Z = 1.5$.

# %%
from lsbcore.bridges.densities import GaussianMixtureTarget
from lsbcore.bridges.follmer_learned import (LearnedFollmer, estimate_log_z, fit_follmer_sampler, path_log_weights,
                                             summarize_weights)


def my_log_weights(drift, log_rho, n, sigma, steps, seed):
    """Euler paths from 0 and their Girsanov log-weights log f(X_1) − log dP^u/dQ, in 2-D."""
    gen, h = lsb.generator(seed), 1 / steps
    x, log_rn = torch.zeros(n, 2), torch.zeros(n)
    for k in range(steps):
        dw = math.sqrt(h) * torch.randn(n, 2, generator=gen)   # the noise first, as lsb.sample draws it
        u = drift(x, torch.full((n, 1), k * h))
        log_rn = log_rn + (u * dw).sum(1) / sigma + 0.5 * h * (u * u).sum(1) / sigma**2
        x = x + h * u + sigma * dw
    log_f = log_rho(x) + (x * x).sum(1) / (2 * sigma**2) + math.log(2 * math.pi * sigma**2)   # d = 2
    return x, log_f - log_rn


m_g, s_g, sigma_g, logz_g = torch.tensor([2.0, -1.0]), 0.6, 1.0, 1.5
gauss_g = lsb.Gaussian(m_g, s_g**2)
log_rho_g = lambda x: gauss_g.log_prob(x) + logz_g                                  # noqa: E731
drifts_g = {"exact Föllmer drift": lambda x, t: gaussian_follmer_drift(x, t, m_g, s_g, sigma_g),
            "u = 0 (the reference)": lambda x, t: torch.zeros_like(x)}
est_g = {}
for name, u in drifts_g.items():
    x1, lw = path_log_weights(u, log_rho_g, N_SF, sigma_g, K_SF, seed=SEED, dim=2)
    torch.testing.assert_close((x1, lw), my_log_weights(u, log_rho_g, N_SF, sigma_g, K_SF, SEED))
    est_g[name] = summarize_weights(lw, x1)
    print(f"{name:22s} {est_g[name]}   (true log Z = {logz_g})")
# the exact drift: Var log w is Euler's O(h) (≈ 0.05 at K = 20), so ESS/n ≈ 0.95; both estimates are
# consistent, within Monte-Carlo error (the delta-method s.e.) of the truth
assert est_g["exact Föllmer drift"].ess > 0.9 > 0.3 > est_g["u = 0 (the reference)"].ess
for e in est_g.values():
    assert abs(e.log_z - logz_g) < 4 * e.stderr + 0.01

# %%
fig, ax = new_axes(size=(7.0, 3.4))
for name, e in est_g.items():
    ax.hist((e.log_weights - logz_g).clamp(-8, 4).numpy(), bins=60, alpha=0.6, label=f"{name}: ESS/n = {e.ess:.2f}")
ax.axvline(0.0, color="k", ls="--", lw=1)
ax.set(xlabel="log w − log Z (clipped to [−8, 4])", ylabel="paths",
       title=f"Importance weights of {N_SF} Euler paths (K = {K_SF}) to e^1.5 N(m, s²I):\n"
             "the exact Föllmer drift makes them (nearly) constant")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# **Learning the drift from log ρ alone.** The *log-variance loss* $\mathrm{Var}(\log w)$ over a batch
# of paths is zero exactly at $u = b$ (Richter et al. 2020; Nüsken & Richter 2021). It may be evaluated along paths from *any*
# process: `fit_follmer_sampler` simulates a batch with the current drift (detached, no gradient
# through the SDE), sends a quarter of the paths along the reference (u = 0) to keep exploring —
# on-policy paths alone can lose a mode and never see it again — and differentiates log w of the drift
# being trained along those fixed paths, $\log\frac{dP^u}{dQ} = \sum_k [u_k\cdot\Delta X_k/\sigma^2 - h\|u_k\|^2/(2\sigma^2)]$.
# The alternative `loss="kl"` minimises $\mathbb E_{P^u}[-\log w] = \mathrm{KL}(P^u\,\|\,P^*) - \log Z$
# through the simulated paths; it is mode-seeking. The network (`TimeMLP`, last layer zeroed) starts at
# u = 0: plain importance sampling from $\mathcal N(0, \sigma^2 I)$.
#
# Target: three Gaussian blobs times $e^2$ (log Z = 2), σ = 1. We compare the learned drift with the
# Monte-Carlo drift of §2.3 (300 draws per evaluation) and with u = 0, each on N_SF paths of K = 20 steps.
# (`bench/sampler_learned.py` compares them at equal wall time, with Neal's funnel too.)

# %%
gmm_t = GaussianMixtureTarget([0.3, 0.3, 0.4], [[-2.0, 0.0], [2.0, 0.0], [0.0, 2.5]], [0.5, 0.5, 0.6], log_z=2.0)
sampler = fit_follmer_sampler(gmm_t, sigma=1.0, steps=SAMPLER_STEPS, batch_size=128, sim_steps=K_SF, lr=3e-3,
                              seed=SEED, progress=False, device=DEV)
runs_sf = {"learned": sampler, "Monte Carlo": lsb.FollmerMC(gmm_t, 1.0, n_mc=300, seed=SEED, dim=2),
           "u = 0": LearnedFollmer(lambda x, t: torch.zeros_like(x), 1.0, dim=2)}
est_sf = {name: estimate_log_z(br, gmm_t, n=N_SF, steps=K_SF, seed=SEED + 1).cpu() for name, br in runs_sf.items()}
floor_sf = lsb.w2_report(gmm_t.sample(N_SF, seed=SEED + 2).float(), gmm_t, seed=SEED).floor
for name, e in est_sf.items():
    print(f"{name:12s} {e}   error {e.log_z - gmm_t.log_z:+.3f}   W2 of X_1 to μ: "
          f"{lsb.w2_report(e.samples, gmm_t, seed=SEED).w2:.3f} (floor {floor_sf:.3f})")
# measured on seeds 0-2 (full) and 0-3 (FAST): ESS/n 0.68-0.78 (full), 0.42-0.49 (FAST) against
# 0.03-0.13 for u = 0; |log Z error| ≤ 0.03 (full), ≤ 0.13 (FAST, n = 300: the s.e. is ≈ 0.065)
assert est_sf["learned"].ess > max(0.25 if FAST else 0.5, 2.5 * est_sf["u = 0"].ess)
assert abs(est_sf["learned"].log_z - gmm_t.log_z) < (0.2 if FAST else 0.1)

# %%
fig, axes = new_axes(3, size=(3.6, 3.4))
loss = torch.tensor(sampler.history["loss"])
axes[0].semilogy(loss, lw=0.6)
axes[0].set(xlabel="Adam step", ylabel="Var log w (batch)", title="log-variance loss")
exact_sf = gmm_t.sample(N_SF, seed=SEED + 3)
for ax, name in zip(axes[1:], ("learned", "u = 0")):
    scatter2d(exact_sf, ax, s=2, alpha=0.25, color="C2", label="μ (exact)")
    scatter2d(est_sf[name].samples, ax, s=2, color="C1", label="$X_1$",
              title=f"{name}: ESS/n = {est_sf[name].ess:.2f}")
axes[1].legend(loc="lower left", fontsize=8, markerscale=4)
fig.suptitle("A Föllmer sampler learned from log ρ alone (three blobs, σ = 1, K = 20)")
plt.show()

# %% [markdown]
# **Explore.** Pick a target, a drift and the number of Euler steps: the left panel shows the
# sampler's end points over exact samples, the right one its log-weights around the true log Z.
# With fewer steps the learned and Monte-Carlo samples blur and the weights spread (lower ESS); on the
# blobs the log Z estimate stays right within its error bar. Neal's funnel (v ~ N(0, 9), x | v ~ N(0, e^v)) is the
# hard case: its neck and its mouth are far apart in scale, every drift here misses part of them, and
# the weights are so heavy-tailed that log Z comes out too low by more than its nominal error bar
# (its learned sampler gets a quarter of the blobs' training budget here; the bench trains longer).

# %%
from lsbcore.bridges.densities import NealsFunnel

funnel_t = NealsFunnel(3)
funnel_sampler = fit_follmer_sampler(funnel_t, sigma=1.0, steps=SAMPLER_STEPS // 4, batch_size=128, sim_steps=K_SF,
                                     lr=3e-3, seed=SEED, progress=False, grad_clip=10.0, device=DEV)
W.follmer_sampler_explorer({"three blobs (2-D)": gmm_t, "Neal's funnel (3-D)": funnel_t},
                         {"three blobs (2-D)": sampler, "Neal's funnel (3-D)": funnel_sampler},
                         n=N_SF, steps=K_SF, n_mc=300, seed=SEED)

# %% [markdown]
# ## 3 · Discussion
# - A bridge is a drift. Closed form, Monte Carlo, an exact softmax or a network: the sampler and
#   the metrics do not care, which is what lets the explorer of §2.5 swap them in a dropdown.
# - Bridge matching is regression onto $(X_1 - X_t)/(1-t)$; the coupling decides what is learned.
#   Independent pairs give a valid bridge between the marginals but with crossing, curved paths;
#   Sinkhorn pairs (the static SB) give nearly straight ODE paths, which is why they need fewer steps.
# - That regression is noisy where it matters most: near the data end the target's variance grows
#   like $\sigma^2/(1-t)$, while the drift there decides whether a sample lands on a moon or in the
#   gap. Two cheap remedies in `fit_bridge`, neither of which changes the minimiser: more bridge
#   draws per minibatch plan (`batch_size=1024, plan_size=256`: a row costs far less than a Sinkhorn
#   plan) and more training times near the end (`time_power=2`). At equal training time they cut
#   the samples left off the moons from about 5% to 1.4% (`bench/training.py`, its docstring).
# - Euler–Maruyama's error falls like h; Heun's like h². With exact drifts (the Gaussian bridge) the
#   ODE is closer at the smallest NFE and both reach the sampling floor within a few dozen
#   evaluations; with straight learned paths a few Heun steps reach the ODE's best W2.
#   With learned drifts the SDE can still end lower: it depends on one network, not two, and its
#   noise partly corrects drift errors. The error of the drift, not of the sampler, then dominates.
# - Always read a W2 next to its noise floor: below the floor, differences are sampling noise.
# - The exact empirical Föllmer drift reproduces its training points: exactness on a finite sample
#   is memorisation. Learned drifts generalise because they are smooth.
# - From log ρ alone, the log-variance loss learns the Föllmer drift and the path weights give log Z
#   (unbiased for Z at any number of Euler steps). In 2-D a Monte-Carlo drift given the same wall
#   time is about as good (`bench/sampler_learned.py`), and Neal's funnel defeats both: their log Z
#   comes out too low, beyond the nominal error bar, because the weights are heavy-tailed.

# %% [markdown]
# ## 4 · Exercises
# Each exercise has a cell for your answer (a placeholder: `...` or `None`) and, after it, a check:
# `lsb.exercises.check("02.1", answer)` says "correct", "not attempted yet" while the placeholder is
# there, or what is off, with a hint. The checks compare with what `lsbcore` computes.

# %%
import lsbcore.exercises  # noqa: F401  (the checks: lsb.exercises.check)

# %% [markdown]
# **Exercise 02.1 — a Brownian-bridge sample.** Write $X_t = (1-t)x_0 + t x_1 + \sigma\sqrt{t(1-t)}\,Z$
# yourself, with $Z$ drawn as `torch.randn(x0.shape, generator=lsb.generator(seed))`. The check compares
# it with `lsb.brownian_bridge_sample`, draw for draw.

# %% tags=["stub"]
def my_bridge_sample(x0, x1, t, sigma, seed):
    ...  # your code: return X_t, the shape of x0


# %% tags=["solution"]
def my_bridge_sample(x0, x1, t, sigma, seed):
    z = torch.randn(x0.shape, generator=lsb.generator(seed))
    return (1 - t) * x0 + t * x1 + sigma * math.sqrt(t * (1 - t)) * z


# %%
lsb.exercises.check("02.1", my_bridge_sample)

# %% [markdown]
# **Exercise 02.2 — the Schrödinger–Föllmer drift to a Gaussian.** From δ0 to μ = N(m, s²I) with
# reference σW: derive $b(x, t) = \frac{\sigma^2 m + (s^2 - \sigma^2)x}{\sigma^2(1-t) + s^2 t}$ from
# $X_t = tX_1 + \sigma\sqrt{t(1-t)}Z$ and Gaussian conditioning, and write it (x of shape (n, d), m of shape (d,)).
# Why is it finite at t = 1, and why is it 0 when s = σ and m = 0?

# %% tags=["stub"]
def my_follmer_drift(x, t, m, s, sigma):
    ...  # your code: return b(x, t), the shape of x


# %% tags=["solution"]
def my_follmer_drift(x, t, m, s, sigma):
    """E[X1 | X_t = x] = m + k_t (x − t m), k_t = s²/(t s² + σ²(1−t)); b = (E[X1 | x] − x)/(1 − t) simplifies to:"""
    return (sigma**2 * m + (s**2 - sigma**2) * x) / (sigma**2 * (1 - t) + s**2 * t)


# at t = 1 the denominator is s² > 0; with s = σ, m = 0 the target is the reference's own law N(0, σ²): no drift
print(my_follmer_drift(torch.ones(1, 2), 1.0, torch.zeros(2), 0.6, 1.0), my_follmer_drift(torch.ones(1, 2), 0.5, torch.zeros(2), 1.0, 1.0))

# %%
lsb.exercises.check("02.2", my_follmer_drift)

# %% [markdown]
# **Exercise 02.3 — Euler–Maruyama's bias.** For the pinned bridge $dX = -\frac{X}{1-t}dt + \sigma\,dW$
# from $X_0 = 0$ to $x_1 = 0$, the exact variance at t = ½ is σ²/4. Compute the variance of the
# *Euler–Maruyama chain* at t = ½ with `steps` = 1/h steps (even), exactly, without simulating (follow the
# variance through one step), and find how its error behaves as h → 0. The check simulates the chain
# with `lsb.sample`.

# %% tags=["stub"]
def em_bridge_var(steps, sigma):
    ...  # your code: return Var X_{1/2} of the Euler–Maruyama chain (a float)


# %% tags=["solution"]
def em_bridge_var(steps, sigma):
    """One step multiplies the deviation by 1 − h/(1 − t_k) = (1 − t_{k+1})/(1 − t_k) and adds variance σ²h."""
    h, var = 1 / steps, 0.0
    for k in range(steps // 2):
        var = var * ((1 - (k + 1) * h) / (1 - k * h)) ** 2 + sigma**2 * h
    return var


# the error against σ²/4 halves with h: Euler–Maruyama's weak order 1
_err = [em_bridge_var(n, 0.8) - 0.8**2 / 4 for n in (8, 16, 32, 64)]
print("error for 8, 16, 32, 64 steps:", [round(e, 5) for e in _err],
      " slope in h:", round(math.log(_err[-2] / _err[-1]) / math.log(2), 2))

# %%
lsb.exercises.check("02.3", em_bridge_var)
