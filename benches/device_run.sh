#!/usr/bin/env bash
# benches/device_run.sh — issues 8 and 26's GPU side in one command: hyperdistill's bench on the machine's Vulkan adapter
# (the autotuner's candidates and picks, peak, every conv kernel, whole iterations and epochs) and the same configurations in PyTorch beside it
# (benches/compare.py), every result written under $OUT. Written for the device tool's machines (one NVIDIA GPU,
# PyTorch preinstalled, nothing to fetch, a bare image without a Vulkan loader), where device time is scarce: one
# call runs it all. Elsewhere it runs on whatever wgpu and PyTorch find (here: lavapipe and the CPU).
#
# Here, once (the binary has no shared-library needs beyond libc; wgpu opens libvulkan at run time):
#   cargo build --release --locked && mkdir -p .dist && cp target/release/hyperdistill .dist/
#   echo /.dist/ >> .git/info/exclude      # and the .gl loader packages as the device tool's README says
# There:
#   run(command="bash benches/device_run.sh", carry=[".dist", ".gl"])
#
# Environment: OUT (default /tmp/hd-device-out), HYPERDISTILL (default .dist/hyperdistill, else
# target/release/hyperdistill), TORCH_DEVICE (default cuda when PyTorch sees one, else cpu), SIZE = quick
# (width 32, IPC 10, one batch size: a few minutes on a CPU) or full (the issue's standard configurations: width 128,
# IPC 1/10/50, batch_real 64/256). What lands in $OUT: log.txt, autotune.json, cache/autotune/*.toml (the autotuner's
# table), kernels.json, and compare.py's three (whose hyperdistill side runs the tuned kernels: the default on GPUs).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/hd-device-out}
SIZE=${SIZE:-full}
BIN=${HYPERDISTILL:-}
if [ -z "$BIN" ]; then
  if [ -x .dist/hyperdistill ]; then BIN=.dist/hyperdistill; else BIN=target/release/hyperdistill; fi
fi
[ -x "$BIN" ] || { echo "device_run.sh: no hyperdistill binary at $BIN (build it: cargo build --release --locked)" >&2; exit 2; }
mkdir -p "$OUT"
exec > >(tee "$OUT/log.txt") 2>&1

# the Vulkan loader, carried as Debian packages (the device tool's README), and NVIDIA's ICD where the image has it
if compgen -G ".gl/*.deb" > /dev/null; then
  for f in .gl/*.deb; do dpkg -x "$f" /; done
  ldconfig
fi
if [ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ]; then
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
fi
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp/hyperdistill-xdg}
mkdir -p "$XDG_RUNTIME_DIR"

PY=${PYTHON:-python3}
if [ -z "${TORCH_DEVICE:-}" ]; then
  TORCH_DEVICE=$("$PY" -c 'import torch; print("cuda" if torch.cuda.is_available() else "cpu")' 2>/dev/null || echo none)
fi
echo "device_run.sh: $(date -u +%FT%TZ), binary $BIN, SIZE=$SIZE, PyTorch device $TORCH_DEVICE"
command -v nvidia-smi > /dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true

if [ "$SIZE" = quick ]; then
  K=(--width 32 --batch 64 --runs 11)
  C=(--width 32 --ipc 10 --batch-real 64 --runs 3 --eval-epochs 2 --test-images 2000)
else
  K=(--width 128 --batch 16 --runs 21)
  C=(--width 128 --ipc 1,10,50 --batch-real 64,256 --runs 5 --eval-epochs 3 --test-images 10000)
fi

# the autotuner (issue 26), first, from an empty table kept under $OUT (HYPERDISTILL_CACHE) so that it comes back:
# every candidate's time per shape and pass, the picks, the tuning cost, and iterations and epochs with the rule's
# kernels against the picks, alternated; `info` then prints the adapter and the table file (compare.py's runs tune
# their own shapes at start-up, before any timing, and add them to it)
export HYPERDISTILL_CACHE="$OUT/cache"
if [ "$SIZE" = quick ]; then
  A=(--width 32 --ipc 10 --batch-real 64 --runs 3 --eval-epochs 2 --test-images 2000)
else
  A=(--width 128 --ipc 10 --batch-real 256 --runs 5 --eval-epochs 2 --test-images 10000)
fi
"$BIN" bench --parts autotune --shapes fmnist,cifar --method dm,dm+hdd "${A[@]}" --json "$OUT/autotune.json"
"$BIN" info

# the adapter's peak and every convolution kernel (fraction of the peak, fastest run; the GEMM tilings included)
"$BIN" bench --parts peak,kernels --shapes fmnist,cifar "${K[@]}" --json "$OUT/kernels.json"

# whole iterations, epochs and test passes beside PyTorch (hyperdistill.json, torch.json, compare.json)
if [ "$TORCH_DEVICE" = none ]; then
  echo "device_run.sh: no PyTorch here; the side by side is skipped" >&2
  exit 3
fi
"$PY" benches/compare.py --hyperdistill "$BIN" --device "$TORCH_DEVICE" --shapes fmnist,cifar "${C[@]}" --out "$OUT"
echo "device_run.sh: done; results in $OUT"
