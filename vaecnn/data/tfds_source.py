"""TFDS through `tfds.data_source` (random access, no TensorFlow), with one policy for every data set.

    sources = open_sources("mnist", {"train": "train", "test": "test"}, data_dir=None,
                           local=LocalCopy("a folder holding mnist/ with the four IDX files"))

The policy, for images and text alike:
  1. open the prepared copy in `data_dir` (TFDS's own folder by default);
  2. if there is none, download and prepare it (ArrayRecord) only when TFDS's download host answers
     within seconds -- offline, TFDS would otherwise retry for minutes;
  3. whatever TFDS raises on the way (KeyError for an empty split table, NotImplementedError for a
     TFRecord-only copy, DatasetNotFoundError, network errors, ...) becomes one DataError that says to
     point --data_dir at local files.
"""

import socket
from collections.abc import Mapping
from typing import Any

from vaecnn.data import DATA_DIR_ENV, LocalCopy
from vaecnn.errors import DataError

_TFDS_HOST = ("storage.googleapis.com", 443)


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


def missing_data(name: str, reason: str, local: LocalCopy) -> DataError:
    """'no local copy of <name>: <reason>. Point --data_dir at <local.folder>...; <local.alternative>',
    with `local` as the error's hint."""
    return DataError(f"no local copy of {name}: {reason}. Point --data_dir (or {DATA_DIR_ENV}) at {local.folder}, "
                     "e.g. --data_dir=../shared/datasets" + (f"; {local.alternative}" if local.alternative else ""),
                     hint=local)


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0] if text else ''}"


def open_sources(name: str, splits: Mapping[str, str], data_dir: str | None, local: LocalCopy) -> dict[str, Any]:
    """{our split: tfds data source of `name`'s TFDS split}, under the policy of the module docstring.

    Raises DataError (naming --data_dir and `local`) when the data set cannot be had.
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
        raise missing_data(name, f"TFDS cannot build it ({_first_line(error)})", local) from error
    if prepared:  # prepared, but not readable without TensorFlow (TFRecord) or damaged
        raise missing_data(name, f"the TFDS copy in {builder.data_dir} cannot be read without TensorFlow "
                                 f"({_first_line(first_error)})", local) from first_error
    if not host_reachable():
        raise missing_data(name, f"TFDS has no prepared copy in {builder.data_dir} and its download host cannot "
                                 "be reached", local) from first_error
    try:
        builder.download_and_prepare(file_format="array_record")
        return open_all()
    except Exception as error:
        raise missing_data(name, f"downloading it through TFDS failed ({_first_line(error)})", local) from error
