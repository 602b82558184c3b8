#!/usr/bin/env python3
"""PyTorch reference of what `hyperdistill bench --parts distill,eval` times, written from the method spec
(shared/docs/method.md §1.5, §2, §3) in the style of the authors' DM / DM-HDD code, so the two can be compared
on the same machine: `benches/compare.py` runs both and prints the ratios.

Timed, per configuration, exactly as the Rust side times it:
  distill  one iteration: a fresh random ConvNet-3 (frozen), for every class a real batch of `batch_real`
           distinct images and the class's `ipc` synthetic images, siamese DSA (one op, one parameter set per
           class), embeddings, the DM term Σ_d (mean_r − mean_s)² or the HDD term λ·d_L between the classes'
           Lorentz centroids (k 1, λ 20, radius clamp 10, expmap0 then projx: the released DM+HDD setting);
           one backward and one SGD step (lr 1, momentum 0.5) on the synthetic pixels. Data lives on the device,
           as in the authors' code (`images_all` on the GPU).
  eval     (after one untimed warm-up pass) training epochs of a fresh ConvNet-3 on 10·ipc images (SGD lr 0.01, momentum 0.9, wd 5e-4, batch
           256, non-siamese DSA per batch, cross-entropy), ms per epoch; and the test pass (forward + top-1 over
           `test_images` images in batches of 256).
Images are random (like the Rust bench's generated data): speed does not depend on the pixel values.

Usage: python benches/torch_ref.py --device cpu|cuda [--shapes fmnist,cifar] [--width 128] [--ipc 1,10,50]
       [--batch-real 64,256] [--method dm,dm+hdd] [--runs 5] [--warmup 1] [--eval-epochs 5] [--json out.json]
"""
import argparse
import json
import math
import platform
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

SHAPES = {"fmnist": (1, 28), "mnist": (1, 28), "cifar": (3, 32), "svhn": (3, 32), "tiny": (3, 64)}


# ---- ConvNet-3 (method.md §2.2): conv 3×3 (pad 3 on the first conv of 28×28 grey images) → instance norm
# (GroupNorm with one group per channel) → ReLU → AvgPool 2; Linear on the flattened features.
class ConvNet3(nn.Module):
    def __init__(self, channels, side, width, classes=10):
        super().__init__()
        layers = []
        c, s = channels, side
        for d in range(3):
            pad = 3 if (channels == 1 and side == 28 and d == 0) else 1
            layers += [nn.Conv2d(c, width, 3, padding=pad), nn.GroupNorm(width, width, affine=True), nn.ReLU(inplace=True),
                       nn.AvgPool2d(2, 2)]
            s = (s + 2 * pad - 2) // 2
            c = width
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(width * s * s, classes)

    def embed(self, x):
        return self.features(x).flatten(1)

    def forward(self, x):
        return self.classifier(self.embed(x))


