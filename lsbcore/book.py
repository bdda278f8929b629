"""Build the course site (``make book``): every notebook executed once, rendered by Sphinx + MyST-NB.

    python -m lsbcore.book [--out build/book] [--fast] [--edition student|instructor] [--jobs N]

The site's pages are in ``book/`` (landing page with the syllabus, the paper-to-code map, the
exercises note, the theory page and the glossary, both taken from ``docs/theory.md`` and README.md
so they are written once). This module

1. makes each notebook's edition (the student edition by default: ``lsbcore.build.make_edition``,
   or the plain ``.py`` source where that is not available) and executes it in a fresh kernel in
   ``notebooks/``; an executed notebook is kept in ``<out>/executed/`` with a stamp of its inputs
   (the source, the package's code, the shipped data, the mode), so a second build re-runs only what
   changed;
2. replaces each widget by its static state (the values of its controls, the figure it drew), since
   a static page has no kernel to run a slider's callback, and each badge image (from the network)
   by a plain link;
3. copies ``book/`` and the notebooks into ``<out>/src`` and runs ``sphinx-build`` there, without
   executing anything again (``nb_execution_mode = "off"``). The site goes to ``<out>/html``.

Math is typeset by a MathJax shipped in a Python package (``sphinx-mathjax-offline``), copied into
the site's ``_static/``: the pages need no network. ``tests/test_book.py`` checks that in Chromium.
"""
from __future__ import annotations

import argparse
import copy
import hashlib
import html
import os
import re
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import jupytext
import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError

__all__ = ["build_book", "execute_notebook", "static_widgets", "for_the_site", "ROOT", "BOOK_SRC"]

ROOT = Path(__file__).resolve().parents[1]
BOOK_SRC = ROOT / "book"
_KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}
_WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
_WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
_EDITIONS = ("student", "instructor")


# ----------------------------------------------------------------------------- editions, execution
def _edition(src: Path, edition: str, dest: Path) -> nbformat.NotebookNode:
    """The unexecuted notebook of ``edition`` (G1's ``make_edition`` when the package has it)."""
    from . import build

    make_edition = getattr(build, "make_edition", None)
    if make_edition is not None:
        make_edition(src, dest, edition=edition)
        nb = nbformat.read(dest, as_version=4)
    else:
        nb = jupytext.read(src)
    nb.metadata["kernelspec"] = dict(_KERNELSPEC)
    return nb


def execute_notebook(nb, cwd, *, cell_timeout: int = 300, retries: int = 2):
    """Run ``nb`` top to bottom in a fresh ``python3`` kernel whose working directory is ``cwd``.

    A cell that raises stops the run (nbclient raises ``CellExecutionError``). A kernel whose reply
    is lost (seen now and then on sandboxed machines, the kernel left idle) shows up as a cell
    timeout: the notebook then starts again in a fresh kernel, ``retries`` times. Returns ``nb``.
    """
    if not isinstance(cell_timeout, int) or cell_timeout < 1:
        raise ValueError(f"cell_timeout must be a positive int, got {cell_timeout!r}")
    for attempt in range(retries + 1):
        client = NotebookClient(nb, timeout=cell_timeout, startup_timeout=120, kernel_name="python3",
                                store_widget_state=True,
                                resources={"metadata": {"path": str(Path(cwd).resolve())}})
        try:
            client.execute()
            return nb
        except CellTimeoutError:
            if attempt == retries:
                raise
            print(f"   no reply from the kernel for {cell_timeout} s: starting again in a fresh kernel "
                  f"({attempt + 1}/{retries})", flush=True)
    return nb


def _stamp(src: Path, edition: str, fast: bool) -> str:
    """A digest of what an executed notebook depends on: its source, the package, the shipped data."""
    h = hashlib.sha256(f"{edition}|{int(fast)}|".encode())
    files = [src, *sorted((ROOT / "lsbcore").rglob("*.py"))]
    files += sorted(p for p in (ROOT / "data").glob("*") if p.is_file())
    for p in files:
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()


def _executed(src: Path, cache: Path, edition: str, fast: bool, cell_timeout: int) -> tuple[Path, str]:
    """The executed notebook of ``src`` in ``cache`` (re-run only when its stamp changed)."""
    dest = cache / (src.stem + ".ipynb")
    stamp_file = cache / (src.stem + ".stamp")
    stamp = _stamp(src, edition, fast)
    if dest.is_file() and stamp_file.is_file() and stamp_file.read_text() == stamp:
        return dest, "reused"
    t0 = time.monotonic()
    nb = _edition(src, edition, cache / (src.stem + f".{edition}.ipynb"))
    execute_notebook(nb, src.parent, cell_timeout=cell_timeout)
    nbformat.write(nb, dest)
    stamp_file.write_text(stamp)
    return dest, f"executed in {time.monotonic() - t0:.0f} s"


