"""The `keras-labs` command line.

    keras-labs --version
    keras-labs list [--verbose]
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

Every failure is one line on stderr, and the exit code says which kind it was (`EXIT_CODES`):
2 for a usage or config error (unknown lab, preset, key or value, bad arguments), 1 for a
runtime failure (data missing, damaged or unreadable, diverged training, unwritable output, a
TensorFlow error), 130 for Ctrl-C and 143 for SIGTERM, which is handled as Ctrl-C is: a run
stopped either way says so in its FAILED.txt and keeps its backup for `--resume`. `list`,
`--help` and config errors answer without loading TensorFlow. The output is the suite's own:
TensorFlow's C++ start-up lines show only with `--verbose` (run, sweep, generate, data), and
`data prepare` shows tfds's progress bars only on a terminal (or with `--verbose`).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import re
import shlex
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

from keras_labs import (
    ConfigError,
    DataError,
    KerasLabsError,
    Terminated,
    __version__,
    check_tensorflow_install,
    labs,
    multiworker,
    run_folders,
)
from keras_labs.data import specs as data_specs
from keras_labs.results import report, reproduce, sweeps

# Everything above imports no TensorFlow, so `list`, `--help` and config errors answer at
# once. The modules that load TensorFlow (the data loaders, the language-model engine, Keras)
# are imported by the commands that need them, after `_import_tensorflow` has quieted its
# start-up.
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports a Ctrl-C
EXIT_TERMINATED = 143  # 128 + SIGTERM
EXIT_CODES = f"""exit codes:
  0    done
  {EXIT_FAILURE}    runtime failure: data missing, damaged or unreadable, training diverged,
       output not writable, a TensorFlow error (one line says which)
  {EXIT_USAGE}    usage or config error: bad arguments, unknown lab, preset, key or value
  {EXIT_INTERRUPTED}  interrupted (Ctrl-C)
  {EXIT_TERMINATED}  terminated (SIGTERM); like Ctrl-C, a stopped run says so in its FAILED.txt
       and keeps its backup: continue it with `keras-labs run LAB --resume RUN_DIR`"""


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
    parser = _Parser(prog="keras-labs", description=__doc__.split("\n")[0], epilog=EXIT_CODES,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"keras-labs {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    listing = commands.add_parser("list", help="the labs and their presets")
    listing.add_argument("--verbose", action="store_true", help="also every config field of "
                         "the default preset: its value, what it does and its constraints")

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

    reproduce.add_arguments(commands.add_parser(
        "reproduce", help="run the seed reports' experiments; results/ and results/LEDGER.md"))

    report = commands.add_parser("report", help="one self-contained HTML report over run folders")
    report.add_argument("runs", help="folder of runs (e.g. runs)")
    report.add_argument("--out", help="output folder (default: RUNS/report)")
    report.add_argument("--results", help="the committed seed ledger's folder (default: the "
                                          "results/ of the clone keras-labs runs from)")

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
                          "(saved_models/char-rnn/<version>)")
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
    """Runs one `keras-labs` command line; returns its exit code (see `EXIT_CODES`)."""
    try:
        args = build_parser().parse_args(argv)
    except _UsageError as error:
        print(error, file=sys.stderr)
        return EXIT_USAGE
    _quiet_tensorflow()
    with _sigterm_raises():
        try:
            return _command(args)
        except ConfigError as error:
            print(f"keras-labs: error: {error}", file=sys.stderr)
            return EXIT_USAGE
        except KerasLabsError as error:
            print(f"keras-labs: error: {error}", file=sys.stderr)
            return EXIT_FAILURE
        except KeyboardInterrupt as error:
            print(_stop_line("interrupted", error), file=sys.stderr)
            return EXIT_INTERRUPTED
        except Terminated as error:
            print(_stop_line("terminated (SIGTERM)", error), file=sys.stderr)
            return EXIT_TERMINATED
        except BrokenPipeError:  # `keras-labs list | head`: the reader has what it wanted
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no flush error
            return EXIT_FAILURE
        except Exception as error:
            if not _is_tensorflow_error(error):
                raise  # a bug: its traceback is what a report needs
            print(f"keras-labs: error: {_tensorflow_error_line(error)}", file=sys.stderr)
            return EXIT_FAILURE


def _command(args) -> int:
    if args.command in ("run", "sweep", "generate"):
        check_tensorflow_install()
    if args.command == "data":
        return _prepare(args) if args.data_command == "prepare" else _data_list(args)
    handlers = {"list": _list, "run": _run, "sweep": _sweep, "report": _report,
                "reproduce": reproduce.main, "tensorboard": _tensorboard, "generate": _generate}
    return handlers[args.command](args)


@contextlib.contextmanager
def _sigterm_raises() -> Iterator[None]:
    """Within: SIGTERM (what `timeout`, `kill` and schedulers send first) raises `Terminated`,
    so a run it stops ends as a Ctrl-C ends it. A second SIGTERM while the first is handled is
    ignored: the FAILED.txt note gets written. Python runs signal handlers in the main thread
    only, so from any other thread this changes nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminate(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise Terminated("terminated by SIGTERM")

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _stop_line(what: str, error: BaseException) -> str:
    """The one line of a run stopped by Ctrl-C or SIGTERM, with the resume command `_run_one`
    noted on the error."""
    notes = getattr(error, "__notes__", [])
    return f"keras-labs: {what}" + "".join(f"; {note}" for note in notes)


def _is_tensorflow_error(error: BaseException) -> bool:
    tensorflow = sys.modules.get("tensorflow")
    return tensorflow is not None and isinstance(error, tensorflow.errors.OpError)


# What TensorFlow adds around an op error's message: the function and node it ran in, and,
# for an op in a graph (a Keras train step), a header and the stack where the op was defined.
_OP_DECORATION = re.compile(r"\{\{function_node [^}]*\}\}|\[\[\{\{node [^}]*\}\}\]\]"
                            r"|\[Op:[^\]]*\](\s*name:.*)?")
_OP_HEADER = re.compile(r"Graph execution error:|Detected at node .* defined at ")


def _tensorflow_error_line(error: BaseException) -> str:
    """A TensorFlow op error (`tf.errors.OpError`) as one line (`_tensorflow_reason`)."""
    return f"TensorFlow {type(error).__name__}: {_tensorflow_reason(error)}"


def _tensorflow_reason(error: BaseException) -> str:
    """The first line of an op error's message and, when it came from reading the input (an
    iterator's `GetNext`: a truncated or corrupt file), what to check."""
    lines = [_OP_DECORATION.sub("", line).strip() for line in str(error).splitlines()
             if line.strip() and not line[0].isspace() and not _OP_HEADER.match(line)]
    reason = next((line.rstrip(".") for line in lines if line), "(no message)")
    if type(error).__name__ == "DataLossError" or "IteratorGetNext" in str(error):
        reason += ("; the input data could not be read: a prepared dataset may be damaged "
                   "(`keras-labs data list` checks them; `keras-labs data prepare NAME --force "
                   "--from DIR` rebuilds one)")
    return reason


# The suite's own presets, listed right after a lab's default (the reports' presets follow).
SUITE_PRESETS = ("fast", "best", "quick")


def _list(args) -> int:
    # A lab's line names it and what it can run (its default, then fast/best/quick, then the
    # reports' presets); "about:" and its description follow, indented, so that only a lab's
    # own line starts with a name (`keras-labs list | awk '{print $1}'`).
    for name in labs.names():
        lab = labs.get(name)
        ordered = sorted(lab.PRESETS, key=lambda preset: (
            preset.removesuffix("-equal-updates") != lab.DEFAULT_PRESET,
            preset not in SUITE_PRESETS,
            SUITE_PRESETS.index(preset) if preset in SUITE_PRESETS else 0))
        presets = [shown + (" (default)," if shown.split("[")[0] == lab.DEFAULT_PRESET else ",")
                   for shown in _fold_variants(ordered)]
        presets[-1] = presets[-1].rstrip(",")
        for line in _wrap(["presets:", *presets], f"{name:12s} ", " " * 15):
            print(line)
        for line in _wrap(["about:", *lab.DESCRIPTION.split()], " " * 13, " " * 15):
            print(line)
        if args.verbose:
            _list_fields(lab.PRESETS[lab.DEFAULT_PRESET])
    return 0


def _fold_variants(names: list[str]) -> list[str]:
    """`names`, with a suffix that several of them also come with folded in: `tutorial` and
    `tutorial-equal-updates` become `tutorial[-equal-updates]` when at least two names have
    that `-equal-updates` variant."""
    suffixes: dict[str, list[str]] = {}
    for name in names:
        for other in names:
            if other.startswith(name + "-"):
                suffixes.setdefault(other[len(name):], []).append(name)
    folded = {name: suffix for suffix, bases in suffixes.items() if len(bases) > 1
              for name in bases}
    variants = {name + suffix for name, suffix in folded.items()}
    return [f"{name}[{folded[name]}]" if name in folded else name
            for name in names if name not in variants]


def _list_fields(config) -> None:
    """One entry per config field: `--set key=value` as the preset has it, its help and its
    constraints (`config.option`)."""
    settings = {field.name: f"--set {field.name}={_set_value(getattr(config, field.name))}"
                for field in dataclasses.fields(config)}
    column = min(max(map(len, settings.values())), 36)
    for field in dataclasses.fields(config):
        words = (field.metadata.get("help", "") + _constraints(field.metadata)).split()
        for line in _wrap(words, f"    {settings[field.name]:{column}s}  ", " " * (column + 6),
                          any_first_word=True):
            print(line.rstrip())


def _set_value(value) -> str:
    """`value` as `--set key=value` takes it."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, tuple):
        return ",".join(map(_set_value, value))
    if value is None:
        return "none"
    if isinstance(value, str) and (not value or " " in value):
        return repr(value)
    return str(value)


def _constraints(metadata) -> str:
    """A field's declared constraints (`config.option`), as ` [>= 1; <= 64]`, or ''."""
    found = []
    if metadata.get("choices") is not None:
        found.append("one of: " + ", ".join(map(str, metadata["choices"])))
    if metadata.get("positive"):
        found.append("> 0")
    if metadata.get("minimum") is not None:
        found.append(f">= {metadata['minimum']}")
    if metadata.get("maximum") is not None:
        found.append(f"<= {metadata['maximum']}")
    return f" [{'; '.join(found)}]" if found else ""


# A word a script could take for a lab's or a preset's name (see `_wrap`).
_NAME_LIKE = re.compile(r"^[a-z][a-z0-9_.-]*$")
LIST_WIDTH = 100


def _wrap(words: list[str], first: str, indent: str, width: int = LIST_WIDTH, *,
          any_first_word: bool = False) -> list[str]:
    """`words` as lines of at most `width` characters: the first line after `first`, the
    others after `indent` (a word longer than a line gets a line of its own).

    Unless `any_first_word`, a continuation line never starts with a word that looks like a name
    (lower-case letters, digits, `-_.`): the word before it moves down with it. So the first
    word of a line of `keras-labs list` is a lab's name on that lab's own line only, and a
    script that reads `keras-labs list | awk '{print $1}'` finds the labs.
    """
    lines: list[str] = []
    start = 0
    while start < len(words):
        prefix = indent if lines else first
        end = start + 1
        while end < len(words) and len(prefix + " ".join(words[start:end + 1])) <= width:
            end += 1
        while (not any_first_word and end < len(words) and end - 1 > start
               and _NAME_LIKE.match(words[end])):
            end -= 1
        lines.append(prefix + " ".join(words[start:end]))
        start = end
    return lines or [first.rstrip()]


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
        multiworker.check_cluster()  # a cluster mistake is a config error too
        _import_tensorflow(args.verbose)
        return _run_worker(lab, config, args.out, args.preset or lab.DEFAULT_PRESET)
    _import_tensorflow(args.verbose)  # only now: a config error must not wait for it
    _preflight(lab, config)
    workdir = run_folders.new_run_dir(args.out, lab.NAME, args.preset or lab.DEFAULT_PRESET)
    print(f"{lab.NAME}: run folder {workdir}", flush=True)
    _run_one(lab, config, workdir)
    print(f"{lab.NAME}: done; results in {workdir}", flush=True)
    return 0


def _run_worker(lab, config, out: str, preset: str) -> int:
    """`run LAB --strategy multiworker` on one worker of a cluster.

    The same command, run again on every worker after a failure, continues the run
    (`multiworker.worker_run`). The strategy comes first, before anything starts TensorFlow's
    runtime, once every worker has started. A worker lost or never started ends the run with
    one line saying so, in FAILED.txt too (`multiworker.cluster_failure`).
    """
    _preflight(lab, config)
    with multiworker.worker_run(out, lab.NAME, preset, config) as (workdir, config, resume):
        print(f"{lab.NAME}: {'resuming' if resume else 'run folder'} {workdir}", flush=True)
        waited = False
        try:
            multiworker.strategy(config.worker_timeout_s)
            waited = True
            _run_one(lab, config, workdir, resume=resume)
        except BaseException as error:
            failure = multiworker.cluster_failure(error)
            if failure is None:
                raise
            # A failed wait adds its line to an earlier attempt's; `_run_one` wrote its own.
            with open(workdir / "FAILED.txt", "w" if waited else "a") as failed:
                failed.write(_failure_line(failure) + "\n")
            raise failure from None
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
    """Checks what a run needs before anything is created (fail fast, no empty run folder): the
    lab's datasets, prepared and intact, and the converter its export format needs."""
    from keras_labs import export
    from keras_labs.data import loading

    loading.require(getattr(lab, "DATASETS", ()), config.data, config.data_dir)
    export.check_format(config.export_format, lab=lab.NAME)


def _run_one(lab, config, workdir, *, resume: bool = False) -> None:
    """Runs a lab; a run that fails or is stopped says why in `FAILED.txt` in its own folder,
    and a stopped one (Ctrl-C, SIGTERM), whose backup is kept, how to continue it."""
    try:
        labs.run(lab.NAME, config, str(workdir), resume=resume)
    except BaseException as error:
        if workdir.is_dir():
            if isinstance(error, KeyboardInterrupt | Terminated):
                error.add_note(f"continue with: keras-labs run {lab.NAME} --resume "
                               f"{shlex.quote(str(workdir))}")
            (workdir / "FAILED.txt").write_text(_failure_line(error) + "\n")
        raise


def _failure_line(error: BaseException) -> str:
    """What FAILED.txt says: the error's class, why, in one line, and its notes."""
    if isinstance(error, Terminated):
        reason = "stopped by SIGTERM"
    elif isinstance(error, KeyboardInterrupt):
        reason = str(error) or "stopped by Ctrl-C"
    elif _is_tensorflow_error(error):
        reason = _tensorflow_reason(error)
    else:
        reason = " ".join(str(error).split()) or type(error).__name__
    notes = "".join(f"; {note}" for note in getattr(error, "__notes__", []))
    return f"{type(error).__name__}: {reason}{notes}"


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
            raise ConfigError("--strategy multiworker runs one lab at a time: give every "
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
        except Exception as error:  # one lab's bad data must not stop the tour
            if not isinstance(error, KerasLabsError) and not _is_tensorflow_error(error):
                raise
            line = (str(error) if isinstance(error, KerasLabsError)
                    else _tensorflow_error_line(error))
            print(f"keras-labs: error: {lab.NAME}: {line}", file=sys.stderr, flush=True)
            failed.append(lab.NAME)
    if failed:
        print(f"keras-labs: error: {len(failed)} of {len(chosen)} labs failed: "
              f"{', '.join(failed)}", file=sys.stderr)
        return EXIT_FAILURE
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
    results = Path(args.results) if args.results else report.COMMITTED_RESULTS
    if not results.is_dir():
        # Installed from a wheel: the ledger stays in the project's repository.
        print(f"note: no committed seed ledger at {results} (it is the results/ folder of a "
              "clone of keras_labs, not part of the installed package): seed rows read these "
              "runs only; add --results DIR to compare with it", file=sys.stderr)
    path = report.build(args.runs, args.out or os.path.join(args.runs, "report"), results)
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
    damaged = []
    for status in loading.list_datasets(root):
        sample = "embedded sample available" if status["sample"] else "no embedded sample"
        if not status["prepared"]:
            print(f"{status['name']:17s} not prepared ({sample})")
            continue
        if status["damaged"]:
            damaged.append(status)
            print(f"{status['name']:17s} DAMAGED {status['version']}: {status['damaged']}")
            continue
        splits = ", ".join(f"{split} {count}" for split, count in status["splits"].items())
        partial = "PARTIAL" if status["partial"] else "complete"
        print(f"{status['name']:17s} prepared {status['version']}  {splits}  {partial}  "
              f"from {status['origin']} via {status['method']}  ({sample})")
    if damaged:  # the listing is complete; then the first damaged one, as a run would fail
        more = f" ({len(damaged) - 1} more damaged: see above)" if len(damaged) > 1 else ""
        raise DataError(loading.damage_message(damaged[0]) + more)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
