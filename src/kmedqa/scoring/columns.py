"""The columns of a score row (:mod:`kmedqa.scoring` says what each one means)."""

from __future__ import annotations

from kmedqa.metrics.rouge import ROUGE_COLUMNS

SUMMARY_ROUGE_COLUMNS = tuple(f"summary_{c}" for c in ROUGE_COLUMNS)
LABEL_COLUMNS = (
    "id",
    "item_sha",
    "run",
    "eval_set",
    "dataset",
    "task",
    "domain",
    "q_type",
    "format",
    "format_source",
    "status",
)
# Kept on a row whose generation is not an answer (status refused / malformed).
KEPT_WHEN_NOT_ANSWERED = ("n_new_tokens", "hit_budget", "max_new_tokens")
METRIC_COLUMNS = (
    "n_new_tokens",
    "hit_budget",
    *ROUGE_COLUMNS,
    "mcq_strict",
    "mcq_lenient",
    "format_ok",
    "lang_hangul_ratio",
    "lang_han_ratio",
    "section_correct",
    *SUMMARY_ROUGE_COLUMNS,
)
ROW_COLUMNS = (
    *LABEL_COLUMNS,
    *METRIC_COLUMNS,
    "strict_choice",
    "lenient_choice",
    "max_new_tokens",
)
