"""Lab `word-rnn`: a word-level GRU/LSTM language model on Tiny Shakespeare.

Seed report 000, exercise 4, task 4: the char-RNN of `char-rnn` trained on words instead of
characters, "2000 epochs", with its perplexity curve. Words keep their inner apostrophes
("Call'd"), punctuation marks and newlines are tokens of their own, and spaces are implied
between tokens (`keras_labs.data.text.tokenize_words`; the text joins back almost exactly). The
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
