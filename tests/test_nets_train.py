"""TimeMLP shapes/validation and the training loop: EMA, checkpoints, bit-exact resume."""
import math
from pathlib import Path

import pytest
import torch

from lsbcore.nets import FourierTime, TimeMLP
from lsbcore.train import History, TimeLimitReached, ema_update, fit, load_checkpoint, save_checkpoint
from lsbcore.utils import ChecksumError


# ---------------------------------------------------------------------------------- nets
@pytest.mark.parametrize("t", [0.3, torch.tensor(0.3), torch.full((7,), 0.3), torch.full((7, 1), 0.3),
                               torch.full((1, 1), 0.3)])
def test_timemlp_time_forms_agree(t):
    net = TimeMLP(3, width=16, depth=2)
    x = torch.randn(7, 3, generator=torch.Generator().manual_seed(0))
    ref = net(x, torch.full((7, 1), 0.3))
    assert net(x, t).shape == (7, 3)
    torch.testing.assert_close(net(x, t), ref)


def test_timemlp_seed_fixes_init_and_leaves_global_rng():
    state = torch.get_rng_state()
    a, b, c = TimeMLP(2, seed=1), TimeMLP(2, seed=1), TimeMLP(2, seed=2)
    assert torch.equal(torch.get_rng_state(), state)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not all(torch.equal(p, q) for p, q in zip(a.parameters(), c.parameters()))


def test_timemlp_out_dim_and_features():
    net = TimeMLP(2, width=8, depth=1, out_dim=5, n_freq=3)
    assert net(torch.zeros(4, 2), 0.0).shape == (4, 5)
    feats = FourierTime(2)(torch.tensor([[0.5]]))
    torch.testing.assert_close(feats, torch.tensor([[0.5, math.sin(math.pi / 2), math.sin(math.pi),
                                                     math.cos(math.pi / 2), math.cos(math.pi)]]))


@pytest.mark.parametrize("x,t,err", [
    (torch.zeros(4, 3), 0.5, ValueError),              # wrong dim
    (torch.zeros(4), 0.5, ValueError),                 # not (batch, dim)
    ([[0.0, 0.0]], 0.5, TypeError),                    # not a tensor
    (torch.zeros(4, 2), 1.5, ValueError),              # t outside [0, 1]
    (torch.zeros(4, 2), torch.full((4, 1), 1.5), ValueError),  # ... also as an already-shaped column
    (torch.zeros(4, 2), torch.full((4,), -0.5), ValueError),
    (torch.zeros(4, 2), float("nan"), ValueError),     # NaN time
    (torch.zeros(4, 2), torch.full((3, 1), 0.5), ValueError),  # wrong number of rows
    (torch.zeros(4, 2), "0.5", TypeError),
])
def test_timemlp_bad_inputs(x, t, err):
    with pytest.raises(err):
        TimeMLP(2, width=8)(x, t)


@pytest.mark.parametrize("kw", [dict(dim=0), dict(dim=2, width=0), dict(dim=2, depth=1.5)])
def test_timemlp_bad_construction(kw):
    with pytest.raises((ValueError, TypeError)):
        TimeMLP(**kw)


# ---------------------------------------------------------------------------------- training
def _regression_problem():
    """Fit y = A x + 0.1 sin(3t) with fresh random batches drawn from the fit generator."""
    A = torch.tensor([[1.0, -2.0], [0.5, 3.0]])

    def loss_fn(model, step, gen):
        x = torch.randn(32, 2, generator=gen)
        t = torch.rand(32, 1, generator=gen)
        y = x @ A.T + 0.1 * torch.sin(3 * t)
        return ((model(x, t) - y) ** 2).sum(-1).mean()

    return loss_fn


def test_fit_learns_and_is_reproducible():
    loss_fn = _regression_problem()
    h1 = fit(TimeMLP(2, width=32, depth=2), loss_fn, 300, lr=3e-3, seed=0, progress=False)
    h2 = fit(TimeMLP(2, width=32, depth=2), loss_fn, 300, lr=3e-3, seed=0, progress=False)
    assert isinstance(h1, History) and h1.steps == 300 and h1.start_step == 0
    assert h1.losses == h2.losses
    # E‖Ax‖² = ‖A‖_F² ≈ 14.25 at the start; a fitted net should be far below it
    assert sum(h1.losses[:10]) / 10 > 5.0 and sum(h1.losses[-20:]) / 20 < 0.5


