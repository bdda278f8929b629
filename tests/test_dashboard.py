"""The lecture dashboards (`make dashboard NB=..`): only the widget explorers show output."""
import re
from pathlib import Path

import jupytext
import nbformat
import pytest

from lsbcore.build import dashboard_notebook

EXPLORER = re.compile(r"\b\w+_explorer\(")  # written out here, independent of lsbcore.build
NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9][0-9]_*.py"))


@pytest.mark.parametrize("src", NOTEBOOKS, ids=lambda p: p.stem)
def test_dashboard_keeps_every_cell_but_shows_only_the_explorers(src, tmp_path):
    source_code = [c for c in jupytext.read(src).cells if c.cell_type == "code"]
    if not any(EXPLORER.search(c.source) for c in source_code):
        with pytest.raises(ValueError, match="src"):
            dashboard_notebook(src, tmp_path / "d.ipynb")
        return
    nb = nbformat.read(dashboard_notebook(src, tmp_path / "d.ipynb"), 4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert len(code) == len(source_code), "every code cell must still run"
    shown = [c for c in code if not c.source.startswith("%%capture\n")]
    assert shown and all(EXPLORER.search(c.source) for c in shown)
    assert all(c.source.startswith("%%capture\n") for c in code if not EXPLORER.search(c.source))
    assert nb.metadata["kernelspec"]["name"] == "python3"
    assert all(c.source.lstrip().startswith("#") for c in nb.cells if c.cell_type == "markdown")


def test_dashboard_rejects_a_missing_file(tmp_path):
    with pytest.raises(ValueError, match="src"):
        dashboard_notebook(tmp_path / "nope.py", tmp_path / "d.ipynb")
