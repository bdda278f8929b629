"""The two editions of every notebook, its badges and its setup cell (issue 15 §1–2)."""
import builtins
import importlib.util
import re
import subprocess
from pathlib import Path

import jupytext
import nbformat
import pytest
import torch

import lsbcore.course as course
from lsbcore.build import _execute, edition_cells, make_edition, render

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9][0-9]_*.py"))
CHECK = re.compile(r'^lsb\.exercises\.check\("\d\d\.\d+",\s*\w+\)\s*$')
#: the cheapest notebook (about 20 s in fast mode on 2 CPU cores): the one executed here end to end
CHEAPEST = next(p for p in NOTEBOOKS if p.name.startswith("01_"))


def _tags(cell):
    return cell.get("metadata", {}).get("tags", [])


def _checks(cells):
    return [c for c in cells if c.cell_type == "code" and CHECK.match(c.source.strip())]


@pytest.mark.parametrize("src", NOTEBOOKS, ids=lambda p: p.stem)
def test_student_edition_drops_solutions_and_keeps_stubs_and_checks(src, tmp_path):
    source = jupytext.read(src).cells
    n_checks = len(_checks(source))
    assert n_checks >= 3
    student = nbformat.read(make_edition(src, tmp_path / "s.ipynb", "student"), 4)
    assert not [c for c in student.cells if "solution" in _tags(c)]
    assert len([c for c in student.cells if "stub" in _tags(c)]) == n_checks
    assert len(_checks(student.cells)) == n_checks
    assert len(student.cells) == len(source) - n_checks  # exactly one solution cell per exercise went
    assert student.metadata["lsbcore_edition"] == "student"
    assert all(c.outputs == [] for c in student.cells if c.cell_type == "code")
    # each check comes after its stub, with no solution in between
    kinds = ["stub" if "stub" in _tags(c) else "check" if c in _checks(student.cells) else "" for c in student.cells]
    kinds = [k for k in kinds if k]
    assert kinds == ["stub", "check"] * n_checks
    instructor = nbformat.read(make_edition(src, tmp_path / "i.ipynb", "instructor"), 4)
    assert len(instructor.cells) == len(source)
    assert len([c for c in instructor.cells if "solution" in _tags(c)]) == n_checks
    assert [c.source for c in instructor.cells] == [c.source for c in source]


def test_editions_reject_an_unknown_edition(tmp_path):
    with pytest.raises(ValueError, match="edition"):
        make_edition(CHEAPEST, tmp_path / "x.ipynb", "teacher")
    with pytest.raises(ValueError, match="edition"):  # checked before any kernel starts
        render(CHEAPEST, tmp_path, edition="teacher")
    with pytest.raises(ValueError, match="src_py"):
        make_edition(tmp_path / "missing.py", tmp_path / "x.ipynb")


def test_the_student_edition_runs_to_the_end_and_its_checks_say_not_attempted(monkeypatch):
    """One notebook, in fast mode, in process (`python -m lsbcore.build student-run notebooks/*.py` runs all six)."""
    monkeypatch.setenv("LSB_FAST", "1")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    nb = edition_cells(jupytext.read(CHEAPEST), "student")
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    _execute(nb, CHEAPEST, cell_timeout=120, retries=2)  # raises on an error; restarts on a lost kernel reply
    checks = _checks(nb.cells)
    texts = ["".join(o.get("data", {}).get("text/plain", "") for o in c.outputs) for c in checks]
    assert len(texts) >= 3 and all("not attempted yet" in t for t in texts), texts


# ------------------------------------------------------------------------- badges and the setup cell
@pytest.mark.parametrize("src", NOTEBOOKS, ids=lambda p: p.stem)
def test_badges_and_setup_cell_are_what_course_py_generates(src):
    text = src.read_text(encoding="utf-8")
    assert text == course.expected_text(src), "run: python -c 'import lsbcore.course as c; c.write_badges()'"
    cells = jupytext.read(src).cells
    title, setup = cells[0], cells[1]
    assert title.cell_type == "markdown" and title.source.startswith("# ")
    assert course.badges(src.stem) in title.source
    assert f"{course.REPOSITORY.removeprefix('https://github.com/')}/blob/{course.BRANCH}/notebooks/{src.stem}.ipynb" \
        in course.badges(src.stem)
    assert setup.cell_type == "code" and _tags(setup) == ["setup"] and setup.source == course.setup_cell()
    for heading in ("Aim", "Contents", "Theory", "Discussion", "Exercises"):  # TeachOpenCADD skeleton
        assert re.search(rf"(?mi)^#+ .*{heading}|\*\*{heading}", "\n".join(c.source for c in cells)), (src.name, heading)


