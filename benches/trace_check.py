#!/usr/bin/env python3
"""Recompute a traced hyperdistill iteration in PyTorch from the trace's inputs alone, and compare.

A trace (`hyperdistill distill --trace 0,1 ...` → OUT/trace/iter_T.safetensors; `hyperdistill eval --trace ...` →
OUT/eval_trace.safetensors) holds what one iteration used and produced. This script takes only its inputs — the
network's parameters, the real batch as fed, the DSA op and its parameters per class, the synthetic images and the
momentum before the step — and recomputes everything else the way the authors' PyTorch code does, in float64:

  DSA          the DC code's DiffAugment functions (utils.py, ParamDiffAug defaults), one parameter set per class
               (siamese): color = brightness, saturation, contrast; crop by padding and clamped indices; cutout by a
               clamped-index mask; flip; scale and rotate through F.affine_grid + F.grid_sample (PyTorch's defaults,
               align_corners=False, as the DM code calls them)
  ConvNet-3    networks.py's ConvNet: Conv2d (padding 3 on the first conv of grey images) → GroupNorm(C, C, eps
               1e-5) → ReLU → AvgPool2d(2) ×3, flatten; Linear
  DM           Σ_c Σ_d (mean_r − mean_s)²
  HDD          features to float64, the HDD code's expmap0 (its radius clamp), geoopt's Lorentz(k).projx, Law's
               centroid √k·a/√max(|⟨a,a⟩|, 1e-8), geoopt's Lorentz(k).dist, λ·Σ_c d_c
  gradient     autograd;   step  torch.optim.SGD(lr_img, momentum_img) with the traced momentum buffer
  evaluation   one training step of a fresh ConvNet-3 on a batch: per-image DSA, cross-entropy, SGD with momentum
               and weight decay (the DM code's evaluate_synset)

Each quantity's error is max|hyperdistill − torch| / max|torch| over the tensor (the GPU computes in float32, so
~1e-6 is rounding); a tensor beyond its tolerance fails the check (exit 1).

Usage: python benches/trace_check.py TRACE.safetensors [more traces] [--json out.json] [--tolerance-scale 1]
Needs: torch, geoopt, safetensors, numpy (pip install torch geoopt safetensors numpy).
"""
import argparse
import json
import math
import sys
import warnings

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors import safe_open

warnings.filterwarnings("ignore", category=FutureWarning)  # geoopt's use of torch.jit.script
try:
    import geoopt
except ImportError:  # the HDD part says so when it is needed
    geoopt = None

torch.set_default_dtype(torch.float64)

# tolerances per quantity (relative to the tensor's largest magnitude): the forward quantities are f32 sums of a few
# thousand terms; gradients go back through three convolutions and the matching term
TOL = {
    "syn.augmented": 1e-5, "real.embed": 1e-4, "syn.embed": 1e-4, "loss.per_class": 1e-4, "syn.embed_grad": 1e-3,
    "syn.grad": 2e-4, "syn.momentum_after": 2e-4, "syn.after": 2e-4,
    "hdd.real_points": 1e-4, "hdd.syn_points": 1e-4, "hdd.real_centroid": 1e-4, "hdd.syn_centroid": 1e-4, "hdd.distance": 1e-4,
    "syn.logits": 1e-4, "syn.ce": 1e-4,
    "batch.augmented": 1e-5, "logits": 1e-4, "loss": 1e-4, "grad": 2e-4, "momentum_after": 2e-4, "params_after": 2e-4,
}


def load(path):
    with safe_open(path, framework="np") as f:
        meta = f.metadata() or {}
        tensors = {k: torch.from_numpy(np.array(f.get_tensor(k))) for k in f.keys()}
    return meta, tensors


# ---- ReLU units at the kink ------------------------------------------------------------------------------------------
# A pre-activation within float32 rounding of 0 may land on either side in hyperdistill's float32 forward and in this
# float64 one; its ReLU then passes the gradient in one and not in the other, and the gradient of everything upstream of
# it (a patch of an image, every parameter below it) differs by far more than rounding although both are right. Such
# units — |z| ≤ KINK·max|z| of their layer — are found in the float64 forward, and the gradient is recomputed with
# their derivatives taken as 0 or 1, whichever matches; the report names how many were flipped. A real fault cannot hide there: it would have to be confined to the gradient paths of those few units.
KINK = 1e-6


