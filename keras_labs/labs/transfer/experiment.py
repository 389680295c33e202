"""The transfer experiment: every strategy on every target, the best chosen on validation, then
every model scored once on the test split."""

from __future__ import annotations

import functools
import time

import keras
from keras import layers

from keras_labs import ConfigError, export, runs, training, visualization
from keras_labs.data import loading
from keras_labs.labs.transfer import backbones, phases
from keras_labs.labs.transfer.config import (
    ALL_CLASSES,
    CIFAR_REST_SOURCE,
    CIFAR_SOURCE,
    DIGIT_TARGETS,
    FEATURE_LAYERS,
    IMAGE_SIZE,
    NAME,
    SOURCE_CLASSES,
    STRATEGIES,
    TARGET_CLASSES,
    TARGETS,
    Config,
)


def run(config: Config, workdir: str, *, resume: bool = False) -> dict:
    """Adapts a pretrained network to each target three ways, chooses the best strategy on
    validation, then scores every model once on the test split; returns the metrics."""
    run = runs.Run(NAME, config, workdir, resume=resume)
    strategy = training.setup(config, run)

    # Every target is opened before the source trains: a missing dataset fails in seconds.
    targets = {target: target_data(config, target, run) for target in config.targets}
    # Without ImageNet weights the run stops here, within seconds too.
    with strategy.scope():
        source_model, base, source_info = _source(config, run)
    preprocess = ([] if config.source != "imagenet" else
                  backbones.imagenet_preprocessing(config.backbone, config.imagenet_size))

    results, trained, histories = train_strategies(config, run, strategy, targets, base,
                                                   preprocess)
    metrics = {"source": source_info, "zero_shot": {}, **results}

    # The choice reads validation accuracy only: the test split has not been scored yet.
    first = config.targets[0]
    chosen = select_best({name: metrics[name][first] for name in STRATEGIES})
    score_test_splits(config, targets, trained, source_model, metrics)

    test = {name: metrics[name][first]["test_accuracy"] for name in STRATEGIES}
    metrics["best"] = {"target": first, "strategy": chosen,
                       "validation_accuracy": metrics[chosen][first]["validation_accuracy"],
                       "test_accuracy": test[chosen]}
    metrics["selected_by"] = "validation_accuracy"
    metrics["validation_split"] = {"target": first, **targets[first].split}
    metrics["target_examples"] = {target: sets.examples for target, sets in targets.items()}
    metrics.update(ordering_claims(test))

    phases.write_history(run.history_path, histories)
    plot_learning_curves(config, run, histories, metrics["zero_shot"])
    metrics["table"] = phases.strategy_table(metrics, config.targets, STRATEGIES)
    table = phases.markdown_table(metrics["table"]) + (
        f"\nbest by validation accuracy on {first}: {chosen} (test {test[chosen]:.2%})\n")
    (run.workdir / "table.md").write_text(table)
    print(table, flush=True)

    # The targets are fed as 32x32 RGB in [0, 1]: the export takes them as 32x32 RGB uint8.
    metrics["export"] = str(export.export_model(trained[first, chosen], run, normalize="unit"))
    return run.finish(metrics)


def train_strategies(config: Config, run: runs.Run, strategy, targets: dict, base: keras.Model,
                     preprocess: list[layers.Layer]) -> tuple[dict, dict, dict]:
    """Trains every strategy on every target (`train_strategy`), each from the same draws.

    Returns:
        ({strategy: {target: its results}}, {(target, strategy): the trained model},
        {(target, strategy): its per-epoch history}).
    """
    results = {name: {} for name in STRATEGIES}
    trained, histories = {}, {}
    for target, sets in targets.items():
        for name in STRATEGIES:
            keras.utils.set_random_seed(config.seed)  # each strategy starts from the same draws
            model, result, history = train_strategy(name, base, preprocess, sets, config, run,
                                                    target, strategy)
            trained[target, name], histories[target, name] = model, history
            results[name][target] = result
            print(f"{NAME}: {target} {name}: validation accuracy "
                  f"{result['validation_accuracy']:.4f}, {result['trainable_parameters']:,} "
                  f"trainable parameters, {result['time_s']:.1f} s", flush=True)
    return results, trained, histories


def score_test_splits(config: Config, targets: dict, trained: dict, source_model,
                      metrics: dict) -> None:
    """Adds to `metrics` every trained model's test accuracy and, on a digit target, the MNIST
    source's accuracy as it is ("zero_shot")."""
    # The test split, scored once per model now that nothing is left to choose.
    for target, sets in targets.items():
        for name in STRATEGIES:
            metrics[name][target]["test_accuracy"] = accuracy(trained[target, name], sets.test)
        if source_model is not None and config.source == "mnist" and target in DIGIT_TARGETS:
            # The MNIST source already predicts digits 0-9: score it on the target untouched.
            metrics["zero_shot"][target] = {
                "validation_accuracy": accuracy(source_model, sets.validation),
                "test_accuracy": accuracy(source_model, sets.test)}


