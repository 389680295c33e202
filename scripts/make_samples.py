"""Builds the embedded samples in keras_labs/samples/ from the original files.

    python scripts/make_samples.py ../shared/data

Takes the first 4,000 train and 1,000 test MNIST digits, the first 1,000 train and 250 test
CIFAR-10 images (real prefixes of the original batches, so the classes are roughly balanced),
and the whole of Tiny Shakespeare (gzip). Uses the same validating readers as `data prepare`.
"""

import gzip
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

from keras_labs.data import preparation, specs


def main(source: str) -> None:
    source = Path(source)
    out = specs.SAMPLES_DIR
    out.mkdir(exist_ok=True)
    mnist = preparation.read_mnist_dir(source / "mnist")
    np.savez_compressed(out / "mnist.npz",
                        train_images=mnist["train"][0][:4000], train_labels=mnist["train"][1][:4000],
                        test_images=mnist["test"][0][:1000], test_labels=mnist["test"][1][:1000])
    with tempfile.TemporaryDirectory() as tmp:
        archive = sorted((source / "cifar10").glob("*.tar.gz"))[0]
        cifar = preparation.read_cifar_dir(preparation.safe_extract_cifar(archive, Path(tmp)))
    np.savez_compressed(out / "cifar10.npz",
                        train_images=cifar["train"][0][:1000], train_labels=cifar["train"][1][:1000],
                        test_images=cifar["test"][0][:250], test_labels=cifar["test"][1][:250])
    with open(source / "tiny_shakespeare" / "input.txt", "rb") as text, \
            gzip.open(out / "tiny_shakespeare.txt.gz", "wb", compresslevel=9) as packed:
        shutil.copyfileobj(text, packed)
    for path in sorted(out.iterdir()):
        print(f"{path.name}: {path.stat().st_size / 1e6:.2f} MB")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "../shared/data")
