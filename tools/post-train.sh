#!/usr/bin/env bash
# How the shipped model was made, and everything after training, in order; each step logged.
# Usage: tools/post-train.sh   (from the repository root; waits for a running training job)
#
# Training (two stages, ~80 + ~75 minutes on 2 cores; `--resume` continues either):
#   cytolens train --run runs/diffusion --steps 3600 --channels 16,32,64,128 --ce-weight 0.2
#   cytolens train --run runs/diffusion-ft --init-from runs/diffusion --steps 3000 --batch 16 \
#       --ce-batch 8 --ce-weight 1.0 --lr 5e-4 --warmup 100 --channels 16,32,64,128
# Baseline and the leave-erythroblast-out models (skipped when their runs are complete):
#   cytolens train-baseline --run runs/baseline --steps 400
#   cytolens train --run runs/no-erythroblast --steps 600 --channels 16,32,64,128 --ce-weight 0.2 --exclude erythroblast
#   cytolens train-baseline --run runs/baseline-no-erythroblast --steps 400 --exclude erythroblast
set -euo pipefail
cd "$(dirname "$0")/.."
C=./target/release/cytolens
RUN=${RUN:-runs/diffusion-ft}
step() { echo "=== $(date +%T) $*"; }
while pgrep -f "cytolens train " >/dev/null; do sleep 10; done
step calibrate "$RUN"; $C calibrate --run "$RUN" --out static/model --val-limit 480 --half
step bench; $C bench --cells 64 | tee docs/bench.txt
if [ ! -f models/eval/cytolens-baseline.json ]; then
  step baseline; $C train-baseline --run runs/baseline --steps 400 --resume
  $C calibrate-baseline --run runs/baseline --out models/eval --stem cytolens-baseline
fi
if [ ! -f models/eval/cytolens-diffusion-no-erythroblast.json ]; then
  step anomaly-models
  $C train --run runs/no-erythroblast --steps 600 --channels 16,32,64,128 --ce-weight 0.2 --exclude erythroblast --resume
  $C calibrate --run runs/no-erythroblast --out models/eval --stem cytolens-diffusion-no-erythroblast --val-limit 240
  $C train-baseline --run runs/baseline-no-erythroblast --steps 400 --exclude erythroblast --resume
  $C calibrate-baseline --run runs/baseline-no-erythroblast --out models/eval --stem cytolens-baseline-no-erythroblast
fi
step eval; $C eval --split test --json docs/report.json --svg docs/reliability.svg --anomaly-limit 1000 2>&1 | tee docs/eval.txt
step done
