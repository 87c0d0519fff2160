"""Generate one run's answers to one eval set: see kmedqa.generation (local models) and
kmedqa.generation.backends (hosted models, source: api)."""

import json
import logging

from kmedqa.generation import GenerationSettings, generate
from kmedqa.generation.backends import generate_hosted
from kmedqa.io import sha256_file, write_json
from kmedqa.items import read_items
from kmedqa.workflow import run_script


def main(smk):
    gen = smk.params.generation
    icl = smk.params.icl
    is_icl = "shots" in smk.input.keys()
    common = dict(
        items=read_items(smk.input.qa),
        formats=smk.params.formats,
        run=smk.params.run,
        eval_set=smk.wildcards.eval_set,
        out_path=smk.output.generations,
        cache_dir=smk.params.cache_dir,
        format_override=smk.params.eval_format,
        shots_pool=read_items(smk.input.shots) if is_icl else None,
        k=icl["k"] if is_icl else 0,
        shots_seed=icl["seed"],
    )
    if smk.params.spec["source"] == "api":
        stats = generate_hosted(
            spec=smk.params.spec,
            settings=gen["api"],
            may_leave_machine=smk.params.may_leave_machine,
            max_new_tokens_override=gen.get("max_new_tokens"),
            **common,
        )
    else:
        stats = generate(
            model_json=smk.input.model,
            adapter_dir=smk.input.get("adapter"),
            settings=GenerationSettings.from_config(gen, smk.params.base_quantization),
            **common,
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
