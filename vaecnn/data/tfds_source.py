"""TFDS through `tfds.data_source` (random access, no TensorFlow), with one policy for every data set.

    sources = open_sources("mnist", {"train": "train", "test": "test"}, data_dir=None,
                           local_hint="a folder holding mnist/ with the four IDX files")

The policy, for images and text alike:
  1. open the prepared copy in `data_dir` (TFDS's own folder by default);
  2. if there is none, download and prepare it (ArrayRecord) only when TFDS's download host answers
     within seconds -- offline, TFDS would otherwise retry for minutes;
  3. whatever TFDS raises on the way (KeyError for an empty split table, NotImplementedError for a
     TFRecord-only copy, DatasetNotFoundError, network errors, ...) becomes one DataError that says to
     point --data_dir at local files.
"""

import os
import socket
from collections.abc import Mapping
from typing import Any

from vaecnn.errors import DataError

DATA_DIR_ENV = "VAECNN_DATA_DIR"
_TFDS_HOST = ("storage.googleapis.com", 443)


def data_root(data_dir: str | os.PathLike | None) -> str | None:
    """The local datasets folder: `data_dir` (the --data_dir flag), else $VAECNN_DATA_DIR, else None.
    The one place either is read, for images and text alike."""
    return os.fspath(data_dir) if data_dir else os.environ.get(DATA_DIR_ENV) or None


def import_tfds():
    """tensorflow_datasets, with the legacy text builders (`glue`) registered.

    Why the second import: `import tensorflow_datasets` defers the builders defined in
    tensorflow_datasets.text, and without TensorFlow nothing else triggers their registration, so
    `glue` would be "not found". That module itself needs no TensorFlow.
    """
    import tensorflow_datasets as tfds
    import tensorflow_datasets.text  # noqa: F401

    return tfds


def host_reachable(address: tuple[str, int] = _TFDS_HOST, timeout: float = 3.0) -> bool:
    try:
        socket.create_connection(address, timeout=timeout).close()
        return True
    except OSError:
        return False


def missing_data_message(name: str, reason: str, local_hint: str) -> str:
    """'no local copy of <name>: <reason>. Point --data_dir at <local_hint>...' -- local_hint may end
    with an alternative after a semicolon ('...; or use --dataset=digits')."""
    folder, _, alternative = local_hint.partition("; ")
    return (f"no local copy of {name}: {reason}. Point --data_dir (or {DATA_DIR_ENV}) at {folder}, e.g. "
            f"--data_dir=../shared/datasets" + (f"; {alternative}" if alternative else ""))


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0] if text else ''}"


def open_sources(name: str, splits: Mapping[str, str], data_dir: str | None, local_hint: str) -> dict[str, Any]:
    """{our split: tfds data source of `name`'s TFDS split}, under the policy of the module docstring.

    Raises DataError (naming --data_dir and `local_hint`) when the data set cannot be had.
    """
    tfds = import_tfds()

    def open_all():
        return {ours: tfds.data_source(name, split=theirs, data_dir=data_dir, download=False)
                for ours, theirs in splits.items()}

    try:
        return open_all()
    except Exception as error:  # TFDS raises many types here; every one means "no usable copy"
        first_error = error
    try:
        builder = tfds.builder(name, data_dir=data_dir)
        prepared = builder.is_prepared()
    except Exception as error:
        raise DataError(missing_data_message(name, f"TFDS cannot build it ({_first_line(error)})",
                                             local_hint)) from error
    if prepared:  # prepared, but not readable without TensorFlow (TFRecord) or damaged
        raise DataError(missing_data_message(
            name, f"the TFDS copy in {builder.data_dir} cannot be read without TensorFlow "
                  f"({_first_line(first_error)})", local_hint)) from first_error
    if not host_reachable():
        raise DataError(missing_data_message(
            name, f"TFDS has no prepared copy in {builder.data_dir} and its download host cannot be reached",
            local_hint)) from first_error
    try:
        builder.download_and_prepare(file_format="array_record")
        return open_all()
    except Exception as error:
        raise DataError(missing_data_message(name, f"downloading it through TFDS failed ({_first_line(error)})",
                                             local_hint)) from error
