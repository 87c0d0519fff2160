"""``source: random``: a declared architecture with random weights (the GPU demo's model)."""

from __future__ import annotations

import pytest

from kmedqa.errors import ConfigError
from kmedqa.models import load_model_and_tokenizer, materialize
from kmedqa.testing import tiny_random_arch

ARCH = tiny_random_arch(12000)


def spec(**arch):
    return {
        "source": "random",
        "id": "google/gemma-3-270m",
        "chat_template": "gemma",
        "dtype": "float32",
        "seed": 3,
        "architecture": {**ARCH, **arch},
    }


def test_random_model_has_the_declared_shapes_and_a_padded_vocabulary(tmp_path):
    info = materialize("g", spec(), tmp_path)
    assert info["source"] == "random"
    model, tok, _ = load_model_and_tokenizer(tmp_path / "model.json", device="cpu")
    cfg = model.config
    assert (cfg.model_type, cfg.hidden_size, cfg.num_hidden_layers) == ("gemma3_text", 32, 2)
    assert cfg.layer_types == ["sliding_attention", "full_attention"]
    assert len(tok) == cfg.vocab_size == 12000  # every id the model can emit decodes
    assert model.get_output_embeddings().weight.shape == (12000, 32)
    assert tok.decode([11999]) == "<unused11999>"
    eot = tok.convert_tokens_to_ids("<end_of_turn>")
    assert model.generation_config.eos_token_id == [tok.eos_token_id, eot]
    text = tok.apply_chat_template(
        [{"role": "user", "content": "류마티스 관절염"}], tokenize=False, add_generation_prompt=True
    )
    assert text.startswith("<bos><start_of_turn>user\n") and text.endswith("<start_of_turn>model\n")
    # Korean medical text tokenizes into subwords, not bytes (trained on kmedqa's demo content)
    q = "다음 중 류마티스 관절염 치료에 쓰이는 약물은? 1) 메토트렉세이트 2) 아달리무맙"
    assert len(tok(q)["input_ids"]) < len(q.encode()) / 3


def test_same_seed_same_weights(tmp_path):
    import torch

    materialize("a", spec(), tmp_path / "a")
    materialize("b", spec(), tmp_path / "b")
    ma, _, _ = load_model_and_tokenizer(tmp_path / "a" / "model.json", device="cpu")
    mb, _, _ = load_model_and_tokenizer(tmp_path / "b" / "model.json", device="cpu")
    for (na, pa), (_, pb) in zip(ma.state_dict().items(), mb.state_dict().items(), strict=True):
        assert torch.equal(pa, pb), na


def test_architecture_without_vocab_size_is_refused(tmp_path):
    bad = spec()
    del bad["architecture"]["vocab_size"]
    with pytest.raises(ConfigError, match="architecture.model_type and architecture.vocab_size"):
        materialize("g", bad, tmp_path)


def test_a_gguf_is_parsed_once_inside_materialize(tmp_path):
    import gguf
    import numpy as np

    from kmedqa.models import _gguf_parsed_once

    path = tmp_path / "t.gguf"
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_array("tokenizer.ggml.tokens", ["<pad>", "a", "b"])
    w.add_tensor("x", np.arange(6, dtype=np.float32).reshape(2, 3))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    original = gguf.GGUFReader
    with _gguf_parsed_once() as readers:
        first = gguf.GGUFReader(str(path))
        again = gguf.GGUFReader(str(tmp_path / "." / "t.gguf"))  # same file, another spelling
        assert again is first and len(readers) == 1
        assert [t.name for t in first.tensors] == ["x"]
    assert gguf.GGUFReader is original  # restored after the block
    assert gguf.GGUFReader(str(path)) is not first
