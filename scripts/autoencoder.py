"""Thin entry point: `python scripts/autoencoder.py [--preset P] [--set k=v] ...` = `keras-labs run autoencoder ...`."""
import sys

from keras_labs.cli import main

sys.exit(main(["run", "autoencoder", *sys.argv[1:]]))
