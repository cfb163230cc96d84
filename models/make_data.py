#!/usr/bin/python3
"""Write the bundled example images for repq's demo and tests.

    /usr/bin/python3 models/make_data.py

From the Fashion-MNIST TEST split (Debian package dataset-fashion-mnist):
  data/fashion_mnist/calib/  test images 0..255   (calibration)
  data/fashion_mnist/eval/   test images 256..767 (evaluation), disjoint
as 8-bit greyscale 28x28 PNGs named test_<index>.png, each folder with a
labels.csv of `file,class_index`.
"""
import csv
import os
import sys

from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from repq_models import data  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
SPLITS = {"calib": range(0, 256), "eval": range(256, 768)}


def main():
    images, labels = data.load("t10k")
    root = os.path.join(HERE, "data", "fashion_mnist")
    for split, indices in SPLITS.items():
        folder = os.path.join(root, split)
        os.makedirs(folder, exist_ok=True)
        rows = []
        for i in indices:
            name = f"test_{i:05d}.png"
            Image.fromarray(images[i], mode="L").save(os.path.join(folder, name), optimize=True)
            rows.append((name, int(labels[i])))
        with open(os.path.join(folder, "labels.csv"), "w", newline="") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(("file", "class_index"))
            w.writerows(rows)
        print(split, len(rows), "images")


if __name__ == "__main__":
    main()
