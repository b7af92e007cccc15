"""Tests of vaecnn.data.text: tokenizer, vocabulary, sources, k-fold splits, bucketed batches."""

import itertools
import os
import json
import pathlib

import numpy as np
import pytest

from vaecnn.data import text as tx
from vaecnn.data import tfds_source
from vaecnn.errors import DataError


# ---------------------------------------------------------------------------------------------------------
# Tokenizer
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("sentence, expected", [
    ("Hello, World!", ["hello", ",", "world", "!"]),
    ("It's good; isn't it?", ["it", "'s", "good", ";", "is", "n't", "it", "?"]),
    ("They're sure we'd've...", ["they", "'re", "sure", "we", "'d", "'ve"]),
    ("I'll go (maybe): I'm late", ["i", "'ll", "go", "(", "maybe", ")", ":", "i", "'m", "late"]),
    ("a re-imagining of `beauty'", ["a", "re", "imagining", "of", "beauty"]),
    ('"quoted" and \'single\' quotes', ["quoted", "and", "single", "quotes"]),
    ("the dogs' toys", ["the", "dogs", "toys"]),
    ("Café CRÈME 1930s", ["café", "crème", "1930s"]),
    ("...", []),
    ("", []),
])
def test_tokenize_cases(sentence, expected):
    assert tx.tokenize(sentence) == expected


def test_tokenize_is_idempotent_on_sst_style_text():
    sst = "it 's a charming and often affecting journey . they wo n't sit still"
    once = tx.tokenize(sst)
    assert once == ["it", "'s", "a", "charming", "and", "often", "affecting", "journey", "they", "wo", "n't",
                    "sit", "still"]
    assert tx.tokenize(" ".join(once)) == once
    assert tx.tokenize("They won't") == ["they", "wo", "n't"]


# ---------------------------------------------------------------------------------------------------------
# Vocabulary
# ---------------------------------------------------------------------------------------------------------

TRAIN_TOKENS = [["b", "a", "c", "a"], ["a", "b", "d"], ["e", "c"]]  # a:3 b:2 c:2 d:1 e:1


def test_vocabulary_order_specials_and_unknown():
    vocab = tx.build_vocabulary(TRAIN_TOKENS)
    assert vocab.itos == ("<pad>", "<unk>", "a", "b", "c", "d", "e")  # count desc, then alphabetical
    assert (vocab.pad_id, vocab.unk_id) == (0, 1)
    ids = vocab.encode(["a", "zzz", "e"])
    assert ids.dtype == np.int32
    np.testing.assert_array_equal(ids, [2, 1, 6])
    assert [vocab.itos[i] for i in ids] == ["a", "<unk>", "e"]


def test_vocabulary_min_freq_and_max_size():
    assert tx.build_vocabulary(TRAIN_TOKENS, min_freq=2).itos == ("<pad>", "<unk>", "a", "b", "c")
    # max_size counts <pad> and <unk>; the b/c tie is broken alphabetically.
    assert tx.build_vocabulary(TRAIN_TOKENS, max_size=4).itos == ("<pad>", "<unk>", "a", "b")
    vocab = tx.build_vocabulary(TRAIN_TOKENS, min_freq=2, max_size=4)
    np.testing.assert_array_equal(vocab.encode(["c", "d", "a"]), [1, 1, 2])
    with pytest.raises(ValueError):
        tx.build_vocabulary(TRAIN_TOKENS, max_size=1)
    with pytest.raises(ValueError):
        tx.build_vocabulary(TRAIN_TOKENS, min_freq=0)


def test_extended_vocabulary_appends_only_new_tokens_and_keeps_every_id():
    vocab = tx.build_vocabulary(TRAIN_TOKENS, min_freq=2)
    extended = vocab.extended(["c", "zeta", "<unk>", "alpha", "zeta"])
    assert extended.itos == (*vocab.itos, "zeta", "alpha")
    np.testing.assert_array_equal(extended.encode(["a", "b", "c", "zeta", "alpha", "d"]),
                                  [*vocab.encode(["a", "b", "c"]), len(vocab), len(vocab) + 1, 1])
    assert vocab.extended([]) == vocab


def test_vocabulary_ignores_literal_special_tokens_and_truncates():
    vocab = tx.build_vocabulary([["<pad>", "<unk>", "x"]])
    assert vocab.itos == ("<pad>", "<unk>", "x")
    np.testing.assert_array_equal(vocab.encode(["x", "x", "x"], max_len=2), [2, 2])


