"""Paired notebooks: every ``notebooks/NN_topic.py`` (jupytext percent format, the source a contributor
edits and reviews) has a committed ``notebooks/NN_topic.ipynb`` beside it, the same cells with no
outputs, so that Colab, Binder and a hosting site can open it.

``make pair`` writes each ``.ipynb`` from its ``.py`` (:func:`write_pair`); ``make pair FROM=ipynb``
first rewrites each ``.py`` from its ``.ipynb`` (:func:`pair_from_ipynb`), for an edit made where
jupytext is absent (Colab, a plain Jupyter). ``tests/test_pairs.py`` calls :func:`check_pair` on every
pair, so drift on either side fails ``make test`` with the command that fixes it. The written
``.ipynb`` is a function of the ``.py`` alone: no outputs, no execution counts, cell ids derived from
the cells' text (a regeneration changes no line of an unchanged cell), only the kernelspec and
jupytext's pairing in the notebook's metadata.

    python -m lsbcore.pairs notebooks/01_schrodinger_system.py ...          # .py → .ipynb
    python -m lsbcore.pairs --from-ipynb notebooks/01_schrodinger_system.ipynb ...
    python -m lsbcore.pairs --check notebooks/01_schrodinger_system.py ...  # exit 1 on drift
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

__all__ = ["FORMATS", "KERNELSPEC", "FIX", "paired_notebook", "write_pair", "pair_from_ipynb",
           "check_pair", "main"]

#: jupytext's pairing, in both files' metadata (JupyterLab with jupytext then saves both on every save)
FORMATS = "ipynb,py:percent"
KERNELSPEC = {"display_name": "Python 3", "language": "python", "name": "python3"}
#: what the pair check tells a contributor to run
FIX = ("run `make pair` (rewrites the .ipynb from the .py, the source); if you edited the .ipynb "
       "(Colab, Jupyter without jupytext), run `make pair FROM=ipynb` instead (the .py from the .ipynb)")


def _cell_id(cell, seen: set) -> str:
    """A short id from the cell's type and text (unique within the notebook)."""
    base = hashlib.sha1(f"{cell.cell_type}\n{cell.source}".encode()).hexdigest()[:8]
    cid, k = base, 1
    while cid in seen:
        k += 1
        cid = f"{base}-{k}"
    seen.add(cid)
    return cid


def paired_notebook(py):
    """The ``.ipynb`` (an ``nbformat`` notebook) that pairs with the jupytext source ``py``."""
    import jupytext
    import nbformat

    py = Path(py)
    if py.suffix != ".py" or not py.is_file():
        raise ValueError(f"py {str(py)!r} is not a jupytext .py notebook file")
    nb = jupytext.reads(jupytext.writes(jupytext.read(py), fmt="ipynb"), fmt="ipynb")
    nb.metadata = nbformat.from_dict({"jupytext": {"formats": FORMATS}, "kernelspec": dict(KERNELSPEC)})
    seen: set = set()
    for cell in nb.cells:
        cell.id = _cell_id(cell, seen)
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        cell.pop("attachments", None)
    nb.nbformat, nb.nbformat_minor = 4, 5
    nbformat.validate(nb)
    return nb


def _text(nb) -> str:
    import nbformat

    return nbformat.writes(nb) + "\n"


def write_pair(py) -> Path:
    """Write ``py``'s paired ``.ipynb`` beside it (outputs stripped) and return its path."""
    py = Path(py)
    out = py.with_suffix(".ipynb")
    text = _text(paired_notebook(py))
    if not out.is_file() or out.read_text(encoding="utf-8") != text:
        out.write_text(text, encoding="utf-8")
    return out


def pair_from_ipynb(ipynb) -> Path:
    """Rewrite the ``.py`` of ``ipynb`` from its cells (jupytext percent), then the ``.ipynb`` from the
    ``.py`` (which strips its outputs); returns the ``.py``'s path."""
    import jupytext

    ipynb = Path(ipynb)
    if ipynb.suffix != ".ipynb" or not ipynb.is_file():
        raise ValueError(f"ipynb {str(ipynb)!r} is not a .ipynb notebook file")
    nb = jupytext.read(ipynb)
    nb.metadata.setdefault("jupytext", {})["formats"] = FORMATS
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    py = ipynb.with_suffix(".py")
    jupytext.write(nb, py, fmt="py:percent")
    write_pair(py)
    return py


def _cells(nb) -> list:
    """What a pair must agree on: each cell's type, text and metadata."""
    return [(c.cell_type, c.source, json.dumps(c.get("metadata", {}), sort_keys=True)) for c in nb.cells]


def check_pair(py) -> list:
    """Every way ``py`` and its ``.ipynb`` differ (an empty list when they are in sync)."""
    import nbformat

    py = Path(py)
    ipynb = py.with_suffix(".ipynb")
    if not ipynb.is_file():
        return [f"{ipynb.name} is missing"]
    try:
        have = nbformat.reads(ipynb.read_text(encoding="utf-8"), as_version=4)
    except Exception as err:  # nbformat raises several kinds for unreadable JSON
        return [f"{ipynb} is not a readable notebook ({type(err).__name__}: {err})"]
    header = py.read_text(encoding="utf-8").split("# %%", 1)[0]
    if f"formats: {FORMATS}" not in header:
        return [f"{py}'s header does not declare the pairing `formats: {FORMATS}`"]
    want = paired_notebook(py)
    problems = []
    a, b = _cells(want), _cells(have)
    if len(a) != len(b):
        problems.append(f"{py.name} has {len(a)} cells, {ipynb.name} has {len(b)}")
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            what = "type" if x[0] != y[0] else "text" if x[1] != y[1] else "metadata"
            first = (x[1].splitlines() or [""])[0][:60]
            problems.append(f"cell {i} ({first!r}…) differs in its {what} between {py.name} and {ipynb.name}")
            break
    dirty = [i for i, c in enumerate(have.cells)
             if c.cell_type == "code" and (c.get("outputs") or c.get("execution_count") is not None)]
    if dirty:
        problems.append(f"{ipynb.name} holds outputs or execution counts (cells {dirty[:5]}…): they must be stripped")
    extra = sorted(set(have.metadata) - set(want.metadata))
    if extra or have.metadata.get("jupytext", {}).get("formats") != FORMATS:
        problems.append(f"{ipynb.name}'s metadata must be only the kernelspec and the pairing "
                        f"`formats: {FORMATS}` (found {sorted(have.metadata)})")
    return problems


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lsbcore.pairs", description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+", type=Path)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="report drift, change nothing (exit 1 on drift)")
    mode.add_argument("--from-ipynb", action="store_true", help="rewrite each .py from its .ipynb")
    args = parser.parse_args(argv)
    bad = 0
    for f in args.files:
        if args.check:
            for problem in check_pair(f.with_suffix(".py")):
                print(f"{f.with_suffix('.py')}: {problem}")
                bad += 1
        elif args.from_ipynb:
            print(f"{f.with_suffix('.ipynb')} → {pair_from_ipynb(f.with_suffix('.ipynb'))} → {f.with_suffix('.ipynb')}")
        else:
            print(f"{f.with_suffix('.py')} → {write_pair(f.with_suffix('.py'))}")
    if bad:
        print(FIX)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
