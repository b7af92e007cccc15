"""Typed run configurations: frozen dataclasses whose fields carry their own help, bounds and choices.

One declaration serves every user of a configuration:

* the library takes a config as an ordinary value (`run(config)`);
* `configs/<preset>.py` are functions returning one (a results row of docs/results.md each);
* the command line: experiments/_cli.py makes every field a flag of the same name, starting from a
  preset (`--config=<preset>`), and `override` applies the flags given;
* the workdir: a run writes its resolved config to `config.json` when it starts (`save`), and
  prediction reads it back (`load`).

A field may hold another config (a model's, e.g. `model: RNNConfig | CNNConfig`); its fields are
addressed by their own names, so flags stay flat (`--hidden_size`, not `--model.hidden_size`). Such a
nested config names its kind in a `KIND` class attribute, which `to_dict` records and `from_dict`
reads to pick the class.

    @dataclasses.dataclass(frozen=True)
    class VAEConfig:
        latent_dim: int = option(32, "Latent dimensions.", lower_bound=1)
"""

import dataclasses
import os
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from vaecnn import files
from vaecnn.errors import ConfigError, DataError

CONFIG_FILE = "config.json"
_KIND = "kind"


def option(default: Any, help: str, *, choices: Sequence[str] | None = None, lower_bound: float | None = None,
           upper_bound: float | None = None, parse: Callable[[str], Any] | None = None,
           resumable: bool = False) -> Any:
    """A config field with its command-line help, and what a flag checks when it is parsed:
    `choices` (an enum), `lower_bound` / `upper_bound`, or `parse` (text -> value, ValueError when bad).

    resumable: the field changes nothing a checkpoint holds (a path, an evaluation setting), so a run
    may resume with another value without asking (see check_resume).
    """
    return dataclasses.field(default=default, metadata={
        "help": help, "choices": tuple(choices) if choices else None, "lower_bound": lower_bound,
        "upper_bound": upper_bound, "parse": parse, "resumable": resumable})


@dataclasses.dataclass(frozen=True)
class Setting:
    """One settable field of a config, nested ones included: where it is and what it takes."""
    name: str
    path: tuple[str, ...]      # attribute path from the top config, e.g. ("model", "hidden_size")
    type: Any                  # the annotation, e.g. int, float | None, tuple[int, ...]
    default: Any               # its value in the config it was read from
    metadata: Mapping[str, Any]


def _is_config(value: Any) -> bool:
    return dataclasses.is_dataclass(value) and not isinstance(value, type)


def settings(config: Any) -> dict[str, Setting]:
    """Every field of `config`, nested configs' fields flattened under their own names."""
    found: dict[str, Setting] = {}

    def visit(node: Any, path: tuple[str, ...]) -> None:
        hints = typing.get_type_hints(type(node))
        for field in dataclasses.fields(node):
            value = getattr(node, field.name)
            if _is_config(value):
                visit(value, path + (field.name,))
                continue
            if field.name in found:
                raise TypeError(f"{type(config).__name__}: field {field.name!r} appears twice")
            found[field.name] = Setting(field.name, path + (field.name,), hints[field.name], value,
                                        field.metadata)

    visit(config, ())
    return found


def override(config: Any, values: Mapping[str, Any]) -> Any:
    """`config` with the named fields (nested ones by their own names) replaced; validated again."""
    known = settings(config)
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ConfigError(f"{type(config).__name__} has no field {', '.join(unknown)}")

    def replace(node: Any, path: tuple[str, ...]) -> Any:
        changes = {}
        for field in dataclasses.fields(node):
            value = getattr(node, field.name)
            if _is_config(value):
                changes[field.name] = replace(value, path + (field.name,))
            elif field.name in values and known[field.name].path == path + (field.name,):
                changes[field.name] = values[field.name]
        return dataclasses.replace(node, **changes) if changes else node

    return replace(config, ())


def to_dict(config: Any) -> dict[str, Any]:
    """JSON-ready: nested configs become dicts with their `kind`; tuples become lists."""
    out: dict[str, Any] = {_KIND: config.KIND} if hasattr(config, "KIND") else {}
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        out[field.name] = to_dict(value) if _is_config(value) else list(value) if isinstance(value, tuple) else value
    return out


def _config_classes(annotation: Any) -> list[type]:
    members = typing.get_args(annotation) if isinstance(annotation, types.UnionType) else (annotation,)
    return [member for member in members if dataclasses.is_dataclass(member)]


