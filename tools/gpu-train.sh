#!/usr/bin/env bash
# One training stage on a GPU machine (burn's wgpu backend over Vulkan) within a fixed
# wall-clock budget: measure a step of the chosen mix, size the run to the time left, train,
# and bring back the EMA weights and the logs.
#
# Expects (see tools/pack-train-cache.py and docs/gpu.md):
#   .gpu/cytolens.xz      a release build with `--features gpu` (xz: it must fit the transfer)
#   .gpu/train.npz        the packed 64-px train cache; .gpu/manifest.csv.xz the split manifest
#   .gpu/*.deb            the Vulkan loader and the GL dispatch libraries NVIDIA's ICD loads
#                         (libvulkan1, libglvnd0, libegl1, libgl1, libglx0, libopengl0, libgles2)
# Writes to $OUT: ema.bpk (the run's EMA weights), twin-ema.bpk (with TWIN_INIT), logs.txt (options, probe and run logs) and
#   smi.csv (GPU utilisation and memory every 5 s, where nvidia-smi exists).
# Env (defaults: stage 5 of the shipped model):
#   BUDGET   seconds for the whole script (560)
#   INIT     weights to start from (static/model/cytolens-diffusion.bpk)
#   MIX      batch mix ("--batch 128 --ce-batch 64 --ce-weight 1.0": 128 denoising crops and
#            64 discriminative cells x the classes, 640 rows per step with 8 classes)
#   FALLBACK_MIX  a smaller mix to probe instead where MIX fails to run (out of memory, say)
#   STEPS    steps to train, skipping the probe, where the mix's step time is known
#   LR, WARMUP  peak learning rate (4e-4) and warm-up steps (50)
#   EXTRA    more train options, e.g. "--exclude erythroblast"
#   TWIN_INIT, TWIN_EXTRA  when TWIN_INIT is set, a second stage (the anomaly experiment's
#            leave-one-class-out model, say) trains beside the first on the same GPU, with the
#            same mix, learning rate and number of steps, from TWIN_INIT with TWIN_EXTRA added;
#            its EMA weights come back as twin-ema.bpk
#   SMALL=1  tiny batches, for a plumbing test on a CPU Vulkan driver (lavapipe)
# The 2026-11-29 run (two trainings side by side) used this script as of commit 8408e5c.
set -uo pipefail
T0=$(date +%s)
BUDGET=${BUDGET:-560}
OUT=${OUT:-/tmp/gpu-out}
INIT=${INIT:-static/model/cytolens-diffusion.bpk}
MIX=${MIX:---batch 128 --ce-batch 64 --ce-weight 1.0}
LR=${LR:-4e-4}
WARMUP=${WARMUP:-50}
EXTRA=${EXTRA:-}
TWIN_INIT=${TWIN_INIT:-}
TWIN_EXTRA=${TWIN_EXTRA:-}
[ "${SMALL:-0}" = 1 ] && MIX="--batch 4 --ce-batch 2 --ce-weight 1.0"
mkdir -p "$OUT"
left() { echo $((T0 + BUDGET - $(date +%s))); }
say() { echo "[$(date +%T) +$(($(date +%s) - T0))s] $*"; }

