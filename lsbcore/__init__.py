"""lsbcore: Schrödinger-bridge diffusion models for teaching and quick experiments.

One pipeline: marginals → static solver → coupling → bridge (drift) → sampler → samples → metrics.
A notebook reads like the math::

    import lsbcore as lsb
    res = lsb.sinkhorn(x0, x1, eps=0.1)
    bridge = lsb.fit_bridge(x0, x1, sigma=0.5)
    out = lsb.sample(bridge, x0, method="ode", steps=50)

The verbs and classes below are the public API (the POT way: implementations live in modules, the
names live here). They are loaded on first use, so ``import lsbcore`` stays fast and a notebook that
only solves a static problem never imports the trainers. README.md has the package map and the
glossary; docs/theory.md the equations.
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

# public name -> module that defines it (relative to lsbcore)
_API = {
    # ground floor
    "device": "utils", "resolve_device": "utils", "generator": "utils", "seed_everything": "utils", "is_fast": "utils",
    # marginals
    "Gaussian": "marginals", "GaussianMixture": "marginals", "Empirical": "marginals", "Toy2D": "marginals",
    # the face
    "Bridge": "bridge", "MethodUnavailable": "bridge",
    # the static problem
    "sinkhorn": "schrodinger", "squared_distances": "schrodinger", "SinkhornResult": "schrodinger",
    "fortet": "schrodinger", "Grid": "schrodinger", "GaussianBridge": "schrodinger", "monge_map": "schrodinger",
    # reference processes
    "Brownian": "bridges.reference", "OU": "bridges.reference", "VP": "bridges.reference",
    "BrownianBridge": "bridges.reference", "brownian_bridge_sample": "bridges.reference",
    # learned and Monte-Carlo bridges
    "MatchedBridge": "bridges.matching", "couple": "bridges.matching", "fit_bridge": "bridges.matching",
    "imf": "bridges.matching", "dsb": "bridges.dsb", "DSBResult": "bridges.dsb", "ipf_step": "bridges.dsb",
    "FollmerMC": "bridges.follmer", "EmpiricalFollmer": "bridges.follmer", "fit_follmer": "bridges.follmer",
    "LearnedFollmer": "bridges.follmer_learned", "fit_follmer_sampler": "bridges.follmer_learned",
    "estimate_log_z": "bridges.follmer_learned", "path_log_weights": "bridges.follmer_learned",
    "summarize_weights": "bridges.follmer_learned", "LogZEstimate": "bridges.follmer_learned",
    "GaussianMixtureTarget": "bridges.densities", "NealsFunnel": "bridges.densities",
    "grad_log_density": "bridges.densities",
    "HeatFlowBridge": "bridges.heat", "SmoothedFollmer": "bridges.heat", "fit_heat_flow": "bridges.heat",
    "LinearForward": "bridges.vsdm", "VSDM": "bridges.vsdm", "fit_vsdm": "bridges.vsdm_fit", "TimeVaryingForward": "bridges.vsdm_time",
    "DiagonalForward": "bridges.vsdm_diag", "fit_vsdm_diag": "bridges.vsdm_diag",
    "LinearSBVAE": "bridges.sbvae_exact",
    "SBVAEBridge": "bridges.sbvae", "LinearEncoder": "bridges.sbvae", "MLPEncoder": "bridges.sbvae",
    "fit_sbvae": "bridges.sbvae",
    # conditional forecasting with a known answer (issue 13): processes, oracle, baselines, scores
    "LinearGaussianSSM": "forecast", "NonlinearSSM": "forecast", "crps_gaussian": "forecast",
    "crps_ensemble": "forecast", "energy_score": "forecast", "seasonal_naive": "forecast",
    "fit_var": "forecast", "GaussianVAR": "forecast", "Forecast": "forecast",
    "fit_forecaster": "bridges.vsdm_forecast", "ForecastModel": "bridges.vsdm_forecast",
    "ConditionalScoreNet": "bridges.vsdm_forecast",
    # sampling and training
    "sample": "sde", "generate": "sde", "SampleResult": "sde",
    "fit": "train", "load_checkpoint": "checkpoint", "save_checkpoint": "checkpoint", "ChecksumError": "utils",
    # metrics
    "w2": "metrics", "w2_report": "metrics", "sliced_w2": "metrics", "mmd": "metrics",
    "energy_distance": "metrics", "bures_w2": "metrics", "straightness": "metrics",
    "histogram_error": "metrics", "memorisation_ratio": "metrics",
    # digits and the latent pipeline
    "load_digits": "digits", "shift_digits": "digits", "frechet_digits_distance": "digits",
    "shipped_autoencoder": "shipped", "shipped_classifier": "shipped",
    "generate_digits": "latent",
    # images beyond the 8×8 digits (MNIST, Fashion-MNIST) and networks for them
    "load_images": "datasets", "write_fixture": "datasets", "frechet_image_distance": "datasets",
    "shift_images": "datasets", "ConvAutoencoder": "conv", "ConvClassifier": "conv",
    "fit_image_autoencoder": "conv", "fit_image_classifier": "conv",
}
_MODULES = ("utils", "marginals", "bridge", "schrodinger", "bridges", "sde", "train", "nets", "metrics",
            "plotting", "widgets", "digits", "shipped", "latent", "idx", "datasets", "conv",
            "exercises", "checkpoint", "forecast", "vsdm_digits")

__all__ = sorted(_API) + list(_MODULES)


def __getattr__(name: str):
    if name in _API:
        value = getattr(importlib.import_module(f".{_API[name]}", __name__), name)
    elif name in _MODULES:
        value = importlib.import_module(f".{name}", __name__)
    else:
        raise AttributeError(f"module 'lsbcore' has no attribute {name!r}")
    globals()[name] = value  # cache: the next access is a plain attribute
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
