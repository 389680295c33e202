"""Lab `adversarial`: targeted adversarial inputs against a trained MNIST classifier.

Seed report 000, exercise 5, task 2: "Create adversarial images to classify 4s as 9s", then
"use a random noise image to classify it as 9" and "use a zero image (matrix with all values 0)
and classify it as 9". Report 001 (same exercise) reached 9 "with 99% certainty" from noise but
"only 59%" from the all-zero image, saw similar "hotspots" in the gradient maps, and said that
noise built for a class "may be ... added to any image" to make the network see that class.

This lab runs those cases against a trained `models.cnn.mnist_cnn` (trained at the start of the
run on the same data, or reused from `<export_dir>/_models/`, see
`cached_models.mnist_classifier`) with three targeted, iterative gradient attacks (`attacks`,
in this package); every one keeps the pixels in [0, 1]:

* `pgd_linf`: projected gradient descent on the cross-entropy of the target class, signed
  steps, projected onto the L-inf ball of radius epsilon around the original (Madry et al.);
* `pgd_l2`: the same with L2-normalized steps and the L2 ball;
* `unconstrained`: the reports' input optimization, gradient ascent on log p(target | x) with
  no distance budget (normalized steps of `unconstrained_step` in L2), stopping for each image
  once p(target) reaches `stop_confidence`.

Cases: every 4 in the test set -> 9 with each attack and each epsilon (success rate, mean and
max perturbation in L2 and L-inf, mean confidence). The run reports the smallest L-inf epsilon
of the grid that turns every 4 into a 9, refined by bisection.

The reports' figures come from three experiments of their own:

* `budget`: uniform noise, the all-zero image and the test 4s -> 9 by plain gradient ascent
  with the same fixed budget for every start (`budget_steps` steps of learning rate
  `budget_step_size` on `budget_objective`, no early stop): the confidence reached, the steps
  needed to reach 99%, and the confidence after every step. A stopping threshold would only
  measure itself.
* `universal`: one L-inf bounded perturbation fitted on training 4s (never on the test 4s),
  its epsilon the smallest of `universal_epsilons` that turns `universal_goal` of a seeded
  validation part of the training 4s into 9s, then added unchanged to the held-out test 4s.
* `gradient_map_correlation`: the correlation of the mean d log p(9) / d x map of the test 4s
  with that of the noise starts, the "hotspots in the same areas" of report 001;
  `perturbation_map_correlation` asks the same of what the budget's ascent added up (each
  start's change, scaled to unit length), which depends on the budget (preset
  `hotspots-budget` tries a longer one of smaller steps).

Pictures: original, perturbation (red: brighter, blue: darker), adversarial image and the
gradient map d p(9) / d x of the original, side by side; success rate against epsilon; the
confidence in 9 over the budget's steps from noise, zeros and 4s; the universal perturbation
and held-out 4s with it added; the mean gradient maps.
"""
