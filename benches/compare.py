#!/usr/bin/env python3
"""Run hyperdistill's bench and the PyTorch reference (benches/torch_ref.py) on the same configurations, one
after the other on this machine, and print them side by side with the speed ratio (PyTorch time / hyperdistill
time: above 1 means hyperdistill is faster).

  python benches/compare.py --device cuda                    # the standard configurations on a CUDA GPU
  python benches/compare.py --device cpu --shapes fmnist --width 32 --ipc 10 --batch-real 64 --test-images 2000

hyperdistill runs on whatever adapter wgpu picks (WGPU_BACKEND / WGPU_POWER_PREF select it); PyTorch on
--device. Both write JSON; --out DIR keeps them (hyperdistill.json, torch.json, compare.json).
Needs: a release build (cargo build --release) and a Python with torch (pip install torch).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hyperdistill", default=os.path.join(HERE, "..", "target", "release", "hyperdistill"))
    ap.add_argument("--device", default=None, help="PyTorch device (default: cuda when available, else cpu)")
    ap.add_argument("--shapes", default="fmnist,cifar")
    ap.add_argument("--width", default="128")
    ap.add_argument("--ipc", default="1,10,50")
    ap.add_argument("--batch-real", default="64,256")
    ap.add_argument("--method", default="dm,dm+hdd")
    ap.add_argument("--runs", default="5")
    ap.add_argument("--warmup", default="1")
    ap.add_argument("--eval-epochs", default="5")
    ap.add_argument("--test-images", default="10000")
    ap.add_argument("--parts", default="distill,eval")
    ap.add_argument("--tf32", choices=["off", "on"], default="off", help="PyTorch's TF32 tensor cores on CUDA (off: FP32 like hyperdistill)")
    ap.add_argument("--out", help="directory for the JSON files (default: a temporary one)")
    a = ap.parse_args()
    if not os.path.exists(a.hyperdistill):
        sys.exit(f"{a.hyperdistill} not found: run `cargo build --release` first, or pass --hyperdistill")
    out = a.out or tempfile.mkdtemp(prefix="hd-compare-")
    os.makedirs(out, exist_ok=True)
    common = ["--parts", a.parts, "--shapes", a.shapes, "--width", a.width, "--ipc", a.ipc, "--batch-real", a.batch_real,
              "--method", a.method, "--runs", a.runs, "--warmup", a.warmup, "--eval-epochs", a.eval_epochs, "--test-images", a.test_images]
    hd_json, pt_json = os.path.join(out, "hyperdistill.json"), os.path.join(out, "torch.json")
    print("== hyperdistill", flush=True)
    subprocess.run([a.hyperdistill, "bench", *common, "--json", hd_json], check=True)
    print("== PyTorch", flush=True)
    dev = (["--device", a.device] if a.device else []) + ["--tf32", a.tf32]
    subprocess.run([sys.executable, os.path.join(HERE, "torch_ref.py"), *common, *dev, "--json", pt_json], check=True)
    hd, pt = json.load(open(hd_json)), json.load(open(pt_json))
    rows = []
    print(f"\nhyperdistill on {hd['adapter']} ({hd['backend']}, {hd['device_type']}) vs PyTorch {pt['torch']} on {pt['device']}")
    print(f"{'what':<44} {'hyperdistill ms':>16} {'PyTorch ms':>12} {'PyTorch/hd':>11}")
    key = lambda r: (r["shape"], r["method"], r["ipc"], r["batch_real"], r["width"])
    pt_d = {key(r): r for r in pt["distill"]}
    for r in hd["distill"]:
        p = pt_d.get(key(r))
        if p:
            what = f"distill {r['shape']} {r['method']} ipc {r['ipc']} b_real {r['batch_real']}"
            rows.append({"what": what, "hyperdistill_ms": r["median_ms"], "torch_ms": p["median_ms"], "ratio": p["median_ms"] / r["median_ms"]})
    ekey = lambda r: (r["shape"], r["ipc"], r["width"])
    pt_e = {ekey(r): r for r in pt["eval"]}
    for r in hd["eval"]:
        # the PyTorch side times ConvNet-3 only
        p = pt_e.get(ekey(r)) if r.get("arch", "convnet") == "convnet" else None
        if p:
            for label, f in (("epoch", "ms_per_epoch"), (f"test pass {r['test_images']}", "test_pass_ms")):
                what = f"eval {r['shape']} ipc {r['ipc']} {label}"
                rows.append({"what": what, "hyperdistill_ms": r[f], "torch_ms": p[f], "ratio": p[f] / r[f] if r[f] > 0 else None})
    for r in rows:
        ratio = f"{r['ratio']:.3f}" if r["ratio"] is not None else "–"
        print(f"{r['what']:<44} {r['hyperdistill_ms']:>16.1f} {r['torch_ms']:>12.1f} {ratio:>11}")
    json.dump({"hyperdistill": hd_json, "torch": pt_json, "rows": rows}, open(os.path.join(out, "compare.json"), "w"), indent=2)
    print(f"(medians; width {a.width}; JSON in {out})")


if __name__ == "__main__":
    main()
