"""Thin entry point: `python scripts/deconvnet.py [--preset P] [--set k=v] ...` = `keras-labs run deconvnet ...`."""
import sys

from keras_labs.cli import main

sys.exit(main(["run", "deconvnet", *sys.argv[1:]]))
