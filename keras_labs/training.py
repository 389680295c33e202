"""Training building blocks: seeds and determinism, mixed precision, the resumable fit with the
standard callbacks, and classifier evaluation. Threads and strategies: `devices`.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import shutil
import sys
from pathlib import Path

import keras
import numpy as np
import sklearn.metrics
import tensorflow as tf

from keras_labs import KerasLabsError, compat, devices, instrumentation, multiworker
from keras_labs.callbacks import EpochTimer
from keras_labs.config import LabConfig, profile_batch_range
from keras_labs.files import atomic_write, staged_folder
from keras_labs.run_folders import plain_name
from keras_labs.runs import Run


def start(lab: str, config: LabConfig, workdir: str | os.PathLike, *, resume: bool = False):
    """Opens a lab's run folder and sets up training (`setup`); the first line of a lab's `run`.

    Returns:
        (the `runs.Run`, the `tf.distribute.Strategy` to build models under).
    """
    threads, why = devices.choose_threads(config.threads, getattr(config, "batch_size", None))
    devices.use_threads(threads)
    if config.strategy == "multiworker":  # TensorFlow takes it only before its runtime starts
        multiworker.strategy(config.worker_timeout_s)  # (Run lists devices)
    run = Run(lab, config, workdir, resume=resume)
    run.env["threads_chosen"] = {"threads": threads, "why": why}
    return run, setup(config, run)


def setup(config: LabConfig, run=None) -> tf.distribute.Strategy:
    """Seeds everything, applies determinism and precision, and returns the strategy to use.

    Call it before building any model. With `run` (a `runs.Run`), the strategy, its replicas
    and the compute policy go into the run's env.json.
    """
    keras.utils.set_random_seed(config.seed)
    if config.deterministic:
        tf.config.experimental.enable_op_determinism()
    policy, note = devices.precision_policy(config.mixed_precision)
    if note:
        print(f"note: {note}", file=sys.stderr, flush=True)
    keras.mixed_precision.set_global_policy(policy)
    timeout = config.worker_timeout_s if config.strategy == "multiworker" else None
    strategy = devices.make_strategy(config.strategy, worker_timeout_s=timeout)
    if run is not None:
        try:
            worker_devices = list(strategy.extended.worker_devices)
        except RuntimeError:  # the default strategy: the default device
            worker_devices = []
        run.env["strategy"] = {
            "name": config.strategy, "class": type(strategy).__name__,
            "replicas": strategy.num_replicas_in_sync, "devices": worker_devices,
            "policy": keras.mixed_precision.global_policy().name,
            "threads": {"intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
                        "inter_op": tf.config.threading.get_inter_op_parallelism_threads()}}
        if config.strategy == "multiworker":
            run.env["strategy"].update(multiworker.describe())
        run.write_json("env.json", run.env)
    return strategy


def fit(run, model: keras.Model, train: tf.data.Dataset, *, epochs: int,
        validation_data: tf.data.Dataset | None = None, name: str = "model",
        initial_epoch: int = 0, steps_per_epoch: int | None = None, callbacks=(),
        histogram_freq: int = 1, history_path: str | os.PathLike | None = None,
        log_dir: str | os.PathLike | None = None, state=(),
        loss_keys: tuple[str, ...] = ("loss",), probe=None,
        probe_plots: bool = False) -> keras.callbacks.History:
    """Trains one compiled model the way every lab does: resumable, logged, checked for NaN.

    The input becomes one endless seeded stream (`Backup.stream`), so a run killed with
    `kill -9` and resumed with `keras-labs run LAB --resume RUN` reads exactly the batches an
    uninterrupted run would have read and ends with the same weights.

    Args:
        run: The `runs.Run`.
        model: The compiled model.
        train: One epoch of training batches, shuffled by the pipeline (seeded), or an
            endless stream when `steps_per_epoch` is given.
        epochs: The epoch to train up to (as `fit`'s `epochs`).
        validation_data: Scored after every epoch for the curves; nothing is selected on it.
        name: This fit's name, unique within the run (its backup folder).
        initial_epoch: The epoch to start from (a later phase of the same model).
        steps_per_epoch: Batches per epoch of an endless `train`.
        callbacks: More callbacks, run before the loggers (what they add to the epoch logs is
            logged) and the backup.
        histogram_freq: Epochs between weight histograms (0: none).
        history_path: The CSV log (default: the run's history.csv).
        log_dir: The TensorBoard folder (default: the run's tb/).
        state: More variables the backup saves and restores (see `Backup`).
        loss_keys: The logged losses checked for NaN (`check_finite`).
        probe: A fixed batch of the model's inputs: every `probe_every_steps` steps of the
            config (0: never), TensorBoard gets the conv activations and filters or the
            recurrent hidden states on it, in `<log_dir>/instrumentation` (`instrumentation`).
        probe_plots: Also save the first conv layer's filters as PNG files under plots/.

    Returns:
        The History of every epoch of the run, those before a resume included.

    Raises:
        KerasLabsError: The loss became NaN or infinite.
    """
    backup = Backup(run, name, state=state)
    if probe is not None and run.config.probe_every_steps:
        callbacks = [*callbacks, *instrumentation.probe_callbacks(
            model, probe, instrumentation.probe_dir(run, log_dir), run.config.probe_every_steps,
            plots_dir=run.plots_dir if probe_plots else None)]
    stream, steps_per_epoch = backup.stream(train, model, steps_per_epoch=steps_per_epoch,
                                            initial_epoch=initial_epoch)
    history = model.fit(
        stream, steps_per_epoch=steps_per_epoch, validation_data=validation_data,
        epochs=epochs, initial_epoch=initial_epoch, shuffle=False, verbose=verbosity(),
        callbacks=standard_callbacks(run, histogram_freq, callbacks, backup=backup,
                                     history_path=history_path, log_dir=log_dir))
    check_finite(history, loss_keys)
    return history


def standard_callbacks(run, histogram_freq: int = 1, extra=(), *, backup: Backup | None = None,
                       history_path: str | os.PathLike | None = None,
                       log_dir: str | os.PathLike | None = None) -> list[keras.callbacks.Callback]:
    """TensorBoard (with weight histograms, and the profile of the config's `profile_batches`
    for its Profile tab), history.csv, a stop on NaN loss, and a backup.

    Args:
        run: The `runs.Run`.
        histogram_freq: Epochs between weight histograms (0: none).
        extra: More callbacks, run after the timer and before the loggers (so what they add
            to the epoch logs is logged) and the backup.
        backup: The fit's `Backup`; when it holds epochs of an interrupted run, history.csv
            keeps their rows and the resumed epochs are appended after them.
        history_path: The CSV log (default: the run's history.csv).
        log_dir: The TensorBoard folder (default: the run's tb/).
    """
    history_path = Path(history_path or run.history_path)
    resumed = backup is not None and backup.completed_epochs > 0
    if resumed:
        keep_history_rows(history_path, backup.completed_epochs)
    return [
        EpochTimer(),  # first, so the loggers below see epoch_time_s
        *extra,
        keras.callbacks.TensorBoard(log_dir=str(log_dir or run.tb_dir),
                                    histogram_freq=histogram_freq,
                                    profile_batch=profile_batch_range(
                                        run.config.profile_batches) or 0),
        keras.callbacks.CSVLogger(str(history_path), append=resumed),
        keras.callbacks.TerminateOnNaN(),
        *([backup] if backup is not None else []),  # last: it saves the complete epoch logs
    ]


def keep_history_rows(path: str | os.PathLike, epochs: int) -> None:
    """Keeps the header and the rows of the first `epochs` epochs of a CSV log (a resumed run
    trains the later ones again)."""
    path = Path(path)
    if not path.exists():
        return
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle))
    kept = rows[:1] + [row for row in rows[1:] if row and int(float(row[0])) < epochs]
    text = io.StringIO(newline="")
    csv.writer(text).writerows(kept)
    atomic_write(path, text.getvalue())


class Backup(keras.callbacks.BackupAndRestore):
    """Keras's `BackupAndRestore`, made whole for a run killed with `kill -9`.

    After every epoch it saves the model and optimizer, the layers' random-seed state (dropout
    draws; `.weights.h5` leaves it out) and the epoch logs so far. A `fit` with the same
    callback on a restarted run continues after the last saved epoch, and its returned History
    covers every epoch, so curves and metrics are those of the whole run.

    Each save is written into a fresh folder that then replaces the previous one, so a kill
    during a save leaves the previous state whole. With `--deterministic`, a resumed run ends
    with the metrics of an uninterrupted one when its input goes through `stream`.

    Several fits in one run each get their own name; a fit that had finished before the kill
    restores its final state and trains zero epochs. `runs.Run.finish` deletes the backups.

    Under `--strategy multiworker` every worker keeps its own backup (batch normalization's
    moving statistics differ between workers) of its last two epochs, and a restarted cluster
    continues from the newest epoch that every worker holds (`_state_every_worker_holds`).

    Args:
        run: The `runs.Run`; backups live in its `backup/` folder.
        name: This fit's name (one folder per fit).
        state: More variables saved and restored with the seed states: training state that
            Keras's weights leave out (a `tf.random.Generator`'s state).
    """

    def __init__(self, run, name: str = "model", state=()):
        self.directory = Path(run.backup_dir) / plain_name(name, "backup name")
        super().__init__(str(self.directory), save_freq="epoch", delete_checkpoint=False)
        self.extra_state = list(state)
        self._keep_previous = multiworker.started()
        self._state = (self._state_every_worker_holds() if self._keep_previous
                       else _latest_state(self.directory))
        metadata = json.loads((self._state / "metadata.json").read_text()) if self._state else {}
        self.completed_epochs = int(metadata.get("epoch", 0))
        self._earlier_logs: dict[str, list] = metadata.get("logs", {})
        self._logs: dict[str, list] = {}
        self._skip: tf.Variable | None = None  # see `_skip_once_training`

    def stream(self, dataset: tf.data.Dataset, model: keras.Model,
               steps_per_epoch: int | None = None, initial_epoch: int = 0
               ) -> tuple[tf.data.Dataset, int]:
        """The training input as one endless stream, positioned where the run left off.

        `fit(stream, steps_per_epoch=steps)` reads one iterator for the whole fit, so the input
        of every epoch is fixed by the pipeline's seed alone, not by how many iterators Keras
        happened to open; a resumed fit skips what the completed epochs read. A pipeline object
        must feed one fit only: a second fit would continue its random draws.

        Args:
            dataset: One epoch of batches (repeated here), or an endless stream when
                `steps_per_epoch` is given.
            model: The compiled model (its `steps_per_execution` decides how many batches an
                epoch reads; a model with a `batches_per_element` attribute, such as the
                cifar-cnn lab's `ChunkedExecution`, reads them in elements of that many).
            steps_per_epoch: Batches per epoch of an endless `dataset`.
            initial_epoch: The epoch `fit` starts at (its `initial_epoch`); the stream's first
                batch belongs to it.

        Returns:
            (stream, steps_per_epoch) for `fit`.
        """
        if steps_per_epoch is None:
            steps_per_epoch = int(dataset.cardinality())
            if steps_per_epoch == tf.data.UNKNOWN_CARDINALITY:
                steps_per_epoch = int(dataset.reduce(0, lambda count, _: count + 1))
            if steps_per_epoch < 1:
                raise ValueError(f"the training input has {steps_per_epoch} batches per epoch; "
                                 "it must be finite and not empty")
            dataset = dataset.repeat()
        per_execution = max(int(getattr(model, "steps_per_execution", 1) or 1), 1)
        read_per_epoch = math.ceil(steps_per_epoch / per_execution) * per_execution
        skip = max(self.completed_epochs - initial_epoch, 0) * read_per_epoch
        if skip and model.distribute_strategy is not tf.distribute.get_strategy():
            dataset = self._skip_once_training(dataset, skip)
        elif skip:
            dataset = dataset.skip(skip)
        return as_elements(dataset, model), steps_per_epoch

    def _skip_once_training(self, dataset: tf.data.Dataset, count: int) -> tf.data.Dataset:
        """`dataset` without its first `count` batches once training begins (`on_train_begin`).

        Under a `tf.distribute` strategy Keras 3.15's `fit` first opens an iterator of its input
        for one batch (to build the model) and drops it. That iterator draws reshuffle seeds
        from the pipeline's shuffle, which every iterator of a dataset shares: with the skip
        in place from the start, it would draw them at another position than in the
        uninterrupted run, and training would read other epochs. So it reads from the start,
        as there, and the batches to skip are dropped from the iterator that trains.
        """
        self._skip = tf.Variable(0, dtype=tf.int64, trainable=False, name="backup_skip")
        self._skip_to = count
        return (dataset.enumerate().filter(lambda index, _: index >= self._skip)
                .map(lambda _, batch: batch))

    def _state_every_worker_holds(self) -> Path | None:
        """The newest saved state that every worker of the cluster holds too (None: start
        afresh). A worker killed while it saved epoch n holds n - 1 where the others hold n
        already; each keeps its previous state, and they agree on the epoch (a collective op).
        """
        held = {}
        for path in (self.directory / "state", self.directory / "state.previous"):
            if (path / "metadata.json").exists():
                held[int(json.loads((path / "metadata.json").read_text()).get("epoch", 0))] = path
        epochs = sorted(held)[-2:]
        rows = multiworker.gather([-1] * (2 - len(epochs)) + epochs)
        shared = set.intersection(*({epoch for epoch in row if epoch >= 0} for row in rows))
        epoch = max(shared, default=0)
        if held and epoch < max(held):
            print(f"note: {self.directory.name}: continuing after epoch {epoch}, the last one "
                  f"every worker backed up (this worker holds epoch {max(held)})", flush=True)
        return held.get(epoch)

    def _states(self) -> list:
        return [*_seed_states(self.model), *self.extra_state]

    # BackupAndRestore's private hooks (compat.BACKUP_HOOKS say why they are overridden).
    def _load_model(self):
        if self._state is None:
            return
        if self.model.optimizer is not None and not self.model.optimizer.built:
            self.model.optimizer.build(self.model.trainable_variables)
        self.model.load_weights(str(self._state / "model.weights.h5"))
        with np.load(self._state / "seeds.npz", allow_pickle=False) as seeds:
            for index, variable in enumerate(self._states()):
                variable.assign(seeds[f"seed_{index}"])
        compat.set_initial_epoch(self.model, self.completed_epochs)
        print(f"resumed {self.directory.name} after epoch {self.completed_epochs}", flush=True)

    def on_epoch_end(self, epoch, logs=None):
        if not math.isfinite(float((logs or {}).get("loss", 0.0))):
            return  # a diverged epoch is not a state to resume from
        for key, value in (logs or {}).items():
            self._logs.setdefault(key, []).append(float(value))
        super().on_epoch_end(epoch, logs)

    def _save_model(self):
        logs = {key: self._earlier_logs.get(key, []) + self._logs.get(key, [])
                for key in {*self._earlier_logs, *self._logs}}
        state = self.directory / "state"
        with staged_folder(state, replace=not self._keep_previous) as staging:
            self.model.save_weights(str(staging / "model.weights.h5"))
            np.savez(staging / "seeds.npz", **{f"seed_{index}": np.asarray(variable.numpy())
                                               for index, variable in
                                               enumerate(self._states())})
            (staging / "metadata.json").write_text(json.dumps(
                {"epoch": self._current_epoch, "logs": logs}))
            if self._keep_previous and state.exists():
                # The state saved last becomes the previous one (the one before goes), and the
                # new one then takes its name: a whole state exists at every instant.
                previous = state.with_name("state.previous")
                shutil.rmtree(previous, ignore_errors=True)
                os.replace(state, previous)

    def on_train_begin(self, logs=None):
        self._current_epoch = self.completed_epochs
        if self._skip is not None:
            self._skip.assign(self._skip_to)
        super().on_train_begin(logs)

    def on_train_end(self, logs=None):
        history = getattr(self.model, "history", None)
        if self.completed_epochs and isinstance(history, keras.callbacks.History):
            history.history = {key: self._earlier_logs.get(key, []) + history.history.get(key, [])
                               for key in {*self._earlier_logs, *history.history}}
            history.epoch = list(range(self.completed_epochs)) + list(history.epoch)
        compat.set_initial_epoch(self.model, None)  # the next fit starts where it is told
        super().on_train_end(logs)


def as_elements(stream: tf.data.Dataset, model: keras.Model) -> tf.data.Dataset:
    """An endless stream of batches in the elements `model`'s `fit` reads: batched once more by
    its `batches_per_element` (a model that reads several batches as one element), else as is."""
    chunk = getattr(model, "batches_per_element", 1)
    return stream.batch(chunk, drop_remainder=True).prefetch(1) if chunk > 1 else stream


def _latest_state(directory: Path) -> Path | None:
    """The newest whole state a `Backup` saved in `directory`, or None."""
    for candidate in (directory / "state", directory / "state.previous"):
        if (candidate / "metadata.json").exists():
            return candidate
    return None


def _backup_metadata(workdir: str | os.PathLike, name: str) -> dict:
    state = _latest_state(Path(workdir) / "backup" / plain_name(name, "backup name"))
    return json.loads((state / "metadata.json").read_text()) if state else {}


def backed_up_epochs(workdir: str | os.PathLike, name: str = "model") -> int:
    """Epochs the fit `name` of the run folder `workdir` saved in its `Backup` (0: none); it
    reads the folder only, so a lab can refuse a resume before it reopens the run."""
    return int(_backup_metadata(workdir, name).get("epoch", 0))


def backed_up_seconds(workdir: str | os.PathLike, name: str = "model") -> float:
    """Training time (`EpochTimer`'s `epoch_time_s`) of the epochs that fit saved: what a
    resumed run has already spent of a time budget."""
    return float(sum(_backup_metadata(workdir, name).get("logs", {}).get("epoch_time_s", [])))


def _seed_states(model: keras.Model) -> list:
    """The state variables of the model's random-seed generators (dropout, noise layers)."""
    weights = {id(weight) for weight in model.weights}
    return [variable for variable in model.variables if id(variable) not in weights]


def check_finite(history: keras.callbacks.History, keys: tuple[str, ...] = ("loss",)) -> None:
    """Raises a user-facing error when training diverged (a NaN or infinite loss in `keys`)."""
    for key in keys:
        if any(not math.isfinite(value) for value in history.history.get(key, [])):
            raise KerasLabsError(f"training diverged: the {key} became NaN or infinite; lower "
                                 "the learning_rate (nothing was exported)")


def verbosity() -> int:
    """Keras progress bars on a terminal, one line per epoch in logs."""
    return 1 if sys.stdout.isatty() else 2


def predict_labels(model: keras.Model, dataset: tf.data.Dataset) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(true labels, predicted labels, probabilities) over a batched (x, y) dataset."""
    labels, outputs = predict_logits(model, dataset)
    probabilities = outputs.astype(np.float32)
    return labels, probabilities.argmax(axis=-1), probabilities


def classifier_scores(model: keras.Model, test, history, split: dict,
                      num_classes: int = 10) -> dict:
    """The end of a classifier lab's run: the test split scored once (accuracy, per-class,
    confusion matrix, loss), the last epoch's training and validation figures, and the record
    of the validation split."""
    labels, predictions, probabilities = predict_labels(model, test)
    metrics = classification_metrics(labels, predictions, num_classes=num_classes)
    metrics["test_loss"] = cross_entropy(labels, probabilities)
    metrics["train_accuracy"] = float(history.history["accuracy"][-1])
    if "val_accuracy" in history.history:
        metrics["validation_accuracy"] = float(history.history["val_accuracy"][-1])
        metrics["validation_loss"] = float(history.history["val_loss"][-1])
    metrics["validation_split"] = split
    return metrics


def equal_update_epochs(epochs: int, report_examples: int, training_examples: int) -> int:
    """`epochs`, scaled up so that a run over `training_examples` takes the gradient steps of
    `epochs` epochs over `report_examples` (a seed report's training set); unscaled when
    `report_examples` is 0 or the training set is not smaller."""
    if not report_examples or training_examples >= report_examples:
        return epochs
    return max(epochs, round(epochs * report_examples / training_examples))


def cross_entropy(labels: np.ndarray, probabilities: np.ndarray) -> float:
    """Mean sparse categorical cross-entropy of predicted probabilities, clipped as Keras clips it.

    Not `sklearn.metrics.log_loss`: it renormalizes every row and clips at the float's epsilon,
    not at Keras's 1e-7, so it would not equal the loss Keras reports on the same predictions.
    """
    chosen = probabilities[np.arange(len(labels)), labels.astype(int)]
    return float(-np.log(np.clip(chosen, 1e-7, 1.0)).mean())


def classification_metrics(labels: np.ndarray, predictions: np.ndarray,
                           num_classes: int) -> dict:
    """test_accuracy (a fraction), per_class_accuracy (one value per class), confusion matrix."""
    confusion = sklearn.metrics.confusion_matrix(labels.astype(int), predictions.astype(int),
                                                 labels=np.arange(num_classes))
    support = confusion.sum(axis=1)
    per_class = np.where(support > 0, np.diag(confusion) / np.maximum(support, 1), np.nan)
    return {
        "test_accuracy": float((labels == predictions).mean()),
        "per_class_accuracy": [None if np.isnan(v) else round(float(v), 4) for v in per_class],
        "confusion_matrix": confusion.tolist(),
        "test_examples": int(len(labels)),
    }


def predict_logits(model: keras.Model, dataset: tf.data.Dataset, *,
                   test_time_flip: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(true labels, model outputs) over a batched (image, label) dataset, in inference mode;
    with `test_time_flip`, the mean of the outputs of each image and of its mirror image."""
    labels, outputs = [], []
    for images, batch_labels in dataset:
        batch = np.asarray(model(images, training=False))
        if test_time_flip:
            mirrored = model(tf.image.flip_left_right(images), training=False)
            batch = (batch + np.asarray(mirrored)) / 2
        outputs.append(batch)
        labels.append(batch_labels.numpy())
    return np.concatenate(labels), np.concatenate(outputs)


def history_metrics(history: keras.callbacks.History, batch_size: int) -> dict:
    """A classifier fit's (its accuracy metric named "accuracy") last `train_accuracy` and
    `train_loss` (and `validation_accuracy`, `validation_loss`), per-epoch `losses` ({"train",
    "validation"}, 4 decimals) and `epoch_time_s`, and its best `train_images_per_s`."""
    logs = history.history
    throughput = max(steps * batch_size / seconds for steps, seconds
                     in zip(logs["epoch_steps"], logs["epoch_time_s"], strict=True))
    metrics = {"train_accuracy": float(logs["accuracy"][-1]), "train_loss": float(logs["loss"][-1]),
               "losses": {"train": [round(v, 4) for v in logs["loss"]],
                          "validation": [round(v, 4) for v in logs.get("val_loss", [])]},
               "epoch_time_s": [round(t, 2) for t in logs["epoch_time_s"]],
               "train_images_per_s": round(throughput, 1)}
    if "val_accuracy" in logs:
        metrics["validation_accuracy"] = float(logs["val_accuracy"][-1])
        metrics["validation_loss"] = float(logs["val_loss"][-1])
    return metrics
