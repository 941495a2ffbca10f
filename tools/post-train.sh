#!/usr/bin/env bash
# Everything after training, in order, each step logged: calibrate the shipped model (f16) into
# static/model, bench, the baseline and the leave-erythroblast-out models, and the test report.
# Usage: tools/post-train.sh   (from the repository root; waits for RUN's training job)
#
# Training: tools/recipe.sh runs/diffusion (twelve stages; the shipped model is the last one;
# stage 12 distils from the committed baseline in models/eval).
# Baselines (trained here when missing, a few minutes each):
#   cytolens train-baseline --run runs/baseline --steps 400
#   cytolens train-baseline --run runs/baseline-no-erythroblast --steps 400 --exclude erythroblast
# Leave-erythroblast-out diffusion model: TEACHER=models/eval/cytolens-baseline-no-erythroblast.bpk
#   tools/recipe.sh runs/no-erythroblast --exclude erythroblast;
# calibrated into models/eval once its last stage is complete.
set -euo pipefail
cd "$(dirname "$0")/.."
C=./target/release/cytolens
RUN=${RUN:-runs/diffusion-kd12}
# The twin's card in models/eval is its stage 12, the shipped model's recipe (5 December).
ANOMALY_RUN=${ANOMALY_RUN:-runs/no-erythroblast-kd12}
# All of val (1,710 cells; 1,555 without erythroblasts): the auto-accept threshold is set by the
# most confident val errors, and on 960 cells it moved with a single cell.
VAL=${VAL:-1710}
step() { echo "=== $(date +%T) $*"; }
# Whether a run's last checkpoint reached the steps it was asked for.
complete() {
  python3 - "$1" <<'PY'
import json, sys
run = sys.argv[1]
try:
    want = json.load(open(f"{run}/options.json"))["steps"]
    have = json.load(open(f"{run}/ckpt/state.json"))["step"]
except (OSError, KeyError, ValueError):
    sys.exit(1)
sys.exit(0 if have >= want else 1)
PY
}
while pgrep -f "^$C train --run $RUN( |$)" >/dev/null; do sleep 10; done
complete "$RUN" || { echo "$RUN is not complete"; exit 1; }
# Other training jobs (another model's recipe) are paused meanwhile, so that the speed figures
# are measured on an otherwise idle machine; they continue when this script ends, however it ends.
if pkill -STOP -f "^$C train "; then
  step "paused other training jobs"
  trap 'pkill -CONT -f "^$C train " && echo "=== $(date +%T) training jobs continue"' EXIT
fi
# Two "no class" rounds and the screen after round 2, keeping the runner-up (fitted to cost at
# most 0.1 % of the rightly classified val cells): the CLI's defaults, spelt out (docs/screen.txt).
SCREEN=(--uncond-rounds 2 --screen-miss 0.001 --screen-keep 2)
step calibrate "$RUN"; $C calibrate --run "$RUN" --out static/model --val-limit "$VAL" --half "${SCREEN[@]}"
step bench; $C bench --cells 256 | tee docs/bench.txt
if [ ! -f models/eval/cytolens-baseline.json ]; then
  step baseline; $C train-baseline --run runs/baseline --steps 400 --resume
  $C calibrate-baseline --run runs/baseline --out models/eval --stem cytolens-baseline
fi
if [ ! -f models/eval/cytolens-baseline-no-erythroblast.json ]; then
  step baseline-no-erythroblast
  $C train-baseline --run runs/baseline-no-erythroblast --steps 400 --exclude erythroblast --resume
  $C calibrate-baseline --run runs/baseline-no-erythroblast --out models/eval --stem cytolens-baseline-no-erythroblast
fi
if complete "$ANOMALY_RUN"; then
  step calibrate "$ANOMALY_RUN"
  $C calibrate --run "$ANOMALY_RUN" --out models/eval --stem cytolens-diffusion-no-erythroblast \
    --val-limit "$VAL" --ood-limit 120 --half "${SCREEN[@]}"
else
  step "$ANOMALY_RUN is not complete: the anomaly figures use models/eval as it is"
fi
step eval; $C eval --split test --json docs/report.json --svg docs/reliability.svg | tee docs/eval.txt
step done
