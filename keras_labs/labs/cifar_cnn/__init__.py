"""Lab `cifar-cnn`: every CIFAR-10 classification experiment of the seed reports, instrumented.

The presets reproduce, one each, the CIFAR-10 networks of the seed reports:

* `tutorial` (report 004, task 1): the PyTorch tutorial network, two 5x5 convolutions (6 and 16
  filters) and three dense layers (120, 84, 10), SGD with momentum at batch 4 for 2 epochs. The
  report saw 54% on the full test set, printed the mean training loss of every 2,000
  mini-batches, and shows 4 test images with true and predicted labels and a per-class accuracy
  table; so does this lab.
* `deepdiva-sgd`, `deepdiva-adam`, `deepdiva-basic-copy` (report 001, exercise 1): DeepDIVA's
  `CNN_basic` (three strided convolutions with leaky ReLU and one dense layer) with seed 42 and
  DeepDIVA's defaults (learning rate 0.001, batch 64, 5 epochs), SGD without momentum vs Adam,
  and the report's modified copy of the network (the report does not say what was modified; our
  stand-in adds a 128-unit hidden layer). Reports: 23.11%, 60.45%, 52.94%.
* `minor-10ep` (report 003, question 1): a VGG-style CNN trained 10 epochs with the training
  loss per epoch; the report said 82%.
* `report002-*` (report 002, task 1): the TensorFlow template network (two 5x5 conv layers and
  a dense layer) over the report's grid of activation, optimizer, initializer, regularization,
  batch size and learning rate; the report saw ~96% train vs ~52-58% test accuracy.
* `best`: our recipe (a small residual network with batch norm, augmentation, label smoothing,
  SGD with Nesterov momentum and decoupled weight decay on a one-cycle schedule, test-time
  flips) that beats every seed number within 10 epochs.
* `quick`: a small batch-norm CNN for the tour.

Partial CIFAR-10 has fewer training images than the reports' 50,000, so each data-limited preset
has an `-equal-updates` twin (`equal_updates_examples=50000`) that scales the epochs until the
gradient steps equal the report's: the fair second reading of the seed ledger.

A seeded `validation_fraction` of the training images is held out for the per-epoch curves; the
test split is scored once, at the end, and selects nothing.

Every knob is a config field, so any mix is one `--set` away, and `keras-labs sweep cifar-cnn
--grid activation=relu,tanh --grid optimizer=adam,momentum` runs a grid of them.

Besides validation, test and per-class accuracy, a confusion matrix and loss/accuracy curves, a run logs to
TensorBoard (`tb/`) the weight histograms (Keras's TensorBoard callback) and, in
`tb/instrumentation`, what report 002 plotted by hand: per conv layer, on a fixed probe batch,
the histogram of activations with their min, max, mean, std and fraction of zeros, and the
first conv layer's filters as an image grid (also PNG files under `plots/`).
"""
