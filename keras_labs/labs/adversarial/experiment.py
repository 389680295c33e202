"""The adversarial experiment: train (or reuse) the MNIST classifier, attack its test 4s with
each attack and budget, turn noise and zeros into 9s, fit a universal perturbation, compare the
gradient maps, plot."""

from __future__ import annotations

import keras
import numpy as np

from keras_labs import cached_models, training, visualization
from keras_labs.data import loading
from keras_labs.labs.adversarial import attacks
from keras_labs.labs.adversarial.config import NAME, Config


def run(config: Config, workdir: str, *, resume: bool = False) -> dict:
    """Trains (or reuses) the classifier, runs every attack and case; returns the metrics."""
    run, strategy = training.start(NAME, config, workdir, resume=resume)
    datasets, source = run.load_data("mnist")
    model, classifier = cached_models.mnist_classifier(
        datasets, source, config.export_dir, epochs=config.classifier_epochs,
        train_examples=config.classifier_examples, seed=config.seed, strategy=strategy)
    if config.strategy == "multiworker":
        model = _one_worker_copy(model)

    source_images = _test_source_images(datasets, config)
    source_name, target = str(config.source_class), config.target_class
    clean = np.asarray(model.predict(source_images, batch_size=1000, verbose=0))
    print(f"{NAME}: {len(source_images)} test {source_name}s, classified as {source_name}: "
          f"{(clean.argmax(axis=1) == config.source_class).mean():.4f}", flush=True)

    summaries, adversarials, smallest = _attacks(model, source_images, config)
    noise = np.random.default_rng(config.seed).random(
        (config.noise_examples, *model.input_shape[1:])).astype(np.float32)
    zeros = np.zeros((1, *model.input_shape[1:]), dtype=np.float32)
    budget, curves, case_images = _budget(
        model, config, {"noise": noise, "zeros": zeros, "source": source_images})
    universal, perturbation, validation_split = _universal(model, datasets, source_images, config)
    gradient_maps, correlations, control = _gradient_maps(
        model, config, {"source": source_images, "noise": noise, "zeros": zeros})
    correlation = correlations["noise"]

    _plots(run, config, model, source_images, adversarials, summaries, smallest, curves,
           case_images, perturbation, universal, gradient_maps)
    metrics = {
        "success_rate": _success_rates(summaries),
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
        **_change_correlations(case_images),
        **_clean_scores(config, clean, classifier),
    }
    print(f"{NAME}: smallest L-inf epsilon turning every {source_name} into a {target}: "
          f"{smallest['epsilon']}; after {config.budget_steps} steps noise -> {target} at "
          f"{budget['noise']['confidence']:.4f}, zeros -> {target} at "
          f"{budget['zeros']['confidence']:.4f}; universal perturbation: "
          f"{universal['success_rate_heldout']:.4f} of held-out {source_name}s; gradient maps "
          f"correlate {correlation:.3f} on {source.describe()}")
    return run.finish(metrics)


def _one_worker_copy(model: keras.Model) -> keras.Model:
    """`model`, with its weights, outside the cluster's strategy. The attacks are inference and
    input gradients, which every worker runs alone; under the cluster, Keras's `predict` would
    split a batch of one image over the workers, and batch normalization fails on the worker
    whose share is empty."""
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    return copy


def _test_source_images(datasets, config: Config) -> np.ndarray:
    """The test images of the source class (the first `attack_examples`, when > 0), in [0, 1]."""
    test_images, test_labels = loading.to_numpy(datasets["test"])
    test_images = test_images.astype(np.float32) / 255.0
    source_images = test_images[test_labels == config.source_class]
    if config.attack_examples:
        source_images = source_images[:config.attack_examples]
    return source_images


def _pgd(model, images, target, config: Config, *, norm: str, epsilon: float) -> np.ndarray:
    """A targeted PGD attack with the config's steps, each of step_scale * epsilon / pgd_steps."""
    return attacks.pgd_attack(model, images, target, norm=norm, epsilon=epsilon,
                              steps=config.pgd_steps,
                              step_size=config.step_scale * epsilon / config.pgd_steps)


def _attacks(model, source_images, config: Config) -> tuple[dict, dict, dict]:
    """PGD with every L-inf and L2 epsilon, the search for the smallest L-inf epsilon that
    turns every image into the target, and the unconstrained attack.

    Returns:
        ({attack: summary, or {epsilon: summary} for PGD}, {"attack@epsilon" or attack:
        adversarial images}, the smallest L-inf epsilon's search).
    """
    target = config.target_class
    summaries: dict[str, dict] = {"pgd_linf": {}, "pgd_l2": {}}
    adversarials: dict[str, np.ndarray] = {}
    for norm, epsilons in (("linf", config.linf_epsilons), ("l2", config.l2_epsilons)):
        for epsilon in sorted(epsilons):
            found = _pgd(model, source_images, target, config, norm=norm, epsilon=epsilon)
            summary = attacks.summarize(model, source_images, found, target)
            summaries[f"pgd_{norm}"][f"{epsilon:g}"] = summary
            adversarials[f"pgd_{norm}@{epsilon:g}"] = found
            print(f"pgd_{norm} epsilon {epsilon:g}: success {summary['success_rate']:.4f}, mean "
                  f"confidence {summary['mean_confidence']:.4f}", flush=True)

    smallest = _smallest_linf_epsilon(model, source_images, target, config, summaries["pgd_linf"])

    found, _ = attacks.unconstrained_attack(model, source_images, target,
                                            steps=config.unconstrained_steps,
                                            step_length=config.unconstrained_step,
                                            stop_confidence=config.stop_confidence)
    summaries["unconstrained"] = attacks.summarize(model, source_images, found, target)
    adversarials["unconstrained"] = found
    return summaries, adversarials, smallest


