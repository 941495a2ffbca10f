#!/usr/bin/env bash
# The training recipe of the shipped model, twelve stages, each resumable (rerun to continue).
# Usage: tools/recipe.sh RUN [train options for every stage, e.g. --exclude erythroblast]
#   tools/recipe.sh runs/diffusion                                 # the shipped model
#   TEACHER=models/eval/cytolens-baseline-no-erythroblast.bpk \
#     tools/recipe.sh runs/no-erythroblast --exclude erythroblast  # the anomaly experiment
# Stage 12 distils from a calibrated baseline CNN (TEACHER, default models/eval/cytolens-baseline.bpk;
# it must leave out the same class as the run, which `train` checks).
# Stages write RUN, RUN-ft, RUN-ft2, RUN-ft3, RUN-bal, RUN-gpu6, RUN-gpu7, RUN-cpu8, RUN-ce9, RUN-w10, RUN-w11 and RUN-kd12; each
# starts from the previous stage's EMA weights. Time on 2 cores (flex backend): about 80 + 70 +
# 70 + 65 + 45 minutes, about 45 for stages 6 and 7 (90 steps of 1,280 rows; the shipped ones
# ran on an H200, 6 and 3 minutes: `tools/gpu-train.sh`, docs/gpu.md) and 35 for stage 8 (72
# such steps, 28-31 s each, trained on this CPU), 36 for stage 9, 38 for stage 10, 41 for stage 11 and 30-40 for stage 12 (the same).
# STAGES=3 to 11 stops after that stage (the shipped model until 30 November: 3, 4, 5, then 7;
# until 2 December: 8, then 9, then 10; until 5 December: 11).
set -euo pipefail
cd "$(dirname "$0")/.."
RUN=${1:?usage: tools/recipe.sh RUN [train options]}
shift
STAGES=${STAGES:-12}
TEACHER=${TEACHER:-models/eval/cytolens-baseline.bpk}
C=./target/release/cytolens
# glibc's malloc maps each large tensor afresh and the kernel zeroes its pages: with transparent
# huge pages for those maps the 1,280-row steps took 32 s instead of 40 (3 steps each).
export GLIBC_TUNABLES=${GLIBC_TUNABLES:-glibc.malloc.hugetlb=1}
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
if [ "$STAGES" -ge 6 ]; then
  # Few large steps (256 denoising crops + 128 cells x the classes), as trained on a GPU; add
  # `--backend wgpu` with a `--features gpu` build to run them there.
  LARGE=(--batch 256 --ce-batch 128 --ce-balanced --checkpoint-every 10)
  echo "=== $(date +%T) stage 6: $RUN-gpu6"
  $C train --run "$RUN-gpu6" --resume --init-from "$RUN-bal" --steps 60 "${NET[@]}" "${LARGE[@]}" --ce-weight 1.0 \
    --lr 5e-4 --warmup 30 --seed 20 "$@"
  echo "=== $(date +%T) stage 7: $RUN-gpu7"
  $C train --run "$RUN-gpu7" --resume --init-from "$RUN-gpu6" --steps 30 "${NET[@]}" "${LARGE[@]}" --ce-weight 1.0 \
    --lr 3e-4 --warmup 5 --seed 21 "$@"
fi
if [ "$STAGES" -ge 8 ]; then
  # The same large steps, 72 more, with batches of their own; trained on the 2-core CPU.
  echo "=== $(date +%T) stage 8: $RUN-cpu8"
  $C train --run "$RUN-cpu8" --resume --init-from "$RUN-gpu7" --steps 72 "${NET[@]}" "${LARGE[@]}" --ce-weight 1.0 \
    --lr 3e-4 --warmup 5 --seed 22 "$@"
fi
if [ "$STAGES" -ge 9 ]; then
  # 72 more large steps with the discriminative term on the timesteps the classifier weighs
  # most (t in [50, 234), its four lowest strata, instead of [50, 600)); batches of their own.
  # The shipped stage 9 started from stage 8's f16 weights (static/model on 2 December), this
  # from its f32 EMA weights: close, not bit for bit.
  echo "=== $(date +%T) stage 9: $RUN-ce9"
  $C train --run "$RUN-ce9" --resume --init-from "$RUN-cpu8" --steps 72 "${NET[@]}" "${LARGE[@]}" --ce-weight 1.0 \
    --lr 3e-4 --warmup 5 --seed 28 --ce-t-range 50,234 "$@"
fi
if [ "$STAGES" -ge 10 ]; then
  # 72 more such steps with the discriminative term weighing twice as much against the denoising
  # loss (--ce-weight 2.0), batches of their own. The shipped stage 10 started from stage 9's f16
  # weights (static/model on 2 December), this from its f32 EMA weights.
  echo "=== $(date +%T) stage 10: $RUN-w10"
  $C train --run "$RUN-w10" --resume --init-from "$RUN-ce9" --steps 72 "${NET[@]}" "${LARGE[@]}" --ce-weight 2.0 \
    --lr 3e-4 --warmup 5 --seed 29 --ce-t-range 50,234 "$@"
fi
if [ "$STAGES" -ge 11 ]; then
  # 72 more with that term weighing 4.0 (--ce-weight 4.0), batches of their own (--seed 30). The
  # shipped stage 11 started from stage 10's f16 weights (static/model on 2 December), this from
  # its f32 EMA weights.
  echo "=== $(date +%T) stage 11: $RUN-w11"
  $C train --run "$RUN-w11" --resume --init-from "$RUN-w10" --steps 72 "${NET[@]}" "${LARGE[@]}" --ce-weight 4.0 \
    --lr 3e-4 --warmup 5 --seed 30 --ce-t-range 50,234 "$@"
fi
if [ "$STAGES" -ge 12 ]; then
  # 72 more with the discriminative term's targets half one-hot, half the calibrated baseline's
  # probabilities (distillation), batches of their own (--seed 31). The shipped stage 12 started
  # from stage 11's f16 weights (static/model on 5 December), this from its f32 EMA weights.
  echo "=== $(date +%T) stage 12: $RUN-kd12"
  $C train --run "$RUN-kd12" --resume --init-from "$RUN-w11" --steps 72 "${NET[@]}" "${LARGE[@]}" --ce-weight 4.0 \
    --lr 3e-4 --warmup 5 --seed 31 --ce-t-range 50,234 --ce-teacher "$TEACHER" --ce-teacher-mix 0.5 "$@"
fi
echo "=== $(date +%T) done"