def test_vocabulary_json_round_trip():
    vocab = tx.build_vocabulary([["über", "naïve", "a"], ["a"]], min_freq=1, max_size=10)
    loaded = tx.Vocabulary.from_dict(json.loads(json.dumps(vocab.to_dict())), "vocab.json")
    assert loaded == vocab and loaded.itos == vocab.itos
    assert (loaded.min_freq, loaded.max_size) == (1, 10)
    words = ["naïve", "über", "?"]
    np.testing.assert_array_equal(loaded.encode(words), vocab.encode(words))
    with pytest.raises(ValueError, match="not a vocabulary"):
        tx.Vocabulary.from_dict({"tokens": ["a"]}, "other.json")


# ---------------------------------------------------------------------------------------------------------
# File sources
# ---------------------------------------------------------------------------------------------------------


def _write(path: pathlib.Path, text: str, encoding: str = "utf-8") -> pathlib.Path:
    path.write_bytes(text.encode(encoding))
    return path


def test_glue_tsv_counts_skipped_lines(tmp_path):
    path = _write(tmp_path / "train.tsv", "sentence\tlabel\n"
                  "a fine film \t1\n"            # 2
                  "\n"                           # 3 empty
                  "no label at all\n"            # 4 missing label (no tab)
                  "empty label\t\n"              # 5 missing label
                  "bad label\t7\n"               # 6 unknown label
                  "\t0\n"                        # 7 missing text
                  "too\tmany\tcolumns\n"         # 8 wrong number of columns
                  "a dull film\t0\r\n")          # 9 (CRLF)
    report = tx.LoadReport()
    ds = tx.read_glue_tsv(path, split="train", report=report)
    assert ds.texts == ["a fine film", "a dull film"]
    np.testing.assert_array_equal(ds.labels, [1, 0])
    assert ds.labels.dtype == np.int32 and ds.class_names == ("negative", "positive")
    assert report.loaded == {"train": 2}
    assert report.skipped["train"] == {tx.EMPTY_LINE: 1, tx.MISSING_LABEL: 2, tx.UNKNOWN_LABEL: 1,
                                       tx.MISSING_TEXT: 1, tx.BAD_COLUMNS: 1}
    assert report.num_skipped() == 6 and report.num_skipped("train", tx.MISSING_LABEL) == 2
    lines = {(s.reason, s.line) for s in report.first_skipped}
    assert lines == {(tx.EMPTY_LINE, 3), (tx.MISSING_LABEL, 4), (tx.MISSING_LABEL, 5), (tx.UNKNOWN_LABEL, 6),
                     (tx.MISSING_TEXT, 7), (tx.BAD_COLUMNS, 8)}
    assert "skipped" in report.summary()


def test_glue_tsv_rejects_unlabeled_and_unusable_files(tmp_path):
    unlabeled = _write(tmp_path / "test.tsv", "index\tsentence\n0\tsome text\n")
    with pytest.raises(ValueError, match="unlabeled test file"):
        tx.read_glue_tsv(unlabeled)
    nothing = _write(tmp_path / "bad.tsv", "sentence\tlabel\nfoo\t9\n\n")
    with pytest.raises(ValueError, match=r"bad\.tsv: no usable example.*expected"):
        tx.read_glue_tsv(nothing)
    with pytest.raises(ValueError, match="empty"):
        tx.read_glue_tsv(_write(tmp_path / "empty.tsv", ""))


def test_load_glue_tsv_directory(tmp_path):
    _write(tmp_path / "train.tsv", "sentence\tlabel\ngood\t1\nbad\t0\nok\t1\n")
    _write(tmp_path / "dev.tsv", "sentence\tlabel\nfine\t1\n")
    splits = tx.load_glue_tsv(tmp_path)
    assert set(splits.splits) == {"train", "dev"} and len(splits["train"]) == 3 and len(splits["dev"]) == 1
    assert splits.report.loaded == {"train": 3, "dev": 1}
    with pytest.raises(KeyError, match="no split 'test'"):
        splits["test"]


