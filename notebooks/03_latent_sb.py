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
# # 03 · The latent Schrödinger bridge, end to end, on real digits
#
# [![Open in Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/lsbcore/lsbcore/blob/main/notebooks/03_latent_sb.ipynb) [![Binder](https://mybinder.org/badge_logo.svg)](https://mybinder.org/v2/gh/lsbcore/lsbcore/main?labpath=notebooks%2F03_latent_sb.ipynb)

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
# **Aim.** Build a generative model of handwritten digits the way the latent Schrödinger bridge
# (latent SB) does: pre-train an encoder–decoder on data that *differs* from the target, encode
# the target digits, run a Schrödinger bridge in the latent space, decode — and measure what comes out.
#
# **Contents.**
# 1. Data and the distribution shift
# 2. Encoder–decoder pre-training (shipped checkpoints)
# 3. Theory: three latent bridges behind one drift interface
# 4. Practice: the bridges side by side, with the pixel-space baseline
#
#    4b. The learned drift the paper analyses, against the exact one: does it copy less?
# 5. How pre-training under shift moves the error
# 6. Explore: widgets (bridge, σ, t_gap, steps, d*, interpolation)
# 7. Discussion and exercises
#
# Everything heavy lives in the package (`import lsbcore as lsb`: the digits in `lsbcore.digits`, the
# encoder–decoder in `lsbcore.autoencoder`, the bridges in `lsbcore.bridges`, the pipeline in
# `lsbcore.latent`); this notebook calls it and checks its claims with `assert`s.

# %% tags=["parameters"]
import lsbcore as lsb

FAST = lsb.is_fast()              # LSB_FAST=1: smaller training budgets, same code
RETRAIN = False                   # True: pre-train the autoencoder and classifier here instead of loading data/
TRAIN_STEPS = 250 if FAST else 1000   # per network fit, for the two *learned* bridges
HEAT_STEPS = 500                  # FAST only: steps of the live learned-drift fit in §4b (else data/heat_d*.pt)
STEPS = 50 if FAST else 100       # Euler–Maruyama steps of every sampler
N_GEN = 397                       # generated digits per method (= size of the held-out test split)
SEED = 0
DEVICE = "cpu"   # "cpu" (CI); "auto": CUDA, then MPS, then CPU; "cuda"/"cuda:K"/"mps": that one. Models and bridges run there; results come back to the CPU

# %%
import matplotlib.pyplot as plt
import torch

from lsbcore.autoencoder import PixelSpace, fit_autoencoder, fit_classifier
from lsbcore.bridges.heat import heat_flow_drift
from lsbcore.digits import SHIFT_KINDS, classifier_accuracy, evaluate_digits, plot_digits, real_digits_floor

# The networks here are tiny: one thread is as fast as several and never oversubscribes a shared CPU.
torch.set_num_threads(1)
DEV = lsb.resolve_device(DEVICE)   # checked once: every model, bridge and sampler below runs on DEV


def to_cpu(result: dict) -> dict:
    """A generate_digits result with its tensors on the CPU, for tables and plots (no copy on the CPU)."""
    return {k: v.cpu() if isinstance(v, torch.Tensor) else v for k, v in result.items()}

# %% [markdown]
# ## 1. Data and the distribution shift
#
# scikit-learn's 8×8 digits (1,797 images, no download), pixels scaled to [0, 1]. One fixed random
# split into three disjoint parts:
#
# | split | size | used for |
# |---|---|---|
# | `pretrain` | 700 | pre-training the encoder–decoder, **only through a shift** |
# | `target` | 700 | the clean digits whose law *p* the bridge learns |
# | `test` | 397 | held out; every metric compares against it |
#
# The pre-training law is p̃ = T#p̃₀ with a random corruption T (`lsb.shift_digits`): random
# translations (default, up to 1 pixel), blur, or noise; `strength` is the knob. A pre-training set
# restricted to some classes (`classes=[...]`) is another kind of shift.