def _budget(model, config: Config, starts: dict) -> tuple[dict, dict, dict]:
    """The fixed budget: the same steps of plain gradient ascent towards the target from every
    start (no early stop).

    Returns:
        (the budget and its summary per start, the mean confidence after every step per start,
        {start: (start images, images after the budget)}).
    """
    target = config.target_class
    budget = {"steps": config.budget_steps, "step_size": config.budget_step_size,
              "objective": config.budget_objective, "early_stop": False}
    curves, case_images = {}, {}
    for name, start in starts.items():
        budget[name], found, curves[name] = attacks.budget_summary(
            model, start, target, steps=config.budget_steps, step_size=config.budget_step_size,
            objective=config.budget_objective)
        case_images[name] = (start, found)
        print(f"budget, {name} -> {target}: confidence {budget[name]['confidence']:.4f} (min "
              f"{budget[name]['confidence_min']:.4f}) after {config.budget_steps} steps, 99% at "
              f"step {budget[name]['steps_to_99']}", flush=True)
    return budget, curves, case_images


def _universal(model, datasets, source_images, config: Config) -> tuple[dict, np.ndarray, dict]:
    """One universal perturbation fitted on training source images and scored on the held-out
    test ones.

    Returns:
        (its figures, the perturbation, the record of the training images' validation split).
    """
    train_images, validation_images, validation_split = _training_source_images(datasets, config)
    # The epsilon is chosen on the validation part of the training source images; the test
    # images only score the perturbation kept.
    universal, perturbation = attacks.fit_universal(
        model, train_images, validation_images, source_images, config.target_class,
        epsilons=config.universal_epsilons, goal=config.universal_goal,
        steps=config.universal_steps, step_scale=config.step_scale, seed=config.seed)
    print(f"universal perturbation, L-inf {universal['epsilon']:g} fitted on "
          f"{universal['train_images']} training {config.source_class}s: held-out success "
          f"{universal['success_rate_heldout']:.4f}", flush=True)
    return universal, perturbation, validation_split


def _training_source_images(datasets, config: Config):
    """The training images of the source class, split into the part the universal
    perturbation is fitted on (its first `universal_train_images`) and a seeded validation part.

    Returns:
        (fitting images, validation images or None, the split's record), images in [0, 1].
    """
    source = datasets["train"].filter(lambda image, label: label == config.source_class)
    fit, validation, record = loading.split_validation(source, config.validation_fraction,
                                                       config.seed)
    fit_images = loading.to_numpy(loading.first(fit, config.universal_train_images))[0]
    record = {**record, "of": f"training {config.source_class}s",
              "fitted_on": len(fit_images)}
    validation_images = None if validation is None else \
        loading.to_numpy(validation)[0].astype(np.float32) / 255.0
    return fit_images.astype(np.float32) / 255.0, validation_images, record


def _gradient_maps(model, config: Config, starts: dict) -> tuple[dict, dict, dict | None]:
    """The mean gradient maps towards the target of each start set, their correlations with
    the source images' map, and the chance-level control: the noise maps towards a class that
    is neither the source nor the target."""
    target = config.target_class
    control_class = next(label for label in range(model.output_shape[-1])
                         if label not in (config.source_class, target))
    return attacks.gradient_map_correlations(model, starts, target, reference="source",
                                             control=("noise", control_class))


def _change_correlations(case_images: dict) -> dict:
    """The hotspots question asked of what the fixed budget changed (report 001 compared the
    derivatives its gradient ascent had added up): the correlation of the noise starts' (and
    the zero image's) mean change with the source images', None where a start did not move
    (a constant map), and whether the noise's clears the gradient maps' 0.3 bar."""
    reference = attacks.mean_change_map(*case_images["source"])
    found = {}
    for name in ("noise", "zeros"):
        try:
            found[name] = attacks.map_correlation(reference,
                                                  attacks.mean_change_map(*case_images[name]))
        except ValueError:
            found[name] = None
    return {"perturbation_map_correlation": found["noise"],
            "perturbation_map_correlation_zeros": found["zeros"],
            "perturbation_hotspots_shared": found["noise"] is not None and found["noise"] > 0.3}


def _success_rates(summaries: dict) -> dict:
    """The success rate of every attack (per epsilon for PGD)."""
    return {
        "pgd_linf": {key: value["success_rate"] for key, value in summaries["pgd_linf"].items()},
        "pgd_l2": {key: value["success_rate"] for key, value in summaries["pgd_l2"].items()},
        "unconstrained": summaries["unconstrained"]["success_rate"],
    }


def _clean_scores(config: Config, clean: np.ndarray, classifier: dict) -> dict:
    """The classes and the classifier, and how it calls the unattacked source images
    (`clean`: its probabilities on them)."""
    return {
        "source_class": config.source_class,
        "target_class": config.target_class,
        "source_examples": len(clean),
        "clean_accuracy_on_source": float((clean.argmax(axis=1) == config.source_class).mean()),
        "clean_target_rate": float((clean.argmax(axis=1) == config.target_class).mean()),
        "classifier": {key: classifier[key] for key in ("path", "reused", "test_accuracy")},
    }


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
        found = _pgd(model, images, target, config, norm="linf", epsilon=middle)
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
