"""Callbacks shared by the labs; Keras's own (TensorBoard, CSVLogger, TerminateOnNaN) are wired
in `training.standard_callbacks`.
"""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import keras

from keras_labs.files import atomic_write


class EpochTimer(keras.callbacks.Callback):
    """Records the wall time and the training steps of every epoch in the logs (`epoch_time_s`,
    `epoch_steps`), so history.csv has them and throughput follows from the batch size."""

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()
        self._steps = 0

    def on_train_batch_end(self, batch, logs=None):
        self._steps = batch + 1  # with steps_per_execution, `batch` is the execution's last step

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["epoch_time_s"] = time.perf_counter() - self._start
            logs["epoch_steps"] = self._steps


# --------------------------------------------------------------------------------------------
# Instrumentation: what the network does inside, written to TensorBoard as training goes.

# Layers whose output is "the activation" of the convolution before them (through batch norm).
class LossRecorder(keras.callbacks.Callback):
    """Logged metrics averaged over windows of `window` training steps, appended to a CSV.

    The epoch logs hold running means since the epoch began; the mean of one window is the
    difference of two running sums divided by its length. Steps are the optimizer's iterations.

    Args:
        path: The CSV file (columns: `step` and `keys`).
        keys: The logged metrics to average.
        window: Steps per window (a multiple of the model's `steps_per_execution`).
        start_step: The step a resumed fit starts at: rows after it are dropped (0: a new file).
    """

    def __init__(self, path: str | Path, keys: tuple[str, ...], window: int, start_step: int = 0):
        super().__init__()
        self.path, self.keys, self.window = Path(path), tuple(keys), window
        if start_step and self.path.exists():
            with open(self.path, newline="") as handle:
                rows = [row for row in csv.DictReader(handle) if int(row["step"]) <= start_step]
            self._write(rows, mode="w")
        else:
            self._write([], mode="w")

    def _write(self, rows, mode):
        with open(self.path, mode, newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=("step", *self.keys))
            if mode == "w":
                writer.writeheader()
            writer.writerows(rows)

    def _step(self) -> int:
        return int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_start = self._step()
        self.last_count, self.last_sums = 0, dict.fromkeys(self.keys, 0.0)

    def on_train_batch_end(self, batch, logs=None):
        step = self._step()
        if step % self.window or not logs:
            return
        count = step - self.epoch_start
        sums = {key: count * float(logs[key]) for key in self.keys}
        length = count - self.last_count
        if length > 0:
            row = {"step": step, **{key: round((sums[key] - self.last_sums[key]) / length, 5)
                                    for key in self.keys}}
            self._write([row], mode="a")
        self.last_count, self.last_sums = count, sums


class RunningLoss(keras.callbacks.Callback):
    """The mean training loss of the last `every` mini-batches, every `every` mini-batches, as
    the PyTorch tutorial printed it ("[epoch, batch] loss: x.xxx").

    Mini-batches are counted over the whole run (the optimizer's iterations), not per epoch, so
    a window may span an epoch boundary; it is labelled with the epoch and the mini-batch index
    within the epoch of its last mini-batch. Keras logs the running mean of the epoch so far and
    calls back once per `steps_per_execution` steps, so a window's sum is taken from the
    differences of the cumulative sums (mean times count) at the calls; the means are exact
    when `steps_per_execution` divides `every` and the epoch's length (Keras runs whole
    executions of an endless input, so every call then falls on a multiple of it). A window
    whose end falls inside an execution ends at that execution instead, and its record says
    how many mini-batches it averages (`batches`).

    Args:
        every: Window length in mini-batches (a multiple of the model's `steps_per_execution`).
        key: The logged loss to average.
        state_path: A JSON file that keeps the records and the open window at every epoch end,
            so a resumed fit continues them (None: no file).
        verbose: Print every record.

    Attributes:
        records: [{"step", "epoch", "batch", "loss"}], one per window (and "batches" when
            the window is not `every` mini-batches long).
    """

    def __init__(self, every: int, key: str = "loss", state_path: str | Path | None = None,
                 verbose: bool = True):
        super().__init__()
        if every < 1:
            raise ValueError(f"every={every!r} is not valid; it must be >= 1")
        self.every, self.key, self.verbose = every, key, verbose
        self.state_path = None if state_path is None else Path(state_path)
        self.records: list[dict] = []
        self._window_sum, self._window_count = 0.0, 0
        self._started = False

    def _step(self) -> int:
        return int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))

    def on_train_begin(self, logs=None):
        per_execution = int(getattr(self.model, "steps_per_execution", 1) or 1)
        if self.every % per_execution:
            raise ValueError(f"every={self.every} mini-batches is not a multiple of the model's "
                             f"steps_per_execution={per_execution}; the window means would "
                             "not be exact")
        self._started = False

    def _restore(self, step: int) -> None:
        """At the first epoch of a fit: continue the records of the epoch a resumed run left."""
        self.records, self._window_sum, self._window_count = [], 0.0, 0
        if step == 0 or self.state_path is None or not self.state_path.exists():
            return
        saved = json.loads(self.state_path.read_text()).get(str(step))
        if saved is None:
            print(f"RunningLoss: no saved state at step {step}; the records restart there",
                  flush=True)
            return
        self.records = saved["records"]
        self._window_sum, self._window_count = saved["window_sum"], saved["window_count"]

    def on_epoch_begin(self, epoch, logs=None):
        step = self._step()  # a resumed model's weights and iterations are restored by now
        if not self._started:
            self._restore(step)
            self._started = True
        self._epoch, self._epoch_start = epoch, step
        self._epoch_count, self._epoch_sum = 0, 0.0

    def on_train_batch_end(self, batch, logs=None):
        if not logs or self.key not in logs:
            return
        step = self._step()
        count = step - self._epoch_start
        total = count * float(logs[self.key])  # the epoch's running mean times its length
        self._window_sum += total - self._epoch_sum
        self._window_count += count - self._epoch_count
        self._epoch_sum, self._epoch_count = total, count
        crossed = step // self.every > (step - self._window_count) // self.every
        if crossed and self._window_count > 0:
            record = {"step": step, "epoch": self._epoch + 1, "batch": count,
                      "loss": round(self._window_sum / self._window_count, 4)}
            if self._window_count != self.every:
                # A call between window ends (an epoch that ended inside an execution): the
                # mean is over the mini-batches since the last record, and says how many.
                record["batches"] = self._window_count
            self.records.append(record)
            self._window_sum, self._window_count = 0.0, 0
            if self.verbose:
                print(f"[{record['epoch']}, {record['batch']}] loss: {record['loss']:.3f}",
                      flush=True)

    def on_epoch_end(self, epoch, logs=None):
        if self.state_path is None:
            return
        saved = json.loads(self.state_path.read_text()) if self.state_path.exists() else {}
        step = self._step()
        # Only states up to this step: a later one would be of an earlier, abandoned run.
        saved = {key: value for key, value in saved.items() if int(key) < step}
        saved[str(step)] = {"records": self.records, "window_sum": self._window_sum,
                            "window_count": self._window_count}
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(self.state_path, json.dumps(saved))  # a kill mid-write leaves the last whole
