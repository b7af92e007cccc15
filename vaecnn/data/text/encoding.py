"""Token ids for the models: encoding against a vocabulary, stratified k-fold splits, length
buckets and the TextBatcher that serves them to the engine."""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
from absl import logging

from vaecnn.data.text.records import LoadReport, TextDataset
from vaecnn.data.text.tokens import UNK_ID, Vocabulary, build_vocabulary, tokenize


PathLike = str | os.PathLike


# ----------------------------------------------------------------------------------------------------------
# Encoding
# ----------------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class EncodedDataset:
    """Token ids of one split, ready for :class:`TextBatcher`.

    Attributes:
        token_ids: one int32 array per example (ragged), every one non-empty.
        lengths: int32 ``[N]``: ``len(token_ids[i])`` (>= 1).
        labels: int32 ``[N]``.
        class_names: as in :class:`TextDataset`.
        num_truncated: how many examples had more than ``max_len`` tokens (and were cut to ``max_len``).
        num_empty: how many examples had no token at all (they are encoded as a single ``<unk>``, so that a
            model reading position ``length - 1`` always reads a real position).
        num_unknown_tokens / num_tokens: out-of-vocabulary rate (after truncation).
    """

    token_ids: list[np.ndarray]
    lengths: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...]
    num_truncated: int = 0
    num_empty: int = 0
    num_unknown_tokens: int = 0
    num_tokens: int = 0

    def __len__(self) -> int:
        return len(self.token_ids)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def subset(self, indices: Sequence[int] | np.ndarray) -> "EncodedDataset":
        """The examples at ``indices``. The counters describe how the whole split was encoded and are
        reset to 0 in the subset."""
        indices = np.asarray(indices, dtype=np.int64)
        return EncodedDataset([self.token_ids[i] for i in indices], self.lengths[indices],
                              self.labels[indices], self.class_names)


def encode_dataset(dataset: TextDataset, vocab: Vocabulary, max_len: int | None = None, *,
                   tokenizer: Callable[[str], list[str]] = tokenize, report: LoadReport | None = None,
                   split: str | None = None) -> EncodedDataset:
    """Tokenizes and encodes a split; examples longer than ``max_len`` tokens are truncated and counted.

    Args:
        dataset: the raw split.
        vocab: the vocabulary (built from the training split).
        max_len: keep at most this many leading tokens per example (``None``: no limit).
        tokenizer: the tokenizer (default :func:`tokenize`).
        report: if given with ``split``, the truncation count is recorded in ``report.truncated[split]``.
        split: the split name for the report.
    """
    if max_len is not None and max_len < 1:
        raise ValueError(f"max_len must be >= 1, got {max_len}")
    token_ids: list[np.ndarray] = []
    truncated = empty = unknown = total = 0
    unk = np.array([UNK_ID], np.int32)
    for text in dataset.texts:
        tokens = tokenizer(text)
        if max_len is not None and len(tokens) > max_len:
            truncated += 1
        ids = vocab.encode(tokens, max_len)
        if ids.size == 0:
            empty += 1
            ids = unk
        else:
            unknown += int(np.count_nonzero(ids == UNK_ID))
            total += int(ids.size)
        token_ids.append(ids)
    if truncated:
        logging.info("%d of %d examples%s were longer than max_len=%s tokens and were truncated", truncated,
                    len(dataset), f" ({split})" if split else "", max_len)
    if report is not None and split is not None:
        report.truncated[split] = report.truncated.get(split, 0) + truncated
    lengths = np.fromiter((ids.size for ids in token_ids), dtype=np.int32, count=len(token_ids))
    return EncodedDataset(token_ids, lengths, dataset.labels.copy(), dataset.class_names, truncated, empty,
                          unknown, total)


def vocabulary_from_dataset(dataset: TextDataset, min_freq: int = 1, max_size: int | None = None, *,
                            tokenizer: Callable[[str], list[str]] = tokenize) -> Vocabulary:
    """:func:`build_vocabulary` over a (training!) split's tokenized texts."""
    return build_vocabulary((tokenizer(t) for t in dataset.texts), min_freq, max_size)


