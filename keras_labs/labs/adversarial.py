"""Lab `adversarial`: targeted adversarial inputs against a trained MNIST classifier.

Seed report 000, exercise 5, task 2: "Create adversarial images to classify 4s as 9s", then
"use a random noise image to classify it as 9" and "use a zero image (matrix with all values 0)
and classify it as 9". Report 001 (same exercise) reached 9 "with 99% certainty" from noise but
"only 59%" from the all-zero image, and saw similar "hotspots" in the gradient maps.

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
max perturbation in L2 and L-inf, mean confidence), uniform noise -> 9 and the all-zero image
-> 9 (the unconstrained optimization, as in the reports). The run reports the smallest L-inf
epsilon of the grid that turns every 4 into a 9, refined by bisection.

Pictures: original, perturbation (red: brighter, blue: darker), adversarial image and the
gradient map d p(9) / d x of the original, side by side; success rate against epsilon; the
confidence in 9 over the optimization steps from noise and from zeros.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from keras_labs import ConfigError, data
from keras_labs.config import LabConfig, option
from keras_labs.lazy import lazy_import

# Loaded on first use (TensorFlow, matplotlib): NAME, Config and PRESETS read without them.
attacks, training, visualization = lazy_import(
    "keras_labs.attacks", "keras_labs.training", "keras_labs.visualization")

NAME = "adversarial"
DESCRIPTION = ("targeted adversarial inputs vs an MNIST CNN (reports 000/001, ex. 5): 4s, "
               "noise and zeros -> 9 with PGD L-inf/L2 and unconstrained optimization")
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
                                    help="the unconstrained attack stops at this p(target)")
    noise_examples: int = option(16, minimum=1, help="uniform-noise images to turn into the target")
    show_examples: int = option(6, minimum=1, maximum=32, help="examples per picture")
    classifier_epochs: int = option(2, minimum=1, help="epochs of the attacked classifier")
    classifier_examples: int = option(0, minimum=0,
                                      help="train the classifier on the first N images (0: all)")

    def check(self) -> None:
        if self.source_class == self.target_class:
            raise ConfigError(f"target_class={self.target_class} is the source_class; a targeted "
                              "attack needs another class")
        if not self.linf_epsilons or not self.l2_epsilons:
            raise ConfigError("linf_epsilons and l2_epsilons need at least one value each")


PRESETS = {
    "seed": Config(),
    "quick": Config(attack_examples=100, linf_epsilons=(0.05, 0.1, 0.2), l2_epsilons=(1.0, 2.0),
                    pgd_steps=20, bisection_steps=0, unconstrained_steps=200,
                    unconstrained_step=0.2, noise_examples=4, classifier_epochs=2,
                    classifier_examples=8000),
}
DEFAULT_PRESET = "seed"


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
    cases, curves, case_images = {}, {}, {}
    for name, start in (("noise", noise), ("zeros", zeros)):
        found, curve = attacks.unconstrained_attack(model, start, target, steps=config.unconstrained_steps,
                                            step_length=config.unconstrained_step,
                                            stop_confidence=config.stop_confidence)
        confidence = np.asarray(model.predict(found, verbose=0))[:, target]
        start_confidence = np.asarray(model.predict(start, verbose=0))[:, target]
        reached = np.nonzero(curve >= 0.99)[0]
        cases[name] = {
            "confidence": float(confidence.mean()),
            "min_confidence": float(confidence.min()),
            "start_confidence": float(start_confidence.mean()),
            "share_at_99_percent": float((confidence >= 0.99).mean()),
            "success_rate": float((np.asarray(model.predict(found, verbose=0)).argmax(axis=1)
                                   == target).mean()),
            "steps_to_99_percent": int(reached[0]) if len(reached) else None,
            "mean_l2_change": float(attacks.l2_norms(found - start).mean()),
            "examples": len(start),
        }
        curves[name], case_images[name] = curve, (start, found)
        print(f"{name} -> {target}: confidence {cases[name]['confidence']:.4f} (from "
              f"{cases[name]['start_confidence']:.4f})", flush=True)

    _plots(run, config, model, source_images, adversarials, summaries, smallest, curves,
           case_images)
    metrics = {
        "success_rate": {
            "pgd_linf": {key: value["success_rate"] for key, value in summaries["pgd_linf"].items()},
            "pgd_l2": {key: value["success_rate"] for key, value in summaries["pgd_l2"].items()},
            "unconstrained": summaries["unconstrained"]["success_rate"],
        },
        "attacks": summaries,
        "smallest_linf_epsilon_for_100_percent": smallest["epsilon"],
        "smallest_linf_epsilon_search": smallest,
        "noise": cases["noise"],
        "zeros": cases["zeros"],
        "source_class": config.source_class,
        "target_class": target,
        "source_examples": len(source_images),
        "clean_accuracy_on_source": float((clean.argmax(axis=1) == config.source_class).mean()),
        "clean_target_rate": float((clean.argmax(axis=1) == target).mean()),
        "classifier": {key: classifier[key] for key in ("path", "reused", "test_accuracy")},
    }
    print(f"{NAME}: smallest L-inf epsilon turning every {source_name} into a {target}: "
          f"{smallest['epsilon']}; noise -> {target} at {cases['noise']['confidence']:.4f}, "
          f"zeros -> {target} at {cases['zeros']['confidence']:.4f} on {source.describe()}")
    return run.finish(metrics)


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
           case_images) -> None:
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
    visualization.plot_curves(
        {f"p({target})": {name: (np.arange(len(curve)), curve) for name, curve in curves.items()}},
        run.plot_path("confidence_over_steps"), x_label="optimization step", markers=False,
        title=f"unconstrained optimization towards {target}",
        references={f"p({target})": {"99%": 0.99, "report 001, zeros: 59%": 0.59}})


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
