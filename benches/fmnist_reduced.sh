#!/usr/bin/env bash
# Issue 4's reduced-budget study on the full Fashion-MNIST (IPC 10), sized for software Vulkan:
# ConvNet-3 width 32, batch_real 64, 300 iterations, evaluation 300 epochs (301 passes) × 3 networks, seed 1.
# Baseline = the same run with 0 iterations (the real-image initialisation, i.e. a random real subset).
# Usage: benches/fmnist_reduced.sh [DATASET_DIR] [OUT_DIR] [ITERATIONS]
set -euo pipefail
DATA=${1:-/usr/share/datasets/fashion-mnist}
OUT=${2:-runs/fmnist_reduced}
ITERS=${3:-300}
BIN=${BIN:-target/release/hyperdistill}
COMMON=(--dataset "$DATA" --ipc 10 --width 32 --batch-real 64 --seed 1
        --eval-every 0 --eval-epochs 300 --eval-nets 3 --checkpoint-every 50)
mkdir -p "$OUT"
for row in "baseline dm 0" "dm dm $ITERS" "dm+hdd dm+hdd $ITERS"; do
  set -- $row
  name=$1 method=$2 iters=$3
  dir="$OUT/${name/+/_}"
  start=$(date +%s)
  "$BIN" distill "${COMMON[@]}" --method "$method" --iterations "$iters" --out "$dir" > "$dir.log" 2>&1
  echo "$name: $(( $(date +%s) - start )) s total" | tee -a "$OUT/summary.txt"
  tail -n 5 "$dir.log" | tee -a "$OUT/summary.txt"
done
