"""Thin entry point: `python scripts/gan.py [--preset P] [--set k=v] ...` = `keras-labs run gan ...`."""
import sys

from keras_labs.cli import main

sys.exit(main(["run", "gan", *sys.argv[1:]]))