def test_kim_lines_any_number_of_classes(tmp_path):
    path = _write(tmp_path / "stsa.fine.train", "4 a great film\n"
                  "0 awful\n"
                  "\n"                 # 3 empty
                  "the rock is\n"      # 4 missing label
                  "7 out of range\n"   # 5 unknown label
                  "2\n"                # 6 missing text
                  "-1 negative id\n"   # 7 unknown label
                  "2  neutral ,  spaced  \n")
    report = tx.LoadReport()
    ds = tx.read_kim_lines(path, split="train", report=report, num_classes=5)
    assert ds.texts == ["a great film", "awful", "neutral ,  spaced"]
    np.testing.assert_array_equal(ds.labels, [4, 0, 2])
    assert ds.class_names == tx.FINE_CLASS_NAMES
    assert report.skipped["train"] == {tx.EMPTY_LINE: 1, tx.MISSING_LABEL: 1, tx.UNKNOWN_LABEL: 2,
                                       tx.MISSING_TEXT: 1}
    # Without num_classes: inferred from the labels present (7 -> 8 classes).
    inferred = tx.read_kim_lines(path)
    assert inferred.num_classes == 8 and len(inferred) == 4


def test_kim_lines_nothing_usable(tmp_path):
    path = _write(tmp_path / "junk", "no labels here\nnone at all\n")
    with pytest.raises(ValueError, match=r"junk: no usable example \(expected 'label text' lines"):
        tx.read_kim_lines(path, num_classes=2)


def test_load_kim_binary_splits(tmp_path):
    bodies = {"train": "1 good\n0 bad\n", "dev": "1 fine\n", "test": "0 meh\n1 yay\n2 ???\n"}
    for split, body in bodies.items():
        _write(tmp_path / f"stsa.binary.{split}", body)
    splits = tx.load_kim(tmp_path, "stsa.binary")
    assert [len(splits[s]) for s in ("train", "dev", "test")] == [2, 1, 2]
    assert splits.class_names == tx.BINARY_CLASS_NAMES
    assert splits.report.skipped == {"test": {tx.UNKNOWN_LABEL: 1}}


def test_mr_latin1_fallback_and_newline_only_split(tmp_path, caplog):
    # \x85 is NEL in Latin-1: str.splitlines would break the line there; MR must split on "\n" only.
    _write(tmp_path / "rt-polarity.pos", "un film tr\xe8s r\xe9ussi\nwow\x85 great\n\n", encoding="latin-1")
    _write(tmp_path / "rt-polarity.neg", "dull\n", encoding="latin-1")
    with caplog.at_level("INFO", logger="absl"):
        splits = tx.load_mr(tmp_path)
    ds = splits["all"]
    assert ds.texts == ["dull", "un film très réussi", "wow\x85 great"]
    np.testing.assert_array_equal(ds.labels, [0, 1, 1])
    report = splits.report
    encodings = {os.path.basename(path): enc for path, enc in report.encodings.items()}
    assert encodings == {"rt-polarity.pos": "latin-1", "rt-polarity.neg": "utf-8"}  # ASCII is valid UTF-8
    assert report.skipped == {"all": {tx.EMPTY_LINE: 1}}
    assert report.first_skipped[0].line == 3 and report.first_skipped[0].path.endswith("rt-polarity.pos")
    assert "Latin-1" in caplog.text
    assert "decoded as latin-1" in report.summary()


def test_utf8_is_preferred_and_missing_files_are_clear(tmp_path):
    path = _write(tmp_path / "u.txt", "1 naïve café\n")
    report = tx.LoadReport()
    ds = tx.read_kim_lines(path, report=report)
    assert ds.texts == ["naïve café"] and report.encodings == {str(path): "utf-8"}
    with pytest.raises(FileNotFoundError, match="no such file"):
        tx.load_mr(tmp_path / "nowhere")
    _write(tmp_path / "rt-polarity.pos", "good\n")
    _write(tmp_path / "rt-polarity.neg", "\n\n")
    with pytest.raises(ValueError, match=r"rt-polarity\.neg: no usable example"):
        tx.load_mr(tmp_path)


def test_load_text_dataset_dispatch(tmp_path, monkeypatch):
    (tmp_path / "mr").mkdir()
    _write(tmp_path / "mr" / "rt-polarity.pos", "good\n")
    _write(tmp_path / "mr" / "rt-polarity.neg", "bad\n")
    assert len(tx.load_text_dataset("mr", tmp_path)["all"]) == 2
    monkeypatch.setenv("VAECNN_DATA_DIR", str(tmp_path))
    assert len(tx.load_text_dataset("mr")["all"]) == 2
    with pytest.raises(ValueError, match="unknown text data set"):
        tx.load_text_dataset("nope", tmp_path)


