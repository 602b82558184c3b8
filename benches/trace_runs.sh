#!/usr/bin/env bash
# Traces of DM, DM+HDD and IDM+HDD iterations (and of one evaluation training step) at the papers' width, checked
# against PyTorch: each DM run distills 2 iterations at IPC 10, batch_real 64, width 128 and traces both, IDM+HDD 3;
# the DM+HDD set's evaluation traces its first training step; benches/trace_check.py recomputes every trace and prints the errors.
#   bash benches/trace_runs.sh [PYTHON] [GREY_DATASET] [RGB_DATASET]
# PYTHON must have torch, geoopt, safetensors and numpy (default: python3). The datasets default to the installed
# Fashion-MNIST and the CIFAR-10 copy in ../shared/data (any 1×28×28 and 3×32×32 dataset will do).
set -euo pipefail
py=${1:-python3}
grey=${2:-/usr/share/datasets/fashion-mnist}
rgb=${3:-../shared/data/cifar10/CIFAR-10-images-jpg.zip}
bin=${BIN:-target/release/hyperdistill}
work=${WORK:-$(mktemp -d)}
echo "traces in $work; adapter: $("$bin" info 2>&1 | sed -n 's/^adapter:* *//p' | head -1)"
traces=()
for ds in "$grey" "$rgb"; do
    tag=$(basename "$ds" | tr -c 'a-zA-Z0-9\n' '-')
    for m in dm dm+hdd; do
        out="$work/$tag-$m"
        "$bin" distill --method "$m" --dataset "$ds" --ipc 10 --batch-real 64 --width 128 --iterations 2 --eval-nets 0 \
            --seed 1 --trace 0,1 --overwrite --out "$out" >/dev/null 2>"$work/err" || { cat "$work/err" >&2; exit 1; }
        traces+=("$out/trace/iter_0.safetensors" "$out/trace/iter_1.safetensors")
    done
    # IDM+HDD (its published k, λ and queue; batch_real 64): three iterations, so that the net a class step matches
    # with has been trained by the queue and its accuracy weights the cross-entropy term
    "$bin" distill --method idm+hdd --dataset "$ds" --ipc 10 --batch-real 64 --width 128 --iterations 3 --eval-nets 0 \
        --seed 1 --trace 0,1,2 --overwrite --out "$work/$tag-idm+hdd" >/dev/null 2>"$work/err" || { cat "$work/err" >&2; exit 1; }
    traces+=("$work/$tag-idm+hdd/trace/iter_0.safetensors" "$work/$tag-idm+hdd/trace/iter_1.safetensors" "$work/$tag-idm+hdd/trace/iter_2.safetensors")
    # one evaluation training step (the DM protocol: batch 256, lr 0.01, momentum 0.9, weight decay 5e-4) on the DM+HDD set
    "$bin" eval --synset "$out/synset.safetensors" --dataset "$ds" --width 128 --epochs 1 --nets 1 --trace 0 >/dev/null 2>"$work/err" \
        || { cat "$work/err" >&2; exit 1; }
    traces+=("$out/trace/eval_step_0.safetensors")
done
"$py" benches/trace_check.py "${traces[@]}" --json "$work/trace_check.json"
