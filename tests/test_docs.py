"""The README and docs/: a README a newcomer reads in two minutes, links that lead somewhere,
a page per lab with its results block, and an "Adding a lab" example that is a working lab."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import types
from pathlib import Path

from keras_labs import labs, seeds

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"
SUMMARY_BEGIN = ("<!-- ledger:summary (generated from results/ by keras-labs reproduce; "
                 "do not edit) -->")
SUMMARY_END = "<!-- /ledger:summary -->"
BLOCK_BEGIN = "<!-- ledger:{name} (generated from results/ by keras-labs reproduce; do not edit) -->"
BLOCK_END = "<!-- /ledger:{name} -->"


def _pages() -> list[Path]:
    return [README, *sorted(DOCS.rglob("*.md"))]


def _without_code(text: str) -> str:
    """The Markdown outside fenced code blocks (links inside them are examples, not links)."""
    return re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)


def _targets(text: str) -> list[str]:
    """Every link and image target of a Markdown text: `[..](x)`, `![..](x)`, `<img src="x">`."""
    text = _without_code(text)
    return (re.findall(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)", text)
            + re.findall(r"<img\s[^>]*src=\"([^\"]+)\"", text))


def _images(text: str) -> list[str]:
    text = _without_code(text)
    return (re.findall(r"!\[[^\]]*\]\(\s*<?([^)\s>]+)>?", text)
            + re.findall(r"<img\s[^>]*src=\"([^\"]+)\"", text))


def test_the_readme_is_short():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 200, f"README.md has {len(lines)} lines; keep it to 200 (move detail to docs/)"
    long = [number for number, line in enumerate(lines, 1) if len(line) > 300]
    assert not long, f"README.md lines over 300 characters: {long}"


def test_the_first_screen_runs_a_lab_and_shows_the_ledger_summary():
    lines = README.read_text(encoding="utf-8").splitlines()
    first_run = next((number for number, line in enumerate(lines, 1)
                      if re.search(r"keras-labs run [a-z]", line)), None)
    assert first_run is not None and first_run <= 40, (
        f"the first `keras-labs run <lab>` line is at {first_run}; expected within 40 lines")
    assert SUMMARY_BEGIN in lines, "the README lost its generated ledger summary block"
    begin = lines.index(SUMMARY_BEGIN) + 1
    assert begin <= 100, f"the ledger summary starts at line {begin}; expected within 100 lines"
    assert SUMMARY_END in lines[begin:], "the ledger summary block is not closed"
    after = "\n".join(lines[lines.index(SUMMARY_END, begin):])
    assert "(results/LEDGER.md)" in after, "the ledger summary is not followed by a link to it"
    assert any("keras-labs tensorboard" in line for line in lines[:100])


def test_every_relative_link_leads_to_a_file():
    broken = []
    for page in _pages():
        for target in _targets(page.read_text(encoding="utf-8")):
            if re.match(r"[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
                continue  # a web address or an anchor in the same page
            path = (page.parent / target.split("#", 1)[0]).resolve()
            if not path.exists():
                broken.append(f"{page.relative_to(ROOT)}: {target}")
    assert not broken, f"links to files that do not exist: {broken}"


def test_every_picture_the_readme_shows_exists_and_is_small():
    images = _images(README.read_text(encoding="utf-8"))
    assert 2 <= len(images) <= 3, f"the README shows {len(images)} pictures; expected 2 or 3"
    for image in images:
        path = ROOT / image
        assert path.is_file(), f"the README shows {image}, which does not exist"
        assert image.startswith("docs/images/"), f"{image}: the README's pictures live in docs/images/"
        assert path.stat().st_size < 160_000, f"{image} is {path.stat().st_size} bytes; keep it small"


def test_every_lab_has_a_page_with_its_results_block():
    readme = README.read_text(encoding="utf-8")
    blocks = {name: DOCS / "labs" / f"{name}.md" for name in labs.names()}
    blocks["benchmarks"] = DOCS / "benchmarks.md"
    for name, page in blocks.items():
        assert page.is_file(), f"{name} has no page {page.relative_to(ROOT)}"
        text = page.read_text(encoding="utf-8")
        begin, end = BLOCK_BEGIN.format(name=name), BLOCK_END.format(name=name)
        assert begin in text and end in text.split(begin, 1)[1], (
            f"{page.relative_to(ROOT)} lost its generated {name} block")
        assert f"({page.relative_to(ROOT).as_posix()})" in readme, (
            f"the README's table of contents does not link {page.relative_to(ROOT)}")
    for page in DOCS.glob("*.md"):
        assert f"(docs/{page.name})" in readme, f"the README does not link docs/{page.name}"


def _adding_a_lab() -> tuple[str, str, str, str]:
    """The config, experiment, seeds.md and registry snippets of docs/development.md."""
    section = (DOCS / "development.md").read_text(encoding="utf-8").split("## Adding a lab", 1)[1]
    config, experiment, registry = re.findall(r"```python\n(.*?)```", section, re.S)[:3]
    seeds_table = re.search(r"```markdown\n(.*?)```", section, re.S).group(1)
    return config, experiment, seeds_table, registry


def test_the_add_a_lab_example_runs(tmp_path, monkeypatch):
    config_code, experiment_code, seeds_table, registry = _adding_a_lab()
    assert len(experiment_code.split("def run(", 1)[1].splitlines()) < 40
    assert registry.strip() == '"my-lab": "my_lab",'

    # config.py as the module keras_labs.labs.my_lab.config, which experiment.py imports.
    package = types.ModuleType("keras_labs.labs.my_lab")
    package.__path__ = []
    config_module = types.ModuleType("keras_labs.labs.my_lab.config")
    package.config = config_module
    monkeypatch.setitem(sys.modules, package.__name__, package)
    monkeypatch.setitem(sys.modules, config_module.__name__, config_module)
    exec(compile(config_code, "keras_labs/labs/my_lab/config.py", "exec"), config_module.__dict__)
    experiment = {"__name__": "keras_labs.labs.my_lab.experiment"}
    exec(compile(experiment_code, "keras_labs/labs/my_lab/experiment.py", "exec"), experiment)

    (tmp_path / "seeds.md").write_text(seeds_table, encoding="utf-8")
    declared = seeds.read(tmp_path / "seeds.md", lab="my-lab")
    assert [item.item for item in declared.items] == ["000-my-lab"]
    assert set(declared.minutes) <= set(config_module.PRESETS)
    assert config_module.NAME == "my-lab" and config_module.DEFAULT_PRESET in config_module.PRESETS

    config = config_module.PRESETS["quick"]
    config = type(config)(epochs=2, data="sample", export_dir=str(tmp_path / "exports"))
    metrics = experiment["run"](config, str(tmp_path / "run"))
    assert 0.5 < metrics["test_accuracy"] <= 1.0
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["test_accuracy"] == \
        metrics["test_accuracy"]
    assert (tmp_path / "run" / "plots" / "confusion_matrix.png").is_file()
    assert (Path(metrics["export"]) / "saved_model.pb").is_file()


def test_the_figure_script_fails_in_one_line_without_runs(tmp_path):
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "make_figures.py"), str(tmp_path),
                             "--out", str(tmp_path / "images")], capture_output=True, text=True)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not (tmp_path / "images").exists() or not any((tmp_path / "images").iterdir())
