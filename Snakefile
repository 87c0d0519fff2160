# kmedqa: raw data -> splits -> (Q)LoRA training -> generation -> scores -> statistics -> paper/
#
#   snakemake --cores 1 --resources gpu=1                                  # the offline demo (config.yaml)
#   snakemake --cores 1 --resources gpu=1 --configfile experiments/<study>.yaml
#
# The config is validated against schemas/config.schema.yaml before any job runs.
import sys
from pathlib import Path

from snakemake.utils import min_version

min_version("9.0")
sys.path.insert(0, str(Path(workflow.basedir) / "src"))
from kmedqa.workflow import validate_config  # noqa: E402
from kmedqa.recipes import TRAINING_WILDCARD, VARIANT_WILDCARD  # noqa: E402

# The embedded demo, unless a config is given (`--configfile experiments/<study>.yaml`
# replaces it; the two are never merged).
if not workflow.overwrite_configfiles:

    configfile: "config.yaml"


# An unknown key or a wrong type stops here, before any job, naming the key.
validate_config(config, str(Path(workflow.basedir) / "schemas" / "config.schema.yaml"))


report: "report/workflow.rst"


include: "rules/common.smk"


wildcard_constraints:
    dataset="[A-Za-z0-9_]+",
    model="[A-Za-z0-9_.-]+",
    variant=VARIANT_WILDCARD,
    train_set="[A-Za-z0-9_]+",
    training=TRAINING_WILDCARD,
    eval_set="[A-Za-z0-9_-]+",
    split="train|val|test|sample",


include: "rules/data.smk"
include: "rules/models.smk"
include: "rules/train.smk"
include: "rules/generate.smk"
include: "rules/score.smk"
include: "rules/stats.smk"
include: "rules/judge.smk"
include: "rules/paper.smk"
include: "rules/hub.smk"


rule all:
    default_target: True
    input:
        all_targets(),
