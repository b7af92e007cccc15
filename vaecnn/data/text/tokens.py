"""The tokenizer and the vocabulary: text -> tokens -> ids, and back; the vocabulary saves as JSON."""

from __future__ import annotations

import collections
import json
import os
import re
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from vaecnn.data.text.records import MissingTextFileError, TextDataError


PathLike = str | os.PathLike


# ----------------------------------------------------------------------------------------------------------
# Tokenizer
# ----------------------------------------------------------------------------------------------------------

#: Clitics split off the word they are attached to ("it's" -> "it 's", "don't" -> "do n't").
CONTRACTIONS = ("n't", "'s", "'ve", "'re", "'d", "'ll", "'m")
#: Punctuation kept as tokens of their own; every other non-word character becomes a space.
SEPARATED_PUNCTUATION = ",!?();:"

_NOT_KEPT = re.compile(r"[^\w\s'" + re.escape(SEPARATED_PUNCTUATION) + r"]")
_CONTRACTION = re.compile(r"(n't|'s|'ve|'re|'d|'ll|'m)\b")
_PUNCT = re.compile("([" + re.escape(SEPARATED_PUNCTUATION) + "])")


def tokenize(text: str) -> list[str]:
    """Lower-cases ``text`` and splits it into word and punctuation tokens, in the spirit of Kim (2014).

    Rules, in order:

    1. lower-case; a backtick counts as an apostrophe;
    2. every character that is not a word character (Unicode letters, digits, ``_``), whitespace, an
       apostrophe or one of ``, ! ? ( ) ; :`` becomes a space (so ``.``, ``"``, ``-``, ``/``...
       disappear and ``re-imagining`` becomes ``re imagining``);
    3. the clitics ``n't 's 've 're 'd 'll 'm`` are split from their word (``didn't`` -> ``did n't``);
    4. ``, ! ? ( ) ; :`` become tokens of their own;
    5. apostrophes left at the edges of a token (quotes, ``dogs'``) are stripped; empty tokens are dropped.

    Already-tokenized text (SST's ``it 's`` / ``wo n't``) tokenizes to the same tokens, so the rules are
    idempotent: ``tokenize(" ".join(tokenize(s))) == tokenize(s)``.

    Args:
        text: a sentence or document.

    Returns:
        The list of tokens (possibly empty, e.g. for ``"..."``).
    """
    text = text.lower().replace("`", "'")
    text = _NOT_KEPT.sub(" ", text)
    text = _CONTRACTION.sub(r" \1", text)
    text = _PUNCT.sub(r" \1 ", text)
    tokens = []
    for token in text.split():
        stripped = token.rstrip("'")
        token = stripped if stripped in CONTRACTIONS else token.strip("'")
        if token:
            tokens.append(token)
    return tokens


# ----------------------------------------------------------------------------------------------------------
# Vocabulary
# ----------------------------------------------------------------------------------------------------------

PAD_TOKEN = "<pad>"
UNK_TOKEN = "<unk>"
PAD_ID = 0
UNK_ID = 1
_VOCAB_FORMAT = "vaecnn.text.Vocabulary"


