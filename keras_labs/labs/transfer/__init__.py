"""Lab `transfer`: training from scratch, fine-tuning and feature extraction, side by side.

Seed report 000, exercise 2 reused a network trained on other images three ways. In 1.1.1 an
ImageNet AlexNet on CIFAR-10 reached 67% trained from scratch, 62% fine-tuned and 83% as a frozen
feature extractor: feature extraction best, fine-tuning worst. In 1.1.2 a CNN trained on MNIST
(95%) reached 77% on SVHN. This lab runs the three strategies on the same target data in one
run:

* scratch: the source architecture with fresh weights, everything trained;
* feature_extraction: the source network frozen, only a new classification head trained;
* fine_tune: the new head is trained first on the frozen network (`warmup_epochs`), so its
  random initial gradients do not wreck the pretrained features, then the whole network is
  unfrozen and trained at a lower learning rate.

While it is fine-tuned, the pretrained network's batch norm layers stay in inference mode:
they keep the source data's statistics instead of re-estimating them from small target
batches (the Keras transfer-learning guide's advice). The base is called with
`training=False`, but in Keras 3 `fit()` overrides that for a nested model, so the batch norm
layers are also kept frozen (`unfreeze_except_batch_norm`), which is what holds them there.

The settings (presets):

* `cifar-natural` is the offline version of 1.1.1, from natural images to other natural images.
  The source is a small VGG with batch norm that the suite trains on every training image of
  CIFAR-10 classes 0-4 (airplane, automobile, bird, cat, deer: about 4,000 images in the
  partial CIFAR-10 prepared here). The target is classes 5-9 (dog, frog, horse, ship, truck),
  relabelled 0-4, with 100 labelled training images per class, and it is scored on every test
  image of those classes. This differs from the report: the source saw 5 classes of a few
  thousand 32x32 images instead of ImageNet's 1,000 classes and 1.2 million images, and the
  target has 500 labelled images instead of CIFAR-10's 50,000. `feature_extraction_best` and
  `fine_tune_worst` say whether the report's ordering holds here.
* `cifar-broad-source`: `cifar-natural` from a source nearer ImageNet's role (issue 24's second
  attempt at the ordering): the same network over all ten classes, trained on every training
  image the target does not hold (about 7,650), as ImageNet holds dogs, horses, ships and
  trucks but not CIFAR-10's own pictures of them. The target's 500 labelled images are left
  out, and the source is scored on classes 0-4 only, so no target test image is read before
  the end.
* `imagenet`: a `keras.applications` backbone with ImageNet weights (target images resized)
  on the same target. It needs the weights file.
* `seed`: MNIST to the UCI handwritten digits that ship with scikit-learn (8x8, upsampled),
  fully offline.
* `svhn`: MNIST to `svhn_cropped` (street-view house numbers), the report's 1.1.2. It needs the
  dataset downloaded and prepared with `keras-labs data prepare`.

Offline, `svhn` and `imagenet` stop within seconds with one line that says what is missing.
The suite trains each source network (MNIST CNN, CIFAR-10 0-4 CNN, CIFAR-10 CNN of the rest)
once per recipe and keeps it under `<export_dir>/_models/` for later runs. When the source
already predicts the target's classes (MNIST to digits or SVHN), it is also scored on the
target as it is ("zero-shot").

Held out: a seeded `validation_fraction` of each target's labelled training data is held out.
Every strategy's per-epoch curves use it, and `best` (the strategy that is exported) is the one
with the highest validation accuracy on the first target. The test split is scored once, at the
end, for every strategy, after the choice is made.

The run leaves in metrics.json and table.md a strategy x dataset table (validation and test
accuracy, trainable parameters, time). It also leaves one plot of the validation curves with the
epoch where fine-tuning starts, TensorBoard logs per phase, and the best model as a SavedModel.
"""
