"""Fashion-MNIST from the Debian package dataset-fashion-mnist (gzipped idx)."""
import gzip
import os

import numpy as np
import torch

DATA_DIR = os.environ.get("FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist")

# Mean and std of the 60000 training images, pixel values scaled to [0, 1]
# (measured: 0.28604, 0.35302).  Inputs are (pixel / 255 - MEAN) / STD.
MEAN = 0.2860
STD = 0.3530

CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
           "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")


def _read_idx(path):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    magic = int.from_bytes(raw[0:4], "big")
    ndim = magic & 0xFF
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load(split):
    """uint8 images [N, 28, 28] and int64 labels [N] of 'train' or 't10k'."""
    images = _read_idx(os.path.join(DATA_DIR, f"{split}-images-idx3-ubyte.gz"))
    labels = _read_idx(os.path.join(DATA_DIR, f"{split}-labels-idx1-ubyte.gz"))
    return images, labels.astype(np.int64)


def normalize(images_u8):
    """uint8 [N, 28, 28] -> float32 tensor [N, 1, 28, 28], normalized."""
    x = torch.from_numpy(np.array(images_u8, dtype=np.float32)).div_(255.0)
    return ((x - MEAN) / STD).unsqueeze(1)


def augment(x, generator):
    """Random horizontal flip and random 2-pixel shift (zero = background pad)."""
    n = x.shape[0]
    flip = torch.rand(n, generator=generator) < 0.5
    x = torch.where(flip.reshape(-1, 1, 1, 1), x.flip(3), x)
    bg = (0.0 - MEAN) / STD
    padded = torch.nn.functional.pad(x, [2, 2, 2, 2], value=bg)
    dy = torch.randint(0, 5, (n,), generator=generator)
    dx = torch.randint(0, 5, (n,), generator=generator)
    out = torch.empty_like(x)
    for i in range(n):
        out[i] = padded[i, :, dy[i]:dy[i] + 28, dx[i]:dx[i] + 28]
    return out
