"""Recurrent language models shared by the `char-rnn` and `word-rnn` labs.

One model definition serves training, evaluation and generation:
`keras_labs.models.language.build_language_model` returns a training model (token ids in,
next-token logits out) and a *step model* that shares its layers and also takes and returns the
recurrent states. The step model runs the whole prime
through the RNN in one call and then samples one token at a time from the kept state, so a
10,000-character prime costs one pass, not 10,000 re-reads.

`TextGenerator` wraps the step model, the vocabulary and the tokenizer in a `tf.Module` whose
`tf.function` is both the labs' own sampler and the exported SavedModel's serving signature
(prime string, length, temperature in; text out), so the two cannot drift apart.
"""

from __future__ import annotations

import math
import os
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

import keras
import matplotlib.pyplot as plt
import numpy as np
import tensorflow as tf

from keras_labs import ConfigError, devices, export, optimization, training, visualization
from keras_labs.config import LanguageModelConfig
from keras_labs.data import text as text_data
from keras_labs.models import language

# The seed reports' primes (exercise 4): both labs continue them, out-of-vocabulary ones (digits,
# "Z"...) included.
SEED_PRIMES = ("2 b3n", "bg09Z", "qwert", "The", "What is", "Shall I give",
               "X087hNYB BHN BYFVuhsdbs")

# --------------------------------------------------------------------------------------------
# Training helpers


class LanguageModelMetrics(keras.callbacks.Callback):
    """Adds perplexity and bits per token (and per character) to the logs, from the loss.

    Derived from the mean cross-entropy in nats, so they cost nothing per step. Put it before
    the loggers (CSVLogger, TensorBoard) so they record the additions.

    Args:
        token_name: "char" or "word": the bits metric is called `bits_per_<token_name>`.
        chars_per_token: Mean characters per token of the validation text; adds
            `val_bits_per_char` for word models so they compare with character models.
    """

    def __init__(self, token_name: str = "char", chars_per_token: float | None = None):
        super().__init__()
        self.token_name = token_name
        self.chars_per_token = chars_per_token

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        for prefix in ("", "val_"):
            loss = logs.get(f"{prefix}loss")
            if loss is None:
                continue
            logs[f"{prefix}perplexity"] = math.exp(min(loss, 50.0))
            logs[f"{prefix}bits_per_{self.token_name}"] = loss / math.log(2)
            if self.chars_per_token and self.token_name != "char" and prefix == "val_":
                logs["val_bits_per_char"] = loss / self.chars_per_token / math.log(2)


class TimeBudget(keras.callbacks.Callback):
    """Stops training once `minutes` of wall-clock time have passed since training began.

    Args:
        minutes: The budget (0: none).
        spent_seconds: Training time already spent before this fit (a resumed run).
    """

    def __init__(self, minutes: float, spent_seconds: float = 0.0):
        super().__init__()
        self.seconds = minutes * 60.0
        self.spent_seconds = spent_seconds
        self.stopped_at_step = None

    def on_train_begin(self, logs=None):
        self._start = time.perf_counter() - self.spent_seconds

    def on_train_batch_end(self, batch, logs=None):
        if self.seconds and time.perf_counter() - self._start > self.seconds:
            self.stopped_at_step = int(self.model.optimizer.iterations.numpy())
            self.model.stop_training = True


