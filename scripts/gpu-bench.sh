#!/usr/bin/env bash
# The engine's benchmarks on a CUDA machine, sized to finish inside 10 minutes:
#   1. compare     engine loop vs transformers.Trainer on one trial   (python -m bench.engine.compare)
#   2. allocation  one allocation cold vs warm (resident model, weak-stage reuse, grouped training)
#   3. mfu         model-FLOPs utilisation of one trial's training stage
# Each runs under `timeout` (one that overruns is reported and the next still runs); its output goes
# to <results>/<name>.log and its final JSON line to <results>/<name>.json, where <results> is $OUT
# if set, else ./gpu-bench-results. Exits non-zero if any benchmark failed.
#
#   scripts/gpu-bench.sh            on a GPU host (exits at once, saying so, when CUDA is missing)
#   scripts/gpu-bench.sh --dry-run  the same three on the CPU at toy sizes: checks the script end to end
#
# Needs the repo's .venv (scripts/install.sh; on a GPU host with TORCH_SPEC set to a CUDA torch).
set -euo pipefail
cd "$(dirname "$0")/.."

DRY_RUN=0
case "${1:-}" in
  --dry-run) DRY_RUN=1 ;;
  "") ;;
  *) echo "usage: $0 [--dry-run]" >&2; exit 2 ;;
esac

# LABELMIX_PYTHON: an interpreter that already has labelmix's needs (a GPU image's own python3, with
# the rest on PYTHONPATH) instead of the repo's .venv.
PY=${LABELMIX_PYTHON:-.venv/bin/python}
if ! command -v "$PY" >/dev/null; then
  echo "no .venv: run scripts/install.sh first (on a GPU host: TORCH_SPEC=<a CUDA torch> scripts/install.sh)" >&2
  exit 1
fi
RESULTS=${OUT:-./gpu-bench-results}
mkdir -p "$RESULTS"
export HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1} HF_DATASETS_OFFLINE=${HF_DATASETS_OFFLINE:-1}

if [ "$DRY_RUN" = 1 ]; then
  # The CPU even on a GPU host: the dry run checks the script, not the chip.
  export LABELMIX_DEVICE=cpu
  # One torch thread unless told otherwise: on a shared CPU host, torch's default (every core)
  # beside other busy processes ran a MiniLM step 30x slower (21 s for 3 steps vs 0.7 s).
  export LABELMIX_TORCH_THREADS=${LABELMIX_TORCH_THREADS:-1}
  # A busy 2-core CI host takes minutes for what a GPU does in seconds: generous limits.
  COMPARE=(--n-gold 40 --n-test 16 --max-steps 2 --max-length 16 --repeats 1); COMPARE_S=900
  # bow weak labels build in seconds; the default labeler fine-tunes a model for minutes on a CPU.
  ALLOCATION=(--points 2 --seeds 1 --max-steps 2 --n-test 64 --weak-labeler bow); ALLOCATION_S=900
  # bf16 where the CPU multiplies it natively. Without avx512_bf16 or amx_bf16 a bf16 2048x2048
  # product is emulated (85 s against 0.04 s on one Zen 5 core under ONEDNN_MAX_CPU_ISA=AVX2), and the
  # measured peak alone took most of the limit: the dry run checks the script in fp32 there.
  DRY_PRECISION=$("$PY" -c "from worker.engine.precision import cpu_supports_bf16; print('bf16' if cpu_supports_bf16() else 'fp32')")
  MFU=(--steps 3 --batch-sizes 8 --precision "$DRY_PRECISION"); MFU_S=600
else
  if command -v nvidia-smi >/dev/null 2>&1; then
    nvidia-smi | tee "$RESULTS/nvidia-smi.txt"
  fi
  if ! "$PY" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    echo "CUDA is not available to torch in .venv (no GPU, no driver, or a CPU-only torch: reinstall with" \
         "TORCH_SPEC set, see scripts/install.sh). Use --dry-run to check the script on the CPU." >&2
    exit 1
  fi
  # Limits add up to 9.25 minutes; measured sizes are the benchmarks' defaults unless set here.
  COMPARE=(--repeats 3); COMPARE_S=120
  # The weak labels are built (about a minute on a GPU, once per cache) inside this limit.
  ALLOCATION=(--points 8 --seeds 2); ALLOCATION_S=360
  MFU=(--steps 50 --batch-sizes 32,256,1024 --precision bf16); MFU_S=75
fi
"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())" | tee "$RESULTS/env.txt"

FAILED=()
run_bench() {  # name, seconds, module args...
  local name=$1 limit=$2; shift 2
  local log="$RESULTS/$name.log" rc=0
  echo "== $name (timeout ${limit}s): python -m $*" | tee "$log"
  timeout --kill-after=20 "$limit" "$PY" -m "$@" 2>&1 | tee -a "$log" || rc=$?
  # The benchmark's last output line starting with "{" is its JSON summary.
  if [ "$rc" = 0 ] && grep '^{' "$log" | tail -n 1 > "$RESULTS/$name.json" && [ -s "$RESULTS/$name.json" ]; then
    echo "== $name done: $RESULTS/$name.json"
  else
    [ "$rc" = 124 ] && echo "== $name timed out after ${limit}s" | tee -a "$log" >&2
    echo "== $name failed (exit $rc): see $log" >&2
    rm -f "$RESULTS/$name.json"
    FAILED+=("$name")
  fi
}

run_bench compare "$COMPARE_S" bench.engine.compare "${COMPARE[@]}"
run_bench allocation "$ALLOCATION_S" bench.engine.allocation "${ALLOCATION[@]}"
run_bench mfu "$MFU_S" bench.engine.mfu "${MFU[@]}"

if [ ${#FAILED[@]} -gt 0 ]; then
  echo "failed: ${FAILED[*]} (results in $RESULTS)" >&2
  exit 1
fi
echo "all benchmarks done; results in $RESULTS"
