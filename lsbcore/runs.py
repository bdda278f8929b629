"""The run folder of ``python -m lsbcore train``: configuration, checkpoints, metrics, figures.

::

    RUN_DIR/
      config.toml          the full configuration (defaults ◄ --config ◄ --set), read back by --resume
      checkpoints/*.pt     one per training phase, written by lsbcore.train.fit (sha256 inside; resumable)
      metrics.csv          phase,step,metric,value — losses (mean over each log window) and final metrics
      summary.json         the final metrics of the run
      *.png                sample grids / scatter plots and the loss curves (matplotlib, Agg)
      tb/                  TensorBoard event files, when torch.utils.tensorboard imports

Only rank 0 of a torchrun job writes (:func:`lsbcore.distributed.is_main`); the other ranks keep
the same in-memory record and write nothing. Values in metrics.csv are written with ``repr`` so a
resumed run can be compared with an uninterrupted one digit for digit.
"""
from __future__ import annotations

import csv
import json
import math
import os
from pathlib import Path
from typing import Optional

from . import distributed
from .config import ConfigError, dump_toml

__all__ = ["RunFolder"]

CONFIG_NAME = "config.toml"


class RunFolder:
    """A run folder; create it with :meth:`open` (new run, or ``resume=True`` for an existing one)."""

    def __init__(self, path: Path, *, progress: bool = True):
        self.path = Path(path)
        self.rows: list = []            # (phase, step, metric, value)
        self.progress = progress
        self._tb = None
        self._tb_tried = False

    # ------------------------------------------------------------------ opening
    @classmethod
    def open(cls, path, experiment: str, config: dict, *, resume: bool, progress: bool = True) -> "RunFolder":
        """Create ``path`` for a new run (refusing a folder that already holds one) or, with ``resume``,
        check that it holds a run of ``experiment``; write ``config.toml`` (rank 0)."""
        run = cls(Path(path), progress=progress)
        cfg_file = run.path / CONFIG_NAME
        if resume:
            if not cfg_file.is_file():
                raise ConfigError(f"--resume: {str(run.path)!r} holds no run ({CONFIG_NAME} is missing)")
        elif run.path.exists() and (cfg_file.exists() or (run.path / "checkpoints").exists()):
            raise ConfigError(f"--out {str(run.path)!r} already holds a run: pass --resume to continue it, "
                              f"or choose another folder")
        elif run.path.exists() and not run.path.is_dir():
            raise ConfigError(f"--out {str(run.path)!r} is not a directory")
        distributed.barrier()                  # every rank has looked before rank 0 creates anything
        if distributed.is_main():
            (run.path / "checkpoints").mkdir(parents=True, exist_ok=True)
            text = dump_toml({"experiment": experiment, **config},
                             header=f"python -m lsbcore train {experiment}: the full configuration of this run")
            _atomic_write(cfg_file, text)
        distributed.barrier()
        return run

    def checkpoint(self, phase: str) -> Path:
        """The checkpoint file of one training phase."""
        return self.path / "checkpoints" / f"{phase}.pt"

    # ------------------------------------------------------------------ metrics
    def log_losses(self, phase: str, losses, every: int, *, new_from: int = 0) -> None:
        """Record the mean loss of each window of ``every`` steps (the last window may be shorter).
        TensorBoard gets the windows that end after ``new_from`` (the steps this process trained)."""
        for lo in range(0, len(losses), every):
            chunk = losses[lo:lo + every]
            value = math.fsum(chunk) / len(chunk)
            step = lo + len(chunk)
            self.rows.append((phase, step, "loss", value))
            if step > new_from:
                self._scalar(f"{phase}/loss", value, step)

    def log_value(self, phase: str, metric: str, value: float, step: int = 0) -> None:
        self.rows.append((phase, step, metric, float(value)))
        self._scalar(f"{phase}/{metric}", float(value), step)

    def write_metrics(self, summary: Optional[dict] = None) -> None:
        """Rewrite metrics.csv (and summary.json) from everything recorded so far (rank 0)."""
        if not distributed.is_main():
            return
        lines = [["phase", "step", "metric", "value"]] + [[p, s, m, repr(float(v))] for p, s, m, v in self.rows]
        tmp = self.path / ".metrics.csv.tmp"
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            csv.writer(f).writerows(lines)
        os.replace(tmp, self.path / "metrics.csv")
        if summary is not None:
            _atomic_write(self.path / "summary.json", json.dumps(summary, indent=2, sort_keys=True) + "\n")
        if self._tb is not None:
            self._tb.flush()

    def _scalar(self, tag: str, value: float, step: int) -> None:
        if not distributed.is_main():
            return
        if not self._tb_tried:
            self._tb_tried = True
            try:
                from torch.utils.tensorboard import SummaryWriter
            except Exception:        # tensorboard not installed: skip silently
                SummaryWriter = None
            if SummaryWriter is not None:
                self._tb = SummaryWriter(log_dir=str(self.path / "tb"))
        if self._tb is not None:
            self._tb.add_scalar(tag, value, step)

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
            self._tb = None

    # ------------------------------------------------------------------ figures
    def save_figure(self, fig, name: str) -> Optional[Path]:
        """Save a matplotlib figure as ``name.png`` (rank 0) and close it."""
        import matplotlib.pyplot as plt

        out = None
        if distributed.is_main():
            out = self.path / f"{name}.png"
            fig.savefig(out, dpi=110)
        plt.close(fig)
        return out

    def plot_losses(self) -> None:
        """One panel per training phase: the windowed loss against the step (log scale when positive)."""
        import matplotlib
        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt

        phases = sorted({p for p, _, m, _ in self.rows if m == "loss"})
        if not phases:
            return
        fig, axes = plt.subplots(1, len(phases), figsize=(3.6 * len(phases), 3.0), squeeze=False,
                                 constrained_layout=True)
        for ax, phase in zip(axes[0], phases):
            pts = [(s, v) for p, s, m, v in self.rows if p == phase and m == "loss"]
            ax.plot([s for s, _ in pts], [v for _, v in pts], lw=1)
            if all(v > 0 for _, v in pts):
                ax.set_yscale("log")
            ax.set_xlabel("step")
            ax.set_ylabel("loss (window mean)")
            ax.set_title(f"training loss: {phase}")
        self.save_figure(fig, "losses")


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
