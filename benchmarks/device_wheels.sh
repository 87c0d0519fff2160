#!/usr/bin/env bash
# Wheels the GPU suite needs on a lent device machine whose image has torch, transformers,
# peft, accelerate, pandas, pyarrow, numpy, pyyaml, jinja2, requests, psutil, tabulate and
# wrapt but not these (see the device notes' package list). Each is downloaded --no-deps at
# the version installed HERE (your .venv), as x86-64 CPython 3.12 wheels, into two folders
# that each fit one device call (64 MiB with the working tree):
#
#   .whl/a: bitsandbytes (41 MiB) and trl
#   .whl/b: snakemake and what it imports, datasets, transformers (the image's is older than
#           kmedqa's minimum)
#
# Usage (repo root, with the venv that runs the demo on PATH):
#   echo /.whl/ >> .git/info/exclude; bash benchmarks/device_wheels.sh
# then see benchmarks/README.md ("GPU suite") for the two device calls.
set -euo pipefail
A="bitsandbytes==0.50.2 trl"
B="datasets dill multiprocess transformers huggingface-hub
snakemake conda-inject configargparse connection-pool docutils dpath gitpython gitdb smmap
humanfriendly immutables jsonschema jsonschema-specifications referencing rpds-py nbformat
fastjsonschema jupyter-core traitlets platformdirs smart-open snakemake-interface-common
snakemake-interface-executor-plugins snakemake-interface-logger-plugins
snakemake-interface-report-plugins snakemake-interface-scheduler-plugins
snakemake-interface-storage-plugins sqlmodel sqlalchemy greenlet pydantic pydantic-core
annotated-types typing-inspection tenacity throttler yte argparse-dataclass"
PLATFORMS="--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64
--platform manylinux_2_24_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64
--platform manylinux1_x86_64"

pinned() {  # NAME -> NAME==VERSION installed here (a NAME==X stays as given)
  for n in "$@"; do
    case "$n" in
      *==*) echo "$n" ;;
      *) echo "$n==$(python -c "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))" "$n")" ;;
    esac
  done
}

for part in a b; do
  names=$([ "$part" = a ] && echo "$A" || echo "$B")
  mkdir -p ".whl/$part"
  # shellcheck disable=SC2046,SC2086
  python -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp $PLATFORMS -d ".whl/$part" $(pinned $names)
  du -sh ".whl/$part"
done