def from_dict(cls: type, data: Mapping[str, Any]) -> Any:
    """The inverse of to_dict: lists back to tuples, nested configs by their recorded kind."""
    hints = typing.get_type_hints(cls)
    values = {}
    for field in dataclasses.fields(cls):
        classes = _config_classes(hints[field.name])
        if field.name not in data:
            lifted = _lifted(field, classes, data)
            if lifted is None:
                continue  # a field added since the file was written keeps its default
            data = {**data, field.name: lifted}
        value = data[field.name]
        if len(classes) == 1 and not hasattr(classes[0], "KIND") and isinstance(value, Mapping):
            value = from_dict(classes[0], value)
        elif classes and isinstance(value, Mapping):
            by_kind = {member.KIND: member for member in classes}
            if value.get(_KIND) not in by_kind:
                raise ConfigError(f"{cls.__name__}.{field.name}: unknown kind {value.get(_KIND)!r}; "
                                  f"known: {', '.join(by_kind)}")
            value = from_dict(by_kind[value[_KIND]], value)
        elif isinstance(value, list):
            value = tuple(value)
        values[field.name] = value
    return cls(**values)


def _lifted(field: dataclasses.Field, classes: list[type], data: Mapping[str, Any]) -> dict[str, Any] | None:
    """A nested config (e.g. `train`) that an older file kept flat, at the top level: its fields found there
    over the field's default, or None when there are none."""
    if len(classes) != 1 or not _is_config(field.default):
        return None
    names = {nested.name for nested in dataclasses.fields(classes[0])}
    found = {name: value for name, value in data.items() if name in names}
    return {**to_dict(field.default), **found} if found else None


def changed_settings(old: Any, new: Any) -> dict[str, tuple[Any, Any]]:
    """name -> (old value, new value) of every setting that differs, nested ones by their own names (a
    field only one side has, e.g. of another model, pairs with None)."""
    if type(old) is not type(new):
        raise TypeError(f"cannot compare a {type(old).__name__} with a {type(new).__name__}")
    before, after = settings(old), settings(new)
    changes = {name: (before[name].default if name in before else None,
                      after[name].default if name in after else None) for name in {*before, *after}}
    old_model, new_model = getattr(old, "model", None), getattr(new, "model", None)
    if hasattr(old_model, "KIND") and type(old_model) is not type(new_model):
        changes["model"] = (old_model.KIND, new_model.KIND)
    return {name: values for name, values in sorted(changes.items()) if values[0] != values[1]}


def check_resume(config: Any, workdir: str, allowed: Sequence[str] = ()) -> None:
    """Stops with a ConfigError naming the changed fields when `workdir` holds a run started with another
    config, except for resumable fields (paths, evaluation settings) and those in `allowed` (e.g.
    "epochs", to extend a run). A workdir without config.json starts fresh."""
    if not os.path.exists(os.path.join(workdir, CONFIG_FILE)):
        return
    current = settings(config)
    changes = {name: values for name, values in changed_settings(load(type(config), workdir), config).items()
               if name not in allowed and not (name in current and current[name].metadata.get("resumable"))}
    if changes:
        listed = ", ".join(f"--{name} {old!r} -> {new!r}" for name, (old, new) in changes.items())
        raise ConfigError(f"{workdir} holds a run started with another config ({listed}): rerun with "
                          f"--allow_changes={','.join(changes)} to continue it with the new values, or give a "
                          "fresh --workdir")


def save(config: Any, workdir: str, *, keep_existing: bool = False) -> str:
    """Writes workdir/config.json (atomically) and returns its path.

    keep_existing: leave a config.json already there as it is. Runs save with it when they start, and
    without it when they end: a resumed run that then fails (a damaged checkpoint, bad data) leaves
    the folder's files as they were, and one that succeeds records what it ran with.
    """
    path = os.path.join(workdir, CONFIG_FILE)
    if not (keep_existing and os.path.exists(path)):
        files.write_json(path, to_dict(config))
    return path


def load(cls: type, workdir: str) -> Any:
    """The config a run saved in workdir/config.json."""
    path = os.path.join(workdir, CONFIG_FILE)
    try:
        return from_dict(cls, files.read_json(path))
    except FileNotFoundError:
        raise ConfigError(f"{path} does not exist: {workdir} holds no run started by this version") from None
    except DataError:
        raise ConfigError(f"{path} is damaged (cut or garbled): restore it, or remove it to continue the run with the "
                          "flags given (its checkpoints are still checked against the model they describe)") from None
    except (ValueError, TypeError) as error:
        raise ConfigError(f"{path} does not describe a run of this experiment ({error}); restore it, or remove it to "
                          "continue the run with the flags given") from None
