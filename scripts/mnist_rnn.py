"""Thin entry point: `python scripts/mnist_rnn.py [--preset P] [--set k=v] ...` = `keras-labs run mnist-rnn ...`."""
import sys

from keras_labs.cli import main

sys.exit(main(["run", "mnist-rnn", *sys.argv[1:]]))
