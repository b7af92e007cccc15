"""TextPipeline: fit on a training split only, batchers for every split, the same after save and load."""

import numpy as np
import pytest

from vaecnn.data import text as tx

TRAIN = tx.TextDataset(["a good film", "a bad film , really bad", "good", "bad bad bad bad bad bad bad"],
                       np.array([1, 0, 1, 0], np.int32), tx.BINARY_CLASS_NAMES)
TEST = tx.TextDataset(["an unseen good word", "bad " * 20], np.array([1, 0], np.int32), tx.BINARY_CLASS_NAMES)


def _fit(**overrides) -> tx.TextPipeline:
    settings = dict(max_len=12, min_freq=1, max_vocab=None, num_buckets=2) | overrides
    return tx.TextPipeline.fit(TRAIN, **settings)


def test_fit_uses_the_training_split_only_and_extra_words_come_after():
    pipeline = _fit()
    assert set(pipeline.vocab.itos[2:]) == {"a", "good", "film", "bad", ",", "really"}
    assert "unseen" not in pipeline.vocab and pipeline.class_names == tx.BINARY_CLASS_NAMES
    lengths = [len(tx.tokenize(text)) for text in TRAIN.texts]
    assert pipeline.boundaries == tx.bucket_boundaries(lengths, 2)
    extended = _fit(extra_words=["unseen", "good"])
    assert extended.vocab.itos == pipeline.vocab.itos + ("unseen",)  # training ids unchanged


def test_batchers_share_the_training_buckets_and_count_truncations():
    pipeline, report = _fit(), tx.LoadReport()
    batchers = pipeline.batchers({"train": TRAIN, "test": TEST}, batch_size=2, eval_batch_size=3, report=report,
                                 tag="fold_00/")
    assert batchers["train"].batch_size == 2 and batchers["test"].batch_size == 3
    assert batchers["train"].boundaries == pipeline.boundaries
    assert batchers["test"].boundaries == pipeline.boundaries + (12,)  # the cut 20-token line adds one bucket
    assert report.truncated == {"fold_00/train": 0, "fold_00/test": 1}
    batch = next(batchers["test"].eval_batches())
    assert batch["tokens"].shape[0] == 3 and batch["mask"].sum() >= 1


def test_save_and_load_give_the_same_pipeline_and_the_same_batches(tmp_path):
    pipeline = _fit(extra_words=["unseen"])
    pipeline.save(str(tmp_path))
    loaded = tx.TextPipeline.load(str(tmp_path))
    assert loaded == pipeline
    sentences = ["an unseen good film", "bad"]
    first = list(pipeline.batcher(pipeline.unlabelled(sentences), 2, include_index=True).eval_batches())
    again = list(loaded.batcher(loaded.unlabelled(sentences), 2, include_index=True).eval_batches())
    assert len(first) == len(again)
    for a, b in zip(first, again):
        assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def test_a_missing_pipeline_file_says_training_writes_it(tmp_path):
    with pytest.raises(tx.MissingTextFileError, match="training writes it"):
        tx.TextPipeline.load(str(tmp_path))