# --- Vulkan on the machine's GPU (the loader and the GL dispatch libraries NVIDIA's ICD needs) ---
if command -v nvidia-smi >/dev/null; then
  for f in .gpu/*.deb; do dpkg -x "$f" /; done
  ldconfig
  nvidia-smi -L
  # Its own stderr too: a logger left holding the caller's pipe keeps `| tee` (and the device
  # call) waiting after the script ends; stopped on exit.
  nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv -l 5 \
    >"$OUT/smi.csv" 2>/dev/null &
  SMI=$!
  trap 'kill $SMI 2>/dev/null' EXIT
fi
NV=/usr/local/nvidia/share
[ -f $NV/vulkan/icd.d/nvidia_icd.json ] && export VK_DRIVER_FILES=$NV/vulkan/icd.d/nvidia_icd.json
[ -f $NV/glvnd/egl_vendor.d/10_nvidia.json ] &&
  export __EGL_VENDOR_LIBRARY_FILENAMES=$NV/glvnd/egl_vendor.d/10_nvidia.json
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-$(mktemp -d)} VK_LOADER_DEBUG=error

# --- program and data ---------------------------------------------------------------------------
C=.gpu/bin/cytolens
mkdir -p .gpu/bin .gpu/data/pbc runs/cache
python3 -c "import lzma,shutil; shutil.copyfileobj(lzma.open('.gpu/cytolens.xz'), open('$C','wb'))" || exit 1
chmod +x $C
python3 -c "import lzma,shutil; shutil.copyfileobj(lzma.open('.gpu/manifest.csv.xz'), open('.gpu/data/pbc/manifest.csv','wb'))" || exit 1
python3 tools/pack-train-cache.py unpack .gpu/train.npz runs/cache/pbc-train-64.bin || exit 1
say "ready"

set_args() {
  # shellcheck disable=SC2206 # MIX and EXTRA are option lists
  COMMON=(--channels 16,32,64,128 --backend wgpu --data .gpu/data $MIX)
  # shellcheck disable=SC2206
  ARGS=("${COMMON[@]}" $EXTRA --init-from "$INIT")
  # shellcheck disable=SC2206
  TWIN_ARGS=("${COMMON[@]}" $TWIN_EXTRA --init-from "$TWIN_INIT")
}
set_args
RUNS=(gpu-stage)
[ -n "$TWIN_INIT" ] && RUNS+=(gpu-twin)
bring_back() {
  cp runs/gpu-stage/ckpt/ema.bpk "$OUT/" 2>/dev/null
  cp runs/gpu-twin/ckpt/ema.bpk "$OUT/twin-ema.bpk" 2>/dev/null
  for r in gpu-probe gpu-twin-probe "${RUNS[@]}"; do
    echo "=== runs/$r"
    cat runs/$r/options.json runs/$r/ckpt/state.json runs/$r/train.log 2>/dev/null
    echo
  done >"$OUT/logs.txt"
}
# train_both RUN TWIN_RUN STEPS LIMIT_S [TRAIN OPTIONS]: the stage, and the twin beside it with
# the same steps and options where TWIN_INIT is set.
train_both() {
  local run=$1 twin=$2 steps=$3 limit=$4
  shift 4
  timeout "$limit" $C train --run "$run" "${ARGS[@]}" --steps "$steps" "$@" >/dev/null &
  local first=$!
  if [ -n "$TWIN_INIT" ]; then
    timeout "$limit" $C train --run "$twin" "${TWIN_ARGS[@]}" --steps "$steps" "$@" >/dev/null
  fi
  wait $first
}

if [ -n "${STEPS:-}" ]; then
  # The step time of this mix is known (docs/gpu.md): no probe.
  N=$STEPS
  say "training $N steps (${RUNS[*]})"
else
  # --- measure: 20 steps (steps 11-20 give the time; the first ones compile the shaders) ---------
  # With a twin both probes run together, so the time is the time of a step beside the other.
  train_both runs/gpu-probe runs/gpu-twin-probe 20 "${PROBE_TIMEOUT:-120}"
  probe_time() {
    cat runs/gpu-probe/train.log runs/gpu-twin-probe/train.log 2>/dev/null |
      awk '/^step 20 /{ if ($NF > s) s = $NF } END { if (s > 0) print s }'
  }
  S=$(probe_time)
  if [ -z "$S" ] && [ -n "${FALLBACK_MIX:-}" ]; then
    # The mix did not run (out of memory, say): probe the smaller one instead.
    say "probe failed with $MIX; trying $FALLBACK_MIX"
    MIX=$FALLBACK_MIX
    set_args
    rm -rf runs/gpu-probe runs/gpu-twin-probe
    train_both runs/gpu-probe runs/gpu-twin-probe 20 "${PROBE_TIMEOUT:-120}"
    S=$(probe_time)
  fi
  [ -n "$S" ] || { say "probe failed"; bring_back; exit 1; }
  # Steps that fit what is left, less a margin for start-up, the last checkpoint and the copy.
  N=$(awk -v t="$(($(left) - 40))" -v s="$S" 'BEGIN { n = int(t / s / 10) * 10; print (n < 20 ? 20 : n) }')
  say "measured $S s/step; training $N steps (${RUNS[*]})"
fi

train_both runs/gpu-stage runs/gpu-twin "$N" $(($(left) - 15)) --lr "$LR" --warmup "$WARMUP" --checkpoint-every 10
say "training ended"
bring_back
for r in "${RUNS[@]}"; do grep -h "^step" runs/$r/train.log | tail -2; done
say "done"
