"""Generate one run's answers to one eval set: see kmedqa.generation."""

import json
import logging

from kmedqa.generation import generate
from kmedqa.io import sha256_file, write_json
from kmedqa.items import read_items
from kmedqa.workflow import run_script


def main(smk):
    gen = smk.params.generation
    icl = smk.params.icl
    is_icl = "shots" in smk.input.keys()
    stats = generate(
        model_json=smk.input.model,
        items=read_items(smk.input.qa),
        formats=smk.params.formats,
        run=smk.params.run,
        eval_set=smk.wildcards.eval_set,
        out_path=smk.output.generations,
        cache_dir=smk.params.cache_dir,
        adapter_dir=smk.input.get("adapter"),
        merge_adapter=gen["merge_adapter"],
        batch_size=gen["batch_size"],
        device=gen["device"],
        backend=gen["backend"],
        max_new_tokens=gen.get("max_new_tokens"),
        format_override=smk.params.eval_format,
        quantization=smk.params.base_quantization,
        shots_pool=read_items(smk.input.shots) if is_icl else None,
        k=icl["k"] if is_icl else 0,
        shots_seed=icl["seed"],
    )
    logging.getLogger("kmedqa").info("generation stats: %s", json.dumps(stats))
    write_json(
        smk.output.summary,
        {
            "run": smk.params.run,
            "eval_set": smk.wildcards.eval_set,
            "items_file": smk.input.qa,
            "items_sha256": sha256_file(smk.input.qa),  # the items these lines answer
            **stats,
        },
    )


run_script(snakemake, main)  # noqa: F821
