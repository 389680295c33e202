"""The `keras-labs` command line.

    keras-labs list
    keras-labs run LAB|all [--preset P] [--set key=value ...] [--epochs N] [--seed N] [--out DIR]
                           [--data auto|sample|full] [--data-dir DIR] [--export-dir DIR]
                           [--deterministic] [--strategy default|mirrored|multiworker]
                           [--mixed-precision]
    keras-labs data prepare NAME... [--from DIR] [--data-dir DIR] [--force]
    keras-labs data list [--data-dir DIR]
    keras-labs sweep LAB --grid KEY=V1,V2 [--grid ...] [--preset P] [--set key=value ...]
                         [--out DIR] [--data auto|sample|full] [--data-dir DIR]
    keras-labs report RUNS [--out DIR]
    keras-labs tensorboard [RUNS] [--port N] [--host H]
    keras-labs generate EXPORT --prime TEXT [--length N] [--temperature T] [--top-k K]

A mistake the user can fix (unknown lab, preset, key or value; data not prepared; corrupt
files; unwritable output) prints one line and exits with code 2; `list`, `--help` and config
errors answer without loading TensorFlow. The output is the suite's own: TensorFlow's C++
start-up lines show only with `--verbose` (run, sweep, generate, data), and `data prepare`
shows tfds's progress bars only on a terminal (or with `--verbose`).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

from keras_labs import (
    ConfigError,
    KerasLabsError,
    __version__,
    check_tensorflow_install,
    labs,
    multiworker,
    run_folders,
)
from keras_labs.config import field_names
from keras_labs.data import specs as data_specs
from keras_labs.results import report, reproduce, sweeps

# Everything above imports no TensorFlow, so `list`, `--help` and config errors answer at
# once. The modules that load TensorFlow (the data loaders, the language-model engine, Keras)
# are imported by the commands that need them, after `_import_tensorflow` has quieted its
# start-up.
EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (and still exit code 2)."""

    def error(self, message):
        raise _UsageError(f"{self.prog}: {message}")


class _UsageError(Exception):
    pass


def _quiet_tensorflow() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        import absl.logging

        absl.logging.set_verbosity(absl.logging.ERROR)
    except ImportError:  # pragma: no cover
        pass


# What TensorFlow's C++ side logs at import, before absl is initialised: the banner and the
# informational lines (oneDNN, cpu_feature_guard). Errors and anything else still show.
_START_UP_CHATTER = re.compile(r"WARNING: All log messages before absl::InitializeLog\(\)"
                               r"|[IW]\d{4} [\d:.]+\s+\d+ [\w.-]+:\d+\] ")


def _import_tensorflow(verbose: bool = False) -> None:
    """Imports TensorFlow, its C++ start-up lines hidden unless `verbose`.

    Those lines go straight to file descriptor 2 before absl reads TF_CPP_MIN_LOG_LEVEL, so
    fd 2 points at a scratch file for the import alone; what is not start-up chatter is then
    written to stderr (all of it when the import fails, and the error is raised as it is).
    """
    if verbose or "tensorflow" in sys.modules:
        import tensorflow  # noqa: F401
        return
    import tempfile

    sys.stderr.flush()
    saved = os.dup(2)
    failed = True
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow  # noqa: F401

            failed = False
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            lines = captured.read().decode(errors="replace").splitlines(keepends=True)
            sys.stderr.write("".join(line for line in lines
                                     if failed or not _START_UP_CHATTER.match(line)))
            sys.stderr.flush()


def _add_verbose(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--verbose", action="store_true",
                        help="also show TensorFlow's start-up log lines and tfds's progress bars")


