"""The physical bounds the GPU suite's figures are set beside, and the probes that read them.

A figure means little without the fastest it could be on the card:

* a **decode step** must read every weight once (the input embedding aside: only the rows
  of the step's tokens) and every row's KV cache, and do 2 FLOPs per weight per row: its
  floor is the larger of bytes ÷ HBM bandwidth and FLOPs ÷ bf16 peak;
* a **prefill** does 2 FLOPs per weight per prompt token (it is compute-bound);
* a **QLoRA optimizer step** does about 8 FLOPs per weight per token (forward 2, backward 4,
  recomputation under gradient checkpointing 2).

The ceilings are measured on the card in the suite's first seconds (a device-to-device copy,
counting bytes read and written; a 8192³ bf16 matrix product) and kept beside the datasheet's.
``step_probe`` times the model's own forward for one decode step, outside the engine, so
that the engine's overhead and the model's eager cost can be told apart.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

DATASHEET_H200 = {"hbm_bytes_per_s": 4.8e12, "bf16_flops": 989e12}  # NVIDIA H200 SXM, dense


@dataclass(frozen=True)
class Shape:
    """What the bounds need to know about a loaded model."""

    weight_bytes: int  # bytes read per decode step: every parameter but the input embedding
    matmul_params: int  # logical weights a token multiplies by (NF4 counted unpacked)
    kv_bytes_per_token: int  # K and V of every layer, in the cache's dtype


def model_shape(model, n_params: int) -> Shape:
    """From a loaded (possibly NF4, possibly PEFT-wrapped) causal LM and its logical size."""
    emb = model.get_input_embeddings().weight
    weight_bytes = sum(
        p.numel() * p.element_size() for p in model.parameters() if p.data_ptr() != emb.data_ptr()
    )
    cfg = model.config
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    kv = 2 * cfg.num_hidden_layers * cfg.num_key_value_heads * head_dim * 2  # bf16 cache
    tied = getattr(cfg, "tie_word_embeddings", False)
    matmul = n_params - (0 if tied else emb.numel())  # a tied head multiplies by the table
    return Shape(weight_bytes=weight_bytes, matmul_params=matmul, kv_bytes_per_token=kv)


def generation_bound_s(
    shape: Shape, rows: int, prompt_len: int, new_tokens: int, ceil: dict
) -> dict[str, float]:
    """The floor of one batch: its prefill plus ``new_tokens`` decode steps."""
    prefill = max(
        2 * shape.matmul_params * rows * prompt_len / ceil["bf16_flops"],
        shape.weight_bytes / ceil["hbm_bytes_per_s"],
    )
    context = prompt_len + new_tokens / 2  # the mean length of the cache a step reads
    step = max(
        (shape.weight_bytes + shape.kv_bytes_per_token * rows * context) / ceil["hbm_bytes_per_s"],
        2 * shape.matmul_params * rows / ceil["bf16_flops"],
    )
    return {"prefill_s": prefill, "decode_step_s": step, "batch_s": prefill + new_tokens * step}


def training_bound_s(matmul_params: int, tokens: int, ceil: dict) -> float:
    """The floor of one optimizer step of ``tokens`` tokens under gradient checkpointing
    (``matmul_params``: the weights a token multiplies by, the input embedding aside)."""
    return 8 * matmul_params * tokens / ceil["bf16_flops"]


def measure_ceilings(dry: bool) -> dict:
    """HBM bandwidth and bf16 matrix rate measured on this card (``dry``: the datasheet's)."""
    out = {"datasheet": DATASHEET_H200, "measured": not dry, **DATASHEET_H200}
    if dry:
        return out
    import torch

    def timed(fn, n=10):
        for _ in range(3):
            fn()
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(n):
            fn()
        end.record()
        torch.cuda.synchronize()
        return start.elapsed_time(end) / 1000 / n

    def copy_s():  # 2 GiB, far past the L2; its tensors are freed on return
        src = torch.randn(2**30, device="cuda", dtype=torch.bfloat16)
        dst = torch.empty_like(src)
        return timed(lambda: dst.copy_(src)), 2 * src.numel() * src.element_size()

    def matmul_s():
        a, b = (torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16) for _ in "ab")
        return timed(lambda: a @ b)

    seconds, nbytes = copy_s()
    out["hbm_bytes_per_s"] = nbytes / seconds
    out["bf16_flops"] = 2 * 8192**3 / matmul_s()
    torch.cuda.empty_cache()
    return out


