"""Build tools for the course's notebooks: render them to HTML (``make run``) and turn one into a
lecture dashboard of its widgets (``make dashboard NB=01``).

These run notebooks, they are not part of a notebook: ``python -m lsbcore render ...`` calls
:func:`render`, the Makefile's ``dashboard`` target calls :func:`dashboard_notebook`.
"""
from __future__ import annotations

import re
import time
from pathlib import Path

import jupytext
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError
from nbconvert import HTMLExporter

__all__ = ["render", "dashboard_notebook", "EXPLORER_CALL"]

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


def render(src, out_dir, *, cell_timeout: int = 300, retries: int = 2) -> Path:
    """Execute the notebook ``src`` (jupytext ``.py`` or ``.ipynb``) in a fresh kernel and write HTML
    to ``out_dir/<stem>.html``; returns that path.

    The kernel runs in the notebook's folder, so relative paths behave as in JupyterLab. A cell that
    fails stops the run with its traceback (nothing is rendered half-executed). On this kind of
    sandboxed machine a kernel's reply is lost now and then (`jupyter nbconvert --execute` hung in 3 of
    11 runs, with the kernel idle), so a cell that gets no reply within ``cell_timeout`` seconds (no
    cell of the course needs a minute) restarts the notebook in a fresh kernel, ``retries`` times.
    """
    src, nb = _read_notebook(src, "notebook")
    t0 = time.monotonic()
    for attempt in range(1, retries + 2):
        client = NotebookClient(nb, timeout=cell_timeout, startup_timeout=120, kernel_name="python3",
                                resources={"metadata": {"path": str(src.resolve().parent)}})
        try:
            client.execute()
            break
        except CellTimeoutError:
            if attempt > retries:
                raise
            print(f"   no reply from the kernel for {cell_timeout} s: starting {src.name} again in a "
                  f"fresh kernel ({attempt}/{retries})", flush=True)
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
