"""The `char-rnn` experiment: train the character model, score it, sample the seed primes and
export a generator."""

from __future__ import annotations

import json
import math

import numpy as np

from keras_labs import language_modeling, training
from keras_labs.data import text as text_data
from keras_labs.labs.char_rnn.config import NAME, Config
from keras_labs.language_modeling import SEED_PRIMES


def run(config: Config, workdir: str, *, resume: bool = False) -> dict:
    """Trains the character model, scores it, samples the seed primes and exports a generator."""
    run, strategy = training.start(NAME, config, workdir, resume=resume)

    texts, source = run.load_data("tiny_shakespeare", ("train", "validation", "test"),
                                  text=True)
    vocabulary, ids = encode_characters(run, config, texts)

    train, validation = language_modeling.language_windows(config, ids["train"],
                                                           ids["validation"])

    fitted = language_modeling.fit_language_model(
        config, run, strategy, train, validation, len(vocabulary), name="char_rnn",
        metrics_callback=language_modeling.LanguageModelMetrics("char"),
        probe_ids=ids["validation"])

    start_id = vocabulary.index["\n"]
    metrics = {**score_validation(fitted, ids["validation"], start_id), **fitted["metrics"]}
    # The test split, scored once now that training and every choice made on validation are done.
    metrics.update(score_test_split(fitted, config, ids["test"], start_id, strategy))
    metrics["last_tenth_loss"] = last_tenth_loss(metrics)

    metrics["curve"] = language_modeling.curve(fitted["history"].history, config.log_every,
                                               fitted["metrics"]["steps"])
    metrics.update(language_modeling.write_outputs(run, config, fitted, vocabulary, level="char",
                                                   primes=SEED_PRIMES, data_kind=source.kind))
    metrics["every_seed_prime_sampled"] = every_prime_sampled(metrics["samples"], SEED_PRIMES)
    print(f"{NAME}: validation loss {metrics['validation_loss']:.4f} nats/char "
          f"({metrics['bits_per_char']:.3f} bits/char, perplexity {metrics['perplexity']:.2f}) "
          f"after {metrics['steps']} steps in {metrics['train_time_s'] / 60:.1f} min")
    print(json.dumps(metrics["samples"][-1], ensure_ascii=False)[:400])
    return run.finish(metrics)


def encode_characters(run, config: Config, texts: dict[str, str]
                      ) -> tuple[text_data.Vocabulary, dict[str, np.ndarray]]:
    """The training text's characters as the vocabulary (written to vocabulary.json), and the
    ids of the splits: the training and validation texts cut as `config` says, the test whole.

    Returns:
        (the vocabulary, {"train", "validation", "test": character ids}).
    """
    train_text = texts["train"][: config.train_chars or None]
    validation_text = texts["validation"][: config.validation_chars or None]
    vocabulary = text_data.Vocabulary.from_text(train_text)
    (run.workdir / "vocabulary.json").write_text(vocabulary.to_json())
    train_ids, validation_ids = vocabulary.encode(train_text), vocabulary.encode(validation_text)
    test_ids = vocabulary.encode(texts["test"])
    print(f"{NAME}: {len(vocabulary) - 1} characters in the vocabulary (+ out-of-vocabulary); "
          f"{len(train_ids):,} training and {len(validation_ids):,} validation characters")
    return vocabulary, {"train": train_ids, "validation": validation_ids, "test": test_ids}


def score_validation(fitted: dict, validation_ids: np.ndarray, start_id: int) -> dict:
    """The whole validation text scored with the state carried across it (every character sees
    everything before it, as in generation): loss, perplexity and bits per character."""
    nats, count = language_modeling.stateful_loss(fitted["step_model"], fitted["state_sizes"],
                                                  validation_ids, start_id=start_id)
    validation_loss = nats / count
    return {
        "validation_loss": validation_loss,
        "perplexity": math.exp(validation_loss),
        "bits_per_char": validation_loss / math.log(2),
        "validation_characters": count,
    }


def score_test_split(fitted: dict, config: Config, test_ids: np.ndarray, start_id: int,
                 strategy) -> dict:
    """The test split scored both ways (`language_modeling.held_out_loss`)."""
    test = language_modeling.held_out_loss(fitted, config, test_ids, start_id=start_id,
                                           strategy=strategy)
    return {"test_loss": test["loss"], "test_loss_windowed": test["loss_windowed"],
            "test_bits_per_char": test["loss"] / math.log(2), "test_characters": test["tokens"]}


def last_tenth_loss(metrics: dict) -> float:
    """The loss per character over the validation and test texts together, each weighted by
    its characters: nanoGPT's validation split of Tiny Shakespeare (the text's last 10%, which
    tfds cuts in two), so that a figure of ours can stand beside its 1.4697."""
    characters = metrics["validation_characters"] + metrics["test_characters"]
    return (metrics["validation_loss"] * metrics["validation_characters"]
            + metrics["test_loss"] * metrics["test_characters"]) / characters


def every_prime_sampled(samples: list[dict], primes) -> bool:
    """Whether every prime, in order, got a sample that starts with it (its unknown tokens
    read as out-of-vocabulary rather than failing)."""
    return ([record["prime"] for record in samples] == list(primes)
            and all(record["text"].startswith(record["prime"]) for record in samples))
