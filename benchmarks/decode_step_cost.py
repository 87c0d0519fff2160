"""What one forward costs on this machine: a prefill and a decode step, by batch size.

    PYTHONPATH=src .venv/bin/python benchmarks/decode_step_cost.py \\
        [--model-json results/models/gemma3-270m/model.json] [--threads 2] \\
        [-o benchmarks/results/decode_step_cost_cpu.json]

For each batch size: one prefill of ``--prompt-len`` random tokens (``logits_to_keep=1``,
as both engines call it), then ``--steps`` greedy decode steps on its cache; the median
step is reported. A step's cost splits into a part every step pays whatever the number of
rows (the weights read once per step, Python dispatch) and a part per row (mostly Gemma's
262,144-word output layer): this is what bounds how much dropping finished rows can save
when the number of steps stays the same (benchmarks/README.md, ``vs_lmeval.py``).
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path


def batch_sizes(value: str) -> list[int]:
    try:
        return [int(x) for x in value.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{value!r}: want whole numbers and commas, e.g. 1,4,16"
        ) from None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model-json", default="results/models/gemma3-270m/model.json")
    ap.add_argument(
        "--batch-sizes",
        type=batch_sizes,
        default=[1, 4, 8, 16],
        help="comma-separated (default 1,4,8,16)",
    )
    ap.add_argument("--prompt-len", type=int, default=150)
    ap.add_argument("--steps", type=int, default=21)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("-o", "--output", default="benchmarks/results/decode_step_cost_cpu.json")
    args = ap.parse_args()

    import torch
    from gpu_cost import step_probe

    from kmedqa.generation.bench import cpu_name, engine_versions
    from kmedqa.models import load_model, read_model_info

    if args.threads:
        torch.set_num_threads(args.threads)
    info = read_model_info(args.model_json)
    model = load_model(info, device="cpu").eval()
    probe = step_probe(model, args.batch_sizes, prompt_len=args.prompt_len, steps=args.steps)
    rows = [{"batch": r["batch"], "prefill_s": r["prefill_s"], "decode_step_s": r["eager_step_s"]}
            for r in probe]  # fmt: skip
    for r in rows:
        step_ms = r["decode_step_s"] * 1000
        print(f"batch {r['batch']}: prefill {r['prefill_s']:.2f} s, decode step {step_ms:.1f} ms")
    fit = statistics.linear_regression(
        [r["batch"] for r in rows], [r["decode_step_s"] for r in rows]
    )  # step = fixed + per_row x batch
    report = {
        "model": info["name"],
        "dtype": info.get("dtype"),
        "prompt_len": args.prompt_len,
        "rows": rows,
        "decode_step_fit_s": {"fixed": fit.intercept, "per_row": fit.slope},
        "device_name": cpu_name(),
        "torch_threads": torch.get_num_threads(),
        "versions": engine_versions(),
    }
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(report, indent=2) + "\n")
    print(f"step = {fit.intercept * 1000:.1f} ms + {fit.slope * 1000:.2f} ms x rows")
    return 0


if __name__ == "__main__":
    from kmedqa.errors import one_line_errors

    with one_line_errors("decode_step_cost"):
        raise SystemExit(main())
