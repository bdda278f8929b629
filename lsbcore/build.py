"""Build tools for the course's notebooks: the student and instructor editions, HTML (``make run``),
and a lecture dashboard of one notebook's widgets (``make dashboard NB=01``).

These run notebooks, they are not part of a notebook: ``python -m lsbcore render ...`` calls
:func:`render`, the Makefile's ``dashboard`` target calls :func:`dashboard_notebook`, and
``python -m lsbcore.build student-run notebooks/*.py`` executes every student edition (:func:`run_editions`).

**Editions.** A notebook's source (``notebooks/NN_topic.py``, as committed) is the *instructor* edition:
each exercise has an answer cell tagged ``stub`` (a placeholder), a worked solution tagged ``solution``
and a check cell. The *student* edition (:func:`edition_cells`) drops the solution cells, so the checks
see the placeholders and say "not attempted yet".
"""
from __future__ import annotations

import re
import time
from pathlib import Path

import jupytext
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError
from nbconvert import HTMLExporter

__all__ = ["render", "dashboard_notebook", "make_edition", "edition_cells", "run_editions", "EDITIONS",
           "EXPLORER_CALL"]

#: the two editions built from one source: "student" drops the cells tagged ``solution``
EDITIONS = ("student", "instructor")

#: a code cell that builds one of the widget explorers, e.g. ``W.ipf_explorer(...)``
EXPLORER_CALL = re.compile(r"\b\w+_explorer\(")

_KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}


def _read_notebook(src, name: str):
    src = Path(src)
    if not src.is_file():
        raise ValueError(f"{name} {str(src)!r} is not a notebook file")
    nb = jupytext.read(src)
    nb.metadata["kernelspec"] = dict(_KERNELSPEC)
    return src, nb


def _tags(cell) -> list:
    return list(cell.get("metadata", {}).get("tags", []))


def edition_cells(nb, edition: str = "student"):
    """``nb`` (a notebook node, changed in place and returned) as the ``edition``: "student" removes the
    cells tagged ``solution`` and keeps the ``stub`` cells; "instructor" keeps every cell."""
    if edition not in EDITIONS:
        raise ValueError(f"edition must be one of {EDITIONS}, got {edition!r}")
    if edition == "student":
        nb.cells = [c for c in nb.cells if "solution" not in _tags(c)]
    nb.metadata["lsbcore_edition"] = edition
    return nb


def make_edition(src_py, out_ipynb, edition: str = "student") -> Path:
    """Write the ``edition`` ("student" or "instructor") of notebook ``src_py`` (jupytext ``.py``, or an
    ``.ipynb``) to ``out_ipynb``, without outputs; returns that path. See :func:`edition_cells`."""
    _, nb = _read_notebook(src_py, "src_py")
    edition_cells(nb, edition)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    dest = Path(out_ipynb)
    dest.parent.mkdir(parents=True, exist_ok=True)
    jupytext.write(nb, dest, fmt="ipynb")
    return dest


def _execute(nb, src: Path, cell_timeout: int, retries: int) -> None:
    """Run ``nb`` top to bottom in a fresh kernel in ``src``'s folder (restarted on a lost reply)."""
    for attempt in range(1, retries + 2):
        client = NotebookClient(nb, timeout=cell_timeout, startup_timeout=120, kernel_name="python3",
                                resources={"metadata": {"path": str(src.resolve().parent)}})
        try:
            client.execute()
            return
        except CellTimeoutError:
            if attempt > retries:
                raise
            print(f"   no reply from the kernel for {cell_timeout} s: starting {src.name} again in a "
                  f"fresh kernel ({attempt}/{retries})", flush=True)


def run_editions(paths, edition: str = "student", *, cell_timeout: int = 120, retries: int = 2,
                 fast: bool = True) -> dict:
    """Execute the ``edition`` of each notebook in ``paths`` to the end in a fresh kernel (in fast mode,
    ``LSB_FAST=1``, unless ``fast=False``); returns {path: seconds}. A cell that raises stops with
    nbclient's ``CellExecutionError`` naming the notebook and the cell: the student edition must run
    without errors, its checks only saying "not attempted yet". A cell without a reply for
    ``cell_timeout`` seconds (no cell needs a minute in fast mode: a lost kernel reply, see :func:`render`)
    restarts that notebook in a fresh kernel, ``retries`` times."""
    import os

    out, old = {}, os.environ.get("LSB_FAST")
    if fast:
        os.environ["LSB_FAST"] = "1"   # the kernel inherits the environment
    try:
        for path in paths:
            src, nb = _read_notebook(path, "path")
            edition_cells(nb, edition)
            t0 = time.monotonic()
            _execute(nb, src, cell_timeout, retries)
            out[str(path)] = time.monotonic() - t0
            print(f"   {src.name} ({edition} edition): ran to the end in {out[str(path)]:.0f} s", flush=True)
    finally:
        if fast:
            if old is None:
                os.environ.pop("LSB_FAST", None)
            else:
                os.environ["LSB_FAST"] = old
    return out


