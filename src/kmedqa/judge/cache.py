"""Content-addressed cache of judge replies: one small JSON file per key.

Key = sha256 of the canonical JSON of ``(backend, judge model, rubric id@version,
question, reference answer, model answer)``. A file is written atomically (temp file
+ rename) the moment its reply arrives, so a killed job loses at most the item in
flight, and concurrent jobs sharing the directory never see half a file. Keep the
directory outside Snakemake's outputs (e.g. ``results/cache/judge/``) so a rule that
fails or reruns does not delete it.

Only *replies* are cached: a valid score, or an invalid reply after its retries.
Transport failures (429/5xx/timeouts past their retries, 4xx) are not replies and are
not cached, so a rerun asks again.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from kmedqa.io import atomic_write_text, dumps, sha256_text

log = logging.getLogger(__name__)


def reply_key(
    backend: str, model: str, rubric_version: str, question: str, reference: str, answer: str
) -> str:
    """sha256 hex (64 chars, also a valid batch ``custom_id``) of the judged content."""
    return sha256_text(dumps([backend, model, rubric_version, question, reference, answer]))


class JudgeCache:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        p = self.path(key)
        if not p.exists():
            return None
        try:
            entry = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:  # JSON or UTF-8 damage: treat as absent, re-ask
            log.warning("judge cache: ignoring unreadable entry %s (%s)", p.name, err)
            return None
        if not isinstance(entry, dict) or entry.get("key") != key:
            log.warning("judge cache: ignoring entry %s with a mismatching key", p.name)
            return None
        return entry

    def put(self, entry: dict[str, Any]) -> None:
        atomic_write_text(self.path(entry["key"]), dumps(entry) + "\n")

    def __contains__(self, key: str) -> bool:
        return self.get(key) is not None