def step_probe(model, batch_sizes, prompt_len: int = 200, steps: int = 21) -> list[dict]:
    """The model's own forwards at each batch size, after an untimed warm-up: one prefill of
    ``prompt_len`` random tokens (``logits_to_keep=1``, as the engine calls it), then the
    median of ``steps`` decode steps with the dynamic cache the engine uses (eager), and, on
    CUDA, replayed from a CUDA graph over a static
    cache (what removing Python and launch overhead would give). An error in the graph
    path is recorded, not raised: it is a measurement, not the engine."""
    import torch

    from kmedqa.generation.decode import cache_keyword, cache_of

    dev = next(model.parameters()).device
    cuda = dev.type == "cuda"
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    vocab = model.get_input_embeddings().num_embeddings
    gen = torch.Generator().manual_seed(0)
    kw = cache_keyword(model)
    rows = []
    lo, hi = vocab // 4, vocab // 2  # ordinary tokens, away from the specials at the start
    with torch.inference_mode():
        model(input_ids=torch.randint(lo, hi, (1, 8), generator=gen).to(dev))  # warm-up
        for b in batch_sizes:
            ids = torch.randint(lo, hi, (b, prompt_len), generator=gen).to(dev)
            sync()
            t0 = time.perf_counter()
            out = model(input_ids=ids, use_cache=True, logits_to_keep=1)
            sync()
            prefill_s = time.perf_counter() - t0
            cache, times = cache_of(out), []
            for _ in range(steps):
                nxt = out.logits[:, -1].argmax(-1)[:, None]
                sync()
                t0 = time.perf_counter()
                out = model(input_ids=nxt, use_cache=True, logits_to_keep=1, **{kw: cache})
                sync()
                times.append(time.perf_counter() - t0)
                cache = cache_of(out)
            row = {"batch": b, "prefill_s": prefill_s, "eager_step_s": statistics.median(times)}
            del out, cache
            if cuda:
                try:
                    row["graph_step_s"] = _graph_step(model, ids, steps)
                except Exception as e:  # noqa: BLE001 - a probe: say what failed, go on
                    row["graph_error"] = f"{type(e).__name__}: {str(e)[:300]}"
                torch.cuda.empty_cache()
            rows.append(row)
    return rows


def _graph_step(model, ids, steps: int) -> float:
    """One decode step over a static cache, captured in a CUDA graph; median replay time."""
    import torch
    from transformers import StaticCache

    from kmedqa.generation.decode import cache_keyword

    kw = cache_keyword(model)
    b, p = ids.shape
    # each call writes one position further (the cache keeps its own length on the device),
    # the graph's replays too: room for the warm-up, the capture and every replay
    cache = StaticCache(config=model.config, max_cache_len=p + steps + 8)
    out = model(
        input_ids=ids,
        **{kw: cache},
        cache_position=torch.arange(p, device=ids.device),
        use_cache=True,
        logits_to_keep=1,
    )
    tok = out.logits[:, -1].argmax(-1)[:, None].clone()
    pos = torch.tensor([p], device=ids.device)

    def step():
        return model(input_ids=tok, cache_position=pos, use_cache=True, **{kw: cache}).logits

    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for _ in range(3):
            step()
    torch.cuda.current_stream().wait_stream(s)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        step()
    times = []
    for _ in range(steps):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        graph.replay()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)
