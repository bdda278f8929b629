"""The two environment descriptions (pyproject.toml for pip, environment.yml for conda) agree."""
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# conda-forge names that differ from PyPI names
CONDA_TO_PIP = {"pytorch": "torch"}
CONDA_ONLY = {"python", "pip", "cpuonly"}


def _name(req: str) -> str:
    return re.split(r"[<>=!~ \[]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")


def test_environment_yml_matches_pyproject():
    py = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pip_names = {_name(r) for r in py["dependencies"] + py["optional-dependencies"]["test"]}
    conda_names = set()
    text = (ROOT / "environment.yml").read_text()
    for line in text.split("dependencies:", 1)[1].splitlines():
        m = re.match(r"^  - ([A-Za-z0-9_.\-]+)", line)
        if m:
            conda_names.add(CONDA_TO_PIP.get(m.group(1).lower(), m.group(1).lower()).replace("_", "-"))
    conda_names -= CONDA_ONLY
    assert conda_names == pip_names, (
        f"only in environment.yml: {sorted(conda_names - pip_names)}; "
        f"only in pyproject.toml: {sorted(pip_names - conda_names)}")


def test_torch_requirement_is_a_lower_bound_only():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    torch_req = [d for d in deps if _name(d) == "torch"]
    assert torch_req == ["torch>=2.2"], "torch must be a floor only, so an existing CPU/GPU torch is kept"


def test_notebook_sources_are_jupytext_percent():
    sources = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.py"))
    assert sources, "no notebooks/NN_topic.py found"
    for src in sources:
        text = src.read_text()
        assert "format_name: percent" in text, f"{src.name} is not in jupytext percent format"
        assert 'tags=["parameters"]' in text, f"{src.name} has no parameters cell"


def test_no_generated_notebook_is_committed():
    """The .py is the source; .ipynb files are generated (make lab / make test) and ignored by git."""
    import shutil
    import subprocess

    import pytest

    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    tracked = subprocess.run(["git", "ls-files", "*.ipynb"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.split()
    assert tracked == [], f"generated notebooks are committed: {tracked}"
    ignored = subprocess.run(["git", "check-ignore", "-q", "notebooks/01_schrodinger_system.ipynb"], cwd=ROOT)
    assert ignored.returncode == 0, "notebooks/*.ipynb must be ignored by git"
