"""`python -m lsbcore train`: configuration precedence and errors, the run folder, resume bit-exactness,
the latent SB end to end on the MNIST fixture (real IDX reading code), and a CUDA run where a GPU is."""
import csv
import json

import pytest
import torch

from lsbcore.__main__ import main
from lsbcore.config import ConfigError, build, dump_toml, parse_value, tomllib   # tomli on Python 3.10
from lsbcore.datasets import write_fixture
from lsbcore.experiments import BridgeMatchingConfig
from lsbcore.train import load_checkpoint

TINY_BM = ["steps=12", "batch_size=16", "width=16", "depth=1", "coupling=independent", "n_samples=40",
           "sample_steps=10", "log_every=1", "checkpoint_every=4", "progress=false"]
TIMING = {"seconds", "train_seconds"}       # wall times: the only numbers that may differ between runs


def run_main(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_usage_error(code, err, *words):
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("python -m lsbcore: error: "), err
    for w in words:
        assert w in lines[0], (w, lines[0])


def rows(path):
    with open(path / "metrics.csv", newline="") as f:
        return [r for r in csv.DictReader(f) if r["metric"] not in TIMING]


# ------------------------------------------------------------------------------ configuration
def test_precedence_defaults_file_set_device(tmp_path, capsys):
    """defaults < TOML file < --set < --device, and config.toml records the result (read back exactly)."""
    cfg_file = tmp_path / "c.toml"
    cfg_file.write_text('experiment = "bridge-matching"\nsteps = 12\nlr = 1\nsigma = 0.5\nseed = 3\n')
    out = tmp_path / "run"
    code, stdout, err = run_main(capsys, "train", "bridge-matching", "--config", cfg_file, "--out", out,
                                 "--set", *TINY_BM, "sigma=0.25", "--device", "cpu")
    assert code == 0, err
    saved = tomllib.loads((out / "config.toml").read_text())
    assert saved["experiment"] == "bridge-matching"
    assert saved["lr"] == 1.0 and isinstance(saved["lr"], float)      # from the file, int → float
    assert saved["seed"] == 3                                          # from the file
    assert saved["sigma"] == 0.25                                      # --set beats the file
    assert saved["device"] == "cpu" and saved["ema"] == 0.999          # --device; a default
    assert "sigma = 0.25" in stdout                                    # the configuration is printed
    for name in ("metrics.csv", "summary.json", "samples.png", "losses.png", "checkpoints/bridge.pt"):
        assert (out / name).is_file(), name
    losses = [r for r in rows(out) if r["metric"] == "loss"]
    assert [int(r["step"]) for r in losses] == list(range(1, 13))     # log_every=1: one row per step
    ckpt = load_checkpoint(out / "checkpoints" / "bridge.pt")
    assert ckpt["step"] == 12
    assert [float(r["value"]) for r in losses] == pytest.approx(ckpt["losses"].tolist(), rel=1e-7)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["w2"] > 0 and summary["n"] == 40


@pytest.mark.parametrize("sets, words", [
    (["nope=1"], ["unknown key 'nope'"]),
    (["step=5"], ["'step'", "steps"]),                           # a close match is suggested
    (["steps=1.5"], ["steps", "integer"]),
    (["steps=0"], ["steps", "≥ 1"]),
    (["lr=abc"], ["lr", "number"]),
    (["lr=nan"], ["lr", "finite"]),
    (["progress=maybe"], ["progress", "true or false"]),
    (["coupling=magic"], ["coupling", "sinkhorn"]),
    (["steps"], ["key=value"]),
    (["amp=bf16"], ["amp", "CUDA"]),                             # no GPU here: refused before training
    (["source=mnist"], ["toy sets"]),
    (["coupling=sinkhorn", "sigma=0"], ["sigma"]),
    (["device=tpu"], ["device"]),
], ids=lambda v: "-".join(v) if isinstance(v, list) else None)
def test_bad_keys_and_values_are_one_line(tmp_path, capsys, sets, words):
    if sets == ["amp=bf16"] and torch.cuda.is_available():
        pytest.skip("a GPU is present: bf16 is allowed")
    device = [] if any(s.startswith("device=") for s in sets) else ["--device", "cpu"]
    code, _, err = run_main(capsys, "train", "bridge-matching", "--out", tmp_path / "r", "--set", *TINY_BM, *sets,
                            *device)
    assert_usage_error(code, err, *words)
    assert not (tmp_path / "r").exists()                         # nothing was created


@pytest.mark.parametrize("text, words", [
    ("steps = 'ten'\n", ["steps", "integer"]),
    ("[section]\nx = 1\n", ["table"]),
    ('experiment = "vsdm"\n', ["vsdm"]),
    ("steps = \n", ["not valid TOML"]),
    ("bogus = 1\n", ["unknown key 'bogus'"]),
])
def test_bad_config_files(tmp_path, capsys, text, words):
    f = tmp_path / "c.toml"
    f.write_text(text)
    code, _, err = run_main(capsys, "train", "bridge-matching", "--config", f, "--out", tmp_path / "r")
    assert_usage_error(code, err, *words)


def test_command_line_errors(tmp_path, capsys):
    code, _, err = run_main(capsys, "train", "frobnicate")
    assert_usage_error(code, err, "frobnicate")
    code, _, err = run_main(capsys, "train", "vsdm", "--config", tmp_path / "missing.toml")
    assert_usage_error(code, err, "missing.toml")
    code, _, err = run_main(capsys, "train", "vsdm", "--resume")
    assert_usage_error(code, err, "--out")
    code, _, err = run_main(capsys, "train", "vsdm", "--resume", "--out", tmp_path)
    assert_usage_error(code, err, "config.toml")
    if not torch.cuda.is_available():
        code, _, err = run_main(capsys, "train", "vsdm", "--device", "cuda", "--out", tmp_path / "x")
        assert_usage_error(code, err, "device", "CUDA")
    code, _, err = run_main(capsys, "train", "latent-sb", "--set", "data=mnist", "data_dir=" + str(tmp_path / "none"),
                            "download=false", "--out", tmp_path / "y")
    assert_usage_error(code, err, "mnist", "none")                # a missing data file names its folder


def test_parse_value_and_toml_round_trip():
    assert parse_value("k", "YES", False) is True and parse_value("k", "off", True) is False
    assert parse_value("k", "-3", 0) == -3 and parse_value("k", "1e-3", 0.5) == 1e-3
    assert parse_value("k", "a b=c", "") == "a b=c"
    values = {"a": True, "b": -7, "c": 1e-300, "d": 0.1, "e": 'quote " and \\ back', "f": "ünï"}
    assert tomllib.loads(dump_toml(values, header="two\nlines")) == values
    cfg = build(BridgeMatchingConfig, "bridge-matching", table={"steps": 5}, sets=["steps=6", "lr=2"])
    assert cfg.steps == 6 and cfg.lr == 2.0
    with pytest.raises(ConfigError, match="lr"):
        build(BridgeMatchingConfig, "bridge-matching", table={"lr": "fast"})


# ------------------------------------------------------------------------------ run folder and resume
def test_a_run_folder_is_not_overwritten_and_resume_checks_the_config(tmp_path, capsys):
    out = tmp_path / "run"
    assert run_main(capsys, "train", "bridge-matching", "--out", out, "--set", *TINY_BM)[0] == 0
    code, _, err = run_main(capsys, "train", "bridge-matching", "--out", out, "--set", *TINY_BM)
    assert_usage_error(code, err, "already holds a run", "--resume")
    code, _, err = run_main(capsys, "train", "bridge-matching", "--out", out, "--resume", "--set", "lr=0.5")
    assert_usage_error(code, err, "lr")
    code, _, err = run_main(capsys, "train", "vsdm", "--out", out, "--resume")
    assert_usage_error(code, err, "bridge-matching")
    before = rows(out)
    code, _, err = run_main(capsys, "train", "bridge-matching", "--out", out, "--resume")   # finished: same numbers
    assert code == 0, err
    assert rows(out) == before


def _resume_until_done(capsys, argv, out):
    """Run with a time limit that stops at every checkpoint, then --resume until it finishes."""
    code, _, err = run_main(capsys, *argv, "--out", out, "--set", "time_limit=1e-9")
    stops = 0
    while code == 3:
        stops += 1
        assert "--resume" in err
        code, _, err = run_main(capsys, "train", argv[1], "--out", out, "--resume", "--set", "time_limit=1e-9")
        assert stops < 50
    assert code == 0, err
    return stops


def test_an_interrupted_bridge_run_resumes_bit_exactly(tmp_path, capsys):
    argv = ["train", "bridge-matching", "--set", *TINY_BM]
    assert run_main(capsys, *argv, "--out", tmp_path / "a")[0] == 0
    stops = _resume_until_done(capsys, argv, tmp_path / "b")
    assert stops == 2                                  # checkpoints at 4 and 8 of 12 steps
    assert rows(tmp_path / "a") == rows(tmp_path / "b")
    a, b = (load_checkpoint(p / "checkpoints" / "bridge.pt") for p in (tmp_path / "a", tmp_path / "b"))
    for key in ("model", "ema"):
        for name in a[key]:
            assert torch.equal(a[key][name], b[key][name]), (key, name)


@pytest.fixture(scope="module")
def mnist_fixture(tmp_path_factory):
    """A tiny MNIST in its own on-disk format (four gzipped IDX files) and its sha256 sums."""
    folder = tmp_path_factory.mktemp("mnist")
    sums = write_fixture(folder, "mnist", n_train=64, n_test=32)
    (folder / "sums.json").write_text(json.dumps(sums))
    return folder


def latent_argv(fixture):
    return ["train", "latent-sb", "--device", "cpu", "--set", "data=mnist", f"data_dir={fixture}",
            f"checksums={fixture / 'sums.json'}", "download=false", "latent_dim=4", "ae_steps=6", "classifier_steps=6",
            "bridge_steps=6", "ae_batch_size=16", "classifier_batch_size=16", "bridge_batch_size=16", "ae_width=8",
            "bridge_width=16", "sample_steps=10", "log_every=1", "checkpoint_every=3", "progress=false"]


def test_latent_sb_on_the_mnist_fixture_end_to_end_and_resumed(tmp_path, capsys, mnist_fixture):
    """data (IDX, sha256) → conv autoencoder under a shift → classifier → latent bridge → samples →
    decode → Fréchet distance; then the same run interrupted at every checkpoint gives the same numbers."""
    argv = latent_argv(mnist_fixture)
    a = tmp_path / "a"
    code, out, err = run_main(capsys, *argv, "--out", a)
    assert code == 0, err
    summary = json.loads((a / "summary.json").read_text())
    assert summary["n_samples"] == 32 and summary["latent_dim"] == 4           # n_samples = the 32 test images
    for key in ("fd", "fd_real_floor", "fd_reconstruction", "latent_w2"):
        assert summary[key] >= 0 and summary[key] == summary[key], key
    assert 0 <= summary["classifier_test_accuracy"] <= 1 and 0 <= summary["tv_classes"] <= 1
    phases = {r["phase"] for r in rows(a)}
    assert phases == {"autoencoder", "classifier", "bridge", "eval"}
    assert {p.name for p in (a / "checkpoints").iterdir()} == {"autoencoder.pt", "classifier.pt", "bridge.pt"}
    assert (a / "samples.png").is_file() and (a / "target.png").is_file()
    stops = _resume_until_done(capsys, argv, tmp_path / "b")
    assert stops == 3                                  # one stop per phase (checkpoints at 3 of 6 steps)
    assert rows(a) == rows(tmp_path / "b")


def test_a_corrupt_fixture_file_is_refused(tmp_path, capsys, mnist_fixture):
    import shutil

    folder = tmp_path / "m"
    shutil.copytree(mnist_fixture, folder)
    victim = next(p for p in folder.iterdir() if p.name.startswith("t10k-images"))
    data = bytearray(victim.read_bytes())
    data[-5] ^= 0xFF
    victim.write_bytes(bytes(data))
    argv = [a.replace(str(mnist_fixture), str(folder)) for a in latent_argv(mnist_fixture)]
    code, _, err = run_main(capsys, *argv, "--out", tmp_path / "r")
    assert_usage_error(code, err, "t10k-images")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here")
def test_latent_sb_on_cuda_with_bf16(tmp_path, capsys, mnist_fixture):
    """The pipeline on a GPU, networks under bf16 autocast: it finishes with finite metrics, and its
    FD is within a loose factor of the CPU run's (bf16 keeps ~3 significant digits)."""
    argv = latent_argv(mnist_fixture)
    argv[argv.index("cpu")] = "cuda"
    code, _, err = run_main(capsys, *argv, "amp=bf16", "--out", tmp_path / "g")
    assert code == 0, err
    summary = json.loads((tmp_path / "g" / "summary.json").read_text())
    assert all(v == v and abs(v) != float("inf") for v in summary.values())
    assert load_checkpoint(tmp_path / "g" / "checkpoints" / "bridge.pt")["step"] == 6


def test_the_latent_options_spell_the_library_names():
    """The CLI spells out the shift kinds (so building it imports no POT/sklearn): same as lsbcore.digits."""
    from lsbcore.digits import SHIFT_KINDS
    from lsbcore.experiments_latent import SHIFT_KINDS as CLI_KINDS

    assert CLI_KINDS == SHIFT_KINDS


def test_the_example_configs_are_valid():
    """Every configs/*.toml names its experiment and parses into that experiment's options."""
    from pathlib import Path

    from lsbcore.config import load_toml
    from lsbcore.experiments import EXPERIMENTS

    files = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.toml"))
    assert len(files) >= 4
    for f in files:
        table = load_toml(f)
        name = table["experiment"]
        cfg = build(EXPERIMENTS[name][0](), name, table=table, source=f.name)
        assert all(getattr(cfg, k) == v for k, v in table.items() if k != "experiment"), f.name
