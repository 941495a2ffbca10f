#!/usr/bin/env bash
# The training recipe of the shipped model, five stages, each resumable (rerun to continue).
# Usage: tools/recipe.sh RUN [train options for every stage, e.g. --exclude erythroblast]
#   tools/recipe.sh runs/diffusion                                 # the shipped model
#   tools/recipe.sh runs/no-erythroblast --exclude erythroblast    # the anomaly experiment
# Stages write RUN, RUN-ft, RUN-ft2, RUN-ft3 and RUN-bal; each starts from the previous stage's
# EMA weights. Time on 2 cores (flex backend): about 80 + 70 + 70 + 65 + 45 minutes.
# STAGES=3 or 4 stops after the third or fourth stage (the shipped model until 30 November).
set -euo pipefail
cd "$(dirname "$0")/.."
RUN=${1:?usage: tools/recipe.sh RUN [train options]}
shift
STAGES=${STAGES:-5}
C=./target/release/cytolens
[ -x "$C" ] || cargo build --release --bin cytolens
NET=(--channels 16,32,64,128)
echo "=== $(date +%T) stage 1: $RUN"
$C train --run "$RUN" --resume --steps 3600 "${NET[@]}" --ce-weight 0.2 "$@"
echo "=== $(date +%T) stage 2: $RUN-ft"
$C train --run "$RUN-ft" --resume --init-from "$RUN" --steps 3000 "${NET[@]}" \
  --batch 16 --ce-batch 8 --ce-weight 1.0 --lr 5e-4 --warmup 100 "$@"
echo "=== $(date +%T) stage 3: $RUN-ft2"
$C train --run "$RUN-ft2" --resume --init-from "$RUN-ft" --steps 3000 "${NET[@]}" \
  --batch 16 --ce-batch 8 --ce-weight 1.0 --lr 3e-4 --warmup 100 "$@"
if [ "$STAGES" -ge 4 ]; then
  echo "=== $(date +%T) stage 4: $RUN-ft3"
  $C train --run "$RUN-ft3" --resume --init-from "$RUN-ft2" --steps 3000 "${NET[@]}" \
    --batch 16 --ce-batch 8 --ce-weight 1.0 --lr 3e-4 --warmup 100 "$@"
fi
if [ "$STAGES" -ge 5 ]; then
  # Batches of its own (--seed 19) and class-balanced discriminative images.
  echo "=== $(date +%T) stage 5: $RUN-bal"
  $C train --run "$RUN-bal" --resume --init-from "$RUN-ft3" --steps 2000 "${NET[@]}" \
    --batch 16 --ce-batch 8 --ce-weight 1.0 --lr 3e-4 --warmup 100 --seed 19 --ce-balanced "$@"
fi
echo "=== $(date +%T) done"
