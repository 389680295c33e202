"""Benchmarks the gan lab: training steps per second (MLP and DCGAN) and the 20k preset's time.

    python scripts/benchmark_gan.py [--mlp-steps 500] [--dcgan-steps 60] [--json PATH]
                                    [--markdown PATH]

One step is one discriminator and one generator update (`models.gan.GAN.train_step`), with the
`non_saturating-20k` preset's settings and batch size, on a cached `tf.data` stream of
synthetic images (the input pipeline is not what is measured), timed over one `fit` epoch of
that many steps after a warm-up epoch that traces the graph; both steps_per_execution 1 and 10
(the presets' setting) are measured. The monitoring done after every interval of the preset (a sample
grid, scoring `score_samples` images with the classifier, a backup of the training state) is
timed once with an untrained classifier of the same architecture (the cost does not depend on
its weights).

The wall time of the 20k preset is EXTRAPOLATED from these measurements:
iterations / steps_per_s + intervals * interval_s; it leaves out start-up, data loading and
training the scoring classifier. Timings depend on the machine's load: report them with the
CPU count and load average printed here.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_labs import runs, training  # noqa: E402
from keras_labs.labs.gan.config import NAME, PRESETS, Config  # noqa: E402
from keras_labs.labs.gan.experiment import model_spec  # noqa: E402
from keras_labs.labs.gan.scoring import SampleScorer  # noqa: E402
from keras_labs.models.cnn import mnist_cnn  # noqa: E402
from keras_labs.models.gan import build_gan, fixed_inputs, generate  # noqa: E402

PRESET = "non_saturating-20k"
GRID_SAMPLES = 80  # the lab's sample grid: 8 rows of 10


def build(config: Config):
    return build_gan(model_spec(config), steps_per_execution=config.steps_per_execution)


def steps_per_second(config: Config, steps: int) -> dict:
    """`fit` throughput of the GAN over `steps` train steps, after a warm-up epoch."""
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    images = rng.uniform(-1, 1, (config.batch_size * 20, 28, 28, 1)).astype(np.float32)
    labels = rng.integers(0, 10, len(images))
    dataset = tf.data.Dataset.from_tensor_slices((images, labels)).batch(
        config.batch_size, drop_remainder=True).cache().repeat().prefetch(tf.data.AUTOTUNE)
    model = build(config)
    warm_up = max(config.steps_per_execution, min(steps, 50))
    warm_up -= warm_up % config.steps_per_execution
    model.fit(dataset, epochs=1, steps_per_epoch=warm_up, verbose=0)
    start = time.perf_counter()
    model.fit(dataset, epochs=1, steps_per_epoch=steps, verbose=0)
    elapsed = time.perf_counter() - start
    return {"architecture": config.architecture, "steps_per_execution": config.steps_per_execution,
            "batch_size": config.batch_size, "measured_steps": steps,
            "steps_per_s": round(steps / elapsed, 2), "step_ms": round(1000 * elapsed / steps, 2),
            "generator_parameters": model.generator.count_params(),
            "discriminator_parameters": model.discriminator.count_params()}


def interval_seconds(config: Config) -> float:
    """Time of the monitoring after one interval: grid, scoring, backup."""
    model = build(config)
    spec = model_spec(config)
    classifier = mnist_cnn()
    real = np.random.default_rng(1).random((10000, 28, 28, 1)).astype(np.float32)
    scorer = SampleScorer(classifier, real)
    grid_inputs = fixed_inputs(spec, GRID_SAMPLES, salt=1)
    score_inputs = fixed_inputs(spec, config.score_samples, salt=2)
    with tempfile.TemporaryDirectory() as folder:
        # The lab's backup: `training.fit` saves one after every interval.
        backup = training.Backup(runs.Run(NAME, config, Path(folder) / "run"),
                                 state=[model.rng.state])
        backup.set_model(model)
        timings = []
        for epoch in range(3):  # the first includes tracing; keep the fastest
            start = time.perf_counter()
            generate(model.generator, grid_inputs, spec)
            scorer.score(generate(model.generator, score_inputs, spec))
            backup.on_epoch_end(epoch, {})
            timings.append(time.perf_counter() - start)
    return min(timings)


def markdown(report: dict) -> str:
    lines = ["| architecture | steps_per_execution | batch | steps/s | ms/step | G params | D params |",
             "|---|---|---|---|---|---|---|"]
    for row in report["throughput"]:
        lines.append(f"| {row['architecture']} | {row['steps_per_execution']} | {row['batch_size']} "
                     f"| {row['steps_per_s']} | {row['step_ms']} | {row['generator_parameters']:,} "
                     f"| {row['discriminator_parameters']:,} |")
    estimate = report["preset_20k_extrapolated"]
    lines += ["", f"`{PRESET}` wall time, EXTRAPOLATED (not run): {estimate['iterations']:,} steps "
                  f"at {estimate['steps_per_s']} steps/s + {estimate['intervals']} intervals x "
                  f"{estimate['interval_s']} s monitoring = **{estimate['total_min']} min** "
                  "(start-up, data loading and the scoring classifier not included).",
              "", f"Machine: {report['machine']['cpu_count']} CPUs, load average "
                  f"{report['machine']['load_average']} at the start (shared machine: the "
                  "figures move with the load)."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mlp-steps", type=int, default=500, help="timed steps of the MLP GAN")
    parser.add_argument("--dcgan-steps", type=int, default=60, help="timed steps of the DCGAN")
    parser.add_argument("--json", help="write the results to this JSON file")
    parser.add_argument("--markdown", help="write the Markdown table to this file")
    args = parser.parse_args(argv)
    if args.mlp_steps < 10 or args.dcgan_steps < 10:
        print("benchmark_gan: --mlp-steps and --dcgan-steps must be at least 10", file=sys.stderr)
        return 2
    preset = PRESETS[PRESET]
    report = {"machine": {"platform": platform.platform(), "cpu_count": os.cpu_count(),
                          "load_average": [round(v, 2) for v in os.getloadavg()],
                          "gpus": [d.name for d in tf.config.list_physical_devices("GPU")],
                          "tensorflow": tf.__version__, "keras": keras.__version__},
              "preset": PRESET, "throughput": []}
    for architecture, steps in (("mlp", args.mlp_steps), ("dcgan", args.dcgan_steps)):
        for per_execution in (1, 10):
            steps_here = max(per_execution, steps - steps % per_execution)
            config = dataclasses.replace(preset, architecture=architecture,
                                         steps_per_execution=per_execution)
            row = steps_per_second(config, steps_here)
            print(json.dumps(row), flush=True)
            report["throughput"].append(row)
    interval = interval_seconds(preset)
    mlp = next(row for row in report["throughput"] if row["architecture"] == preset.architecture
               and row["steps_per_execution"] == preset.steps_per_execution)
    intervals = preset.iterations // preset.sample_every
    total = preset.iterations / mlp["steps_per_s"] + intervals * interval
    report["preset_20k_extrapolated"] = {
        "extrapolated": True, "iterations": preset.iterations, "steps_per_s": mlp["steps_per_s"],
        "measured_steps": mlp["measured_steps"], "intervals": intervals,
        "interval_s": round(interval, 2), "total_s": round(total, 1),
        "total_min": round(total / 60, 1)}
    print(json.dumps(report, indent=2))
    text = markdown(report)
    print(text)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    if args.markdown:
        Path(args.markdown).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
