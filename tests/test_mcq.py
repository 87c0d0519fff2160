"""Option extraction: strict vs lenient vs format_ok, per answer format."""

import pytest

from kmedqa.metrics.mcq import (
    EXTRACTION,
    extract_choice,
    lm_eval_extract,
    option_text_matches,
    strip_artifacts,
)

DRUGS = ["인플릭시맙", "에타너셉트", "아달리무맙", "토실리주맙", "리툭시맙"]

# (output, strict_choice, lenient_choice, format_ok) for answer_format "number"
NUMBER_CASES = [
    ("3) 아달리무맙", 2, 2, True),
    ("3)", 2, 2, True),
    ("  3 ) 아달리무맙", 2, 2, True),
    ("<|im_start|>assistant\n3) 아달리무맙", 2, 2, True),
    ("**3) 아달리무맙**", 2, 2, True),
    ("3) 인플릭시맙", 2, 2, True),  # the number decides; the text is not checked
    ("5) 리툭시맙", 4, 4, True),
    ("6) 없음", None, None, False),  # out of range for 5 options
    ("13) 이상", None, None, False),
    ("정답은 3번입니다", None, 2, False),
    ("정답: ③", None, 2, False),
    ("(3) 아달리무맙", None, 2, False),
    ("3번 아달리무맙", None, 2, False),
    ("3", None, 2, False),
    ("아달리무맙입니다", None, 2, False),  # names exactly one option's text
    ("정답은 3번, 2번은 오답", None, 2, False),  # the answer marker outranks other numbers
    ("3) 아달리무맙\n1) 인플릭시맙은 아님", 2, 2, True),  # leading form outranks the rest
    ("3번 또는 2번", None, None, False),  # two numbers: no decision
    ("아달리무맙 또는 인플릭시맙", None, None, False),  # two option texts: no decision
    ("C", None, None, False),  # letters are not read in the number format
    ("정답률 30%", None, None, False),
    ("모르겠습니다", None, None, False),
    ("", None, None, False),
]


# (output, strict_choice, lenient_choice, format_ok) for answer_format "letter"
LETTER_CASES = [
    ("B", 1, 1, True),
    (" B", 1, 1, True),
    ("b", 1, 1, True),
    ("(B)", 1, 1, True),
    ("B. 에타너셉트", 1, 1, True),  # generation stops at ".": "B"
    ("정답: B", 1, 1, False),
    ("정답:B", 1, 1, False),
    ("**정답: B**", 1, 1, False),
    ("정답은 D입니다", 3, 3, False),
    ("The answer is (C).", 2, 2, False),
    ("정답: B\n정답: C", 2, None, False),  # harness: last match; lenient: two answers
    ("\n\nB", None, 1, False),  # harness cuts at "\n\n" before the letter
    ("C가 맞다", None, 2, False),  # no \b between C and 가
    ("정답은 C", 2, 2, False),
    ("A와 B", 1, None, False),  # harness takes the last letter; two letters: no decision
    ("B형 간염", None, None, False),
    ("비타민 D 결핍", 3, None, False),  # harness pattern 4 reads "D"
    ("D-dimer 상승", 3, None, False),
    ("a patient", 0, None, False),  # harness is case-insensitive
    ("아달리무맙", None, 2, False),  # option text
    ("3번", None, 2, False),  # option number
    ("정답: B\n\n설명: A는 오답", 1, 1, False),
    ("F", None, None, False),
    ("잘 모르겠습니다", None, None, False),
]

CASES = [("number", *case) for case in NUMBER_CASES] + [("letter", *case) for case in LETTER_CASES]


@pytest.mark.parametrize(("answer_format", "output", "strict", "lenient", "ok"), CASES)
def test_answer_format(answer_format, output, strict, lenient, ok):
    c = extract_choice(output, DRUGS, answer_format)
    assert (c.strict_choice, c.lenient_choice, c.format_ok) == (strict, lenient, ok)


@pytest.mark.parametrize(
    ("output", "letter"),
    [  # cases from lm-evaluation-harness's kormedmcqa unit tests, after the stop-sequence cut
        (" B", "B"),
        ("b", "B"),
        ("정답: B", "B"),
        ("정답 C", "C"),
        ("정답은 D 입니다", "D"),
        # the harness's own case expects "E", but its generation stops at the first ".",
        # so in a real run the filter only ever sees "A"
        ("A. foo\nB. bar\n정답: E", "A"),
        ("잘 모르겠습니다", ""),
        ("", ""),
    ],
)
def test_lm_eval_cascade(output, letter):
    assert lm_eval_extract(output) == letter


def test_letter_outside_the_options_is_no_choice():
    c = extract_choice("E", ["가", "나", "다", "라"], "letter")
    assert c.strict_choice is None and c.lenient_choice is None and c.format_ok is False


def test_longest_option_text_wins_over_its_substring():
    opts = ["인슐린", "속효성 인슐린", "메트포르민"]
    assert option_text_matches("속효성 인슐린을 투여한다", opts) == {1}
    assert option_text_matches("인슐린을 투여한다", opts) == {0}
    # both named at separate places: ambiguous
    assert option_text_matches("인슐린 또는 속효성 인슐린", opts) == {0, 1}
    assert extract_choice("인슐린 또는 속효성 인슐린", opts, "number").lenient_choice is None


def test_option_text_edges_do_not_split_numbers_or_words():
    opts = ["5 mg", "15 mg", "CT", "CTA"]
    assert option_text_matches("15 mg 투여", opts) == {1}
    assert option_text_matches("CTA를 시행", opts) == {3}
    assert option_text_matches("ct 촬영", opts) == {2}


def test_artifacts_and_patterns_are_declared_data():
    assert strip_artifacts("<|im_start|>assistant\n**3)**") == "3)**"
    assert EXTRACTION["letter"]["stop_sequences"] == ["Q:", "</s>", "<|im_end|>", ".", "\n\n"]
    assert len(EXTRACTION["letter"]["cascade"]) == 4


def test_unknown_answer_format_is_an_error():
    with pytest.raises(ValueError):
        extract_choice("3)", DRUGS, "none")
