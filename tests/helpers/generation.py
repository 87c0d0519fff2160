"""Keyword arguments of :func:`kmedqa.generation.generate` with the engine's knobs gathered
into one :class:`~kmedqa.generation.settings.GenerationSettings`."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from kmedqa.generation.settings import GenerationSettings

KNOBS = frozenset(f.name for f in fields(GenerationSettings))


def with_settings(kw: dict[str, Any], **defaults: Any) -> dict[str, Any]:
    """``kw`` less its knobs, plus ``settings`` built from them over ``defaults``."""
    knobs = {**defaults, **{k: v for k, v in kw.items() if k in KNOBS}}
    return {k: v for k, v in kw.items() if k not in KNOBS} | {
        "settings": GenerationSettings(**knobs)
    }
