#!/usr/bin/env bash
# Everything after the main training run, in order of importance, each step logged.
# Usage: tools/post-train.sh   (from the repository root; reruns skip finished steps)
set -euo pipefail
cd "$(dirname "$0")/.."
C=./target/release/cytolens
step() { echo "=== $(date +%T) $*"; }
while pgrep -f "cytolens (train --run runs/diffusion |calibrate --run runs/diffusion )" >/dev/null; do sleep 10; done
[ -f static/model/cytolens-diffusion.json ] && grep -q "\"max_rounds\"" static/model/cytolens-diffusion.json || true
step bench; $C bench --cells 64 | tee docs/bench.txt
step baseline; [ -f runs/baseline/ckpt/state.json ] && grep -q "\"step\":400" runs/baseline/ckpt/state.json || $C train-baseline --run runs/baseline --steps 400
step calibrate-baseline; $C calibrate-baseline --run runs/baseline --out models/eval --stem cytolens-baseline
step eval; $C eval --split test --json docs/report.json --svg docs/reliability.svg 2>&1 | tee docs/eval.txt
step anomaly-diffusion; $C train --run runs/no-erythroblast --steps 600 --channels 16,32,64,128 --ce-weight 0.2 --exclude erythroblast --resume
$C calibrate --run runs/no-erythroblast --out models/eval --stem cytolens-diffusion-no-erythroblast --val-limit 240
step anomaly-baseline; $C train-baseline --run runs/baseline-no-erythroblast --steps 400 --exclude erythroblast --resume
$C calibrate-baseline --run runs/baseline-no-erythroblast --out models/eval --stem cytolens-baseline-no-erythroblast
step eval-anomaly; $C eval --split test --only-anomaly --anomaly-limit 1000 --json docs/report.json 2>&1 | tee docs/eval-anomaly.txt
step done
