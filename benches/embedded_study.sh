#!/usr/bin/env bash
# Issue 5's reduced-budget comparison on the embedded Fashion-MNIST subset (5000 train / 1000 test images), sized for
# software Vulkan: IPC 10, ConvNet-3 width 32, batch_real 64, seed 1, 100 iterations; evaluation = the DM protocol
# shortened to 100 epochs (101 passes) × 2 networks, labelled quick. Rows: the real-image initialisation (0
# iterations), DM, DM+HDD, DM+HDD distilled against the nearest 20 % of each class (--keep-real 0.2), DANCE and
# DANCE+HDD (1 expert × 2 epochs instead of 20 × 60; evaluated with the DM protocol like every row), IDM and IDM+HDD
# (queue budget 1 net × 2 steps × 64 images per iteration instead of 2 × 10 × 256; evaluated on the 4× expanded set),
# and the two mosaic initialisations at 0 iterations (DANCE's nearest-neighbour, IDM's 2×2 box average), the baseline
# that DANCE's and IDM's rows are evaluated against (400 expanded images, not the 100 real ones of the first row).
# Then the cross-architecture evaluation (MLP, LeNet; ConvNet-3 is each row's own evaluation) of the DM-family sets.
# Rows whose OUT/<row>/synset.safetensors exists are not run again; a row with only a checkpoint is resumed.
# ROWS="idm_hdd dance_init" (a space-separated list of row names) runs only those rows and skips the cross-arch step.
# Usage: [ROWS="..."] benches/embedded_study.sh [OUT_DIR]
set -uo pipefail
OUT=${1:-runs/embedded_study}
BIN=${BIN:-target/release/hyperdistill}
COMMON=(--dataset embedded --ipc 10 --width 32 --batch-real 64 --seed 1
        --eval-every 0 --eval-epochs 100 --eval-nets 2 --eval-protocol dm --checkpoint-every 50)
DANCE=(--experts 1 --num-premodel 1 --expert-epochs 2 --expert-dir "$OUT/experts")
IDM=(--fetch-net-num 1 --model-train-steps 2 --net-batch 64)
mkdir -p "$OUT"
row() {
  local name=$1; shift
  [ -f "$OUT/$name/synset.safetensors" ] && return 0
  [ -n "${ROWS:-}" ] && [[ " $ROWS " != *" $name "* ]] && return 0
  local start=$(date +%s)
  if [ -f "$OUT/$name/checkpoint.safetensors" ]; then
    # an interrupted row continues from its checkpoint with its recorded config (a finished one only evaluates)
    "$BIN" distill --resume "$OUT/$name" >> "$OUT/$name.log" 2>&1
  else
    "$BIN" distill "${COMMON[@]}" --iterations "${ITERS:-100}" "$@" --out "$OUT/$name" > "$OUT/$name.log" 2>&1
  fi
  echo "$name: rc $? $(( $(date +%s) - start )) s total" | tee -a "$OUT/summary.txt"
  grep -E "s per iteration|final test accuracy|kept" "$OUT/$name.log" | tee -a "$OUT/summary.txt"
}
ITERS=0 row baseline --method dm
row dm --method dm
row dm_hdd --method dm+hdd
row dm_hdd_keep02 --method dm+hdd --keep-real 0.2
for name in baseline dm dm_hdd dm_hdd_keep02; do
  [ -f "$OUT/$name.arch.txt" ] && continue
  [ -n "${ROWS:-}" ] && continue
  "$BIN" eval --synset "$OUT/$name/synset.safetensors" --eval-arch mlp,lenet --epochs 100 --nets 2 --width 32 --seed 1 \
    > "$OUT/$name.arch.txt" 2> "$OUT/$name.arch.log"
  sed "s/^/$name /" "$OUT/$name.arch.txt" | tee -a "$OUT/summary.txt"
done
row dance_hdd --method dance+hdd "${DANCE[@]}"
row dance --method dance "${DANCE[@]}"
row idm --method idm "${IDM[@]}"
row idm_hdd --method idm+hdd "${IDM[@]}"
ITERS=0 row dance_init --method dance "${DANCE[@]}"
ITERS=0 row idm_init --method idm "${IDM[@]}"
