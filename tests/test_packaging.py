"""The install promises: the two environment descriptions (pyproject.toml for pip, environment.yml for
conda) agree and conda-forge alone can solve the conda one; Python 3.10-3.13 (tomllib is 3.11+: 3.10
reads TOML with tomli); every package is in the wheel's list; the LICENSE and CITATION.cff match
pyproject; the notebooks are committed as jupytext pairs; Binder's configuration pins a CPU torch."""
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the backport, a dependency there (pyproject.toml)
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
# conda-forge names that differ from PyPI names
CONDA_TO_PIP = {"pytorch": "torch"}
CONDA_ONLY = {"python", "pip"}


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


def _project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_environment_yml_is_conda_forge_only():
    """conda-forge alone must solve it: no package of another channel (pytorch's `cpuonly`), no
    channel but conda-forge (conda-forge's pytorch is a CPU build unless a CUDA one is asked for)."""
    text = (ROOT / "environment.yml").read_text()
    deps = [re.match(r"^  - ([A-Za-z0-9_.\-]+)", line) for line in text.split("dependencies:", 1)[1].splitlines()]
    names = {m.group(1) for m in deps if m}
    assert "cpuonly" not in names, "cpuonly is a package of the pytorch channel, not of conda-forge"
    channels = re.findall(r"^  - (\S+)", text.split("channels:", 1)[1].split("dependencies:", 1)[0], re.M)
    assert channels == ["conda-forge"], channels
    assert "python>=3.10" in text


def test_python_versions_3_10_to_3_13():
    project = _project()["project"]
    assert project["requires-python"] == ">=3.10"
    listed = {c.rsplit(" ", 1)[1] for c in project["classifiers"] if re.fullmatch(r".*:: Python :: 3\.\d+", c)}
    assert listed == {"3.10", "3.11", "3.12", "3.13"}, listed
    assert 'tomli>=2; python_version < "3.11"' in project["dependencies"]


def test_tomllib_has_a_fallback_for_python_3_10():
    """tomllib is in the standard library from 3.11 on; every import of it falls back to tomli."""
    offenders = []
    for folder in ("lsbcore", "tests", "bench", "notebooks"):
        for f in sorted((ROOT / folder).rglob("*.py")):
            text = f.read_text(encoding="utf-8")
            if re.search(r"^\s*(import tomllib|from tomllib import)", text, re.M) and "import tomli " not in text \
                    and "import tomli\n" not in text:
                offenders.append(f.relative_to(ROOT).as_posix())
    assert not offenders, (f"{offenders} import tomllib (Python 3.11+) without the 3.10 fallback: "
                           "try: import tomllib / except ModuleNotFoundError: import tomli as tomllib")


def test_every_package_is_in_the_wheel_list():
    """pyproject lists its packages (lsbcore.data is data/, outside lsbcore/): a new subpackage of
    lsbcore/ must be added there or the wheel (pip install from a URL, Colab) will lack it."""
    setuptools_cfg = _project()["tool"]["setuptools"]
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "lsbcore").rglob("__init__.py")
             if "__pycache__" not in p.parts}
    listed = set(setuptools_cfg["packages"])
    assert listed == found | {"lsbcore.data"}, (
        f"add to [tool.setuptools] packages in pyproject.toml: {sorted(found - listed)}; "
        f"remove: {sorted(listed - found - {'lsbcore.data'})}")
    assert setuptools_cfg["package-dir"] == {"lsbcore.data": "data"}
    assert {"*.pt", "*.json"} <= set(setuptools_cfg["package-data"]["lsbcore.data"])   # *.json: the manifest and vsdm_bench.json


def test_license_and_citation_match_pyproject():
    project = _project()["project"]
    assert project["license"] == {"text": "MIT"}
    lic = (ROOT / "LICENSE").read_text()
    assert lic.startswith("MIT License") and "Copyright (c) 2026 The lsbcore developers" in lic
    assert "WITHOUT WARRANTY OF ANY KIND" in lic
    yaml = pytest.importorskip("yaml")  # PyYAML comes with Jupyter (jupyter_events)
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert cff["cff-version"] == "1.2.0" and cff["license"] == "MIT" and cff["version"] == project["version"]
    assert cff["title"].startswith("lsbcore")
    papers = {ref["identifiers"][0]["value"]: ref for ref in cff["references"]}
    # the three papers the notebooks teach (docs/theory.md): LSB, SB as a VAE, VSDM
    assert set(papers) == {"arXiv:2404.13309", "arXiv:2412.18237", "arXiv:2405.04795"}, sorted(papers)
    for ref in cff["references"]:
        assert ref["type"] == "article" and ref["authors"] and ref["year"] == 2024, ref["title"]
        assert ref["url"] == f"https://arxiv.org/abs/{ref['identifiers'][0]['value'].split(':', 1)[1]}"


def test_notebook_pairs_are_not_ignored_by_git():
    """The .ipynb of each pair is committed (Colab, Binder and a hosting site open it), so git must
    not ignore it; tests/test_pairs.py checks that each one matches its .py."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    for src in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.py")):
        ipynb = src.with_suffix(".ipynb").relative_to(ROOT).as_posix()
        ignored = subprocess.run(["git", "check-ignore", "-q", "--no-index", ipynb], cwd=ROOT)
        assert ignored.returncode == 1, f"{ipynb} is ignored by git (.gitignore): it must be committed"


def test_binder_pins_a_cpu_torch_and_the_widgets():
    """binder/ (repo2docker): a CPU torch, JupyterLab's widgets extension, then lsbcore itself. Binder
    itself cannot be run here: this checks what the files say."""
    reqs = [line.strip() for line in (ROOT / "binder" / "requirements.txt").read_text().splitlines()
            if line.strip() and not line.lstrip().startswith("#")]
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in reqs
    assert "torch==2.13.0+cpu" in reqs  # the local label: PyPI's plain 2.13.0 is the CUDA build
    assert any(r.startswith("jupyterlab_widgets") for r in reqs) and any(r.startswith("ipywidgets") for r in reqs)
    from packaging.requirements import Requirement

    for r in reqs:
        if not r.startswith("-"):
            Requirement(r)  # each line parses as a requirement
    post = (ROOT / "binder" / "postBuild").read_text()
    assert post.startswith("#!/bin/bash") and "pip install" in post and "--no-deps" not in post.split("pip install", 1)[0]
    res = subprocess.run(["bash", "-n", str(ROOT / "binder" / "postBuild")], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert (ROOT / "binder" / "runtime.txt").read_text().strip() == "python-3.11"
