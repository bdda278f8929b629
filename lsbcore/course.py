"""The course's one repository URL, and the text built from it: badges and each notebook's setup cell.

A fork changes :data:`REPOSITORY` (and :data:`BRANCH`) here, runs ::

    python -c "import lsbcore.course as c; c.write_badges()"

and every notebook's "Open in Colab" / "Binder" badges and setup cell point at the fork;
``tests/test_editions.py`` fails while a notebook's badges or setup cell differ from what this module
generates. :func:`readme_badges` gives the README's badge line.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Iterable, List, Optional

#: the repository the course lives in (the only place the URL is written)
REPOSITORY = "https://github.com/lsbcore/lsbcore"
#: the branch the badges open
BRANCH = "main"
#: the torch a bare kernel without any torch gets (the Makefile's pin); a host's own torch is always kept
TORCH = "torch==2.13.0"

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
SETUP_TAG = '# %% tags=["setup"]'

_COLAB_SVG = "https://colab.research.google.com/assets/colab-badge.svg"
_BINDER_SVG = "https://mybinder.org/badge_logo.svg"


def github_slug() -> str:
    """``owner/name`` of :data:`REPOSITORY`."""
    m = re.fullmatch(r"https://github\.com/([\w.-]+/[\w.-]+?)(?:\.git)?/?", REPOSITORY)
    if m is None:
        raise ValueError(f"REPOSITORY must be https://github.com/OWNER/NAME, got {REPOSITORY!r}")
    return m.group(1)


def colab_url(stem: str) -> str:
    """Colab link that opens ``notebooks/<stem>.ipynb`` of the repository."""
    return f"https://colab.research.google.com/github/{github_slug()}/blob/{BRANCH}/notebooks/{stem}.ipynb"


def binder_url(stem: Optional[str] = None) -> str:
    """Binder link to JupyterLab on ``notebooks/<stem>.ipynb`` (on the notebooks folder when ``stem`` is None)."""
    path = f"notebooks%2F{stem}.ipynb" if stem else "notebooks"
    return f"https://mybinder.org/v2/gh/{github_slug()}/{BRANCH}?labpath={path}"


def badges(stem: str) -> str:
    """The markdown badge line of notebook ``stem`` (e.g. ``"01_schrodinger_system"``)."""
    return (f"[![Open in Colab]({_COLAB_SVG})]({colab_url(stem)}) "
            f"[![Binder]({_BINDER_SVG})]({binder_url(stem)})")


def readme_badges(first: str = "01_schrodinger_system") -> str:
    """The README's badge line: Colab on the first notebook, Binder on the notebooks folder."""
    return (f"[![Open in Colab]({_COLAB_SVG})]({colab_url(first)}) "
            f"[![Binder]({_BINDER_SVG})]({binder_url()})")


def setup_cell() -> str:
    """The code of every notebook's setup cell (its ``# %%`` line excluded).

    Where ``lsbcore`` imports (a checkout after ``make``, Binder, any install) it does nothing. In a
    checkout that was never installed it puts the checkout on ``sys.path``. Anywhere else (Colab, a bare
    kernel) it pip-installs lsbcore from :data:`REPOSITORY` with a constraint that pins torch to the
    version already installed (Colab's CUDA build stays), or to :data:`TORCH` where there is none,
    and says what it did.
    """
    return f'''# Setup: does nothing where lsbcore is importable (a checkout after `make`, Binder). Elsewhere (Colab, a bare
# kernel) it installs lsbcore from {REPOSITORY}, keeping the torch already installed.
def _setup():
    import importlib, importlib.util, pathlib, subprocess, sys, tempfile

    if importlib.util.find_spec("lsbcore") is not None:
        return
    root = pathlib.Path.cwd().parent
    if (root / "lsbcore" / "__init__.py").is_file():
        sys.path.insert(0, str(root))
        print(f"setup: using the lsbcore of this checkout ({{root}})")
        return
    if importlib.util.find_spec("torch") is not None:
        import torch
        pin = f"torch=={{torch.__version__}}"
    else:
        pin = "{TORCH}"
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write(pin + "\\n")
    print(f"setup: installing lsbcore from {REPOSITORY} with {{pin}} ...", flush=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-c", f.name,
                    "lsbcore @ git+{REPOSITORY}@{BRANCH}"], check=True)
    importlib.invalidate_caches()
    print("setup: done")


_setup()'''


def _notebooks(paths: Optional[Iterable] = None) -> List[Path]:
    return [Path(p) for p in paths] if paths is not None else sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.py"))


def _cells(text: str) -> List[str]:
    """The jupytext percent text split at its ``# %%`` lines (the header is the first part)."""
    return re.split(r"(?m)^(?=# %%)", text)


def expected_text(path) -> str:
    """The text of notebook ``path`` (jupytext ``.py``) with its title cell (the title line, then the badges)
    and its setup cell (tagged ``setup``) regenerated; everything else is kept as it is."""
    path = Path(path)
    parts = _cells(path.read_text(encoding="utf-8"))
    stem = path.stem
    out, seen_badges, seen_setup = [], False, False
    for part in parts:
        if part.startswith("# %% [markdown]") and not seen_badges:
            title = re.search(r"(?m)^# # .*$", part)
            if title is None:
                raise ValueError(f"{path}: the first markdown cell must be the title ('# # ...') alone")
            part = f"# %% [markdown]\n{title.group(0)}\n#\n# {badges(stem)}\n\n"
            seen_badges = True
        elif part.startswith(SETUP_TAG):
            part = SETUP_TAG + "\n" + setup_cell() + "\n\n"
            seen_setup = True
        out.append(part)
    if not seen_badges:
        raise ValueError(f"{path}: no title cell ('# # ...') to put the badges under")
    if not seen_setup:
        raise ValueError(f"{path}: no setup cell ({SETUP_TAG!r}) after the title")
    return "".join(out)


def write_badges(paths: Optional[Iterable] = None) -> List[Path]:
    """Rewrite the badge line and the setup cell of each notebook (default: every ``notebooks/NN_*.py``)
    from :data:`REPOSITORY`, and its committed ``.ipynb`` pair where there is one
    (:func:`lsbcore.pairs.write_pair`); returns the ``.py`` files that changed."""
    from .pairs import write_pair

    changed = []
    for path in _notebooks(paths):
        new = expected_text(path)
        if new != path.read_text(encoding="utf-8"):
            path.write_text(new, encoding="utf-8")
            changed.append(path)
            if path.with_suffix(".ipynb").is_file():
                write_pair(path)
    return changed


def stale_notebooks(paths: Optional[Iterable] = None) -> List[Path]:
    """The notebooks whose badges or setup cell differ from what this module generates."""
    return [p for p in _notebooks(paths) if expected_text(p) != p.read_text(encoding="utf-8")]
