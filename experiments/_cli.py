"""What every experiment and benchmark main shares: absl start-up, flag types checked where flags are
parsed, and one clear line for a user error.

A user-caused failure -- a flag value that cannot work, missing or corrupt data, an unusable workdir or
checkpoint, a diverged run -- ends with one line on stderr, `error: <what to do>`, and exit status 1.
Unexpected internal errors keep their traceback.
"""

import importlib
import os
import pkgutil
import sys
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from absl import app, flags, logging

import configs
from vaecnn import config as vconfig
from vaecnn import disk, distributed, lifecycle, preemption, report
from vaecnn.errors import UserError

FLAGS = flags.FLAGS
_PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _own_info_or_warnings(record) -> bool:
    """INFO lines from the project only (orbax logs a dozen per checkpoint); warnings from all."""
    return record.levelno >= logging.converter.STANDARD_WARNING or (
        record.pathname.startswith(_PROJECT_ROOT) and "site-packages" not in record.pathname)


def _fail(message: str) -> None:
    # One line: a multi-line message (e.g. a reason, then what to do) is joined, so scripts and users
    # see one self-contained error.
    print("error: " + " ".join(line.strip() for line in str(message).splitlines() if line.strip()),
          file=sys.stderr)
    sys.exit(1)


def _parse_flags(argv: list[str]) -> list[str]:
    """absl's parser, but a bad flag (unknown name, bad value, failed validator) is one line and exit 1
    (absl's own prints two lines and a usage hint)."""
    try:
        return FLAGS(argv)
    except flags.Error as error:
        _fail(f"{error} (--helpshort lists the flags)")


def run(main: Callable[[list[str]], None]) -> None:
    """app.run(main), turning a flag error, a UserError or a full disk raised inside main into one line on
    stderr and exit status 1, without a traceback; a run stopped by a signal (vaecnn.preemption) prints
    where it stopped and exits with preemption.EXIT_STATUS."""

    def guarded(argv: list[str]) -> None:
        if len(argv) > 1:
            _fail(f"unexpected arguments {argv[1:]}; flags look like --name=value")
        logging.set_verbosity(logging.INFO)
        logging.get_absl_handler().addFilter(_own_info_or_warnings)
        try:
            _start_processes()
            main(argv)
        except (UserError, flags.ValidationError) as error:
            _fail(str(error))
        except preemption.Preempted as stopped:
            print(f"{stopped} (exit status {preemption.EXIT_STATUS})", file=sys.stderr)
            sys.exit(preemption.EXIT_STATUS)
        except OSError as error:  # a write no guard foresaw (a picture, a log): the same one line
            if error.errno not in disk.OUT_OF_SPACE:
                raise
            _fail(str(disk.out_of_space(error.filename or os.getcwd())))

    app.run(guarded, flags_parser=_parse_flags)


class _IntegerListParser(flags.ArgumentParser):
    """'512,256' -> (512, 256): comma-separated integers, each >= lower_bound."""

    syntactic_help = "a comma-separated list of integers"

    def __init__(self, lower_bound: int | None, allow_empty: bool = False):
        self.lower_bound, self.allow_empty = lower_bound, allow_empty

    def parse(self, argument) -> tuple[int, ...]:
        if isinstance(argument, (list, tuple)):
            values = list(argument)
        else:
            values = [part.strip() for part in str(argument).split(",") if part.strip()]
        try:
            numbers = tuple(int(value) for value in values)
        except ValueError:
            raise ValueError("expected comma-separated integers, e.g. 3,4,5") from None
        if not numbers and not self.allow_empty:
            raise ValueError("expected at least one integer")
        if numbers and self.lower_bound is not None and min(numbers) < self.lower_bound:
            raise ValueError(f"every entry must be >= {self.lower_bound}")
        return numbers

    def flag_type(self) -> str:
        return "integer list"


def define_integers(name: str, default: Sequence[int], help_text: str, lower_bound: int | None = 1,
                    allow_empty: bool = False, **where: Any) -> None:
    """A flag holding a tuple of integers, written --name=3,4,5; checked when flags are parsed."""
    flags.DEFINE(_IntegerListParser(lower_bound, allow_empty), name, ",".join(map(str, default)), help_text,
                 serializer=flags.CsvListSerializer(","), **where)


def define_workdir(default: str, help_text: str, read_only_with: str | None = None, **where: Any) -> None:
    """--workdir, checked when flags are parsed: it must exist as a writable folder or be creatable.

    read_only_with: the name of a flag (e.g. 'predict') in whose presence the workdir is only read, so
    it need not be writable.
    """
    flags.DEFINE_string("workdir", default, help_text, **where)

    def check(values: dict) -> bool:
        if read_only_with is not None and values[read_only_with]:
            return True
        try:
            report.check_workdir(values["workdir"])
        except UserError as error:
            raise flags.ValidationError(str(error)) from None
        return True

    flags.register_multi_flags_validator(["workdir"] + ([read_only_with] if read_only_with else []), check)