def ordering_claims(test: dict[str, float]) -> dict:
    """Report 000's claim, read on the first target's test accuracies (`test`, by strategy)."""
    return {"test_ranking": sorted(STRATEGIES, key=lambda name: -test[name]),
            "feature_extraction_best": bool(
                test["feature_extraction"] > max(test["scratch"], test["fine_tune"])),
            "fine_tune_worst": bool(
                test["fine_tune"] < min(test["scratch"], test["feature_extraction"]))}


def plot_learning_curves(config: Config, run: runs.Run, histories: dict, zero_shot: dict) -> None:
    """One plot of every strategy's validation curve per target, with the epoch where
    fine-tuning starts and the zero-shot accuracy where there is one."""
    curves = {}
    for (target, name), history in histories.items():
        curves.setdefault(target, {})[name] = history["val_accuracy"]
    references = {target: {f"zero-shot {value['validation_accuracy']:.1%}":
                           value["validation_accuracy"]}
                  for target, value in zero_shot.items()}
    visualization.plot_learning_curves(
        curves, run.plot_path("learning_curves"),
        marks={"fine-tuning starts": config.warmup_epochs}, references=references,
        y_label="validation accuracy", title=f"{NAME}: {_source_label(config)} -> target")


def select_best(results: dict[str, dict]) -> str:
    """The strategy with the highest validation accuracy (on a tie, the first in `results`).

    Args:
        results: {strategy: its results}; only their "validation_accuracy" is read, so a test
            figure among them cannot change the choice.
    """
    return max(results, key=lambda name: results[name]["validation_accuracy"])


def accuracy(model: keras.Model, dataset) -> float:
    """Top-1 accuracy of `model` (probabilities or logits) on an (image, label) pipeline."""
    labels, predictions, _ = training.predict_labels(model, dataset)
    return float((labels == predictions).mean())


# --------------------------------------------------------------------------------------------
# Source networks


# Offline, an ImageNet backbone's weights cannot be had: the error says what works instead.
_OFFLINE_ADVICE = ("offline, use source=cifar10_0_4 (--preset cifar-natural) or source=mnist, "
                   "the suite's own source networks, or place the weights file in the Keras "
                   "cache (~/.keras/models)")


def _source(config: Config, run: runs.Run):
    """(the source model, or None for an ImageNet backbone, the base network the strategies
    start from, facts about the source for metrics.json)."""
    if config.source == "imagenet":
        base = backbones.imagenet_base(config.backbone, config.imagenet_size,
                                       advice=_OFFLINE_ADVICE)
        return None, base, {"kind": "imagenet", "backbone": config.backbone,
                            "input_size": config.imagenet_size}
    model, info = suite_source(config, run)
    features = model.get_layer(FEATURE_LAYERS[config.source]).output
    return model, keras.Model(model.input, features, name=f"{config.source}_features"), info


def suite_source(config: Config, run: runs.Run) -> tuple[keras.Model, dict]:
    """The suite's own source network, the MNIST CNN or the CIFAR-10 0-4 CNN (`CIFAR_SOURCE`),
    trained once per recipe (`backbones.SourceRecipe`) and kept for later runs.

    Returns:
        (the model, facts about it: test accuracy on its own test split, where it is, reused
        or not).
    """
    recipe = backbones.SourceRecipe(
        epochs=config.source_epochs, learning_rate=config.source_learning_rate,
        train_examples=config.source_train_examples, seed=config.seed)
    kept = dict(fit=functools.partial(_fit_source, run, f"source-{config.source}"),
                facts={"kind": config.source, "trained_in_run": run.run_id})
    if config.source == "mnist":
        datasets, source = run.load_data("mnist")
        return backbones.mnist_source(datasets, source, recipe, config.export_dir,
                                      image_size=IMAGE_SIZE, **kept)
    datasets, source = run.load_data("cifar10")
    if config.source == "cifar10_rest":
        # The target's labelled images are the first `target_per_class` of each of its classes
        # (`target_data`); the source never sees them, and is scored on classes 0-4 only.
        return backbones.cifar_source(
            datasets, source, recipe, config.export_dir, spec=CIFAR_REST_SOURCE,
            classes=ALL_CLASSES, name="cifar10_rest_source", test_classes=SOURCE_CLASSES,
            held_back={label: config.target_per_class for label in TARGET_CLASSES}, **kept)
    return backbones.cifar_source(datasets, source, recipe, config.export_dir,
                                  spec=CIFAR_SOURCE, classes=SOURCE_CLASSES,
                                  name="cifar10_0_4_source", **kept)


