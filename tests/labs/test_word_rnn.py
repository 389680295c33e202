"""word-rnn: tokenization (Python and SavedModel alike), a tiny run, generation, bits per char."""

import dataclasses
import json
import math

import pytest
import tensorflow as tf
from conftest import tiny, tiny_run_fixture

from keras_labs import ConfigError, language_modeling
from keras_labs.data import loading
from keras_labs.data import text as text_data
from keras_labs.labs.word_rnn import config as lab_config
from keras_labs.labs.word_rnn import experiment
from keras_labs.language_modeling import SEED_PRIMES
from keras_labs.models import language

TINY = tiny("word-rnn")
SNIPPET = ("PETRUCHIO:\nAnd you, good sir! Pray, have you not a daughter\n"
           "Call'd Katharina, fair and virtuous?\n\n'Tis so; go to -- 3 ducats.")


tiny_run = tiny_run_fixture("word-rnn")


@pytest.fixture(scope="module")
def generator():
    tokens = text_data.tokenize_words(loading.sample_text()[:60000])
    vocabulary = text_data.Vocabulary.from_text(tokens, max_size=500)
    _, step_model, state_sizes = language.build_language_model(len(vocabulary), units=12,
                                                               num_layers=1, embedding_dim=6)
    return language_modeling.TextGenerator(step_model, state_sizes, vocabulary, level="word",
                                           seed=3), vocabulary


def test_tokens_keep_apostrophes_split_punctuation_and_join_back():
    tokens = text_data.tokenize_words(SNIPPET)
    assert tokens[:3] == ["PETRUCHIO", ":", "\n"]
    assert "Call'd" in tokens and "'Tis" in tokens and tokens.count("\n") == 4
    assert text_data.detokenize_words(tokens).replace("- -", "--") == SNIPPET


def test_savedmodel_tokenizer_matches_python(generator):
    module, _ = generator
    in_graph = [token.decode() for token in module._split(tf.constant(SNIPPET)).numpy()]
    assert in_graph == text_data.tokenize_words(SNIPPET)


def test_run_reports_word_perplexity_and_bits_per_char(tiny_run):
    workdir, metrics = tiny_run
    on_disk = json.loads((workdir / "metrics.json").read_text())
    assert on_disk["perplexity"] == pytest.approx(math.exp(on_disk["validation_loss"]))
    assert on_disk["vocabulary_size"] <= 400 and 0 < on_disk["out_of_vocabulary_rate"] < 1
    # Spelling out the unknown words can only add to the cost per character.
    assert on_disk["bits_per_char"] > on_disk["bits_per_char_without_oov_spelling"] > 0
    assert on_disk["validation_characters"] == 3000
    header = (workdir / "history.csv").read_text().splitlines()[0].split(",")
    assert {"val_perplexity", "val_bits_per_word", "val_bits_per_char"} <= set(header)
    assert (workdir / "plots" / "curves.png").stat().st_size > 0
    samples = (workdir / "samples.txt").read_text()
    for prime in experiment.PRIMES:
        assert f"=== prime {prime!r}" in samples and f"\n{prime}" in samples, prime
    records = {record["prime"]: record for record in metrics["samples"]}
    # Digits are tokens of their own, like punctuation.
    assert {"hNYB", "BYFVuhsdbs"} <= set(records["X087hNYB BHN BYFVuhsdbs"]["unknown"])


def test_every_prime_generates_and_unknown_words_are_named(generator):
    module, vocabulary = generator
    long_prime = ("Now is the winter of our discontent, made glorious summer. " * 170)[:10000]
    for prime in (*SEED_PRIMES, *experiment.PRIMES, "", long_prime):
        generated, unknown = language_modeling.sample(module, prime, 15, temperature=0.9, top_k=20)
        assert generated.startswith(prime)
        continuation = generated[len(prime):]
        assert len(text_data.tokenize_words(continuation)) == 15, (prime[:20], continuation)
        assert "\N{REPLACEMENT CHARACTER}" not in continuation
        assert all(token not in vocabulary.index for token in unknown)
    assert language_modeling.sample(module, "Frobnicate the qwertyuiop", 3)[1] == [
        "Frobnicate", "qwertyuiop"]


def test_spelling_cost_grows_with_the_word():
    train = ["the", "king", "queen", "the"]
    short = experiment.spelling_nats(["kin"], train)
    long = experiment.spelling_nats(["kingdom"], train)
    assert 0 < short < long
    assert experiment.spelling_nats([], train) == 0


def test_config_errors_name_the_value():
    with pytest.raises(ConfigError, match="vocabulary_size=1"):
        dataclasses.replace(TINY, vocabulary_size=1).validate()
    with pytest.raises(ConfigError, match="warmup_steps=6"):
        dataclasses.replace(TINY, warmup_steps=6).validate()
    for config in lab_config.PRESETS.values():
        config.validate()


def test_the_test_split_is_scored_once_both_ways(tiny_run):
    workdir, metrics = tiny_run
    on_disk = json.loads((workdir / "metrics.json").read_text())
    assert 1.0 < on_disk["test_loss"] < 15 and 1.0 < on_disk["test_loss_windowed"] < 15
    assert on_disk["test_perplexity"] == pytest.approx(math.exp(on_disk["test_loss"]))
    assert on_disk["test_tokens"] == len(text_data.tokenize_words(
        loading.load_text("tiny_shakespeare", ("test",), data="sample")[0]["test"]))
    assert 0.5 < on_disk["test_bits_per_char"] < 10
    assert on_disk["test_loss"] != on_disk["validation_loss"]
