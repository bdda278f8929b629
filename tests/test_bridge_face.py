"""One test of the Bridge face for EVERY Bridge subclass in the package.

The classes are found by importing every module of lsbcore and walking ``Bridge``'s subclasses, so a
new bridge is picked up automatically: it must get a small factory in ``FACTORIES`` (the first test
fails until it has one). For each bridge: the methods it provides return ``(batch, dim)`` tensors of
the input's dtype and device; the ones it does not provide raise ``MethodUnavailable`` naming the
class; the defaults agree with each other (Nelson: drift + backward_drift = g² score, velocity =
½(drift − backward_drift)); ``start`` draws start points; the one sampler runs SDE and, where the
velocity exists, the ODE on it.
"""
import importlib
import math
import pkgutil

import pytest
import torch

import lsbcore
from lsbcore.bridge import FACE, Bridge, MethodUnavailable
from lsbcore.nets import TimeMLP
from lsbcore.sde import generate, sample

ABSTRACT = {"LinearReference"}  # bases that define no process of their own


def _all_bridge_classes():
    for info in pkgutil.walk_packages(lsbcore.__path__, "lsbcore."):
        importlib.import_module(info.name)
    seen, todo = {}, [Bridge]
    while todo:
        for sub in todo.pop().__subclasses__():
            if sub.__module__.startswith("lsbcore.") and sub.__name__ not in seen:
                seen[sub.__name__] = sub
            todo.append(sub)
    return dict(sorted(seen.items()))


CLASSES = _all_bridge_classes()


