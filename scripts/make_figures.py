"""The README's pictures, cut from real run folders.

    python scripts/make_figures.py RUNS_DIR [--out docs/images]

For each figure below, takes the newest finished run of its lab (`RUNS_DIR/<lab>/<run-id>/`
with a metrics.json; run ids start with their date, so the newest sorts last), crops one of its
plots and scales it down to a small PNG in `--out`. A missing run or plot is one line on stderr
and exit code 2, before anything is written. Make the runs first, for example
`keras-labs run gan --preset quick --data full`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import NamedTuple

import matplotlib

matplotlib.use("Agg")
import matplotlib.image  # noqa: E402
import numpy as np  # noqa: E402


class Figure(NamedTuple):
    lab: str
    plot: str  # file name under the run's plots/
    name: str  # file name under --out
    crop: tuple[float, float, float, float]  # left, top, right, bottom, as fractions of the plot
    width: int  # at most this many pixels wide after scaling down


FIGURES = (
    # the trained network's features in t-SNE: one cluster per digit
    Figure("embeddings", "embeddings.png", "embeddings-tsne.png", (0.47, 0.52, 0.92, 1.0), 300),
    # the same z over training: noise, then digits
    Figure("gan", "contact_sheet.png", "gan-over-training.png", (0.0, 0.06, 0.612, 0.96), 500),
    # two test 4s, the perturbation, the 9s the network then sees, the gradient map
    Figure("adversarial", "examples_pgd_linf.png", "adversarial-4-to-9.png",
           (0.0, 0.0, 1.0, 0.335), 420),
)


def newest_run(runs: Path, lab: str) -> Path | None:
    """The newest finished run folder of `lab` under `runs`, or None."""
    finished = [folder for folder in (runs / lab).glob("*/") if (folder / "metrics.json").is_file()]
    return max(finished, key=lambda folder: folder.name, default=None)


def shrink(image: np.ndarray, width: int) -> np.ndarray:
    """`image` scaled down by a whole factor (the mean of each block) to at most `width` wide."""
    factor = max(1, -(-image.shape[1] // width))
    height, wide = image.shape[0] // factor * factor, image.shape[1] // factor * factor
    blocks = image[:height, :wide].reshape(height // factor, factor, wide // factor, factor, -1)
    return blocks.mean(axis=(1, 3))


def cut(path: Path, figure: Figure) -> np.ndarray:
    """The figure's crop of the PNG at `path`, scaled down, as RGB in [0, 1]."""
    image = matplotlib.image.imread(path)[..., :3]
    if image.dtype == np.uint8:
        image = image / 255.0
    left, top, right, bottom = figure.crop
    rows, columns = image.shape[:2]
    image = image[int(top * rows):int(bottom * rows), int(left * columns):int(right * columns)]
    return np.clip(shrink(image, figure.width), 0.0, 1.0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, help="folder of run folders (runs/<lab>/<run-id>/)")
    parser.add_argument("--out", type=Path, default=Path("docs/images"),
                        help="folder of the PNG files (default: docs/images)")
    args = parser.parse_args(argv)

    sources = []
    for figure in FIGURES:
        run = newest_run(args.runs, figure.lab)
        if run is None:
            print(f"error: no finished {figure.lab} run (<run-id>/metrics.json) under "
                  f"{args.runs / figure.lab}; run `keras-labs run {figure.lab} --preset quick` "
                  "first", file=sys.stderr)
            return 2
        if not (run / "plots" / figure.plot).is_file():
            print(f"error: {run / 'plots' / figure.plot} does not exist", file=sys.stderr)
            return 2
        sources.append(run / "plots" / figure.plot)

    args.out.mkdir(parents=True, exist_ok=True)
    for figure, source in zip(FIGURES, sources, strict=True):
        image = cut(source, figure)
        matplotlib.image.imsave(args.out / figure.name, image)
        size = (args.out / figure.name).stat().st_size
        print(f"{args.out / figure.name}: {image.shape[1]}x{image.shape[0]}, {size // 1024} KB, "
              f"from {source}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
