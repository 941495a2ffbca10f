#!/usr/bin/env bash
# Train on a GPU machine (burn's wgpu backend over Vulkan) within a fixed wall-clock budget.
# Runs two trainings side by side on the one GPU and sizes both from a measured step time:
#   A: the shipped 8-class model, stage 4: from the stage-3 weights (static/model), a larger
#      batch with more cross-entropy cells per step than the CPU stages could afford;
#   B: the leave-erythroblast-out model of the anomaly experiment, from scratch, in two stages
#      (denoising first, then the same stage-4 mix as A).
# Expects (see tools/pack-train-cache.py and docs/gpu.md):
#   .gpu/cytolens.xz      a release build with `--features gpu` (xz: it must fit the transfer)
#   .gpu/train.npz        the packed 64-px train cache; .gpu/manifest.csv.xz the split manifest
#   .gpu/*.deb            the Vulkan loader and the GL dispatch libraries NVIDIA's ICD loads
#                         (libvulkan1, libglvnd0, libegl1, libgl1, libglx0, libopengl0, libgles2)
# Writes to $OUT: a/ema.bpk, b/ema.bpk (EMA weights) and logs.txt (options, logs, final steps).
# Env: BUDGET (seconds for the whole script, default 560), SMALL=1 (tiny batches, for a
# plumbing test on a CPU Vulkan driver), PROBE_TIMEOUT (seconds for the measuring runs, 150).
set -uo pipefail
T0=$(date +%s)
BUDGET=${BUDGET:-560}
OUT=${OUT:-/tmp/gpu-out}
mkdir -p "$OUT"
left() { echo $((T0 + BUDGET - $(date +%s))); }
say() { echo "[$(date +%T) +$(($(date +%s) - T0))s] $*"; }

# --- Vulkan on the machine's GPU (the loader and the GL dispatch libraries NVIDIA's ICD needs) ---
if command -v nvidia-smi >/dev/null; then
  for f in .gpu/*.deb; do dpkg -x "$f" /; done
  ldconfig
fi
NV=/usr/local/nvidia/share
[ -f $NV/vulkan/icd.d/nvidia_icd.json ] && export VK_DRIVER_FILES=$NV/vulkan/icd.d/nvidia_icd.json
[ -f $NV/glvnd/egl_vendor.d/10_nvidia.json ] &&
  export __EGL_VENDOR_LIBRARY_FILENAMES=$NV/glvnd/egl_vendor.d/10_nvidia.json
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-$(mktemp -d)} VK_LOADER_DEBUG=error
nvidia-smi -L 2>/dev/null || true
ls $NV/vulkan/icd.d /usr/share/vulkan/icd.d /etc/vulkan/icd.d 2>&1 | head; ldconfig -p | grep -E "vulkan|GLdispatch|GLX_nvidia" | head

# --- program and data ---------------------------------------------------------------------------
C=.gpu/bin/cytolens
mkdir -p .gpu/bin .gpu/data/pbc runs/cache
python3 -c "import lzma,shutil,sys; shutil.copyfileobj(lzma.open('.gpu/cytolens.xz'), open('$C','wb'))" || exit 1
chmod +x $C
python3 -c "import lzma,shutil; shutil.copyfileobj(lzma.open('.gpu/manifest.csv.xz'), open('.gpu/data/pbc/manifest.csv','wb'))" || exit 1
python3 tools/pack-train-cache.py unpack .gpu/train.npz runs/cache/pbc-train-64.bin || exit 1
say "ready"

NET=(--channels 16,32,64,128 --backend wgpu --data .gpu/data)
if [ "${SMALL:-0}" = 1 ]; then
  A_MIX=(--batch 4 --ce-batch 2 --ce-weight 1.0)
  B1_MIX=(--batch 4 --ce-batch 1 --ce-weight 0.2)
  B2_MIX=(--batch 4 --ce-batch 2 --ce-weight 1.0)
else
  A_MIX=(--batch 64 --ce-batch 32 --ce-weight 1.0)
  B1_MIX=(--batch 64 --ce-batch 8 --ce-weight 0.2)
  B2_MIX=(--batch 64 --ce-batch 32 --ce-weight 1.0)
fi
INIT=static/model/cytolens-diffusion.bpk

# --- measure: 20 steps of each mix, side by side (steps 11-20 give the time) -------------------
secs() { awk '/^step 20 /{print $NF}' "$1/train.log"; }
timeout "${PROBE_TIMEOUT:-150}" $C train --run runs/probe-a "${NET[@]}" "${A_MIX[@]}" --steps 20 --init-from $INIT >/dev/null &
timeout "${PROBE_TIMEOUT:-150}" $C train --run runs/probe-b "${NET[@]}" "${B2_MIX[@]}" --steps 20 --exclude erythroblast >/dev/null &
wait
SA=$(secs runs/probe-a); SB=$(secs runs/probe-b)
[ -n "$SA" ] && [ -n "$SB" ] || { say "probe failed"; cat runs/probe-*/train.log; exit 1; }
say "measured s/step side by side: A $SA, B $SB"

# Steps that fit what is left, less a margin for start-up, the last checkpoint and the copy.
fit() { awk -v t="$1" -v s="$2" 'BEGIN { n = int(t / s / 10) * 10; print (n < 20 ? 20 : n) }'; }
W=$(($(left) - 50))
NA=$(fit "$W" "$SA")
NB1=$(fit "$((W * 45 / 100))" "$SB")
say "A: $NA steps; B stage 1: $NB1 steps"

(
  timeout $(($(left) - 25)) $C train --run runs/gpu-a "${NET[@]}" "${A_MIX[@]}" --steps "$NA" \
    --lr 3e-4 --warmup 100 --checkpoint-every 200 --init-from $INIT >/dev/null
  say "A ended ($?)"
) &
(
  timeout $(($(left) - 25)) $C train --run runs/gpu-b1 "${NET[@]}" "${B1_MIX[@]}" --steps "$NB1" \
    --lr 1e-3 --warmup 200 --checkpoint-every 200 --exclude erythroblast >/dev/null
  say "B stage 1 ended ($?)"
  NB2=$(fit "$(($(left) - 50))" "$SB")
  say "B stage 2: $NB2 steps"
  timeout $(($(left) - 25)) $C train --run runs/gpu-b2 "${NET[@]}" "${B2_MIX[@]}" --steps "$NB2" \
    --lr 3e-4 --warmup 100 --checkpoint-every 200 --exclude erythroblast --init-from runs/gpu-b1 \
    >/dev/null
  say "B stage 2 ended ($?)"
) &
wait

# --- bring back: EMA weights and every log --------------------------------------------------------
mkdir -p "$OUT/a" "$OUT/b"
cp runs/gpu-a/ckpt/ema.bpk "$OUT/a/" 2>/dev/null
if [ -f runs/gpu-b2/ckpt/ema.bpk ]; then cp runs/gpu-b2/ckpt/ema.bpk "$OUT/b/"; else
  cp runs/gpu-b1/ckpt/ema.bpk "$OUT/b/" 2>/dev/null; fi
for r in probe-a probe-b gpu-a gpu-b1 gpu-b2; do
  echo "=== runs/$r"
  cat runs/$r/options.json runs/$r/ckpt/state.json runs/$r/train.log 2>/dev/null
  echo
done >"$OUT/logs.txt"
grep -h "^step" runs/gpu-*/train.log | tail -3
say "done"
