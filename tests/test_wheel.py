"""lsbcore as a student installs it (`pip install` from a URL, as Colab and Binder do): build a wheel,
install it non-editable in a fresh virtual environment, and run Notebook 03 in fast mode from a folder
that is not the checkout. The shipped checkpoints must come from the installed package (package data
of ``lsbcore.data``), not from this checkout's ``data/``.

The fresh environment downloads nothing: the wheel is installed with ``--no-deps --no-index``, and a
``.pth`` file written after it lets the environment import torch, Jupyter and the rest from the
interpreter running the tests (appended to ``sys.path``, so the new environment's own lsbcore wins).
About a minute on a 2-core CPU (the wheel ~10 s, the notebook in fast mode the rest).
"""
import json
import os
import shutil
import site
import subprocess
import sys
import sysconfig
import textwrap
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = "03_latent_sb"
pytestmark = pytest.mark.slow  # not skipped by `make test`: marked only so that `-m "not slow"` can leave it out


def _run(cmd, **kw):
    """Run ``cmd``; on failure show its output (the assertion message is all a CI log keeps)."""
    res = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
    assert res.returncode == 0, f"{' '.join(map(str, cmd))} failed ({res.returncode}):\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    return res


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """A wheel built from a copy of the sources (the build writes build/ and *.egg-info beside them)."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    skip = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build")
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        if (ROOT / name).is_file():
            shutil.copy(ROOT / name, src / name)
    for name in ("lsbcore", "data"):
        shutil.copytree(ROOT / name, src / name, ignore=skip)
    # an absolute path: pip reads a bare word ("src") as a package name to fetch from an index
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "--no-index",
          "-w", tmp / "dist", src.resolve()])
    (whl,) = (tmp / "dist").glob("lsbcore-*.whl")
    return whl


def test_wheel_ships_the_checkpoints_and_every_module(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    manifest = json.loads((ROOT / "data" / "MANIFEST.json").read_text())
    for f in [*manifest, "MANIFEST.json", "README.md"]:
        assert f"lsbcore/data/{f}" in names, f"{f} is missing from the wheel's lsbcore/data/"
    assert not any(n.startswith("data/") for n in names), "data/ must be installed inside lsbcore/, not beside it"
    modules = {p.relative_to(ROOT).as_posix() for p in (ROOT / "lsbcore").rglob("*.py")
               if "__pycache__" not in p.parts}
    assert modules <= names, f"modules missing from the wheel: {sorted(modules - names)}"


@pytest.fixture(scope="module")
def fresh_venv(wheel, tmp_path_factory):
    """A new virtual environment with the wheel installed non-editable, seeing this interpreter's
    packages (torch, Jupyter, ...) through a .pth file written after the install."""
    venv = tmp_path_factory.mktemp("venv") / "env"
    _run([sys.executable, "-m", "venv", "--without-pip", venv])
    py = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    # pip of this interpreter installs into the new one (pip ≥ 22.3); nothing is fetched
    _run([sys.executable, "-m", "pip", "--python", py, "install", "-q", "--no-deps", "--no-index", wheel])
    purelib = Path(_run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip())
    ours = [p for p in [*site.getsitepackages(), sysconfig.get_paths()["purelib"]] if Path(p).is_dir()]
    (purelib / "_lsbcore_test_deps.pth").write_text("\n".join(dict.fromkeys(ours)) + "\n")
    kernels = venv / "share" / "jupyter" / "kernels" / "python3"
    kernels.mkdir(parents=True)
    (kernels / "kernel.json").write_text(json.dumps({
        "argv": [str(py), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (wheel test)", "language": "python"}))
    return venv, py, purelib


def _env(venv: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env.update(LSB_FAST="1", OMP_NUM_THREADS="1", JUPYTER_PATH=str(venv / "share" / "jupyter"),
               PIP_NO_INDEX="1", MPLBACKEND="Agg")
    return env


def test_notebook_03_runs_from_the_wheel_in_another_folder(fresh_venv, tmp_path):
    """Notebook 03 (the committed .ipynb a student opens) executes top to bottom in fast mode, in a
    folder with no checkout, in a kernel of the new environment, reading the wheel's checkpoints
    (every one of them verified against the installed manifest)."""
    venv, py, purelib = fresh_venv
    src = ROOT / "notebooks" / f"{NOTEBOOK}.ipynb"
    if not src.is_file():  # before `make pair` has written it: the jupytext source
        src = ROOT / "notebooks" / f"{NOTEBOOK}.py"
    script = textwrap.dedent(f"""
        import json, sys
        import jupytext
        from nbclient import NotebookClient
        from nbclient.exceptions import CellTimeoutError
        from nbformat.v4 import new_code_cell
        nb = jupytext.read({str(src)!r})
        nb.cells.append(new_code_cell(
            "import json, sys, lsbcore, lsbcore.shipped as S\\n"
            "ok = [S.verify_file(S.DATA_DIR / n).name for n in json.loads((S.DATA_DIR / S.MANIFEST_NAME).read_text())]\\n"
            "print('WHERE', json.dumps([sys.executable, lsbcore.__file__, str(S.DATA_DIR), ok]))"))
        for attempt in (1, 2):  # a kernel reply lost over loopback (seen here) gets one fresh kernel
            try:
                NotebookClient(nb, timeout=180, startup_timeout=120, kernel_name="python3",
                               resources={{"metadata": {{"path": "."}}}}).execute()
                break
            except CellTimeoutError:
                if attempt == 2:
                    raise
        out = "".join(o.get("text", "") for o in nb.cells[-1].outputs)
        print(out.strip().splitlines()[-1])
    """)
    res = _run([py, "-c", script], cwd=tmp_path, env=_env(venv), timeout=600)
    exe, file, data, verified = json.loads(res.stdout.strip().splitlines()[-1].split("WHERE", 1)[1])
    assert Path(exe).parent == py.parent, f"the kernel ran {exe}, not the new environment's python"
    assert Path(file).is_relative_to(purelib), f"the notebook imported lsbcore from {file}"
    assert Path(data) == purelib / "lsbcore" / "data", f"the notebook read checkpoints from {data}"
    assert sorted(verified) == sorted(json.loads((ROOT / "data" / "MANIFEST.json").read_text()))
    assert not (tmp_path / "lsbcore").exists() and not (tmp_path / "data").exists()
