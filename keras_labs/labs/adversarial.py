"""Lab `adversarial`: targeted adversarial inputs against a trained MNIST classifier.

Seed report 000, exercise 5, task 2: "Create adversarial images to classify 4s as 9s", then
"use a random noise image to classify it as 9" and "use a zero image (matrix with all values 0)
and classify it as 9". Report 001 (same exercise) reached 9 "with 99% certainty" from noise but
"only 59%" from the all-zero image, saw similar "hotspots" in the gradient maps, and said that
noise built for a class "may be ... added to any image" to make the network see that class.

This lab runs those cases against a trained `models.mnist_cnn` (trained at the start of the run
on the same data, or reused from `<export_dir>/_models/`, see `training.mnist_classifier`)
with three targeted, iterative gradient attacks (`keras_labs.attacks`); every one keeps the
pixels in [0, 1]:

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
  with that of the noise starts, the "hotspots in the same areas" of report 001.

Pictures: original, perturbation (red: brighter, blue: darker), adversarial image and the
gradient map d p(9) / d x of the original, side by side; success rate against epsilon; the
confidence in 9 over the budget's steps from noise, zeros and 4s; the universal perturbation
and held-out 4s with it added; the mean gradient maps.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from keras_labs import ConfigError, data
from keras_labs.config import LabConfig, common, option
from keras_labs.lazy import lazy_import
from keras_labs.ledger import table

# Loaded on first use (TensorFlow, matplotlib): NAME, Config and PRESETS read without them.
attacks, training, visualization = lazy_import(
    "keras_labs.attacks", "keras_labs.training", "keras_labs.visualization")

NAME = "adversarial"
DESCRIPTION = ("targeted adversarial inputs vs an MNIST CNN (reports 000/001, ex. 5): 4s, "
               "noise and zeros -> 9 with PGD L-inf/L2, unconstrained optimization and a fixed "
               "budget; one universal perturbation scored on held-out 4s")
DATASETS = ("mnist",)
ATTACKS = ("pgd_linf", "pgd_l2", "unconstrained")


@dataclasses.dataclass(frozen=True)
class Config(LabConfig):
    source_class: int = option(4, minimum=0, maximum=9, help="the test images to attack")
    target_class: int = option(9, minimum=0, maximum=9, help="the class the attacks aim for")
    attack_examples: int = option(0, minimum=0,
                                  help="attack only the first N source-class test images (0: all)")
    linf_epsilons: tuple[float, ...] = option((0.05, 0.1, 0.15, 0.2, 0.25, 0.3), positive=True,
                                              maximum=1.0, help="L-inf budgets of pgd_linf")
    l2_epsilons: tuple[float, ...] = option((0.5, 1.0, 2.0, 3.0, 4.0), positive=True,
                                            help="L2 budgets of pgd_l2")
    pgd_steps: int = option(40, minimum=1, help="iterations of each projected gradient attack")
    step_scale: float = option(2.5, positive=True,
                               help="PGD step = step_scale * epsilon / pgd_steps")
    bisection_steps: int = option(3, minimum=0,
                                  help="refine the smallest L-inf epsilon reaching 100% (0: grid only)")
    unconstrained_steps: int = option(300, minimum=1, help="most steps of the unconstrained attack")
    unconstrained_step: float = option(0.1, positive=True, help="L2 length of one unconstrained step")
    stop_confidence: float = option(0.999, positive=True, maximum=1.0,
                                    help="the unconstrained attack on the source images stops "
                                         "at this p(target)")
    budget_steps: int = option(100, minimum=1,
                               help="gradient steps of the fixed-budget measurement (noise, zeros "
                                    "and source images -> target), the same for every start")
    budget_step_size: float = option(0.1, positive=True,
                                     help="learning rate of those steps (plain gradient ascent, "
                                          "steps not normalized)")
    budget_objective: str = option("log_probability", choices=("log_probability", "probability"),
                                   help="what the budget's steps ascend: log p(target) or p(target)")
    noise_examples: int = option(16, minimum=1, help="uniform-noise images to turn into the target")
    universal_epsilons: tuple[float, ...] = option(
        (0.1, 0.15, 0.2, 0.25, 0.3), positive=True, maximum=1.0,
        help="L-inf bounds tried for the universal perturbation (the smallest reaching "
             "universal_goal on validation is kept)")
    universal_goal: float = option(0.9, positive=True, maximum=1.0,
                                   help="share of validation source images the kept universal "
                                        "epsilon must turn into the target")
    universal_train_images: int = option(1000, minimum=1,
                                         help="training source images the universal "
                                              "perturbation is fitted on")
    universal_steps: int = option(200, minimum=1, help="minibatch steps fitting it")
    validation_fraction: float = common.validation_fraction()
    show_examples: int = option(6, minimum=1, maximum=32, help="examples per picture")
    classifier_epochs: int = option(2, minimum=1, help="epochs of the attacked classifier")
    classifier_examples: int = option(0, minimum=0,
                                      help="train the classifier on the first N images (0: all)")

    def check(self) -> None:
        if self.source_class == self.target_class:
            raise ConfigError(f"target_class={self.target_class} is the source_class; a targeted "
                              "attack needs another class")
        if not self.linf_epsilons or not self.l2_epsilons or not self.universal_epsilons:
            raise ConfigError("linf_epsilons, l2_epsilons and universal_epsilons need at least "
                              "one value each")
        if len(self.universal_epsilons) > 1 and not self.validation_fraction:
            raise ConfigError(f"universal_epsilons={self.universal_epsilons!r} are chosen on a "
                              "validation part of the training images; validation_fraction=0 "
                              "holds none out (set it > 0 or give one epsilon)")


PRESETS = {
    "seed": Config(),
    "quick": Config(attack_examples=100, linf_epsilons=(0.05, 0.1, 0.2), l2_epsilons=(1.0, 2.0),
                    pgd_steps=20, bisection_steps=0, unconstrained_steps=200,
                    unconstrained_step=0.2, noise_examples=4, universal_epsilons=(0.2, 0.3),
                    universal_train_images=300, universal_steps=100, classifier_epochs=2,
                    classifier_examples=8000),
}
DEFAULT_PRESET = "seed"

_SEED = PRESETS["seed"]
_BUDGET = (f"{_SEED.budget_steps} steps of plain gradient ascent on the "
           f"{_SEED.budget_objective.replace('_', ' ')} of 9, learning rate "
           f"{_SEED.budget_step_size:g}, no early stop, the same for every start image "
           "(report 001 gives neither its steps nor its rate)")
SEED_ITEMS = table("""
| item | preset | metric | seed | report's figure | what | options |
|---|---|---|---|---|---|---|
| 000-ex5-4to9 | seed | fours_fooled | qualitative | 4s classified as 9s | adversarial images make test 4s classify as 9s |  |
| 001-ex5-noise | seed | budget.noise.confidence | 0.99 | 99% certainty | uniform noise -> 9: the model's confidence in 9 | tolerance=0.005 |
| 001-ex5-zeros | seed | budget.zeros.confidence | 0.59 | only 59% | the all-zero image -> 9: the model's confidence in 9 | tolerance=0.005 |
| 001-ex5-universal | seed | universal_fools_heldout | qualitative | noise ... added to any image | one noise pattern added to any image makes the network see the class |  |
| 001-ex5-hotspots | seed | gradient_hotspots_shared | qualitative | "hotspots" in somewhat the same areas | the gradient maps of noise and of 4s have hotspots in the same areas |  |
""", notes={
    "000-ex5-4to9": f"true when >= 90% of the test 4s are called 9 after the budget ({_BUDGET})",
    "001-ex5-noise": f"mean over {_SEED.noise_examples} noise images after {_BUDGET}; "
                     "budget.noise.confidence_min and steps_to_99 beside it",
    "001-ex5-zeros": f"after {_BUDGET}; higher is a stronger attack: under the same budget "
                     "the zero image climbs as noise does, so the report's 59% (a lower "
                     "certainty for zeros) does not reproduce",
    '001-ex5-universal':
        'one L-inf bounded perturbation fitted on training 4s, its epsilon chosen on '
        'validation 4s; true when it turns >= 50% of the held-out test 4s into 9s '
        '(universal.success_rate_heldout)',
    '001-ex5-hotspots':
        'true when the mean d log p(9) / d x maps of the test 4s and of the noise starts '
        'correlate > 0.3 (gradient_map_correlation)',
})
PRESET_MINUTES = {"seed": 20}


# --------------------------------------------------------------------------------------------
# The run


def run(config: Config, workdir: str, *, resume: bool = False) -> dict:
    """Trains (or reuses) the classifier, runs every attack and case; returns the metrics."""
    run, strategy = training.start(NAME, config, workdir, resume=resume)
    datasets, source = run.load_data("mnist")
    model, classifier = training.mnist_classifier(
        datasets, source, config.export_dir, epochs=config.classifier_epochs,
        train_examples=config.classifier_examples, seed=config.seed, strategy=strategy)

    test_images, test_labels = data.to_numpy(datasets["test"])
    test_images = test_images.astype(np.float32) / 255.0
    source_images = test_images[test_labels == config.source_class]
    if config.attack_examples:
        source_images = source_images[:config.attack_examples]
    source_name, target = str(config.source_class), config.target_class
    clean = np.asarray(model.predict(source_images, batch_size=1000, verbose=0))
    print(f"{NAME}: {len(source_images)} test {source_name}s, classified as {source_name}: "
          f"{(clean.argmax(axis=1) == config.source_class).mean():.4f}", flush=True)

    summaries: dict[str, dict] = {"pgd_linf": {}, "pgd_l2": {}}
    adversarials: dict[str, np.ndarray] = {}
    for norm, epsilons in (("linf", config.linf_epsilons), ("l2", config.l2_epsilons)):
        for epsilon in sorted(epsilons):
            found = attacks.pgd_attack(model, source_images, target, norm=norm, epsilon=epsilon,
                               steps=config.pgd_steps, step_size=config.step_scale * epsilon
                               / config.pgd_steps)
            summary = attacks.summarize(model, source_images, found, target)
            summaries[f"pgd_{norm}"][f"{epsilon:g}"] = summary
            adversarials[f"pgd_{norm}@{epsilon:g}"] = found
            print(f"pgd_{norm} epsilon {epsilon:g}: success {summary['success_rate']:.4f}, mean "
                  f"confidence {summary['mean_confidence']:.4f}", flush=True)

    smallest = _smallest_linf_epsilon(model, source_images, target, config, summaries["pgd_linf"])

    found, _ = attacks.unconstrained_attack(model, source_images, target, steps=config.unconstrained_steps,
                                    step_length=config.unconstrained_step,
                                    stop_confidence=config.stop_confidence)
    summaries["unconstrained"] = attacks.summarize(model, source_images, found, target)
    adversarials["unconstrained"] = found

    noise = np.random.default_rng(config.seed).random(
        (config.noise_examples, *model.input_shape[1:])).astype(np.float32)
    zeros = np.zeros((1, *model.input_shape[1:]), dtype=np.float32)
    budget = {"steps": config.budget_steps, "step_size": config.budget_step_size,
              "objective": config.budget_objective, "early_stop": False}
    curves, case_images = {}, {}
    for name, start in (("noise", noise), ("zeros", zeros), ("source", source_images)):
        budget[name], found, curves[name] = attacks.budget_summary(
            model, start, target, steps=config.budget_steps, step_size=config.budget_step_size,
            objective=config.budget_objective)
        case_images[name] = (start, found)
        print(f"budget, {name} -> {target}: confidence {budget[name]['confidence']:.4f} (min "
              f"{budget[name]['confidence_min']:.4f}) after {config.budget_steps} steps, 99% at "
              f"step {budget[name]['steps_to_99']}", flush=True)

    train_images, validation_images, validation_split = _training_source_images(datasets, config)
    # The epsilon is chosen on the validation part of the training source images; the test
    # images only score the perturbation kept.
    universal, perturbation = attacks.fit_universal(
        model, train_images, validation_images, source_images, target,
        epsilons=config.universal_epsilons, goal=config.universal_goal,
        steps=config.universal_steps, step_scale=config.step_scale, seed=config.seed)
    print(f"universal perturbation, L-inf {universal['epsilon']:g} fitted on "
          f"{universal['train_images']} training {source_name}s: held-out success "
          f"{universal['success_rate_heldout']:.4f}", flush=True)

    control_class = next(label for label in range(model.output_shape[-1])
                         if label not in (config.source_class, target))
    gradient_maps, correlations, control = attacks.gradient_map_correlations(
        model, {"source": source_images, "noise": noise, "zeros": zeros}, target,
        reference="source", control=("noise", control_class))
    correlation = correlations["noise"]

    _plots(run, config, model, source_images, adversarials, summaries, smallest, curves,
           case_images, perturbation, universal, gradient_maps)
    metrics = {
        "success_rate": {
            "pgd_linf": {key: value["success_rate"] for key, value in summaries["pgd_linf"].items()},
            "pgd_l2": {key: value["success_rate"] for key, value in summaries["pgd_l2"].items()},
            "unconstrained": summaries["unconstrained"]["success_rate"],
        },
        "attacks": summaries,
        "smallest_linf_epsilon_for_100_percent": smallest["epsilon"],
        "smallest_linf_epsilon_search": smallest,
        "budget": budget,
        "fours_fooled": budget["source"]["success_rate"] >= 0.9,
        "universal": universal,
        "universal_fools_heldout": universal["success_rate_heldout"] >= 0.5,
        "validation_split": validation_split,
        "gradient_map_correlation": correlation,
        "gradient_map_correlation_zeros": correlations["zeros"],
        # Chance level: the noise maps towards another class, against the source -> target map.
        "gradient_map_correlation_control": control,
        # Maps of independent pixels would correlate within +-0.07 (2 / sqrt(784)); gradient maps
        # are smooth, with fewer independent areas, so the bar is set well above that: 0.3, about
        # a tenth of the variance shared.
        "gradient_hotspots_shared": correlation > 0.3,
        "source_class": config.source_class,
        "target_class": target,
        "source_examples": len(source_images),
        "clean_accuracy_on_source": float((clean.argmax(axis=1) == config.source_class).mean()),
        "clean_target_rate": float((clean.argmax(axis=1) == target).mean()),
        "classifier": {key: classifier[key] for key in ("path", "reused", "test_accuracy")},
    }
    print(f"{NAME}: smallest L-inf epsilon turning every {source_name} into a {target}: "
          f"{smallest['epsilon']}; after {config.budget_steps} steps noise -> {target} at "
          f"{budget['noise']['confidence']:.4f}, zeros -> {target} at "
          f"{budget['zeros']['confidence']:.4f}; universal perturbation: "
          f"{universal['success_rate_heldout']:.4f} of held-out {source_name}s; gradient maps "
          f"correlate {correlation:.3f} on {source.describe()}")
    return run.finish(metrics)


def _training_source_images(datasets, config: Config):
    """The training images of the source class, split into the part the universal
    perturbation is fitted on (its first `universal_train_images`) and a seeded validation part.

    Returns:
        (fitting images, validation images or None, the split's record), images in [0, 1].
    """
    source = datasets["train"].filter(lambda image, label: label == config.source_class)
    fit, validation, record = data.split_validation(source, config.validation_fraction,
                                                    config.seed)
    fit_images = data.to_numpy(data.first(fit, config.universal_train_images))[0]
    record = {**record, "of": f"training {config.source_class}s",
              "fitted_on": len(fit_images)}
    validation_images = None if validation is None else \
        data.to_numpy(validation)[0].astype(np.float32) / 255.0
    return fit_images.astype(np.float32) / 255.0, validation_images, record


def _smallest_linf_epsilon(model, images, target, config: Config, grid: dict) -> dict:
    """The smallest L-inf epsilon of the grid with a 100% success rate, then bisection between
    it and the largest grid value below it (each probe is a full PGD run on every image)."""
    values = sorted((float(key), summary["success_rate"]) for key, summary in grid.items())
    complete = [epsilon for epsilon, rate in values if rate >= 1.0]
    result = {"grid_epsilon": complete[0] if complete else None, "probes": {}}
    if not complete:
        result["epsilon"] = None
        return result
    high = complete[0]
    low = max([epsilon for epsilon, _ in values if epsilon < high], default=0.0)
    for _ in range(config.bisection_steps):
        middle = round((low + high) / 2, 4)
        found = attacks.pgd_attack(model, images, target, norm="linf", epsilon=middle,
                           steps=config.pgd_steps, step_size=config.step_scale * middle
                           / config.pgd_steps)
        rate = attacks.summarize(model, images, found, target)["success_rate"]
        result["probes"][f"{middle:g}"] = rate
        if rate >= 1.0:
            high = middle
        else:
            low = middle
    result["epsilon"] = high
    return result


def _plots(run, config: Config, model, originals, adversarials, summaries, smallest, curves,
           case_images, perturbation, universal, gradient_maps) -> None:
    target, source = config.target_class, config.source_class
    panels = {}
    for norm, label in (("pgd_linf", "L-inf"), ("pgd_l2", "L2")):
        epsilons = [float(key) for key in summaries[norm]]
        panels[f"success rate, {label} budget"] = {
            "success rate": (epsilons, [summaries[norm][key]["success_rate"] for key in summaries[norm]]),
            f"mean p({target})": (epsilons, [summaries[norm][key]["mean_confidence"]
                                             for key in summaries[norm]])}
    visualization.plot_curves(panels, run.plot_path("success_vs_epsilon"), x_label="epsilon",
                              title=f"targeted PGD, {source} -> {target}, {len(originals)} "
                                    "test images",
                              references={name: {"100%": 1.0} for name in panels})

    shown = originals[:config.show_examples]
    gradient = attacks.gradient_map(model, shown, target)
    before = np.asarray(model.predict(shown, verbose=0))
    linf_key = f"pgd_linf@{smallest['grid_epsilon'] or max(config.linf_epsilons):g}"
    l2_key = f"pgd_l2@{max(config.l2_epsilons):g}"
    for key, title in ((linf_key, f"PGD L-inf, epsilon {linf_key.split('@')[1]}"),
                       (l2_key, f"PGD L2, epsilon {l2_key.split('@')[1]}"),
                       ("unconstrained", "unconstrained optimization")):
        found = adversarials[key][:config.show_examples]
        after = np.asarray(model.predict(found, verbose=0))
        _side_by_side(run.plot_path(f"examples_{key.split('@')[0]}"), shown, found, gradient,
                      before, after, source, target, title=f"{title}: {source} -> {target}")

    starts = np.concatenate([case_images["noise"][0][:3], case_images["zeros"][0]])
    found = np.concatenate([case_images["noise"][1][:3], case_images["zeros"][1]])
    _side_by_side(run.plot_path("noise_and_zeros"), starts, found, attacks.gradient_map(model, starts, target),
                  np.asarray(model.predict(starts, verbose=0)),
                  np.asarray(model.predict(found, verbose=0)), None, target,
                  title=f"uniform noise (rows 1-3) and the zero image (row 4) -> {target}")
    labels = {"noise": "uniform noise (mean)", "zeros": "zero image", "source": f"test {source}s (mean)"}
    visualization.plot_curves(
        {f"p({target})": {labels[name]: (np.arange(len(curve)), curve)
                          for name, curve in curves.items()}},
        run.plot_path("confidence_over_steps"), x_label="gradient step", markers=False,
        title=f"fixed budget towards {target}: learning rate {config.budget_step_size:g} on "
              f"{config.budget_objective.replace('_', ' ')}",
        references={f"p({target})": {"99%": 0.99, "report 001, zeros: 59%": 0.59}})

    shown = originals[:config.show_examples]
    perturbed = attacks.apply_perturbation(shown, perturbation)
    before = np.asarray(model.predict(shown, verbose=0))[:, target]
    after = np.asarray(model.predict(perturbed, verbose=0))[:, target]
    visualization.image_table(
        [visualization.diverging_rgb(perturbation)[None], np.repeat(shown, 3, axis=-1),
         np.repeat(perturbed, 3, axis=-1)],
        run.plot_path("universal_perturbation"),
        row_titles=["perturbation", f"held-out {source}s", "+ perturbation"],
        cell_titles=[[f"L-inf {universal['epsilon']:g}"],
                     [f"p({target})={value:.2f}" for value in before],
                     [f"p({target})={value:.2f}" for value in after]],
        title=f"one perturbation fitted on {universal['train_images']} training {source}s: "
              f"{universal['success_rate_heldout']:.0%} of {universal['heldout_images']} "
              f"held-out {source}s -> {target}")
    visualization.image_table(
        [np.stack([visualization.diverging_rgb(gradient_maps[name]) for name in labels])],
        run.plot_path("gradient_maps"),
        cell_titles=[[labels[name] for name in labels]],
        title=f"mean d log p({target}) / d x at the start (each map scaled to unit norm)",
        cell_size=2.2)


def _side_by_side(path, originals, adversarials, gradients, before, after, source, target,
                  title):
    """Rows of: original, perturbation, adversarial image, gradient map d p(target) / d x."""
    rows, captions = [], []
    limit = max(float(np.abs(adversarials - originals).max()), 1e-6)
    for index in range(len(originals)):
        perturbation = adversarials[index] - originals[index]
        rows.append(np.stack([
            np.repeat(originals[index], 3, axis=-1),
            visualization.diverging_rgb(perturbation, limit),
            np.repeat(adversarials[index], 3, axis=-1),
            visualization.diverging_rgb(gradients[index])]))
        first = f"p({source})={before[index, source]:.2f} " if source is not None else ""
        captions.append([
            f"{first}p({target})={before[index, target]:.2f}",
            f"L2 {np.sqrt((perturbation ** 2).sum()):.2f}, Linf {np.abs(perturbation).max():.2f}",
            f"p({target})={after[index, target]:.3f}",
            f"d p({target}) / d x"])
    visualization.image_table(rows, path, cell_titles=captions, title=title, cell_size=1.9)
