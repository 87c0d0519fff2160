"""The per-step loss log of a training job (``loss_csv``): train and validation loss, lr.

Rows come from the Trainer's log entries as they arrive; a resumed job first restores
the rows of its checkpoint's log history, so the curve covers the whole run.
"""

from __future__ import annotations

import csv
import io
import json
import statistics
from pathlib import Path
from typing import Any

from kmedqa.io import atomic_write_text

LOSS_KEYS = (("loss", "train_loss"), ("eval_loss", "val_loss"), ("learning_rate", "lr"))
LOSS_COLUMNS = ["step", "epoch", "train_loss", "val_loss", "lr"]


def loss_row(logs: dict[str, Any], step: int | None, epoch: float | None) -> dict[str, Any] | None:
    """One loss-log row from a trainer log entry, or None if it has no loss."""
    row = {"step": logs.get("step", step), "epoch": logs.get("epoch", epoch)}
    row.update({col: logs[key] for key, col in LOSS_KEYS if key in logs})
    return row if len(row) > 2 else None


def history_rows(state_json: Path) -> list[dict[str, Any]]:
    """The loss rows of a checkpoint's log history (a resumed run keeps its curve)."""
    hist = json.loads(state_json.read_text())["log_history"]
    return [r for r in (loss_row(logs, None, None) for logs in hist) if r]


def loss_logger(rows: list[dict[str, Any]]):
    """A ``TrainerCallback`` that appends each logged loss to ``rows``."""
    from transformers import TrainerCallback

    class LossLog(TrainerCallback):
        def on_log(self, a, state, control, logs=None, **kw):
            row = loss_row(logs or {}, state.global_step, state.epoch)
            if row:
                rows.append(row)

    return LossLog()


def step_timer(ends: list[float]):
    """A ``TrainerCallback`` that appends the clock at the start of training and at the end
    of each optimizer step to ``ends`` (see :func:`step_times`)."""
    import time

    from transformers import TrainerCallback

    class StepTimer(TrainerCallback):
        def on_train_begin(self, a, state, control, **kw):
            ends.append(time.perf_counter())

        def on_step_end(self, a, state, control, **kw):
            ends.append(time.perf_counter())

    return StepTimer()


def step_times(ends: list[float]) -> dict[str, Any] | None:
    """Seconds per optimizer step from :func:`step_timer`'s clock readings: the first step
    (which pays the warm-up: kernels, the optimizer's state, the first batches) apart from
    the median of the rest, which is what a long run pays per step."""
    d = [b - a for a, b in zip(ends, ends[1:], strict=False)]
    if not d:
        return None
    median = statistics.median(d[1:]) if len(d) > 1 else None
    return {"steps": len(d), "first_s": d[0], "median_after_first_s": median}


def write_loss_csv(path: str, rows: list[dict[str, Any]]) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=LOSS_COLUMNS, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    seen = set()
    for r in rows:  # a resumed run may log a step twice; keep the first
        key = (r.get("step"), "val_loss" in r, "train_loss" in r)
        if key in seen:
            continue
        seen.add(key)
        w.writerow(r)
    atomic_write_text(path, buf.getvalue())
