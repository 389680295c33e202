"""Time to accuracy on CIFAR-10: the seconds a recipe takes to first score a stated test accuracy.

    python scripts/benchmark_tta.py [--recipes tutorial-equal-updates=0.5,fast=0.75/0.8/0.85]
        [--torch-python PATH] [--rounds 3] [--data-dir .cache/tfds]
        [--json results/benchmarks/time-to-accuracy-cifar.json]

A Keras recipe is a cifar-cnn preset trained as `keras-labs run` trains it: the same set-up
(`training.start`: seed, threads, precision), data pipeline, network, optimizer, schedule and
`fit` stream, in a fresh process, without TensorBoard's probes, the plots and the export. After
every epoch the clock stops and the test split is scored (mirror-averaged where the preset
does); the run ends at the preset's last epoch. The test split measures finished recipes here:
no setting is chosen on it (the presets were chosen on the validation split).

`torch-tutorial` (with --torch-python, an interpreter that has torch) is report 004's PyTorch
loop: the tutorial network, SGD with lr 0.001 and momentum 0.9, a shuffled DataLoader at batch
4, `running_loss += loss.item()`, on the very images the tutorial preset trains on (this
process exports them), [-1, 1] inputs, for as many epochs as `tutorial-equal-updates`.

Each round runs every recipe once, the order alternating between rounds (interleaved, so a
slow spell of this shared machine falls on all of them), round r at seed r. Figures per recipe
and target: the seconds from the process start to the end of the first epoch that reaches it
(imports, data loading and graph building included: what a user waits), and the training
seconds alone; the median and range over the rounds; the load average before each run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TORCH = "torch-tutorial"


def keras_worker(preset: str, seed: int, spawned: float, data_dir: str | None) -> dict:
    """Trains a cifar-cnn preset, scoring the test split after every epoch (clock stopped).

    Args:
        preset: The cifar-cnn preset.
        seed: Its seed.
        spawned: `time.time()` when the parent started this process.
        data_dir: The tfds data dir (None: the default).
    """
    import math

    import keras
    import numpy as np

    from keras_labs import labs, training
    from keras_labs.labs.cifar_cnn import experiment

    config = labs.resolve_config(labs.get("cifar-cnn"), preset, None, data="full", seed=seed,
                                 **({"data_dir": data_dir} if data_dir else {}))
    run, strategy = training.start("cifar-cnn", config, tempfile.mkdtemp(prefix="tta-"))
    sets, _, source = experiment.make_datasets(config)
    train = sets.make_train()
    steps = int(train.cardinality())
    epochs = experiment.epochs_to_run(config, sets.split["train_examples"])
    per_execution = config.steps_per_execution
    with strategy.scope():
        model = experiment.build_model(
            config, per_execution, math.ceil(steps / per_execution) * per_execution * epochs)
    curve = []

    class TestClock(keras.callbacks.Callback):
        """After each epoch: the seconds waited so far (scoring excluded), then the score."""

        def on_train_begin(self, logs=None):
            self.training_s = self.scoring_s = 0.0

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch_start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            scoring_start = time.perf_counter()
            self.training_s += scoring_start - self.epoch_start
            waited = time.time() - spawned - self.scoring_s
            labels, logits = training.predict_logits(model, sets.test,
                                                     test_time_flip=config.test_time_flip)
            curve.append({"epoch": epoch + 1,
                          "test_accuracy": round(float(np.mean(logits.argmax(-1) == labels)), 4),
                          "training_s": round(self.training_s, 2), "waited_s": round(waited, 2)})
            self.scoring_s += time.perf_counter() - scoring_start

    stream = training.as_elements(train.repeat(), model)
    model.fit(stream, steps_per_epoch=steps, epochs=epochs, verbose=0, callbacks=[TestClock()])
    data_kind = "partial" if getattr(source, "partial", False) else source.kind
    return {"recipe": preset, "seed": seed, "data_kind": data_kind, "epochs": epochs,
            "policy": keras.mixed_precision.global_policy().name,
            "threads": run.env.get("threads_chosen"),
            "train_examples": sets.split["train_examples"], "test_examples": sets.examples["test"],
            "curve": curve}


def export_tutorial_images(data_dir: str | None, seed: int, path: Path) -> int:
    """Writes the tutorial preset's training images (after its validation carve at `seed`) and
    the test split to `path` (.npz, uint8 NHWC); returns the training image count."""
    import numpy as np

    from keras_labs import labs
    from keras_labs.data import loading

    config = labs.resolve_config(labs.get("cifar-cnn"), "tutorial-equal-updates", None,
                                 data="full", seed=seed,
                                 **({"data_dir": data_dir} if data_dir else {}))
    splits, _ = loading.load("cifar10", ("train", "test"), data=config.data,
                             data_dir=config.data_dir)
    labelled = loading.first(splits["train"], config.train_examples)
    train_part, _, _ = loading.split_validation(labelled, config.validation_fraction, seed)

    def arrays(dataset):
        pairs = [(image.numpy(), int(label)) for image, label in dataset]  # (image, label)
        return np.stack([image for image, _ in pairs]), np.array([label for _, label in pairs])

    train_images, train_labels = arrays(train_part)
    test_images, test_labels = arrays(splits["test"])
    np.savez(path, train_images=train_images, train_labels=train_labels,
             test_images=test_images, test_labels=test_labels)
    return len(train_labels)


# Report 004's loop, run by --torch-python: no keras_labs import (that interpreter has torch).
TORCH_WORKER = r"""
import json, sys, time
spawned = float(sys.argv[3])
import numpy as np, torch
from torch import nn
from torch.nn import functional as F

