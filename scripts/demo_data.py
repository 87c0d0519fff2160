"""Write the illustrative demo data (AI Hub 71875 layout + KorMedMCQA-style CSV)."""

from pathlib import Path

from kmedqa.data.demo import write_aihub_demo, write_kormedmcqa_demo
from kmedqa.workflow import run_script


def main(smk):
    write_aihub_demo(Path(smk.output.aihub), seed=smk.params.seed)
    write_kormedmcqa_demo(Path(smk.output.kormedmcqa), seed=smk.params.seed)


run_script(snakemake, main)  # noqa: F821
