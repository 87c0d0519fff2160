"""LLM-as-judge: reference-guided rubric scores (accuracy, completeness, relevance, 1-5).

Entry points: :func:`kmedqa.judge.core.judge_run` (score), :func:`kmedqa.judge.table.table5`
(the study's Table 5), ``kmedqa judge`` / ``kmedqa judge-table`` on the command line.
"""

from kmedqa.judge.core import judge_run, resolve_config
from kmedqa.judge.rubric import load_rubric

__all__ = ["judge_run", "load_rubric", "resolve_config"]
