#!/usr/bin/env python3
"""Regenerate the embedded Fashion-MNIST subset (assets/fashion-mnist-subset/) deterministically.

Takes, per class, the first TRAIN_PER_CLASS training images and the first TEST_PER_CLASS test images in
file order from the original IDX files (Debian: apt-get install dataset-fashion-mnist), and writes them
as gzip-compressed IDX files with a fixed gzip header (mtime 0), so the output is byte-identical on
every run.   usage: python3 assets/make_fashion_subset.py [SRC_DIR] [OUT_DIR]
"""
import gzip, struct, sys, pathlib

TRAIN_PER_CLASS, TEST_PER_CLASS = 500, 100
src = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "/usr/share/datasets/fashion-mnist")
out = pathlib.Path(sys.argv[2] if len(sys.argv) > 2 else pathlib.Path(__file__).parent / "fashion-mnist-subset")
out.mkdir(parents=True, exist_ok=True)

def read(name):
    p = src / name
    data = p.read_bytes()
    return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data

def write(name, payload):
    # gzip.compress(mtime=0) writes no file name and a zero timestamp: reproducible bytes.
    (out / name).write_bytes(gzip.compress(payload, compresslevel=9, mtime=0))

for split, per_class in (("train", TRAIN_PER_CLASS), ("t10k", TEST_PER_CLASS)):
    imgs = read(f"{split}-images-idx3-ubyte.gz")
    labs = read(f"{split}-labels-idx1-ubyte.gz")
    magic, n, rows, cols = struct.unpack(">IIII", imgs[:16])
    assert magic == 2051 and struct.unpack(">II", labs[:8]) == (2049, n)
    size = rows * cols
    taken, counts = [], [0] * 10
    for i in range(n):
        y = labs[8 + i]
        if counts[y] < per_class:
            counts[y] += 1
            taken.append(i)
    assert all(c == per_class for c in counts), counts
    pixels = b"".join(imgs[16 + i * size: 16 + (i + 1) * size] for i in taken)
    labels = bytes(labs[8 + i] for i in taken)
    write(f"{split}-images-idx3-ubyte.gz", struct.pack(">IIII", 2051, len(taken), rows, cols) + pixels)
    write(f"{split}-labels-idx1-ubyte.gz", struct.pack(">II", 2049, len(taken)) + labels)
    print(f"{split}: {len(taken)} images ({per_class} per class) -> {out}")