# ---- DSA, mode 'S' (method.md §2.4): one op per call; siamese = one parameter set for the whole batch.
def dsa(x, siamese, gen):
    n, c, h, w = x.shape
    dev = x.device
    k = 1 if siamese else n

    def rand(*shape):
        r = torch.rand(k, *shape, generator=gen, device="cpu").to(dev)
        return r.expand(n, *shape) if siamese else r

    op = int(torch.randint(0, 6, (1,), generator=gen))
    if op == 0:  # color: brightness, saturation, contrast
        x = x + (rand(1, 1, 1) - 0.5)
        m = x.mean(dim=1, keepdim=True)
        x = (x - m) * (rand(1, 1, 1) * 2.0) + m
        m = x.mean(dim=[1, 2, 3], keepdim=True)
        return (x - m) * (rand(1, 1, 1) + 0.5) + m
    if op == 1:  # crop: integer shift, zeros outside
        s = int(h * 0.125 + 0.5)
        tx = torch.randint(-s, s + 1, (k, 1, 1), generator=gen).to(dev).expand(n, 1, 1)
        ty = torch.randint(-s, s + 1, (k, 1, 1), generator=gen).to(dev).expand(n, 1, 1)
        gb, gx, gy = torch.meshgrid(torch.arange(n, device=dev), torch.arange(h, device=dev), torch.arange(w, device=dev), indexing="ij")
        gx = torch.clamp(gx + tx + 1, 0, h + 1)
        gy = torch.clamp(gy + ty + 1, 0, w + 1)
        xp = F.pad(x, [1, 1, 1, 1])
        return xp.permute(0, 2, 3, 1).contiguous()[gb, gx, gy].permute(0, 3, 1, 2)
    if op == 2:  # cutout
        L = int(h * 0.5 + 0.5)
        ox = torch.randint(0, h + (1 - L % 2), (k, 1, 1), generator=gen).to(dev).expand(n, 1, 1)
        oy = torch.randint(0, w + (1 - L % 2), (k, 1, 1), generator=gen).to(dev).expand(n, 1, 1)
        gb, gx, gy = torch.meshgrid(torch.arange(n, device=dev), torch.arange(L, device=dev), torch.arange(L, device=dev), indexing="ij")
        gx = torch.clamp(gx + ox - L // 2, 0, h - 1)
        gy = torch.clamp(gy + oy - L // 2, 0, w - 1)
        mask = torch.ones(n, h, w, device=dev, dtype=x.dtype)
        mask[gb, gx, gy] = 0
        return x * mask.unsqueeze(1)
    if op == 3:  # flip
        return torch.where(rand(1, 1, 1) < 0.5, x.flip(3), x)
    if op == 4:  # scale
        sx = rand() * (1.2 - 1 / 1.2) + 1 / 1.2
        sy = rand() * (1.2 - 1 / 1.2) + 1 / 1.2
        z = torch.zeros_like(sx)
        theta = torch.stack([torch.stack([sx, z, z], 1), torch.stack([z, sy, z], 1)], 1)
    else:  # rotate
        a = (rand() - 0.5) * 2 * 15 / 180 * math.pi
        z = torch.zeros_like(a)
        theta = torch.stack([torch.stack([torch.cos(a), -torch.sin(a), z], 1), torch.stack([torch.sin(a), torch.cos(a), z], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, align_corners=False)


# ---- HDD (method.md §1.3–1.5): geoopt's Lorentz maps, Law's centroid and the geodesic distance, k = 1.
def to_hyperboloid(v, k=1.0, clamp=10.0):
    sk = math.sqrt(k)
    nrm = torch.sqrt(torch.clamp((v * v).sum(-1, keepdim=True), min=1e-8))
    t = torch.clamp(nrm / sk, max=clamp)
    space = sk * torch.sinh(t) * v / nrm
    time_ = torch.sqrt(k + (space * space).sum(-1, keepdim=True))  # projx
    return torch.cat([time_, space], -1)


def lorentz_inner(x, y):
    return -x[..., 0] * y[..., 0] + (x[..., 1:] * y[..., 1:]).sum(-1)


def centroid(points, k=1.0):
    a = points.mean(0)
    return math.sqrt(k) * a / torch.sqrt(torch.clamp(lorentz_inner(a, a).abs(), min=1e-8))


def geodesic(x, y, k=1.0):
    z = -lorentz_inner(x, y) / k
    return math.sqrt(k) * torch.log(z + torch.sqrt(torch.clamp(z * z - 1, min=1e-15)))


def hdd_term(e_real, e_syn, lam=20.0):
    return lam * geodesic(centroid(to_hyperboloid(e_real)), centroid(to_hyperboloid(e_syn)))


def sync(dev):
    if dev.type == "cuda":
        torch.cuda.synchronize()


def distill_bench(dev, channels, side, width, ipc, batch_real, method, runs, warmup, seed):
    g = torch.Generator().manual_seed(seed)
    per_class = max(batch_real, ipc)
    # normalised images on the device, as the authors' images_all
    images_all = ((torch.randint(0, 256, (10 * per_class, channels, side, side), generator=g).float() / 255 - 0.5) / 0.29).to(dev)
    labels_all = torch.arange(10 * per_class) % 10
    indices_class = [torch.nonzero(labels_all == c).flatten() for c in range(10)]
    image_syn = torch.cat([images_all[indices_class[c][:ipc]] for c in range(10)]).detach().clone().requires_grad_(True)
    opt = torch.optim.SGD([image_syn], lr=1.0, momentum=0.5)
    times = []
    for it in range(warmup + runs):
        sync(dev)
        t = time.perf_counter()
        net = ConvNet3(channels, side, width).to(dev)
        net.train()
        for p in net.parameters():
            p.requires_grad = False
        loss = torch.tensor(0.0, device=dev)
        for c in range(10):
            idx = indices_class[c][torch.randperm(len(indices_class[c]), generator=g)[:batch_real]]
            img_real = images_all[idx]
            img_syn = image_syn[c * ipc:(c + 1) * ipc]
            seed_c = int(torch.randint(0, 1 << 30, (1,), generator=g))
            img_real = dsa(img_real, True, torch.Generator().manual_seed(seed_c))
            img_syn = dsa(img_syn, True, torch.Generator().manual_seed(seed_c))
            e_r = net.embed(img_real).detach()
            e_s = net.embed(img_syn)
            if method == "dm":
                loss = loss + ((e_r.mean(0) - e_s.mean(0)) ** 2).sum()
            else:
                loss = loss + hdd_term(e_r, e_s)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sync(dev)
        if it >= warmup:
            times.append((time.perf_counter() - t) * 1e3)
    return times, float(loss.detach())


def eval_bench(dev, channels, side, width, ipc, batch, epochs, test_images, seed):
    g = torch.Generator().manual_seed(seed)
    n = 10 * ipc
    x = ((torch.randint(0, 256, (n, channels, side, side), generator=g).float() / 255 - 0.5) / 0.29).to(dev)
    y = (torch.arange(n) % 10).to(dev)
    xt = ((torch.randint(0, 256, (test_images, channels, side, side), generator=g).float() / 255 - 0.5) / 0.29).to(dev)
    yt = (torch.arange(test_images) % 10).to(dev)
    net = ConvNet3(channels, side, width).to(dev)
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    crit = nn.CrossEntropyLoss()
    for ep in range(epochs + 2):
        if ep == 1:  # the first pass is an untimed warm-up, as on the Rust side
            sync(dev)
            t = time.perf_counter()
        net.train()
        perm = torch.randperm(n, generator=g).to(dev)
        for i in range(0, n, batch):
            b = perm[i:i + batch]
            out = net(dsa(x[b], False, g))
            loss = crit(out, y[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
    sync(dev)
    train_ms = (time.perf_counter() - t) * 1e3

    def test_pass():
        net.eval()
        correct = 0
        with torch.no_grad():
            for i in range(0, test_images, 256):
                correct += int((net(xt[i:i + 256]).argmax(1) == yt[i:i + 256]).sum())
        return correct

    test_pass()  # warm-up, as the Rust side
    sync(dev)
    t = time.perf_counter()
    test_pass()
    sync(dev)
    test_ms = (time.perf_counter() - t) * 1e3
    return train_ms / (epochs + 1), test_ms


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    lst = lambda f: (lambda s: [f(v) for v in s.split(",") if v])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--parts", type=lst(str), default=["distill", "eval"])
    ap.add_argument("--shapes", type=lst(str), default=["fmnist", "cifar"])
    ap.add_argument("--width", type=int, default=128)
    ap.add_argument("--ipc", type=lst(int), default=[1, 10, 50])
    ap.add_argument("--batch-real", type=lst(int), default=[64, 256])
    ap.add_argument("--method", type=lst(str), default=["dm", "dm+hdd"])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--eval-epochs", type=int, default=5)
    ap.add_argument("--eval-batch", type=int, default=256)
    ap.add_argument("--test-images", type=int, default=10000)
    ap.add_argument("--threads", type=int, default=0, help="CPU threads (0: PyTorch's default)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tf32", choices=["off", "on"], default="off",
                    help="TF32 tensor cores for convolutions and matmuls on CUDA (PyTorch's default for cuDNN convolutions is on); "
                         "off compares like for like with hyperdistill's FP32 FMAs")
    ap.add_argument("--json")
    a = ap.parse_args()
    torch.backends.cudnn.allow_tf32 = a.tf32 == "on"
    torch.backends.cuda.matmul.allow_tf32 = a.tf32 == "on"
    for s in a.shapes:
        if s not in SHAPES:
            sys.exit(f"unknown shape '{s}': use fmnist, cifar or tiny")
    for m in a.method:
        if m not in ("dm", "dm+hdd"):
            sys.exit(f"unknown method '{m}': use dm or dm+hdd")
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    dev = torch.device(a.device)
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"CPU {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"
    report = {"torch": torch.__version__, "device": name, "options": vars(a), "distill": [], "eval": []}
    print(f"PyTorch {torch.__version__} on {name} (TF32 {a.tf32})")
    for s in a.shapes:
        c, side = SHAPES[s]
        shape = f"{c}x{side}x{side}"
        if "distill" in a.parts:
            for ipc in a.ipc:
                for br in a.batch_real:
                    for m in a.method:
                        ms, loss = distill_bench(dev, c, side, a.width, ipc, br, m, a.runs, a.warmup, a.seed)
                        row = {"shape": shape, "method": m, "ipc": ipc, "batch_real": br, "width": a.width, "runs": a.runs,
                               "median_ms": statistics.median(ms), "min_ms": min(ms), "loss": loss}
                        report["distill"].append(row)
                        print(f"distill {shape} {m:<6} ipc {ipc:>3} batch_real {br:>3}: median {row['median_ms']:.1f} ms, min {row['min_ms']:.1f} ms")
        if "eval" in a.parts:
            for ipc in a.ipc:
                ep_ms, test_ms = eval_bench(dev, c, side, a.width, ipc, a.eval_batch, a.eval_epochs, a.test_images, a.seed)
                row = {"shape": shape, "ipc": ipc, "width": a.width, "batch": a.eval_batch, "images": 10 * ipc,
                       "epochs_timed": a.eval_epochs + 1, "ms_per_epoch": ep_ms, "test_images": a.test_images, "test_pass_ms": test_ms}
                report["eval"].append(row)
                print(f"eval    {shape} ipc {ipc:>3}: {ep_ms:.1f} ms/epoch, test pass ({a.test_images} images) {test_ms:.1f} ms")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(report, f, indent=2)
        print(f"wrote {a.json}")


if __name__ == "__main__":
    main()
