"""Command line of lsbcore: ``python -m lsbcore <command>``.

    python -m lsbcore rebuild-data [--steps N] [--only NAME ...] [--data-dir DIR]
        retrain the shipped autoencoders and digits classifier from fixed seeds (one CPU thread, so
        the bytes are reproducible) and rewrite data/MANIFEST.json
    python -m lsbcore verify-data [--data-dir DIR]
        check every shipped file against the sha256 sums of data/MANIFEST.json
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
    args = parser.parse_args(argv)

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


if __name__ == "__main__":
    sys.exit(main())
