"""The `word-rnn` lab's configuration and presets (no TensorFlow: `keras-labs list` reads them)."""

from __future__ import annotations

import dataclasses

from keras_labs.config import LanguageModelConfig, option

NAME = "word-rnn"
DESCRIPTION = ("word-level GRU/LSTM on Tiny Shakespeare (report 000 ex. 4 task 4): word "
               "perplexity, bits/char, samples, generator SavedModel")
DATASETS = ("tiny_shakespeare",)


@dataclasses.dataclass(frozen=True)
class Config(LanguageModelConfig):
    vocabulary_size: int = option(8000, minimum=2, help="cap, out-of-vocabulary token included")
    train_tokens: int = option(0, minimum=0, help="use only the first N training tokens (0: all)")
    top_k: int = option(40, minimum=0, help="sample among the k likeliest words (0: all)")


PRESETS = {
    # The reports' char-rnn defaults (2-layer GRU-100, Adam 0.01, 2000 steps, loss every 100)
    # on words, in windows of 50 words.
    "seed": Config(),
    "best": Config(steps=800, log_every=100, batch_size=64, sequence_length=64, units=256,
                   num_layers=1, embedding_dim=256, dropout=0.3, learning_rate=3e-3,
                   warmup_steps=50, final_learning_rate=0.02,
                   steps_per_execution=10),
    "quick": Config(steps=120, log_every=40, vocabulary_size=3000, batch_size=32,
                    sequence_length=32, units=128, num_layers=1, embedding_dim=64,
                    learning_rate=5e-3, validation_chars=20000, sample_length=40,
                    steps_per_execution=20),
}
DEFAULT_PRESET = "seed"