# %%
x_target, y_target = lsb.load_digits("target")
x_test, y_test = lsb.load_digits("test")
x_pre, _ = lsb.load_digits("pretrain")
fig, axes = plt.subplots(4, 1, figsize=(6.5, 4.6), constrained_layout=True)
plot_digits(x_target[:12], axes[0], ncols=12, title="target digits p (clean)")
for ax, kind, s in zip(axes[1:], SHIFT_KINDS, (1.0, 1.0, 0.2)):
    plot_digits(lsb.shift_digits(x_pre[:12], s, kind=kind, seed=SEED), ax, ncols=12,
                  title=f"pre-training digits p̃: shift '{kind}', strength {s}")
plt.show()

# %% [markdown]
# ## 2. Encoder–decoder pre-training
#
# An MLP autoencoder (and a VAE variant) with latent dimension d* ∈ {2, 4, 8, 16}, trained by the shared
# loop `lsb.fit` on freshly shifted minibatches. The codes are **standardised** (mean 0,
# unit variance per coordinate on the pre-training data) so that one σ means the same for every d*.
# The default checkpoints are shipped in `data/` (sha256 in `data/MANIFEST.json`, verified on load,
# read with `weights_only=True`); `python -m lsbcore rebuild-data` rebuilds them bit for bit.
#
# A small classifier (MLP, 32-D penultimate features) is shipped too: its features define the
# **Fréchet digits distance** (FDD) and its labels the class histogram of generated digits.

# %%
if RETRAIN:
    ae = fit_autoencoder(8, steps=600 if FAST else 3000, device=DEV)
    clf = fit_classifier(steps=500 if FAST else 2000, device=DEV)
else:
    ae = lsb.shipped_autoencoder(8, device=DEV)           # d* = 8, translation shift of strength 1
    clf = lsb.shipped_classifier(device=DEV)
acc = classifier_accuracy(clf, "test")
print(f"classifier accuracy on the 397 held-out test digits: {acc:.3f}")
assert acc > 0.93

# %%
with torch.no_grad():
    rec = ae.decode(ae.encode(x_test[:12]))
fig, axes = plt.subplots(2, 1, figsize=(6.5, 2.4), constrained_layout=True)
plot_digits(x_test[:12], axes[0], ncols=12, title="held-out test digits")
plot_digits(rec, axes[1], ncols=12, title="their reconstructions D(E(x)), d* = 8")
plt.show()

# %% [markdown]
# ## 3. Theory: latent bridges
#
# Encode the target: p̂ = E#p, represented by the n = 700 codes z_i of the target digits. Every
# bridge below is an SDE `dZ = b(Z, t) dt + σ dW` on t ∈ [0, 1 − t_gap] (early stopping at a gap
# `t_gap` from the end), run by the shared Euler–Maruyama sampler `lsb.sample`, then decoded.
#
# **(a) Reverse heat flow, p̂ ∗ N(0, σ²I) → p̂** *(reconstructed)*. A published summary of the latent
# SB paper (Jiao et al. 2024) describes the latent SDE as carrying "a Gaussian-convolved encoder
# distribution to the encoder target"; the method section itself was not available to us, so this is
# **our reading**, not the paper's text. With μ0 = p̂ ∗ N(0, σ²I) the static SB plan is
# π(z0, z1) = p̂(z1) N(z0; z1, σ²I), and the bridge is the time reversal of the heat flow:
#
# $$ b^*(z, t) = \sigma^2 \nabla \log\big(\hat p * N(0, \sigma^2 (1-t) I)\big)(z)
#    = \sum_i w_i \frac{z_i - z}{1 - t}, \qquad w_i \propto e^{-\|z - z_i\|^2 / (2\sigma^2(1-t))}. $$
#
# For an empirical p̂ this drift is **exact** and needs no network (`heat_flow_drift`); a network can
# also learn it by the regression `E‖b(z1 + σ√(1−t) ε, t) + σε/√(1−t)‖²` (`lsb.fit_heat_flow`; §4b).
# The start μ0 is reached either by a first Schrödinger–Föllmer stage δ0 → p̂ ∗ N(0, σ²I), whose exact
# drift is `Σ_i w_i z_i` with `w_i ∝ exp((z·z_i − t‖z_i‖²/2)/σ²)` (`smoothed_follmer_drift`), or by the
# Gaussian approximation N(mean p̂, cov p̂ + σ²I), good when σ is large.
#
# **(b) Schrödinger–Föllmer δ0 → p̂**, exact empirical drift (`lsb.EmpiricalFollmer`).
#
# **(c) SB N(0, I) → p̂ by bridge matching** with minibatch-Sinkhorn couplings (ε = 2σ²) and two IMF
# refinements (`lsb.imf`): learned, `TRAIN_STEPS` steps per fit.
#
# Before using (a), check the formula against an independent implementation: σ²∇log of the
# Gaussian-mixture density, by autograd.

