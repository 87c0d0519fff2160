"""Each study's prompts render to the text the study publishes (seeds 001, 003, 004)."""

from __future__ import annotations

from pathlib import Path

import yaml

from kmedqa.prompts import build_messages, format_name, get_format, load_tasks, target_text

ROOT = Path(__file__).resolve().parents[1]

# Study 001 (JKSCI 2026), section III.2: the system prompt, verbatim.
STUDY_001_SYSTEM = (
    "당신은 한국의 필수의료 분야에 특화된 의학 전문 AI 어시스턴트입니다. "
    "임상 근거에 기반하여 정확하고 신뢰할 수 있는 의학 지식을 제공합니다."
)
# Study 004 (Gemma-2-2b-it report), its KorMedMCQA data example: instruction and the
# question's last line; the answer is the letter.
STUDY_004_INSTRUCTION = "질문을 보고, 제시된 [A-E] 중 정답을 맞추세요."

AIHUB_ITEM = {
    "id": "aihub-1",
    "dataset": "aihub71875",
    "task": "mcq",
    "domain": "내과",
    "q_type": "객관식",
    "question": "류마티스 관절염에 쓰는 TNF 억제제는?\n1) 메토트렉세이트\n2) 아달리무맙\n3) 프레드니솔론",
    "options": ["메토트렉세이트", "아달리무맙", "프레드니솔론"],
    "answer": "2) 아달리무맙",
    "answer_index": 1,
    "meta": {"format": "aihub"},
}
# Study 004's own data example (KorMedMCQA doctor), shortened to its form.
KMM_ITEM = {
    "id": "kmm-1",
    "dataset": "kormedmcqa",
    "task": "mcq",
    "domain": "doctor",
    "q_type": "객관식",
    "question": "65세 여자가 혀의 통증으로 내원하였다. 진단을 위한 추가적인 검사 항목은?",
    "options": [
        "항핵항체(ANA)",
        "류마티스인자(RF)",
        "비타민B12(cobalamin)",
        "갑상샘자극호르몬(TSH)",
        "알칼리인산분해효소(ALP)",
    ],
    "answer": "C. 비타민B12(cobalamin)",
    "answer_index": 2,
    "meta": {"format": "kormedmcqa"},
}


def _config(name: str) -> dict:
    return yaml.safe_load((ROOT / "experiments" / name).read_text(encoding="utf-8"))


def test_study_001_aihub_prompt_is_the_published_system_prompt_verbatim():
    cfg = _config("essential_medical.yaml")
    assert cfg["datasets"]["aihub"]["format"] == "aihub"
    msgs = build_messages(AIHUB_ITEM, get_format(format_name(AIHUB_ITEM)))
    assert msgs == [
        {"role": "system", "content": STUDY_001_SYSTEM},
        {"role": "user", "content": AIHUB_ITEM["question"]},
    ]
    assert target_text(AIHUB_ITEM, get_format("aihub")) == "2) 아달리무맙"


def test_the_answer_format_variant_is_separate_and_declared_as_an_extra_eval():
    variant = build_messages(AIHUB_ITEM, get_format("aihub_answer_format"))
    assert variant[0]["content"] != STUDY_001_SYSTEM
    assert '"번호) 내용" 형식으로 답하세요' in variant[0]["content"]
    assert variant[1:] == build_messages(AIHUB_ITEM, get_format("aihub"))[1:]
    sets = _config("essential_medical.yaml")["evaluation"]["eval_sets"]
    extra = [n for n, es in sets.items() if es.get("format") == "aihub_answer_format"]
    assert extra and all(sets[n]["dataset"] == "aihub" for n in extra)
    # the published-prompt eval sets keep the dataset's (published) format
    assert sets["aihub-test"].get("format") is None


def test_study_001_kormedmcqa_is_evaluated_lettered_and_numbered():
    sets = _config("essential_medical.yaml")["evaluation"]["eval_sets"]
    by_format = {(es["dataset"], es.get("format", "kormedmcqa")) for es in sets.values()}
    assert ("kormedmcqa_doctor", "kormedmcqa") in by_format
    assert ("kormedmcqa_doctor", "kormedmcqa_numbered") in by_format
    msgs = build_messages(KMM_ITEM, get_format("kormedmcqa_numbered"))
    assert msgs[0] == {"role": "system", "content": STUDY_001_SYSTEM}
    assert msgs[1]["content"] == (
        "65세 여자가 혀의 통증으로 내원하였다. 진단을 위한 추가적인 검사 항목은?\n"
        "1) 항핵항체(ANA)\n2) 류마티스인자(RF)\n3) 비타민B12(cobalamin)\n"
        "4) 갑상샘자극호르몬(TSH)\n5) 알칼리인산분해효소(ALP)"
    )
    assert get_format("kormedmcqa_numbered")["answer_format"] == "number"


def test_study_004_training_format_is_the_published_record():
    cfg = _config("gemma2_kormedmcqa.yaml")
    kmm = [n for n, ds in cfg["datasets"].items() if ds["loader"] == "kormedmcqa"]
    assert len(kmm) == 4
    assert all(cfg["datasets"][n]["format"] == "kormedmcqa_gemma2_report" for n in kmm)
    fmt = get_format("kormedmcqa_gemma2_report")
    msgs = build_messages(KMM_ITEM, fmt)
    assert msgs == [
        {"role": "system", "content": STUDY_004_INSTRUCTION},
        {
            "role": "user",
            "content": (
                "65세 여자가 혀의 통증으로 내원하였다. 진단을 위한 추가적인 검사 항목은?\n"
                "A. 항핵항체(ANA)\nB. 류마티스인자(RF)\nC. 비타민B12(cobalamin)\n"
                "D. 갑상샘자극호르몬(TSH)\nE. 알칼리인산분해효소(ALP)\n정답:"
            ),
        },
    ]
    assert target_text(KMM_ITEM, fmt) == "C"
    # its evaluation format is not the training format (lm-eval's kormedmcqa task)
    assert all(
        es.get("format", "x") != "kormedmcqa_gemma2_report"
        for es in cfg["evaluation"]["eval_sets"].values()
    )


def test_system_prompt_texts_are_single_lines_without_stray_whitespace():
    for name, text in load_tasks()["system_prompts"].items():
        assert text == text.strip() and "\n" not in text and "  " not in text, name