# ---------------------------------------------------------------------------------------------------------
# TFDS
# ---------------------------------------------------------------------------------------------------------

tfds = pytest.importorskip("tensorflow_datasets")


def test_tfds_glue_builder_is_registered_without_tensorflow():
    tfds_source.import_tfds()
    assert tfds.builder_cls("glue").name == "glue"


@pytest.mark.parametrize("name, splits", [("glue/sst2", {"train", "dev"}),
                                          ("imdb_reviews", {"train", "test"})])
def test_tfds_mock_data(name, splits):
    with tfds.testing.mock_data(num_examples=6):
        loaded = tx.load_tfds_text(name)
    assert set(loaded.splits) == splits
    for ds in loaded.splits.values():
        assert len(ds) == 6 and all(isinstance(t, str) and t for t in ds.texts)
        assert ds.labels.dtype == np.int32 and set(ds.labels.tolist()) <= {0, 1}
        assert ds.class_names == {"glue/sst2": ("negative", "positive"), "imdb_reviews": ("neg", "pos")}[name]


def test_tfds_decodes_bytes_and_skips_unlabeled():
    records = [{"sentence": b"caf\xc3\xa9 ok", "label": 1, "idx": 0},
               {"sentence": b"unlabeled", "label": -1, "idx": 1},
               {"sentence": b"  ", "label": 0, "idx": 2},
               {"sentence": "plain str", "label": 0, "idx": 3}]

    def fake_source(builder, split, **kwargs):
        del builder, split, kwargs
        return records

    with tfds.testing.mock_data(as_data_source_fn=fake_source):
        loaded = tx.load_tfds_text("glue/sst2", splits={"train": "train"})
    assert loaded["train"].texts == ["café ok", "plain str"]
    np.testing.assert_array_equal(loaded["train"].labels, [1, 0])
    assert loaded.report.skipped == {"train": {tx.UNLABELED: 1, tx.MISSING_TEXT: 1}}
    records[:] = [{"sentence": b"x", "label": -1, "idx": 0}]  # GLUE's test split: all -1
    with tfds.testing.mock_data(as_data_source_fn=fake_source):
        with pytest.raises(ValueError, match="no usable example"):
            tx.load_tfds_text("glue/sst2", splits={"test": "test"})


def test_tfds_not_prepared_offline_fails_fast_naming_data_dir(tmp_path):
    if tfds_source.host_reachable(timeout=2):
        pytest.skip("the TFDS download host is reachable from here, so this is not an offline machine")
    with pytest.raises(DataError, match="download host cannot be reached.*--data_dir"):
        tx.load_tfds_text("glue/sst2", data_dir=tmp_path)
    assert not any(tmp_path.rglob("*.tfrecord*")) and not any(tmp_path.rglob("*.array_record*"))


# ---------------------------------------------------------------------------------------------------------
# Cross-validation
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("counts, k", [((53, 47), 10), ((10, 7, 3, 1), 3), ((5, 5), 10)])
def test_stratified_kfold_partition_and_stratification(counts, k):
    labels = np.repeat(np.arange(len(counts)), counts)
    rng = np.random.default_rng(1)
    labels = rng.permutation(labels)
    folds = tx.stratified_kfold(labels, k, seed=3)
    assert len(folds) == k
    seen = np.concatenate([test for _, test in folds])
    np.testing.assert_array_equal(np.sort(seen), np.arange(labels.size))  # each example in one test fold
    sizes = [test.size for _, test in folds]
    assert max(sizes) - min(sizes) <= 1
    for train, test in folds:
        np.testing.assert_array_equal(np.sort(np.concatenate([train, test])), np.arange(labels.size))
        assert np.intersect1d(train, test).size == 0
        per_class = np.bincount(labels[test], minlength=len(counts))
        expected = np.asarray(counts) / k
        assert np.all(np.abs(per_class - expected) < 1), (per_class, expected)


