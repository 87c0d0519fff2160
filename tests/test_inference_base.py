"""A fine-tuned run is generated on the base it was trained on (adapter_base), and says so."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from kmedqa import models as models_mod
from kmedqa.errors import ConfigError
from kmedqa.generation import generate
from kmedqa.generation.settings import inference_quantization
from kmedqa.items import make_item
from kmedqa.paper.training_tables import environment_table

sys.path.insert(0, str(Path(__file__).parent))
from helpers.generation import with_settings  # noqa: E402

from kmedqa.testing import tiny_model_json  # noqa: E402

NF4 = {"quantization": "nf4"}


def test_adapter_base_defaults_to_the_training_quantization():
    assert inference_quantization("ft-aihub", {}, NF4) == "nf4"
    assert inference_quantization("ft-aihub", None, {"quantization": "none"}) == "none"
    assert inference_quantization("ft-aihub", {"adapter_base": "none"}, NF4) == "none"
    assert inference_quantization("ft-aihub", {"adapter_base": "nf4"}, None) == "nf4"
    # base and icl runs are the published model, unquantized
    assert inference_quantization("base", {}, NF4) == "none"
    assert inference_quantization("icl", {"adapter_base": "nf4"}, NF4) == "none"
    with pytest.raises(ConfigError, match="adapter_base"):
        inference_quantization("ft-x", {"adapter_base": "bf16"}, NF4)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return tiny_model_json(tmp_path_factory.mktemp("tiny"))


def _items() -> list[dict]:
    return [
        make_item(
            id=f"k{i}",
            dataset="kormedmcqa",
            task="mcq",
            domain="doctor",
            question=f"TNF 억제제는? {i}",
            options=["가", "나"],
            answer="나",
            answer_index=1,
            meta={"format": "kormedmcqa"},
        )  # fmt: skip
        for i in range(2)
    ]


def _generate(tiny, tmp_path, **kw):
    return generate(
        model_json=str(tiny), items=_items(), formats={}, run="m:ft-x", eval_set="e",
        out_path=str(tmp_path / "o.jsonl"), cache_dir=str(tmp_path / "c"), progress=False,
        **with_settings(kw, device="cpu", max_new_tokens={"mcq": 2}),
    )  # fmt: skip


def test_the_base_is_loaded_with_the_resolved_quantization_and_recorded(
    tiny, tmp_path, monkeypatch
):
    seen = []
    real = models_mod.load_model

    def spy(info, *, quantization="none", **kw):
        seen.append(quantization)
        return real(info, quantization="none", **kw)  # NF4 needs CUDA: load plainly here

    monkeypatch.setattr(models_mod, "load_model", spy)
    monkeypatch.setattr("kmedqa.generation.check_quantization", lambda q, b: None)
    stats = _generate(tiny, tmp_path, quantization="nf4")
    assert seen == ["nf4"]
    assert stats["inference_base"]["quantization"] == "nf4"
    assert stats["n_hit_budget"] == sum(
        json.loads(x)["hit_budget"] for x in (tmp_path / "o.jsonl").read_text().splitlines()
    )
    # another base is another cache entry: nothing is reused across bases
    again = _generate(tiny, tmp_path, quantization="none")
    assert seen == ["nf4", "none"] and again["n_cached"] == 0
    assert again["inference_base"]["quantization"] == "none"


def test_nf4_without_cuda_stops_naming_the_setting(tiny, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ConfigError, match="adapter_base"):
        _generate(tiny, tmp_path, quantization="nf4")
    with pytest.raises(ConfigError, match="backend: hf"):
        _generate(tiny, tmp_path, quantization="nf4", backend="vllm")
    assert not (tmp_path / "o.jsonl").exists()


def test_environment_table_shows_each_runs_inference_base():
    gens = [
        {"run": "m:base", "inference_base": {"quantization": "none", "dtype": "bfloat16"}},
        {"run": "m:ft-x", "inference_base": {"quantization": "nf4", "adapter": "abc"}},
        {"run": "m:ft-x", "inference_base": {"quantization": "nf4", "adapter": "abc"}},
    ]
    t = environment_table({"python": "3.11"}, gens)
    assert t.rows == [
        ["python", "3.11"],
        ["inference base, m:base", "unquantized (bfloat16)"],
        ["inference base, m:ft-x", "NF4 4-bit (bitsandbytes, double quantization) + LoRA adapter"],
    ]
    assert environment_table({"python": "3.11"}).rows == [["python", "3.11"]]