class _Relu(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, mod):
        ctx.mod = mod  # its mask is read at backward time, so one forward serves several choices
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx, g):
        return g * ctx.mod.mask, None


class KinkReLU(nn.Module):
    """ReLU whose derivative is `mask` (the float64 signs, until `matched_grad` flips a unit of `ambiguous`, which the
    last forward recorded)."""

    def forward(self, x):
        z = x.detach()
        self.ambiguous = z.abs() <= KINK * z.abs().amax()
        self.z = z
        self.mask = (z > 0).to(z.dtype).contiguous()
        return _Relu.apply(x, self)


def kink_units(net):
    """(module, flat index, |z| / max|z|) of every ambiguous unit of the last forward."""
    units = []
    for m in net.modules():
        if isinstance(m, KinkReLU):
            scale = m.z.abs().amax().item()
            for i in m.ambiguous.flatten().nonzero().flatten().tolist():
                units.append((m, i, abs(m.z.flatten()[i].item()) / scale))
    return units


def matched_grad(net, loss, wrt, ours, target=2e-5, tries=256):
    """The gradients of `loss` with respect to `wrt` (a list) with the kink units' derivatives chosen to match `ours`
    (flat): first as the float64 signs say; then, while the largest error is above `target` (relative), each unit in
    turn from the nearest to the kink has its derivative flipped, kept where that lowers the squared error (not the
    largest: several images may each hold a flipped unit). Returns (grads, kinks, flipped)."""
    units = sorted(kink_units(net), key=lambda u: u[2])
    flat = lambda gs: torch.cat([g.flatten() for g in gs])
    cur = torch.autograd.grad(loss, wrt, retain_graph=True)
    scale = flat(cur).abs().max().item() or 1.0
    worst = lambda gs: (flat(gs) - ours).abs().max().item() / scale
    sq = lambda gs: ((flat(gs) - ours) ** 2).sum().item()
    e, on = sq(cur), 0
    for m, i, _ in units[:tries]:
        if worst(cur) <= target:
            break
        flip = lambda: m.mask.view(-1).__setitem__(i, 1.0 - m.mask.view(-1)[i].item())
        flip()
        cand = torch.autograd.grad(loss, wrt, retain_graph=True)
        if sq(cand) < e:
            cur, e, on = cand, sq(cand), on + 1
        else:
            flip()
    return cur, len(units), on


# ---- ConvNet-3 as networks.py builds it -----------------------------------------------------------------------------
class ConvNet(nn.Module):
    def __init__(self, channels, width, classes, embed_dim, first_pad, eps):
        super().__init__()
        layers = []
        c = channels
        for d in range(3):
            layers += [nn.Conv2d(c, width, 3, padding=first_pad if d == 0 else 1), nn.GroupNorm(width, width, eps=eps, affine=True),
                       KinkReLU(), nn.AvgPool2d(2, 2)]
            c = width
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(embed_dim, classes)

    def embed(self, x):
        return self.features(x).flatten(1)

    def forward(self, x):
        return self.classifier(self.embed(x))


def convnet_from(meta, t, prefix):
    w = t[prefix + "features.0.weight"]
    net = ConvNet(w.shape[1], w.shape[0], t[prefix + "classifier.weight"].shape[0], t[prefix + "classifier.weight"].shape[1],
                  int(meta["first_pad"]), float(meta["norm_eps"]))
    state = {k[len(prefix):]: v.double() for k, v in t.items() if k.startswith(prefix)}
    net.load_state_dict(state)
    return net


