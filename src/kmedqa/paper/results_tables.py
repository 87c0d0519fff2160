"""The paper's results tables: ROUGE and MCQ accuracy by question type (the essential-medical
study's Table 4), MCQ format compliance, clinical notes and the language of the answers."""

from __future__ import annotations

from typing import Any

from kmedqa.paper.tables import NOT_RUN, Table, run_order

Q_TYPES = ("객관식", "단답형", "서술형")
ROUGE_COLS = ["rouge1_paper", "rouge2_paper", "rougeL_paper", "rouge1_ko", "rouge2_ko", "rougeL_ko"]


def main_results_table(summaries: list[dict[str, Any]], note: str) -> Table:
    """The essential-medical study's Table 4, both ROUGE variants side by side, plus MCQ accuracy."""
    cols = [
        "eval set",
        "type",
        "run",
        "n",
        "R-1 paper",
        "R-2 paper",
        "R-L paper",
        "R-1 ko",
        "R-2 ko",
        "R-L ko",
        "MCQ acc.",
        "hit budget",
    ]
    t = Table(
        "main_results",
        "ROUGE (rouge-score default tokenizer = paper; Korean morphemes = ko), MCQ accuracy (strict) "
        "and the share of outputs that hit their token budget, by question type",
        cols,
        align="lllr" + "r" * 8,
    )
    rows = [s for s in summaries if s["group"] in ("overall", "q_type")]
    for es in sorted({s["eval_set"] for s in rows}):
        labels = ["overall"] + [
            q for q in Q_TYPES if any(s.get("q_type") == q for s in rows if s["eval_set"] == es)
        ]
        for lab in labels:
            for s in sorted(
                (s for s in rows if s["eval_set"] == es), key=lambda s: run_order(s["run"])
            ):
                if (lab == "overall") != (s["group"] == "overall") or (
                    lab != "overall" and s.get("q_type") != lab
                ):
                    continue
                t.rows.append(
                    [
                        es,
                        "전체" if lab == "overall" else lab,
                        s["run"],
                        s["n"],
                        *[s.get(c) for c in ROUGE_COLS],
                        s.get("mcq_strict"),
                        s.get("truncation_rate"),
                    ]
                )
    t.notes.append(note)
    t.notes.append(
        "hit budget: share of outputs that stopped at their max_new_tokens (possibly truncated); "
        "a high share means ROUGE and lenient MCQ were measured on cut answers."
    )
    return t


def mcq_table(summaries: list[dict[str, Any]]) -> Table:
    t = Table(
        "mcq_format",
        "MCQ: strict (expected answer form and right), lenient (choice identifiable and right), format compliance",
        ["eval set", "run", "n MCQ", "strict", "lenient", "lenient − strict", "format ok"],
        align="llrrrrr",
    )
    for s in sorted(
        (s for s in summaries if s["group"] == "overall" and s.get("n_mcq_strict")),
        key=lambda s: (s["eval_set"], run_order(s["run"])),
    ):
        gap = None if s.get("mcq_lenient") is None else s["mcq_lenient"] - s["mcq_strict"]
        t.rows.append(
            [
                s["eval_set"],
                s["run"],
                s["n_mcq_strict"],
                s["mcq_strict"],
                s.get("mcq_lenient"),
                gap,
                s.get("format_ok"),
            ]
        )
    t.notes.append(
        "A base model that knows the answer but not the format scores low on strict and format ok, not on lenient."
    )
    return t


CLINICAL_COLS = [
    ("section_correct", "Section acc."),
    ("summary_rouge1_paper", "R-1"),
    ("summary_rouge2_paper", "R-2"),
    ("summary_rougeL_paper", "R-L"),
    ("summary_bertscore_f1", "BERTScore F1"),
    ("summary_bleurt", "BLEURT"),
    ("summary_aggregate", "Aggregate"),
]


def clinical_notes_table(
    summaries: list[dict[str, Any]], scorers: dict[str, Any] | None = None
) -> Table:
    """The clinical-notes study's table: section accuracy, summary ROUGE, BERTScore, BLEURT and
    their aggregate, per eval set x run; model-based columns say "not run" when unconfigured."""
    t = Table(
        "clinical_notes",
        "Clinical notes (MTS-Dialog section summaries): section-header accuracy, ROUGE, BERTScore "
        "F1, BLEURT and the aggregate mean(ROUGE-1, BERTScore F1, BLEURT)",
        ["eval set", "run", "n", *(label for _, label in CLINICAL_COLS)],
        align="llr" + "r" * len(CLINICAL_COLS),
    )
    rows = [s for s in summaries if s["group"] == "overall" and s.get("n_section_correct")]
    for s in sorted(rows, key=lambda s: (s["eval_set"], run_order(s["run"]))):
        cells = [s.get(c) if s.get(f"n_{c}") else NOT_RUN for c, _ in CLINICAL_COLS]
        t.rows.append([s["eval_set"], s["run"], s["n_section_correct"], *cells])
    if not rows:
        t.notes.append("No eval set of this study has section_summary items.")
        return t
    scorers = scorers or {}
    done = []
    if scorers.get("bertscore"):
        bs = scorers["bertscore"]
        done.append(f"BERTScore: {bs.get('hash') or bs['model']}")
    if scorers.get("bleurt"):
        done.append(f"BLEURT: {scorers['bleurt']['model']} (first logit of (reference, summary))")
    missing = [n for n in ("bertscore", "bleurt") if not scorers.get(n)]
    if missing:
        done.append(
            " and ".join({"bertscore": "BERTScore", "bleurt": "BLEURT"}[n] for n in missing)
            + " not run: no model configured ("
            + ", ".join(f"evaluation.scoring.{n}.model" for n in missing)
            + "), so there is no aggregate either."
        )
    t.notes.append(
        "Scores of the summary after the section code; ROUGE with rouge-score's default "
        "tokenizer. " + "; ".join(done)
    )
    return t


def code_switching_table(scores: dict[tuple[str, str], list[dict[str, Any]]]) -> Table:
    t = Table(
        "code_switching",
        "Language of the answers: share of letters that are Hangul / Chinese characters, and answers containing any Chinese character",
        ["eval set", "run", "n", "Hangul share", "Han share", "answers with Han"],
        align="llrrrr",
    )
    for (es, run), rows in sorted(scores.items(), key=lambda kv: (kv[0][0], run_order(kv[0][1]))):
        hg = [r["lang_hangul_ratio"] for r in rows if r.get("lang_hangul_ratio") is not None]
        hn = [r["lang_han_ratio"] for r in rows if r.get("lang_han_ratio") is not None]
        any_han = sum(1 for x in hn if x > 0)
        t.rows.append(
            [
                es,
                run,
                len(rows),
                sum(hg) / len(hg) if hg else None,
                sum(hn) / len(hn) if hn else None,
                f"{any_han} ({any_han / len(rows):.1%})" if rows else "–",
            ]
        )
    return t
