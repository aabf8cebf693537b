#!/usr/bin/env bash
# SNGAN with the paper's ResNet on CIFAR-10, on one CUDA GPU, to the published FID: the authors'
# unconditional setting (sngan_projection, configs/sn_cifar10_unconditional.yml): resnet32 (G 256
# channels, z 128; SN-ResNet D 128), hinge loss, n_dis 5, batch 64, Adam 2e-4 with betas (0, 0.9)
# decayed linearly to 0 over 50,000 generator steps, no EMA. Then two evaluations with Inception
# features (clean-fid protocol, docs/evaluation.md):
#   - 50,000 samples against the 50,000 training images (Mimicry's protocol: it reports FID 16.77);
#   - 10,000 samples against 5,000 test images (the paper's: FID 21.7; Mimicry's 23.90 by it).
#
#   bash benchmarks/cifar10.sh                        # torchvision's CIFAR-10 (downloaded into the data root)
#   bash benchmarks/cifar10.sh --data folder:PATH     # CIFAR-10 as a folder of 32 px images (e.g. class subfolders)
#   bash benchmarks/cifar10.sh --dry-run              # the same commands, tiny sizes, on the CPU (a made-up folder)
#
# Options: --out DIR (default docs/results/cifar10-sngan), --steps S, --seed K. A rerun resumes the run.
# The data comes from the data root ($GANZOO_DATA or ~/.cache/ganzoo), as for ganzoo train.
# Planned at 4-6 hours on one H100 (not yet measured: no session has been lent a GPU).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
OUT=docs/results/cifar10-sngan STEPS=50000 SEED=0 DATA=cifar10 DEVICE=cuda BATCH=64
EVALS=("--n 50000 --split train" "--n 10000 --n-real 5000 --split test")
usage() { echo "usage: bash benchmarks/cifar10.sh [--dry-run] [--data SPEC] [--out DIR] [--steps S] [--seed K]" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) DRY=1 ;;
    --data) [ $# -ge 2 ] || usage; DATA=$2; shift ;;
    --out) [ $# -ge 2 ] || usage; OUT=$2 OUT_SET=1; shift ;;
    --steps) [ $# -ge 2 ] || usage; STEPS=$2; shift ;;
    --seed) [ $# -ge 2 ] || usage; SEED=$2; shift ;;
    *) usage ;;
  esac
  shift
done
SIZE=() ROOT=()
if [ -n "${DRY:-}" ]; then
  [ -n "${OUT_SET:-}" ] || OUT=$(mktemp -d)/cifar10-sngan
  STEPS=3 DEVICE=cpu BATCH=8 EVALS=("--n 8 --split train" "--n 8 --n-real 6 --split test")
  DATA="folder:$OUT/data/cifar-like" ROOT=(--data-root "$OUT/data")
  $PYTHON -c "from pathlib import Path; from tests.folders import digit_folder; digit_folder(Path('$OUT/data/cifar-like'), count=40, size=32)"
else
  $PYTHON -c "import torch; torch.cuda.is_available() or print('cifar10.sh: no CUDA device here (--dry-run runs the CPU check)')" | grep . >&2 && exit 2
fi
case "$DATA" in folder:*) SIZE=(--resolution 32 --channels 3) ;; esac
mkdir -p "$OUT"
RUN="$OUT/run"
echo "cifar10: sngan --arch resnet32 on $DATA, $STEPS generator steps on $DEVICE; results in $OUT"
start=$(date +%s)
if [ -f "$RUN/checkpoint.safetensors" ]; then
  $PYTHON -m ganzoo train sngan --resume "$RUN" --steps "$STEPS" --quiet
else
  $PYTHON -m ganzoo train sngan --dataset "$DATA" "${SIZE[@]}" --arch resnet32 --z-dim 128 --n-dis 5 --batch-size "$BATCH" \
    --lr 2e-4 --beta1 0 --beta2 0.9 --lr-schedule linear --ema 0 --steps "$STEPS" --seed "$SEED" \
    --device "$DEVICE" "${ROOT[@]}" --out "$RUN" --quiet
fi
echo "cifar10: trained in $(( $(date +%s) - start )) s"
for protocol in "${EVALS[@]}"; do
  # shellcheck disable=SC2086  # the protocol's words are separate options
  $PYTHON -m ganzoo eval "$RUN" --features inception $protocol --device "$DEVICE" "${ROOT[@]}" --weights raw --json \
    > "$OUT/eval-$(echo "$protocol" | tr -d ' -' ).json"
  $PYTHON -c "import json, sys; r = json.load(open(sys.argv[1])); p = r['protocol']; print(f\"cifar10: FID {r['fid']:.2f} ({p['n_fake']} samples vs {p['n_real']} {p['split']} images)\")" \
    "$OUT/eval-$(echo "$protocol" | tr -d ' -' ).json"
done
echo "cifar10: done in $(( $(date +%s) - start )) s (the paper: FID 21.7 by 10k/5k; Mimicry: 16.77 by 50k/50k, 23.90 by 10k/5k)"
