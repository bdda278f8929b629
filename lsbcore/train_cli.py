"""``python -m lsbcore train``: the subcommand's parser and driver (the rest of the CLI is __main__).

    configuration (defaults ◄ --config ◄ --set ◄ --device) ─► process group / device ─► run folder
        ─► the experiment's phases (each a checkpointed lsbcore.train.fit) ─► metrics, figures, summary

A bad key or value, a missing data file, an unusable device → one line on stderr, exit status 2.
``time_limit`` reached → exit status 3 after saving; Ctrl-C → 130. Both resume with ``--resume``.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from . import distributed
from .config import ConfigError, as_dict, build, describe, differences, dump_toml, load_toml
from .experiments import EXPERIMENTS

__all__ = ["add_train_parser", "train", "RESUMABLE"]

#: keys that may change when a run is resumed (they do not change the numbers it computes)
RESUMABLE = ("device", "progress", "time_limit", "checkpoint_every")

EXIT_TIME_LIMIT, EXIT_INTERRUPTED = 3, 130


def _epilog() -> str:
    parts = ["experiments and their options (key = default; set with --set key=value or in the TOML file):"]
    for name, (cls, _, text) in EXPERIMENTS.items():
        parts.append(f"\n  {name}: {text}\n{describe(cls())}")
    parts.append("\nprecedence: defaults < --config FILE.toml (flat `key = value` lines) < --set < --device.\n"
                 "The run folder (default runs/EXPERIMENT-YYYYmmdd-HHMMSS) gets config.toml, checkpoints/,\n"
                 "metrics.csv, summary.json and PNG figures. Several processes/GPUs/nodes:\n"
                 "  torchrun --nproc_per_node=N -m lsbcore train EXPERIMENT ...   (batch sizes are global)")
    return "\n".join(parts)


def add_train_parser(sub) -> None:
    """Add the ``train`` subcommand to the subparsers of ``python -m lsbcore``."""
    tr = sub.add_parser("train", help="train an experiment into a run folder (train --help lists the options)",
                        description="Train an experiment into a run folder; resumable, and the same command runs "
                                    "under torchrun with DistributedDataParallel.",
                        epilog=_epilog(), formatter_class=argparse.RawDescriptionHelpFormatter)
    tr.add_argument("experiment", choices=list(EXPERIMENTS), metavar="EXPERIMENT",
                    help=f"one of: {', '.join(EXPERIMENTS)}")
    tr.add_argument("--config", type=Path, metavar="FILE.toml", help="a TOML file of option values")
    tr.add_argument("--set", nargs="+", action="append", default=[], metavar="KEY=VALUE", dest="sets",
                    help="override options (typed like their defaults), e.g. --set steps=500 lr=3e-4")
    tr.add_argument("--out", type=Path, metavar="RUN_DIR", help="the run folder (default runs/EXPERIMENT-TIME)")
    tr.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoints")
    tr.add_argument("--device", metavar="auto|cpu|cuda|mps", help="where to compute (same as --set device=...)")


def _configure(args):
    """The configuration of this run: (name, cfg); ConfigError on anything wrong."""
    name = args.experiment
    cls = EXPERIMENTS[name][0]()
    sets = [item for group in args.sets for item in group]
    if args.device is not None:
        sets.append(f"device={args.device}")
    table = load_toml(args.config) if args.config is not None else {}
    source = f"--config {str(args.config)!r}"
    if not args.resume:
        return name, build(cls, name, table=table, source=source, sets=sets)
    if args.out is None:
        raise ConfigError("--resume needs --out RUN_DIR (the folder of the run to continue)")
    saved_file = args.out / "config.toml"
    if not saved_file.is_file():
        raise ConfigError(f"--resume: {str(args.out)!r} holds no run (config.toml is missing)")
    saved = load_toml(saved_file)
    if saved.get("experiment") != name:
        raise ConfigError(f"--resume: {str(args.out)!r} is a run of {saved.get('experiment')!r}, not {name!r}")
    base = {k: v for k, v in saved.items() if k != "experiment"}
    cfg = build(cls, name, table={**base, **table}, source=f"{source} over {str(saved_file)!r}", sets=sets)
    diff = differences(base, as_dict(cfg), ignore=RESUMABLE)
    if diff:
        raise ConfigError(f"--resume: the configuration differs from the run's ({'; '.join(diff)}); only "
                          f"{', '.join(RESUMABLE)} may change")
    return name, cfg


def train(args, UsageError) -> int:
    """Run ``python -m lsbcore train`` with parsed ``args``; returns the exit status."""
    os.environ.setdefault("MPLBACKEND", "Agg")       # figures go to files, never to a window
    try:
        name, cfg = _configure(args)
        place = distributed.setup(cfg.device)
        if getattr(cfg, "amp", "none") == "bf16" and place.device.type != "cuda":
            raise ConfigError(f"amp: bf16 autocast is for CUDA devices; this run is on {place.device}")
    except ConfigError as err:
        raise UsageError(str(err)) from None
    except ValueError as err:                         # the device is not there, or a torchrun variable is bad
        raise UsageError(f"device: {err}") from None
    run = None
    try:
        out = args.out if args.out is not None else Path("runs") / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
        out = Path(distributed.broadcast_object(str(out)))     # every rank uses rank 0's folder
        from .runs import RunFolder

        run = RunFolder.open(out, name, as_dict(cfg), resume=args.resume, progress=cfg.progress)
        if distributed.is_main():
            where = f"{place.world_size} ranks ({place.backend}), " if place.world_size > 1 else ""
            print(dump_toml(as_dict(cfg), header=f"{name}: {where}device {place.device}, run folder {out}"),
                  flush=True)
        metrics = EXPERIMENTS[name][1](cfg, run, place)
    except ConfigError as err:
        raise UsageError(str(err)) from None
    except KeyboardInterrupt:
        _stopped(run, f"interrupted; continue with: python -m lsbcore train {name} --out {out} --resume")
        return EXIT_INTERRUPTED
    except Exception as err:
        from .train import TimeLimitReached

        if not isinstance(err, TimeLimitReached):
            raise
        _stopped(run, f"{err}\ncontinue with: python -m lsbcore train {name} --out {out} --resume")
        return EXIT_TIME_LIMIT
    finally:
        distributed.teardown()
    if place.is_main and metrics:
        for key, value in metrics.items():
            run.log_value("eval", key, value)
        run.write_metrics(summary=metrics)
        run.plot_losses()
        width = max(len(k) for k in metrics)
        print("\n".join(f"{k:<{width}}  {v:.6g}" if isinstance(v, float) else f"{k:<{width}}  {v}"
                        for k, v in metrics.items()))
        print(f"run folder: {run.path}", flush=True)
    run.close()
    return 0


def _stopped(run, message: str) -> None:
    if run is not None:
        run.write_metrics()
        run.close()
    if distributed.is_main():
        print(message, file=sys.stderr, flush=True)