def define_output(default: str | None, help_text: str) -> None:
    """--output, a .json path (a PNG may go beside it), checked when flags are parsed: its folder must be
    writable or creatable, so a long benchmark does not fail only when it writes its result."""
    flags.DEFINE_string("output", default, help_text)

    def writable(path: str | None) -> bool:
        if path is None:
            return True
        try:
            report.check_workdir(os.path.dirname(os.path.abspath(path)))
        except UserError:
            return False
        return path.endswith(".json")

    flags.register_validator("output", writable, "must be a .json path in a folder that can be written")


class _TextParser(flags.ArgumentParser):
    """A config field's own `parse` (text -> value, ValueError when bad) as an absl parser."""

    def __init__(self, parse: Callable[[str], Any], type_name: str):
        self._parse, self._type_name = parse, type_name

    def parse(self, argument):
        return argument if not isinstance(argument, str) else self._parse(argument)

    def flag_type(self) -> str:
        return self._type_name


def _preset(name: str) -> Any:
    """configs/<name>.py's get_config()."""
    return importlib.import_module(f"configs.{name}").get_config()


def presets() -> list[str]:
    return sorted(module.name for module in pkgutil.iter_modules(configs.__path__) if not module.name.startswith("_"))


def _define_setting(setting: vconfig.Setting, read_only_with: str | None) -> None:
    meta, name, default, kind = setting.metadata, setting.name, setting.default, setting.type
    help_text = meta.get("help", "")
    # Listed by --helpshort as the main module's own flags (absl keys them by sys.argv[0]).
    where = {"module_name": sys.argv[0]}
    bounds = {"lower_bound": meta.get("lower_bound"), "upper_bound": meta.get("upper_bound")}
    members = set(typing.get_args(kind)) - {type(None)} if isinstance(kind, types.UnionType) else {kind}
    if name == "workdir":
        define_workdir(default, help_text, read_only_with, **where)
    elif meta.get("parse") is not None:
        flags.DEFINE(_TextParser(meta["parse"], next(iter(members)).__name__), name,
                     None if default is None else str(default), help_text, **where)
    elif meta.get("choices"):
        flags.DEFINE_enum(name, default, meta["choices"], help_text, **where)
    elif members == {bool}:
        flags.DEFINE_bool(name, default, help_text, **where)
    elif members == {int}:
        flags.DEFINE_integer(name, default, help_text, **bounds, **where)
    elif members == {float}:
        flags.DEFINE_float(name, default, help_text, **bounds, **where)
    elif members == {str}:
        flags.DEFINE_string(name, default, help_text, **where)
    elif typing.get_origin(next(iter(members))) in (tuple, Sequence):
        define_integers(name, default, help_text, lower_bound=meta.get("lower_bound", 1), **where)
    else:
        raise TypeError(f"config field {name}: no flag type for {kind}")


def define_config(default_preset: str, *, read_only_with: str | None = None,
                  complete: Callable[[Any], Any] = lambda config: config) -> Callable[..., Any]:
    """--config=<preset> (a module of configs/) and one flag per field of its config, of the field's
    own name, type, bounds and help; returns resolve(**fields), the chosen preset with the flags given
    on the command line applied (then `fields`, which the experiment sets itself, then `complete`, the
    recipe's own completion of a config, e.g. a size read from a file).

    Flags show the default preset's values as defaults; a flag left out keeps the chosen preset's
    value.
    """
    base = _preset(default_preset)
    flags.DEFINE_string("config", default_preset, f"Preset of configs/ to start from (its values are the flags' "
                        f"defaults; the defaults shown are {default_preset}'s). Known: {', '.join(presets())}.",
                        module_name=sys.argv[0])

    def known_preset(name: str) -> bool:
        try:
            chosen = _preset(name)
        except ModuleNotFoundError:
            raise flags.ValidationError(f"no preset configs/{name}.py; known: {', '.join(presets())}") from None
        if vconfig.settings(chosen).keys() != vconfig.settings(base).keys():
            raise flags.ValidationError(f"preset {name} configures another experiment than {default_preset}")
        return True

    flags.register_validator("config", known_preset)
    define_processes()
    settings = vconfig.settings(base)
    for setting in settings.values():
        _define_setting(setting, read_only_with)
    flags.DEFINE_list("allow_changes", [], "Fields a rerun on a --workdir started with other values may change "
                      "(e.g. epochs, to extend a run); any other change stops the run, naming the fields.",
                      module_name=sys.argv[0])
    flags.register_validator("allow_changes", lambda names: set(names) <= {*settings, "model"},
                             f"must name config fields: {', '.join(sorted(settings))}")
    define_integers("seeds", (), "Run the configuration once per seed, each in <workdir>/seed_<k> (resumable), and "
                    "report every seed's figures and their mean ± std in <workdir>/results.json; e.g. 0,1,2,3,4.",
                    lower_bound=0, allow_empty=True, module_name=sys.argv[0])

    def resolve(**fields: Any) -> Any:
        """The config: the chosen preset, the flags given, then `fields` and `complete`. Whether it may resume
        the run already in its workdir is checked when the run starts (vaecnn.lifecycle)."""
        given = {name: FLAGS[name].value for name in settings if FLAGS[name].present}
        return complete(vconfig.override(_preset(FLAGS.config), {**given, **fields}))

    return resolve