def test_stratified_kfold_is_seeded():
    labels = np.arange(100) % 2
    a, b = tx.stratified_kfold(labels, 5, seed=0), tx.stratified_kfold(labels, 5, seed=0)
    c = tx.stratified_kfold(labels, 5, seed=1)
    for (tr_a, te_a), (tr_b, te_b) in zip(a, b):
        np.testing.assert_array_equal(te_a, te_b)
        np.testing.assert_array_equal(tr_a, tr_b)
    assert any(not np.array_equal(x[1], y[1]) for x, y in zip(a, c))
    with pytest.raises(ValueError):
        tx.stratified_kfold(labels, 1)


# ---------------------------------------------------------------------------------------------------------
# Encoding, bucketing and batches
# ---------------------------------------------------------------------------------------------------------


def _toy_encoded(n: int = 103, seed: int = 0, max_len: int | None = None):
    rng = np.random.default_rng(seed)
    words = [f"w{i}" for i in range(30)]
    texts = [" ".join(rng.choice(words, size=int(rng.integers(1, 40)))) for _ in range(n)]
    ds = tx.TextDataset(texts, rng.integers(0, 3, size=n), ("a", "b", "c"))
    vocab = tx.vocabulary_from_dataset(ds)
    return tx.encode_dataset(ds, vocab, max_len)


def test_encode_dataset_truncates_and_counts(tmp_path):
    ds = tx.TextDataset(["a b c d e", "a b", "...", "zz a"], [0, 1, 0, 1], tx.BINARY_CLASS_NAMES)
    vocab = tx.build_vocabulary([["a", "b", "c", "d", "e"]])
    report = tx.LoadReport()
    enc = tx.encode_dataset(ds, vocab, max_len=3, report=report, split="train")
    np.testing.assert_array_equal(enc.lengths, [3, 2, 1, 2])
    assert enc.lengths.dtype == np.int32
    assert enc.num_truncated == 1 and report.truncated == {"train": 1}
    assert enc.num_empty == 1
    np.testing.assert_array_equal(enc.token_ids[2], [tx.UNK_ID])  # an empty text reads one <unk>
    np.testing.assert_array_equal(enc.token_ids[3], [tx.UNK_ID, vocab.stoi["a"]])
    assert (enc.num_unknown_tokens, enc.num_tokens) == (1, 7)
    sub = enc.subset([3, 0])
    np.testing.assert_array_equal(sub.lengths, [2, 3])


def _padded_size(lengths, bounds):
    bounds = np.asarray(bounds)
    return int(bounds[np.searchsorted(bounds, lengths)].sum())


def test_bucket_boundaries():
    lengths = np.array([1, 2, 2, 3, 5, 8, 13, 21, 34, 55])
    for method in ("min_padding", "quantile"):
        bounds = tx.bucket_boundaries(lengths, 4, method=method)
        assert list(bounds) == sorted(set(bounds)) and bounds[-1] == 55 and len(bounds) <= 4
    assert tx.bucket_boundaries(lengths, 4, method="quantile") == (3, 7, 19, 55)
    assert tx.bucket_boundaries(lengths, boundaries=[10, 20]) == (10, 20, 55)
    assert tx.bucket_boundaries(lengths, boundaries=[60, 10]) == (10, 60)
    assert tx.bucket_boundaries(lengths, 1) == (55,)
    assert tx.bucket_boundaries([1, 1, 1], 3, min_length=5) == (5,)
    assert all(b % 8 == 0 for b in tx.bucket_boundaries(lengths, 4, multiple_of=8))
    with pytest.raises(ValueError):
        tx.bucket_boundaries(lengths, 4, method="nope")


def test_min_padding_boundaries_are_optimal():
    rng = np.random.default_rng(0)
    for _ in range(40):
        lengths = rng.integers(1, 25, size=int(rng.integers(1, 40)))
        k = int(rng.integers(1, 5))
        got = _padded_size(lengths, tx.bucket_boundaries(lengths, k))
        distinct = np.unique(lengths)
        best = min(_padded_size(lengths, (*cut, distinct[-1]))
                   for r in range(min(k, distinct.size))
                   for cut in itertools.combinations(distinct[:-1], r))
        assert got == best
        quantile = _padded_size(lengths, tx.bucket_boundaries(lengths, k, method="quantile"))
        assert got <= quantile


