"""Thin entry point: `python scripts/embeddings.py [--preset P] [--set k=v] ...` = `keras-labs run embeddings ...`."""
import sys

from keras_labs.cli import main

sys.exit(main(["run", "embeddings", *sys.argv[1:]]))
