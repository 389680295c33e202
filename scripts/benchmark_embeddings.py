"""Times t-SNE at 10,000 points with each implementation the `embeddings` lab can use.

    python scripts/benchmark_projection.py [--points 10000] [--implementations opentsne,sklearn]
                                           [--threads 2] [--data auto|sample|full]
                                           [--data-dir DIR] [--json PATH]

The points are MNIST images (train then test split, through keras_labs.data), reduced to 50
principal components exactly as the lab does before t-SNE; every implementation gets the same
perplexity, learning rate, initialization and number of iterations (see `tsne_2d`). Next to
the wall time it reports the process CPU time (steadier on a shared machine) and the 10-NN
accuracy of the digit classes in the 2-D map, so a faster implementation cannot hide a worse
layout. Timings depend on the machine's load: each result carries the 1-minute load average
when it finished.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from keras_labs.data import loading  # noqa: E402
from keras_labs.labs.embeddings import projection  # noqa: E402
from keras_labs.labs.embeddings.config import opentsne_available  # noqa: E402


def mnist_points(count: int, data_choice: str, data_dir: str | None) -> tuple[np.ndarray, np.ndarray]:
    """(points, labels): the first `count` MNIST images as flat [0, 1] vectors."""
    datasets, source = loading.load("mnist", ("train", "test"), data=data_choice, data_dir=data_dir)
    images, labels = loading.to_numpy(datasets["train"].concatenate(datasets["test"]).take(count))
    print(f"data: {source.describe()}; using {len(images):,} images", flush=True)
    return images.reshape(len(images), -1).astype(np.float32) / 255.0, labels


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--points", type=int, default=10000)
    parser.add_argument("--implementations", default="opentsne,sklearn")
    parser.add_argument("--threads", default=str(projection.cpu_count()),
                        help="comma-separated thread counts to try (default: every CPU)")
    parser.add_argument("--perplexity", type=float, default=30.0)
    parser.add_argument("--iterations", type=int, default=750)
    parser.add_argument("--data", default="auto", choices=("auto", "sample", "full"))
    parser.add_argument("--data-dir")
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args(argv)

    points, labels = mnist_points(args.points, args.data, args.data_dir)
    if len(points) < args.points:
        print(f"WARNING: only {len(points):,} points available, not {args.points:,}",
              file=sys.stderr)
    results = []
    for implementation in args.implementations.split(","):
        if implementation == "opentsne" and not opentsne_available():
            print("opentsne: not installed (pip install openTSNE); skipped", flush=True)
            continue
        for threads in map(int, args.threads.split(",")):
            start, cpu_start = time.perf_counter(), time.process_time()
            layout = projection.tsne_2d(points, perplexity=args.perplexity, seed=0,
                                        iterations=args.iterations, implementation=implementation,
                                        threads=threads)
            result = {"implementation": implementation, "threads": threads, "points": len(points),
                      "seconds": round(time.perf_counter() - start, 2),
                      "cpu_seconds": round(time.process_time() - cpu_start, 2),
                      "knn_accuracy_2d": round(projection.knn_accuracy(layout, labels, 10), 4),
                      "cpus_available": projection.cpu_count(),
                      "load_average": round(os.getloadavg()[0], 2),
                      "iterations": args.iterations, "perplexity": args.perplexity}
            results.append(result)
            print(json.dumps(result), flush=True)
    print("\n| implementation | threads | points | wall s | CPU s | 10-NN accuracy in 2-D | load |\n"
          "|---|---|---|---|---|---|---|")
    for result in results:
        print(f"| {result['implementation']} | {result['threads']} | {result['points']:,} | "
              f"{result['seconds']:.1f} | {result['cpu_seconds']:.1f} | "
              f"{result['knn_accuracy_2d']:.3f} | {result['load_average']:.1f} |")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