data = np.load(sys.argv[1])
seed, epochs = int(sys.argv[2]), int(sys.argv[4])
torch.manual_seed(seed)
def tensors(images, labels):
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float().div(255).sub(0.5).div(0.5)
    return x.contiguous(), torch.from_numpy(labels).long()
train_x, train_y = tensors(data["train_images"], data["train_labels"])
test_x, test_y = tensors(data["test_images"], data["test_labels"])

class Net(nn.Module):  # the tutorial's network
    def __init__(self):
        super().__init__()
        self.conv1, self.pool, self.conv2 = nn.Conv2d(3, 6, 5), nn.MaxPool2d(2, 2), nn.Conv2d(6, 16, 5)
        self.fc1, self.fc2, self.fc3 = nn.Linear(400, 120), nn.Linear(120, 84), nn.Linear(84, 10)
    def forward(self, x):
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        x = torch.flatten(x, 1)
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))

net = Net()
criterion = nn.CrossEntropyLoss()
optimizer = torch.optim.SGD(net.parameters(), lr=0.001, momentum=0.9)
loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(train_x, train_y),
                                     batch_size=4, shuffle=True)
curve, training_s, scoring_s = [], 0.0, 0.0
for epoch in range(epochs):
    start = time.perf_counter()
    running_loss = 0.0
    for inputs, labels in loader:
        optimizer.zero_grad()
        loss = criterion(net(inputs), labels)
        loss.backward()
        optimizer.step()
        running_loss += loss.item()
    scoring_start = time.perf_counter()
    training_s += scoring_start - start
    waited = time.time() - spawned - scoring_s
    with torch.no_grad():
        accuracy = float((net(test_x).argmax(1) == test_y).float().mean())
    curve.append({"epoch": epoch + 1, "test_accuracy": round(accuracy, 4),
                  "training_s": round(training_s, 2), "waited_s": round(waited, 2)})
    scoring_s += time.perf_counter() - scoring_start
print(json.dumps({"recipe": "torch-tutorial", "seed": seed, "epochs": epochs,
                  "threads": torch.get_num_threads(), "torch": torch.__version__,
                  "train_examples": len(train_y), "test_examples": len(test_y), "curve": curve}))
