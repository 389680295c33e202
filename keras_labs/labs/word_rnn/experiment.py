"""The `word-rnn` experiment: train the word model, score it (word perplexity, bits per
character), sample the primes, export."""

from __future__ import annotations

import json
import math
from collections import Counter

import numpy as np

from keras_labs import language_modeling, training
from keras_labs.data import text as text_data
from keras_labs.labs.word_rnn.config import NAME, Config
from keras_labs.language_modeling import SEED_PRIMES

PRIMES = (*SEED_PRIMES, "ROMEO:", "To be, or not to be", "My lord, the king")


def run(config: Config, workdir: str, *, resume: bool = False) -> dict:
    """Trains the word model, scores it (word perplexity, bits per character), samples, exports."""
    run, strategy = training.start(NAME, config, workdir, resume=resume)

    texts, source = run.load_data("tiny_shakespeare", ("train", "validation", "test"),
                                  text=True)
    validation_text = texts["validation"][: config.validation_chars or None]
    vocabulary, tokens, ids, oov_words = encode_words(run, config, texts["train"],
                                                      validation_text)

    train, validation = language_modeling.language_windows(config, ids["train"],
                                                           ids["validation"])

    chars_per_token = len(validation_text) / max(len(tokens["validation"]), 1)
    fitted = language_modeling.fit_language_model(
        config, run, strategy, train, validation, len(vocabulary), name="word_rnn",
        metrics_callback=language_modeling.LanguageModelMetrics("word", chars_per_token),
        probe_ids=ids["validation"])

    metrics = {**score_validation(fitted, vocabulary, ids["validation"], validation_text,
                                  oov_words, tokens["train"]),
               **fitted["metrics"]}
    # The test split, scored once now that training and every choice made on validation are done.
    metrics.update(score_test_split(fitted, config, vocabulary, texts["test"], tokens["train"],
                                    strategy))

    metrics["curve"] = language_modeling.curve(fitted["history"].history, config.log_every,
                                               fitted["metrics"]["steps"])
    metrics.update(language_modeling.write_outputs(run, config, fitted, vocabulary, level="word",
                                                   primes=PRIMES, data_kind=source.kind))
    print(f"{NAME}: validation word perplexity {metrics['perplexity']:.1f}, "
          f"{metrics['bits_per_char']:.3f} bits/char, after {metrics['steps']} steps in "
          f"{metrics['train_time_s'] / 60:.1f} min")
    print(json.dumps(metrics["samples"][3], ensure_ascii=False)[:400])
    return run.finish(metrics)


def encode_words(run, config: Config, train_text: str, validation_text: str
                 ) -> tuple[text_data.Vocabulary, dict[str, list[str]], dict[str, np.ndarray],
                            list[str]]:
    """Tokenizes the texts, keeps the `config.vocabulary_size` most frequent training tokens as
    the vocabulary (written to vocabulary.json) and encodes the texts with it.

    Returns:
        (the vocabulary, {"train", "validation": tokens}, {"train", "validation": ids}, the
         validation tokens the vocabulary does not know).
    """
    train_tokens = text_data.tokenize_words(train_text)[: config.train_tokens or None]
    validation_tokens = text_data.tokenize_words(validation_text)
    vocabulary = text_data.Vocabulary.from_text(train_tokens, max_size=config.vocabulary_size)
    (run.workdir / "vocabulary.json").write_text(vocabulary.to_json())
    train_ids = vocabulary.encode(train_tokens)
    validation_ids = vocabulary.encode(validation_tokens)
    oov_words = out_of_vocabulary(validation_tokens, validation_ids)
    print(f"{NAME}: {len(vocabulary):,} tokens in the vocabulary (out-of-vocabulary included); "
          f"{len(train_ids):,} training and {len(validation_ids):,} validation tokens, "
          f"{len(oov_words) / max(len(validation_ids), 1):.1%} of them out of vocabulary")
    return (vocabulary, {"train": train_tokens, "validation": validation_tokens},
            {"train": train_ids, "validation": validation_ids}, oov_words)


def out_of_vocabulary(tokens: list[str], ids: np.ndarray) -> list[str]:
    """The tokens encoded as the out-of-vocabulary id (0), in order."""
    return [token for token, i in zip(tokens, ids, strict=True) if i == 0]


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


def score_validation(fitted: dict, vocabulary: text_data.Vocabulary, validation_ids: np.ndarray,
                     validation_text: str, oov_words: list[str], train_tokens: list[str]
                     ) -> dict:
    """The whole validation text scored with the state carried across it: word loss and
    perplexity, bits per word, and bits per character with and without the cost of spelling
    out the unknown words (`spelling_nats`)."""
    nats, count = language_modeling.stateful_loss(fitted["step_model"], fitted["state_sizes"],
                                                  validation_ids,
                                                  start_id=vocabulary.index.get("\n", 0))
    oov_nats = spelling_nats(oov_words, train_tokens)
    validation_loss = nats / count
    return {
        "validation_loss": validation_loss,
        "perplexity": math.exp(validation_loss),
        "bits_per_word": validation_loss / math.log(2),
        "bits_per_char": (nats + oov_nats) / len(validation_text) / math.log(2),
        "bits_per_char_without_oov_spelling": nats / len(validation_text) / math.log(2),
        "validation_tokens": count,
        "validation_characters": len(validation_text),
        "out_of_vocabulary_rate": len(oov_words) / max(count, 1),
    }


def score_test_split(fitted: dict, config: Config, vocabulary: text_data.Vocabulary,
                     test_text: str, train_tokens: list[str], strategy) -> dict:
    """The test split scored both ways (`language_modeling.held_out_loss`), in word perplexity
    and in bits per character (unknown words spelled out)."""
    test_tokens = text_data.tokenize_words(test_text)
    test_ids = vocabulary.encode(test_tokens)
    test = language_modeling.held_out_loss(fitted, config, test_ids,
                                           start_id=vocabulary.index.get("\n", 0),
                                           strategy=strategy)
    test_oov = out_of_vocabulary(test_tokens, test_ids)
    return {"test_loss": test["loss"], "test_loss_windowed": test["loss_windowed"],
            "test_perplexity": math.exp(test["loss"]), "test_tokens": test["tokens"],
            "test_bits_per_char": (test["loss"] * test["tokens"]
                                   + spelling_nats(test_oov, train_tokens))
            / len(test_text) / math.log(2)}
