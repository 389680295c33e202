"""Lab `word-rnn`: a word-level GRU/LSTM language model on Tiny Shakespeare.

Seed report 000, exercise 4, task 4: the char-RNN of `char-rnn` trained on words instead of
characters, "2000 epochs", with its perplexity curve. Words keep their inner apostrophes
("Call'd"), punctuation marks and newlines are tokens of their own, and spaces are implied
between tokens (`keras_labs.data.tokenize_words`; the text joins back almost exactly). The
vocabulary keeps the `vocabulary_size - 1` most frequent training tokens; the rest read as the
out-of-vocabulary token (id 0), and a prime's unknown words are listed next to its sample.

Word perplexity does not compare with character perplexity, so the lab also reports bits per
character: the model's total nats over the whole validation text (state carried across it) plus,
for each out-of-vocabulary word, the cost of spelling it out with the training text's character
frequencies (the model only says "some rare word"), divided by the validation text's characters
and by ln 2. That is the figure to hold against `char-rnn`'s bits_per_char. The tfds test split is
scored once, after training (`test_loss`, `test_perplexity`, `test_bits_per_char`); `curve` holds
the logged points (training and windowed validation loss and word perplexity).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections import Counter

from keras_labs import data
from keras_labs.config import LanguageModelConfig, option
from keras_labs.labs.char_rnn import SEED_PRIMES, curve
from keras_labs.lazy import lazy_import
from keras_labs.ledger import table

# Loaded on first use (TensorFlow): NAME, Config and PRESETS read without them.
text, training = lazy_import("keras_labs.text", "keras_labs.training")

NAME = "word-rnn"
DESCRIPTION = ("word-level GRU/LSTM on Tiny Shakespeare (report 000 ex. 4 task 4): word "
               "perplexity, bits/char, samples, generator SavedModel")

PRIMES = (*SEED_PRIMES, "ROMEO:", "To be, or not to be", "My lord, the king")


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

SEED_ITEMS = table("""
| item | preset | metric | seed | report's figure | what | options |
|---|---|---|---|---|---|---|
| 000-ex4-t4 | seed | curve | qualitative | a word perplexity curve over 2000 epochs | word-level perplexity of the WordRNN during 2000 epochs of training (a curve) | unit=% |
""", notes={
    '000-ex4-t4':
        "an 'epoch' of the report is one batch: a step here",
})
# Estimated minutes on the 2-core CPU with Tiny Shakespeare: training (README: 12.4 min for
# `seed`; `best`: ~2.2 s per step in a 30-step run at load 6, so 800 steps is no more than 20
# minutes on a quiet machine), then scoring, sampling and the export.
PRESET_MINUTES = {"seed": 14, "best": 20}


def spelling_nats(words: list[str], train_tokens: list[str]) -> float:
    """Nats to spell `words` out character by character, each followed by an end mark.

    The characters (and the end mark, once per token) are drawn from their add-one smoothed
    frequencies in the training tokens: a cheap stand-in for the spelling a word model leaves
    unsaid when it predicts the out-of-vocabulary token.
    """
    counts = Counter(char for token in train_tokens for char in token)
    counts["<end>"] = len(train_tokens)
    total = sum(counts.values()) + len(counts) + 1  # add-one, plus one unseen-character slot
    cost = {char: -math.log((count + 1) / total) for char, count in counts.items()}
    unseen = -math.log(1 / total)
    return sum(sum(cost.get(char, unseen) for char in word) + cost["<end>"] for word in words)


def run(config: Config, workdir: str, *, resume: bool = False) -> dict:
    """Trains the word model, scores it (word perplexity, bits per character), samples, exports."""
    run, strategy = training.start(NAME, config, workdir, resume=resume)

    texts, source = run.load_data("tiny_shakespeare", ("train", "validation", "test"),
                                  text=True)
    train_tokens = data.tokenize_words(texts["train"])[: config.train_tokens or None]
    validation_text = texts["validation"][: config.validation_chars or None]
    validation_tokens = data.tokenize_words(validation_text)
    vocabulary = data.Vocabulary.from_text(train_tokens, max_size=config.vocabulary_size)
    (run.workdir / "vocabulary.json").write_text(vocabulary.to_json())
    train_ids, validation_ids = vocabulary.encode(train_tokens), vocabulary.encode(validation_tokens)
    oov_words = [token for token, i in zip(validation_tokens, validation_ids, strict=True) if i == 0]
    print(f"{NAME}: {len(vocabulary):,} tokens in the vocabulary (out-of-vocabulary included); "
          f"{len(train_ids):,} training and {len(validation_ids):,} validation tokens, "
          f"{len(oov_words) / max(len(validation_ids), 1):.1%} of them out of vocabulary")

    train, validation = text.language_windows(config, train_ids, validation_ids)

    chars_per_token = len(validation_text) / max(len(validation_tokens), 1)
    fitted = text.fit_language_model(
        config, run, strategy, train, validation, len(vocabulary), name="word_rnn",
        metrics_callback=text.LanguageModelMetrics("word", chars_per_token),
        probe_ids=validation_ids)

    nats, count = text.stateful_loss(fitted["step_model"], fitted["state_sizes"], validation_ids,
                                     start_id=vocabulary.index.get("\n", 0))
    oov_nats = spelling_nats(oov_words, train_tokens)
    validation_loss = nats / count
    metrics = {
        "validation_loss": validation_loss,
        "perplexity": math.exp(validation_loss),
        "bits_per_word": validation_loss / math.log(2),
        "bits_per_char": (nats + oov_nats) / len(validation_text) / math.log(2),
        "bits_per_char_without_oov_spelling": nats / len(validation_text) / math.log(2),
        "validation_tokens": count,
        "validation_characters": len(validation_text),
        "out_of_vocabulary_rate": len(oov_words) / max(count, 1),
        **fitted["metrics"],
    }
    # The test split, scored once now that training and every choice made on validation are done.
    test_tokens = data.tokenize_words(texts["test"])
    test_ids = vocabulary.encode(test_tokens)
    test = text.held_out_loss(fitted, config, test_ids, start_id=vocabulary.index.get("\n", 0),
                              strategy=strategy)
    test_oov = [token for token, i in zip(test_tokens, test_ids, strict=True) if i == 0]
    metrics.update(test_loss=test["loss"], test_loss_windowed=test["loss_windowed"],
                   test_perplexity=math.exp(test["loss"]), test_tokens=test["tokens"],
                   test_bits_per_char=(test["loss"] * test["tokens"]
                                       + spelling_nats(test_oov, train_tokens))
                   / len(texts["test"]) / math.log(2))

    metrics["curve"] = curve(fitted["history"].history, config.log_every,
                             fitted["metrics"]["steps"])
    metrics.update(text.write_outputs(run, config, fitted, vocabulary, level="word",
                                      primes=PRIMES, data_kind=source.kind))
    print(f"{NAME}: validation word perplexity {metrics['perplexity']:.1f}, "
          f"{metrics['bits_per_char']:.3f} bits/char, after {metrics['steps']} steps in "
          f"{metrics['train_time_s'] / 60:.1f} min")
    print(json.dumps(metrics["samples"][3], ensure_ascii=False)[:400])
    return run.finish(metrics)