def _points(n, dim, dtype, seed=0):
    return torch.randn(n, dim, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def _net(dim, seed=0, dtype=torch.float32):
    torch.manual_seed(seed)
    return TimeMLP(dim, width=16, depth=2).to(dtype)


# ----------------------------------------------------------------------------- one factory per class
def _gaussian(dtype):
    return lsbcore.GaussianBridge([0.0, 1.0], [[1.0, 0.3], [0.3, 0.5]], [2.0, -1.0], [[0.7, 0.0], [0.0, 1.5]], 0.8)


def _grid(dtype):
    grid = lsbcore.Grid(-4.0, 4.0, 64)
    return lsbcore.fortet(lsbcore.Gaussian([-1.0], 0.5), lsbcore.Gaussian([1.0], 0.3), 0.7, grid)


def _matched(dtype):
    from lsbcore.bridges.matching import MatchedBridge

    return MatchedBridge(_net(2, 0, dtype), 0.5, _net(2, 1, dtype))


def _matched_forward_only(dtype):
    from lsbcore.bridges.matching import MatchedBridge

    return MatchedBridge(_net(2, 0, dtype), 0.5)


def _follmer_mc(dtype):
    from lsbcore.bridges.follmer import FollmerMC

    return FollmerMC(lsbcore.Gaussian([1.0, -1.0], 0.5), 1.0, n_mc=64)


def _empirical_follmer(dtype):
    from lsbcore.bridges.follmer import EmpiricalFollmer

    return EmpiricalFollmer(_points(30, 2, torch.float64, 3), 0.7)


def _smoothed_follmer(dtype):
    from lsbcore.bridges.heat import SmoothedFollmer

    return SmoothedFollmer(_points(30, 2, torch.float64, 3), 0.7)


def _heat_flow(dtype):
    from lsbcore.bridges.heat import HeatFlowBridge

    return HeatFlowBridge(_points(30, 2, torch.float64, 3), 0.7)


def _vsdm(dtype):
    from lsbcore.bridges.vsdm import VSDM, LinearForward

    torch.manual_seed(0)
    return VSDM(LinearForward(2), _net(2, 0, dtype))


def _sbvae(dtype):
    from lsbcore.bridges.sbvae import SBVAEBridge, LinearEncoder

    return SBVAEBridge(LinearEncoder(2, c=-0.5), _net(2, 0, dtype))


def _learned_follmer(dtype):
    from lsbcore.bridges.densities import NealsFunnel
    from lsbcore.bridges.follmer_learned import LearnedFollmer

    return LearnedFollmer(_net(2, 0, dtype), 1.0, log_density=NealsFunnel(2))


FACTORIES = {
    "GaussianBridge": (_gaussian, (torch.float64, torch.float32)),
    "GridBridge": (_grid, (torch.float64, torch.float32)),
    "Brownian": (lambda dt: lsbcore.Brownian(0.7), (torch.float64, torch.float32)),
    "OU": (lambda dt: lsbcore.OU(-1.0, 0.8), (torch.float64, torch.float32)),
    "VP": (lambda dt: lsbcore.VP(), (torch.float64, torch.float32)),
    "BrownianBridge": (lambda dt: lsbcore.BrownianBridge([1.0, 2.0], 0.6, x0=[0.0, -1.0]), (torch.float64, torch.float32)),
    "MatchedBridge": (_matched, (torch.float32, torch.float64)),
    "FollmerMC": (_follmer_mc, (torch.float64, torch.float32)),
    "LearnedFollmer": (_learned_follmer, (torch.float64, torch.float32)),
    "EmpiricalFollmer": (_empirical_follmer, (torch.float64, torch.float32)),
    "SmoothedFollmer": (_smoothed_follmer, (torch.float64, torch.float32)),
    "HeatFlowBridge": (_heat_flow, (torch.float64, torch.float32)),
    "VSDM": (_vsdm, (torch.float32,)),
    "SBVAEBridge": (_sbvae, (torch.float32,)),
}
#: more instances of the same classes, in configurations where part of the face is missing
VARIANTS = {
    "BrownianBridge (no x0)": (lambda dt: lsbcore.BrownianBridge([1.0, 2.0], 0.6), (torch.float64,)),
    "MatchedBridge (forward only)": (_matched_forward_only, (torch.float32,)),
}
CASES = [(name, fac, dt) for name, (fac, dts) in {**FACTORIES, **VARIANTS}.items() for dt in dts]
ID = [f"{name}-{str(dt)[6:]}" for name, _, dt in CASES]


def _dim(bridge):
    return bridge.dim if bridge.dim is not None else 2


def test_every_bridge_class_has_a_factory():
    missing = sorted(set(CLASSES) - set(FACTORIES) - ABSTRACT)
    assert not missing, f"add a factory to tests/test_bridge_face.py for: {missing}"
    assert len(CLASSES) >= 13
    for name, cls in CLASSES.items():
        assert cls.__module__.startswith(("lsbcore.bridges.", "lsbcore.schrodinger.")), \
            f"{name} lives in {cls.__module__}: every bridge lives in bridges/ (or beside its solver)"


def test_face_module_imports_only_utils():
    import ast
    import inspect

    import lsbcore.bridge as face

    tree = ast.parse(inspect.getsource(face))
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.level > 0}
    assert imported <= {"utils"}, imported


@pytest.mark.parametrize("name,factory,dtype", CASES, ids=ID)
def test_face_shapes_dtypes_and_unavailable_parts(name, factory, dtype):
    bridge = factory(dtype)
    dim = _dim(bridge)
    x = _points(7, dim, dtype, 1)
    for t in (0.3, torch.full((7, 1), 0.6, dtype=dtype), torch.tensor(0.45, dtype=dtype).view(1, 1).expand(7, 1)):
        for method in ("drift", "backward_drift", "score", "velocity"):
            if bridge.provides(method):
                out = getattr(bridge, method)(x, t)
                assert out.shape == x.shape, (method, out.shape)
                assert out.dtype == dtype and out.device == x.device, method
                assert torch.isfinite(out).all(), method
            else:
                with pytest.raises(MethodUnavailable, match=type(bridge).__name__):
                    getattr(bridge, method)(x, t)


