"""Labelled sentences as read from files: TextDataset, the LoadReport of what was skipped, and the
readers of GLUE TSV and Kim's "label text" lines (UTF-8, else Latin-1; split on "\\n" only)."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence

import numpy as np
from absl import logging

from vaecnn.errors import DataError


PathLike = str | os.PathLike


# ----------------------------------------------------------------------------------------------------------
# Records
# ----------------------------------------------------------------------------------------------------------

BINARY_CLASS_NAMES = ("negative", "positive")
FINE_CLASS_NAMES = ("very negative", "negative", "neutral", "positive", "very positive")

# Reasons a line is skipped (keys of LoadReport.skipped).
EMPTY_LINE = "empty line"
MISSING_LABEL = "missing label"
UNKNOWN_LABEL = "unknown label"
MISSING_TEXT = "missing text"
BAD_COLUMNS = "wrong number of columns"
UNLABELED = "unlabeled example"


@dataclasses.dataclass(frozen=True)
class TextDataset:
    """Raw examples of one split.

    Attributes:
        texts: the example strings (not tokenized).
        labels: int32 ``[N]`` class ids in ``range(len(class_names))``.
        class_names: the name of each class id.
    """

    texts: list[str]
    labels: np.ndarray
    class_names: tuple[str, ...]

    def __post_init__(self):
        object.__setattr__(self, "labels", np.asarray(self.labels, dtype=np.int32).reshape(-1))
        if len(self.texts) != len(self.labels):
            raise ValueError(f"{len(self.texts)} texts but {len(self.labels)} labels")

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def subset(self, indices: Sequence[int] | np.ndarray) -> "TextDataset":
        """The examples at ``indices`` (e.g. one cross-validation fold)."""
        indices = np.asarray(indices, dtype=np.int64)
        return TextDataset([self.texts[i] for i in indices], self.labels[indices], self.class_names)


@dataclasses.dataclass(frozen=True)
class SkippedLine:
    """One skipped line: where it was and why."""

    split: str
    path: str
    line: int  # 1-based line number; for TFDS records, the 0-based record index
    reason: str


@dataclasses.dataclass
class LoadReport:
    """What a loader kept, skipped (and why) and how it decoded each file.

    Attributes:
        loaded: split -> number of examples kept.
        skipped: split -> reason -> number of lines skipped.
        first_skipped: the first few skipped lines per (split, reason), with line numbers.
        encodings: file -> the encoding it was decoded with (``"utf-8"`` or ``"latin-1"``).
        truncated: split -> number of examples truncated to ``max_len`` tokens (by :func:`encode_dataset`).
    """

    loaded: dict[str, int] = dataclasses.field(default_factory=dict)
    skipped: dict[str, dict[str, int]] = dataclasses.field(default_factory=dict)
    first_skipped: list[SkippedLine] = dataclasses.field(default_factory=list)
    encodings: dict[str, str] = dataclasses.field(default_factory=dict)
    truncated: dict[str, int] = dataclasses.field(default_factory=dict)

    max_examples_per_reason: int = 5

    def skip(self, split: str, path: str, line: int, reason: str) -> None:
        """Counts one skipped line (and remembers it if it is among the first few of its kind)."""
        per_split = self.skipped.setdefault(split, {})
        per_split[reason] = per_split.get(reason, 0) + 1
        if per_split[reason] <= self.max_examples_per_reason:
            self.first_skipped.append(SkippedLine(split, str(path), line, reason))

    def num_skipped(self, split: str | None = None, reason: str | None = None) -> int:
        """The number of skipped lines, optionally for one split and/or one reason."""
        total = 0
        for s, reasons in self.skipped.items():
            if split is None or s == split:
                total += sum(n for r, n in reasons.items() if reason is None or r == reason)
        return total

    def summary(self) -> str:
        """A short human-readable account, e.g. for the experiment log."""
        parts = [f"{s}: {n} examples" for s, n in self.loaded.items()]
        for s, reasons in self.skipped.items():
            parts.append(f"{s}: skipped " + ", ".join(f"{n} ({r})" for r, n in sorted(reasons.items())))
        for s, n in self.truncated.items():
            if n:
                parts.append(f"{s}: {n} truncated")
        for path, enc in self.encodings.items():
            if enc != "utf-8":
                parts.append(f"{os.path.basename(path)} decoded as {enc}")
        return "; ".join(parts)


@dataclasses.dataclass(frozen=True)
class TextSplits:
    """A loaded data set: one :class:`TextDataset` per split, and the :class:`LoadReport`.

    Split names are ``"train"``, ``"dev"``, ``"test"`` where the source has them; MR has the single split
    ``"all"`` (evaluated with :func:`stratified_kfold`).
    """

    name: str
    splits: dict[str, TextDataset]
    report: LoadReport

    def __getitem__(self, split: str) -> TextDataset:
        if split not in self.splits:
            raise KeyError(f"{self.name} has no split {split!r}; it has {sorted(self.splits)}")
        return self.splits[split]

    def __contains__(self, split: str) -> bool:
        return split in self.splits

    @property
    def class_names(self) -> tuple[str, ...]:
        return next(iter(self.splits.values())).class_names


# ----------------------------------------------------------------------------------------------------------
# File sources
# ----------------------------------------------------------------------------------------------------------


class TextDataError(DataError, ValueError):
    """A text file or data set with nothing usable in it, or not in the expected format."""


class MissingTextFileError(DataError, FileNotFoundError):
    """A text data file that does not exist."""


def read_text_lines(path: PathLike, report: LoadReport | None = None) -> list[str]:
    """Reads ``path`` as UTF-8, falling back to Latin-1 (logged), and splits it on ``"\\n"`` only.

    A trailing ``"\\r"`` is removed from every line; the empty string after a final newline is not a line.

    Returns:
        The lines, so that ``lines[i]`` is line number ``i + 1``.
    """
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError as e:
        raise MissingTextFileError(f"{path}: no such file (set VAECNN_DATA_DIR or pass the folder that "
                                   "holds it)") from e
    except OSError as e:  # a folder, a permission, an I/O error
        raise TextDataError(f"{path}: cannot be read ({e.strerror or e}); pass a readable text file") from e
    try:
        text = raw.decode("utf-8-sig")
        encoding = "utf-8"
    except UnicodeDecodeError as e:
        text = raw.decode("latin-1")
        encoding = "latin-1"
        logging.info("%s is not valid UTF-8 (%s); decoded it as Latin-1", path, e.reason)
    if report is not None:
        report.encodings[path] = encoding
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def _finish(path: str, split: str, texts: list[str], labels: list[int], class_names: tuple[str, ...],
            report: LoadReport, expected: str) -> TextDataset:
    if not texts:
        skipped = report.skipped.get(split, {})
        raise TextDataError(f"{path}: no usable example (expected {expected}); "
                            f"skipped: {skipped or 'nothing, the file is empty'}")
    report.loaded[split] = report.loaded.get(split, 0) + len(texts)
    return TextDataset(texts, np.asarray(labels, dtype=np.int32), class_names)


def read_glue_tsv(path: PathLike, *, split: str = "train", report: LoadReport | None = None,
                  class_names: Sequence[str] = BINARY_CLASS_NAMES) -> TextDataset:
    """Reads a GLUE-style TSV file with a header naming a ``sentence`` and a ``label`` column.

    Labels must be the integers ``0 .. len(class_names) - 1``. Empty lines, rows with the wrong number of
    columns, an empty/missing label, a label outside that range or an empty sentence are skipped and counted.

    Raises:
        ValueError: if the header has no ``sentence``/``label`` column (e.g. GLUE's unlabeled ``test.tsv``,
            whose header is ``index<TAB>sentence``) or no row is usable.
    """
    report = report if report is not None else LoadReport()
    path = os.fspath(path)
    class_names = tuple(class_names)
    expected = ("a header 'sentence<TAB>label' then one 'text<TAB>label' row per line, labels "
                + "/".join(str(i) for i in range(len(class_names))))
    lines = read_text_lines(path, report)
    header_at = next((i for i, line in enumerate(lines) if line.strip()), None)
    if header_at is None:
        raise TextDataError(f"{path}: the file is empty (expected {expected})")
    header = [h.strip().lower() for h in lines[header_at].split("\t")]
    if "sentence" not in header or "label" not in header:
        hint = " (this looks like an unlabeled test file)" if "sentence" in header else ""
        raise TextDataError(f"{path}: header {lines[header_at]!r} has no 'sentence' and 'label' "
                            f"columns{hint}; expected {expected}")
    text_col, label_col = header.index("sentence"), header.index("label")
    valid = {str(i): i for i in range(len(class_names))}
    texts, labels = [], []
    for i in range(header_at + 1, len(lines)):
        line, lineno = lines[i], i + 1
        if not line.strip():
            report.skip(split, path, lineno, EMPTY_LINE)
            continue
        fields = line.split("\t")
        if len(fields) != len(header):
            # A row that stops before the label column ("text" alone) is missing its label.
            too_short_for_label = len(fields) <= label_col and text_col < len(fields)
            report.skip(split, path, lineno, MISSING_LABEL if too_short_for_label else BAD_COLUMNS)
            continue
        label, text = fields[label_col].strip(), fields[text_col].strip()
        if not label:
            report.skip(split, path, lineno, MISSING_LABEL)
        elif label not in valid:
            report.skip(split, path, lineno, UNKNOWN_LABEL)
        elif not text:
            report.skip(split, path, lineno, MISSING_TEXT)
        else:
            texts.append(text)
            labels.append(valid[label])
    return _finish(path, split, texts, labels, class_names, report, expected)


def read_kim_lines(path: PathLike, *, split: str = "train", report: LoadReport | None = None,
                   num_classes: int | None = None,
                   class_names: Sequence[str] | None = None) -> TextDataset:
    """Reads Kim-style ``label text`` lines (e.g. ``stsa.binary.train``: ``1 a stirring , funny ...``).

    The label is the first whitespace-separated field, an integer in ``0 .. num_classes - 1``.

    Args:
        path: the file.
        split: the split name used in the report.
        report: a report to add to (a fresh one otherwise).
        num_classes: the number of classes; ``None`` infers it as 1 + the largest label in this file.
        class_names: names of the classes (default: :data:`BINARY_CLASS_NAMES` for 2 classes,
            :data:`FINE_CLASS_NAMES` for 5, else ``"0", "1", ...``). Overrides ``num_classes``.

    Lines that are empty, whose first field is not an integer (missing label), whose label is out of range
    (unknown label) or that have no text after the label are skipped and counted.

    Raises:
        ValueError: if no line is usable.
    """
    report = report if report is not None else LoadReport()
    path = os.fspath(path)
    if class_names is not None:
        num_classes = len(class_names)
    lines = read_text_lines(path, report)
    expected = "'label text' lines with an integer label"
    if num_classes is not None:
        expected += f" in 0..{num_classes - 1}"
    texts, labels = [], []
    for i, line in enumerate(lines):
        lineno = i + 1
        fields = line.strip().split(None, 1)
        if not fields:
            report.skip(split, path, lineno, EMPTY_LINE)
            continue
        try:
            label = int(fields[0])
        except ValueError:
            report.skip(split, path, lineno, MISSING_LABEL)
            continue
        if label < 0 or (num_classes is not None and label >= num_classes):
            report.skip(split, path, lineno, UNKNOWN_LABEL)
        elif len(fields) < 2 or not fields[1].strip():
            report.skip(split, path, lineno, MISSING_TEXT)
        else:
            texts.append(fields[1].strip())
            labels.append(label)
    if class_names is None:
        if num_classes is None:
            num_classes = max(labels) + 1 if labels else 0
            if num_classes > MAX_INFERRED_CLASSES:  # "label text" lines whose first field is some number
                raise TextDataError(f"{path}: a label of {num_classes - 1} implies {num_classes} classes; "
                                    f"expected {expected} (at most {MAX_INFERRED_CLASSES} classes)")
        class_names = _default_class_names(num_classes)
    return _finish(path, split, texts, labels, tuple(class_names), report, expected)


#: The most classes read_kim_lines infers from the labels it sees (each class gets a name and an output unit).
MAX_INFERRED_CLASSES = 1000


def _default_class_names(num_classes: int) -> tuple[str, ...]:
    if num_classes == 2:
        return BINARY_CLASS_NAMES
    if num_classes == 5:
        return FINE_CLASS_NAMES
    return tuple(str(i) for i in range(num_classes))
