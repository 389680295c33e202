"""The README's "Adding a lab" example is a working lab."""

from __future__ import annotations

import json
import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def test_the_add_a_lab_example_runs(tmp_path):
    section = README.read_text().split("### Adding a lab", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert len(code.split("def run(", 1)[1].splitlines()) < 40
    namespace = {}
    exec("import dataclasses\nimport keras\n"
         "from keras_labs import data, export, models, training, visualization\n"
         "from keras_labs.config import LabConfig, common\n"
         "from keras_labs.ledger import table\n" + code, namespace)
    assert [item.item for item in namespace["SEED_ITEMS"]] == ["000-my-lab"]
    config = namespace["PRESETS"]["quick"]
    config = type(config)(epochs=2, data="sample", export_dir=str(tmp_path / "exports"))
    metrics = namespace["run"](config, str(tmp_path / "run"))
    assert 0.5 < metrics["test_accuracy"] <= 1.0
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["test_accuracy"] == \
        metrics["test_accuracy"]
    assert (tmp_path / "run" / "plots" / "confusion_matrix.png").is_file()
    assert (Path(metrics["export"]) / "saved_model.pb").is_file()
