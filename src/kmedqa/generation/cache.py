"""The generation cache: one fsync'ed JSON line per generated row, outside Snakemake's
outputs, in a file keyed by model, adapter hash and decoding settings (a killed job
rerun skips every cached batch)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kmedqa.io import dumps, read_jsonl_tail_tolerant, sha256_text


def cache_key(info: dict[str, Any], adapter_sha: str | None, settings: dict[str, Any]) -> str:
    ident = {
        "model": info["path"],
        "revision": info.get("revision"),
        "dtype": info.get("dtype"),
        "adapter": adapter_sha,
        "settings": settings,
    }
    return sha256_text(dumps(ident))[:24]


def row_key(row: dict[str, Any]) -> tuple[str, str, int | None]:
    """A generated answer is reused only for the same prompt and the same token budget."""
    return (row["id"], row["prompt_sha"], row.get("max_new_tokens"))


def load_cache(path: Path) -> dict[tuple[str, str, int | None], dict[str, Any]]:
    """Cached rows by key; a torn last line (a kill mid-write) is dropped with a warning
    and recomputed (:func:`kmedqa.io.read_jsonl_tail_tolerant`)."""
    done: dict[tuple[str, str, int | None], dict[str, Any]] = {}
    for row in read_jsonl_tail_tolerant(path):
        if isinstance(row.get("id"), str) and isinstance(row.get("prompt_sha"), str):
            done[row_key(row)] = row
    return done
