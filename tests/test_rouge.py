"""ROUGE variants: the published ("paper") tokenizer drops Hangul; the "ko" one does not."""

import pytest

from kmedqa.metrics.rouge import ROUGE_COLUMNS, rouge_scores, rouge_scores_many, tokenize

KO_SENTENCE = "아달리무맙은 종양괴사인자 억제제이다"


def test_columns_are_named_with_their_variant():
    assert ROUGE_COLUMNS == (
        "rouge1_paper",
        "rouge2_paper",
        "rougeL_paper",
        "rouge1_ko",
        "rouge2_ko",
        "rougeL_ko",
    )
    assert set(rouge_scores("a b", "a b")) == set(ROUGE_COLUMNS)


def test_paper_variant_drops_hangul_identical_korean_scores_zero():
    assert tokenize(KO_SENTENCE, "paper") == []
    s = rouge_scores(KO_SENTENCE, KO_SENTENCE)
    assert s["rouge1_paper"] == s["rouge2_paper"] == s["rougeL_paper"] == 0.0
    assert s["rouge1_ko"] == s["rouge2_ko"] == s["rougeL_ko"] == 1.0


def test_paper_variant_scores_the_option_number_only():
    assert tokenize("2) 아달리무맙", "paper") == ["2"]
    s = rouge_scores("2) 아달리무맙", "2) 아달리무맙")
    assert s["rouge1_paper"] == 1.0 and s["rougeL_paper"] == 1.0
    assert s["rouge2_paper"] == 0.0  # one token, no bigram
    # a wrong drug with the right number is still a perfect "paper" match
    wrong = rouge_scores("2) 아달리무맙", "2) 리툭시맙")
    assert wrong["rouge1_paper"] == 1.0
    assert wrong["rouge1_ko"] == pytest.approx(0.5)  # {2, 아달리무맙} vs {2, 리툭시맙}


def test_paper_variant_does_not_stem():
    assert rouge_scores("running", "run")["rouge1_paper"] == 0.0


def test_ko_tokens_are_lowercased_morphemes_without_punctuation():
    assert tokenize("2) 아달리무맙", "ko") == ["2", "아달리무맙"]
    assert tokenize("아달리무맙은 TNF 억제제이다", "ko") == [
        "아달리무맙",
        "은",
        "tnf",
        "억제제",
        "이",
        "다",
    ]
    assert tokenize('"CT" 검사(조영제)… 5% 증가!', "ko") == ["ct", "검사", "조영제", "5", "증가"]
    assert tokenize("The patient is a man.", "ko")[-1] == "man"


def test_ko_partial_overlap_hand_computed():
    # reference: 아달리무맙 은 tnf 억제제 이 다   (6 tokens, 5 bigrams)
    # prediction: 아달리무맙 은 항체 이 다         (5 tokens, 4 bigrams)
    ref, pred = "아달리무맙은 TNF 억제제이다", "아달리무맙은 항체이다"
    assert tokenize(pred, "ko") == ["아달리무맙", "은", "항체", "이", "다"]
    s = rouge_scores(ref, pred)
    # unigrams: 4 shared -> P 4/5, R 4/6, F = 2*4/(5+6) = 8/11; LCS = 4 as well
    assert s["rouge1_ko"] == pytest.approx(8 / 11)
    assert s["rougeL_ko"] == pytest.approx(8 / 11)
    # bigrams: (아달리무맙,은) (이,다) shared -> P 2/4, R 2/5, F = 2*2/(4+5) = 4/9
    assert s["rouge2_ko"] == pytest.approx(4 / 9)
    # "paper": reference has the one token "tnf", prediction none
    assert s["rouge1_paper"] == 0.0


def test_ko_ignores_final_punctuation():
    assert rouge_scores("아달리무맙입니다.", "아달리무맙입니다")["rougeL_ko"] == 1.0


def test_many_matches_pairwise_and_checks_lengths():
    refs = ["2) 아달리무맙", KO_SENTENCE, "GENHX#The patient is a man."]
    preds = ["3) 리툭시맙", "억제제이다", "The patient is a woman."]
    assert rouge_scores_many(refs, preds) == [
        rouge_scores(r, p) for r, p in zip(refs, preds, strict=True)
    ]
    with pytest.raises(ValueError):
        rouge_scores_many(refs, preds[:2])
