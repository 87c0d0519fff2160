"""Run the workflow (this repository's Snakefile) on a config in a scratch directory."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml


def run_snakemake(
    repo_root: Path,
    workdir: Path,
    config: dict,
    *args: str,
    config_name: str = "config.yaml",
    timeout: float = 900,
) -> subprocess.CompletedProcess:
    """``snakemake ARGS`` with ``config`` written to ``workdir/config_name``; output captured.

    ``args`` come before ``--configfile`` (which takes several values)."""
    cfg = Path(workdir) / config_name
    cfg.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            *args,
            "--snakefile",
            str(Path(repo_root) / "Snakefile"),
            "--directory",
            str(workdir),
            "--configfile",
            str(cfg),
        ],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
