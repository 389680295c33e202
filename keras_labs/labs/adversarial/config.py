"""The adversarial lab's name, config and presets (no TensorFlow)."""

from __future__ import annotations

import dataclasses

from keras_labs import ConfigError
from keras_labs.config import LabConfig, common, option

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
    # Issue 24's second attempt at report 001's "hotspots in somewhat the same areas": what
    # the gradient ascent added up (`perturbation_map_correlation`), under a longer budget of
    # smaller steps (300 of 0.02 against the seed's 100 of 0.1).
    "hotspots-budget": Config(budget_steps=300, budget_step_size=0.02),
    "quick": Config(attack_examples=100, linf_epsilons=(0.05, 0.1, 0.2), l2_epsilons=(1.0, 2.0),
                    pgd_steps=20, bisection_steps=0, unconstrained_steps=200,
                    unconstrained_step=0.2, noise_examples=4, universal_epsilons=(0.2, 0.3),
                    universal_train_images=300, universal_steps=100, classifier_epochs=2,
                    classifier_examples=8000),
}
DEFAULT_PRESET = "seed"
