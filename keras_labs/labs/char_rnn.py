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
metrics.json. The tfds test split is scored once, after training, both ways (`test_loss`,
`test_loss_windowed`); nothing is chosen on it. `curve` holds the logged points (training and
windowed validation loss and perplexity, the figure reports 000/001 plotted and printed), and
`train_loss` the mean training loss of the last interval (the report's last printed loss). The
run writes its samples to samples.txt and exports a generator SavedModel whose serving signature
takes a prime, a length and a temperature and returns text.

Presets: `seed` is the reports' schedule (spro/char-rnn.pytorch defaults: 2-layer GRU-100, Adam
0.01, chunks of 200, batches of 100, 2000 steps); `best` is a 15-minute CPU recipe for the
1.45 nats/char target (1.430 on the 2-core CPU: see the README); `quick` is the tour.
"""

from __future__ import annotations

import dataclasses
import json
import math

from keras_labs import data
from keras_labs.config import LanguageModelConfig, option
from keras_labs.lazy import lazy_import
from keras_labs.ledger import table

# Loaded on first use (TensorFlow): NAME, Config and PRESETS read without them.
text, training = lazy_import("keras_labs.text", "keras_labs.training")

NAME = "char-rnn"
DESCRIPTION = ("char-level GRU/LSTM on Tiny Shakespeare (reports 000/001 ex. 4): perplexity, "
               "bits/char, samples, generator SavedModel")

SEED_PRIMES = ("2 b3n", "bg09Z", "qwert", "The", "What is", "Shall I give",
               "X087hNYB BHN BYFVuhsdbs")


@dataclasses.dataclass(frozen=True)
class Config(LanguageModelConfig):
    # The reports' schedule (spro/char-rnn.pytorch defaults) as the defaults.
    batch_size: int = option(100, minimum=1, maximum=65536, help="windows per step")
    sequence_length: int = option(200, minimum=2, help="characters per training window")
    train_chars: int = option(0, minimum=0, help="use only the first N training characters (0: all)")
    sample_length: int = option(300, minimum=0, help="characters generated per prime")


PRESETS = {
    "seed": Config(),
    # The 15-minute CPU recipe: many small-batch updates, since on a CPU the recurrence's
    # per-step cost bounds the run, not the tokens per update (how it was found: README).
    "best": Config(steps=1020, log_every=60, batch_size=64, sequence_length=100,
                   window_stride=25, cell="gru", implementation="hoisted", units=384,
                   num_layers=2, embedding_dim=64, dropout=0.0, learning_rate=3e-3,
                   warmup_steps=20, final_learning_rate=0.05, clipnorm=1.0,
                   compute_dtype="float32", steps_per_execution=10, max_minutes=15.0, top_k=0),
    "quick": Config(steps=120, log_every=40, batch_size=64, sequence_length=64, units=128,
                    num_layers=1, embedding_dim=32, learning_rate=1e-2, final_learning_rate=0.1,
                    validation_chars=20000, sample_length=120, steps_per_execution=20),
}
DEFAULT_PRESET = "seed"

SEED_ITEMS = table("""
| item | preset | metric | seed | report's figure | what | options |
|---|---|---|---|---|---|---|
| 000-ex4-t1 | seed | curve | qualitative | a perplexity curve over 2000 epochs | perplexity of the CharRNN during 2000 epochs of training (a curve) | unit=% |
| 000-ex4-t2-t3 | seed | samples | qualitative | generated output sequences | sequences generated from the primes (tasks 2 and 3) | unit=% |
| 001-ex4-loss | seed | train_loss | 1.3524 | loss at every 100 epochs, last 1.3524 | training loss printed every 100 epochs, the last at epoch 2000 | direction=lower, tolerance=0.03 |
| 001-ex4-samples | seed | every_seed_prime_sampled | qualitative | 7 samples, e.g. 'X087hNYB BHN BYFVuhsdbs' | samples for the 7 primes, out-of-vocabulary ones (digits, 'Z') included | unit=% |
""", notes={
    '000-ex4-t1':
        "an 'epoch' of the reports is one batch of random chunks: a step here",
    '001-ex4-loss':
        'ours: the mean training loss (nats/char) of steps 1,901-2,000',
})
# Estimated minutes on the 2-core CPU with Tiny Shakespeare: training (README: 13.9 min for
# `seed`; `best` stops at its 15-minute budget), then scoring, sampling and the export.
PRESET_MINUTES = {"seed": 16, "best": 17}


def run(config: Config, workdir: str, *, resume: bool = False) -> dict:
    """Trains the character model, scores it, samples the seed primes and exports a generator."""
    run, strategy = training.start(NAME, config, workdir, resume=resume)

    texts, source = run.load_data("tiny_shakespeare", ("train", "validation", "test"),
                                  text=True)
    train_text = texts["train"][: config.train_chars or None]
    validation_text = texts["validation"][: config.validation_chars or None]
    vocabulary = data.Vocabulary.from_text(train_text)
    (run.workdir / "vocabulary.json").write_text(vocabulary.to_json())
    train_ids, validation_ids = vocabulary.encode(train_text), vocabulary.encode(validation_text)
    test_ids = vocabulary.encode(texts["test"])
    print(f"{NAME}: {len(vocabulary) - 1} characters in the vocabulary (+ out-of-vocabulary); "
          f"{len(train_ids):,} training and {len(validation_ids):,} validation characters")

    train, validation = text.language_windows(config, train_ids, validation_ids)

    fitted = text.fit_language_model(config, run, strategy, train, validation, len(vocabulary),
                                     name="char_rnn",
                                     metrics_callback=text.LanguageModelMetrics("char"),
                                     probe_ids=validation_ids)

    nats, count = text.stateful_loss(fitted["step_model"], fitted["state_sizes"], validation_ids,
                                     start_id=vocabulary.index["\n"])
    validation_loss = nats / count
    metrics = {
        "validation_loss": validation_loss,
        "perplexity": math.exp(validation_loss),
        "bits_per_char": validation_loss / math.log(2),
        "validation_characters": count,
        **fitted["metrics"],
    }
    # The test split, scored once now that training and every choice made on validation are done.
    test = text.held_out_loss(fitted, config, test_ids, start_id=vocabulary.index["\n"],
                              strategy=strategy)
    metrics.update(test_loss=test["loss"], test_loss_windowed=test["loss_windowed"],
                   test_bits_per_char=test["loss"] / math.log(2), test_characters=test["tokens"])

    metrics["curve"] = curve(fitted["history"].history, config.log_every,
                             fitted["metrics"]["steps"])
    metrics.update(text.write_outputs(run, config, fitted, vocabulary, level="char",
                                      primes=SEED_PRIMES, data_kind=source.kind))
    metrics["every_seed_prime_sampled"] = every_prime_sampled(metrics["samples"], SEED_PRIMES)
    print(f"{NAME}: validation loss {validation_loss:.4f} nats/char "
          f"({metrics['bits_per_char']:.3f} bits/char, perplexity {metrics['perplexity']:.2f}) "
          f"after {metrics['steps']} steps in {metrics['train_time_s'] / 60:.1f} min")
    print(json.dumps(metrics["samples"][-1], ensure_ascii=False)[:400])
    return run.finish(metrics)


def curve(history: dict[str, list[float]], log_every: int, last_step: int) -> list[dict]:
    """One row per logged interval: the step it ended at, the mean training loss and perplexity
    over it, and the windowed validation loss and perplexity after it (word-rnn's too)."""
    columns = {"loss": "train_loss", "perplexity": "train_perplexity",
               "val_loss": "validation_loss_windowed", "val_perplexity": "validation_perplexity"}
    rows = []
    for index in range(len(history["loss"])):
        row = {"step": min((index + 1) * log_every, last_step)}
        row.update({name: round(float(history[key][index]), 4)
                    for key, name in columns.items() if key in history})
        rows.append(row)
    return rows


def every_prime_sampled(samples: list[dict], primes) -> bool:
    """Whether every prime, in order, got a sample that starts with it (its unknown tokens
    read as out-of-vocabulary rather than failing)."""
    return ([record["prime"] for record in samples] == list(primes)
            and all(record["text"].startswith(record["prime"]) for record in samples))
