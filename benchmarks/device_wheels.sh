#!/usr/bin/env bash
# Wheels the GPU suite needs on a lent device machine (x86-64, CPython 3.12) whose image has
# torch, numpy, pandas, pyarrow, tokenizers, safetensors, jinja2, requests, psutil, tabulate and
# wrapt, but not trl, bitsandbytes, datasets or Snakemake, and an older transformers and
# huggingface-hub than kmedqa's. Each is downloaded --no-deps at the version installed HERE
# (your .venv), into ONE folder that fits one device call (64 MiB with the working tree):
# bitsandbytes is repacked with its CPU and CUDA 13 libraries only (the image's torch is
# built for CUDA 13), which takes it from 41 MiB to about 4.
#
# Usage (repo root, with the venv that runs the demo on PATH):
#   echo /.whl/ >> .git/info/exclude; bash benchmarks/device_wheels.sh
# then see benchmarks/README.md ("GPU suite") for the device call.
set -euo pipefail
NAMES="bitsandbytes==0.50.2 trl transformers huggingface-hub kernels typer shellingham
annotated-doc httpx2 httpcore2 truststore click regex hf-xet fsspec filelock packaging
typing-extensions tqdm accelerate peft datasets dill multiprocess
snakemake conda-inject configargparse connection-pool docutils dpath gitpython gitdb smmap
humanfriendly immutables jsonschema jsonschema-specifications referencing rpds-py nbformat
fastjsonschema jupyter-core traitlets platformdirs smart-open snakemake-interface-common
snakemake-interface-executor-plugins snakemake-interface-logger-plugins
snakemake-interface-report-plugins snakemake-interface-scheduler-plugins
snakemake-interface-storage-plugins sqlmodel sqlalchemy greenlet pydantic pydantic-core
annotated-types typing-inspection tenacity throttler yte argparse-dataclass tomlkit"
PLATFORMS="--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64
--platform manylinux_2_24_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64
--platform manylinux1_x86_64"
KEEP_BNB='libbitsandbytes_(cpu|cuda13[0-9])\.so'

pinned() {  # NAME -> NAME==VERSION installed here (a NAME==X stays as given)
  for n in "$@"; do
    case "$n" in
      *==*) echo "$n" ;;
      *) echo "$n==$(python -c "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))" "$n")" ;;
    esac
  done
}

rm -rf .whl && mkdir -p .whl
for spec in $(pinned $NAMES); do
  # shellcheck disable=SC2086
  python -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp $PLATFORMS -d .whl "$spec" 2>/dev/null ||
    python -m pip wheel -q --no-deps -w .whl "$spec" # pure Python published as sdist only
done

# bitsandbytes without the libraries of other CUDA/ROCm/XPU versions
bnb=$(ls .whl/bitsandbytes-*.whl)
tmp=$(mktemp -d)
(cd "$tmp" && python -m zipfile -e "$OLDPWD/$bnb" .)
find "$tmp/bitsandbytes" -name 'libbitsandbytes_*.so' | grep -Ev "$KEEP_BNB" | xargs rm -f
record=$(ls "$tmp"/bitsandbytes-*.dist-info/RECORD)
grep -v 'libbitsandbytes_' "$record" >"$record.new"
grep -E "$KEEP_BNB" "$record" >>"$record.new"
mv "$record.new" "$record"
rm "$bnb" && (cd "$tmp" && python -m zipfile -c "$OLDPWD/$bnb" ./*)
rm -rf "$tmp"
ls .whl | wc -l
du -sh .whl
