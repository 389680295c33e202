"""Benchmarks: training throughput, time per epoch and peak memory of the labs' models.

    python scripts/benchmark.py [--labs mnist-cnn] [--steps 60] [--json out.json]
    python scripts/benchmark.py --runs all [--preset quick] [--data auto|sample|full]
                                [--json out.json] [--markdown out.md]

`--runs` runs every named lab end to end (`keras-labs run LAB --preset P`), each in its own
process, and reads what the run wrote: the wall time, the training time and steps of every
epoch (history CSVs), so examples per second and time per epoch or per 1,000 steps, the
process's peak memory (its own `ru_maxrss`), the lab's headline metric, and the training
time at which the lab's target was first reached (or "not reached" within the preset).

Measures `fit` on a cached, prefetched `tf.data` pipeline of synthetic inputs with each
preset's model and batch size (the input pipeline is not the bottleneck being measured), after
a warm-up epoch that traces the graph. Lab-specific benchmarks live beside this file as
`scripts/benchmark_<topic>.py`; `--all` runs them too. Prints JSON and a Markdown table; speed
figures belong here, never in tests.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_labs import language_modeling  # noqa: E402
from keras_labs.labs.char_rnn import config as char_rnn_config  # noqa: E402
from keras_labs.labs.mnist_cnn import config as mnist_cnn_config  # noqa: E402
from keras_labs.models import cnn, language  # noqa: E402
from keras_labs.results import jobs  # noqa: E402


def peak_memory_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def throughput(model: keras.Model, input_shape, batch_size: int, steps: int,
               optimizer: keras.optimizers.Optimizer, steps_per_execution: int = 1) -> dict:
    """Images per second of `model.fit` over `steps` steps (after a warm-up epoch)."""
    rng = np.random.default_rng(0)
    images = rng.random((batch_size * steps, *input_shape), dtype=np.float32)
    labels = rng.integers(0, 10, batch_size * steps)
    dataset = tf.data.Dataset.from_tensor_slices((images, labels)).batch(batch_size).cache()
    dataset = dataset.prefetch(tf.data.AUTOTUNE)
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy",
                  steps_per_execution=steps_per_execution)
    model.fit(dataset, epochs=1, verbose=0)  # warm-up: tracing and graph optimization
    start = time.perf_counter()
    model.fit(dataset, epochs=1, verbose=0)
    elapsed = time.perf_counter() - start
    return {"images_per_s": round(batch_size * steps / elapsed, 1),
            "step_ms": round(1000 * elapsed / steps, 2)}


def bench_mnist_cnn(steps: int) -> list[dict]:
    rows = []
    for preset_name, preset in mnist_cnn_config.PRESETS.items():
        model = cnn.mnist_cnn(filters=preset.filters, convs_per_stage=preset.convs_per_stage,
                              dense_units=preset.dense_units, dropout=preset.dropout,
                              batch_norm=preset.batch_norm)
        result = throughput(model, (28, 28, 1), preset.batch_size, steps,
                            keras.optimizers.Adam(preset.learning_rate),
                            preset.steps_per_execution)
        examples = 60000 if preset.train_examples == 0 else preset.train_examples
        rows.append({"lab": "mnist-cnn", "preset": preset_name, "batch_size": preset.batch_size,
                     **result, "epoch_s": round(examples / result["images_per_s"], 1),
                     "epoch_examples": examples, "peak_rss_mb": round(peak_memory_mb())})
    return rows


def bench_cifar_cnn(steps: int) -> list[dict]:
    """The cifar-cnn presets through `benchmark_cifar.py` (a fresh process per measurement, so
    peak memory is each one's own); its Keras-vs-PyTorch comparison runs with `--all`."""
    import tempfile

    del steps  # benchmark_cifar.py times whole epochs of its own image count
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "cifar.json"
        subprocess.run([sys.executable, str(Path(__file__).with_name("benchmark_cifar.py")),
                        "--no-torch", "--json", str(out)], check=True, stdout=subprocess.DEVNULL)
        results = json.loads(out.read_text())
    return [{"lab": "cifar-cnn", "preset": row["preset"], "batch_size": row["batch_size"],
             "images_per_s": row["images_per_s"],
             "step_ms": round(1000 * row["batch_size"] / row["images_per_s"], 2),
             "epoch_s": row["epoch_s_8152"], "epoch_examples": 8152,
             "peak_rss_mb": row["peak_memory_mib"]}
            for row in results["presets"] if "error" not in row]


class _StepClock(keras.callbacks.Callback):
    """Seconds from the first step's start to the last step's end: the steady state alone.

    Timing the whole `fit` call is not: on this 2-core CPU a `fit` over `Dataset.repeat()`
    sometimes spent ~18 s outside its steps (a 30-step fit whose three executions took 7.3-7.8 s
    each ran 41 s), which would count as step time.
    """

    def on_train_batch_begin(self, batch, logs=None):
        if batch == 0:
            self.start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.seconds = time.perf_counter() - self.start


def bench_char_rnn(steps: int) -> list[dict]:
    """The `best` preset's training step with each recurrent implementation (Keras's GRU and
    `language.HoistedGRU`), compiled as the lab compiles it, on synthetic character ids."""
    preset = char_rnn_config.PRESETS["best"]
    execution = preset.steps_per_execution
    steps = max(execution, steps // 3 // execution * execution)  # ~1 s per step: a third
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 66, (preset.batch_size, preset.sequence_length + 1)).astype(np.int32)
    dataset = tf.data.Dataset.from_tensors((ids[:, :-1], ids[:, 1:])).repeat()
    rows = []
    for implementation in ("keras", "hoisted"):
        keras.utils.set_random_seed(0)
        model, _, _ = language.build_language_model(
            66, cell=preset.cell, units=preset.units, num_layers=preset.num_layers,
            embedding_dim=preset.embedding_dim, implementation=implementation)
        language_modeling.compile_language_model(model, preset)
        model.fit(dataset, steps_per_epoch=execution, epochs=1, verbose=0)  # warm-up: tracing
        clock = _StepClock()
        model.fit(dataset, steps_per_epoch=steps, epochs=1, verbose=0, callbacks=[clock])
        elapsed = clock.seconds
        rows.append({"lab": "char-rnn", "preset": f"best ({implementation})",
                     "batch_size": preset.batch_size,
                     "chars_per_s": round(preset.batch_size * preset.sequence_length * steps
                                          / elapsed, 1),
                     "step_ms": round(1000 * elapsed / steps, 2),
                     "steps_in_15_min": int(900 / (elapsed / steps)),
                     "peak_rss_mb": round(peak_memory_mb())})
    return rows


BENCHMARKS = {"mnist-cnn": bench_mnist_cnn, "cifar-cnn": bench_cifar_cnn,
              "char-rnn": bench_char_rnn}

# What one training step holds, from the run's config: (unit, examples per step).
_UNITS = {
    "char-rnn": ("chars", lambda c: c["batch_size"] * c["sequence_length"]),
    "word-rnn": ("words", lambda c: c["batch_size"] * c["sequence_length"]),
}
# lab: (history CSV under the run folder, column, "max" or "min", threshold, label); the time
# to target is the training time (sum of epoch_time_s) up to the first epoch that reaches it.
TARGETS = {
    "mnist-cnn": ("history.csv", "val_accuracy", "max", 0.99, "99% test accuracy"),
    "cifar-cnn": ("history.csv", "val_accuracy", "max", 0.70, "70% test accuracy"),
    "char-rnn": ("history.csv", "val_loss", "min", 1.45, "1.45 nats/char (windowed)"),
    "mnist-rnn": ("history/lstm-20.csv", "val_accuracy", "max", 0.95,
                  "LSTM-20 95% (report 002)"),
}
# lab: its headline metric in metrics.json (a path of keys joined by "/").
HEADLINES = {
    "mnist-cnn": "test_accuracy", "cifar-cnn": "test_accuracy", "deconvnet": "test_accuracy",
    "autoencoder": "test_accuracy", "char-rnn": "validation_loss", "word-rnn": "perplexity",
    "mnist-rnn": "all_meet_report_002", "gan": "classifier_fid",
    "embeddings": "trained/knn_accuracy_tsne", "transfer": "best/test_accuracy",
    "adversarial": "attacks/pgd_linf/0.1/success_rate",
}


def _read_histories(run_dir: Path) -> dict[str, list[dict]]:
    import csv

    histories = {}
    for path in sorted(run_dir.rglob("*.csv")):
        with open(path, newline="") as handle:
            rows = list(csv.DictReader(handle))
        if rows and "epoch_time_s" in rows[0]:
            histories[str(path.relative_to(run_dir))] = rows
    return histories


def _dig(tree, path: str):
    for key in path.split("/"):
        if not isinstance(tree, dict) or key not in tree:
            return None
        tree = tree[key]
    return tree


def summarize_run(lab: str, preset: str, run_dir: Path, wall_s: float, peak_rss_mb: float) -> dict:
    """One benchmark row from a finished run folder."""
    config = json.loads((run_dir / "config.json").read_text())
    metrics = json.loads((run_dir / "metrics.json").read_text())
    histories = _read_histories(run_dir)
    epochs = [row for rows in histories.values() for row in rows]
    train_s = sum(float(row["epoch_time_s"]) for row in epochs)
    steps = sum(int(float(row.get("epoch_steps") or 0)) for row in epochs)
    unit, per_step = _UNITS.get(lab, ("examples", lambda c: c.get("batch_size", 0)))
    # Steady state: every epoch but each history's first (it also traces the graph).
    steady = [row for rows in histories.values() for row in rows[1:]] or epochs
    steady_s = sum(float(row["epoch_time_s"]) for row in steady)
    steady_steps = sum(int(float(row.get("epoch_steps") or 0)) for row in steady)
    row = {"lab": lab, "preset": preset, "wall_s": round(wall_s, 1), "train_s": round(train_s, 1), "epochs": len(epochs),
           "steps": steps, "unit": unit, "peak_rss_mb": round(peak_rss_mb)}
    if steady_steps and steady_s:
        row[f"{unit}_per_s"] = round(steady_steps * per_step(config) / steady_s, 1)
        row["s_per_1000_steps"] = round(1000 * steady_s / steady_steps, 1)
        row["s_per_epoch"] = round(steady_s / len(steady), 2)
    headline = HEADLINES.get(lab)
    if headline:
        value = _dig(metrics, headline)
        value = round(value, 4) if isinstance(value, float) else value
        row["metric"] = f"{headline.replace('/', '.')} = {value}"
    if lab in TARGETS:
        name, column, direction, threshold, label = TARGETS[lab]
        rows = histories.get(name, [])
        elapsed, reached = 0.0, None
        for entry in rows:
            elapsed += float(entry["epoch_time_s"])
            value = float(entry.get(column) or "nan")
            if (value >= threshold) if direction == "max" else (value <= threshold):
                reached = round(elapsed, 1)
                break
        row["target"] = label
        row["time_to_target_s"] = reached if reached is not None else "not reached"
    data = metrics.get("data", {})
    row["data"] = ", ".join(f"{name}: {info.get('kind')}{' partial' if info.get('partial') else ''}"
                            for name, info in data.items())
    return row


def run_process(command: list[str], log_path: Path) -> tuple[int, float, float]:
    """Runs `command` with its output in `log_path`: (exit code, wall seconds, peak RSS in MB
    of that process alone)."""
    started = time.perf_counter()
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                   env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
        _, status, usage = os.wait4(process.pid, 0)
    return (os.waitstatus_to_exitcode(status), time.perf_counter() - started,
            usage.ru_maxrss / 1024)


def bench_runs(labs: list[str], preset: str, data: str | None, keep: str | None) -> list[dict]:
    """Runs each lab's preset in a fresh process and summarizes its run folder."""
    import tempfile

    rows = []
    root = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="keras-labs-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    for lab in labs:
        out = root / "runs"
        command = [sys.executable, "-m", "keras_labs", "run", lab, "--preset", preset,
                   "--out", str(out), "--export-dir", str(root / "saved_models")]
        if data:
            command += ["--data", data]
        print(f"=== {lab} ({preset})", file=sys.stderr, flush=True)
        code, wall_s, peak_mb = run_process(command, root / f"{lab}.log")
        if code != 0:
            rows.append({"lab": lab, "preset": preset,
                         "error": f"exit {code} (see {root / f'{lab}.log'})"})
            continue
        run_dir = max((out / lab).iterdir(), key=lambda path: path.stat().st_mtime)
        rows.append(summarize_run(lab, preset, run_dir, wall_s, peak_mb))
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    return rows


def runs_markdown(rows: list[dict]) -> str:
    columns = [("lab", "lab"), ("preset", "preset"), ("data", "data"), ("wall_s", "wall (s)"),
               ("train_s", "training (s)"), ("throughput", "throughput"),
               ("s_per_epoch", "s / epoch"), ("s_per_1000_steps", "s / 1,000 steps"),
               ("peak_rss_mb", "peak RSS (MB)"), ("metric", "result"),
               ("time_to_target_s", "time to target (s)")]
    lines = ["| " + " | ".join(title for _, title in columns) + " |",
             "|" + "---|" * len(columns)]
    for row in rows:
        unit = row.get("unit", "examples")
        row = {**row, "throughput": f"{row[unit + '_per_s']:,} {unit}/s"
               if f"{unit}_per_s" in row else row.get("error", "")}
        if "target" in row and row.get("time_to_target_s") is not None:
            row["time_to_target_s"] = f"{row['time_to_target_s']} ({row['target']})"
        lines.append("| " + " | ".join(str(row.get(key, "")) for key, _ in columns) + " |")
    return "\n".join(lines)


def _machine() -> dict:
    return {"platform": platform.platform(), "cpu_model": jobs.cpu_model(),
            "cpu_count": os.cpu_count(),
            "gpus": [d.name for d in tf.config.list_physical_devices("GPU")],
            "tensorflow": tf.__version__, "keras": keras.__version__,
            "load_average_at_end": [round(value, 2) for value in os.getloadavg()]}


def markdown(rows: list[dict]) -> str:
    columns = ["lab", "preset", "batch_size", "images_per_s", "chars_per_s", "step_ms",
               "epoch_s", "steps_in_15_min", "peak_rss_mb"]
    columns = [column for column in columns if any(column in row for row in rows)]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(row.get(c, "")) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--labs", default=",".join(BENCHMARKS))
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--all", action="store_true", help="also run scripts/benchmark_*.py")
    parser.add_argument("--runs", metavar="LABS",
                        help="run these labs end to end (comma-separated, or `all`)")
    parser.add_argument("--preset", default="quick", help="with --runs: the preset to run")
    parser.add_argument("--data", choices=("auto", "sample", "full"), help="with --runs")
    parser.add_argument("--keep", metavar="DIR", help="with --runs: keep the runs in DIR")
    parser.add_argument("--markdown", help="write the Markdown table to this file")
    args = parser.parse_args()
    if args.runs:
        from keras_labs import labs as lab_registry

        names = lab_registry.names() if args.runs == "all" else args.runs.split(",")
        unknown = [name for name in names if name not in lab_registry.names()]
        if unknown:
            print(f"benchmark: unknown lab {unknown[0]!r}; valid: "
                  f"{', '.join(lab_registry.names())}", file=sys.stderr)
            return 2
        rows = bench_runs(names, args.preset, args.data, args.keep)
        report = {"machine": _machine(), "mode": "runs", "preset": args.preset, "results": rows}
        table = runs_markdown(rows)
        print(json.dumps(report, indent=2))
        print(table)
        if args.json:
            Path(args.json).write_text(json.dumps(report, indent=2))
        if args.markdown:
            Path(args.markdown).write_text(table + "\n")
        return 0 if all("error" not in row for row in rows) else 1
    unknown = [lab for lab in args.labs.split(",") if lab not in BENCHMARKS]
    if unknown:
        print(f"benchmark: unknown lab {unknown[0]!r}; valid: {', '.join(BENCHMARKS)}", file=sys.stderr)
        return 2
    rows = []
    for lab in args.labs.split(","):
        rows += BENCHMARKS[lab](args.steps)
    report = {"machine": _machine(), "results": rows}
    print(json.dumps(report, indent=2))
    print(markdown(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    if args.all:
        for script in sorted(Path(__file__).parent.glob("benchmark_*.py")):
            print(f"\n=== {script.name}", flush=True)
            subprocess.run([sys.executable, str(script)], check=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
