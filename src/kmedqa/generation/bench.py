"""``kmedqa bench-generate``: the batched engine against a naive one-item-at-a-time loop.

In one process, on one loaded model and the same items, it times

* the engine: :func:`kmedqa.generation.generate` with a fresh, empty cache directory
  (nothing is cached, every item is generated), and
* a naive loop: for each item, ``tokenizer.apply_chat_template`` on the same messages,
  then ``model.generate`` (greedy, the same per-item token budget and stop ids) on that
  one item,

and writes one JSON report: wall time, items/s and new tokens/s of each, the ratio
``naive / engine``, device, batch size, torch threads, and how many items got the same
text both ways. Batched left-padded greedy decoding may legitimately differ from
unbatched decoding in a few items (floating-point sums in another order can flip an
argmax between near-tied tokens); the count is reported, never enforced.
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from kmedqa.cli import add_command
from kmedqa.errors import ConfigError
from kmedqa.io import read_json, write_json
from kmedqa.items import read_items
from kmedqa.prompts import DATASET_FORMATS


def parse_format_map(text: str) -> dict[str, str]:
    """``"aihub71875=aihub,kormedmcqa=kormedmcqa"`` -> ``{dataset: prompt format}``."""
    out: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        if "=" not in part:
            raise ConfigError(f"--format-map: {part!r} is not DATASET=FORMAT")
        key, val = (x.strip() for x in part.split("=", 1))
        if not key or not val:
            raise ConfigError(f"--format-map: {part!r} is not DATASET=FORMAT")
        out[key] = val
    return out


DEMO_MIXES = ("mcq", "aihub")


def _spread(items: list[dict[str, Any]], m: int) -> list[dict[str, Any]]:
    """``m`` items evenly spaced through ``items`` (sorted by id): every domain gets a share."""
    if m > len(items):
        raise ConfigError(f"the demo data has only {len(items)} such items, {m} asked for")
    return [items[(j * len(items)) // m] for j in range(m)]


def demo_items(n: int, mix: str = "mcq", seed: int = 42) -> list[dict[str, Any]]:
    """``n`` items of the offline demo data (``kmedqa demo-data``), loaded by the real loaders.

    ``mix="mcq"``: AI Hub 71875-style MCQs (numbered options in the question, budget 24
    tokens) alternating with KorMedMCQA-style vignettes (lettered options, budget 8);
    ``mix="aihub"``: AI Hub-style items of every task as the demo has them (MCQ, short
    answer, descriptive: budgets 24, 48, 128).
    """
    from kmedqa.data.aihub import load_aihub
    from kmedqa.data.demo import write_demo_data
    from kmedqa.data.kormedmcqa import load_kormedmcqa

    if mix not in DEMO_MIXES:
        raise ConfigError(f"unknown demo mix {mix!r} ({', '.join(DEMO_MIXES)})")
    with tempfile.TemporaryDirectory(prefix="kmedqa-bench-demo-") as tmp:
        write_demo_data(tmp, seed=seed)
        aihub = load_aihub(Path(tmp) / "aihub71875")
        kmm = load_kormedmcqa(Path(tmp) / "kormedmcqa", "doctor") if mix == "mcq" else []
    if mix == "aihub":
        return _spread(aihub, n)
    a = _spread([i for i in aihub if i["task"] == "mcq"], (n + 1) // 2)
    k = _spread(kmm, n // 2)
    return [x for pair in zip(a, k + [None], strict=False) for x in pair if x is not None][:n]


def naive_generate(
    model,
    tok,
    items: list[dict[str, Any]],
    formats: dict[str, str],
    template_kwargs: dict[str, Any] | None = None,
) -> tuple[list[dict[str, Any]], float]:
    """The loop a first script would write: one item at a time, no batching, no cache."""
    import torch

    from kmedqa.generation import cut_at_stop, stop_token_ids
    from kmedqa.prompts import build_messages, format_name, get_format, max_new_tokens
    from kmedqa.prompts.chat import fit_messages

    stops = stop_token_ids(tok, model)
    dev = next(model.parameters()).device
    rows = []
    t0 = time.perf_counter()
    for item in items:
        fmt = get_format(format_name(item, formats))
        enc = tok.apply_chat_template(
            fit_messages(build_messages(item, fmt), tok, template_kwargs),
            add_generation_prompt=True,
            return_tensors="pt",
            return_dict=True,
            **(template_kwargs or {}),
        )
        with torch.inference_mode():
            out = model.generate(
                input_ids=enc["input_ids"].to(dev),
                attention_mask=enc["attention_mask"].to(dev),
                do_sample=False,
                max_new_tokens=max_new_tokens(item, fmt),
                eos_token_id=stops,
                pad_token_id=tok.pad_token_id,
            )
        new = out[0, enc["input_ids"].shape[1] :].tolist()
        n_new = next((j + 1 for j, t in enumerate(new) if t in stops), len(new))
        text = cut_at_stop(
            tok.decode(new[:n_new], skip_special_tokens=True), list(fmt.get("stop", []))
        )
        rows.append({"id": item["id"], "output": text.strip(), "n_new_tokens": n_new})
    return rows, time.perf_counter() - t0


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def bench_generate(
    *,
    model_json: str,
    items: list[dict[str, Any]],
    formats: dict[str, str],
    batch_size: int = 16,
    device: str = "auto",
    model=None,
    tokenizer=None,
    warmup: bool = True,
    share_prefix: bool = True,
    prompt_lookup: int | None = None,
) -> dict[str, Any]:
    """Time the engine and the naive loop on one model and the same items; return the report."""
    import torch

    from kmedqa.generation import GenerationSettings, generate
    from kmedqa.models import load_model, load_tokenizer, read_model_info, resolve_device
    from kmedqa.prompts import format_name

    settings = GenerationSettings(batch_size=batch_size, share_prefix=share_prefix)
    if prompt_lookup is not None:
        settings = replace(settings, prompt_lookup=prompt_lookup)
    info = read_model_info(model_json)
    for item in items:
        format_name(item, formats)  # an item without a prompt format fails here, in one line
    template_kwargs = info.get("spec", {}).get("chat_template_kwargs")
    t_load = time.perf_counter()
    if model is None:
        model = load_model(info, device=resolve_device(device))
    if tokenizer is None:
        tokenizer = load_tokenizer(info)
    model.eval()
    load_s = time.perf_counter() - t_load
    dev = str(next(model.parameters()).device)

    if warmup:  # first-call costs (kernel selection, allocator growth) paid outside the timings
        with tempfile.TemporaryDirectory(prefix="kmedqa-bench-") as tmp:
            naive_generate(model, tokenizer, items[:1], formats, template_kwargs)
            generate(
                model_json=model_json, items=items[:batch_size], formats=formats, run="warmup",
                eval_set="bench", out_path=str(Path(tmp) / "w.jsonl"), cache_dir=str(Path(tmp) / "c"),
                settings=settings, progress=False, model=model, tokenizer=tokenizer,
            )  # fmt: skip

    with tempfile.TemporaryDirectory(prefix="kmedqa-bench-") as tmp:
        out_path = Path(tmp) / "engine.jsonl"
        _sync(dev)
        t0 = time.perf_counter()
        stats = generate(
            model_json=model_json, items=items, formats=formats, run="bench", eval_set="bench",
            out_path=str(out_path), cache_dir=str(Path(tmp) / "cache"), settings=settings, progress=False, model=model, tokenizer=tokenizer,
        )  # fmt: skip
        _sync(dev)
        engine_s = time.perf_counter() - t0
        if stats["n_cached"]:
            raise RuntimeError("bench: the engine found cached items in a fresh cache dir")
        engine_rows = [
            json.loads(line) for line in out_path.read_text(encoding="utf-8").splitlines()
        ]

    _sync(dev)
    naive_rows, naive_s = naive_generate(model, tokenizer, items, formats, template_kwargs)
    _sync(dev)

    by_id = {r["id"]: r for r in naive_rows}
    same_text = sum(r["output"] == by_id[r["id"]]["output"] for r in engine_rows)
    same_tokens = sum(r["n_new_tokens"] == by_id[r["id"]]["n_new_tokens"] for r in engine_rows)
    engine_tok = sum(r["n_new_tokens"] for r in engine_rows)
    naive_tok = sum(r["n_new_tokens"] for r in naive_rows)
    n = len(items)
    report: dict[str, Any] = {
        "model": info["name"],
        "model_path": info["path"],
        "dtype": str(next(model.parameters()).dtype).replace("torch.", ""),
        "n_items": n,
        "device": dev,
        "device_name": torch.cuda.get_device_name() if dev.startswith("cuda") else cpu_name(),
        "batch_size": batch_size,
        "n_batches": stats.get("n_batches"),
        "share_prefix": share_prefix,
        "prefix_tokens_shared": stats.get("prefix_tokens_shared", 0),
        "prompt_lookup": settings.prompt_lookup,
        "draft_tokens_fed": stats.get("draft_tokens_fed", 0),
        "draft_tokens_kept": stats.get("draft_tokens_kept", 0),
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "load_avg_1m": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "model_load_s": load_s,
        "engine": {
            "wall_s": engine_s,
            "items_per_s": n / engine_s,
            "new_tokens": engine_tok,
            "new_tokens_per_s": engine_tok / engine_s,
        },
        "naive": {
            "wall_s": naive_s,
            "items_per_s": n / naive_s,
            "new_tokens": naive_tok,
            "new_tokens_per_s": naive_tok / naive_s,
        },
        "ratio": naive_s / engine_s,
        "agreement": {
            "same_text": same_text,
            "same_n_new_tokens": same_tokens,
            "n_items": n,
            "differing_ids": sorted(
                r["id"] for r in engine_rows if r["output"] != by_id[r["id"]]["output"]
            ),
        },
        "versions": engine_versions(),
    }
    return report


def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo``), for benchmark reports."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def engine_versions() -> dict[str, str]:
    """Python's, torch's and transformers' versions, for benchmark reports."""
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for pkg in ("torch", "transformers"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    return out


def _cmd_bench(args) -> int:
    formats = parse_format_map(args.format_map)
    if args.n <= 0:
        raise ConfigError("--n must be positive")
    if args.prompt_lookup is not None and args.prompt_lookup < 0:
        raise ConfigError(f"--prompt-lookup {args.prompt_lookup}: want 0 (off) or more guesses")
    if args.items:
        items = read_items(args.items)
    else:
        items = demo_items(args.n, mix=args.demo_mix)
    if len(items) < args.n:
        raise ConfigError(f"--n {args.n}: {args.items} has only {len(items)} items")
    items = items[: args.n]
    read_json(args.model_json)  # a missing or broken model.json fails here, in one line
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    report = bench_generate(
        model_json=args.model_json,
        items=items,
        formats=formats,
        batch_size=args.batch_size,
        device=args.device,
        share_prefix=not args.no_share_prefix,
        prompt_lookup=args.prompt_lookup,
    )
    report["items_file"] = args.items or f"demo data ({args.demo_mix})"
    if args.output:
        write_json(args.output, report)
    e, nv = report["engine"], report["naive"]
    print(
        f"engine {e['wall_s']:.1f}s ({e['items_per_s']:.2f} items/s, {e['new_tokens_per_s']:.1f} tok/s) | "
        f"naive {nv['wall_s']:.1f}s ({nv['items_per_s']:.2f} items/s, {nv['new_tokens_per_s']:.1f} tok/s) | "
        f"ratio {report['ratio']:.2f}x | same text {report['agreement']['same_text']}/{report['n_items']}"
        + (f" -> {args.output}" if args.output else "")
    )
    return 0


def register(subparsers) -> None:
    p = add_command(
        subparsers,
        "bench-generate",
        __doc__,
        help="time the batched generation engine against a naive one-item loop",
    )
    p.add_argument("--model-json", required=True, help="model.json written by materialize")
    p.add_argument(
        "--items", help="normalized items (JSON lines); default: built-in Korean demo MCQ items"
    )
    p.add_argument(
        "--demo-mix",
        choices=DEMO_MIXES,
        default="mcq",
        help="without --items: mcq (AI Hub-style and KorMedMCQA-style MCQs, alternating) "
        "or aihub (AI Hub-style items of every task); default mcq",
    )
    p.add_argument("--n", type=int, default=64, help="number of items (the first N; default 64)")
    p.add_argument("--batch-size", type=int, default=16, help="engine batch size (default 16)")
    p.add_argument(
        "--format-map",
        default=",".join(f"{k}={v}" for k, v in DATASET_FORMATS.items()),
        help="DATASET=FORMAT pairs, comma-separated (default: %(default)s)",
    )
    p.add_argument("--device", default="auto", help="auto, cpu or cuda (default auto)")
    p.add_argument(
        "--threads", type=int, default=0, help="torch threads (default: torch's own choice)"
    )
    p.add_argument(
        "--no-share-prefix",
        action="store_true",
        help="engine: prefill every row's whole prompt (default: a prefix shared by a batch is prefilled once)",
    )
    p.add_argument(
        "--prompt-lookup",
        type=int,
        metavar="N",
        help="engine: prompt-lookup guesses fed per row and step (default: the schema's "
        "evaluation.generation.prompt_lookup; 0: one token per step)",
    )
    p.add_argument("-o", "--output", help="write the JSON report here")
    p.set_defaults(func=_cmd_bench)
