"""Every notebook is a committed pair, ``notebooks/NN_topic.py`` (jupytext percent, the source) and
``notebooks/NN_topic.ipynb`` (the same cells, outputs stripped, for Colab, Binder and a hosting
site): whichever file a contributor edits, the other must follow, and this test says which command
brings them back in sync (``make pair``, or ``make pair FROM=ipynb`` after an edit of the .ipynb)."""
import json
import shutil
from pathlib import Path

import pytest

from lsbcore import pairs

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.py"))


def test_there_are_notebooks():
    assert len(SOURCES) >= 6, [p.name for p in SOURCES]


@pytest.mark.parametrize("src", SOURCES, ids=lambda p: p.stem)
def test_pair_is_in_sync(src):
    problems = pairs.check_pair(src)
    assert not problems, "\n".join([f"{src.relative_to(ROOT)} and its .ipynb are out of sync:", *problems, pairs.FIX])


def test_no_ipynb_without_its_py():
    orphans = [p.name for p in sorted((ROOT / "notebooks").glob("*.ipynb")) if not p.with_suffix(".py").is_file()]
    assert not orphans, f"{orphans} have no jupytext .py: run `make pair FROM=ipynb` (writes it) or delete them"


# ------------------------------------------------------------------------- the mechanism itself
@pytest.fixture
def pair(tmp_path):
    """A pair written by ``make pair``'s function, in a scratch folder."""
    src = tmp_path / SOURCES[0].name
    shutil.copy(SOURCES[0], src)
    pairs.write_pair(src)
    return src, src.with_suffix(".ipynb")


def test_written_pair_is_stripped_deterministic_and_in_sync(pair):
    src, ipynb = pair
    assert pairs.check_pair(src) == []
    nb = json.loads(ipynb.read_text())
    assert nb["metadata"] == {"jupytext": {"formats": pairs.FORMATS}, "kernelspec": pairs.KERNELSPEC}
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert code and all(c["outputs"] == [] and c["execution_count"] is None for c in code)
    ids = [c["id"] for c in nb["cells"]]
    assert len(set(ids)) == len(ids)
    before = ipynb.read_bytes()
    pairs.write_pair(src)
    assert ipynb.read_bytes() == before  # a regeneration changes nothing
    # the .ipynb holds exactly the .py's cells: read back by jupytext, the same text
    import jupytext

    assert [c.source for c in jupytext.read(ipynb).cells] == [c.source for c in jupytext.read(src).cells]


def _edit_ipynb(ipynb, edit):
    nb = json.loads(ipynb.read_text())
    edit(nb)
    ipynb.write_text(json.dumps(nb, indent=1))


def test_drift_on_either_side_is_caught_with_the_fix(pair):
    src, ipynb = pair
    code = src.read_text()
    # 1. the .py edited, the .ipynb not regenerated
    src.write_text(code.replace("import lsbcore as lsb", "import lsbcore as lsb  # edited", 1))
    (problem,) = pairs.check_pair(src)
    assert "differs in its text" in problem
    pairs.write_pair(src)
    assert pairs.check_pair(src) == []
    # 2. the .ipynb edited (e.g. in Colab): a cell's text, and outputs saved with it
    def colab(nb):
        cell = next(c for c in nb["cells"] if c["cell_type"] == "code")
        cell["source"] = cell["source"] + ["\n", "print('from colab')"]
        cell["outputs"] = [{"output_type": "stream", "name": "stdout", "text": ["from colab\n"]}]
        cell["execution_count"] = 1
        nb["metadata"]["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}

    _edit_ipynb(ipynb, colab)
    problems = pairs.check_pair(src)
    assert len(problems) == 3, problems
    assert "differs in its text" in problems[0] and "outputs" in problems[1] and "metadata" in problems[2]
    # `make pair FROM=ipynb` keeps the Colab edit in the .py, and strips the rest
    pairs.pair_from_ipynb(ipynb)
    assert "print('from colab')" in src.read_text()
    assert pairs.check_pair(src) == []
    assert "from colab\\n" not in ipynb.read_text() and "widget-state" not in ipynb.read_text()
    # 3. a cell deleted from the .ipynb; a .ipynb missing
    _edit_ipynb(ipynb, lambda nb: nb["cells"].pop())
    assert any("cells" in p for p in pairs.check_pair(src))
    ipynb.unlink()
    assert pairs.check_pair(src) == [f"{ipynb.name} is missing"]


def test_round_trip_from_ipynb_changes_no_line_of_the_py(pair):
    """`make pair FROM=ipynb` on an unedited pair rewrites the .py identically, apart from the jupytext
    version in its header."""
    src, ipynb = pair
    before = src.read_text()
    pairs.pair_from_ipynb(ipynb)
    strip = lambda text: [line for line in text.splitlines() if "jupytext_version" not in line]  # noqa: E731
    assert strip(src.read_text()) == strip(before)


def test_command_line_reports_drift(pair, capsys):
    src, ipynb = pair
    assert pairs.main(["--check", str(src)]) == 0
    src.write_text(src.read_text() + "\n# %%\nx = 1\n")
    assert pairs.main(["--check", str(src)]) == 1
    out = capsys.readouterr().out
    assert "make pair" in out and src.name in out
    with pytest.raises(ValueError, match="py"):
        pairs.paired_notebook(ipynb)
