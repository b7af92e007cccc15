"""TextPipeline: everything between labelled sentences and batches, fit once on a training split.

    pipeline = TextPipeline.fit(train_set, max_len=1000, min_freq=1, max_vocab=None, num_buckets=4)
    batchers = pipeline.batchers({"train": train_set, "test": test_set}, batch_size=50, eval_batch_size=500)
    pipeline.save(workdir)                    # workdir/text_pipeline.json
    TextPipeline.load(workdir).batcher(...)   # prediction: the same vocabulary, classes and shapes

One object serves training, each cross-validation fold and prediction, so the three cannot drift
apart: the vocabulary comes from the training split only (plus any `extra_words`, e.g. pretrained
vectors' words), the class names and the length cap travel with it, and every split is bucketed
with the training split's boundaries (the shapes the train step was compiled for).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence

import numpy as np
from absl import logging

from vaecnn import files

from vaecnn.data.text.encoding import (EncodedDataset, TextBatcher, bucket_boundaries, encode_dataset,
                                       vocabulary_from_dataset)
from vaecnn.data.text.records import LoadReport, TextDataError, TextDataset
from vaecnn.data.text.tokens import Vocabulary, read_json_file

PIPELINE_FILE = "text_pipeline.json"
_FORMAT = "vaecnn.text.TextPipeline"


@dataclasses.dataclass(frozen=True)
class TextPipeline:
    vocab: Vocabulary
    class_names: tuple[str, ...]
    max_len: int | None            # tokens kept per sentence; longer ones are cut and counted
    boundaries: tuple[int, ...]    # bucket lengths T, from the training split

    @classmethod
    def fit(cls, train_set: TextDataset, *, max_len: int | None, min_freq: int, max_vocab: int | None,
            num_buckets: int, extra_words: Sequence[str] = ()) -> TextPipeline:
        """The vocabulary of `train_set` (then `extra_words` not in it), and its length buckets."""
        vocab = vocabulary_from_dataset(train_set, min_freq, max_vocab)
        if extra_words:
            vocab = vocab.extended(extra_words)
        lengths = encode_dataset(train_set, vocab, max_len).lengths
        return cls(vocab, tuple(train_set.class_names), max_len, bucket_boundaries(lengths, num_buckets))

    def encode(self, dataset: TextDataset, report: LoadReport | None = None, split: str | None = None,
               ) -> EncodedDataset:
        """Token ids of `dataset`; with `report` and `split`, truncations are counted there."""
        return encode_dataset(dataset, self.vocab, self.max_len, report=report, split=split)

    def batcher(self, dataset: TextDataset | EncodedDataset, batch_size: int, *,
                include_index: bool = False) -> TextBatcher:
        """`dataset` in batches of `batch_size`, bucketed with the training boundaries (a longer sentence
        adds one bucket)."""
        encoded = dataset if isinstance(dataset, EncodedDataset) else self.encode(dataset)
        return TextBatcher(encoded, batch_size, boundaries=self.boundaries, include_index=include_index)

    def batchers(self, splits: Mapping[str, TextDataset], batch_size: int, eval_batch_size: int, *,
                 report: LoadReport | None = None, tag: str = "") -> dict[str, TextBatcher]:
        """One batcher per split: "train" in batches of `batch_size`, the others of `eval_batch_size`.
        Each split's encoding (sentences cut, tokens unknown) is logged under `tag` + its name."""
        batchers = {}
        for split, dataset in splits.items():
            encoded = self.encode(dataset, report, tag + split)
            logging.info("%s%s: %d examples (%d cut to --max_len=%s tokens), %.1f%% of %d tokens unknown to the "
                        "%d-token vocabulary", tag, split, len(encoded), encoded.num_truncated, self.max_len,
                        100 * encoded.num_unknown_tokens / max(encoded.num_tokens, 1), encoded.num_tokens,
                        len(self.vocab))
            batchers[split] = self.batcher(encoded, batch_size if split == "train" else eval_batch_size)
        return batchers

    def unlabelled(self, sentences: Sequence[str]) -> TextDataset:
        """Sentences to predict, as a data set of this pipeline's classes (labels 0, unused)."""
        return TextDataset(list(sentences), np.zeros(len(sentences), np.int32), self.class_names)

    def save(self, workdir: str) -> None:
        files.write_json(os.path.join(workdir, PIPELINE_FILE), {
            "format": _FORMAT, "vocab": self.vocab.to_dict(), "class_names": list(self.class_names),
            "max_len": self.max_len, "boundaries": list(self.boundaries)})

    @classmethod
    def load(cls, workdir: str) -> TextPipeline:
        path = os.path.join(workdir, PIPELINE_FILE)
        payload = read_json_file(path, "training writes it")
        if not isinstance(payload, dict) or payload.get("format") != _FORMAT:
            raise TextDataError(f"{path}: not a text pipeline written by vaecnn (format {_FORMAT!r})")
        class_names, max_len, boundaries = (payload.get(name) for name in ("class_names", "max_len", "boundaries"))
        is_ints = lambda values: isinstance(values, list) and values and all(  # noqa: E731
            type(value) is int and value >= 1 for value in values)
        if not (isinstance(class_names, list) and len(class_names) >= 2 and all(isinstance(c, str) for c in class_names)
                and (max_len is None or is_ints([max_len])) and is_ints(boundaries)):
            raise TextDataError(f"{path}: a damaged text pipeline (class names, max_len or bucket lengths); "
                                "retrain, or restore the file")
        return cls(Vocabulary.from_dict(payload.get("vocab"), path), tuple(class_names), max_len,
                   tuple(sorted(boundaries)))
