#!/usr/bin/env bash
# A small IDM+HDD sanity study on the full Fashion-MNIST, sized for software Vulkan (session 5): IPC 10 (40
# expanded images per class), width 32, batch_real 64, 100 iterations, a reduced queue training budget (1 net ×
# 2 steps × 64 images per iteration instead of 2 × 10 × 256), evaluation 100 epochs × 1 network on the 400
# expanded images. Baseline = the mosaic initialisation (0 iterations) under the same evaluation.
# Usage: benches/fmnist_idm_small.sh [DATASET_DIR] [OUT_DIR]
set -euo pipefail
DATA=${1:-/usr/share/datasets/fashion-mnist}
OUT=${2:-runs/fmnist_idm_small}
BIN=${BIN:-target/release/hyperdistill}
COMMON=(--dataset "$DATA" --ipc 10 --width 32 --batch-real 64 --seed 1 --fetch-net-num 1 --model-train-steps 2
        --net-batch 64 --eval-every 0 --eval-epochs 100 --eval-nets 1 --checkpoint-every 50)
mkdir -p "$OUT"
for row in "idm_hdd idm+hdd 100" "mosaic_init idm+hdd 0"; do
  set -- $row
  name=$1 method=$2 iters=$3
  start=$(date +%s)
  "$BIN" distill "${COMMON[@]}" --method "$method" --iterations "$iters" --out "$OUT/$name" > "$OUT/$name.log" 2>&1
  echo "$name: $(( $(date +%s) - start )) s total" | tee -a "$OUT/summary.txt"
  tail -n 4 "$OUT/$name.log" | tee -a "$OUT/summary.txt"
done