@pytest.mark.parametrize("name,factory,dtype", CASES, ids=ID)
def test_face_defaults_agree(name, factory, dtype):
    """Nelson's relation and the velocity, wherever the bridge gives enough of the face to check them."""
    bridge = factory(dtype)
    x = _points(9, _dim(bridge), dtype, 2)
    tol = dict(rtol=1e-4, atol=1e-4) if dtype == torch.float32 else dict(rtol=1e-7, atol=1e-8)
    for t in (0.25, 0.7):
        tt = torch.full((9, 1), t, dtype=dtype)
        if all(bridge.provides(m) for m in ("drift", "backward_drift", "score")):
            g2 = torch.as_tensor(bridge.diffusion(tt), dtype=dtype) ** 2
            torch.testing.assert_close(bridge.drift(x, tt) + bridge.backward_drift(x, tt),
                                       g2 * bridge.score(x, tt), **tol)
        if bridge.provides("drift") and bridge.provides("backward_drift") and bridge.provides("velocity"):
            torch.testing.assert_close(bridge.velocity(x, tt),
                                       0.5 * (bridge.drift(x, tt) - bridge.backward_drift(x, tt)), **tol)


@pytest.mark.parametrize("name,factory,dtype", CASES, ids=ID)
def test_sampler_runs_on_every_bridge(name, factory, dtype):
    bridge = factory(dtype)
    dim = _dim(bridge)
    if bridge.provides("start"):
        x = bridge.start(11, seed=0)
        assert x.shape == (11, dim) and torch.isfinite(x).all()
        x = x.to(dtype)
    else:
        with pytest.raises(MethodUnavailable, match="start"):
            bridge.start(11, seed=0)
        x = _points(11, dim, dtype, 4)
    # stay away from the ends, where some closed-form drifts are singular
    for method, need in (("sde", "drift"), ("ode", "velocity")):
        if bridge.provides(need):
            res = sample(bridge, x, method=method, steps=8, t0=0.05, t1=0.95, seed=0)
            assert res.x.shape == x.shape and res.x.dtype == dtype
        else:
            with pytest.raises(MethodUnavailable, match=type(bridge).__name__):
                sample(bridge, x, method=method, steps=8, t0=0.05, t1=0.95)
    back = "backward_drift"
    if bridge.provides(back):
        res = sample(bridge, x, method="sde", steps=8, t0=0.05, t1=0.95, direction="backward", seed=0)
        assert res.x.shape == x.shape
    assert bridge.data_end in (0, 1)


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_generate_goes_towards_the_data(name):
    factory, dtypes = FACTORIES[name]
    bridge = factory(dtypes[0])
    if not bridge.provides("start"):
        pytest.skip(f"{name} has no start law")
    need = "drift" if bridge.data_end == 1 else "backward_drift"
    if not bridge.provides(need):
        pytest.skip(f"{name} cannot run towards its data end")
    res = generate(bridge, 16, steps=10, t_gap=0.02, seed=3, keep_traj=True)
    assert res.x.shape == (16, _dim(bridge)) and torch.isfinite(res.x).all()
    end = float(res.times[-1])
    assert math.isclose(end, 0.98 if bridge.data_end == 1 else 0.02, abs_tol=1e-6)
    again = generate(bridge, 16, steps=10, t_gap=0.02, seed=3)
    torch.testing.assert_close(res.x, again.x, rtol=0, atol=0)


def test_provides_rejects_unknown_names():
    with pytest.raises(ValueError, match="name"):
        lsbcore.Brownian(1.0).provides("curvature")
    assert set(FACE) == {"drift", "backward_drift", "score", "velocity", "start"}


class _ScoreOnly(Bridge):
    """A test bridge given by its drift and score only: the face derives the rest."""

    sigma = 0.7

    def drift(self, x, t):
        return -x

    def score(self, x, t):
        return -2 * x


def test_defaults_follow_from_two_parts():
    b = _ScoreOnly()
    x = _points(5, 3, torch.float64)
    torch.testing.assert_close(b.backward_drift(x, 0.4), 0.49 * (-2 * x) + x)
    torch.testing.assert_close(b.velocity(x, 0.4), -x - 0.5 * 0.49 * (-2 * x))
    with pytest.raises(MethodUnavailable, match="_ScoreOnly has no start law"):
        b.start(3)


def test_a_bare_bridge_says_what_is_missing():
    with pytest.raises(MethodUnavailable, match="Bridge has no forward drift"):
        Bridge().drift(_points(2, 1, torch.float64), 0.5)
    with pytest.raises(NotImplementedError):  # MethodUnavailable is a NotImplementedError
        Bridge().velocity(_points(2, 1, torch.float64), 0.5)
