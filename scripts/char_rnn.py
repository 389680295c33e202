"""Thin entry point: `python scripts/char_rnn.py [--preset P] [--set k=v] ...` = `keras-labs run char-rnn ...`."""
import sys

from keras_labs.cli import main

sys.exit(main(["run", "char-rnn", *sys.argv[1:]]))