def _add_config_options(parser: argparse.ArgumentParser) -> None:
    """The options `run` and `sweep` share: which config, on which data, written where."""
    parser.add_argument("--preset", help="named configuration (default: the lab's default)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override one config field (repeatable)")
    parser.add_argument("--epochs", type=_bounded_int(1))
    parser.add_argument("--seed", type=_bounded_int(0))
    parser.add_argument("--out", default="runs", help="root of run folders (default: runs)")
    parser.add_argument("--data", choices=("auto", "sample", "full"))
    parser.add_argument("--data-dir", help="tfds data dir (default: $TFDS_DATA_DIR)")
    parser.add_argument("--deterministic", action="store_true", default=None)
    _add_verbose(parser)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="keras-labs", description=__doc__.split("\n")[0])
    parser.add_argument("--version", action="version", version=f"keras-labs {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    listing = commands.add_parser("list", help="the labs and their presets")
    listing.add_argument("--verbose", action="store_true", help="also every config key")

    run = commands.add_parser("run", help="run a lab (or all of them)")
    run.add_argument("lab", help="a lab name from `keras-labs list`, or `all`")
    _add_config_options(run)
    run.add_argument("--export-dir", help="root of SavedModel exports (default: saved_models)")
    run.add_argument("--export-format", choices=("saved_model", "onnx", "litert"),
                     help="also export ONNX or LiteRT beside the SavedModel")
    run.add_argument("--strategy", choices=("default", "mirrored", "multiworker"))
    run.add_argument("--mixed-precision", nargs="?", const="fp16", choices=("off", "fp16", "bf16"),
                     help="fp16 (the default of the bare flag) on a GPU; bf16 on a GPU or a CPU "
                          "with AVX512-BF16/AMX")
    run.add_argument("--resume", metavar="RUN_DIR",
                     help="continue an interrupted run folder from its last checkpoint")

    sweep = commands.add_parser("sweep", help="run the product of a grid of config values")
    sweep.add_argument("lab", help="a lab name from `keras-labs list`")
    sweep.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2,...",
                       help="values of one config field (repeatable; the product is run)")
    _add_config_options(sweep)

    reproduce = commands.add_parser(
        "reproduce", help="run the seed reports' experiments; results/ and results/LEDGER.md")
    reproduce.add_argument("--report", choices=("000", "001", "002", "003", "004"),
                           help="only this seed report's items")
    reproduce.add_argument("--lab", help="only this lab's items")
    reproduce.add_argument("--item", help="only this seed item (ids: --dry-run)")
    reproduce.add_argument("--max-minutes", type=_positive_float, default=20.0,
                           help="skip presets estimated over this many CPU minutes (default 20)")
    reproduce.add_argument("--results", default="results",
                           help="folder of result files and LEDGER.md (default: results)")
    reproduce.add_argument("--runs", default=os.path.join("runs", "reproduce"),
                           help="root of the run folders (default: runs/reproduce)")
    reproduce.add_argument("--dry-run", action="store_true",
                           help="list the items, their presets and estimated CPU time; run nothing")
    reproduce.add_argument("--force", action="store_true",
                           help="rerun presets whose committed result has the same config")
    reproduce.add_argument("--render", action="store_true",
                           help="only regenerate LEDGER.md and the README and docs/ blocks from results/")

    report = commands.add_parser("report", help="one self-contained HTML report over run folders")
    report.add_argument("runs", help="folder of runs (e.g. runs)")
    report.add_argument("--out", help="output folder (default: RUNS/report)")

    board = commands.add_parser("tensorboard", help="TensorBoard over run folders (activations, "
                                "hidden states, filters, HParams, Projector)")
    board.add_argument("runs", nargs="?", default="runs", help="folder of runs (default: runs)")
    board.add_argument("--port", type=_bounded_int(1, 65535), default=6006,
                       help="port to serve on (default: 6006)")
    board.add_argument("--host", default="localhost", help="address to serve on "
                       "(default: localhost; 0.0.0.0 for every interface)")

    generate = commands.add_parser("generate", help="sample text from an exported char-rnn or "
                                   "word-rnn generator")
    generate.add_argument("export", help="the generator's SavedModel folder "
                          "(saved_models/char-rnn/<run>)")
    generate.add_argument("--prime", default="", help="text to start from (any string; "
                          "characters or words the model does not know are read as unknown)")
    generate.add_argument("--length", type=_bounded_int(0, 100_000), default=300,
                          help="tokens to generate (default: 300)")
    generate.add_argument("--temperature", type=_positive_float, default=1.0,
                          help="sampling temperature > 0 (default: 1.0)")
    generate.add_argument("--top-k", type=_bounded_int(0, 1_000_000), default=0,
                          help="sample among the k likeliest tokens (0: all; default: 0)")
    _add_verbose(generate)

    data = commands.add_parser("data", help="prepare and list datasets")
    data_commands = data.add_subparsers(dest="data_command", required=True, parser_class=_Parser)
    prepare = data_commands.add_parser("prepare", help="prepare datasets into the tfds data dir")
    prepare.add_argument("names", nargs="+", metavar="NAME")
    prepare.add_argument("--from", dest="from_dir", metavar="DIR",
                         help="folder with the original files (or subfolders named after datasets)")
    prepare.add_argument("--data-dir")
    prepare.add_argument("--force", action="store_true", help="rebuild a prepared dataset")
    _add_verbose(prepare)
    data_list = data_commands.add_parser("list", help="datasets, prepared or not")
    data_list.add_argument("--data-dir")
    _add_verbose(data_list)
    return parser


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be a finite number > 0")
    return value


