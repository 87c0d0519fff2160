"""What one forward pass of the demo model costs by batch size: the ceiling of batching.

Run from the repository root after the demo's model exists (``make demo``, or
``snakemake results/models/gemma3-270m/model.json --cores 1``)::

    PYTHONPATH=src .venv/bin/python benchmarks/step_costs.py [--model-json PATH] [--threads 2]

It times, on random token ids, a prefill of ``B`` prompts of ``T`` tokens (logits of the
last position only, as ``generate`` computes them) and one decode step of ``B`` rows on a
100-token cache, and prints milliseconds and tokens/s. Decode at batch ``B`` costing less
than ``B`` times batch 1 is what batching buys; prefill is compute-bound and gains little.
Greedy generation of a base model that fills its budget cannot beat
``naive / engine`` ≈ the per-token decode ratio, whatever the engine does around it.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from kmedqa.models import load_model_and_tokenizer


def _time(fn, repeat: int) -> float:
    fn()  # warm-up
    t0 = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - t0) / repeat


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model-json", default="results/models/gemma3-270m/model.json")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batches", default="1,4,16,64")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model, _, info = load_model_and_tokenizer(args.model_json, device="cpu")
    model.eval()
    batches = [int(b) for b in args.batches.split(",")]
    report = {"model": info["name"], "threads": args.threads, "prefill": [], "decode": []}
    gen = torch.Generator().manual_seed(0)
    with torch.inference_mode():
        for b in batches:
            ids = torch.randint(10, 1000, (b, 128), generator=gen)
            s = _time(lambda ids=ids: model(input_ids=ids, logits_to_keep=1), 2)
            report["prefill"].append({"batch": b, "tokens": 128, "s": s, "tok_s": b * 128 / s})
            cache = model(input_ids=ids[:, :100], use_cache=True, logits_to_keep=1)
            nxt = ids[:, 100:101]

            def step(cache=cache.past_key_values, nxt=nxt):
                model(input_ids=nxt, past_key_values=cache, use_cache=True)

            s = _time(step, 5)  # the cache grows by one slot per call: 100 -> 106 tokens
            report["decode"].append({"batch": b, "ms_step": 1000 * s, "ms_token": 1000 * s / b})
    base = report["decode"][0]["ms_token"]
    for row in report["prefill"]:
        print(f"prefill  batch {row['batch']:3d} x 128 tokens: {row['tok_s']:6.0f} tokens/s")
    for row in report["decode"]:
        print(
            f"decode   batch {row['batch']:3d}: {row['ms_step']:6.0f} ms/step "
            f"{row['ms_token']:6.1f} ms/token ({base / row['ms_token']:.1f}x batch 1 per token)"
        )
    print(json.dumps(report))


if __name__ == "__main__":
    main()
