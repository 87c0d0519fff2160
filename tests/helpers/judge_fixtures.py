"""Small shared data for the judge tests (items, generations, configs)."""

from __future__ import annotations

from typing import Any

from kmedqa.items import make_item

DOMAINS = ("내과", "외과", "산부인과", "소아청소년과")
QTYPES = ("short", "descriptive")


def make_items(n_per_cell: int = 1, with_mcq: bool = True) -> list[dict[str, Any]]:
    items = []
    k = 0
    for d in DOMAINS:
        for q in QTYPES:
            for _ in range(n_per_cell):
                k += 1
                items.append(make_item(
                    id=f"em-{k:03d}", dataset="essential_medical", task=q, domain=d, q_type=q,
                    question=f"{d} 질문 {k}: 급성 충수염의 전형적인 증상은 무엇인가?",
                    answer=f"참고 답안 {k}: 배꼽 주위 통증이 우하복부로 이동하고 발열, 구토가 동반된다.",
                ))  # fmt: skip
    if with_mcq:
        items.append(make_item(
            id="em-mcq", dataset="essential_medical", task="mcq", domain="내과", q_type="mcq",
            question="다음 중 옳은 것은?", answer="B", options=["가", "나", "다"], answer_index=1,
        ))  # fmt: skip
    return items


def make_generations(
    items: list[dict[str, Any]], runs=("base", "ft")
) -> dict[str, list[dict[str, Any]]]:
    return {
        run: [
            {
                "id": it["id"],
                "run": run,
                "prompt_sha": "0" * 64,
                "output": f"[{run}] {it['id']} 답변: 우하복부 통증과 발열이 나타난다.",
                "n_new_tokens": 12,
            }
            for it in items
        ]
        for run in runs
    }
