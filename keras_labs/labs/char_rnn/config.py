"""The `char-rnn` lab's configuration and presets (no TensorFlow: `keras-labs list` reads them)."""

from __future__ import annotations

import dataclasses

from keras_labs.config import LanguageModelConfig, option

NAME = "char-rnn"
DESCRIPTION = ("char-level GRU/LSTM on Tiny Shakespeare (reports 000/001 ex. 4): perplexity, "
               "bits/char, samples, generator SavedModel")
DATASETS = ("tiny_shakespeare",)


@dataclasses.dataclass(frozen=True)
class Config(LanguageModelConfig):
    # The reports' schedule (spro/char-rnn.pytorch defaults) as the defaults.
    batch_size: int = option(100, minimum=1, maximum=65536, help="windows per step")
    sequence_length: int = option(200, minimum=2, help="characters per training window")
    train_chars: int = option(0, minimum=0,
                              help="use only the first N training characters (0: all)")
    sample_length: int = option(300, minimum=0, help="characters generated per prime")


# The 15-minute CPU recipe: many small-batch updates, since on a CPU the recurrence's
# per-step cost bounds the run, not the tokens per update (how it was found: README).
_BEST = Config(steps=1020, log_every=60, batch_size=64, sequence_length=100, window_stride=25,
               cell="gru", implementation="hoisted", units=384, num_layers=2, embedding_dim=64,
               dropout=0.0, learning_rate=3e-3, warmup_steps=20, final_learning_rate=0.05,
               clipnorm=1.0, compute_dtype="float32", steps_per_execution=10, max_minutes=15.0,
               top_k=0)

PRESETS = {
    "seed": Config(),
    # best's 384-wide GRU in bfloat16 for 2.4 times its steps (3.2 a second on the 2-core Xeon
    # that ran it: 12.7 minutes of the 15), with dropout: fast's recipe run longer without it
    # overfit (validation flat from step 1,360 while the training loss fell).
    "best": dataclasses.replace(_BEST, steps=2400, log_every=200, dropout=0.2,
                                compute_dtype="bfloat16"),
    # Five minutes of the 2-core CPU: bfloat16 (1.5x float32's steps here), a 256-wide GRU at
    # a higher rate for more steps than best's 384 (screened on validation: docs/benchmarks.md).
    "fast": dataclasses.replace(_BEST, steps=1200, log_every=400, units=256, learning_rate=5e-3,
                                compute_dtype="bfloat16", max_minutes=0.0),
    "quick": Config(steps=120, log_every=40, batch_size=64, sequence_length=64, units=128,
                    num_layers=1, embedding_dim=32, learning_rate=1e-2, final_learning_rate=0.1,
                    validation_chars=20000, sample_length=120, steps_per_execution=20),
}
DEFAULT_PRESET = "seed"