# ----------------------------------------------------------------------------- widgets, statically
_CONTROLS = ("SliderModel", "DropdownModel", "ToggleButtonsModel", "RadioButtonsModel", "CheckboxModel",
             "ToggleButtonModel", "SelectModel", "SelectionSliderModel", "RangeSliderModel")


def _control_text(state: dict) -> str | None:
    name = state.get("_model_name", "")
    if not name.endswith(_CONTROLS):
        return None
    value = state.get("value", state.get("index"))
    labels = state.get("_options_labels")
    if labels is not None and "index" in state:
        idx = state["index"]
        value = ", ".join(labels[i] for i in idx) if isinstance(idx, list) else (
            labels[idx] if isinstance(idx, int) and 0 <= idx < len(labels) else None)
    label = (state.get("description") or "").strip().rstrip(":") or name[:-5]
    return f"{html.escape(label)} = {html.escape(str(value))}"


def _walk(model_id: str, models: dict, seen: set):
    """The states of a widget and its descendants, depth first in display order."""
    if model_id in seen or model_id not in models:
        return
    seen.add(model_id)
    state = models[model_id].get("state", {})
    yield state
    for child in state.get("children", []):
        if isinstance(child, str) and child.startswith("IPY_MODEL_"):
            yield from _walk(child[len("IPY_MODEL_"):], models, seen)


def static_widgets(nb) -> int:
    """Replace every widget output of ``nb`` (in place) by its static state; returns how many.

    A static page has no kernel, so a slider there would move but change nothing. What it shows
    instead: a line with the controls' values, the explorer's info line, and what its Output widget
    drew at those values (the figure), followed by a note that the explorer is live in Jupyter.
    Progress bars (tqdm's widgets) are dropped. The saved widget state is removed afterwards.
    """
    models = nb.metadata.get("widgets", {}).get(_WIDGET_STATE, {}).get("state", {})
    count = 0
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        outputs = []
        for out in cell.get("outputs", []):
            view = out.get("data", {}).get(_WIDGET_VIEW) if out.get("output_type") in (
                "display_data", "execute_result") else None
            if view is None:
                outputs.append(out)
                continue
            count += 1
            states = list(_walk(view.get("model_id", ""), models, set()))
            if any(s.get("_model_name", "").endswith("ProgressModel") for s in states):
                continue  # a progress bar: nothing to show once the work is done
            controls = [t for t in map(_control_text, states) if t]
            infos = [s.get("value", "") for s in states if s.get("_model_name") == "HTMLModel"
                     and "lsb-info" in s.get("_dom_classes", [])]
            parts = []
            if controls:
                parts.append("<p class='lsb-static-controls'><b>Explorer</b> (static: run the notebook "
                             "to move the controls) · " + " · ".join(controls) + "</p>")
            parts += [f"<div class='lsb-static-info'>{v}</div>" for v in infos if v]
            if parts:
                outputs.append(nbformat.v4.new_output("display_data", data={"text/html": "\n".join(parts)}))
            for s in states:
                if s.get("_model_name") == "OutputModel":
                    outputs.extend(nbformat.from_dict(copy.deepcopy(o)) for o in s.get("outputs", []))
        cell.outputs = outputs
    nb.metadata.pop("widgets", None)
    return count


# ----------------------------------------------------------------------------- the site
#: a badge: a linked image, ``[![alt](image URL)](target URL)``
_BADGE = re.compile(r"\[!\[([^\]]*)\]\((https?://[^)\s]+)\)\]\(([^)\s]+)\)")


def for_the_site(nb) -> None:
    """Adapt an executed notebook (in place) to a static page.

    Badge images come from the network: each becomes a plain link with its alt text ("Open in
    Colab"), and the theme's launch buttons do the same job. The setup cell (tagged ``setup``) does
    nothing on a page and is removed (MyST-NB's ``remove-cell`` tag). Widgets: :func:`static_widgets`.
    """
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = _BADGE.sub(lambda m: f"[{m.group(1)}]({m.group(3)})", cell.source)
        elif "setup" in cell.get("metadata", {}).get("tags", []):
            cell.metadata["tags"] = [*cell.metadata["tags"], "remove-cell"]
    static_widgets(nb)


def _sources() -> list[Path]:
    return sorted((ROOT / "notebooks").glob("[0-9]*.py"))


