"""Lab `gan`: generative adversarial networks on MNIST, the two losses of the reports, measured.

Seed report 000, exercise 5, task 1 trains a GAN on MNIST with "the original loss as described
by Ian Goodfellow" and with "the logistic loss as described in Brandon Amos' blog", for 20k and
100k iterations, and compares the loss curves and samples. Report 001 (same exercise) saw the
Goodfellow loss favour some digits ("particularly 1s and 9s") and, after a while, "only produce
1s"; it suggests inputs in [-1, 1], a "spherical Z" instead of a uniform one, and a modified
loss. This lab runs all of that and measures what the reports only described by eye.

The two losses (config field `loss`), with D(x) = sigmoid(discriminator logit):

* `minimax`: the original loss of Goodfellow et al. (2014). The discriminator maximizes
  log D(x) + log(1 - D(G(z))); the generator minimizes log(1 - D(G(z))). Its gradient vanishes
  when D confidently rejects the samples, which is the case early in training.
* `non_saturating`: the "logistic" (non-saturating) loss, also from the paper and the one in
  Amos' blog. The discriminator is the same; the generator minimizes -log D(G(z)), which has
  the same fixed point but strong gradients exactly when D rejects the samples.

The improvements from the reports are flags: `inputs="symmetric"` (images in [-1, 1], tanh
output instead of sigmoid), `latent="gaussian"` (spherical z instead of uniform in [-1, 1]),
`label_smoothing` (one-sided: real targets 1 - s, fake targets stay 0), `conditional` (a
conditional GAN: the digit label goes into both networks) and `architecture` (`mlp`: fully
connected networks as in the original paper; `dcgan`: the convolutional DCGAN of Radford et al.).
The first two are on by default: with images in [0, 1] (the reports' setup, `--set inputs=unit
--set latent=uniform`, or `inputs=unit` alone) this MLP GAN trained with the non-saturating
loss collapses within 2,000 steps to one noisy pattern, while [-1, 1] alone avoids that; so
the presets compare the two losses with both improvements on.

Two presets leave those defaults. `report-setup` is the reports' own set-up: the course's
"vanilla GAN" that both reports modified (one hidden layer of 128 ReLU units in each network,
no dropout, Adam at its defaults of 1e-3 and beta_1 0.9, batches of 128, images in [0, 1] with a
sigmoid output, z uniform in [-1, 1]) trained with the minimax loss; it is the run that shows
(or fails to show) report 001's mode collapse. `conditional` is report 000's "add labels":
the non-saturating 20k run with the digit label fed to both networks.

The GAN (`models.gan.GAN`) is a `keras.Model` whose `train_step` takes one discriminator and
one generator step with `tf.GradientTape` and two Adam optimizers, so `training.fit`, callbacks,
backups and `tf.distribute` (mirrored strategy included) all apply. Every random draw in
`train_step` comes from a `tf.random.Generator` owned by the model, seeded by `seed` and saved
in the backups. One iteration is one generator step; `fit` runs `iterations / sample_every`
"epochs" of `sample_every` steps, and after each one the lab:

* draws a grid from the same fixed noise (a PNG, and an image in TensorBoard), which together
  make the contact sheet over training;
* scores `score_samples` generated digits (`scoring.SampleScorer`) with a trained MNIST
  classifier (`models.cnn.mnist_cnn`, trained at the start of the run on the same data or reused
  from an earlier run, see `cached_models.mnist_classifier`): the class histogram, the share of
  the most frequent class (`largest_class_share`: 0.1 is a perfect spread over ten digits, 1.0
  is total mode collapse), the entropy of the histogram in bits (`class_entropy`, at most
  log2(10) = 3.32), and `classifier_fid`, the Frechet distance between the classifier's
  penultimate ("features") activations on generated digits and on the reference test digits
  (those the floor below does not use);
* saves a backup (`training.Backup`: both networks, both optimizers, the dropout and random
  generator states, the step), so a killed run continues where it stopped with
  `resume(run_folder)` (`keras-labs run gan --resume RUN_FOLDER`).

The "floor" (`metrics["floor"]`) is what real digits score with the same instrument: the first
`score_samples` digits of the mnist TEST split (at most half of it), scored exactly as the
generated ones against a Frechet reference made of the remaining test digits, so the two sets
are disjoint and no training digit is used. The test split selects nothing: no preset, step or
setting is chosen by these scores, they are only reported.

Mode collapse is read from the final scores: `largest_class` (the digit generated most often),
`mode_collapse` (its share is at least `MODE_COLLAPSE_SHARE`, 0.5) and `no_mode_collapse` (at
most `SPREAD_SHARE`, 0.2); report 001's "affinity for 1s and 9s" is `favours_1s_and_9s`
(the generated share of 1s and 9s, `share_of_1s_and_9s`, is at least `AFFINITY_RATIO` times
theirs in the floor: 1 is MNIST's most frequent digit, so a largest class of 1 alone shows
nothing). Report 000's "higher highs and lower lows" of the original loss is
`generator_loss_range` (and `discriminator_loss_range`): max - min of the loss curve in
losses.csv (means over windows of `sample_every / 20` steps), leaving out the first 10% of the
steps, where both losses move fast for either objective.

The run leaves history.csv (per interval: D and G loss, mean D(x) and D(G(z)), the scores),
losses.csv (D and G loss averaged over short windows), scores.json (the histograms), plots
(loss curves, scores over training, final histogram, sample grids, contact sheet), TensorBoard
logs and the generator as a SavedModel that maps z (and a label) to images in [0, 1].
"""
