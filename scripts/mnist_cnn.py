"""Thin entry point: `python scripts/mnist_cnn.py [--preset P] [--set k=v] ...` = `keras-labs run mnist-cnn ...`."""
import sys

from keras_labs.cli import main

sys.exit(main(["run", "mnist-cnn", *sys.argv[1:]]))