def train(recipe: lifecycle.Recipe, config: Any) -> Mapping[str, Any] | None:
    """lifecycle.run with --seeds and --allow_changes; with --seeds prints every figure's mean ± std and
    returns None."""
    results = lifecycle.run(recipe, config, seeds=FLAGS.seeds, allow_changes=FLAGS.allow_changes)
    return results if not FLAGS.seeds else print_seeds(results, config.workdir)


def print_seeds(results: Mapping[str, Any], workdir: str) -> None:
    for name, mean in results["mean"].items():
        if not any(part in name for part in ("seconds", "count", "num_", "epoch", "size")):
            print(f"{name}: {mean:.4f} ± {results['std'][name]:.4f} over seeds {', '.join(map(str, FLAGS.seeds))}")
    print(f"every seed's figures in {workdir}/results.json")


def given_settings(config_type: type, names: Sequence[str] | None = None) -> dict[str, Any]:
    """The flags given on the command line among the resumable fields of `config_type` (paths, evaluation
    settings) and `names`: what a mode that works from a trained workdir may change in its config.json."""
    settings = vconfig.settings(config_type())
    allowed = [name for name, setting in settings.items() if setting.metadata.get("resumable")] + list(names or ())
    return {name: FLAGS[name].value for name in allowed if name != "workdir" and FLAGS[name].present}


def define_epoch() -> None:
    flags.DEFINE_integer("epoch", None, "--mode=evaluate: the checkpoint of this epoch (kept with "
                         "--keep_checkpoint_every), instead of the newest.", lower_bound=1, module_name=sys.argv[0])


def write_output(results: Mapping[str, Any]) -> None:
    """results to --output, when given."""
    if FLAGS.output:
        report.write_json(FLAGS.output, {**results, "hardware": report.hardware()})
        print(f"results in {FLAGS.output}")


def define_processes() -> None:
    """--coordinator_address, --num_processes, --process_id: one process of a multi-process run
    (vaecnn.distributed); left out, the environment decides (Cloud TPU, SLURM, Open MPI) or one process runs."""
    where = {"module_name": sys.argv[0]}
    flags.DEFINE_string("coordinator_address", None, "host:port of process 0's coordinator, for a run over several "
                        "processes (./launch.sh multiprocess starts them on this machine).", **where)
    flags.DEFINE_integer("num_processes", None, "Processes of the run (with --coordinator_address).", lower_bound=1,
                         **where)
    flags.DEFINE_integer("process_id", None, "This process's index, 0 .. --num_processes - 1.", lower_bound=0, **where)
    flags.DEFINE_bool("distributed", False, "Join a multi-process run that jax.distributed detects by itself "
                      "(a TPU pod slice: the same command on every host); SLURM (srun) and Open MPI (mpirun) "
                      "launches are detected without it.", **where)
    flags.DEFINE_integer("distributed_timeout", 60, "Seconds to wait for the coordinator, or for a peer that "
                         "stopped answering, before every process stops.", lower_bound=1, **where)
    # Checked here, not by the runtime: jax.distributed crashes the interpreter on some bad values (a port
    # that is no number: a segmentation fault).
    flags.register_validator("coordinator_address", lambda address: address is None or _is_host_port(address),
                             "--coordinator_address must be host:port with a port in 1-65535, e.g. 10.0.0.1:8476")
    flags.register_multi_flags_validator(
        ["process_id", "num_processes"],
        lambda values: values["process_id"] is None or values["num_processes"] is None
        or values["process_id"] < values["num_processes"],
        "--process_id must be in [0, --num_processes)")


def _is_host_port(address: str) -> bool:
    host, separator, port = address.rpartition(":")
    return bool(separator and host.strip("[]") and port.isdigit() and 1 <= int(port) <= 65535)


def _start_processes() -> None:
    """jax.distributed before any other JAX call, when the flags or the environment ask for it; then only
    process 0 logs progress and prints."""
    if "coordinator_address" not in FLAGS:
        return
    if distributed.initialize(FLAGS.coordinator_address, FLAGS.num_processes, FLAGS.process_id,
                              FLAGS.distributed_timeout, detect=FLAGS.distributed) \
            and not report.is_writer():
        logging.set_verbosity(logging.WARNING)
        sys.stdout.flush()
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # the runtime's own prints (gloo) too


def define_mode(modes: Sequence[str]) -> None:
    """--mode: what to do with --workdir. The first mode (train) trains or resumes from the flags; the
    others work from what a trained workdir holds (its config.json), whatever the other flags say."""
    flags.DEFINE_enum("mode", modes[0], modes, f"{modes[0]}: train (or resume) the configured run; "
                      f"{', '.join(modes[1:])}: work from the trained --workdir, rebuilt from its config.json.",
                      module_name=sys.argv[0])


def given(name: str) -> bool:
    """Whether --name was on the command line."""
    return FLAGS[name].present
