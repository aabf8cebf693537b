#!/usr/bin/env bash
# The GPU check: one call on a machine with one CUDA GPU, well inside 5 minutes.
#   1. bench.py --gpu: images/s per strategy (float32 and bf16, eager and compiled for PSG and
#      SNGAN), the bare-loop ratio, N-generator scaling looped and vmapped, peak GPU memory.
#   2. --device cuda end to end through the CLI: train, stop at a step budget, resume, sample.
# It needs torch with CUDA, click, rich, pluggy, safetensors, numpy, torchmetrics and tomli-w
# (carry a wheel of any that is missing) and no dataset: it trains on random in-memory images.
#     bash benchmarks/gpu_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
export PYTHONUNBUFFERED=1
# ganzoo's built-in plugins load through entry points: install the checkout, none of its dependencies.
$PYTHON -m pip install --quiet --no-deps --no-build-isolation --no-index -e .
$PYTHON -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.cuda.get_device_name(), 'torch', torch.__version__)"
timeout 240 $PYTHON benchmarks/bench.py --gpu --repeats 3 --steps 20 --limit-data 16384 || echo "bench.py stopped (timeout or error); the rows above are complete"

RUN=$(mktemp -d)/run
GZ="$PYTHON -m ganzoo --plugin benchmarks/synthetic_data.py"
$GZ train psg --n-gens 2 --dataset synthetic --device cuda --steps 60 --out "$RUN" --quiet --json
$GZ train psg --resume "$RUN" --steps 120 --quiet --json
$GZ sample "$RUN" --n 16 --out "$RUN/sample.png"
$PYTHON -c "
from ganzoo.core.tensorfile import read_manifest
m = read_manifest('$RUN/checkpoint.safetensors')
assert m['step'] == 120, m['step']
print('cuda end to end: trained 60 steps, resumed to', m['step'], 'and sampled', '$RUN/sample.png')"