"""


def reached(curve: list[dict], target: float) -> dict | None:
    """The first epoch of `curve` that scores at least `target`, with its seconds; None if none."""
    for point in curve:
        if point["test_accuracy"] >= target:
            return point
    return None


def run_recipe(recipe: str, seed: int, args: argparse.Namespace, images: Path,
               torch_epochs: int) -> dict:
    """One recipe at one seed in a fresh process; its result with the load average before."""
    load = os.getloadavg()[0]
    spawned = time.time()
    if recipe == TORCH:
        command = [args.torch_python, "-c", TORCH_WORKER, str(images), str(seed), str(spawned),
                   str(torch_epochs)]
    else:
        command = [sys.executable, __file__, "--worker", recipe, "--seed", str(seed),
                   "--spawned", str(spawned)] + (["--data-dir", args.data_dir]
                                                 if args.data_dir else [])
    done = subprocess.run(command, capture_output=True, text=True,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    if done.returncode != 0:
        raise SystemExit(f"{recipe} seed {seed} failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result.update(load_average_before=round(load, 2), process_wall_s=round(time.time() - spawned, 1))
    return result


def summarize(runs: list[dict], targets: dict[str, list[float]]) -> list[dict]:
    """Per recipe and target: the seconds waited and trained to reach it, median and range over
    the rounds (None where a round never reached it), and the final accuracy."""
    rows = []
    for recipe, wanted in targets.items():
        mine = [run for run in runs if run["recipe"] == recipe]
        finals = [run["curve"][-1]["test_accuracy"] for run in mine]
        for target in wanted:
            points = [reached(run["curve"], target) for run in mine]
            hit = [point for point in points if point]
            row = {"recipe": recipe, "target": target, "rounds": len(mine),
                   "reached_in": len(hit),
                   "final_test_accuracy_median": statistics.median(finals) if finals else None}
            for key in ("waited_s", "training_s", "epoch"):
                values = [point[key] for point in hit]
                row[key] = ({"median": statistics.median(values), "min": min(values),
                             "max": max(values)} if len(hit) == len(mine) and hit else None)
            rows.append(row)
    return rows


def markdown(rows: list[dict]) -> str:
    lines = ["| recipe | target | reached | waited (s), median [range] | training (s) | epoch | "
             "final test accuracy (median) |", "|---|---|---|---|---|---|---|"]

    def cell(row, key):
        value = row[key]
        return "-" if value is None else (f"{value['median']:.1f} [{value['min']:.1f}, "
                                          f"{value['max']:.1f}]")

    for row in rows:
        lines.append(f"| {row['recipe']} | {row['target']:.0%} | {row['reached_in']}/"
                     f"{row['rounds']} | {cell(row, 'waited_s')} | {cell(row, 'training_s')} | "
                     f"{cell(row, 'epoch')} | {row['final_test_accuracy_median']:.2%} |")
    return "\n".join(lines)


def parse_recipes(text: str) -> dict[str, list[float]]:
    """"tutorial-equal-updates=0.5,fast=0.75/0.8" -> {recipe: [targets]}."""
    recipes = {}
    for part in filter(None, text.split(",")):
        name, _, targets = part.partition("=")
        try:
            recipes[name] = [float(target) for target in targets.split("/")]
        except ValueError:
            raise SystemExit(f"--recipes: {part!r} is not NAME=ACCURACY[/ACCURACY...]") from None
    return recipes


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", default="tutorial-equal-updates=0.5,fast=0.75/0.8/0.85")
    parser.add_argument("--torch-python", help="an interpreter with torch: adds torch-tutorial")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--data-dir")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--spawned", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(keras_worker(args.worker, args.seed, args.spawned, args.data_dir)))
        return 0
    targets = parse_recipes(args.recipes)
    if args.torch_python:
        targets[TORCH] = targets.get("tutorial-equal-updates", [0.5])
    from keras_labs import labs
    from keras_labs.labs.cifar_cnn import experiment

    tutorial = labs.resolve_config(labs.get("cifar-cnn"), "tutorial-equal-updates", None,
                                   data="full")
    from keras_labs.results.jobs import cpu_model, steal_seconds

    steal_start = steal_seconds()
    runs, scratch = [], Path(tempfile.mkdtemp(prefix="tta-images-"))
    for round_index in range(args.rounds):
        images = scratch / f"seed{round_index}.npz"
        torch_epochs = 0
        if args.torch_python:
            count = export_tutorial_images(args.data_dir, round_index, images)
            torch_epochs = experiment.epochs_to_run(tutorial, count)
        order = list(targets) if round_index % 2 == 0 else list(reversed(targets))
        for recipe in order:
            result = run_recipe(recipe, round_index, args, images, torch_epochs)
            runs.append(result)
            print(f"round {round_index + 1}/{args.rounds} {recipe}: final "
                  f"{result['curve'][-1]['test_accuracy']:.2%} after {result['epochs']} epochs, "
                  f"{result['process_wall_s']:.0f} s (load {result['load_average_before']})",
                  flush=True)
    rows = summarize(runs, targets)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                            check=False).stdout.strip()
    document = {"kind": "time-to-accuracy", "command": " ".join(["python", *sys.argv]),
                "commit": commit, "data_kind": runs[0].get("data_kind", "full"),
                "machine": {"cpus": os.cpu_count(), "cpu_model": cpu_model(),
                            "load_average_before": max(run["load_average_before"] for run in runs),
                            "load_average_after": [round(v, 2) for v in os.getloadavg()],
                            "steal_s": round(steal_seconds() - steal_start, 1)},
                "summary": rows, "runs": runs}
    print(markdown(rows))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(document, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