def exercise_table(stems) -> str:
    """A markdown table of every exercise (id, notebook, question, what its check compares), from
    ``lsbcore.exercises`` so that the list is written once; ``stems`` are the notebooks' file stems."""
    try:
        from .exercises import exercises
    except ImportError:
        return "*(the exercise checks are not available in this version of lsbcore)*\n"
    by_number = {stem[:2]: stem for stem in stems}

    def cell(text: str) -> str:
        return " ".join(str(text).split()).replace("|", "\\|")

    rows = ["| exercise | notebook | question | the check compares |", "|---|---|---|---|"]
    for ex_id, ex in exercises().items():
        stem = by_number.get(ex_id.split(".")[0])
        where = f"[{stem[:2]}](notebooks/{stem}.ipynb)" if stem else "—"
        rows.append(f"| `{ex_id}` | {where} | {cell(ex.question)} | {cell(ex.verifies)} |")
    return "\n".join(rows) + "\n"


def _stage(src_dir: Path, notebooks: list[Path]) -> None:
    """``book/`` + the theory page and README (for the glossary) + the notebooks, in ``src_dir``."""
    if src_dir.exists():
        shutil.rmtree(src_dir)
    shutil.copytree(BOOK_SRC, src_dir)
    shutil.copy2(ROOT / "docs" / "theory.md", src_dir / "_theory.md")
    shutil.copy2(ROOT / "README.md", src_dir / "_readme.md")
    (src_dir / "_exercises.md").write_text(exercise_table([p.stem for p in notebooks]), encoding="utf-8")
    (src_dir / "notebooks").mkdir()
    for nb_path in notebooks:
        nb = nbformat.read(nb_path, as_version=4)
        for_the_site(nb)
        nbformat.write(nb, src_dir / "notebooks" / nb_path.name)


def build_book(out=ROOT / "build" / "book", *, fast: bool = False, edition: str = "student",
               jobs: int = 1, cell_timeout: int = 300) -> Path:
    """Execute every notebook (or reuse its executed copy) and build the site; returns its index.html.

    ``fast`` runs the notebooks with ``LSB_FAST=1`` (smaller sizes, the same code); ``jobs`` notebooks
    run at the same time (each in its own kernel, one thread each).
    """
    if edition not in _EDITIONS:
        raise ValueError(f"edition must be one of {_EDITIONS}, got {edition!r}")
    if not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be a positive int, got {jobs!r}")
    out = Path(out)
    cache = out / "executed" / (edition + ("-fast" if fast else ""))
    cache.mkdir(parents=True, exist_ok=True)
    sources = _sources()
    if not sources:
        raise ValueError(f"no notebooks in {ROOT / 'notebooks'}")
    os.environ["LSB_FAST"] = "1" if fast else "0"   # the kernels inherit it
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.pop("MPLBACKEND", None)                # Agg would drop the inline figures
    t0 = time.monotonic()
    print(f">> executing {len(sources)} notebooks ({edition} edition, {'fast' if fast else 'full'} mode)",
          flush=True)

    def run(src):
        path, how = _executed(src, cache, edition, fast, cell_timeout)
        print(f"   {src.name}: {how}", flush=True)
        return path

    if jobs == 1:   # in this thread: nbclient's event loop as in `make run`
        executed = [run(src) for src in sources]
    else:
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            executed = list(pool.map(run, sources))
    t1 = time.monotonic()
    src_dir, html_dir = out / "src", out / "html"
    _stage(src_dir, executed)
    print(f">> sphinx-build {src_dir} -> {html_dir}", flush=True)
    cmd = [sys.executable, "-m", "sphinx", "-b", "html", "-q", "-n", "-W", "--keep-going",
           "-d", str(out / "doctrees"), str(src_dir), str(html_dir)]
    subprocess.run(cmd, check=True)
    print(f">> book built in {time.monotonic() - t0:.0f} s (notebooks {t1 - t0:.0f} s, sphinx "
          f"{time.monotonic() - t1:.0f} s): open {html_dir / 'index.html'}", flush=True)
    return html_dir / "index.html"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m lsbcore.book", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=ROOT / "build" / "book")
    p.add_argument("--fast", action="store_true", help="run the notebooks with LSB_FAST=1")
    p.add_argument("--edition", choices=_EDITIONS, default="student")
    p.add_argument("--jobs", type=int, default=1, help="notebooks executed at the same time")
    p.add_argument("--cell-timeout", type=int, default=300, help="seconds without a reply before a notebook restarts")
    a = p.parse_args(argv)
    if a.jobs < 1 or a.cell_timeout < 1:
        p.error("--jobs and --cell-timeout must be positive")
    build_book(a.out, fast=a.fast, edition=a.edition, jobs=a.jobs, cell_timeout=a.cell_timeout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