@pytest.mark.parametrize("schedule", ["constant", "cosine"])
def test_resume_is_bit_exact(tmp_path, schedule):
    """An interrupted run (crash at step 70, checkpoints every 25) resumed = uninterrupted run."""
    base = _regression_problem()
    steps, kw = 120, dict(lr=3e-3, seed=3, ema=0.9, progress=False, schedule=schedule)
    ref_model = TimeMLP(2, width=16, depth=2)
    ref = fit(ref_model, base, steps, **kw)

    class Crash(Exception):
        pass

    def crashing(model, step, gen):
        if step == 70:
            raise Crash
        return base(model, step, gen)

    ckpt = tmp_path / "run.pt"
    with pytest.raises(Crash):
        fit(TimeMLP(2, width=16, depth=2), crashing, steps, checkpoint=ckpt, checkpoint_every=25, **kw)
    assert load_checkpoint(ckpt)["step"] == 50
    # a fresh process would build a fresh model (another init, to show everything is restored)
    model = TimeMLP(2, width=16, depth=2, seed=99)
    out = fit(model, base, steps, checkpoint=ckpt, checkpoint_every=25, **kw)
    assert out.start_step == 50
    assert out.losses == ref.losses
    for p, q in zip(model.parameters(), ref_model.parameters()):
        assert torch.equal(p, q)
    for p, q in zip(out.ema.parameters(), ref.ema.parameters()):
        assert torch.equal(p, q)
    assert load_checkpoint(ckpt)["step"] == steps
    # resuming a finished run does nothing and returns the stored history
    again = fit(TimeMLP(2, width=16, depth=2), base, steps, checkpoint=ckpt, **kw)
    assert again.start_step == steps and again.losses == ref.losses


def test_checkpoint_is_weights_only_and_plain(tmp_path):
    ckpt = tmp_path / "c.pt"
    fit(TimeMLP(2, width=8, depth=1), _regression_problem(), 5, seed=0, checkpoint=ckpt, progress=False)
    state = torch.load(ckpt, weights_only=True)
    assert state["format"] == "lsbcore-fit-v2" and state["step"] == 5 and len(state["sha256"]) == 64
    assert state["generator"].dtype == torch.uint8 and state["losses"].shape == (5,)
    assert not (tmp_path / "c.pt.tmp").exists()   # the atomic write cleaned up