def language_windows(config: LanguageModelConfig, train_ids: np.ndarray,
                     validation_ids: np.ndarray) -> tuple[tf.data.Dataset, tf.data.Dataset]:
    """The training windows, overlapping (a quarter window apart unless `window_stride` says
    otherwise) and reshuffled every pass, and the validation windows, side by side."""
    stride = config.window_stride or max(config.sequence_length // 4, 1)
    train = text_data.training_windows(train_ids, sequence_length=config.sequence_length,
                             batch_size=config.batch_size, stride=stride, seed=config.seed)
    validation = text_data.text_windows(validation_ids, sequence_length=config.sequence_length,
                                        batch_size=256, training=False)
    return train, validation


def compile_language_model(model: keras.Model, config: LanguageModelConfig,
                           strategy: tf.distribute.Strategy | None = None) -> None:
    """Compiles `model` as the language labs train it: Adam on `config`'s warm-up + cosine
    schedule, `config.clipnorm`, cross-entropy on logits, `config.steps_per_execution`."""
    schedule = optimization.learning_rate_schedule(
        config.learning_rate, config.steps, "cosine", warmup_steps=config.warmup_steps,
        final_fraction=config.final_learning_rate)
    model.compile(optimizer=keras.optimizers.Adam(schedule, clipnorm=config.clipnorm or None),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  steps_per_execution=devices.steps_per_execution(
                      config.steps_per_execution, strategy or tf.distribute.get_strategy()))


def choose_compute_dtype(choice: str) -> tuple[str, str]:
    """The dtype a language model's recurrence runs in for the config's `compute_dtype`, and a
    note when it falls back: bfloat16 needs a GPU or a CPU with bfloat16 arithmetic (emulated,
    it is slower than float32); elsewhere float32, and the note says why."""
    if (choice != "bfloat16" or tf.config.list_physical_devices("GPU")
            or devices.cpu_has_bfloat16()):
        return choice, ""
    return "float32", ("compute_dtype=bfloat16 needs a GPU or a CPU with AVX512-BF16 or AMX; "
                       "running in float32")


def fit_language_model(config: LanguageModelConfig, run, strategy, train: tf.data.Dataset,
                       validation: tf.data.Dataset, vocabulary_size: int, *, name: str,
                       metrics_callback: LanguageModelMetrics,
                       probe_ids: np.ndarray | None = None) -> dict:
    """Builds, compiles and trains a language model as `config` says; logs every `log_every` steps.

    One Keras "epoch" is `log_every` steps, so the curves (TensorBoard, history.csv) get a
    point every `log_every` steps. Training stops early after `config.max_minutes`. The first
    windows of `probe_ids` (the validation text) are the fixed probe batch of TensorBoard's
    hidden-state histograms (`training.fit`).

    Returns:
        {"model", "step_model", "state_sizes", "history" (Keras History), "metrics": {"steps"
         (trained), "train_time_s", "train_cpu_time_s", "load_average" (before, after: how
         contended the timing was on a shared machine), "stopped_by_time_budget",
         "validation_loss_windowed", "train_loss", "vocabulary_size", "parameters"}}.
    """
    compute_dtype, note = choose_compute_dtype(config.compute_dtype)
    if note:
        print(f"note: {note}", file=sys.stderr, flush=True)
    run.env["compute_dtype"] = {"asked": config.compute_dtype, "used": compute_dtype}
    run.write_json("env.json", run.env)
    with strategy.scope():
        model, step_model, state_sizes = language.build_language_model(
            vocabulary_size, cell=config.cell, units=config.units, num_layers=config.num_layers,
            embedding_dim=config.embedding_dim, dropout=config.dropout,
            compute_dtype=compute_dtype, name=name, implementation=config.implementation)
        compile_language_model(model, config, strategy)
    model.summary(print_fn=lambda line, **_: print(line))

    if strategy.num_replicas_in_sync > 1:
        validation = _even_batches(validation, strategy.num_replicas_in_sync)
    # `keras-labs run ... --resume RUN` continues a killed run after its last logged interval,
    # on the windows an uninterrupted run would read next and with what is left of the budget.
    budget = TimeBudget(config.max_minutes,
                        spent_seconds=training.backed_up_seconds(run.workdir))
    load_before = os.getloadavg()
    started, cpu_started = time.perf_counter(), time.process_time()
    with warnings.catch_warnings():
        # Keras warns when the validation windows are not a multiple of steps_per_execution;
        # the last partial execution is still scored.
        warnings.filterwarnings("ignore", message="Your input ran out of data")
        history = training.fit(run, model, train, steps_per_epoch=config.log_every,
                               epochs=math.ceil(config.steps / config.log_every),
                               validation_data=validation, callbacks=[metrics_callback, budget],
                               probe=None if probe_ids is None else probe_windows(
                                   probe_ids, config.sequence_length))
    train_seconds = time.perf_counter() - started
    train_cpu_seconds = time.process_time() - cpu_started
    steps_done = budget.stopped_at_step or len(history.history["loss"]) * config.log_every
    return {"model": model, "step_model": step_model, "state_sizes": state_sizes,
            "history": history, "metrics": {
                "steps": int(min(steps_done, config.steps)),
                "train_time_s": round(train_seconds, 1),
                "train_cpu_time_s": round(train_cpu_seconds, 1),
                "load_average": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
                "stopped_by_time_budget": budget.stopped_at_step is not None,
                "validation_loss_windowed": float(history.history["val_loss"][-1]),
                "train_loss": float(history.history["loss"][-1]),
                "vocabulary_size": vocabulary_size,
                "parameters": int(model.count_params())}}


def curve(history: dict[str, list[float]], log_every: int, last_step: int) -> list[dict]:
    """One row per logged interval: the step it ended at, the mean training loss and perplexity
    over it, and the windowed validation loss and perplexity after it (both labs' `curve`)."""
    columns = {"loss": "train_loss", "perplexity": "train_perplexity",
               "val_loss": "validation_loss_windowed", "val_perplexity": "validation_perplexity"}
    rows = []
    for index in range(len(history["loss"])):
        row = {"step": min((index + 1) * log_every, last_step)}
        row.update({name: round(float(history[key][index]), 4)
                    for key, name in columns.items() if key in history})
        rows.append(row)
    return rows


def probe_windows(ids: np.ndarray, sequence_length: int, count: int = 32) -> np.ndarray:
    """The first `count` (at most) whole windows of `ids`, (windows, sequence_length) int32."""
    count = max(min(count, len(ids) // sequence_length), 1)
    return np.asarray(ids[:count * sequence_length], np.int32).reshape(count, -1)


def write_outputs(run, config: LanguageModelConfig, fitted: dict,
                  vocabulary: text_data.Vocabulary, *, level: str, primes: Sequence[str],
                  data_kind: str) -> dict:
    """Draws the curves, writes the generations for `primes` to samples.txt and exports the
    generator.

    Args:
        run: The `runs.Run`.
        config: The lab's config (logging interval, sampling settings, export folder, seed).
        fitted: What `fit_language_model` returned.
        vocabulary: The model's vocabulary.
        level: "char" or "word".
        primes: The texts to continue.
        data_kind: "full" or "sample", for the curves' title.

    Returns:
        {"samples": one dict per prime, "export": the SavedModel folder}.
    """
    tokens = f", {len(vocabulary):,} tokens" if level == "word" else ""
    plot_language_curves(fitted["history"].history, run.plot_path("curves"),
                         steps_per_point=config.log_every, last_step=fitted["metrics"]["steps"],
                         token_name=level, title=f"{run.lab} ({data_kind} data, "
                         f"{config.cell.upper()} {config.num_layers}x{config.units}{tokens})")
    generator = TextGenerator(fitted["step_model"], fitted["state_sizes"], vocabulary,
                              level=level, top_k=config.top_k, seed=config.seed)
    samples = write_samples(run.workdir / "samples.txt", generator, primes,
                            length=config.sample_length, temperature=config.temperature,
                            top_k=config.top_k)
    folder = export.export_model(
        fitted["model"], run, write=generator.save,
        saved_model_only="the generator turns a prime string into text with TensorFlow string "
                         "ops and a sampling loop, which neither ONNX nor LiteRT converts")
    return {"samples": samples, "export": str(folder)}


def _even_batches(dataset: tf.data.Dataset, replicas: int, batch_size: int = 256
                  ) -> tf.data.Dataset:
    """Rebatches evaluation windows so that every batch splits evenly over `replicas`.

    A last batch that does not (93 windows over two replicas) makes Keras 3.15's evaluation
    under MirroredStrategy add the replicas' outputs with an `AddN` of different shapes. At most
    `replicas - 1` windows are left out.
    """
    windows = dataset.unbatch()
    count = int(windows.reduce(0, lambda total, _: total + 1))
    return windows.take(count - count % replicas).batch(batch_size - batch_size % replicas)


def held_out_loss(fitted: dict, config: LanguageModelConfig, ids: np.ndarray, *, start_id: int,
                  strategy: tf.distribute.Strategy | None = None) -> dict:
    """Scores a held-out text (the test split, once, at the end) both ways the labs report.

    Returns:
        {"loss": nats per token with the state carried across the whole text (`stateful_loss`),
         "loss_windowed": nats per token over `sequence_length` windows, as the curves score,
         "tokens": tokens scored}.
    """
    nats, count = stateful_loss(fitted["step_model"], fitted["state_sizes"], ids,
                                start_id=start_id)
    windows = text_data.text_windows(ids, sequence_length=config.sequence_length,
                                     batch_size=256, training=False)
    replicas = (strategy or tf.distribute.get_strategy()).num_replicas_in_sync
    if replicas > 1:
        windows = _even_batches(windows, replicas)
    windowed = fitted["model"].evaluate(windows, verbose=0, return_dict=True)["loss"]
    return {"loss": nats / count, "loss_windowed": float(windowed), "tokens": count}


def stateful_loss(step_model: keras.Model, state_sizes: Sequence[int], ids: np.ndarray, *,
                  start_id: int, streams: int = 8, chunk: int = 256) -> tuple[float, int]:
    """Summed cross-entropy (nats) of every token of `ids`, each given all tokens before it.

    The text is cut into `streams` contiguous pieces read in parallel, `chunk` tokens at a time,
    with the recurrent state carried from chunk to chunk, so every token but the first of each
    piece sees a long context (as it does during generation). The very first token is predicted
    from `start_id` (a newline), so all `len(ids)` tokens are scored.

    Returns:
        (total nats, number of tokens scored).
    """
    ids = np.asarray(ids, dtype=np.int32)
    inputs = np.concatenate([[start_id], ids[:-1]]).astype(np.int32)
    streams = max(1, min(streams, len(ids)))
    length = len(ids) // streams
    total, count = 0.0, 0

    # One trace per call: the chunks differ in length (the last of a piece) and in rows (the
    # leftover piece), so without a signature of unknown dimensions every new shape traced
    # again, and TensorFlow warned of retracing.
    tokens = tf.TensorSpec((None, None), tf.int32)
    state_specs = [tf.TensorSpec((None, size), tf.float32) for size in state_sizes]

    @tf.function(input_signature=[tokens, tokens, state_specs])
    def score(x, y, states):
        logits, *states = step_model([x, *states], training=False)
        losses = keras.losses.sparse_categorical_crossentropy(y, logits, from_logits=True)
        return tf.reduce_sum(tf.cast(losses, tf.float64)), states

    # The bulk: `streams` equal pieces in parallel; then the few leftover tokens in one stream.
    pieces = [(inputs[:streams * length].reshape(streams, length),
               ids[:streams * length].reshape(streams, length))]
    if len(ids) > streams * length:
        pieces.append((inputs[None, streams * length:], ids[None, streams * length:]))
    for x, y in pieces:
        states = language.zero_states(state_sizes, x.shape[0])
        for begin in range(0, x.shape[1], chunk):
            nats, states = score(tf.constant(x[:, begin:begin + chunk]),
                                 tf.constant(y[:, begin:begin + chunk]), states)
            total += float(nats)
            count += int(y[:, begin:begin + chunk].size)
    return total, count


# --------------------------------------------------------------------------------------------
# Generation


class TextGenerator(tf.Module):
    """Samples text from a trained step model; also the exported SavedModel.

    `generate(prime, length, temperature, top_k)` tokenizes the prime (unknown tokens become
    the out-of-vocabulary id 0; an empty prime becomes a newline), runs it through the RNN in one
    call, then samples `length` tokens, never the out-of-vocabulary one. It returns the prime
    followed by the sample (`text`), the sample alone (`continuation`) and the distinct prime
    tokens the vocabulary does not know (`unknown`). `serve(prime, length, temperature)` is the
    same with the `top_k` given at construction (the SavedModel's `serving_default`).

    Args:
        step_model: The step model of `build_language_model`.
        state_sizes: Its state widths.
        vocabulary: The model's `keras_labs.data.text.Vocabulary` (id 0: out of vocabulary).
        level: "char" or "word" (how primes are split and samples joined).
        top_k: Default top-k cut-off of `serve` (0: sample from the whole distribution).
        seed: Seed of the sampler's random generator (saved with the module).
    """

    def __init__(self, step_model: keras.Model, state_sizes: Sequence[int],
                 vocabulary: text_data.Vocabulary, level: str = "char", top_k: int = 0,
                 seed: int = 0):
        super().__init__(name=f"{level}_generator")
        if level not in ("char", "word"):
            raise ValueError(f"level={level!r} is not valid; valid values: char, word")
        self.step_model = step_model
        self.state_sizes = list(state_sizes)
        self.level = level
        self.default_top_k = tf.constant(int(top_k), tf.int32)
        self.tokens = tf.constant(vocabulary.tokens)
        self.vocabulary_size = len(vocabulary)
        keys = tf.constant(vocabulary.tokens[1:])
        values = tf.range(1, len(vocabulary), dtype=tf.int64)
        self.table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(keys, values),
            default_value=text_data.Vocabulary.OOV_ID)
        self.newline_id = tf.constant(vocabulary.index.get("\n", text_data.Vocabulary.OOV_ID),
                                      tf.int32)
        self.rng = tf.random.Generator.from_seed(seed)

    def _split(self, prime):
        if self.level == "char":
            return tf.strings.unicode_split(prime, "UTF-8")
        spaced = tf.strings.regex_replace(prime, text_data.PUNCTUATION, r" \1 ")
        spaced = tf.strings.regex_replace(spaced, text_data.NEWLINE, f" {text_data.NEWLINE} ")
        tokens = tf.strings.split(spaced, sep=" ")
        return tf.boolean_mask(tokens, tf.strings.length(tokens) > 0)

    def _join(self, tokens, after_prime):
        if self.level == "char":
            return tf.strings.reduce_join(tokens)
        text = tf.strings.reduce_join(tokens, separator=" ")
        # A space separates the sample from a prime that ends in a word.
        text = tf.cond(after_prime & (tf.size(tokens) > 0), lambda: " " + text, lambda: text)
        text = tf.strings.regex_replace(text, r" ?\n ?", "\n")
        return tf.strings.regex_replace(text, r" ([.,;:!?])", r"\1")

    @tf.function(input_signature=[
        tf.TensorSpec([], tf.string, name="prime"), tf.TensorSpec([], tf.int32, name="length"),
        tf.TensorSpec([], tf.float32, name="temperature"),
        tf.TensorSpec([], tf.int32, name="top_k")])
    def generate(self, prime, length, temperature, top_k):
        tokens = self._split(prime)
        ids = tf.cast(self.table.lookup(tokens), tf.int32)
        unknown, _ = tf.unique(tf.boolean_mask(tokens,
                                               tf.equal(ids, text_data.Vocabulary.OOV_ID)))
        ids = tf.cond(tf.size(ids) > 0, lambda: ids, lambda: tf.reshape(self.newline_id, [1]))
        states = language.zero_states(self.state_sizes, 1)
        logits, *states = self.step_model([ids[None, :], *states], training=False)
        last = logits[0, -1]
        temperature = tf.maximum(temperature, 1e-3)
        oov_mask = tf.one_hot(text_data.Vocabulary.OOV_ID, self.vocabulary_size, on_value=-1e9,
                              off_value=0.0)
        top_k = tf.clip_by_value(top_k, 0, self.vocabulary_size)
        length = tf.maximum(length, 0)

        def body(step, last, states, output):
            scaled = last / temperature + oov_mask
            kth = tf.cond(top_k > 0,
                          lambda: tf.math.top_k(scaled, k=tf.maximum(top_k, 1)).values[-1],
                          lambda: tf.reduce_min(scaled))
            scaled = tf.where(scaled < kth, tf.fill(tf.shape(scaled), -1e9), scaled)
            seed = self.rng.make_seeds(1)[:, 0]
            next_id = tf.random.stateless_categorical(scaled[None, :], 1, seed, dtype=tf.int32)
            logits, *states = self.step_model([next_id, *states], training=False)
            return step + 1, logits[0, -1], states, output.write(step, next_id[0, 0])

        _, _, _, output = tf.while_loop(
            lambda step, *_: step < length, body,
            (tf.constant(0), last, states, tf.TensorArray(tf.int32, size=length)))
        sampled = tf.gather(self.tokens, output.stack())
        continuation = self._join(sampled, after_prime=tf.strings.length(prime) > 0)
        return {"text": prime + continuation, "continuation": continuation, "unknown": unknown}

    @tf.function(input_signature=[
        tf.TensorSpec([], tf.string, name="prime"), tf.TensorSpec([], tf.int32, name="length"),
        tf.TensorSpec([], tf.float32, name="temperature")])
    def serve(self, prime, length, temperature):
        return self.generate(prime, length, temperature, self.default_top_k)

    def save(self, path: str | os.PathLike) -> None:
        """Writes the SavedModel (`serving_default`: prime, length, temperature -> text)."""
        tf.saved_model.save(self, str(path), signatures={
            "serving_default": self.serve.get_concrete_function(),
            "generate": self.generate.get_concrete_function()})


def load_generator(path: str | os.PathLike):
    """Loads an exported char-rnn or word-rnn generator (a SavedModel: no pickle, no code).

    Raises:
        ConfigError: `path` is not a SavedModel, or not a text generator's.
    """
    path = Path(path)
    if not (path / "saved_model.pb").is_file():
        raise ConfigError(f"{str(path)!r} is not a SavedModel folder (no saved_model.pb); give "
                          "the export of a char-rnn or word-rnn run (saved_models/<lab>/<version>)")
    try:
        generator = tf.saved_model.load(str(path))
    except Exception as error:  # noqa: BLE001 (protobuf, IO and TF errors: all mean "unusable")
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ConfigError(f"cannot load the SavedModel {str(path)!r}: {reason}") from None
    if not hasattr(generator, "generate"):
        raise ConfigError(f"{str(path)!r} is not a text generator (no `generate` function); give "
                          "the export of a char-rnn or word-rnn run")
    return generator


def sample(generator, prime: str, length: int, temperature: float = 1.0,
           top_k: int = 0) -> tuple[str, list[str]]:
    """(prime + generated text, the prime's unknown tokens) from a `TextGenerator` or a reloaded
    one."""
    result = generator.generate(tf.constant(prime), tf.constant(length, tf.int32),
                                tf.constant(temperature, tf.float32), tf.constant(top_k, tf.int32))
    unknown = [token.decode("utf-8") for token in result["unknown"].numpy()]
    return result["text"].numpy().decode("utf-8"), unknown


def write_samples(path: str | os.PathLike, generator, primes: Sequence[str], *, length: int,
                  temperature: float, top_k: int) -> list[dict]:
    """Generates from every prime and writes them to `path`, each headed by its prime.

    Returns:
        One {"prime", "text", "unknown"} record per prime.
    """
    records = []
    lines = [f"# temperature {temperature}, top_k {top_k or 'off'}, {length} tokens per sample\n"]
    for prime in primes:
        generated, unknown = sample(generator, prime, length, temperature, top_k)
        records.append({"prime": prime, "text": generated, "unknown": unknown})
        shown = ", ".join(repr(token) for token in unknown) if unknown else "none"
        lines.append(f"=== prime {prime!r} (unknown to the vocabulary, read as out-of-vocabulary: "
                     f"{shown})\n{generated}\n")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines))
    return records


