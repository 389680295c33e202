"""Thin entry point: `python scripts/cifar_cnn.py [--preset P] [--set k=v] ...` = `keras-labs run cifar-cnn ...`."""
import sys

from keras_labs.cli import main

sys.exit(main(["run", "cifar-cnn", *sys.argv[1:]]))