def test_corrupt_and_foreign_checkpoints(tmp_path):
    ckpt = tmp_path / "c.pt"
    fit(TimeMLP(2, width=8, depth=1), _regression_problem(), 5, seed=0, checkpoint=ckpt, progress=False)
    raw = ckpt.read_bytes()
    ckpt.write_bytes(raw[: len(raw) // 2])            # truncated (a crash mid-copy)
    with pytest.raises(ValueError, match="corrupt"):
        load_checkpoint(ckpt)
    with pytest.raises(ValueError, match="corrupt"):
        fit(TimeMLP(2, width=8, depth=1), _regression_problem(), 10, seed=0, checkpoint=ckpt, progress=False)
    # a pickle of an arbitrary object is refused by weights_only
    torch.save({"x": History()}, ckpt)
    with pytest.raises(ValueError, match="corrupt"):
        load_checkpoint(ckpt)
    # a valid file that is not ours
    save_checkpoint({"hello": torch.zeros(1)}, ckpt)
    with pytest.raises(ValueError, match="not an lsbcore"):
        fit(TimeMLP(2, width=8, depth=1), _regression_problem(), 10, seed=0, checkpoint=ckpt, progress=False)
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "missing.pt")


def _tensor_data_offset(path) -> int:
    """Byte offset in the file of the largest tensor's data (torch stores each storage uncompressed)."""
    import struct
    import zipfile

    info = max((i for i in zipfile.ZipFile(path).infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
    raw = Path(path).read_bytes()
    name_len, extra_len = struct.unpack("<HH", raw[info.header_offset + 26: info.header_offset + 30])
    return info.header_offset + 30 + name_len + extra_len


def test_a_flipped_byte_inside_a_tensor_is_caught(tmp_path):
    """torch.load itself reads such a file silently; the stored content digest catches it, on load and on resume."""
    ckpt = tmp_path / "c.pt"
    fit(TimeMLP(2, width=8, depth=1), _regression_problem(), 5, seed=0, checkpoint=ckpt, progress=False)
    raw = bytearray(ckpt.read_bytes())
    raw[_tensor_data_offset(ckpt) + 7] ^= 0x10
    ckpt.write_bytes(bytes(raw))
    torch.load(ckpt, weights_only=True)   # no error from torch: this is what the digest is for
    with pytest.raises(ChecksumError, match="c.pt"):
        load_checkpoint(ckpt)
    with pytest.raises(ChecksumError, match="corrupt or was modified"):
        fit(TimeMLP(2, width=8, depth=1), _regression_problem(), 10, seed=0, checkpoint=ckpt, progress=False)


@pytest.mark.parametrize("keep", [0, 10, 100, 1000])
def test_a_truncated_checkpoint_is_a_clear_value_error(tmp_path, keep):
    ckpt = tmp_path / "c.pt"
    fit(TimeMLP(2, width=8, depth=1), _regression_problem(), 5, seed=0, checkpoint=ckpt, progress=False)
    ckpt.write_bytes(ckpt.read_bytes()[:keep])
    with pytest.raises(ValueError, match="c.pt.*corrupt"):
        load_checkpoint(ckpt)


def test_a_checkpoint_without_digest_is_refused(tmp_path):
    ckpt = tmp_path / "c.pt"
    save_checkpoint({"step": 1, "w": torch.ones(3)}, ckpt)
    assert sorted(load_checkpoint(ckpt)) == ["step", "w"]   # the digest is checked and dropped
    save_checkpoint({"step": 1, "w": torch.ones(3)}, ckpt, digest=False)
    with pytest.raises(ChecksumError, match="no sha256 digest"):
        load_checkpoint(ckpt)
    from lsbcore.checkpoint import sha256_file

    assert load_checkpoint(ckpt, sha256=sha256_file(ckpt))["step"] == 1   # a manifest's sum vouches for it
    with pytest.raises(ValueError, match="sha256"):
        save_checkpoint({"sha256": "x"}, ckpt)


def test_resume_mismatch_errors(tmp_path):
    ckpt = tmp_path / "c.pt"
    fit(TimeMLP(2, width=8, depth=1), _regression_problem(), 5, seed=0, checkpoint=ckpt, progress=False)
    with pytest.raises(ValueError, match="seed"):
        fit(TimeMLP(2, width=8, depth=1), _regression_problem(), 10, seed=1, checkpoint=ckpt, progress=False)
    with pytest.raises(ValueError, match="does not fit"):
        fit(TimeMLP(2, width=9, depth=1), _regression_problem(), 10, seed=0, checkpoint=ckpt, progress=False)
    with pytest.raises(ValueError, match="beyond"):
        fit(TimeMLP(2, width=8, depth=1), _regression_problem(), 3, seed=0, checkpoint=ckpt, progress=False)
    # resume=False starts over and overwrites
    h = fit(TimeMLP(2, width=8, depth=1), _regression_problem(), 3, seed=0, checkpoint=ckpt,
            resume=False, progress=False)
    assert h.start_step == 0 and load_checkpoint(ckpt)["step"] == 3


def test_ema_update_formula():
    a, b = TimeMLP(2, width=4, depth=1, seed=0), TimeMLP(2, width=4, depth=1, seed=1)
    expected = [0.9 * p + 0.1 * q for p, q in zip(a.parameters(), b.parameters())]
    ema_update(a, b, 0.9)
    for p, e in zip(a.parameters(), expected):
        torch.testing.assert_close(p, e)


def test_nan_loss_is_loud():
    def loss_fn(model, step, gen):
        out = model(torch.zeros(4, 2), 0.5).sum()
        return out * float("nan") if step >= 3 else out ** 2

    with pytest.raises(FloatingPointError, match="step 3"):
        fit(TimeMLP(2, width=4, depth=1), loss_fn, 10, seed=0, progress=False, log_every=5)


@pytest.mark.parametrize("kw,err", [
    (dict(steps=-1), ValueError), (dict(lr=0.0), ValueError), (dict(ema=1.0), ValueError),
    (dict(seed=torch.Generator()), TypeError), (dict(checkpoint_every=0), ValueError),
    (dict(grad_clip=-1.0), ValueError), (dict(lr=float("nan")), ValueError),
    (dict(schedule="linear"), ValueError), (dict(amp="fp16"), ValueError),
    (dict(deadline=0.0), ValueError),                      # a deadline needs a checkpoint to save into
])
def test_fit_bad_arguments(kw, err):
    args = dict(steps=2, lr=1e-3, seed=0, progress=False)
    args.update(kw)
    with pytest.raises(err):
        fit(TimeMLP(2, width=4, depth=1), _regression_problem(), **args)


def test_loss_fn_must_return_a_differentiable_scalar():
    with pytest.raises(ValueError, match="scalar"):
        fit(TimeMLP(2, width=4, depth=1), lambda m, s, gen: m(torch.zeros(3, 2), 0.0), 2, progress=False)
    with pytest.raises(ValueError, match="gradient"):
        fit(TimeMLP(2, width=4, depth=1), lambda m, s, gen: torch.zeros(()), 2, progress=False)
    with pytest.raises(TypeError):
        fit(torch.zeros(3), _regression_problem(), 2, progress=False)


def test_cosine_schedule_learning_rates(monkeypatch):
    """The lr used at step k is lr · ½(1 + cos(π k / steps)) (recorded by a spy optimizer)."""
    seen = []

    class Spy(torch.optim.Adam):
        def step(self, *a, **k):
            seen.append(self.param_groups[0]["lr"])
            return super().step(*a, **k)

    monkeypatch.setattr(torch.optim, "Adam", Spy)
    loss_fn = lambda model, step, gen: (model(torch.zeros(2, 2), 0.5) ** 2).sum()
    fit(TimeMLP(2, width=4, depth=1), loss_fn, 4, lr=1.0, seed=0, schedule="cosine", progress=False)
    assert seen == pytest.approx([0.5 * (1 + math.cos(math.pi * k / 4)) for k in range(4)])


# ---------------------------------------------------------------------------------- devices, DDP, time limits
@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU refusal")
def test_bf16_autocast_is_refused_off_cuda():
    with pytest.raises(ValueError, match="CUDA"):
        fit(TimeMLP(2, width=4, depth=1), _regression_problem(), 2, amp="bf16", progress=False)


def test_ddp_without_a_process_group_changes_nothing():
    """``ddp=True`` in one process (no torchrun) is the plain loop, bit for bit."""
    loss_fn = _regression_problem()
    a = fit(TimeMLP(2, width=16, depth=2), loss_fn, 40, seed=1, progress=False)
    b = fit(TimeMLP(2, width=16, depth=2), loss_fn, 40, seed=1, progress=False, ddp=True)
    assert a.losses == b.losses


def test_a_deadline_stops_at_a_checkpoint_and_the_run_resumes_bit_exactly(tmp_path):
    """A passed deadline stops at the next checkpoint boundary (every 25 steps here) with the state
    saved; calling again continues, and three stops later the run equals an uninterrupted one."""
    loss_fn, kw = _regression_problem(), dict(lr=3e-3, seed=5, ema=0.9, progress=False, checkpoint_every=25)
    ref_model = TimeMLP(2, width=16, depth=2)
    ref = fit(ref_model, loss_fn, 100, **kw)
    ckpt, stops = tmp_path / "run.pt", []
    while True:
        try:
            out = fit(TimeMLP(2, width=16, depth=2), loss_fn, 100, checkpoint=ckpt, deadline=0.0, **kw)
            break
        except TimeLimitReached as err:
            stops.append(err.step)
            assert load_checkpoint(ckpt)["step"] == err.step
    assert stops == [25, 50, 75]                  # never at the last step: a finished run is not "stopped"
    assert out.start_step == 75 and out.losses == ref.losses
    for p, q in zip(out.ema.parameters(), ref.ema.parameters()):
        assert torch.equal(p, q)
