"""Build paper/main.pdf with latexmk where TeX is installed; say so where it is not."""

import shutil
import subprocess
from pathlib import Path

from kmedqa.io import atomic_write_text
from kmedqa.workflow import run_script


def main(smk):
    tex = Path(smk.input.numbers).parent / "main.tex"
    if tex.resolve() != Path(smk.input.tex).resolve():  # paper.dir outside the repo
        shutil.copyfile(smk.input.tex, tex)
    latexmk = shutil.which("latexmk")
    if latexmk is None:
        atomic_write_text(
            smk.output.status,
            "skipped: latexmk (TeX) is not installed; paper/main.tex was not compiled\n",
        )
        print("latexmk not found: skipped building the PDF")
        return
    proc = subprocess.run(
        [latexmk, "-xelatex", "-interaction=nonstopmode", "-halt-on-error", tex.name],
        cwd=tex.parent,
        capture_output=True,
        text=True,
    )
    print(proc.stdout[-20000:])
    print(proc.stderr[-5000:])
    if proc.returncode != 0:
        raise SystemExit(f"latexmk failed on {tex} (exit {proc.returncode}); see the log")
    atomic_write_text(smk.output.status, f"built: {tex.with_suffix('.pdf')}\n")


run_script(snakemake, main)  # noqa: F821
