"""Lab `deconvnet`: what do the feature maps of a small CIFAR-10 CNN respond to?

Seed report 002, task 2: train a two-stage CNN on CIFAR-10, then map activations back to pixel
space with a Zeiler-Fergus deconvnet (`deconvolution.py`): the switches of every max pool
are recorded on the way up; on the way down the signal is unpooled with them, rectified and
passed through the transposed convolution with the layer's own filters. The report's three
views:

1. all activations of conv block 1 and of conv block 2, projected for 5 test images;
2. only the strongest feature map of each block (every other activation set to zero);
3. for one feature map, the 9 examples that activate it most, each with the projection of its
   strongest activation (the paper's figure 2), here for both blocks.

The run leaves those grids (named in `figures_written`), the first-layer filters, training curves
on a seeded `validation_fraction` of the training split, validation and test accuracy (the test
split scored once, after training), the top-9 examples of each chosen map in metrics.json, and the
classifier as a SavedModel. The grids show test images, as the report's did: they pick nothing
that is scored.
"""