def render(src, out_dir, *, cell_timeout: int = 300, retries: int = 2, edition: str = "student") -> Path:
    """Execute the ``edition`` ("student", the default, or "instructor") of notebook ``src`` (jupytext
    ``.py`` or ``.ipynb``) in a fresh kernel and write HTML to ``out_dir/<stem>.html``; returns that path.

    The kernel runs in the notebook's folder, so relative paths behave as in JupyterLab. A cell that
    fails stops the run with its traceback (nothing is rendered half-executed). On this kind of
    sandboxed machine a kernel's reply is lost now and then (`jupyter nbconvert --execute` hung in 3 of
    11 runs, with the kernel idle), so a cell that gets no reply within ``cell_timeout`` seconds (no
    cell of the course needs a minute) restarts the notebook in a fresh kernel, ``retries`` times.
    """
    src, nb = _read_notebook(src, "notebook")
    edition_cells(nb, edition)
    t0 = time.monotonic()
    _execute(nb, src, cell_timeout, retries)
    body, _ = HTMLExporter().from_notebook_node(nb)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    dest = out_dir / (src.stem + ".html")
    dest.write_text(body, encoding="utf-8")
    print(f"   {src.name}: executed in {time.monotonic() - t0:.0f} s", flush=True)
    return dest


def dashboard_notebook(src, dest) -> Path:
    """Write a lecture dashboard of notebook ``src`` (jupytext ``.py`` or ``.ipynb``) to ``dest`` (``.ipynb``).

    Every code cell still runs (the explorers need the state the notebook builds), but only the
    cells that build an explorer (a call to ``*_explorer(``) show their output; the others start
    with ``%%capture``, which swallows their text and figures. Markdown is dropped except the
    notebook's title and the heading of each section that holds an explorer. Served by Voilà
    (``make dashboard NB=01``), the page is the notebook's widgets alone.
    """
    src, nb = _read_notebook(src, "src")
    cells, heading = [], None
    for cell in nb.cells:
        text = cell.source.lstrip()
        if cell.cell_type == "markdown":
            if text.startswith("# ") and not cells:
                cells.append(cell)  # the title
            elif text.startswith("#"):
                heading = cell
            continue
        if cell.cell_type != "code":
            continue
        if EXPLORER_CALL.search(cell.source):
            if heading is not None:
                cells.append(heading)
                heading = None
        else:
            cell.source = "%%capture\n" + cell.source
        cells.append(cell)
    if not any(EXPLORER_CALL.search(c.source) for c in cells if c.cell_type == "code"):
        raise ValueError(f"src {str(src)!r} builds no widget explorer: it has no dashboard")
    nb.cells = cells
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    jupytext.write(nb, dest, fmt="ipynb")
    return dest


def main(argv=None) -> int:
    """``python -m lsbcore.build student-run NOTEBOOK.py ... [--edition E] [--full]``: run each edition
    to the end (fast mode unless ``--full``) and print the time each took; exit status 1 on an error."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m lsbcore.build")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("student-run", help="execute the student edition of each notebook to the end")
    run.add_argument("notebooks", nargs="+", type=Path)
    run.add_argument("--edition", choices=EDITIONS, default="student")
    run.add_argument("--full", action="store_true", help="full size (default: LSB_FAST=1)")
    args = parser.parse_args(argv)
    from nbclient.exceptions import CellExecutionError

    t0 = time.monotonic()
    try:
        run_editions(args.notebooks, args.edition, fast=not args.full)
    except CellExecutionError as err:
        print(f"FAILED: {err}".splitlines()[0])
        return 1
    print(f">> {len(args.notebooks)} {args.edition} edition(s) ran to the end in {time.monotonic() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
