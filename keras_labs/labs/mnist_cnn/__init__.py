"""Lab `mnist-cnn`: a small CNN on MNIST, the suite's vertical slice.

Seed report 000, exercise 2: "Train a CNN on the mnist dataset: 95% accuracy". The `seed` preset
goes further (at least 99.0% on full MNIST) with a two-stage conv net, batch norm, dropout and
Adam on a cosine schedule. A seeded `validation_fraction` of the training split is held out for
the per-epoch curves; the test split is scored once, at the end. The run leaves validation and
test accuracy, per-class test accuracy, a confusion matrix, loss/accuracy curves, TensorBoard logs
(weight histograms, activation statistics and filters on a fixed probe batch) and a SavedModel.
"""