# --------------------------------------------------------------------------------------------
# Plots


def plot_language_curves(history: dict[str, list[float]], path: str | os.PathLike, *,
                         steps_per_point: int, token_name: str = "char", title: str = "",
                         last_step: int | None = None) -> str:
    """Loss (nats per token), perplexity and bits per token against training steps.

    `last_step`: the step training really ended at (a time budget can stop the last interval
    early), so the last point sits where it was measured.
    """
    panels = [("loss", f"loss (nats per {token_name})"), ("perplexity", "perplexity"),
              (f"bits_per_{token_name}", f"bits per {token_name}")]
    if token_name != "char" and "val_bits_per_char" in history:
        panels.append(("bits_per_char", "validation bits per char"))
    figure, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 3.6), squeeze=False)
    count = len(history.get("loss", history.get("val_loss", [])))
    steps = [(index + 1) * steps_per_point for index in range(count)]
    if steps and last_step is not None:
        steps[-1] = min(steps[-1], last_step)
    for axis, (key, label) in zip(axes[0], panels, strict=True):
        if key in history:
            axis.plot(steps, history[key], label="train")
        if f"val_{key}" in history:
            axis.plot(steps, history[f"val_{key}"], label="validation")
        axis.set_xlabel("training step")
        axis.set_ylabel(label)
        axis.grid(alpha=0.3)
        axis.legend()
    return visualization.save_figure(figure, path, title)