# %%
z_pts = torch.randn(6, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
z = torch.randn(5, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
t, sigma = 0.7, 0.8
zz = z.clone().requires_grad_(True)
log_mix = torch.logsumexp(-((zz[:, None] - z_pts[None]) ** 2).sum(-1) / (2 * sigma**2 * (1 - t)), 1).sum()
score = sigma**2 * torch.autograd.grad(log_mix, zz)[0]
torch.testing.assert_close(heat_flow_drift(z, t, z_pts, sigma), score)

# %% [markdown]
# ## 4. Practice: the bridges side by side
#
# `lsb.generate_digits(autoencoder, method, ...)` does encode → bridge → sample → decode → metrics in one
# call. Metrics against the 397 held-out digits:
#
# - **FDD**: Fréchet distance between classifier features (lower is better);
# - **W2 (pixels)**: exact W2 with POT between 397 generated and 397 test images;
# - **latent W2**: between generated codes and the codes of the test digits;
# - **class TV**: total variation between the predicted-class histogram and the test digits'.
#
# **Noise floor**: real target digits, scored the same way, show what "as good as real data at this
# sample size" means; reconstructions D(E(x)) show what the autoencoder alone costs.
#
# The **pixel-space baseline** runs the *same* bridges on the 64 pixels (`PixelSpace`: the same
# standardisation, identity "encoder") with the same number of steps and training budget.
# "random" decodes codes drawn from N(0, I), no bridge at all.

# %%
floor = real_digits_floor(clf, ae)
methods = ["heat-follmer", "heat-gaussian", "follmer", "imf", "random"]
runs = {}
for space_name, space in (("latent d*=8", ae), ("pixels 64-D", PixelSpace().to(DEV))):
    for m in methods:
        runs[space_name, m] = to_cpu(lsb.generate_digits(space, m, N_GEN, sigma=1.0, t_gap=0.01, steps=STEPS,
                                                       train_steps=TRAIN_STEPS, classifier=clf, seed=SEED))

# %%
print(f"{'space':12s} {'method':14s} {'FDD':>7s} {'W2 px':>7s} {'lat W2':>7s} {'cls TV':>7s} {'conf':>6s} {'sec':>6s}")
print(f"{'real digits':12s} {'(floor)':14s} {floor['fdd']:7.2f} {floor['w2']:7.3f} {floor['latent_w2']:7.3f} "
      f"{floor['tv_classes']:7.3f} {floor['confidence']:6.3f}")
print(f"{'D(E(x))':12s} {'(recon.)':14s} {floor['reconstruction_fdd']:7.2f} {floor['reconstruction_w2']:7.3f}")
for (s, m), r in runs.items():
    print(f"{s:12s} {m:14s} {r['fdd']:7.2f} {r['w2']:7.3f} {r['latent_w2']:7.3f} {r['tv_classes']:7.3f} "
          f"{r['confidence']:6.3f} {r['seconds']:6.1f}")
print("(latent W2 of the pixel rows is in standardised pixel units: not comparable with the latent rows)")

# %%
fig, axes = plt.subplots(len(methods), 2, figsize=(13, 0.95 * len(methods) + 0.5), constrained_layout=True)
for i, m in enumerate(methods):
    for j, s in enumerate(("latent d*=8", "pixels 64-D")):
        r = runs[s, m]
        plot_digits(r["images"][:16], axes[i, j], ncols=16, title=f"{s}, {m}: FDD {r['fdd']:.1f}")
fig.suptitle("generated digits per bridge: latent (left) and pixel-space baseline (right)")
plt.show()

# %%
fig, ax = plt.subplots(figsize=(6, 3), constrained_layout=True)
ax.bar(range(10), runs["latent d*=8", "heat-follmer"]["class_hist"], width=0.4, label="latent heat-flow SB")
ax.bar([k + 0.4 for k in range(10)], evaluate_digits(x_test.to(DEV), clf)["class_hist"].cpu(), width=0.4, label="test digits")
ax.set_xticks(range(10))
ax.set_xlabel("predicted class")
ax.set_ylabel("fraction of images")
ax.set_ylim(0, 0.16)
ax.set_title("class histogram of generated vs held-out digits")
ax.legend(loc="upper center", ncol=2)
plt.show()

# %% [markdown]
# **Claims checked below** (they hold for every seed we tried; the numbers above are one seed):
#
# 1. Every latent bridge beats "decode random latents" on FDD and pixel W2.
# 2. The generated digits of the training-free latent bridges are classified with a class
#    distribution close to the test digits' (TV < 0.15) and with high confidence.
# 3. No generator beats real data: FDD ≥ the real-digit floor.
# 4. The exact, training-free drifts are *sharper* in pixel space than in latent space. That is not
#    a win for pixels: the exact empirical drift **memorises** — with small t_gap its samples are
#    noisy copies of the 700 target digits — and in latent space the copies pass through the
#    decoder, whose reconstruction error (the D(E(x)) row) is then the floor. The learned IMF bridge,
#    which must generalise, is where the latent space pays off at the same training budget.

# %%
lat, pix = "latent d*=8", "pixels 64-D"
for m in methods[:-1]:
    assert runs[lat, m]["fdd"] < runs[lat, "random"]["fdd"] and runs[lat, m]["w2"] < runs[lat, "random"]["w2"], m
for m in ("heat-follmer", "heat-gaussian", "follmer"):
    assert runs[lat, m]["tv_classes"] < 0.15 and runs[lat, m]["confidence"] > 0.9, m
assert min(r["fdd"] for r in runs.values()) > floor["fdd"]
assert runs[lat, "imf"]["fdd"] < runs[pix, "imf"]["fdd"]

# %% [markdown]
# ## 4b. The learned drift: what the paper analyses
#
# Every heat-flow row above used the **exact** drift b*. For an empirical p̂ it is the minimiser,
# over *all* functions, of the regression loss
#
# $$ \mathcal L(b) = \mathbb E\,\Big\| b(Z_t, t) + \frac{\sigma\varepsilon}{\sqrt{1-t}} \Big\|^2, \qquad
#    Z_t = z_I + \sigma\sqrt{1-t}\,\varepsilon, $$
#
# with I ~ U{1, …, n}, ε ~ N(0, I), t ~ U[0, 1 − t_gap]. As t → 1 its softmax weights pick one code:
# b* steers every path onto one of the n training codes.
# The error bounds of the latent SB paper (Jiao et al. 2024) are about a **network** b_θ fitted to this
# loss — finite width, finite training — which cannot follow b* all the way. Here `lsb.fit_heat_flow`
# fits a TimeMLP (width 128, depth 3) on all 700 codes: 6000 Adam steps for each shipped autoencoder
# d* ∈ {2, 4, 8, 16}, shipped as `data/heat_d{d}.pt` (`lsbcore.shipped.shipped_heat_drift(d)`, checksum
# verified); in FAST mode a 500-step fit runs here instead.
#
# The comparison changes **only the drift**: `"heat-gaussian"` (b*) and `"heat-learned"` (b_θ) start from
# the same draws of N(mean p̂, cov p̂ + σ²I) — the codes enter the start only through their mean and
# covariance — with the same seed, sampler and decoder. Besides FDD, latent W2 and class TV, the
# **memorisation ratio** (`lsb.memorisation_ratio`, in latent space)
#
# $$ r = \frac{\operatorname{median}_j \min_i \|\hat z_j - z_i\|}{\operatorname{median}_k \min_i \|z^{test}_k - z_i\|} $$
#
# compares how far generated codes ẑ_j sit from their nearest training code z_i with how far the codes of
# held-out test digits do: r ≈ 1 is "as far as new data", r ≪ 1 is copying.

# %%
from lsbcore.shipped import shipped_heat_drift

DIMS = (2, 4, 8, 16)
heat_nets = {}
for d in DIMS:
    if FAST:   # the same regression, shorter: the asserts below test numbers computed here
        with torch.no_grad():
            codes_d = lsb.shipped_autoencoder(d, device=DEV).encode(x_target.to(DEV))
        heat_nets[d] = lsb.fit_heat_flow(codes_d, 1.0, t_gap=0.01, steps=HEAT_STEPS, seed=SEED, progress=False).net
    else:      # 6000 steps, fitted by `python -m lsbcore rebuild-data`
        heat_nets[d] = shipped_heat_drift(d, device=DEV)

# %% [markdown]
# First, how close is b_θ to b*? On the training codes noised to time t (Z_t = z_i + σ√(1−t) ε), the
# relative L2 difference ‖b_θ − b*‖ / ‖b*‖: the network follows b* at small t and lets go of it as
# t → 1, where b* turns into "jump to the nearest code". The higher d*, the more it lets go.

# %%
ts = [0.0, 0.25, 0.5, 0.75, 0.9, 0.97, 0.99]
fig, ax = plt.subplots(figsize=(5.5, 3.3), constrained_layout=True)
for d in DIMS:
    with torch.no_grad():
        codes_d = lsb.shipped_autoencoder(d).encode(x_target)
        g = torch.Generator().manual_seed(SEED)
        gaps = []
        for t_ in ts:
            z_t = codes_d + (1 - t_) ** 0.5 * torch.randn(codes_d.shape, generator=g)
            exact = heat_flow_drift(z_t, t_, codes_d, 1.0)
            gaps.append(float((heat_nets[d](z_t.to(DEV), t_).cpu() - exact).norm() / exact.norm()))
    ax.plot(ts, gaps, "o-", label=f"d* = {d}")
ax.set_xlabel("time t (data at t = 1)")
ax.set_ylabel("‖b_θ − b*‖ / ‖b*‖ on noised codes")
ax.set_title("learned vs exact reverse-heat-flow drift")
ax.legend()
plt.show()

# %% [markdown]
# Now the generated digits, exact vs learned drift, for each d*:

# %%
drift_runs = {}
for d in DIMS:
    ae_d = lsb.shipped_autoencoder(d, device=DEV)
    with torch.no_grad():
        test_codes = ae_d.encode(x_test.to(DEV))
    for m in ("heat-gaussian", "heat-learned"):
        r = lsb.generate_digits(ae_d, m, N_GEN, sigma=1.0, t_gap=0.01, steps=STEPS, classifier=clf, seed=SEED,
                                net=heat_nets[d] if m == "heat-learned" else None)
        r["memorisation"] = lsb.memorisation_ratio(r["codes"], r["points"], test_codes)
        drift_runs[d, m] = to_cpu(r)
print(f"{'d*':>3s} {'drift':14s} {'FDD':>7s} {'lat W2':>7s} {'cls TV':>7s} {'mem. r':>7s}")
for (d, m), r in drift_runs.items():
    name = "exact b*" if m == "heat-gaussian" else "learned b_θ"
    print(f"{d:3d} {name:14s} {r['fdd']:7.2f} {r['latent_w2']:7.3f} {r['tv_classes']:7.3f} {r['memorisation']:7.3f}")
print(f"real digits (floor): FDD {floor['fdd']:.2f}; held-out codes have r = 1 by definition")

# %%
fig, axes = plt.subplots(1, 2, figsize=(10, 3.4), constrained_layout=True)
for m, name, mk in (("heat-gaussian", "exact drift b*", "o-"), ("heat-learned", "learned drift b_θ", "s-")):
    axes[0].plot(DIMS, [drift_runs[d, m]["fdd"] for d in DIMS], mk, label=name)
    axes[1].plot(DIMS, [drift_runs[d, m]["memorisation"] for d in DIMS], mk, label=name)
axes[0].axhline(floor["fdd"], color="k", ls=":", label="real digits (floor)")
axes[1].axhline(1.0, color="k", ls=":", label="held-out digits (r = 1)")
axes[0].set_yscale("log")
axes[0].set_ylabel("FDD to held-out digits (log scale)")
axes[0].set_title("sample quality: exact vs learned drift")
axes[1].set_ylabel("memorisation ratio r (latent)")
axes[1].set_title("copying: r ≪ 1 means near-copies of training codes")
for ax in axes:
    ax.set_xscale("log", base=2)
    ax.set_xticks(DIMS, [str(d) for d in DIMS])
    ax.set_xlabel("latent dimension d*")
    ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# What copying looks like: samples at d* = 16 and, under each, the target digit whose code is nearest.

# %%
fig, axes = plt.subplots(4, 1, figsize=(6.5, 4.8), constrained_layout=True)
for k, (m, name) in enumerate((("heat-gaussian", "exact b*"), ("heat-learned", "learned b_θ"))):
    r = drift_runs[16, m]
    nearest = torch.cdist(r["codes"][:12], r["points"]).argmin(1)
    plot_digits(r["images"][:12], axes[2 * k], ncols=12, title=f"d* = 16, {name}: generated digits")
    plot_digits(r["fit_images"][nearest], axes[2 * k + 1], ncols=12, title=f"the nearest training digit (in "
                f"latent space) of each {name} sample; r = {r['memorisation']:.2f}")
plt.show()

# %% [markdown]
# **What the learned drift buys, and what it costs** (full size; the same ordering in seeds 0, 1, 2 and
# in the FAST 500-step fits, whose numbers differ):
#
# 1. **It copies less.** At d* = 8 and 16 the exact drift's samples sit 2–3× closer to a training code
#    than held-out digits do (r ≈ 0.30–0.43 over seeds): near-copies of the 700 target digits, as the
#    nearest-neighbour rows show. The learned drift's samples have r ≈ 1.07–1.21: about as far from the
#    training set as new digits. At d* = 4, r rises from ≈ 0.9 to ≈ 1.2. At d* = 2 both are above 1
#    (1.4–1.7): 700 codes fill the plane, copying is not the issue there — the 2-D decoder is (FDD ≈ 100).
# 2. **It costs some sample quality.** FDD rises by ≈ 1.3–2.6 at d* = 4 and 8 and by ≈ 3–5 at d* = 16;
#    latent W2 and class TV barely move. r slightly above 1 means the learned samples sit a little
#    farther from the training codes than new digits do: the network samples a smoothed p̂, consistent
#    with the FDD it loses.
#    The short FAST fits (500 steps) are further from b*: for d* ≥ 4, r ≈ 1.5–1.7 and FDD rises by 7–17.
# 3. So part of the exact drift's better FDD at d* = 8–16 is bought by copying training digits. The
#    learned drift is the generative model whose error the paper bounds; its FDD is the one to quote.
#
# Checked below (these hold for seeds 0, 1, 2 at full size and in FAST mode):

# %%
for d in (4, 8, 16):
    exact, learned = drift_runs[d, "heat-gaussian"], drift_runs[d, "heat-learned"]
    assert learned["memorisation"] > exact["memorisation"], d     # the learned drift copies less ...
    assert learned["fdd"] > exact["fdd"], d                       # ... and pays for it in FDD
    assert learned["tv_classes"] < 0.2, d                         # with a sound class histogram
for d in (8, 16):
    assert drift_runs[d, "heat-gaussian"]["memorisation"] < 0.6, d     # exact: near-copies
    assert drift_runs[d, "heat-learned"]["memorisation"] > 1.0, d      # learned: as far as new digits

# %% [markdown]
# ## 5. How pre-training under shift moves the error
#
# Three shipped autoencoders (d* = 8) differ only in the translation strength of pre-training:
# 0 (p̃ = p up to the split), 1 and 2 pixels. Same bridge (reverse heat flow with a Föllmer start).
# The end-to-end bound of the theory adds the pre-training error (shift included) to the bridge
# errors; the reconstruction row isolates it.

# %%
shift_rows = []
for s in (0.0, 1.0, 2.0):
    ae_s = lsb.shipped_autoencoder(8, shift=s, device=DEV)
    fl = real_digits_floor(clf, ae_s)
    r = lsb.generate_digits(ae_s, "heat-follmer", N_GEN, steps=STEPS, classifier=clf, seed=SEED)
    shift_rows.append((s, fl["reconstruction_fdd"], r["fdd"], r["w2"]))
    print(f"shift {s:.0f} px: reconstruction FDD {fl['reconstruction_fdd']:6.2f} | generated FDD {r['fdd']:6.2f}, W2 {r['w2']:.3f}")

# %%
fig, ax = plt.subplots(figsize=(5, 3.2), constrained_layout=True)
ax.plot([r[0] for r in shift_rows], [r[1] for r in shift_rows], "o-", label="reconstructions D(E(x))")
ax.plot([r[0] for r in shift_rows], [r[2] for r in shift_rows], "s-", label="latent heat-flow SB samples")
ax.axhline(floor["fdd"], color="k", ls=":", label="real digits (floor)")
ax.set_xlabel("pre-training translation strength (pixels)")
ax.set_ylabel("FDD to held-out digits")
ax.set_title("pre-training under shift vs final error")
ax.legend()
plt.show()
assert shift_rows[2][1] > shift_rows[0][1]  # a stronger shift costs reconstruction quality on clean digits

# %% [markdown]
# ## 6. Explore
#
# The explorer refits the training-free bridges on each change (about a second): bridge, σ, t_gap, steps
# and d* (one shipped autoencoder per d*). Left: generated digits; right: the sampler's paths drawn
# over the encoded target digits (coloured by class; for d* > 2 in their first two principal axes).
# Things to try: t_gap → 10⁻³ with the heat flow (samples collapse onto the codes of training digits:
# memorisation); σ = 0.1 versus σ = 3 with the Gaussian start; d* = 2 versus 16.

# %%
import copy

from lsbcore import widgets as W

# the widgets redraw on every slider move with small batches: they run on the CPU whatever DEV is
clf_cpu, ae_cpu = copy.deepcopy(clf).cpu(), copy.deepcopy(ae).cpu()
explorer = W.latent_bridge_explorer({d: lsb.shipped_autoencoder(d) for d in (2, 4, 8, 16)}, classifier=clf_cpu,
                                    steps=STEPS, latent_dim=2)
explorer

# %% [markdown]
# Interpolation: decode the straight line between the codes of two held-out digits.

# %%
a, b = int((y_test == 1).nonzero()[0]), int((y_test == 7).nonzero()[0])
W.interpolation_explorer(ae_cpu, x_test, a=a, b=b, steps=10)

# %% [markdown]
# ## 7. Discussion
#
# - **What is ours.** The reverse-heat-flow bridge and its two starts are our reconstruction of the
#   paper's set-up *(reconstructed)*, as are the shift (random translations) and the small MLP
#   autoencoder. The Föllmer and IMF bridges are the standard ones.
# - **Exact drifts memorise; the learned drift copies less.** With an empirical p̂ the exact drifts
#   need no training but reproduce the training codes as t_gap → 0: §4b measures a memorisation ratio
#   r ≈ 0.3–0.4 at d* = 8–16. The learned drift that the paper analyses (`"heat-learned"`, same
#   Gaussian start) stays at r ≈ 1.1–1.2, as far from the training set as new digits, for a few FDD
#   points. Exact drifts are for teaching and for cheap sweeps (notebook 04); the learned one is the
#   generative model.
# - **The decoder sets the floor.** Latent samples cannot be better than reconstructions; pre-training
#   under a stronger shift raises that floor.
# - **Budget.** At equal training budget the learned bridge does better in 8 latent dimensions than
#   in 64 pixel dimensions — the question notebook 04 measures against the sample size.

# %% [markdown]
# ## Exercises
# Each exercise has a cell for your answer (a placeholder: `...` or `None`) and, after it, a check:
# `lsb.exercises.check("03.1", answer)` says "correct", "not attempted yet" while the placeholder is
# there, or what is off, with a hint. The checks compare with what `lsbcore` computes. To go further
# (not checked): pre-train under `shift_kind="blur"` or on `classes=[0, 1, 2, 3, 4]` and redo §5; use the
# shipped VAE (`lsb.shipped_autoencoder(8, kind="vae")`) and see whether "random" improves.

# %%
import lsbcore.exercises  # noqa: F401  (the checks: lsb.exercises.check)

# %% [markdown]
# **Exercise 03.1 — the exact reverse-heat-flow drift.** For codes $z_1, \dots, z_n$ (`points`, shape
# (n, d)) write $b(z, t) = \sum_i w_i \frac{z_i - z}{1 - t}$, $w_i \propto e^{-\|z - z_i\|^2/(2\sigma^2(1-t))}$, for a
# batch z of shape (m, d). It must stay finite for small σ, where every $e^{-\|z - z_i\|^2/\dots}$ underflows.

# %% tags=["stub"]
def my_heat_flow_drift(z, t, points, sigma):
    ...  # your code: return b(z, t), shape (m, d)


# %% tags=["solution"]
def my_heat_flow_drift(z, t, points, sigma):
    """The posterior mean Σ w_i z_i of the clean code, minus z, over the remaining time; softmax never underflows."""
    w = torch.softmax(-((z[:, None] - points[None]) ** 2).sum(-1) / (2 * sigma**2 * (1 - t)), dim=1)
    return (w @ points - z) / (1 - t)


# %%
lsb.exercises.check("03.1", my_heat_flow_drift)

# %% [markdown]
# **Exercise 03.2 — the first stage's drift.** The Föllmer stage δ0 → p̂ ∗ N(0, σ²I) has the exact drift
# $b(x, t) = \sum_i w_i z_i$ with $w_i \propto \exp\big((x\cdot z_i - t\|z_i\|^2/2)/\sigma^2\big)$. Derive it
# (X_t | i ~ N(t z_i, σ² t I)) and write it.

# %% tags=["stub"]
def my_smoothed_follmer_drift(x, t, points, sigma):
    ...  # your code: return b(x, t), shape (m, d)


# %% tags=["solution"]
def my_smoothed_follmer_drift(x, t, points, sigma):
    """log N(x; t z_i, σ² t I) = (x·z_i − t‖z_i‖²/2)/σ² + (terms without i): a softmax over i."""
    return torch.softmax((x @ points.T - t * (points**2).sum(1) / 2) / sigma**2, dim=1) @ points


# %%
lsb.exercises.check("03.2", my_smoothed_follmer_drift)

# %% [markdown]
# **Exercise 03.3 — the Fréchet distance.** Every table of this notebook scores digits by the FDD: the
# Fréchet distance between two sets of classifier features (rows),
# $\|m_x - m_y\|^2 + \operatorname{tr}S_x + \operatorname{tr}S_y - 2\operatorname{tr}(S_x^{1/2}S_yS_x^{1/2})^{1/2}$,
# with sample means and covariances. Write it; it must cope with singular covariances.

# %% tags=["stub"]
def my_frechet(x, y):
    ...  # your code: return the distance (a float)


# %% tags=["solution"]
def my_frechet(x, y):
    def sqrtm(S):  # symmetric PSD square root; round-off can make tiny eigenvalues negative
        lam, U = torch.linalg.eigh(S)
        return U @ torch.diag(lam.clamp(min=0).sqrt()) @ U.T

    Sx, Sy = torch.cov(x.T), torch.cov(y.T)
    r = sqrtm(Sx)
    cross = torch.linalg.eigvalsh(r @ Sy @ r).clamp(min=0).sqrt().sum()
    return float(((x.mean(0) - y.mean(0)) ** 2).sum() + torch.trace(Sx) + torch.trace(Sy) - 2 * cross)


# %%
lsb.exercises.check("03.3", my_frechet)
