"""Checkpoints and resume: the newest complete ``checkpoint-N`` and what it recorded.

A killed training job rerun with the same config resumes from the checkpoint found here;
its loss history and token count come back from the checkpoint's ``trainer_state.json``.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

log = logging.getLogger(__name__)


def last_checkpoint(checkpoint_dir: str | Path) -> str | None:
    """The newest *complete* ``checkpoint-N`` in ``checkpoint_dir``, or None.

    The Trainer writes a checkpoint's weights, optimizer, scheduler and RNG state first and
    its ``trainer_state.json`` last, so a job killed while saving leaves a directory without
    a readable state. Such a directory is skipped (and said so): the run resumes from the
    previous checkpoint, and the Trainer rewrites the half-written one when it gets there.
    """
    path = Path(checkpoint_dir)
    if not path.is_dir():
        return None
    numbered = [
        (int(m.group(1)), d)
        for d in path.iterdir()
        if d.is_dir() and (m := re.fullmatch(r"checkpoint-(\d+)", d.name))
    ]
    for _, d in sorted(numbered, reverse=True):
        try:
            state = json.loads((d / "trainer_state.json").read_text())
            if "global_step" in state and "log_history" in state:
                return str(d)
            reason = "its trainer_state.json lacks global_step/log_history"
        except FileNotFoundError:
            reason = "it has no trainer_state.json"
        except (OSError, ValueError) as e:
            reason = f"its trainer_state.json is unreadable ({e})"
        log.warning(
            "skipping incomplete checkpoint %s: %s (the job was killed while saving)", d, reason
        )
    return None


def checkpoint_progress(state_json: Path) -> tuple[int, int]:
    """(global step, input tokens seen) recorded in a checkpoint's trainer state."""
    state = json.loads(state_json.read_text())
    return int(state.get("global_step") or 0), int(state.get("num_input_tokens_seen") or 0)
