"""Thin entry point: `python scripts/transfer.py [--preset P] [--set k=v] ...` = `keras-labs run transfer ...`."""
import sys

from keras_labs.cli import main

sys.exit(main(["run", "transfer", *sys.argv[1:]]))
