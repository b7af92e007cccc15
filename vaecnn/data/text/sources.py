"""The named data sets: GLUE TSV, Kim's files, MR, TFDS text data sets, and `load_text_dataset`,
which dispatches on a short name under one datasets root (vaecnn.data.data_root)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np

from vaecnn.data import DATA_DIR_ENV, LocalCopy, data_root, tfds_source
from vaecnn.errors import ConfigError
from vaecnn.data.text.records import (BINARY_CLASS_NAMES, EMPTY_LINE, MISSING_TEXT, UNKNOWN_LABEL, UNLABELED,
                                      LoadReport, TextDataError, TextDataset, TextSplits, _finish, read_glue_tsv,
                                      read_kim_lines, read_text_lines)


PathLike = str | os.PathLike



def load_glue_tsv(directory: PathLike, splits: Sequence[str] = ("train", "dev"), *,
                  class_names: Sequence[str] = BINARY_CLASS_NAMES, name: str = "sst2") -> TextSplits:
    """Loads ``{split}.tsv`` files of a GLUE task folder (default: SST-2's ``train.tsv`` and ``dev.tsv``).

    GLUE's ``test.tsv`` is unlabeled, so it is not loaded by default (asking for it raises a ValueError).
    """
    report = LoadReport()
    data = {s: read_glue_tsv(os.path.join(directory, f"{s}.tsv"), split=s, report=report,
                             class_names=class_names) for s in splits}
    return TextSplits(name, data, report)


def load_kim(directory: PathLike, name: str = "stsa.binary",
             splits: Sequence[str] = ("train", "dev", "test"), *,
             num_classes: int | None = None) -> TextSplits:
    """Loads Kim (2014)'s ``{name}.{split}`` files, e.g. ``stsa.binary.train/dev/test`` (6,920 / 872 / 1,821).

    Args:
        directory: the folder holding the files (e.g. ``$VAECNN_DATA_DIR/sst2/kim``).
        name: the file stem: ``"stsa.binary"`` (2 classes), ``"stsa.fine"`` (5 classes) or another stem.
        splits: the suffixes to load.
        num_classes: default 2 for ``*binary*``, 5 for ``*fine*``, else inferred from the first split.
    """
    if num_classes is None:
        num_classes = 2 if "binary" in name else 5 if "fine" in name else None
    report = LoadReport()
    data: dict[str, TextDataset] = {}
    for s in splits:
        ds = read_kim_lines(os.path.join(directory, f"{name}.{s}"), split=s, report=report,
                            num_classes=num_classes)
        num_classes = ds.num_classes
        data[s] = ds
    return TextSplits(name, data, report)


def load_sst2_phrases(directory: PathLike) -> TextSplits:
    """SST-2 as Kim (2014) trained it: the 67,349 labelled phrases of GLUE's ``train.tsv``, with his
    sentence-level ``stsa.binary`` dev (872) and test (1,821) splits from ``kim/``."""
    report = LoadReport()
    data = {"train": read_glue_tsv(os.path.join(directory, "train.tsv"), split="train", report=report)}
    for split in ("dev", "test"):
        data[split] = read_kim_lines(os.path.join(directory, "kim", f"stsa.binary.{split}"), split=split,
                                     report=report, class_names=data["train"].class_names)
    return TextSplits("sst2.phrases", data, report)


def load_mr(directory: PathLike) -> TextSplits:
    """Loads MR (``rt-polarity.neg`` -> label 0, then ``rt-polarity.pos`` -> label 1) as the split ``"all"``.

    The files are Latin-1 (decoded through the UTF-8 -> Latin-1 fallback) and split on ``"\\n"`` only.
    MR has no test split: evaluate it with :func:`stratified_kfold` (10 folds in Kim 2014).
    """
    report = LoadReport()
    texts: list[str] = []
    labels: list[int] = []
    for label, suffix in ((0, "neg"), (1, "pos")):
        path = os.path.join(os.fspath(directory), f"rt-polarity.{suffix}")
        n = 0
        for i, line in enumerate(read_text_lines(path, report)):
            if line.strip():
                texts.append(line.strip())
                labels.append(label)
                n += 1
            else:
                report.skip("all", path, i + 1, EMPTY_LINE)
        if n == 0:
            raise TextDataError(f"{path}: no usable example (expected one {suffix} review sentence per line)")
    report.loaded["all"] = len(texts)
    return TextSplits("mr", {"all": TextDataset(texts, np.asarray(labels, np.int32), BINARY_CLASS_NAMES)},
                      report)


# ----------------------------------------------------------------------------------------------------------
# TFDS source
# ----------------------------------------------------------------------------------------------------------


#: Per TFDS name: (text feature, {our split name: TFDS split}).
TFDS_TEXT_SOURCES: dict[str, tuple[str, dict[str, str]]] = {
    "glue/sst2": ("sentence", {"train": "train", "dev": "validation"}),
    "imdb_reviews": ("text", {"train": "train", "test": "test"}),
}
_TFDS_LOCAL_COPY = LocalCopy("a folder holding mr/ and sst2/ (--dataset=mr, sst2, stsa.binary or stsa.fine)",
                             "or pass --train_file")


def load_tfds_text(name: str, *, splits: Mapping[str, str] | None = None, data_dir: PathLike | None = None,
                   text_key: str | None = None, label_key: str = "label") -> TextSplits:
    """Loads a TFDS text-classification data set through ``tfds.data_source`` (no TensorFlow needed).

    The data set is opened under :mod:`vaecnn.data.tfds_source`'s policy (prepared copy, else a download when
    the host answers, else a DataError naming ``--data_dir``).

    Args:
        name: e.g. ``"glue/sst2"`` or ``"imdb_reviews"`` (see :data:`TFDS_TEXT_SOURCES` for the defaults).
        splits: our split name -> TFDS split (default: glue/sst2 train + validation as ``"dev"``, imdb_reviews
            train + test). GLUE's test split is unlabeled (label -1) and is rejected as having nothing usable.
        data_dir: the TFDS data folder (default: TFDS's own default).
        text_key: the text feature (default from :data:`TFDS_TEXT_SOURCES`, else ``"text"``).
        label_key: the ``ClassLabel`` feature.

    Records with a negative label (unlabeled) or empty text are skipped and counted.

    Raises:
        DataError: the data set cannot be had (not prepared and offline, TFRecord only, unknown builder), or a
            split has no labeled example.
    """
    default_text_key, default_splits = TFDS_TEXT_SOURCES.get(
        name, ("text", {"train": "train", "test": "test"}))
    text_key = text_key or default_text_key
    splits = dict(splits or default_splits)
    data_dir = os.fspath(data_dir) if data_dir is not None else None
    sources = tfds_source.open_sources(name, splits, data_dir, _TFDS_LOCAL_COPY)
    class_names = tuple(tfds_source.import_tfds().builder(name, data_dir=data_dir).info.features[label_key].names)
    report = LoadReport()
    data: dict[str, TextDataset] = {}
    for ours, theirs in splits.items():
        source = sources[ours]
        texts: list[str] = []
        labels: list[int] = []
        where = f"tfds:{name}/{theirs}"
        for i in range(len(source)):
            record = source[i]
            text = record[text_key]
            if isinstance(text, (bytes, np.bytes_)):
                text = bytes(text).decode("utf-8", errors="replace")
            text = str(text).strip()
            label = int(record[label_key])
            if label < 0:
                report.skip(ours, where, i, UNLABELED)
            elif label >= len(class_names):
                report.skip(ours, where, i, UNKNOWN_LABEL)
            elif not text:
                report.skip(ours, where, i, MISSING_TEXT)
            else:
                texts.append(text)
                labels.append(label)
        data[ours] = _finish(where, ours, texts, labels, class_names, report,
                             f"records with a {text_key!r} text and a labeled {label_key!r}")
    return TextSplits(name, data, report)


# ----------------------------------------------------------------------------------------------------------
# Dispatcher
# ----------------------------------------------------------------------------------------------------------

#: Names accepted by load_text_dataset -> their sub-folder of the datasets root ($VAECNN_DATA_DIR).
TEXT_DATASETS = {
    "mr": "mr",
    "sst2": "sst2",
    "stsa.binary": "sst2/kim",
    "stsa.fine": "sst2/kim",
    "sst2.phrases": "sst2",
}


def load_text_dataset(name: str, data_dir: PathLike | None = None) -> TextSplits:
    """Loads a data set by short name, for experiment flags.

    Args:
        name: ``"mr"`` (split ``all``), ``"sst2"`` (GLUE TSV: ``train``, ``dev``), ``"sst2.phrases"`` (GLUE's
            training phrases, Kim's dev and test sentences), ``"stsa.binary"`` /
            ``"stsa.fine"`` (Kim's files: ``train``, ``dev``, ``test``), or ``"tfds:<tfds name>"`` (e.g.
            ``"tfds:glue/sst2"``, ``"tfds:imdb_reviews"``; then ``data_dir`` is the TFDS data dir).
        data_dir: the datasets root holding ``mr/`` and ``sst2/`` (default: ``$VAECNN_DATA_DIR``).
    """
    if name.startswith("tfds:"):
        return load_tfds_text(name[len("tfds:"):], data_dir=data_dir)
    if name not in TEXT_DATASETS:
        raise ConfigError(f"unknown text data set {name!r}; known: {sorted(TEXT_DATASETS)} or 'tfds:<name>'")
    data_dir = data_root(data_dir)
    if data_dir is None:
        raise ConfigError(f"no data_dir given and {DATA_DIR_ENV} is unset; cannot find {name!r}")
    folder = os.path.join(os.fspath(data_dir), TEXT_DATASETS[name])
    if name == "mr":
        return load_mr(folder)
    if name == "sst2":
        return load_glue_tsv(folder)
    if name == "sst2.phrases":
        return load_sst2_phrases(folder)
    return load_kim(folder, name)
