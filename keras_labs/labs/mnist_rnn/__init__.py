"""Lab `mnist-rnn`: SimpleRNN, LSTM and GRU reading MNIST digits row by row, against the CNN.

Seed report 002, task 3: every 28x28 image is a sequence of 28 time steps of 28 pixels; one
recurrent layer reads it and a softmax on its last output names the digit. The report trained
SimpleRNN, LSTM and GRU cells with 20, 15, 10 and 5 hidden units and saw LSTM at ~95% (15-20
units), ~90% (10) and ~75% (5), GRU at ~95% / ~85% / ~65%, SimpleRNN lower. This lab trains all
twelve in one run, with train and validation accuracy and loss curves for each (the validation
part a seeded `validation_fraction` of the training split), one table of the twelve against the
report's figures (metrics.json, results.md), and, for the report's part C, the CNN of `mnist-cnn`
(`keras_labs.models.cnn.mnist_cnn`) trained on the same data and epochs: parameters, accuracy and
time per epoch side by side. Each model's test accuracy is scored once, after its training.
The report's three claims are checked as booleans in metrics.json: `simplernn_falls_with_units`,
`lstm_beats_gru_small` and `cnn_beats_every_rnn`.
"""
