"""Department (stratum) balancing of a train split: oversampling or per-example loss weights.

``training.balance: {by: domain, method: oversample | weight, target: uniform | sqrt}``.
With stratum sizes n_k (N items, K strata), the *target share* of stratum k is 1/K
(``uniform``) or sqrt(n_k) / sum_j sqrt(n_j) (``sqrt``, a milder correction).

- ``oversample`` duplicates items of the smaller strata until each stratum has its target
  share of the largest stratum's count (whole copies, then a seeded sample of the rest);
  no item is dropped. The train summary records the counts before and after.
- ``weight`` keeps the items and scales the loss of each example of stratum k by
  w_k = target share / actual share (n_k / N), so the weights average 1 over the split.
  The loss is the weighted mean over answer tokens: sum_i w_i sum_t ce_it / sum_i T_i
  (T_i: example i's answer tokens), which is the usual token mean when every w_i = 1.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from typing import Any

WEIGHT_COLUMN = "loss_weight"


def _stratum(item: dict[str, Any], by: str) -> str:
    return str(item.get(by) or "-")


def target_shares(counts: dict[str, int], target: str) -> dict[str, float]:
    if target == "uniform":
        return {k: 1 / len(counts) for k in counts}
    roots = {k: math.sqrt(n) for k, n in counts.items()}
    total = sum(roots.values())
    return {k: r / total for k, r in roots.items()}


def stratum_weights(items: list[dict[str, Any]], by: str, target: str) -> dict[str, float]:
    counts = Counter(_stratum(it, by) for it in items)
    n = sum(counts.values())
    shares = target_shares(dict(counts), target)
    return {k: shares[k] / (counts[k] / n) for k in counts}


def oversample(
    items: list[dict[str, Any]], by: str, target: str, seed: int
) -> list[dict[str, Any]]:
    """The items plus duplicates of the smaller strata (original order first)."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for it in items:
        groups.setdefault(_stratum(it, by), []).append(it)
    counts = {k: len(v) for k, v in groups.items()}
    shares = target_shares(counts, target)
    # the largest stratum relative to its share fixes the scale; nobody shrinks
    scale = max(counts[k] / shares[k] for k in counts)
    rng = random.Random(seed)
    out = list(items)
    for k in sorted(groups):
        want = max(counts[k], round(shares[k] * scale))
        extra = want - counts[k]
        whole, rest = divmod(extra, counts[k])
        out += groups[k] * whole + rng.sample(groups[k], rest)
    return out


def apply_balance(
    items: list[dict[str, Any]], balance: dict[str, Any] | None, seed: int
) -> tuple[list[dict[str, Any]], list[float] | None, dict[str, Any] | None]:
    """(train items, per-item loss weights or None, a record for the train summary)."""
    if not balance:
        return items, None, None
    by, method, target = balance["by"], balance["method"], balance["target"]
    before = Counter(_stratum(it, by) for it in items)
    record: dict[str, Any] = {**balance, "counts": dict(sorted(before.items()))}
    if method == "oversample":
        items = oversample(items, by, target, seed)
        record["effective_counts"] = dict(sorted(Counter(_stratum(it, by) for it in items).items()))
        return items, None, record
    w = stratum_weights(items, by, target)
    record["weights"] = dict(sorted(w.items()))
    record["effective_counts"] = {k: before[k] * w[k] for k in sorted(before)}
    return items, [w[_stratum(it, by)] for it in items], record


def weighted_token_loss(logits, labels, weights):
    """sum_i w_i sum_t ce_it / (number of answer tokens), next-token shifted, -100 ignored."""
    import torch.nn.functional as F

    shift_logits = logits[:, :-1, :].float()
    shift_labels = labels[:, 1:]
    ce = F.cross_entropy(
        shift_logits.reshape(-1, shift_logits.size(-1)),
        shift_labels.reshape(-1),
        ignore_index=-100,
        reduction="none",
    ).view(shift_labels.shape)
    mask = (shift_labels != -100).to(ce.dtype)
    per_example = (ce * mask).sum(dim=1)
    return (per_example * weights.to(ce.dtype)).sum() / mask.sum().clamp(min=1)


def weighted_trainer_class():
    """``SFTTrainer`` whose training loss weights each example by its ``loss_weight``."""
    import torch
    from trl import SFTTrainer

    class WeightedSFTTrainer(SFTTrainer):
        def _set_signature_columns_if_needed(self):
            super()._set_signature_columns_if_needed()
            if WEIGHT_COLUMN not in self._signature_columns:
                self._signature_columns = [*self._signature_columns, WEIGHT_COLUMN]

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            weights = inputs.pop(WEIGHT_COLUMN, None)
            if weights is None:  # the validation set: the plain loss
                return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            labels = inputs.pop("labels")
            outputs = model(**inputs, use_cache=False)
            loss = weighted_token_loss(outputs.logits, labels, weights)
            if num_items_in_batch is not None:  # gradient accumulation: tokens of all micro-batches
                n_here = (labels[:, 1:] != -100).sum()
                loss = loss * n_here / torch.as_tensor(num_items_in_batch).clamp(min=1)
            return (loss, outputs) if return_outputs else loss

    return WeightedSFTTrainer


class WeightCollator:
    """Wraps the trainer's collator: takes ``loss_weight`` off each example, adds a tensor."""

    def __init__(self, inner):
        self.inner = inner

    def __call__(self, examples):
        import torch

        if not examples or WEIGHT_COLUMN not in examples[0]:
            return self.inner(examples)
        weights = [float(e[WEIGHT_COLUMN]) for e in examples]
        batch = self.inner([{k: v for k, v in e.items() if k != WEIGHT_COLUMN} for e in examples])
        batch[WEIGHT_COLUMN] = torch.tensor(weights)
        return batch
