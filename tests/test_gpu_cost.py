"""benchmarks/gpu_cost.py: the bounds the GPU suite sets its figures beside."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import gpu_cost  # noqa: E402

CEIL = {"hbm_bytes_per_s": 1e12, "bf16_flops": 1e15}


def test_decode_is_bandwidth_bound_until_the_batch_is_large():
    shape = gpu_cost.Shape(weight_bytes=10**10, matmul_params=5 * 10**9, kv_bytes_per_token=0)
    one = gpu_cost.generation_bound_s(shape, 1, 100, 10, CEIL)
    assert one["decode_step_s"] == pytest.approx(0.01)  # 10 GB at 1 TB/s
    # compute: 2 x 5e9 x rows FLOPs at 1e15/s passes 10 ms at 1,000 rows
    assert gpu_cost.generation_bound_s(shape, 4000, 100, 10, CEIL)["decode_step_s"] == (
        pytest.approx(0.04)
    )
    assert one["prefill_s"] == pytest.approx(0.01)  # 1e12 FLOPs = 1 ms < reading the weights
    assert one["batch_s"] == pytest.approx(0.01 + 10 * 0.01)


def test_the_kv_cache_read_counts_at_its_mean_length():
    shape = gpu_cost.Shape(weight_bytes=0, matmul_params=1, kv_bytes_per_token=1000)
    b = gpu_cost.generation_bound_s(shape, 2, 100, 20, CEIL)
    assert b["decode_step_s"] == pytest.approx(1000 * 2 * (100 + 10) / 1e12)


def test_training_bound_is_eight_flops_per_weight_and_token():
    assert gpu_cost.training_bound_s(10**9, 1000, CEIL) == pytest.approx(8e12 / 1e15)


def test_model_shape_of_a_real_model(tiny_model_dir):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    n = sum(p.numel() for p in model.parameters())
    s = gpu_cost.model_shape(model, n)
    emb = model.get_input_embeddings().weight
    tied = model.config.tie_word_embeddings
    assert s.weight_bytes == (n - emb.numel()) * 4  # fp32, every weight but the input table
    assert s.matmul_params == (n if tied else n - emb.numel())
    cfg = model.config
    head = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    assert s.kv_bytes_per_token == 2 * cfg.num_hidden_layers * cfg.num_key_value_heads * head * 2


def test_dry_ceilings_are_the_datasheet():
    c = gpu_cost.measure_ceilings(dry=True)
    assert c["measured"] is False and c["hbm_bytes_per_s"] == 4.8e12
