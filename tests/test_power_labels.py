"""The power figure marks each sample size with what it is (and whose study it is from)."""

from __future__ import annotations

from kmedqa.paper.figures import power_curves
from kmedqa.stats.compare import power_report


def test_study_sizes_are_labelled_with_their_study():
    marks = {m["n"]: m["label"] for m in power_report([])["study_ns"]}
    assert marks[435].startswith("study 004")  # KorMedMCQA doctor test set, not study 001's
    assert marks[66] == "study 001: MCQ items of its sample"  # its MCQ accuracy rests on 66
    assert set(marks) == {66, 198, 200, 435, 1728}
    assert all(marks[n].startswith("study 001") for n in (66, 198, 200, 1728))


def test_power_figure_draws_the_labels(tmp_path, monkeypatch):
    import matplotlib.axes

    texts = []
    orig = matplotlib.axes.Axes.text

    def spy(self, x, y, s, *a, **kw):
        texts.append(s)
        return orig(self, x, y, s, *a, **kw)

    monkeypatch.setattr(matplotlib.axes.Axes, "text", spy)
    out = power_curves(power_report([]), tmp_path / "power")
    assert all((tmp_path / f"power.{e}").stat().st_size > 1000 for e in ("pdf", "png")), out
    assert "n=435 study 004: KorMedMCQA doctor test" in texts
    assert "n=66 study 001: MCQ items of its sample" in texts