def test_a_changed_repository_url_makes_every_notebook_stale(monkeypatch):
    assert course.stale_notebooks() == []
    monkeypatch.setattr(course, "REPOSITORY", "https://github.com/someone/fork")
    assert course.stale_notebooks() == NOTEBOOKS
    assert "someone/fork" in course.readme_badges() and "someone/fork" in course.setup_cell()
    monkeypatch.setattr(course, "REPOSITORY", "https://gitlab.com/x/y")
    with pytest.raises(ValueError, match="REPOSITORY"):
        course.badges("01_x")


def _run_setup(monkeypatch, tmp_path, *, installed: bool):
    calls = []
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if (name == "lsbcore" and not installed) else real_find_spec(name, *a))
    monkeypatch.setattr(subprocess, "run", lambda cmd, **kw: calls.append(cmd))
    monkeypatch.chdir(tmp_path)
    printed = []
    monkeypatch.setattr(builtins, "print", lambda *a, **kw: printed.append(" ".join(map(str, a))))
    exec(compile(course.setup_cell(), "<setup>", "exec"), {})
    return calls, printed


def test_setup_cell_does_nothing_where_lsbcore_imports(monkeypatch, tmp_path):
    calls, printed = _run_setup(monkeypatch, tmp_path, installed=True)
    assert calls == [] and printed == []


def test_setup_cell_elsewhere_installs_from_the_repository_keeping_torch(monkeypatch, tmp_path):
    calls, printed = _run_setup(monkeypatch, tmp_path, installed=False)
    assert len(calls) == 1
    cmd = calls[0]
    assert cmd[1:4] == ["-m", "pip", "install"] and f"lsbcore @ git+{course.REPOSITORY}@{course.BRANCH}" in cmd
    constraint = Path(cmd[cmd.index("-c") + 1]).read_text()
    assert constraint.strip() == f"torch=={torch.__version__}"   # the host's torch, never an unpinned one
    assert any("installing lsbcore" in p for p in printed) and printed[-1] == "setup: done"


def test_setup_cell_in_an_uninstalled_checkout_uses_the_checkout(monkeypatch, tmp_path):
    (tmp_path / "lsbcore").mkdir()
    (tmp_path / "lsbcore" / "__init__.py").write_text("")
    (tmp_path / "notebooks").mkdir()
    import sys

    monkeypatch.setattr(sys, "path", list(sys.path))
    calls, printed = _run_setup(monkeypatch, tmp_path / "notebooks", installed=False)
    assert calls == [] and sys.path[0] == str(tmp_path) and "this checkout" in printed[0]


def test_write_badges_regenerates_a_fork_and_its_ipynb(monkeypatch, tmp_path):
    import shutil

    src = NOTEBOOKS[0]
    py = Path(shutil.copy(src, tmp_path / src.name))
    if src.with_suffix(".ipynb").is_file():
        shutil.copy(src.with_suffix(".ipynb"), tmp_path / (src.stem + ".ipynb"))
    monkeypatch.setattr(course, "REPOSITORY", "https://github.com/someone/fork")
    assert course.stale_notebooks([py]) == [py]
    assert course.write_badges([py]) == [py] and course.stale_notebooks([py]) == []
    assert course.write_badges([py]) == []       # idempotent
    text = py.read_text(encoding="utf-8")
    assert "github.com/someone/fork" in text and "lsbcore/lsbcore" not in text
    # only the title cell and the setup cell changed
    old, new = jupytext.read(src).cells, jupytext.read(py).cells
    assert [c.source for c in old[2:]] == [c.source for c in new[2:]]
    ipynb = py.with_suffix(".ipynb")
    if ipynb.is_file():
        assert "someone/fork" in ipynb.read_text(encoding="utf-8")
