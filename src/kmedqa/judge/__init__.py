"""LLM-as-judge: reference-guided rubric scores (accuracy, completeness, relevance, 1-5).

Layers, bottom up: :mod:`kmedqa.judge.base` (types, config, privacy, cost; with
:mod:`~kmedqa.judge.rubric` and :mod:`~kmedqa.judge.cache`), :mod:`kmedqa.judge.backends`
(anthropic, local), :mod:`kmedqa.judge.run` (sample selection, backend choice,
:func:`~kmedqa.judge.run.judge_run`). :func:`kmedqa.judge.table.table5` writes the study's
Table 5; ``kmedqa judge`` / ``kmedqa judge-table`` are the command line.
"""