# ----------------------------------------------------------------------------------------------------------
# Cross-validation
# ----------------------------------------------------------------------------------------------------------


def stratified_kfold(labels: Sequence[int] | np.ndarray, num_folds: int = 10,
                     seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Seeded, stratified k-fold splits.

    Each class's examples are shuffled (numpy ``default_rng(seed)``) and dealt round-robin to the folds; each
    class starts dealing at the fold where the previous class stopped, so fold sizes differ by at most one
    overall and each fold holds ``floor`` or ``ceil`` of ``n_c / num_folds`` examples of every class ``c``.

    Returns:
        ``num_folds`` pairs ``(train_idx, test_idx)`` of sorted int64 index arrays; every example is in
        exactly one test fold, and ``train_idx`` is the complement of ``test_idx``.
    """
    labels = np.asarray(labels).reshape(-1)
    n = labels.size
    if num_folds < 2 or num_folds > n:
        raise ValueError(f"num_folds must be in [2, {n}] for {n} examples, got {num_folds}")
    rng = np.random.default_rng(seed)
    fold_of = np.empty(n, dtype=np.int64)
    start = 0
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        fold_of[members] = (start + np.arange(members.size)) % num_folds
        start = (start + members.size) % num_folds
    everything = np.arange(n)
    return [(everything[fold_of != k], everything[fold_of == k]) for k in range(num_folds)]


# ----------------------------------------------------------------------------------------------------------
# Bucketing and batching
# ----------------------------------------------------------------------------------------------------------


def _min_padding_boundaries(lengths: np.ndarray, num_buckets: int) -> list[int]:
    """The at most ``num_buckets`` bucket lengths minimizing the padded size ``sum_i T(bucket of i)``.

    Dynamic programming over the sorted distinct lengths ``u``: ``cost[j]`` is the least padded size of the
    examples with length <= ``u[j]`` when a bucket ends at ``u[j]``; O(num_buckets * U^2) with numpy inner
    loops (U = number of distinct lengths; a few ms for SST-2).
    """
    u, counts = np.unique(lengths, return_counts=True)
    u = u.astype(np.float64)
    num_buckets = min(num_buckets, u.size)
    upto = np.concatenate([[0], np.cumsum(counts)])  # upto[j] = number of examples with length < u[j]
    cost = u * upto[1:]  # one bucket ending at u[j] holds every length <= u[j]
    backpointers = []
    for _ in range(1, num_buckets):
        new_cost, prev = cost.copy(), np.full(u.size, -1)
        for j in range(1, u.size):
            # The last bucket covers u[i+1 .. j], after the best split of u[0 .. i].
            candidates = cost[:j] + u[j] * (upto[j + 1] - upto[1:j + 1])
            i = int(np.argmin(candidates))
            if candidates[i] < new_cost[j]:
                new_cost[j], prev[j] = candidates[i], i
        backpointers.append(prev)
        cost = new_cost
    ends, j = [u.size - 1], u.size - 1
    for prev in reversed(backpointers):
        j = int(prev[j])
        if j < 0:
            break
        ends.append(j)
    return [int(u[e]) for e in ends]


def bucket_boundaries(lengths: Sequence[int] | np.ndarray, num_buckets: int = 4, *,
                      boundaries: Sequence[int] | None = None, method: str = "min_padding",
                      min_length: int = 1, multiple_of: int = 1) -> tuple[int, ...]:
    """The padded lengths ``T`` of the buckets: sorted, distinct, the last >= ``max(lengths)``.

    An example of length ``L`` goes to the first bucket with ``T >= L``.

    Args:
        lengths: the example lengths (usually of the training split).
        num_buckets: the most buckets to make when no explicit ``boundaries`` are given (there may be fewer
            when there are fewer distinct lengths).
        boundaries: explicit bucket lengths; ``max(lengths)`` is appended if it is longer than all of them.
        method: how to choose ``num_buckets`` boundaries: ``"min_padding"`` (default) minimizes the total
            padded size ``sum_i T(bucket of example i)`` by dynamic programming (on SST-2 train with 4
            buckets: 0.93M padded tokens against 1.21M for quantiles, 0.63M real); ``"quantile"`` uses the
            ``1/num_buckets, 2/num_buckets, ...`` quantiles (buckets of about equal counts).
        min_length: every ``T`` is at least this (e.g. the widest CNN filter).
        multiple_of: round every ``T`` up to a multiple of this (e.g. 8 for accelerator-friendly shapes).
    """
    lengths = np.asarray(lengths).reshape(-1)
    if lengths.size == 0:
        raise ValueError("no lengths to bucket")
    if multiple_of < 1 or min_length < 1:
        raise ValueError(f"multiple_of and min_length must be >= 1, got {multiple_of}, {min_length}")
    lengths = np.maximum(lengths, min_length)
    longest = int(lengths.max())
    if boundaries is not None:
        bounds = [int(b) for b in boundaries]
        if not bounds or min(bounds) < 1:
            raise ValueError(f"explicit boundaries must be positive lengths, got {boundaries}")
        if longest > max(bounds):
            bounds.append(longest)
    elif num_buckets < 1:
        raise ValueError(f"num_buckets must be >= 1, got {num_buckets}")
    elif method == "min_padding":
        bounds = _min_padding_boundaries(lengths, num_buckets)
    elif method == "quantile":
        qs = np.arange(1, num_buckets + 1) / num_buckets
        bounds = [int(math.ceil(q)) for q in np.quantile(lengths, qs)]
        bounds[-1] = longest
    else:
        raise ValueError(f"method must be 'min_padding' or 'quantile', got {method!r}")
    return tuple(sorted({-(-max(b, min_length) // multiple_of) * multiple_of for b in bounds}))


class TextBatcher:
    """Length-bucketed batches of an :class:`EncodedDataset` with a fixed batch size.

    Every batch holds examples of one bucket, padded with ``<pad>`` = 0 to that bucket's length ``T``, so a
    jitted step sees at most ``len(boundaries)`` distinct shapes. A batch is a dict::

        tokens  int32   [B, T]  token ids, 0 after each example's end
        length  int32   [B]     real lengths (1 on padding rows, never 0: see below)
        label   int32   [B]
        mask    float32 [B]     1 for real examples, 0 for padding rows
        index   int32   [B]     (only with include_index=True) example index, -1 on padding rows

    Training runs on the device: :meth:`groups` gives the buckets to vaecnn.engine, which shuffles each and
    FILLS rather than drops (the last, partial batch of a bucket is completed from the start of its shuffled
    order), so every example trains each epoch, small buckets are never dropped and every row has
    ``mask = 1``. Hence ``num_batches = sum over buckets of ceil(n_bucket / batch_size)`` for both training
    and evaluation.

    Evaluation passes (:meth:`eval_batches`) yield every example exactly once, buckets in increasing ``T``,
    examples in dataset order within a bucket; the last batch of each bucket is completed with padding rows
    (tokens 0, length 1, label 0, mask 0), so ``sum(mask)`` over a pass is ``len(data)``. Padding rows have
    length 1 (not 0) so that a model dividing by or indexing with the length never produces NaNs or
    out-of-range reads (a NaN times a 0 mask is still NaN).

    For evaluation splits pass ``boundaries=train_batcher.boundaries`` so they reuse the compiled shapes.
    """

    def __init__(self, data: EncodedDataset, batch_size: int, *, boundaries: Sequence[int],
                 include_index: bool = False):
        """Buckets ``data``.

        Args:
            data: the encoded split.
            batch_size: ``B``, fixed for every batch.
            boundaries: the bucket lengths (:func:`bucket_boundaries` of the training split, as
                TextPipeline keeps them); this data's longest length is appended if it is longer.
            include_index: add the ``index`` entry (to map predictions back to examples).
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if len(data) == 0:
            raise ValueError("cannot batch an empty dataset")
        self.data = data
        self.batch_size = int(batch_size)
        self.include_index = include_index
        lengths = np.asarray(data.lengths)
        self.boundaries: tuple[int, ...] = bucket_boundaries(lengths, boundaries=boundaries)
        bucket_of = np.searchsorted(np.asarray(self.boundaries), lengths, side="left")
        self._members: list[np.ndarray] = []
        self._tokens: list[np.ndarray] = []   # per bucket: int32 [n_b, T_b]
        self._lengths: list[int] = []
        for b, T in enumerate(self.boundaries):
            members = np.flatnonzero(bucket_of == b)
            if members.size == 0:
                continue
            tokens_nxT = np.zeros((members.size, T), dtype=np.int32)
            for row, i in enumerate(members):
                ids = data.token_ids[i]
                tokens_nxT[row, : ids.size] = ids
            self._members.append(members)
            self._tokens.append(tokens_nxT)
            self._lengths.append(T)
        self._labels = np.asarray(data.labels, dtype=np.int32)
        self._example_lengths = lengths.astype(np.int32)
        self.batches_per_bucket = tuple(-(-m.size // self.batch_size) for m in self._members)
        self.num_batches: int = int(sum(self.batches_per_bucket))

    @property
    def num_examples(self) -> int:
        return len(self.data)

    @property
    def num_eval_batches(self) -> int:
        """Batches in an evaluation pass: the same as ``num_batches`` (training passes fill, not drop)."""
        return self.num_batches

    @property
    def shapes(self) -> tuple[tuple[int, int], ...]:
        """The distinct ``(B, T)`` token shapes this batcher yields."""
        return tuple((self.batch_size, T) for T in self._lengths)

    def groups(self) -> list[dict[str, np.ndarray]]:
        """The buckets as groups for vaecnn.engine: tokens [n_b, T_b], length [n_b], label [n_b]."""
        return [{"tokens": tokens_nxT, "length": self._example_lengths[members], "label": self._labels[members]}
                for tokens_nxT, members in zip(self._tokens, self._members)]

    def steps_per_group(self) -> list[int]:
        """ceil(n_b / B) per bucket: the last batch is filled from the bucket's start (see the class doc)."""
        return list(self.batches_per_bucket)

    def largest_batch(self) -> dict[str, Any]:
        """A batch of the longest bucket (the step's peak memory), its rows the bucket's first examples."""
        bucket = len(self._lengths) - 1
        num_real = min(self.batch_size, self._members[bucket].size)
        rows = np.resize(np.arange(num_real), self.batch_size)
        return self._batch(bucket, rows, num_real)

    def _batch(self, bucket: int, rows: np.ndarray, num_real: int) -> dict[str, Any]:
        """Assembles one batch from row positions within ``bucket``; rows past ``num_real`` are padding."""
        B, T = self.batch_size, self._lengths[bucket]
        members = self._members[bucket]
        tokens_BxT = np.zeros((B, T), dtype=np.int32)
        length_B = np.ones((B,), dtype=np.int32)
        label_B = np.zeros((B,), dtype=np.int32)
        mask_B = np.zeros((B,), dtype=np.float32)
        index_B = np.full((B,), -1, dtype=np.int32)
        real = rows[:num_real]
        examples = members[real]
        tokens_BxT[:num_real] = self._tokens[bucket][real]
        length_B[:num_real] = self._example_lengths[examples]
        label_B[:num_real] = self._labels[examples]
        mask_B[:num_real] = 1.0
        index_B[:num_real] = examples
        batch = {"tokens": tokens_BxT, "length": length_B, "label": label_B, "mask": mask_B}
        if self.include_index:
            batch["index"] = index_B
        return batch

    def eval_batches(self) -> Iterator[dict[str, Any]]:
        """Every example once: buckets in increasing ``T``, dataset order within a bucket, ``num_batches``
        batches (see the class docstring)."""
        B = self.batch_size
        for b, members in enumerate(self._members):
            for start in range(0, members.size, B):
                rows = np.arange(start, min(start + B, members.size))
                yield self._batch(b, np.pad(rows, (0, B - rows.size)), rows.size)
