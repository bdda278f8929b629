"""Command line of lsbcore: ``python -m lsbcore <command>``.

    python -m lsbcore rebuild-data [--steps N] [--only NAME ...] [--data-dir DIR]
        retrain the shipped autoencoders and digits classifier from fixed seeds (one CPU thread, so
        the bytes are reproducible) and rewrite data/MANIFEST.json
    python -m lsbcore verify-data [--data-dir DIR]
        check every shipped file against the sha256 sums of data/MANIFEST.json
    python -m lsbcore render NOTEBOOK.py ... [--out build/html] [--cell-timeout S]
        execute each notebook top to bottom in a fresh kernel and write it as HTML (`make run`)
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main(argv=None) -> int:
    from . import latent

    parser = argparse.ArgumentParser(prog="python -m lsbcore", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    rb = sub.add_parser("rebuild-data", help="retrain the shipped checkpoints and rewrite the manifest")
    rb.add_argument("--steps", type=int, default=None, help="override the training steps (for quick checks)")
    rb.add_argument("--only", nargs="+", default=None, metavar="NAME", help="rebuild only these files")
    rb.add_argument("--data-dir", type=Path, default=latent.DATA_DIR)
    rb.add_argument("--quiet", action="store_true", help="no progress bars")
    vd = sub.add_parser("verify-data", help="check the shipped files against the manifest")
    vd.add_argument("--data-dir", type=Path, default=latent.DATA_DIR)
    rn = sub.add_parser("render", help="execute notebooks and write them as HTML")
    rn.add_argument("notebooks", nargs="+", type=Path)
    rn.add_argument("--out", type=Path, default=Path("build/html"))
    rn.add_argument("--cell-timeout", type=int, default=300)
    args = parser.parse_args(argv)

    if args.command == "render":
        for src in args.notebooks:
            print(f">> executing {src}", flush=True)
            print(f"   wrote {render(src, args.out, cell_timeout=args.cell_timeout)}", flush=True)
        return 0

    if args.command == "rebuild-data":
        sums = latent.rebuild_data(args.data_dir, steps=args.steps, names=args.only, progress=not args.quiet)
        print(json.dumps(sums, indent=2))
        return 0
    sums = json.loads((args.data_dir / latent.MANIFEST_NAME).read_text())
    bad = 0
    for name in sorted(sums):
        try:
            latent.verify_file(args.data_dir / name, args.data_dir)
            print(f"ok       {name}")
        except (latent.ChecksumError, FileNotFoundError) as err:
            bad += 1
            print(f"FAILED   {name}: {err}")
    return 1 if bad else 0


def render(src: Path, out_dir: Path, *, cell_timeout: int = 300, retries: int = 2) -> Path:
    """Execute the notebook ``src`` (jupytext ``.py`` or ``.ipynb``) in a fresh kernel and write HTML.

    The kernel runs in the notebook's folder, so relative paths behave as in JupyterLab. A cell that
    fails stops the run with its traceback (nothing is rendered half-executed). On this kind of
    sandboxed machine a kernel's reply is lost now and then (`jupyter nbconvert --execute` hung in 3 of
    11 runs, with the kernel idle), so a cell that gets no reply within ``cell_timeout`` seconds (no
    cell of the course needs a minute) restarts the notebook in a fresh kernel, ``retries`` times.
    """
    import time

    import jupytext
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError
    from nbconvert import HTMLExporter

    src = Path(src)
    if not src.is_file():
        raise ValueError(f"notebook {str(src)!r} does not exist")
    nb = jupytext.read(src)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
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
    out_dir.mkdir(parents=True, exist_ok=True)
    dest = out_dir / (src.stem + ".html")
    dest.write_text(body, encoding="utf-8")
    print(f"   {src.name}: executed in {time.monotonic() - t0:.0f} s", flush=True)
    return dest


if __name__ == "__main__":
    sys.exit(main())