# ---- DiffAugment (the DC code's utils.py), with the parameters given instead of drawn --------------------------------
def dsa(x, op, v):
    """x [n, C, H, W]; op a name; v the DC draws (one set for the whole batch, as siamese mode copies element 0's)."""
    n, _, h, w = x.shape
    if op == "none":
        return x
    if op == "color":
        randb, rands, randc = v[0], v[1], v[2]
        x = x + (randb - 0.5) * 1.0                                   # rand_brightness, param.brightness = 1
        m = x.mean(dim=1, keepdim=True)
        x = (x - m) * (rands * 2.0) + m                               # rand_saturation, param.saturation = 2
        m = x.mean(dim=[1, 2, 3], keepdim=True)
        return (x - m) * (randc + 0.5) + m                            # rand_contrast, param.contrast = 0.5
    if op == "crop":
        tx = torch.full((n, 1, 1), int(v[0]), dtype=torch.long)
        ty = torch.full((n, 1, 1), int(v[1]), dtype=torch.long)
        gb, gx, gy = torch.meshgrid(torch.arange(n), torch.arange(h), torch.arange(w), indexing="ij")
        gx = torch.clamp(gx + tx + 1, 0, h + 1)
        gy = torch.clamp(gy + ty + 1, 0, w + 1)
        xp = F.pad(x, [1, 1, 1, 1, 0, 0, 0, 0])
        return xp.permute(0, 2, 3, 1).contiguous()[gb, gx, gy].permute(0, 3, 1, 2)
    if op == "cutout":
        size = (int(h * 0.5 + 0.5), int(w * 0.5 + 0.5))
        ox = torch.full((n, 1, 1), int(v[0]), dtype=torch.long)
        oy = torch.full((n, 1, 1), int(v[1]), dtype=torch.long)
        gb, gx, gy = torch.meshgrid(torch.arange(n), torch.arange(size[0]), torch.arange(size[1]), indexing="ij")
        gx = torch.clamp(gx + ox - size[0] // 2, min=0, max=h - 1)
        gy = torch.clamp(gy + oy - size[1] // 2, min=0, max=w - 1)
        mask = torch.ones(n, h, w, dtype=x.dtype)
        mask[gb, gx, gy] = 0
        return x * mask.unsqueeze(1)
    if op == "flip":
        return x.flip(3) if v[0] >= 0.5 else x
    if op == "scale":
        theta = torch.tensor([[v[0], 0.0, 0.0], [0.0, v[1], 0.0]], dtype=x.dtype).expand(n, 2, 3)
    elif op == "rotate":
        a = v[0]
        theta = torch.tensor([[math.cos(a), math.sin(-a), 0.0], [math.sin(a), math.cos(a), 0.0]], dtype=x.dtype).expand(n, 2, 3)
    else:
        raise ValueError(f"unknown DSA op {op}")
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, align_corners=False)


# ---- HDD (method.md §1.3–1.5): the HDD code's geoopt copy ------------------------------------------------------------
def expmap0_clamped(v, k, clamp):
    """The HDD code's expmap0 at the origin of (0, v): n = √max(‖v‖², 1e-8), τ = min(n/√k, clamp)."""
    sk = math.sqrt(k)
    n = torch.sqrt(torch.clamp((v * v).sum(-1, keepdim=True), min=1e-8))
    tau = n / sk if clamp is None else torch.clamp(n / sk, max=clamp)
    return torch.cat([sk * torch.cosh(tau), sk * torch.sinh(tau) * v / n], -1)


def hdd_parts(manifold, v, k, clamp, mapping):
    x = expmap0_clamped(v, k, clamp) if mapping == "expmap" else torch.cat([torch.zeros_like(v[:, :1]), v], -1)
    x = manifold.projx(x)
    a = x.mean(0)
    inner = manifold.inner(a, a)  # geoopt: −a0·a0 + Σ a_i²
    return x, math.sqrt(k) * a / torch.sqrt(torch.clamp(inner.abs(), min=1e-8))


def err(ours, ref, floor=0.0):
    """max|ours − ref| / max(max|ref|, floor): `floor` keeps a tensor that is analytically zero (the conv biases'
    gradient: an instance norm follows each conv, so it is 0, which hyperdistill writes exactly and PyTorch as ~1e-16)
    from dividing rounding by rounding."""
    ours, ref = ours.double().flatten(), ref.detach().double().flatten()
    if ours.shape != ref.shape:
        return float("inf")
    scale = max(ref.abs().max().item(), floor)
    return (ours - ref).abs().max().item() / (scale if scale > 0 else 1.0)


def check_distill(meta, t):
    method = meta["method"]
    hdd = method.endswith("+hdd")
    if method not in ("dm", "dm+hdd"):
        raise SystemExit(f"trace of method {method}: this checker recomputes DM, DM+HDD, IDM and IDM+HDD iterations")
    classes = json.loads(meta["classes"])
    nc, ipc, b = len(classes), int(meta["ipc"]), int(meta["batch_real"])
    ops = meta["dsa_ops"].split(",")
    net = convnet_from(meta, t, "net.")
    for p in net.parameters():
        p.requires_grad_(False)
    syn = t["syn.before"].double().clone().requires_grad_(True)
    real = t["real.images"].double()
    draws = [(ops[int(t["dsa.op"][i])], t["dsa.values"][i].tolist()) for i in range(nc)]
    # the real side (detached, as in the DM code), then every synthetic image in one forward (instance norm: each
    # image's features are its own), so that the ReLU units at the kink are those of that one forward
    with torch.no_grad():
        e_real = [net.embed(dsa(real[i * b:(i + 1) * b], op, v)) for i, (op, v) in enumerate(draws)]
    xs = torch.cat([dsa(syn[i * ipc:(i + 1) * ipc], op, v) for i, (op, v) in enumerate(draws)])
    e_syn = net.embed(xs)
    out, notes = {}, {}
    if hdd:
        if geoopt is None:
            raise SystemExit("geoopt is needed for an HDD trace: pip install geoopt")
        k, lam = float(meta["k"]), float(meta["lambda"])
        clamp = None if meta["clamp"] == "none" else float(meta["clamp"])
        manifold = geoopt.manifolds.Lorentz(k=k)
        real_parts = [hdd_parts(manifold, er, k, clamp, meta["map"]) for er in e_real]

    def terms(feats):
        """Per class: DM's Σ_d (mean_r − mean_s)², or λ·d_L between the Lorentz centroids (and the HDD parts)."""
        per, parts = [], []
        for i in range(nc):
            es = feats[i * ipc:(i + 1) * ipc]
            if hdd:
                xs_h, cs = hdd_parts(manifold, es, k, clamp, meta["map"])
                d = manifold.dist(real_parts[i][1], cs)
                per.append(lam * d)
                parts.append((xs_h, cs, d))
            else:
                per.append(((e_real[i].mean(0) - es.mean(0)) ** 2).sum())
        return per, parts

    losses, parts = terms(e_syn)
    total = sum(losses)
    # ∂loss/∂(synthetic features): the term again on a detached copy of the features
    feats = e_syn.detach().requires_grad_(True)
    (grad_embed,) = torch.autograd.grad(sum(terms(feats)[0]), [feats])
    (grad_syn,), kinks, on = matched_grad(net, total, [syn], t["syn.grad"].double().flatten())
    notes["syn.grad"] = f"{on} of {kinks} ReLU units at the kink flipped" if on else ""
    out["syn.augmented"] = err(t["syn.augmented"], xs)
    out["real.embed"] = err(t["real.embed"], torch.cat(e_real))
    out["syn.embed"] = err(t["syn.embed"], e_syn)
    out["loss.per_class"] = err(t["loss.per_class"], torch.stack([l.detach() for l in losses]))
    out["syn.embed_grad"] = err(t["syn.embed_grad"], grad_embed)
    out["syn.grad"] = err(t["syn.grad"], grad_syn)
    if hdd:
        out["hdd.real_points"] = err(t["hdd.real_points"], torch.cat([r[0] for r in real_parts]))
        out["hdd.syn_points"] = err(t["hdd.syn_points"], torch.cat([p[0] for p in parts]))
        out["hdd.real_centroid"] = err(t["hdd.real_centroid"], torch.stack([r[1] for r in real_parts]))
        out["hdd.syn_centroid"] = err(t["hdd.syn_centroid"], torch.stack([p[1] for p in parts]))
        out["hdd.distance"] = err(t["hdd.distance"], torch.stack([p[2] for p in parts]))
    # the step: torch.optim.SGD with the traced momentum buffer
    x = t["syn.before"].double().clone().requires_grad_(True)
    opt = torch.optim.SGD([x], lr=float(meta["lr_img"]), momentum=float(meta["momentum_img"]))
    x.grad = grad_syn.detach().clone()
    opt.state[x]["momentum_buffer"] = t["syn.momentum_before"].double().clone()
    opt.step()
    out["syn.momentum_after"] = err(t["syn.momentum_after"], opt.state[x]["momentum_buffer"])
    out["syn.after"] = err(t["syn.after"], x)
    return out, notes


def expand(x):
    """IDM's partition and expansion: the 2×2 mosaic's quadrants (TL, BL, TR, BR, each for every image, quadrant-major)
    upsampled ×2 bilinearly (align_corners=False)."""
    h, w = x.shape[2] // 2, x.shape[3] // 2
    q = torch.cat([x[:, :, :h, :w], x[:, :, h:, :w], x[:, :, :h, w:], x[:, :, h:, w:]])
    return F.interpolate(q, scale_factor=2, mode="bilinear", align_corners=False)


def check_idm(meta, t):
    """One IDM / IDM+HDD iteration's class steps, in class order as the IDM code takes them: the chosen queue net on the
    class's real batch and its expanded synthetic images (siamese DSA), the matching term + ce_weight·acc%·CE, backward,
    and an SGD step on the whole synthetic tensor (the other classes move by their momentum)."""
    hdd = meta["method"].endswith("+hdd")
    classes = json.loads(meta["classes"])
    nc, ipc, b, e = len(classes), int(meta["ipc"]), int(meta["batch_real"]), int(meta["per_syn"])
    mosaic = meta["mosaic"] == "true"
    ops = meta["dsa_ops"].split(",")
    net = convnet_from(meta, t, "net.")
    for p in net.parameters():
        p.requires_grad_(False)
    meter = t["idm.meter"].double()
    acc = 100.0 * meter[0].item() / meter[1].item() if meter[1].item() > 0 else 0.0
    ce_weight = float(meta["ce_weight"])
    if hdd:
        k, lam = float(meta["k"]), float(meta["lambda"])
        clamp = None if meta["clamp"] == "none" else float(meta["clamp"])
        manifold = geoopt.manifolds.Lorentz(k=k)
    syn = t["syn.before"].double().clone().requires_grad_(True)
    opt = torch.optim.SGD([syn], lr=float(meta["lr_img"]), momentum=float(meta["momentum_img"]))
    opt.state[syn]["momentum_buffer"] = t["syn.momentum_before"].double().clone()
    real = t["real.images"].double()
    R, A, E, L, CE, LOSS, D, G = [], [], [], [], [], [], [], []
    kinks = flipped = 0
    ours_grad = t["syn.grad"].double()
    for c in range(int(meta["num_classes"])):
        if c not in classes:
            # a class of another shard: its step moves these pixels by their momentum alone
            syn.grad = torch.zeros_like(syn)
            opt.step()
            continue
        slot = classes.index(c)
        op, v = ops[int(t["dsa.op"][slot])], t["dsa.values"][slot].tolist()
        with torch.no_grad():
            er = net.embed(dsa(real[slot * b:(slot + 1) * b], op, v))
        xc = syn[slot * ipc:(slot + 1) * ipc]
        xa = dsa(expand(xc) if mosaic else xc, op, v)
        es = net.embed(xa)
        logits = net.classifier(es)
        ce = F.cross_entropy(logits, torch.full((e,), c, dtype=torch.long), reduction="none")
        if hdd:
            _, cr = hdd_parts(manifold, er, k, clamp, meta["map"])
            _, cs = hdd_parts(manifold, es, k, clamp, meta["map"])
            d = manifold.dist(cr, cs)
            term = lam * d
            D.append(d.detach())
        else:
            term = ((er.mean(0) - es.mean(0)) ** 2).sum()
        loss = term + ce_weight * acc * ce.mean()
        (g,), n_k, n_f = matched_grad(net, loss, [syn], torch.cat([torch.zeros(slot * ipc * xc[0].numel()), ours_grad[slot * ipc:(slot + 1) * ipc].flatten(),
                                                                      torch.zeros((nc - slot - 1) * ipc * xc[0].numel())]))
        kinks, flipped = kinks + n_k, flipped + n_f
        R.append(er), A.append(xa.detach()), E.append(es.detach()), L.append(logits.detach()), CE.append(ce.detach()), LOSS.append(term.detach())
        G.append(g[slot * ipc:(slot + 1) * ipc])
        syn.grad = g.detach().clone()
        opt.step()
    out = {
        "real.embed": err(t["real.embed"], torch.cat(R)), "syn.augmented": err(t["syn.augmented"], torch.cat(A)),
        "syn.embed": err(t["syn.embed"], torch.cat(E)), "syn.logits": err(t["syn.logits"], torch.cat(L)),
        "syn.ce": err(t["syn.ce"], torch.cat(CE)), "loss.per_class": err(t["loss.per_class"], torch.stack(LOSS)),
        "syn.grad": err(ours_grad, torch.cat(G)),
        "syn.momentum_after": err(t["syn.momentum_after"], opt.state[syn]["momentum_buffer"]), "syn.after": err(t["syn.after"], syn),
    }
    if hdd:
        out["hdd.distance"] = err(t["hdd.distance"], torch.stack(D))
    notes = {"syn.grad": f"{flipped} of {kinks} ReLU units at the kink flipped" if flipped else ""}
    notes["loss.per_class"] = f"acc {acc:.1f} %"
    return out, notes


def check_eval(meta, t):
    net = convnet_from(meta, t, "net.")
    ops = meta["dsa_ops"].split(",")
    x = t["batch.images"].double()
    op = ops[int(t["dsa.op"][0])]
    vals = t["dsa.values"]
    xa = torch.cat([dsa(x[i:i + 1], op, vals[i].tolist()) for i in range(x.shape[0])])
    logits = net(xa)
    y = t["batch.labels"].long()
    per_sample = F.cross_entropy(logits, y, reduction="none")
    loss = per_sample.mean()  # nn.CrossEntropyLoss(), as evaluate_synset's criterion
    params = list(net.parameters())
    names = [n for n, _ in net.named_parameters()]
    ours = torch.cat([t["grad." + n].double().flatten() for n in names])
    grads, kinks, on = matched_grad(net, loss, params, ours)
    notes = {"grad": f"{on} of {kinks} ReLU units at the kink flipped" if on else ""}
    out = {"batch.augmented": err(t["batch.augmented"], xa), "logits": err(t["logits"], logits), "loss": err(t["loss.per_sample"], per_sample)}
    opt = torch.optim.SGD(params, lr=float(meta["lr"]), momentum=float(meta["momentum"]), weight_decay=float(meta["weight_decay"]))
    for p, g, n in zip(params, grads, names):
        p.grad = g.detach().clone()
        opt.state[p]["momentum_buffer"] = t["momentum_before." + n].double().clone()
    floor = 1e-6 * max(g.abs().max().item() for g in grads)
    out["grad"] = max(err(t["grad." + n], g, floor) for n, g in zip(names, grads))
    opt.step()
    out["momentum_after"] = max(err(t["momentum_after." + n], opt.state[p]["momentum_buffer"], floor) for n, p in zip(names, params))
    out["params_after"] = max(err(t["net_after." + n], p) for n, p in zip(names, params))
    return out, notes


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("traces", nargs="+")
    ap.add_argument("--json", help="write the errors here")
    ap.add_argument("--tolerance-scale", type=float, default=1.0, help="multiply every tolerance by this")
    ap.add_argument("--threads", type=int, default=0)
    a = ap.parse_args()
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    report, failed = [], False
    for path in a.traces:
        meta, t = load(path)
        kind = meta.get("kind")
        if kind == "distill" and meta["method"].startswith("idm"):
            errs, notes = check_idm(meta, t)
            what = f"{meta['method']} iteration {meta['iteration']}, {meta['image']}, width {meta['width']}, ipc {meta['ipc']}, batch_real {meta['batch_real']}, mosaic {meta['mosaic']}"
        elif kind == "distill":
            errs, notes = check_distill(meta, t)
            what = f"{meta['method']} iteration {meta['iteration']}, {meta['image']}, width {meta['width']}, ipc {meta['ipc']}, batch_real {meta['batch_real']}"
        elif kind == "eval":
            errs, notes = check_eval(meta, t)
            what = f"evaluation step {meta['step']} (epoch {meta['epoch']}), {meta['image']}, width {meta['width']}, batch {meta['batch']}, lr {meta['lr']}"
        else:
            raise SystemExit(f"{path}: not a hyperdistill trace (kind {kind!r})")
        used = [meta["dsa_ops"].split(",")[int(i)] for i in t["dsa.op"].tolist()]
        print(f"{path}: {what} ({meta.get('adapter', '?')}); DSA ops: {', '.join(f'{o}×{used.count(o)}' for o in sorted(set(used)))}")
        for name, e in errs.items():
            tol = TOL[name] * a.tolerance_scale
            bad = not (e <= tol)
            failed |= bad
            note = notes.get(name, "")
            print(f"  {name:<20} max rel. error {e:9.2e}   tolerance {tol:7.0e}  {'FAIL' if bad else 'ok'}{'   (' + note + ')' if note else ''}")
        report.append({"trace": path, "what": what, "errors": errs, "notes": notes})
    if a.json:
        with open(a.json, "w") as f:
            json.dump(report, f, indent=2)
    print("FAILED" if failed else "all quantities within tolerance")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