def test_eval_pass_yields_every_example_once():
    enc = _toy_encoded()
    batcher = tx.TextBatcher(enc, batch_size=16, boundaries=tx.bucket_boundaries(enc.lengths, 4), include_index=True)
    batches = list(batcher.eval_batches())
    assert len(batches) == batcher.num_batches == batcher.num_eval_batches
    shapes = {b["tokens"].shape for b in batches}
    assert len(shapes) <= 4 and shapes == set(batcher.shapes)
    assert sum(float(b["mask"].sum()) for b in batches) == len(enc)
    index = np.concatenate([b["index"][b["mask"] > 0] for b in batches])
    np.testing.assert_array_equal(np.sort(index), np.arange(len(enc)))
    for b in batches:
        assert b["tokens"].dtype == np.int32 and b["length"].dtype == np.int32
        assert b["label"].dtype == np.int32 and b["mask"].dtype == np.float32
        real = b["mask"] > 0
        np.testing.assert_array_equal(b["label"][real], enc.labels[b["index"][real]])
        np.testing.assert_array_equal(b["length"][real], enc.lengths[b["index"][real]])
        assert np.all(b["length"][~real] == 1) and np.all(b["tokens"][~real] == 0)
        T = b["tokens"].shape[1]
        for row in np.flatnonzero(real):
            L = b["length"][row]
            np.testing.assert_array_equal(b["tokens"][row, :L], enc.token_ids[b["index"][row]])
            assert np.all(b["tokens"][row, L:T] == 0)


def test_eval_batcher_reuses_training_shapes():
    train_data = _toy_encoded(seed=0, max_len=30)
    train = tx.TextBatcher(train_data, batch_size=8, boundaries=tx.bucket_boundaries(train_data.lengths, 3))
    dev = tx.TextBatcher(_toy_encoded(n=20, seed=1), batch_size=8, boundaries=train.boundaries)
    assert dev.boundaries[:len(train.boundaries)] == train.boundaries
    assert set(dev.shapes) <= set(train.shapes) | {(8, int(dev.data.lengths.max()))}


# ---------------------------------------------------------------------------------------------------------
# Real data (../shared/datasets)
# ---------------------------------------------------------------------------------------------------------


# `real_data_dir` (tests/conftest.py) skips with a reason when VAECNN_DATA_DIR is unset or missing.


@pytest.mark.real_data
def test_real_mr(real_data_dir):
    folder = pathlib.Path(real_data_dir) / "mr"
    if not folder.is_dir():
        pytest.skip(f"{folder} is missing")
    splits = tx.load_mr(folder)
    ds = splits["all"]
    assert len(ds) == 10_662
    np.testing.assert_array_equal(np.bincount(ds.labels), [5331, 5331])
    assert set(splits.report.encodings.values()) == {"latin-1"}
    assert splits.report.num_skipped() == 0
    folds = tx.stratified_kfold(ds.labels, 10, seed=0)
    assert sorted(t.size for _, t in folds) == [1066] * 8 + [1067] * 2
    train, test = folds[0]
    vocab = tx.vocabulary_from_dataset(ds.subset(train))
    enc = tx.encode_dataset(ds.subset(test), vocab)
    batcher = tx.TextBatcher(enc, batch_size=50, boundaries=tx.bucket_boundaries(enc.lengths))
    assert sum(float(b["mask"].sum()) for b in batcher.eval_batches()) == test.size


@pytest.mark.real_data
def test_real_kim_and_sst2(real_data_dir):
    root = pathlib.Path(real_data_dir)
    kim, sst2 = root / "sst2" / "kim", root / "sst2"
    if not (kim / "stsa.binary.train").is_file() or not (sst2 / "train.tsv").is_file():
        pytest.skip(f"{sst2} is incomplete")
    binary = tx.load_kim(kim, "stsa.binary")
    assert [len(binary[s]) for s in ("train", "dev", "test")] == [6920, 872, 1821]
    assert binary.report.num_skipped() == 0
    fine = tx.load_kim(kim, "stsa.fine")
    assert fine.class_names == tx.FINE_CLASS_NAMES
    assert [len(fine[s]) for s in ("train", "dev", "test")] == [8544, 1101, 2210]
    glue = tx.load_glue_tsv(sst2)
    assert len(glue["train"]) == 67_349 and len(glue["dev"]) == 872
    assert glue.report.num_skipped() == 0
    with pytest.raises(ValueError, match="unlabeled"):
        tx.load_glue_tsv(sst2, splits=("test",))
