"""Command line of lsbcore: ``python -m lsbcore <command>``.

    python -m lsbcore rebuild-data [--steps N] [--only NAME ...] [--data-dir DIR]
        retrain the shipped autoencoders and digits classifier from fixed seeds (one CPU thread, so
        the bytes are reproducible) and rewrite data/MANIFEST.json
    python -m lsbcore verify-data [--data-dir DIR]
        check every shipped file against the sha256 sums of data/MANIFEST.json
    python -m lsbcore render NOTEBOOK.py ... [--out build/html] [--cell-timeout S] [--edition student|instructor]
        execute each notebook top to bottom in a fresh kernel and write it as HTML (`make run`)
    python -m lsbcore train EXPERIMENT [--config FILE.toml] [--set key=value ...] [--out RUN_DIR]
                            [--resume] [--device auto|cpu|cuda|mps]
        train an experiment (latent-sb, bridge-matching, vsdm) into a run folder; the same command
        runs under `torchrun --nproc_per_node=N -m lsbcore train ...` with DistributedDataParallel

A usage error (an unknown command or file name, a missing directory, an unreadable manifest, a
non-positive number, a bad configuration key or value) prints one line on stderr and exits with
status 2, as argparse does; a shipped file that fails its checksum makes ``verify-data`` exit with
status 1; a training run stopped by its ``time_limit`` exits with status 3 (continue it with
``--resume``), one interrupted by Ctrl-C with status 130.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .utils import ChecksumError

PROG = "python -m lsbcore"


class _DataDir:
    """The default --data-dir (lsbcore.shipped.DATA_DIR), imported only when a data command runs:
    lsbcore.shipped pulls in the trainers, POT and scikit-learn, which `train` under torchrun
    should not pay for on every rank at start-up."""

    def __repr__(self):
        return "data/ of the package"


class UsageError(Exception):
    """A bad command line: reported as one line on stderr, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse prints the usage too; one line is enough to act on
        raise UsageError(f"{message} (see {PROG} --help)")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    rb = sub.add_parser("rebuild-data", help="retrain the shipped checkpoints and rewrite the manifest")
    rb.add_argument("--steps", type=_positive_int, default=None, help="override the training steps (quick checks)")
    rb.add_argument("--only", nargs="+", default=None, metavar="NAME", help="rebuild only these files")
    rb.add_argument("--data-dir", type=Path, default=_DataDir())
    rb.add_argument("--quiet", action="store_true", help="no progress bars")
    vd = sub.add_parser("verify-data", help="check the shipped files against the manifest")
    vd.add_argument("--data-dir", type=Path, default=_DataDir())
    rn = sub.add_parser("render", help="execute notebooks and write them as HTML")
    rn.add_argument("notebooks", nargs="+", type=Path)
    rn.add_argument("--out", type=Path, default=Path("build/html"))
    rn.add_argument("--cell-timeout", type=_positive_int, default=300)
    rn.add_argument("--edition", choices=("student", "instructor"), default="student",
                    help="student: solutions removed (default); instructor: solutions in")
    from .train_cli import add_train_parser

    add_train_parser(sub)
    return parser


def _data_dir(value) -> Path:
    from .shipped import DATA_DIR

    return DATA_DIR if isinstance(value, _DataDir) else value


def _read_manifest(data_dir: Path) -> dict:
    """The manifest of ``data_dir`` as {file name: sha256}, or a UsageError saying what is wrong."""
    from .shipped import MANIFEST_NAME

    if not data_dir.is_dir():
        raise UsageError(f"--data-dir {str(data_dir)!r} is not a directory")
    path = data_dir / MANIFEST_NAME
    try:
        sums = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"no {MANIFEST_NAME} in {str(data_dir)!r} (rebuild it with `{PROG} rebuild-data`)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UsageError(f"{str(path)!r} is not a readable JSON manifest: {err}") from None
    if not isinstance(sums, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in sums.items()):
        raise UsageError(f"{str(path)!r} must map file names to sha256 strings")
    if any(Path(k).name != k for k in sums):
        raise UsageError(f"{str(path)!r} names a file outside its directory")
    return sums


def _verify(data_dir: Path) -> int:
    from .shipped import verify_file

    data_dir = _data_dir(data_dir)
    bad = 0
    for name in sorted(_read_manifest(data_dir)):
        try:
            verify_file(data_dir / name, data_dir)
            print(f"ok       {name}")
        except (ChecksumError, FileNotFoundError) as err:
            bad += 1
            print(f"FAILED   {name}: {err}")
    return 1 if bad else 0


def _rebuild(args) -> int:
    from .shipped import rebuild_data

    data_dir = _data_dir(args.data_dir)
    if data_dir.exists() and not data_dir.is_dir():
        raise UsageError(f"--data-dir {str(data_dir)!r} is not a directory")
    if not data_dir.exists() and not data_dir.parent.is_dir():
        raise UsageError(f"--data-dir {str(data_dir)!r}: its parent directory does not exist")
    try:
        sums = rebuild_data(data_dir, steps=args.steps, names=args.only, progress=not args.quiet)
    except (ValueError, TypeError) as err:  # e.g. an unknown --only name, checked before any training
        raise UsageError(str(err)) from None
    print(json.dumps(sums, indent=2))
    return 0


def _render(args) -> int:
    from .build import render  # the notebook-execution stack is slow to import: only for this command

    missing = [str(p) for p in args.notebooks if not p.is_file()]
    if missing:
        raise UsageError(f"no such notebook: {', '.join(missing)}")
    for src in args.notebooks:
        print(f">> executing {src}", flush=True)
        print(f"   wrote {render(src, args.out, cell_timeout=args.cell_timeout, edition=args.edition)}", flush=True)
    return 0


def main(argv=None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``); returns the exit status."""
    try:
        args = _parser().parse_args(argv)
        if args.command == "render":
            return _render(args)
        if args.command == "rebuild-data":
            return _rebuild(args)
        if args.command == "train":
            from .train_cli import train

            return train(args, UsageError)
        return _verify(args.data_dir)
    except UsageError as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
