"""The command line (`python -m lsbcore ...`): a bad command line is one line on stderr and exit
status 2, never a traceback; a corrupt shipped file is reported per file with exit status 1."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lsbcore.__main__ import main
from lsbcore.shipped import MANIFEST_NAME

ROOT = Path(__file__).resolve().parents[1]


def run_main(capsys, *argv):
    """main(argv) in-process; returns (exit status, stdout, stderr)."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_usage_error(code, err, *words):
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("python -m lsbcore: error: "), err
    assert "Traceback" not in err
    for w in words:
        assert w in lines[0], (w, lines[0])


@pytest.fixture
def data_dir(tmp_path):
    """A data directory with one file and a manifest that lists it correctly."""
    (tmp_path / "a.pt").write_bytes(b"some bytes")
    import hashlib

    digest = hashlib.sha256(b"some bytes").hexdigest()
    (tmp_path / MANIFEST_NAME).write_text(json.dumps({"a.pt": digest}))
    return tmp_path


def test_verify_data_ok_and_corrupt(capsys, data_dir):
    code, out, _ = run_main(capsys, "verify-data", "--data-dir", str(data_dir))
    assert code == 0 and out.startswith("ok") and "a.pt" in out
    (data_dir / "a.pt").write_bytes(b"other bytes")
    code, out, err = run_main(capsys, "verify-data", "--data-dir", str(data_dir))
    assert code == 1 and "FAILED" in out and "a.pt" in out and not err


@pytest.mark.parametrize("manifest, word", [
    (None, MANIFEST_NAME),                      # no manifest at all
    ("{not json", "JSON"),                      # not JSON
    ("[1, 2]", "sha256"),                       # JSON, but not a mapping
    ('{"a.pt": 3}', "sha256"),                  # a digest that is not a string
    ('{"../a.pt": "00"}', "outside"),          # a name that leaves the directory
], ids=["missing", "not-json", "list", "bad-digest", "escape"])
def test_verify_data_bad_manifest(capsys, data_dir, manifest, word):
    path = data_dir / MANIFEST_NAME
    if manifest is None:
        path.unlink()
    else:
        path.write_text(manifest)
    code, _, err = run_main(capsys, "verify-data", "--data-dir", str(data_dir))
    assert_usage_error(code, err, word)


def test_verify_data_missing_directory(capsys, tmp_path):
    code, _, err = run_main(capsys, "verify-data", "--data-dir", str(tmp_path / "nope"))
    assert_usage_error(code, err, "--data-dir", "nope")
    (tmp_path / "file").write_text("x")
    code, _, err = run_main(capsys, "verify-data", "--data-dir", str(tmp_path / "file"))
    assert_usage_error(code, err, "not a directory")


@pytest.mark.parametrize("steps", ["0", "-3", "ten", "1.5"])
def test_rebuild_data_rejects_bad_steps(capsys, tmp_path, steps):
    code, _, err = run_main(capsys, "rebuild-data", "--steps", steps, "--data-dir", str(tmp_path))
    assert_usage_error(code, err, "--steps")
    assert not any(tmp_path.iterdir())  # nothing was trained or written


def test_rebuild_data_rejects_an_unknown_name_and_a_missing_parent(capsys, tmp_path):
    code, _, err = run_main(capsys, "rebuild-data", "--only", "nope.pt", "--steps", "1", "--data-dir", str(tmp_path))
    assert_usage_error(code, err, "nope.pt")
    assert not any(tmp_path.iterdir())
    code, _, err = run_main(capsys, "rebuild-data", "--data-dir", str(tmp_path / "a" / "b"))
    assert_usage_error(code, err, "parent")


@pytest.mark.parametrize("argv, word", [
    ([], "command"),
    (["frobnicate"], "frobnicate"),
    (["verify-data", "--colour"], "--colour"),
    (["render"], "notebooks"),
    (["render", "no_such_notebook.py"], "no_such_notebook.py"),
    (["render", "x.py", "--cell-timeout", "0"], "--cell-timeout"),
], ids=["no-command", "unknown-command", "unknown-option", "render-nothing", "render-missing", "render-timeout"])
def test_usage_errors_are_one_line(capsys, argv, word):
    code, _, err = run_main(capsys, *argv)
    assert_usage_error(code, err, word)


def test_a_missing_directory_in_a_subprocess(tmp_path):
    """The real entry point: exit status 2 and one line on stderr, no traceback."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run([sys.executable, "-m", "lsbcore", "verify-data", "--data-dir", str(tmp_path / "nope")],
                          capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert_usage_error(proc.returncode, proc.stderr, "not a directory")
    assert proc.stdout == ""
