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
* `imagenet`: a `keras.applications` backbone with ImageNet weights (target images resized)
  on the same target. It needs the weights file.
* `seed`: MNIST to the UCI handwritten digits that ship with scikit-learn (8x8, upsampled),
  fully offline.
* `svhn`: MNIST to `svhn_cropped` (street-view house numbers), the report's 1.1.2. It needs the
  dataset downloaded and prepared with `keras-labs data prepare`.

Offline, `svhn` and `imagenet` stop within seconds with one line that says what is missing.
The suite trains each source network (MNIST CNN, CIFAR-10 0-4 CNN) once per recipe and keeps it
under `<export_dir>/_models/` for later runs. When the source already predicts the target's
classes (MNIST to digits or SVHN), it is also scored on the target as it is ("zero-shot").

Held out: a seeded `validation_fraction` of each target's labelled training data is held out.
Every strategy's per-epoch curves use it, and `best` (the strategy that is exported) is the one
with the highest validation accuracy on the first target. The test split is scored once, at the
end, for every strategy, after the choice is made.

The run leaves in metrics.json and table.md a strategy x dataset table (validation and test
accuracy, trainable parameters, time). It also leaves one plot of the validation curves with the
epoch where fine-tuning starts, TensorBoard logs per phase, and the best model as a SavedModel.
"""

from __future__ import annotations

import dataclasses
import functools
import time

from keras_labs import ConfigError, data, models, runs
from keras_labs.config import LabConfig, common, option
from keras_labs.lazy import lazy_import
from keras_labs.ledger import table

# Loaded on first use (TensorFlow, matplotlib): NAME, Config and PRESETS read without them.
keras, layers, export, training, visualization = lazy_import(
    "keras", "keras.layers", "keras_labs.export", "keras_labs.training", "keras_labs.visualization")

NAME = "transfer"
DESCRIPTION = ("scratch vs fine-tuning vs feature extraction, chosen on validation; CIFAR-10 "
               "0-4 -> 5-9, MNIST -> digits/SVHN, ImageNet (report 000, exercise 2)")

# The suite's own sources' datasets; a tfds target (svhn_cropped) is checked when the run starts.
DATASETS = ("mnist", "cifar10")
STRATEGIES = ("scratch", "fine_tune", "feature_extraction")
SOURCES = ("mnist", "cifar10_0_4", "imagenet")
TARGETS = {"digits": 10, "svhn_cropped": 10, "cifar10_5_9": 5}  # target -> number of classes
DIGIT_TARGETS = ("digits", "svhn_cropped")  # what the MNIST source can score zero-shot
SOURCE_CLASSES = (0, 1, 2, 3, 4)  # CIFAR-10 airplane, automobile, bird, cat, deer
TARGET_CLASSES = (5, 6, 7, 8, 9)  # dog, frog, horse, ship, truck, relabelled 0-4
IMAGE_SIZE = 32  # every target and source is fed as 32x32 RGB in [0, 1]

# The CIFAR-10 source: VGG-style, two 3x3 convolutions per stage, each with batch norm, then
# AlexNet's kind of head: dropout 0.5 around one wide dense layer, so that its features do not
# co-adapt to the 5 source classes (~810,000 parameters; ~15-20 s an epoch on 2 CPU cores).
CIFAR_SOURCE = models.CifarNetSpec(architecture="vgg", filters=(32, 64, 128), convs_per_stage=2,
                                   dense_units=(256,), batch_norm=True, dropout=0.5,
                                   num_classes=len(SOURCE_CLASSES))
# The layer each source network's features are read from: its last hidden layer, so that, as in
# the report, only the new last layer is trained in feature extraction.
FEATURE_LAYERS = {"mnist": "features", "cifar10_0_4": "fc1_relu"}


@dataclasses.dataclass(frozen=True)
class Config(LabConfig):
    source: str = option("mnist", choices=SOURCES,
                         help="pretrained network: the suite's MNIST CNN, its CIFAR-10 classes "
                              "0-4 CNN, or an ImageNet backbone")
    backbone: str = option("mobilenet_v2", choices=tuple(models.transfer.BACKBONES),
                           help="keras.applications model for source=imagenet")
    imagenet_size: int = option(96, minimum=32, maximum=512,
                                help="side the ImageNet backbone sees (targets are resized)")
    targets: tuple[str, ...] = option(("digits",), help=f"target datasets: {', '.join(TARGETS)}")
    target_per_class: int = option(100, minimum=1,
                                   help="cifar10_5_9: labelled training images per class (the "
                                        "first of each class; validation is carved from them)")
    validation_fraction: float = common.validation_fraction()
    epochs: int = option(15, minimum=1, help="epochs of each strategy on each target")
    warmup_epochs: int = option(3, minimum=0,
                                help="fine_tune: epochs training the new head before unfreezing")
    batch_size: int = option(64, minimum=1, maximum=65536, help="examples per step on the target")
    learning_rate: float = option(1e-3, positive=True, maximum=10.0,
                                  help="Adam learning rate of scratch, feature extraction and warm-up")
    fine_tune_learning_rate: float = option(1e-4, positive=True, maximum=10.0,
                                            help="Adam learning rate once the whole network trains")
    dropout: float = option(0.3, minimum=0.0, maximum=0.95, help="dropout before the new head")
    target_train_examples: int = option(0, minimum=0,
                                        help="use only the first N labelled target training "
                                             "examples, validation included (0: all)")
    target_test_examples: int = option(0, minimum=0,
                                       help="score on the first N target test examples (0: all)")
    digits_test_fraction: float = option(0.25, positive=True, maximum=0.9,
                                         help="share of the UCI digits held out (fixed split)")
    source_epochs: int = option(3, minimum=1,
                                help="epochs of the source network the suite trains (mnist, "
                                     "cifar10_0_4)")
    source_train_examples: int = option(0, minimum=0,
                                        help="that source: first N training examples (0: all)")
    source_learning_rate: float = option(2e-3, positive=True, maximum=10.0,
                                         help="that source: peak Adam learning rate (cosine)")

    def check(self) -> None:
        if not self.targets:
            raise ConfigError(f"targets={self.targets!r} is empty; valid targets: {', '.join(TARGETS)}")
        for target in self.targets:
            if target not in TARGETS:
                raise ConfigError(f"targets has {target!r}, which is not valid; valid targets: "
                                  f"{', '.join(TARGETS)}")
        if len(set(self.targets)) != len(self.targets):
            raise ConfigError(f"targets={','.join(self.targets)!r} names a dataset twice")
        if self.warmup_epochs >= self.epochs:
            raise ConfigError(f"warmup_epochs={self.warmup_epochs} leaves no fine-tuning epochs; "
                              f"it must be < epochs={self.epochs}")
        if self.validation_fraction == 0:
            raise ConfigError(f"validation_fraction={self.validation_fraction!r} holds out "
                              "nothing; the best strategy is chosen on validation, so it must "
                              "be > 0")


# The natural-image target has 500 labelled images: a fifth (20 per class) is held out, since
# 50 would choose between the strategies on noise.
_NATURAL = dict(source="cifar10_0_4", targets=("cifar10_5_9",), target_per_class=100,
                validation_fraction=0.2, epochs=30, warmup_epochs=5, batch_size=32)
PRESETS = {
    "seed": Config(),
    "quick": Config(epochs=4, warmup_epochs=1, source_epochs=1, source_train_examples=8000),
    "cifar-natural": Config(**_NATURAL, source_epochs=15),
    "imagenet": Config(**{**_NATURAL, "source": "imagenet"}),
    # 66,000 training images: 5 epochs of each strategy.
    "svhn": Config(targets=("svhn_cropped",), epochs=5, warmup_epochs=1),
}
DEFAULT_PRESET = "seed"

_NATURAL_NOTE = ("offline stand-in for the report's ImageNet AlexNet on CIFAR-10: our source is "
                 "a small VGG trained on CIFAR-10 classes 0-4 of the partial CIFAR-10 (~4,000 "
                 "of its 8,152 training images), not on ImageNet, and the target is classes 5-9 "
                 "with 500 labelled images (100 of them held out for validation), not 50,000")
SEED_ITEMS = table("""
| item | preset | metric | seed | report's figure | what | options |
|---|---|---|---|---|---|---|
| 000-ex2-scratch | cifar-natural | scratch.cifar10_5_9.test_accuracy | 0.67 | 67% | 1.1.1: network trained from scratch on the target |  |
| 000-ex2-fine-tune | cifar-natural | fine_tune.cifar10_5_9.test_accuracy | 0.62 | 62% | 1.1.1: pretrained network fine-tuned on the target |  |
| 000-ex2-feature-extraction | cifar-natural | feature_extraction.cifar10_5_9.test_accuracy | 0.83 | 83% | 1.1.1: pretrained network frozen, a new head trained (feature extraction) |  |
| 000-ex2-ordering | cifar-natural | feature_extraction_best | qualitative | feature extraction best (83%), fine-tuning worst (62%) | 1.1.1: feature extraction beats scratch and fine-tuning |  |
| 000-ex2-svhn | svhn | fine_tune.svhn_cropped.test_accuracy | 0.77 | MNIST-trained CNN on SVHN: 77% | 1.1.2: MNIST-trained CNN on SVHN |  |
""", notes={
    **dict.fromkeys(('000-ex2-scratch', '000-ex2-fine-tune', '000-ex2-feature-extraction'), _NATURAL_NOTE),
    '000-ex2-ordering':
        'the source is trained on 5 CIFAR-10 classes of the 8,152-image partial CIFAR-10, '
        'not ImageNet, and the target has 500 labelled images; `fine_tune_worst` in '
        'metrics.json tests the other half of the claim. Why the offline setting can '
        'contradict the report: the ordering rests on features learnt from ImageNet\'s 1.2 '
        'million images; a source trained on ~4,000 images of 5 classes learns far less '
        'general ones, which favours adapting them (fine-tuning) over freezing them '
        '(feature extraction); an ImageNet source (--preset imagenet) needs a download. '
        'Disclosed: while building this '
        'setting, target test images were scored once on a 2-epoch source before its '
        'dense layer was widened (128 -> 256 units, dropout 0.5); no figure here was '
        'chosen on them since',
    '000-ex2-svhn':
        'svhn_cropped needs a download; the report does not say how the network was '
        'adapted, so ours is the MNIST CNN fine-tuned on SVHN (the network scored as it '
        'is: zero_shot.svhn_cropped.test_accuracy)',
})
# cifar-natural: from a run with 2 source and 4 target epochs (load ~6.5: ~1.5 min of
# source, ~1 min of target); seed from the README's timings; imagenet and svhn unmeasured
# (offline here), from the networks' sizes.
PRESET_MINUTES = {"seed": 8, "cifar-natural": 10, "imagenet": 12, "svhn": 25}


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
                  models.transfer.imagenet_preprocessing(config.backbone, config.imagenet_size))

    metrics = {"source": source_info, "zero_shot": {}, **{name: {} for name in STRATEGIES}}
    trained, curves, histories = {}, {}, {}
    for target, sets in targets.items():
        curves[target] = {}
        for name in STRATEGIES:
            keras.utils.set_random_seed(config.seed)  # each strategy starts from the same draws
            model, result, history = train_strategy(name, base, preprocess, sets, config, run,
                                                    target, strategy)
            trained[target, name], histories[target, name] = model, history
            metrics[name][target] = result
            curves[target][name] = history["val_accuracy"]
            print(f"{NAME}: {target} {name}: validation accuracy "
                  f"{result['validation_accuracy']:.4f}, {result['trainable_parameters']:,} "
                  f"trainable parameters, {result['time_s']:.1f} s", flush=True)

    # The choice reads validation accuracy only: the test split has not been scored yet.
    first = config.targets[0]
    chosen = select_best({name: metrics[name][first] for name in STRATEGIES})

    # The test split, scored once per model now that nothing is left to choose.
    for target, sets in targets.items():
        for name in STRATEGIES:
            metrics[name][target]["test_accuracy"] = accuracy(trained[target, name], sets.test)
        if source_model is not None and config.source == "mnist" and target in DIGIT_TARGETS:
            # The MNIST source already predicts digits 0-9: score it on the target untouched.
            metrics["zero_shot"][target] = {
                "validation_accuracy": accuracy(source_model, sets.validation),
                "test_accuracy": accuracy(source_model, sets.test)}

    test = {name: metrics[name][first]["test_accuracy"] for name in STRATEGIES}
    metrics["best"] = {"target": first, "strategy": chosen,
                       "validation_accuracy": metrics[chosen][first]["validation_accuracy"],
                       "test_accuracy": test[chosen]}
    metrics["selected_by"] = "validation_accuracy"
    metrics["validation_split"] = {"target": first, **targets[first].split}
    metrics["target_examples"] = {target: sets.examples for target, sets in targets.items()}
    # Report 000's claim, read on the first target's test split.
    metrics["test_ranking"] = sorted(STRATEGIES, key=lambda name: -test[name])
    metrics["feature_extraction_best"] = bool(
        test["feature_extraction"] > max(test["scratch"], test["fine_tune"]))
    metrics["fine_tune_worst"] = bool(
        test["fine_tune"] < min(test["scratch"], test["feature_extraction"]))

    models.transfer.write_history(run.history_path, histories)
    references = {target: {f"zero-shot {value['validation_accuracy']:.1%}":
                           value["validation_accuracy"]}
                  for target, value in metrics["zero_shot"].items()}
    visualization.plot_learning_curves(
        curves, run.plot_path("learning_curves"),
        marks={"fine-tuning starts": config.warmup_epochs}, references=references,
        y_label="validation accuracy", title=f"{NAME}: {_source_label(config)} -> target")
    metrics["table"] = models.transfer.strategy_table(metrics, config.targets, STRATEGIES)
    table = models.transfer.markdown_table(metrics["table"]) + (
        f"\nbest by validation accuracy on {first}: {chosen} (test {test[chosen]:.2%})\n")
    (run.workdir / "table.md").write_text(table)
    print(table, flush=True)

    metrics["export"] = str(export.export_model(trained[first, chosen], config.export_dir, NAME,
                                                run.run_id))
    return run.finish(metrics)


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
        base = models.transfer.imagenet_base(config.backbone, config.imagenet_size,
                                             advice=_OFFLINE_ADVICE)
        return None, base, {"kind": "imagenet", "backbone": config.backbone,
                            "input_size": config.imagenet_size}
    model, info = suite_source(config, run)
    features = model.get_layer(FEATURE_LAYERS[config.source]).output
    return model, keras.Model(model.input, features, name=f"{config.source}_features"), info


def suite_source(config: Config, run: runs.Run) -> tuple[keras.Model, dict]:
    """The suite's own source network, the MNIST CNN or the CIFAR-10 0-4 CNN (`CIFAR_SOURCE`),
    trained once per recipe (`models.transfer.SourceRecipe`) and kept for later runs.

    Returns:
        (the model, facts about it: test accuracy on its own test split, where it is, reused
        or not).
    """
    recipe = models.transfer.SourceRecipe(
        epochs=config.source_epochs, learning_rate=config.source_learning_rate,
        train_examples=config.source_train_examples, seed=config.seed)
    kept = dict(fit=functools.partial(_fit_source, run, f"source-{config.source}"),
                facts={"kind": config.source, "trained_in_run": run.run_id})
    if config.source == "mnist":
        datasets, source = run.load_data("mnist")
        return models.transfer.mnist_source(datasets, source, recipe, config.export_dir,
                                            image_size=IMAGE_SIZE, **kept)
    datasets, source = run.load_data("cifar10")
    return models.transfer.cifar_source(datasets, source, recipe, config.export_dir,
                                        spec=CIFAR_SOURCE, classes=SOURCE_CLASSES,
                                        name="cifar10_0_4_source", **kept)


def _fit_source(run: runs.Run, phase: str, model: keras.Model, train, *, epochs: int, probe):
    """Trains a source network with `training.fit`, logged as a phase of its own."""
    return training.fit(run, model, train, epochs=epochs, probe=probe, **_logs(run, phase))


def _source_label(config: Config) -> str:
    return {"mnist": "MNIST CNN", "cifar10_0_4": "CIFAR-10 0-4 CNN",
            "imagenet": f"ImageNet {config.backbone}"}[config.source]


# --------------------------------------------------------------------------------------------
# Targets


def target_data(config: Config, target: str, run: runs.Run) -> data.HeldOutInputs:
    """Opens one target (noted in env.json): its labelled training data less a seeded
    validation part (curves, the choice), the validation part, and the test split (scored once
    at the end), as 32x32 RGB images in [0, 1]."""
    if target == "digits":
        datasets, source = data.load_uci_digits(test_fraction=config.digits_test_fraction)
        run.record_data(source)
    elif target == "cifar10_5_9":
        datasets, _ = run.load_data("cifar10")
        datasets = {"train": data.class_subset(datasets["train"], TARGET_CLASSES,
                                               config.target_per_class),
                    "test": data.class_subset(datasets["test"], TARGET_CLASSES)}
    else:
        datasets, _ = run.load_data(target)
    labelled = data.first(datasets["train"], config.target_train_examples)
    # SVHN (73,257 training images, already 32x32 RGB) would need 900 MB as float32 and costs
    # only a cast to prepare again; the other targets are small enough to keep.
    sets = data.held_out_inputs(labelled, data.first(datasets["test"], config.target_test_examples),
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
                   sets: data.HeldOutInputs, config: Config, run: runs.Run, target: str, strategy):
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
        own_base = models.transfer.base_copy(base, pretrained=pretrained)
        model = models.transfer_model(own_base, preprocess, pretrained=pretrained,
                                      dropout=config.dropout, name=f"{target}_{name}",
                                      input_shape=(IMAGE_SIZE, IMAGE_SIZE, 3),
                                      num_classes=TARGETS[target])
    phases = [models.transfer.Phase("train", config.learning_rate, config.epochs)]
    if name == "fine_tune":
        # The whole base is unfrozen after the warm-up, batch norm kept in inference mode (the
        # module docstring).
        phases = [models.transfer.Phase("warmup", config.learning_rate, config.warmup_epochs),
                  models.transfer.Phase("fine_tune", config.fine_tune_learning_rate,
                                        config.epochs, unfreeze=True)]

    def fit(phase: str, model: keras.Model, **epochs):
        # One fit name per phase: a resumed run restores the finished phases without training.
        return training.fit(run, model, sets.make_train(), **epochs,
                            validation_data=sets.validation, probe=sets.probe,
                            **_logs(run, f"{target}-{name}-{phase}"))

    start = time.perf_counter()
    history = models.transfer.fit_phases(model, own_base, phases, fit=fit, scope=strategy.scope)
    seconds = time.perf_counter() - start
    result = {"validation_accuracy": accuracy(model, sets.validation),
              "trainable_parameters": models.transfer.trainable_parameters(model),
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
