"""What a training summary reports about the run itself: parameters, memory, machine, versions."""

from __future__ import annotations

import platform
import resource
from typing import Any


def count_parameters(model) -> dict[str, Any]:
    """Trainable and total parameters, both as PEFT counts them and unpacked.

    bitsandbytes stores two 4-bit weights per byte, so PEFT's total for an NF4 model
    counts each packed matrix at half its true size (the essential-medical study's
    0.92% is of that packed count). ``total_unpacked`` counts every weight once.
    """
    trainable = total = total_unpacked = 0
    for p in model.parameters():
        n = p.numel()
        total += n
        total_unpacked += n * 2 if p.__class__.__name__ == "Params4bit" else n
        if p.requires_grad:
            trainable += n
    return {
        "trainable": trainable,
        "total_peft": total,
        "total_unpacked": total_unpacked,
        "trainable_pct_peft": 100.0 * trainable / total,
        "trainable_pct_unpacked": 100.0 * trainable / total_unpacked,
    }


def peak_memory() -> dict[str, Any]:
    import torch

    out = {"cpu_peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if torch.cuda.is_available():
        out["gpu_peak_allocated_mib"] = torch.cuda.max_memory_allocated() / 2**20
        out["gpu_peak_reserved_mib"] = torch.cuda.max_memory_reserved() / 2**20
    return out


def device_name(device: str) -> str:
    """The GPU's name on CUDA, else the CPU's (or the machine type)."""
    import torch

    if device == "cuda":
        return torch.cuda.get_device_name()
    return platform.processor() or platform.machine()


def versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for pkg in ("torch", "transformers", "trl", "peft", "accelerate", "bitsandbytes"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    return out
