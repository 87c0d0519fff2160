"""What the workflow ran on: read from the machine, never typed by hand."""

from __future__ import annotations

import importlib.metadata as md
import os
import platform
import subprocess
from typing import Any

PACKAGES = (
    "kmedqa",
    "torch",
    "transformers",
    "trl",
    "peft",
    "accelerate",
    "bitsandbytes",
    "snakemake",
    "kiwipiepy",
    "rouge-score",
    "anthropic",
)


def environment(repo_dir: str | None = None) -> dict[str, Any]:
    import torch

    env: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": platform.processor() or platform.machine(),
        "cpu cores": os.cpu_count(),
        "torch threads": torch.get_num_threads(),
        "CUDA available": torch.cuda.is_available(),
    }
    if torch.cuda.is_available():
        env["GPU"] = torch.cuda.get_device_name()
        env["CUDA"] = torch.version.cuda
    for pkg in PACKAGES:
        try:
            env[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            env[pkg] = "not installed"
    if repo_dir:
        try:
            out = subprocess.run(
                ["git", "-C", repo_dir, "rev-parse", "--short", "HEAD"],
                capture_output=True,
                text=True,
                timeout=10,
            )
            if out.returncode == 0:
                env["kmedqa commit"] = out.stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            pass
    return env
