"""Lab `char-rnn`: a character-level GRU/LSTM language model on Tiny Shakespeare.

Seed reports 000 and 001, exercise 4: train a char-RNN for "2000 epochs" (one batch of random
chunks each) logging the loss every 100, then generate from the primes "2 b3n", "bg09Z",
"qwert", "The", "What is", "Shall I give" and "X087hNYB BHN BYFVuhsdbs". Several of those hold
characters Shakespeare never uses (digits, "Z"...): they read as the out-of-vocabulary id and the
samples say which they were.

The model is an embedding, a stack of GRU or LSTM layers and a softmax over the characters
(`keras_labs.language_modeling`). It trains on the train split of `tiny_shakespeare` through
tfds, in windows of characters with the targets shifted by one; the validation split is held out
and scored every `log_every` steps (loss, perplexity, bits per character, in TensorBoard,
history.csv and a PNG). At the end the whole validation text is scored once more with the state
carried across it (every character sees everything before it, as in generation): that is
`validation_loss` in metrics.json. The tfds test split is scored once, after training, both ways
(`test_loss`, `test_loss_windowed`); nothing is chosen on it. `curve` holds the logged points
(training and windowed validation loss and perplexity, the figure reports 000/001 plotted and
printed), and `train_loss` the mean training loss of the last interval (the report's last printed
loss). The run writes its samples to samples.txt and exports a generator SavedModel whose serving
signature takes a prime, a length and a temperature and returns text.

Presets: `seed` is the reports' schedule (spro/char-rnn.pytorch defaults: 2-layer GRU-100, Adam
0.01, chunks of 200, batches of 100, 2000 steps); `best` is a 15-minute CPU recipe for the
1.45 nats/char target (1.430 on the 2-core CPU: see the README); `quick` is the tour.
"""