def _fit_source(run: runs.Run, phase: str, model: keras.Model, train, *, epochs: int, probe):
    """Trains a source network with `training.fit`, logged as a phase of its own."""
    return training.fit(run, model, train, epochs=epochs, probe=probe, **_logs(run, phase))


def _source_label(config: Config) -> str:
    return {"mnist": "MNIST CNN", "cifar10_0_4": "CIFAR-10 0-4 CNN",
            "cifar10_rest": "CIFAR-10 CNN (the rest)",
            "imagenet": f"ImageNet {config.backbone}"}[config.source]


# --------------------------------------------------------------------------------------------
# Targets


def target_data(config: Config, target: str, run: runs.Run) -> loading.HeldOutInputs:
    """Opens one target (noted in env.json): its labelled training data less a seeded
    validation part (curves, the choice), the validation part, and the test split (scored once
    at the end), as 32x32 RGB images in [0, 1]."""
    if target == "digits":
        datasets, source = loading.load_uci_digits(test_fraction=config.digits_test_fraction)
        run.record_data(source)
    elif target == "cifar10_5_9":
        datasets, _ = run.load_data("cifar10")
        datasets = {"train": loading.class_subset(datasets["train"], TARGET_CLASSES,
                                                  config.target_per_class),
                    "test": loading.class_subset(datasets["test"], TARGET_CLASSES)}
    else:
        datasets, _ = run.load_data(target)
    labelled = loading.first(datasets["train"], config.target_train_examples)
    # SVHN (73,257 training images, already 32x32 RGB) would need 900 MB as float32 and costs
    # only a cast to prepare again; the other targets are small enough to keep.
    sets = loading.held_out_inputs(labelled,
                                   loading.first(datasets["test"], config.target_test_examples),
                                   fraction=config.validation_fraction, seed=config.seed,
                                   batch_size=config.batch_size, cache=target != "svhn_cropped",
                                   channels=3, size=IMAGE_SIZE)
    if sets.validation is None:
        raise ConfigError(f"validation_fraction={config.validation_fraction!r} holds out no "
                          f"example of the {sets.split['train_examples']} labelled {target} "
                          "images")
    return sets


# --------------------------------------------------------------------------------------------
# Strategies


def train_strategy(name: str, base: keras.Model, preprocess: list[layers.Layer],
                   sets: loading.HeldOutInputs, config: Config, run: runs.Run, target: str,
                   strategy):
    """Builds and trains one strategy on one target, inside the `tf.distribute` `strategy`.

    The per-epoch curves are on `sets.validation`; the test split is not read here.

    Returns:
        (the trained model, {validation_accuracy, trainable_parameters, time_s, epochs}, the
        per-epoch history with a `phase` column).
    """
    if name not in STRATEGIES:
        raise ConfigError(f"strategy {name!r} is not valid; valid values: {', '.join(STRATEGIES)}")
    pretrained = name != "scratch"
    with strategy.scope():
        own_base = backbones.base_copy(base, pretrained=pretrained)
        model = backbones.transfer_model(own_base, preprocess, pretrained=pretrained,
                                         dropout=config.dropout, name=f"{target}_{name}",
                                         input_shape=(IMAGE_SIZE, IMAGE_SIZE, 3),
                                         num_classes=TARGETS[target])
    plan = [phases.Phase("train", config.learning_rate, config.epochs)]
    if name == "fine_tune":
        # The whole base is unfrozen after the warm-up, batch norm kept in inference mode (the
        # module docstring).
        plan = [phases.Phase("warmup", config.learning_rate, config.warmup_epochs),
                phases.Phase("fine_tune", config.fine_tune_learning_rate, config.epochs,
                             unfreeze=True)]

    def fit(phase: str, model: keras.Model, **epochs):
        # One fit name per phase: a resumed run restores the finished phases without training.
        return training.fit(run, model, sets.make_train(), **epochs,
                            validation_data=sets.validation, probe=sets.probe,
                            **_logs(run, f"{target}-{name}-{phase}"))

    start = time.perf_counter()
    history = phases.fit_phases(model, own_base, plan, fit=fit, scope=strategy.scope)
    seconds = time.perf_counter() - start
    result = {"validation_accuracy": accuracy(model, sets.validation),
              "trainable_parameters": backbones.trainable_parameters(model),
              "time_s": round(seconds, 2), "epochs": len(history["loss"])}
    if name == "fine_tune":
        result["fine_tune_from_epoch"] = config.warmup_epochs + 1
    return model, result, history


def _logs(run: runs.Run, phase: str) -> dict:
    """`training.fit` arguments that give one phase its own backup, CSV and TensorBoard logs."""
    history_path = run.workdir / "phases" / f"{phase}.csv"
    history_path.parent.mkdir(exist_ok=True)
    return {"name": phase, "histogram_freq": 0, "history_path": history_path,
            "log_dir": run.tb_dir / phase}
