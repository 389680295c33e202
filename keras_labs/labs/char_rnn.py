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

    metrics.update(text.write_outputs(run, config, fitted, vocabulary, level="char",
                                      primes=SEED_PRIMES, data_kind=source.kind))
    print(f"{NAME}: validation loss {validation_loss:.4f} nats/char "
          f"({metrics['bits_per_char']:.3f} bits/char, perplexity {metrics['perplexity']:.2f}) "
          f"after {metrics['steps']} steps in {metrics['train_time_s'] / 60:.1f} min")
    print(json.dumps(metrics["samples"][-1], ensure_ascii=False)[:400])
    return run.finish(metrics)
