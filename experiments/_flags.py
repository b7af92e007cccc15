"""Flags checked where they are parsed: integer lists, a workdir that can be written, an output path,
and --config=<preset> with one flag per field of its typed config (nested configs' fields flat)."""

import importlib
import os
import pkgutil
import sys
import types
import typing
from collections.abc import Callable, Sequence
from typing import Any

from absl import flags

import configs
from experiments import _processes
from vaecnn import config as vconfig
from vaecnn import files
from vaecnn.errors import UserError

FLAGS = flags.FLAGS


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
            files.check_workdir(values["workdir"])
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
            files.check_workdir(os.path.dirname(os.path.abspath(path)))
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
        # Sizes, widths, epochs and sample counts: each entry at least 1 unless the field says otherwise
        # (`option` always stores the key, None when the field gives no bound).
        lower_bound = meta.get("lower_bound")
        define_integers(name, default, help_text, lower_bound=1 if lower_bound is None else lower_bound, **where)
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
    _processes.define()
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


def given(name: str) -> bool:
    """Whether --name was on the command line."""
    return FLAGS[name].present