def _bounded_int(minimum: int, maximum: int | None = None):
    """An argparse `type`: a whole number in [minimum, maximum] (no upper end when None)."""
    if maximum is not None:
        out_of_range = f"is not in [{minimum}, {maximum}]"
    else:
        out_of_range = "must be 0 or more" if minimum == 0 else f"must be at least {minimum}"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum or (maximum is not None and value > maximum):
            raise argparse.ArgumentTypeError(f"{text!r} {out_of_range}")
        return value

    parse.__name__ = "int"
    return parse


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except _UsageError as error:
        print(error, file=sys.stderr)
        return EXIT_USAGE
    _quiet_tensorflow()
    try:
        if args.command in ("run", "sweep", "generate"):
            check_tensorflow_install()
        if args.command == "list":
            return _list(args)
        if args.command == "run":
            return _run(args)
        if args.command == "sweep":
            return _sweep(args)
        if args.command == "report":
            return _report(args)
        if args.command == "reproduce":
            return reproduce.main(args)
        if args.command == "tensorboard":
            return _tensorboard(args)
        if args.command == "generate":
            return _generate(args)
        if args.data_command == "prepare":
            return _prepare(args)
        return _data_list(args)
    except KerasLabsError as error:
        print(f"keras-labs: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("keras-labs: interrupted", file=sys.stderr)
        return 130


def _list(args) -> int:
    for name in labs.names():
        lab = labs.get(name)
        presets = ", ".join(lab.PRESETS)
        print(f"{name:12s} {lab.DESCRIPTION}  [presets: {presets}; default {lab.DEFAULT_PRESET}]")
        if args.verbose:
            defaults = lab.PRESETS[lab.DEFAULT_PRESET]
            for key in field_names(type(defaults)):
                print(f"    {key} = {getattr(defaults, key)!r}")
    return 0


def _run(args) -> int:
    flags = {"epochs": args.epochs, "seed": args.seed, "data": args.data,
             "data_dir": args.data_dir, "export_dir": args.export_dir,
             "export_format": args.export_format,
             "deterministic": args.deterministic, "strategy": args.strategy,
             "mixed_precision": args.mixed_precision}
    if args.resume:
        given = [f"--{key.replace('_', '-')}" for key, value in flags.items() if value is not None]
        given += ["--preset"] * bool(args.preset) + ["--set"] * bool(args.set)
        if args.lab == "all" or given:
            raise ConfigError("--resume continues one lab's run with the settings it started "
                              f"with; drop {', '.join(given) or 'all'}")
        return _resume(labs.get(args.lab), args.resume, args.verbose)
    if args.lab == "all":
        return _run_all(args, flags)
    lab = labs.get(args.lab)
    config = labs.resolve_config(lab, args.preset, args.set, **flags)
    if config.strategy == "multiworker":
        multiworker.cluster_config()  # a TF_CONFIG mistake is a config error too
    _import_tensorflow(args.verbose)  # only now: a config error must not wait for it
    # Under multiworker: the strategy first, and a temporary folder on non-chief workers.
    with multiworker.output_folders(args.out, config) as (out, config):
        _preflight(lab, config)
        workdir = run_folders.new_run_dir(out, lab.NAME, args.preset or lab.DEFAULT_PRESET)
        print(f"{lab.NAME}: run folder {workdir}", flush=True)
        _run_one(lab, config, workdir)
        print(f"{lab.NAME}: done; results in {workdir}", flush=True)
    return 0


def _resume(lab, run_dir: str, verbose: bool = False) -> int:
    """Continues the interrupted run in `run_dir` with the config it started with.

    Training picks up after the last epoch (or interval) its backup saved; what was written
    before the kill stays.
    """
    workdir = Path(run_dir)
    config = run_folders.resumable_config(workdir, lab.NAME, type(lab.PRESETS[lab.DEFAULT_PRESET]))
    multiworker.check_resume(config)
    _import_tensorflow(verbose)
    _preflight(lab, config)
    print(f"{lab.NAME}: resuming {workdir}", flush=True)
    _run_one(lab, config, workdir, resume=True)
    print(f"{lab.NAME}: done; results in {workdir}", flush=True)
    return 0


def _preflight(lab, config) -> None:
    """Checks the lab's datasets before anything is created (fail fast, no empty run folder)."""
    from keras_labs.data import loading

    loading.require(getattr(lab, "DATASETS", ()), config.data, config.data_dir)


def _run_one(lab, config, workdir, *, resume: bool = False) -> None:
    """Runs a lab; a run that fails says why in `FAILED.txt` in its own folder."""
    try:
        labs.run(lab.NAME, config, str(workdir), resume=resume)
    except BaseException as error:
        if workdir.is_dir():
            reason = str(error) or type(error).__name__
            (workdir / "FAILED.txt").write_text(f"{type(error).__name__}: {reason}\n")
        raise


def _run_all(args, flags) -> int:
    """Runs every lab with the same preset in turn, in one process (TensorFlow loads once)."""
    preset = args.preset or "quick"
    chosen = [labs.get(name) for name in labs.names()]
    configs = []
    for lab in chosen:  # validate all configs before the first run starts
        lab_flags = {key: value for key, value in flags.items()
                     if value is not None and (key != "epochs" or hasattr(lab.PRESETS[preset], "epochs"))}
        configs.append(labs.resolve_config(lab, preset, args.set, **lab_flags))
        if configs[-1].strategy == "multiworker":
            raise KerasLabsError("--strategy multiworker runs one lab at a time: give every "
                                 "worker the same `keras-labs run LAB` command")
    _import_tensorflow(args.verbose)
    import keras

    for lab, config in zip(chosen, configs, strict=True):
        _preflight(lab, config)
    failed = []
    for lab, config in zip(chosen, configs, strict=True):
        keras.backend.clear_session()
        workdir = run_folders.new_run_dir(args.out, lab.NAME, preset)
        print(f"=== {lab.NAME} ({preset}): {workdir}", flush=True)
        try:
            _run_one(lab, config, workdir)
        except KerasLabsError as error:  # one lab's bad data must not stop the tour
            print(f"keras-labs: error: {lab.NAME}: {error}", file=sys.stderr, flush=True)
            failed.append(lab.NAME)
    if failed:
        print(f"keras-labs: error: {len(failed)} of {len(chosen)} labs failed: "
              f"{', '.join(failed)}", file=sys.stderr)
        return EXIT_USAGE
    print(f"all {len(chosen)} labs done; run folders under {args.out}", flush=True)
    return 0


def _sweep(args) -> int:
    lab = labs.get(args.lab)
    flags = {"epochs": args.epochs, "seed": args.seed, "data": args.data,
             "data_dir": args.data_dir, "deterministic": args.deterministic}
    config = labs.resolve_config(lab, args.preset, args.set, **flags)
    if config.strategy == "multiworker":
        raise ConfigError("a sweep does not run under strategy=multiworker: give every worker "
                          "the same `keras-labs run LAB` command")
    grid = sweeps.parse_grid(args.grid)
    sweeps.grid_configs(config, grid)  # every grid error before TensorFlow loads
    _import_tensorflow(args.verbose)
    _preflight(lab, config)
    folder = sweeps.sweep(lab, config, grid, args.out, label=args.preset or lab.DEFAULT_PRESET)
    print(f"{lab.NAME}: sweep done; table in {folder / 'results.md'}", flush=True)
    return 0


def _report(args) -> int:
    path = report.build(args.runs, args.out or os.path.join(args.runs, "report"))
    print(f"report: {path}")
    return 0


def _tensorboard(args) -> int:
    """Replaces this process with the installed TensorBoard serving the folder `args.runs`."""
    if not os.path.isdir(args.runs):
        raise ConfigError(f"runs folder {args.runs!r} does not exist; give the --out folder of "
                          "`keras-labs run` (default: runs)")
    print(f"TensorBoard on {args.runs}: http://{args.host}:{args.port}/ (Ctrl-C stops it)",
          flush=True)
    # exec: the server is this process, so Ctrl-C or a kill of it stops TensorBoard itself.
    os.execv(sys.executable, [sys.executable, "-m", "tensorboard.main", "--logdir", args.runs,
                              "--host", args.host, "--port", str(args.port)])
    return 0  # not reached


def _generate(args) -> int:
    _import_tensorflow(args.verbose)
    from keras_labs import language_modeling as text

    generator = text.load_generator(args.export)
    generated, unknown = text.sample(generator, args.prime, args.length, args.temperature,
                                     args.top_k)
    if unknown:
        print(f"note: unknown to the vocabulary (read as out-of-vocabulary): "
              f"{', '.join(repr(token) for token in unknown)}", file=sys.stderr)
    print(generated)
    return 0


def _prepare(args) -> int:
    for name in args.names:  # reject every unknown name before preparing anything
        data_specs.check_name(name)
    _import_tensorflow(args.verbose)
    from keras_labs.data import preparation

    # In a log file, tqdm's bars would be carriage returns and escape codes: one line each.
    progress = args.verbose or (sys.stdout.isatty() and sys.stderr.isatty())
    for name in args.names:
        preparation.prepare(name, args.from_dir, args.data_dir, force=args.force, progress=progress)
    return 0


def _data_list(args) -> int:
    _import_tensorflow(args.verbose)
    from keras_labs.data import loading

    root = loading.resolve_data_dir(args.data_dir)
    print(f"tfds data dir: {root}")
    for status in loading.list_datasets(root):
        sample = "embedded sample available" if status["sample"] else "no embedded sample"
        if not status["prepared"]:
            print(f"{status['name']:17s} not prepared ({sample})")
            continue
        splits = ", ".join(f"{split} {count}" for split, count in status["splits"].items())
        partial = "PARTIAL" if status["partial"] else "complete"
        print(f"{status['name']:17s} prepared {status['version']}  {splits}  {partial}  "
              f"from {status['origin']} via {status['method']}  ({sample})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
