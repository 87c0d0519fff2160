import pytest

from kmedqa.metrics.lang import han_ratio, hangul_ratio, lang_ratios


@pytest.mark.parametrize(
    ("text", "hangul", "han"),
    [
        ("아달리무맙", 1.0, 0.0),
        ("아달리무맙 (adalimumab) 40 mg!", 5 / 17, 0.0),  # letters: 5 Hangul + 10 + 2 Latin
        ("阿達木單抗", 0.0, 1.0),
        ("의학醫學", 0.5, 0.5),
        ("ㄱㄴ ab", 0.5, 0.0),  # compatibility jamo count as Hangul
        ("豈", 0.0, 1.0),  # CJK compatibility ideograph
        ("патient", 0.0, 0.0),
    ],
)
def test_ratios_over_letters(text, hangul, han):
    r = lang_ratios(text)
    assert r["lang_hangul_ratio"] == pytest.approx(hangul)
    assert r["lang_han_ratio"] == pytest.approx(han)
    assert hangul_ratio(text) == pytest.approx(hangul)
    assert han_ratio(text) == pytest.approx(han)


@pytest.mark.parametrize("text", ["", "   ", "3) 40%", "①②", "...!?"])
def test_no_letters_is_none(text):
    assert lang_ratios(text) == {"lang_hangul_ratio": None, "lang_han_ratio": None}
