"""Text data for the language labs: tokenization, vocabulary and (input, target) windows."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence

import numpy as np
import tensorflow as tf

from keras_labs import ConfigError
from keras_labs.data.loading import untuned

# Words keep inner apostrophes ("Call'd", "'tis"); every other non-space character and every
# newline is a token of its own. The same rules run in Python (training data) and in the
# SavedModel (RE2 regular expressions, `keras_labs.language_modeling.TextGenerator`), so a prime is
# tokenized alike in both.
PUNCTUATION = r"([^A-Za-z'\s])"
NEWLINE = "\n"


def tokenize_words(text: str) -> list[str]:
    """Splits text into word, punctuation and newline tokens (spaces are implied between tokens)."""
    spaced = re.sub(PUNCTUATION, r" \1 ", text).replace(NEWLINE, f" {NEWLINE} ")
    return [token for token in spaced.split(" ") if token]


def detokenize_words(tokens: Sequence[str]) -> str:
    """Joins word tokens back into readable text (no space before punctuation or around newlines)."""
    text = " ".join(tokens)
    text = re.sub(r" ?\n ?", "\n", text)
    return re.sub(r" ([.,;:!?])", r"\1", text)


def split_tokens(text: str, level: str) -> list[str]:
    """The tokens of `text` at `level` "char" or "word"."""
    if level == "char":
        return list(text)
    if level == "word":
        return tokenize_words(text)
    raise ValueError(f"level={level!r} is not valid; valid values: char, word")


class Vocabulary:
    """A token vocabulary with an out-of-vocabulary id (0), for characters or words.

    Args:
        tokens: The known tokens, in id order starting at 1.
        oov_token: What id 0 decodes to.
    """

    OOV_ID = 0

    def __init__(self, tokens: Iterable[str], oov_token: str = "\N{REPLACEMENT CHARACTER}"):
        self.tokens = [oov_token, *tokens]
        self.index = {token: i for i, token in enumerate(self.tokens) if i}

    @classmethod
    def from_text(cls, items: Iterable[str], max_size: int | None = None) -> Vocabulary:
        """Builds a vocabulary of the most frequent tokens (ties broken alphabetically)."""
        counts: dict[str, int] = {}
        for item in items:
            counts[item] = counts.get(item, 0) + 1
        ranked = sorted(counts, key=lambda token: (-counts[token], token))
        if max_size is not None:
            ranked = ranked[: max_size - 1]
        return cls(sorted(ranked))

    def __len__(self) -> int:
        return len(self.tokens)

    def encode(self, items: Iterable[str]) -> np.ndarray:
        return np.array([self.index.get(item, self.OOV_ID) for item in items], dtype=np.int32)

    def unknown(self, items: Iterable[str]) -> list[str]:
        """The distinct items that would map to the out-of-vocabulary id, in order of appearance."""
        seen = []
        for item in items:
            if item not in self.index and item not in seen:
                seen.append(item)
        return seen

    def decode(self, ids: Iterable[int], separator: str = "") -> str:
        return separator.join(self.tokens[int(i)] for i in ids)

    def to_json(self) -> str:
        return json.dumps({"tokens": self.tokens})


def _window_chunks(ids: np.ndarray, sequence_length: int, stride: int) -> np.ndarray:
    """Every whole `sequence_length + 1`-token chunk of `ids` starting at a multiple of `stride`.

    Cut with a strided NumPy view: `Dataset.window` takes ~9 CPU-seconds on Tiny Shakespeare.
    """
    if len(ids) <= sequence_length:
        return np.empty((0, sequence_length + 1), ids.dtype)
    chunks = np.lib.stride_tricks.sliding_window_view(ids, sequence_length + 1)[::stride]
    return np.ascontiguousarray(chunks)


def text_windows(ids: np.ndarray, *, sequence_length: int, batch_size: int, training: bool,
                 seed: int = 0, stride: int | None = None) -> tf.data.Dataset:
    """(input, target) windows over a token id sequence, the target shifted by one token.

    Training windows start at every `stride` positions (default: the sequence length) and are
    shuffled with `seed`; evaluation windows are in order.
    """
    chunks = _window_chunks(np.asarray(ids), sequence_length, stride or sequence_length)
    dataset = untuned(tf.data.Dataset.from_tensor_slices(chunks))
    dataset = dataset.map(lambda chunk: (chunk[:-1], chunk[1:]), num_parallel_calls=tf.data.AUTOTUNE)
    dataset = dataset.cache()
    if training:
        dataset = dataset.shuffle(10000, seed=seed, reshuffle_each_iteration=True)
    return dataset.batch(batch_size, drop_remainder=training).prefetch(tf.data.AUTOTUNE)


def training_windows(ids: np.ndarray, *, sequence_length: int, batch_size: int, stride: int,
                     seed: int = 0) -> tf.data.Dataset:
    """Endless batches of (input, shifted target) windows drawn uniformly from the whole text.

    The same windows as `text_windows(..., stride=stride)`, shuffled all together every pass:
    `text_windows` shuffles within 10,000 windows, so on a long text each batch would come from
    one stretch of the play and the model would chase the local scene, not the language.
    """
    ids = np.asarray(ids, dtype=np.int32)
    if len(ids) <= sequence_length:
        raise ConfigError(f"sequence_length={sequence_length} is not valid; the training text "
                          f"has only {len(ids)} tokens")
    chunks = _window_chunks(ids, sequence_length, stride)
    windows = untuned(tf.data.Dataset.from_tensor_slices(chunks))
    windows = windows.shuffle(len(chunks), seed=seed, reshuffle_each_iteration=True).repeat()
    return (windows.batch(batch_size, drop_remainder=True)
            .map(lambda chunk: (chunk[:, :-1], chunk[:, 1:]), num_parallel_calls=tf.data.AUTOTUNE)
            .prefetch(tf.data.AUTOTUNE))
