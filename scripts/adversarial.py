"""Thin entry point: `python scripts/adversarial.py [--preset P] [--set k=v] ...` = `keras-labs run adversarial ...`."""
import sys

from keras_labs.cli import main

sys.exit(main(["run", "adversarial", *sys.argv[1:]]))