class Vocabulary:
    """A token <-> id mapping with ``<pad>`` = 0 and ``<unk>`` = 1.

    Build it with :func:`build_vocabulary` from the training split only; persist it next to a trained model
    with :meth:`save` so that :meth:`load` reproduces exactly the same ids at prediction time.
    """

    def __init__(self, tokens: Sequence[str], *, min_freq: int | None = None, max_size: int | None = None):
        """Creates a vocabulary from its full id-ordered token list.

        Args:
            tokens: all tokens in id order; ``tokens[0]`` must be ``<pad>`` and ``tokens[1]`` ``<unk>``.
            min_freq: recorded for provenance only.
            max_size: recorded for provenance only.
        """
        tokens = list(tokens)
        if tokens[:2] != [PAD_TOKEN, UNK_TOKEN]:
            raise ValueError(f"a vocabulary must start with {PAD_TOKEN!r}, {UNK_TOKEN!r}; got {tokens[:2]}")
        if len(set(tokens)) != len(tokens):
            raise ValueError("vocabulary tokens must be unique")
        self.itos: tuple[str, ...] = tuple(tokens)
        self.stoi: dict[str, int] = {t: i for i, t in enumerate(tokens)}
        self.min_freq = min_freq
        self.max_size = max_size

    pad_id = PAD_ID
    unk_id = UNK_ID

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, token: str) -> bool:
        return token in self.stoi

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocabulary) and self.itos == other.itos

    def __repr__(self) -> str:
        return f"Vocabulary(size={len(self)}, min_freq={self.min_freq}, max_size={self.max_size})"

    def encode(self, tokens: Sequence[str], max_len: int | None = None) -> np.ndarray:
        """Maps tokens to ids (unknown tokens -> ``<unk>``), keeping at most ``max_len`` leading tokens.

        Returns:
            ``ids_T``: an int32 array of length ``min(len(tokens), max_len)``.
        """
        if max_len is not None:
            tokens = tokens[:max_len]
        get = self.stoi.get
        return np.fromiter((get(t, UNK_ID) for t in tokens), dtype=np.int32, count=len(tokens))

    def extended(self, tokens: Iterable[str]) -> "Vocabulary":
        """This vocabulary followed by those of ``tokens`` it lacks, in their order: every existing id is kept.

        Used to give the embedding table rows for pretrained words the training split never showed (so a
        held-out word keeps its pretrained vector instead of becoming ``<unk>``).
        """
        known, added = set(self.itos), []
        for token in tokens:
            if token not in known:
                known.add(token)
                added.append(token)
        return Vocabulary([*self.itos, *added], min_freq=self.min_freq, max_size=self.max_size)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the id-ordered tokens and how they were chosen."""
        return {"format": _VOCAB_FORMAT, "version": 1, "min_freq": self.min_freq, "max_size": self.max_size,
                "tokens": list(self.itos)}

    @classmethod
    def from_dict(cls, payload: Any, where: str) -> "Vocabulary":
        """The inverse of to_dict; anything else is a TextDataError naming `where` (a file)."""
        not_ours = TextDataError(f"{where}: not a vocabulary written by vaecnn (format {_VOCAB_FORMAT!r})")
        if not isinstance(payload, dict) or payload.get("format") != _VOCAB_FORMAT:
            raise not_ours
        tokens = payload.get("tokens")
        if not isinstance(tokens, list) or not all(isinstance(token, str) for token in tokens):
            raise not_ours
        try:
            return cls(tokens, min_freq=payload.get("min_freq"), max_size=payload.get("max_size"))
        except ValueError as e:  # <pad>/<unk> not first, repeated tokens
            raise TextDataError(f"{where}: a damaged vocabulary: {e}") from e


def read_json_file(path: PathLike, written_by: str) -> Any:
    """A JSON file written by this package, or a TextDataError / MissingTextFileError saying what to do."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError as e:
        raise MissingTextFileError(f"{path}: no such file ({written_by})") from e
    except (OSError, ValueError) as e:  # unreadable, not UTF-8, not JSON
        raise TextDataError(f"{path}: cannot be read ({e}); retrain, or restore the file") from e


def build_vocabulary(token_lists: Iterable[Sequence[str]], min_freq: int = 1,
                     max_size: int | None = None) -> Vocabulary:
    """Builds a :class:`Vocabulary` from tokenized TRAINING examples.

    Order is deterministic: ``<pad>``, ``<unk>``, then tokens by decreasing count, ties broken alphabetically.

    Args:
        token_lists: one token list per training example.
        min_freq: tokens seen fewer times are left out (they encode to ``<unk>``).
        max_size: the largest vocabulary size INCLUDING ``<pad>`` and ``<unk>`` (i.e. the embedding table's
            number of rows); ``None`` for no limit.
    """
    if min_freq < 1:
        raise ValueError(f"min_freq must be >= 1, got {min_freq}")
    if max_size is not None and max_size < 2:
        raise ValueError(f"max_size counts <pad> and <unk>, so it must be >= 2; got {max_size}")
    counts: collections.Counter[str] = collections.Counter()
    for tokens in token_lists:
        counts.update(tokens)
    for special in (PAD_TOKEN, UNK_TOKEN):
        counts.pop(special, None)
    kept = sorted((t for t, c in counts.items() if c >= min_freq), key=lambda t: (-counts[t], t))
    if max_size is not None:
        kept = kept[: max_size - 2]
    return Vocabulary([PAD_TOKEN, UNK_TOKEN, *kept], min_freq=min_freq, max_size=max_size)
