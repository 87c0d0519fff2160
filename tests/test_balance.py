"""Department balancing: oversampled counts, weights, and the weighted loss by hand."""

from __future__ import annotations

import math
from collections import Counter

import pytest

from kmedqa.training.balance import (
    WEIGHT_COLUMN,
    WeightCollator,
    apply_balance,
    oversample,
    stratum_weights,
    weighted_trainer_class,
)


def dept_items(counts):
    out = []
    for dom, n in counts.items():
        out += [{"id": f"{dom}{i}", "domain": dom} for i in range(n)]
    return out


COUNTS = {"내과": 16, "소아청소년과": 4, "응급의학과": 1}


def test_oversample_uniform_and_sqrt_counts():
    items = dept_items(COUNTS)
    up = Counter(it["domain"] for it in oversample(items, "domain", "uniform", seed=1))
    assert up == {"내과": 16, "소아청소년과": 16, "응급의학과": 16}
    sq = Counter(it["domain"] for it in oversample(items, "domain", "sqrt", seed=1))
    # sqrt shares 4:2:1 of the largest stratum's 16
    assert sq == {"내과": 16, "소아청소년과": 8, "응급의학과": 4}
    # every original item is kept, duplicates only of the smaller strata
    assert set(map(id, items)) <= set(map(id, oversample(items, "domain", "sqrt", 1)))


def test_weights_average_one_and_equalize_strata():
    items = dept_items(COUNTS)
    w = stratum_weights(items, "domain", "uniform")
    assert sum(w[it["domain"]] for it in items) / len(items) == pytest.approx(1.0)
    # each stratum carries a third of the total weight
    for dom, n in COUNTS.items():
        assert n * w[dom] / len(items) == pytest.approx(1 / 3)
    _, weights, record = apply_balance(
        items, {"by": "domain", "method": "weight", "target": "sqrt"}, seed=0
    )
    assert record["counts"] == dict(sorted(COUNTS.items())) and len(weights) == len(items)
    roots = {k: math.sqrt(n) for k, n in COUNTS.items()}
    assert record["weights"]["응급의학과"] == pytest.approx(
        roots["응급의학과"] / sum(roots.values()) / (1 / 21)
    )
    assert apply_balance(items, None, 0) == (items, None, None)


def test_weighted_trainer_loss_equals_a_hand_computation(tiny_model_dir, tmp_path):
    """The trainer's loss on one batch = sum_i w_i sum_t -log p(y_it) / number of answer tokens."""
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    records = [
        {
            "prompt": [{"role": "user", "content": "소아 발열 환자의 해열제는?"}],
            "completion": [{"role": "assistant", "content": "아세트아미노펜"}],
            WEIGHT_COLUMN: 2.5,
        },
        {
            "prompt": [{"role": "user", "content": "TNF-α 억제제는?"}],
            "completion": [{"role": "assistant", "content": "2) 아달리무맙 입니다"}],
            WEIGHT_COLUMN: 0.5,
        },
    ]
    cfg = SFTConfig(
        output_dir=str(tmp_path),
        per_device_train_batch_size=2,
        use_cpu=True,
        report_to="none",
        max_steps=1,
        completion_only_loss=True,
        dataloader_num_workers=0,
    )
    trainer = weighted_trainer_class()(
        model=model, args=cfg, train_dataset=Dataset.from_list(records), processing_class=tok
    )
    trainer.data_collator = WeightCollator(trainer.data_collator)
    batch = next(iter(trainer.get_train_dataloader()))
    assert batch[WEIGHT_COLUMN].tolist() == [2.5, 0.5] or batch[WEIGHT_COLUMN].tolist() == [
        0.5,
        2.5,
    ]
    weights = batch[WEIGHT_COLUMN].clone()
    labels = batch["labels"].clone()
    model.eval()
    with torch.no_grad():
        loss = trainer.compute_loss(model, dict(batch)).item()
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    total, tokens = 0.0, 0
    for i in range(labels.shape[0]):
        for t in range(1, labels.shape[1]):
            y = int(labels[i, t])
            if y == -100:
                continue
            logp = torch.log_softmax(logits[i, t - 1].double(), dim=-1)[y].item()
            total += float(weights[i]) * -logp
            tokens += 1
    assert tokens > 0
    assert loss == pytest.approx(total / tokens, rel=1e-4)
    # all weights 1: the trainer's own (unweighted) loss
    batch1 = dict(batch)
    batch1[WEIGHT_COLUMN] = torch.ones(2)
    with torch.no_grad():
        plain = trainer.compute_loss(model, {k: v for k, v in batch.items() if k != WEIGHT_COLUMN})
        ones = trainer.compute_loss(model, batch1)
    assert ones.item() == pytest.approx(plain.item(), rel=1e-4)
