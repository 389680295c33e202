"""Lab `autoencoder`: a convolutional autoencoder with a classification head on its code.

Seed report 004, tasks 2-3, and report 003, question 2. The encoder has two conv stages (6 then
16 channels, each a 5x5 convolution, a ReLU and a 2x2 max pool: the codes z1 and z2 of report
004); a classifier (the report's 120-84-10 dense head) reads z2, and a decoder of two
transposed convolutions rebuilds the image from z2. The model outputs (y, x_hat) and trains on

    loss = reconstruction (mean squared error) + w * classification (cross-entropy)

with `w` a config field (report 003 used 0.1). The run leaves the per-epoch reconstruction,
classification and total losses (train, and validation on a seeded `validation_fraction` of the
training split) in history.csv and metrics.json, test accuracy, scored once after training
(report 004: 56.15%; report 003 set its autoencoder against a plain CNN's 82%), image quality as
PSNR and SSIM (instead of report 003's "reconstruction accuracy"), and the grids:
originals over reconstructions, and report 004's task 3, the reconstructions of a training and a
test image from a single channel of z1 (the other 5 zeroed) and from groups of 3 channels of z2
(the others zeroed). With `w_sweep` (preset `w-sweep`) it also trains one model per `w` and plots
test accuracy against PSNR: how much image quality the classification term costs.
"""
