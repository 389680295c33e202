"""Lab `char-rnn`: a character-level GRU/LSTM language model on Tiny Shakespeare.

Seed reports 000 and 001, exercise 4: train a char-RNN for "2000 epochs" (one batch of random
chunks each) logging the loss every 100, then generate from the primes "2 b3n", "bg09Z",
"qwert", "The", "What is", "Shall I give" and "X087hNYB BHN BYFVuhsdbs". Several of those hold
characters Shakespeare never uses (digits, "Z"...): they read as the out-of-vocabulary id and the
samples say which they were.

The model is an embedding, a stack of GRU or LSTM layers and a softmax over the characters
(`keras_labs.text`). It trains on the train split of `tiny_shakespeare` through tfds, in windows
of characters with the targets shifted by one; the validation split is held out and scored every
`log_every` steps (loss, perplexity, bits per character, in TensorBoard, history.csv and a PNG).
At the end the whole validation text is scored once more with the state carried across it
(every character sees everything before it, as in generation): that is `validation_loss` in
metrics.json. The run writes its samples to samples.txt and exports a generator SavedModel whose
serving signature takes a prime, a length and a temperature and returns text.

Presets: `seed` is the reports' schedule (spro/char-rnn.pytorch defaults: 2-layer GRU-100, Adam
0.01, chunks of 200, batches of 100, 2000 steps); `best` is the recipe for the issue's target
(validation loss <= 1.45 nats/char within 15 minutes of 2-core CPU training); `quick` is the tour.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
import warnings

import keras

from keras_labs import ConfigError, data, export, runs, text, training
from keras_labs.config import LabConfig, option

NAME = "char-rnn"
DESCRIPTION = ("char-level GRU/LSTM on Tiny Shakespeare (reports 000/001 ex. 4): perplexity, "
               "bits/char, samples, generator SavedModel")

SEED_PRIMES = ("2 b3n", "bg09Z", "qwert", "The", "What is", "Shall I give",
               "X087hNYB BHN BYFVuhsdbs")


@dataclasses.dataclass(frozen=True)
class Config(LabConfig):
    steps: int = option(2000, minimum=1, help="training steps (the reports' 'epochs': one batch each)")
    log_every: int = option(100, minimum=1, help="steps between validation points of the curves")
    batch_size: int = option(100, minimum=1, maximum=65536, help="windows per step")
    sequence_length: int = option(200, minimum=2, help="characters per training window")
    window_stride: int = option(0, minimum=0,
                                help="characters between window starts (0: a quarter window)")
    cell: str = option("gru", choices=("gru", "lstm"))
    units: int = option(100, minimum=1, help="width of each recurrent layer")
    num_layers: int = option(2, minimum=1, maximum=8)
    embedding_dim: int = option(100, minimum=1)
    dropout: float = option(0.0, minimum=0.0, maximum=0.9, help="on the embedding and between layers")
    learning_rate: float = option(0.01, positive=True, maximum=1.0, help="peak Adam learning rate")
    warmup_steps: int = option(0, minimum=0, help="linear learning-rate warm-up")
    final_learning_rate: float = option(1.0, minimum=0.0, maximum=1.0,
                                        help="cosine decay to this fraction of the peak (1: constant)")
    clipnorm: float = option(1.0, minimum=0.0, help="gradient norm clip (0: off)")
    compute_dtype: str = option("float32", choices=("float32", "bfloat16"),
                                help="matrix products in bfloat16 (fast on AVX512-BF16 CPUs)")
    steps_per_execution: int = option(1, minimum=1, help="train steps per tf.function call")
    max_minutes: float = option(0.0, minimum=0.0, help="stop training after this wall time (0: off)")
    train_chars: int = option(0, minimum=0, help="use only the first N training characters (0: all)")
    validation_chars: int = option(0, minimum=0,
                                   help="score only the first N validation characters (0: all)")
    sample_length: int = option(300, minimum=0, help="characters generated per prime")
    temperature: float = option(0.8, positive=True, maximum=10.0)
    top_k: int = option(0, minimum=0, help="sample among the k likeliest characters (0: all)")

    def check(self) -> None:
        if self.log_every > self.steps:
            raise ConfigError(f"log_every={self.log_every} is not valid; it must be <= "
                              f"steps={self.steps}")
        if self.log_every % self.steps_per_execution:
            raise ConfigError(f"log_every={self.log_every} is not valid; it must be a multiple "
                              f"of steps_per_execution={self.steps_per_execution}")
        if self.warmup_steps >= self.steps:
            raise ConfigError(f"warmup_steps={self.warmup_steps} is not valid; it must be < "
                              f"steps={self.steps}")


PRESETS = {
    "seed": Config(),
    # Measured on the 2-core CPU: see the README's char-rnn section for the curve and timing.
    "best": Config(steps=2400, log_every=200, batch_size=128, sequence_length=128,
                   window_stride=32, cell="gru", units=512, num_layers=2, embedding_dim=64,
                   dropout=0.1, learning_rate=3e-3, warmup_steps=100, final_learning_rate=0.02,
                   clipnorm=1.0, compute_dtype="bfloat16", steps_per_execution=10,
                   top_k=0),
    "quick": Config(steps=120, log_every=40, batch_size=64, sequence_length=64, units=128,
                    num_layers=1, embedding_dim=32, learning_rate=1e-2, final_learning_rate=0.1,
                    validation_chars=20000, sample_length=120, steps_per_execution=20),
}
DEFAULT_PRESET = "seed"


def run(config: Config, workdir: str) -> dict:
    """Trains the character model, scores it, samples the seed primes and exports a generator."""
    run = runs.Run(NAME, config, workdir)
    strategy = training.setup(config)

    texts, source = data.load_text("tiny_shakespeare", ("train", "validation"), data=config.data,
                                   data_dir=config.data_dir)
    run.record_data(source)
    train_text = texts["train"][: config.train_chars or None]
    validation_text = texts["validation"][: config.validation_chars or None]
    vocabulary = data.Vocabulary.from_text(train_text)
    (run.workdir / "vocabulary.json").write_text(vocabulary.to_json())
    train_ids, validation_ids = vocabulary.encode(train_text), vocabulary.encode(validation_text)
    print(f"{NAME}: {len(vocabulary) - 1} characters in the vocabulary (+ out-of-vocabulary); "
          f"{len(train_ids):,} training and {len(validation_ids):,} validation characters")

    # Overlapping windows (a quarter window apart), reshuffled every pass: close to the
    # reports' random chunks, and every character is seen in several contexts.
    stride = config.window_stride or max(config.sequence_length // 4, 1)
    train = text.training_windows(train_ids, sequence_length=config.sequence_length,
                                  batch_size=config.batch_size, stride=stride, seed=config.seed)
    validation = data.text_windows(validation_ids, sequence_length=config.sequence_length,
                                   batch_size=256, training=False)

    with strategy.scope():
        model, step_model, state_sizes = text.build_language_model(
            len(vocabulary), cell=config.cell, units=config.units, num_layers=config.num_layers,
            embedding_dim=config.embedding_dim, dropout=config.dropout,
            compute_dtype=config.compute_dtype, name="char_rnn")
        schedule = text.cosine_schedule(config.learning_rate, config.steps, config.warmup_steps,
                                        config.final_learning_rate)
        model.compile(optimizer=keras.optimizers.Adam(schedule, clipnorm=config.clipnorm or None),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      steps_per_execution=config.steps_per_execution)
    model.summary(print_fn=lambda line, **_: print(line))

    budget = text.TimeBudget(config.max_minutes)
    callbacks = [text.LanguageModelMetrics("char"), *training.standard_callbacks(run, extra=[budget])]
    load_before = os.getloadavg()
    started, cpu_started = time.perf_counter(), time.process_time()
    # One Keras "epoch" is `log_every` steps, so the curves get a point every `log_every` steps.
    with warnings.catch_warnings():
        # Keras warns when the validation windows are not a multiple of steps_per_execution;
        # the last partial execution is still scored.
        warnings.filterwarnings("ignore", message="Your input ran out of data")
        history = model.fit(train, steps_per_epoch=config.log_every,
                            epochs=math.ceil(config.steps / config.log_every),
                            validation_data=validation, shuffle=False, callbacks=callbacks,
                            verbose=training.verbosity())
    train_seconds, train_cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    training.check_finite(history)

    nats, count = text.stateful_loss(step_model, state_sizes, validation_ids,
                                     start_id=vocabulary.index["\n"])
    validation_loss = nats / count
    steps_done = budget.stopped_at_step or len(history.history["loss"]) * config.log_every
    metrics = {
        "validation_loss": validation_loss,
        "perplexity": math.exp(validation_loss),
        "bits_per_char": validation_loss / math.log(2),
        "validation_loss_windowed": float(history.history["val_loss"][-1]),
        "train_loss": float(history.history["loss"][-1]),
        "validation_characters": count,
        "vocabulary_size": len(vocabulary),
        "parameters": int(model.count_params()),
        "steps": int(min(steps_done, config.steps)),
        "train_time_s": round(train_seconds, 1),
        "train_cpu_time_s": round(train_cpu_seconds, 1),
        # Load average before and after: on a shared machine it says how contended the timing was.
        "load_average": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
        "stopped_by_time_budget": budget.stopped_at_step is not None,
    }

    text.plot_language_curves(history.history, run.plot_path("curves"),
                              steps_per_point=config.log_every, token_name="char",
                              title=f"{NAME} ({source.kind} data, {config.cell.upper()} "
                                    f"{config.num_layers}x{config.units})")

    generator = text.TextGenerator(step_model, state_sizes, vocabulary, level="char",
                                   top_k=config.top_k, seed=config.seed)
    metrics["samples"] = text.write_samples(run.workdir / "samples.txt", generator, SEED_PRIMES,
                                            length=config.sample_length,
                                            temperature=config.temperature, top_k=config.top_k)
    metrics["export"] = str(export.export_model(model, config.export_dir, NAME, run.run_id,
                                                export=generator.save))
    print(f"{NAME}: validation loss {validation_loss:.4f} nats/char "
          f"({metrics['bits_per_char']:.3f} bits/char, perplexity {metrics['perplexity']:.2f}) "
          f"after {metrics['steps']} steps in {train_seconds / 60:.1f} min")
    print(json.dumps(metrics["samples"][-1], ensure_ascii=False)[:400])
    return run.finish(metrics)
