"""Thin entry point: `python scripts/word_rnn.py [--preset P] [--set k=v] ...` = `keras-labs run word-rnn ...`."""
import sys

from keras_labs.cli import main

sys.exit(main(["run", "word-rnn", *sys.argv[1:]]))
